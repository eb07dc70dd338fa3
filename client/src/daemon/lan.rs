//! LAN discovery (`node_core::lan`): beacons to a multicast group on every
//! local network this device listens on, and the devices of the account
//! and of contacts found from theirs.
//!
//! On whenever the daemon listens beyond loopback, unless `kith daemon
//! --no-lan`; a daemon on loopback only opens no socket for it (and so
//! sends nothing beyond loopback). A beacon goes out at start, every
//! [`FAST`] for the first [`FAST_FOR`], then every [`SLOW`], and after a
//! random [`REPLY_DELAY`] when any well-formed beacon arrives (at most once
//! per [`REPLY_EVERY`]): whether it was recognised changes nothing, so an
//! answer tells a stranger replaying someone's beacon nothing about who
//! knows whom. A newcomer is found within about a second of its first
//! beacon. What a beacon from a known device says (its source address and
//! the ports it seals) is a dial hint for [`FOUND_FOR`]; the dial loop
//! tries it like any other, and the QUIC handshake proves the device.
//!
//! Input: beacons are received on a socket bound to the group address, so
//! only datagrams sent to the group arrive (not unicast from anywhere), and
//! multicast is not routed beyond the local network (TTL 1 when sent).
//! Bounds: a fixed buffer; only tags of known devices are kept, with the
//! ports of each device's [`MAX_SOURCES`] newest source addresses; an
//! unknown tag re-reads the node's tags at most once per [`RETAG_EVERY`].

use super::Daemon;
use node_core::DeviceId;
use node_core::lan::{Beacon, GROUP_V4, MAX_PORTS, PORT, Tag};
use node_core::node::lan::TagOwner;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

/// Beacon interval just after start.
const FAST: Duration = Duration::from_secs(3);
/// How long beacons go out at [`FAST`].
const FAST_FOR: Duration = Duration::from_secs(60);
/// Beacon interval after that.
const SLOW: Duration = Duration::from_secs(30);
/// Shortest time between two answering beacons.
const REPLY_EVERY: Duration = Duration::from_secs(2);
/// Longest wait before an answering beacon (the wait is random).
const REPLY_DELAY: Duration = Duration::from_millis(800);
/// How long an address from a beacon is dialled after the last beacon.
const FOUND_FOR: Duration = Duration::from_secs(120);
/// Source addresses kept per found device.
const MAX_SOURCES: usize = 3;
/// Shortest time between two readings of the node's tags.
const RETAG_EVERY: Duration = Duration::from_secs(2);

/// A source address a device's beacon came from, its ports, and when.
type Source = (IpAddr, Vec<u16>, Instant);

/// LAN discovery's state in the daemon.
#[derive(Debug, Default)]
pub(super) struct Lan {
    /// Turned off (`--no-lan`).
    off: AtomicBool,
    /// Devices found: per source address (newest last), the ports its
    /// beacon sealed and when.
    found: std::sync::Mutex<HashMap<DeviceId, Vec<Source>>>,
    /// Beacons received that were not well formed, or named no device we
    /// know (for `status` and the tests).
    ignored: AtomicU64,
    /// Whether the loop runs.
    on: AtomicBool,
    /// Devices whose tags the last round knew.
    known: AtomicU64,
}

impl Lan {
    /// Turns LAN discovery off (before the daemon serves).
    pub(super) fn turn_off(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    /// Addresses LAN discovery found for `device` lately.
    pub(super) fn addrs_of(&self, device: &DeviceId) -> Vec<SocketAddr> {
        let now = Instant::now();
        let Ok(found) = self.found.lock() else {
            return vec![];
        };
        found
            .get(device)
            .map(|sources| {
                sources
                    .iter()
                    .filter(|(_, _, at)| now.duration_since(*at) < FOUND_FOR)
                    .flat_map(|(ip, ports, _)| ports.iter().map(|p| SocketAddr::new(*ip, *p)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `status` says of it.
    pub(super) fn status(&self) -> kith_client::answers::LanStatus {
        let now = Instant::now();
        let found = self.found.lock().map_or(0, |f| {
            f.values()
                .filter(|a| {
                    a.iter()
                        .any(|(_, _, at)| now.duration_since(*at) < FOUND_FOR)
                })
                .count()
        });
        kith_client::answers::LanStatus {
            on: self.on.load(Ordering::Relaxed),
            known: self.known.load(Ordering::Relaxed),
            found: found as u64,
            ignored: self.ignored.load(Ordering::Relaxed),
        }
    }

    fn note(&self, device: DeviceId, source: IpAddr, ports: Vec<u16>) {
        let now = Instant::now();
        let Ok(mut found) = self.found.lock() else {
            return;
        };
        found.retain(|_, a| {
            a.iter()
                .any(|(_, _, at)| now.duration_since(*at) < FOUND_FOR)
        });
        let list = found.entry(device).or_default();
        list.retain(|(ip, _, _)| *ip != source);
        list.push((source, ports, now));
        let excess = list.len().saturating_sub(MAX_SOURCES);
        list.drain(..excess);
    }
}

impl Daemon {
    /// LAN discovery's state for `status`.
    pub(super) fn lan_status(&self) -> kith_client::answers::LanStatus {
        self.lan.status()
    }

    /// Whether LAN discovery runs: not turned off, and some listen address
    /// beyond loopback.
    fn lan_wanted(&self) -> bool {
        !self.lan.off.load(Ordering::Relaxed) && self.listens_beyond_loopback()
    }
}

/// The local IPv4 interface addresses the endpoint can be reached at.
fn local_v4(d: &Daemon) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = d
        .transport
        .hints()
        .into_iter()
        .filter_map(|a| match a.ip() {
            IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The QUIC ports to announce.
fn ports(d: &Daemon) -> Vec<u16> {
    let mut out: Vec<u16> = d
        .transport
        .local_addrs()
        .iter()
        .filter(|a| a.is_ipv4())
        .map(SocketAddr::port)
        .filter(|p| *p != 0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out.truncate(MAX_PORTS);
    out
}

/// The receiving socket: bound to the group's address, so that only
/// datagrams sent to the group arrive.
fn bind_listener() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several daemons on one machine (profiles, tests) share the port.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((GROUP_V4, PORT)).into())?;
    UdpSocket::from_std(socket.into())
}

/// The sending socket: any port, TTL 1 (the local network only), looped
/// back to other daemons on this machine.
fn bind_sender() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
    UdpSocket::from_std(socket.into())
}

/// What the loop keeps between rounds.
struct State {
    tags: HashMap<Tag, TagOwner>,
    tagged_at: Option<Instant>,
    joined: Vec<Ipv4Addr>,
    last_reply: Option<Instant>,
    /// When the next answering beacon goes out, if one is due.
    reply_at: Option<Instant>,
    /// This device's own tag now (its beacons come back on the loop).
    own: Option<Tag>,
    /// When each source address was last heard (bounded): only a source
    /// not heard lately gets an answer, so two devices do not answer each
    /// other forever.
    heard_from: HashMap<IpAddr, Instant>,
}

/// How long a source stays known (longer than [`SLOW`]).
const HEARD_FOR: Duration = Duration::from_secs(75);
/// Most sources remembered.
const MAX_HEARD: usize = 256;

/// Runs LAN discovery until the daemon stops (returns at once if off).
pub(super) async fn lan_loop(d: Arc<Daemon>) {
    if !d.lan_wanted() {
        return;
    }
    let (socket, sender) = match (bind_listener(), bind_sender()) {
        (Ok(l), Ok(s)) => (l, s),
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "LAN discovery: cannot open its sockets; it stays off");
            return;
        }
    };
    info!("LAN discovery on (group {GROUP_V4}:{PORT})");
    d.lan.on.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut state = State {
        tags: HashMap::new(),
        tagged_at: None,
        joined: Vec::new(),
        last_reply: None,
        reply_at: None,
        own: None,
        heard_from: HashMap::new(),
    };
    let mut next_round = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        let reply_at = state.reply_at.unwrap_or(next_round + SLOW);
        tokio::select! {
            _ = tokio::time::sleep_until(next_round.into()) => {
                round(&d, &socket, &sender, &mut state).await;
                let every = if started.elapsed() < FAST_FOR { FAST } else { SLOW };
                next_round = Instant::now() + every;
            }
            _ = tokio::time::sleep_until(reply_at.into()), if state.reply_at.is_some() => {
                state.reply_at = None;
                state.last_reply = Some(Instant::now());
                announce(&d, &sender, &local_v4(&d)).await;
            }
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                heard(&d, &mut state, &buf[..n], from).await;
            }
        }
    }
}

/// One round: the secret and grants, the tags, the groups joined, our
/// beacon.
async fn round(d: &Daemon, socket: &UdpSocket, sender: &UdpSocket, state: &mut State) {
    let now = crate::now_ms();
    {
        let mut node = d.node.lock().await;
        if let Err(e) = node.ensure_lan_secret(now).await {
            warn!(error = %e, "LAN discovery: cannot make the account's secret");
        }
        for contact in node.lan_grants_due() {
            if let Err(e) = node.write_lan_grant(contact, now).await {
                debug!(error = %e, "LAN discovery: grant not written");
            }
        }
        retag(d, state, &node, now);
        state.own = node.lan_tag_now(now);
    }
    let sock = socket2::SockRef::from(socket);
    let interfaces = local_v4(d);
    for ip in &interfaces {
        if !state.joined.contains(ip) {
            match sock.join_multicast_v4(&GROUP_V4, ip) {
                Ok(()) => state.joined.push(*ip),
                Err(e) => debug!(error = %e, %ip, "LAN discovery: cannot join the group"),
            }
        }
    }
    announce(d, sender, &interfaces).await;
}

/// Reads the tags to recognise from the node, and how many devices they
/// name (for `status`).
fn retag(d: &Daemon, state: &mut State, node: &node_core::node::Node, now: i64) {
    state.tags = node.lan_tags(now);
    state.tagged_at = Some(Instant::now());
    let devices: std::collections::HashSet<DeviceId> =
        state.tags.values().map(|o| o.device).collect();
    d.lan.known.store(devices.len() as u64, Ordering::Relaxed);
}

/// Sends our beacon out of every interface.
async fn announce(d: &Daemon, socket: &UdpSocket, interfaces: &[Ipv4Addr]) {
    let ports = ports(d);
    if ports.is_empty() {
        return;
    }
    let Some(beacon) = d.node.lock().await.lan_beacon_now(&ports, crate::now_ms()) else {
        return;
    };
    let beacon = beacon.encode();
    let sock = socket2::SockRef::from(socket);
    for ip in interfaces {
        if sock.set_multicast_if_v4(ip).is_err() {
            continue;
        }
        if let Err(e) = socket.send_to(&beacon, (GROUP_V4, PORT)).await {
            debug!(error = %e, %ip, "LAN discovery: beacon not sent");
        }
    }
}

/// A datagram arrived on the group.
async fn heard(d: &Daemon, state: &mut State, bytes: &[u8], from: SocketAddr) {
    let Some(beacon) = Beacon::decode(bytes) else {
        d.lan.ignored.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if state.own == Some(beacon.tag) {
        return;
    }
    // Answer a source not heard lately, recognised or not, after a random
    // wait: a newcomer learns of us quickly, and a stranger learns nothing
    // from the answer.
    let fresh = state
        .heard_from
        .get(&from.ip())
        .is_none_or(|t| t.elapsed() >= HEARD_FOR);
    if state.heard_from.len() >= MAX_HEARD {
        state.heard_from.retain(|_, t| t.elapsed() < HEARD_FOR);
        if state.heard_from.len() >= MAX_HEARD {
            state.heard_from.clear();
        }
    }
    state.heard_from.insert(from.ip(), Instant::now());
    if fresh
        && state.reply_at.is_none()
        && state.last_reply.is_none_or(|t| t.elapsed() >= REPLY_EVERY)
    {
        let wait = u64::from(u16::from_be_bytes(node_core::crypto::random_bytes::<2>()))
            % (REPLY_DELAY.as_millis() as u64 + 1);
        state.reply_at = Some(Instant::now() + Duration::from_millis(wait));
    }
    let mut owner = state.tags.get(&beacon.tag).cloned();
    if owner.is_none() && state.tagged_at.is_none_or(|t| t.elapsed() >= RETAG_EVERY) {
        // A contact added or a grant arrived since the last round.
        retag(d, state, &*d.node.lock().await, crate::now_ms());
        owner = state.tags.get(&beacon.tag).cloned();
    }
    let Some(owner) = owner else {
        // A device we do not know.
        d.lan.ignored.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let ports = owner.ports(&beacon);
    if ports.is_empty() {
        d.lan.ignored.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if !d.connected().contains(&owner.device) {
        debug!(device = %owner.device.short(8), %from, "LAN discovery: found a device");
    }
    d.lan.note(owner.device, from.ip(), ports);
}
