//! Opt-in address lookup in the Mainline DHT (`kith lookup dht on`,
//! `node_core::dht`): publishes this device's addresses, signed by its key,
//! and looks up own and contacts' devices that have no link.
//!
//! Runs only while the account's setting is on, and only if this daemon
//! may send beyond loopback (it listens beyond loopback), or was given its
//! own bootstrap nodes (`kith daemon --dht-bootstrap`, a local testnet in
//! the tests: then its DHT socket binds loopback if they are all there).
//! The record names the device's global addresses only (no private,
//! shared, unique-local or link-local ones: the DHT is public), and is
//! published at start, when they change and every [`REPUBLISH`] (DHT nodes
//! drop items after about two hours); turning lookup off publishes an
//! empty record over it. A device without a link is looked up after
//! [`LOOKUP_FIRST`], then less and less often (doubling up to
//! [`LOOKUP_MAX`]) while it stays unlinked; what a record names is a dial
//! hint for [`FOUND_FOR`]. The `mainline` client runs in its adaptive
//! mode: after long enough reachable it also serves the DHT.

use super::Daemon;
use node_core::DeviceId;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How often the loop looks at the setting and the devices.
const TICK: Duration = Duration::from_secs(2);
/// How often the record is published again.
const REPUBLISH: Duration = Duration::from_secs(30 * 60);
/// First wait between two lookups of one device (it doubles).
const LOOKUP_FIRST: Duration = Duration::from_secs(30);
/// Longest wait between two lookups of one device.
const LOOKUP_MAX: Duration = Duration::from_secs(30 * 60);
/// Wait after a failed publication.
const PUBLISH_RETRY: Duration = Duration::from_secs(60);
/// How long a record's addresses are dialled.
const FOUND_FOR: Duration = Duration::from_secs(10 * 60);
/// Lookups in flight at once.
const MAX_LOOKUPS: usize = 8;

/// The DHT's state in the daemon.
#[derive(Debug, Default)]
pub(super) struct DhtState {
    /// Bootstrap nodes given on the command line (else the public ones).
    bootstrap: std::sync::Mutex<Option<Vec<String>>>,
    /// Devices found, with their addresses and when.
    found: std::sync::Mutex<HashMap<DeviceId, (Vec<SocketAddr>, Instant)>>,
    /// Records published and lookups answered, for `status`.
    published: std::sync::atomic::AtomicU64,
    answered: std::sync::atomic::AtomicU64,
    on: std::sync::atomic::AtomicBool,
    /// How long the last lookup that found a record took, in ms.
    last_lookup_ms: std::sync::atomic::AtomicU64,
}

impl DhtState {
    /// Uses these bootstrap nodes instead of the public ones.
    pub(super) fn set_bootstrap(&self, nodes: Vec<String>) {
        if let Ok(mut b) = self.bootstrap.lock() {
            *b = Some(nodes);
        }
    }

    /// Addresses the DHT gave for `device` lately.
    pub(super) fn addrs_of(&self, device: &DeviceId) -> Vec<SocketAddr> {
        let Ok(found) = self.found.lock() else {
            return vec![];
        };
        match found.get(device) {
            Some((addrs, at)) if at.elapsed() < FOUND_FOR => addrs.clone(),
            _ => vec![],
        }
    }

    /// What `status` says of it.
    pub(super) fn status(&self) -> kith_client::answers::DhtStatus {
        use std::sync::atomic::Ordering::Relaxed;
        kith_client::answers::DhtStatus {
            on: self.on.load(Relaxed),
            published: self.published.load(Relaxed),
            found: self.answered.load(Relaxed),
            last_lookup_ms: Some(self.last_lookup_ms.load(Relaxed)).filter(|ms| *ms > 0),
        }
    }
}

impl Daemon {
    /// Uses these DHT bootstrap nodes (`kith daemon --dht-bootstrap`).
    pub fn set_dht_bootstrap(&self, nodes: Vec<String>) {
        self.dht.set_bootstrap(nodes);
    }
}

/// The client, with what it was built for.
struct Client {
    dht: mainline::async_dht::AsyncDht,
    published: Option<(Vec<SocketAddr>, Instant)>,
    /// No publication before this (after a failure).
    retry_at: Option<Instant>,
    /// The last sequence number used (they must grow).
    last_seq: i64,
    /// Per device: when it may be looked up next, and the wait after that.
    looked: HashMap<DeviceId, (Instant, Duration)>,
    lookups: tokio::task::JoinSet<(DeviceId, Option<Vec<SocketAddr>>, Duration)>,
    /// Whether the bootstrap nodes are all on loopback (a test network):
    /// then loopback addresses are published too.
    local: bool,
}

/// Runs DHT lookup while the setting is on, until the daemon stops.
pub(super) async fn dht_loop(d: Arc<Daemon>) {
    let mut client: Option<Client> = None;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let wanted = d.node.lock().await.dht_lookup();
        if !wanted {
            if let Some(mut c) = client.take() {
                withdraw(&d, &mut c).await;
                info!("DHT lookup off");
            }
            d.dht.on.store(false, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        if client.is_none() {
            client = start(&d);
            if client.is_none() {
                continue;
            }
        }
        let Some(c) = client.as_mut() else { continue };
        publish(&d, c).await;
        look_up(&d, c).await;
    }
}

fn start(d: &Daemon) -> Option<Client> {
    let given = d.dht.bootstrap.lock().ok().and_then(|b| b.clone());
    let beyond_loopback = d.listens_beyond_loopback();
    let mut builder = mainline::Dht::builder();
    let mut local = false;
    match &given {
        Some(nodes) => {
            local = nodes.iter().all(|n| {
                n.to_socket_addrs()
                    .map(|mut a| a.all(|a| a.ip().is_loopback()))
                    .unwrap_or(false)
            });
            builder.bootstrap(nodes);
            if local {
                builder.bind_address(Ipv4Addr::LOCALHOST);
            }
        }
        // A daemon on loopback sends nothing beyond it, DHT included.
        None if !beyond_loopback => return None,
        None => {}
    }
    match builder.build() {
        Ok(dht) => {
            info!("DHT lookup on");
            d.dht.on.store(true, std::sync::atomic::Ordering::Relaxed);
            Some(Client {
                dht: dht.as_async(),
                published: None,
                retry_at: None,
                last_seq: 0,
                looked: HashMap::new(),
                lookups: tokio::task::JoinSet::new(),
                local,
            })
        }
        Err(e) => {
            warn!(error = %e, "DHT lookup: cannot start the DHT client");
            None
        }
    }
}

/// Publishes this device's record if it is new, changed or due.
async fn publish(d: &Daemon, c: &mut Client) {
    if c.retry_at.is_some_and(|t| Instant::now() < t) {
        return;
    }
    let mut addrs: Vec<SocketAddr> = d
        .transport
        .hints()
        .into_iter()
        .filter(|a| c.local || is_global(a))
        .collect();
    addrs.sort();
    if addrs.is_empty() {
        return;
    }
    if let Some((last, at)) = &c.published
        && *last == addrs
        && at.elapsed() < REPUBLISH
    {
        return;
    }
    let seq_ms = next_seq_ms(c);
    let Some(record) = d.node.lock().await.dht_record(&addrs, seq_ms) else {
        return;
    };
    // Set before the put: a failure waits for the next change or round.
    c.published = Some((addrs, Instant::now()));
    match put(c, record).await {
        Ok(_) => {
            d.dht
                .published
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            debug!("DHT lookup: record published");
        }
        Err(e) => {
            debug!(error = %e, "DHT lookup: publishing failed");
            c.published = None;
            c.retry_at = Some(Instant::now() + PUBLISH_RETRY);
        }
    }
}

/// The time to sign a record at: now, or one second past the last record
/// if the clock went back (sequence numbers must grow).
fn next_seq_ms(c: &mut Client) -> i64 {
    let seq = (crate::now_ms() / 1000).max(c.last_seq + 1);
    c.last_seq = seq;
    seq * 1000
}

/// Publishes an empty record over ours (lookup turned off).
async fn withdraw(d: &Daemon, c: &mut Client) {
    if c.published.is_none() {
        return;
    }
    let seq_ms = next_seq_ms(c);
    let Some(record) = d.node.lock().await.dht_withdrawal(seq_ms) else {
        return;
    };
    if let Err(e) = put(c, record).await {
        debug!(error = %e, "DHT lookup: withdrawing the record failed");
    }
}

/// Puts a signed record under this device's key and kith's salt.
async fn put(
    c: &Client,
    record: node_core::node::lan::DhtRecord,
) -> Result<mainline::PutOutcome, mainline::errors::PutMutableError> {
    let item = mainline::MutableItem::new_signed_unchecked(
        record.key,
        record.signature,
        &record.value,
        record.seq,
        Some(node_core::dht::SALT),
    );
    c.dht.put_mutable(item, None).await
}

/// Whether an address is worth telling the whole DHT: not loopback,
/// private (RFC 1918), shared (100.64/10), link-local, unique-local
/// (fc00::/7), documentation or unspecified.
fn is_global(a: &SocketAddr) -> bool {
    match a.ip() {
        std::net::IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_documentation()
                || ip.is_broadcast()
                || (a == 100 && (64..128).contains(&b)))
        }
        std::net::IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && ip.segments()[1] == 0x0db8))
        }
    }
}

/// Starts lookups of devices without a link; takes in finished ones.
async fn look_up(d: &Daemon, c: &mut Client) {
    while let Some(done) = c.lookups.try_join_next() {
        let Ok((device, Some(addrs), took)) = done else {
            continue;
        };
        d.dht
            .answered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        d.dht.last_lookup_ms.store(
            took.as_millis().max(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Ok(mut found) = d.dht.found.lock() {
            found.retain(|_, (_, at)| at.elapsed() < FOUND_FOR);
            found.insert(device, (addrs, Instant::now()));
        }
    }
    let connected = d.connected();
    let targets: Vec<DeviceId> = {
        let node = d.node.lock().await;
        let me = node.device();
        node.dial_targets()
            .into_iter()
            .map(|(device, _)| device)
            .filter(|device| *device != me && !connected.contains(device))
            .collect()
    };
    // Linked devices start again from the shortest wait next time.
    c.looked.retain(|device, _| targets.contains(device));
    let now = Instant::now();
    for device in targets {
        if c.lookups.len() >= MAX_LOOKUPS {
            break;
        }
        let wait = match c.looked.get(&device) {
            Some((next, _)) if now < *next => continue,
            Some((_, wait)) => *wait,
            None => LOOKUP_FIRST,
        };
        c.looked
            .insert(device, (now + wait, (wait * 2).min(LOOKUP_MAX)));
        let dht = c.dht.clone();
        c.lookups.spawn(async move {
            let started = Instant::now();
            let item = dht
                .get_mutable_most_recent(device.as_bytes(), Some(node_core::dht::SALT))
                .await;
            // The crate checked the signature against this device's key.
            let addrs = item
                .filter(|i| i.key() == device.as_bytes())
                .and_then(|i| node_core::dht::decode_record(i.value()));
            (device, addrs, started.elapsed())
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_global_addresses_are_published() {
        for (addr, global) in [
            ("203.0.114.5:1", true),
            ("8.8.8.8:1", true),
            ("[2a01:4f8::1]:1", true),
            ("10.1.2.3:1", false),
            ("192.168.1.2:1", false),
            ("172.16.0.1:1", false),
            ("100.64.0.1:1", false),
            ("127.0.0.1:1", false),
            ("169.254.1.1:1", false),
            ("203.0.113.5:1", false),
            ("[fd77::2]:1", false),
            ("[fe80::1]:1", false),
            ("[::1]:1", false),
            ("[2001:db8::1]:1", false),
        ] {
            assert_eq!(super::is_global(&addr.parse().unwrap()), global, "{addr}");
        }
    }
}
