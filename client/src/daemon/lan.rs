//! LAN discovery (`node_core::lan`): beacons to a multicast group on every
//! local network this device listens on, and the devices of the account
//! and of contacts found from theirs.
//!
//! On whenever the daemon listens beyond loopback, unless `kith daemon
//! --no-lan`; a daemon on loopback only opens no socket for it (and so
//! sends nothing beyond loopback). A beacon goes out at start, every
//! [`FAST`] for the first [`FAST_FOR`], then every [`SLOW`], and in answer
//! to a beacon from a known device that has no link (at most once per
//! [`REPLY_EVERY`]), so two devices meet within a round trip of the later
//! one starting. What a beacon from a known device says (its source
//! address and ports) is a dial hint for [`FOUND_FOR`]; the dial loop
//! tries it like any other, and the QUIC handshake proves the device.
//!
//! Bounds: beacons are read into a fixed buffer; only tags of known
//! devices are kept, each with its [`MAX_FOUND_ADDRS`] newest addresses
//! (so a replayed beacon with a wrong address cannot push out the right
//! one); an unknown tag re-reads the node's tags at most once per
//! [`RETAG_EVERY`].

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
const REPLY_EVERY: Duration = Duration::from_secs(1);
/// How long an address from a beacon is dialled after the last beacon.
const FOUND_FOR: Duration = Duration::from_secs(120);
/// Addresses kept per found device.
const MAX_FOUND_ADDRS: usize = 8;
/// Shortest time between two readings of the node's tags.
const RETAG_EVERY: Duration = Duration::from_secs(2);

/// LAN discovery's state in the daemon.
#[derive(Debug, Default)]
pub(super) struct Lan {
    /// Turned off (`--no-lan`).
    off: AtomicBool,
    /// Devices found, with their addresses (newest last) and when.
    found: std::sync::Mutex<HashMap<DeviceId, Vec<(SocketAddr, Instant)>>>,
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
            .map(|addrs| {
                addrs
                    .iter()
                    .filter(|(_, at)| now.duration_since(*at) < FOUND_FOR)
                    .map(|(a, _)| *a)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `status` says of it.
    pub(super) fn status(&self) -> kith_client::answers::LanStatus {
        let now = Instant::now();
        let found = self.found.lock().map_or(0, |f| {
            f.values()
                .filter(|a| a.iter().any(|(_, at)| now.duration_since(*at) < FOUND_FOR))
                .count()
        });
        kith_client::answers::LanStatus {
            on: self.on.load(Ordering::Relaxed),
            known: self.known.load(Ordering::Relaxed),
            found: found as u64,
            ignored: self.ignored.load(Ordering::Relaxed),
        }
    }

    fn note(&self, device: DeviceId, addrs: Vec<SocketAddr>) {
        let now = Instant::now();
        let Ok(mut found) = self.found.lock() else {
            return;
        };
        found.retain(|_, a| a.iter().any(|(_, at)| now.duration_since(*at) < FOUND_FOR));
        let list = found.entry(device).or_default();
        for addr in addrs {
            list.retain(|(a, _)| *a != addr);
            list.push((addr, now));
        }
        let excess = list.len().saturating_sub(MAX_FOUND_ADDRS);
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
        !self.lan.off.load(Ordering::Relaxed)
            && self
                .transport
                .local_addrs()
                .iter()
                .any(|a| !a.ip().is_loopback())
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

fn bind() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several daemons on one machine (profiles, tests) share the port.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)).into())?;
    UdpSocket::from_std(socket.into())
}

/// What the loop keeps between rounds.
struct State {
    tags: HashMap<Tag, TagOwner>,
    tagged_at: Option<Instant>,
    joined: Vec<Ipv4Addr>,
    last_reply: Option<Instant>,
}

/// Runs LAN discovery until the daemon stops (returns at once if off).
pub(super) async fn lan_loop(d: Arc<Daemon>) {
    if !d.lan_wanted() {
        return;
    }
    let socket = match bind() {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "LAN discovery: cannot open its socket; it stays off");
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
    };
    let mut next_round = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_round.into()) => {
                round(&d, &socket, &mut state).await;
                let every = if started.elapsed() < FAST_FOR { FAST } else { SLOW };
                next_round = Instant::now() + every;
            }
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                heard(&d, &socket, &mut state, &buf[..n], from).await;
            }
        }
    }
}

/// One round: the secret and grants, the tags, the groups joined, our
/// beacon.
async fn round(d: &Daemon, socket: &UdpSocket, state: &mut State) {
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
        state.tags = node.lan_tags(now);
        state.tagged_at = Some(Instant::now());
        let devices: std::collections::HashSet<DeviceId> =
            state.tags.values().map(|o| o.device).collect();
        d.lan.known.store(devices.len() as u64, Ordering::Relaxed);
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
    announce(d, socket, &interfaces).await;
}

/// Sends our beacon out of every interface.
async fn announce(d: &Daemon, socket: &UdpSocket, interfaces: &[Ipv4Addr]) {
    let tag = d.node.lock().await.lan_tag_now(crate::now_ms());
    let (Some(tag), ports) = (tag, ports(d)) else {
        return;
    };
    if ports.is_empty() {
        return;
    }
    let beacon = Beacon { tag, ports }.encode();
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
async fn heard(d: &Daemon, socket: &UdpSocket, state: &mut State, bytes: &[u8], from: SocketAddr) {
    let Some(beacon) = Beacon::decode(bytes) else {
        d.lan.ignored.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut owner = state.tags.get(&beacon.tag).copied();
    if owner.is_none() && state.tagged_at.is_none_or(|t| t.elapsed() >= RETAG_EVERY) {
        // A contact added or a grant arrived since the last round.
        state.tags = d.node.lock().await.lan_tags(crate::now_ms());
        state.tagged_at = Some(Instant::now());
        owner = state.tags.get(&beacon.tag).copied();
    }
    let Some(owner) = owner else {
        // Our own beacon coming back, or a device we do not know.
        d.lan.ignored.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let addrs: Vec<SocketAddr> = beacon
        .ports
        .iter()
        .map(|p| SocketAddr::new(from.ip(), *p))
        .collect();
    if d.connected().contains(&owner.device) {
        d.lan.note(owner.device, addrs);
        return;
    }
    debug!(device = %owner.device.short(8), %from, "LAN discovery: found a device");
    d.lan.note(owner.device, addrs);
    // It may not know where we are either: answer, at most so often.
    if state.last_reply.is_none_or(|t| t.elapsed() >= REPLY_EVERY) {
        state.last_reply = Some(Instant::now());
        announce(d, socket, &local_v4(d)).await;
    }
}
