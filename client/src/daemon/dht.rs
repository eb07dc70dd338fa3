//! Opt-in address lookup in the Mainline DHT (`kith lookup dht on`,
//! `node_core::dht`): publishes this device's addresses, signed by its key,
//! and looks up own and contacts' devices that have no link.
//!
//! Runs only while the account's setting is on, and only if this daemon
//! may send beyond loopback (it listens beyond loopback), or was given its
//! own bootstrap nodes (`kith daemon --dht-bootstrap`, a local testnet in
//! the tests: then its DHT socket binds loopback if they are all there).
//! The record is published at start, when the addresses change and every
//! [`REPUBLISH`] (DHT nodes drop items after about two hours). A device
//! without a link is looked up at most once per [`LOOKUP_EVERY`]; what a
//! record names is a dial hint for [`FOUND_FOR`].

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
/// Shortest time between two lookups of one device.
const LOOKUP_EVERY: Duration = Duration::from_secs(30);
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
    looked: HashMap<DeviceId, Instant>,
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
            if client.take().is_some() {
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
    let beyond_loopback = d
        .transport
        .local_addrs()
        .iter()
        .any(|a| !a.ip().is_loopback());
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
    let mut addrs: Vec<SocketAddr> = d
        .transport
        .hints()
        .into_iter()
        .filter(|a| c.local || !(a.ip().is_loopback() || is_link_local(a)))
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
    let Some(record) = d.node.lock().await.dht_record(&addrs, crate::now_ms()) else {
        return;
    };
    let item = mainline::MutableItem::new_signed_unchecked(
        record.key,
        record.signature,
        &record.value,
        record.seq,
        Some(node_core::dht::SALT),
    );
    // Set before the put: a failure waits for the next change or round.
    c.published = Some((addrs, Instant::now()));
    match c.dht.put_mutable(item, None).await {
        Ok(_) => {
            d.dht
                .published
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            debug!("DHT lookup: record published");
        }
        Err(e) => {
            debug!(error = %e, "DHT lookup: publishing failed");
            c.published = None;
        }
    }
}

fn is_link_local(a: &SocketAddr) -> bool {
    match a.ip() {
        std::net::IpAddr::V4(ip) => ip.is_link_local(),
        std::net::IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
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
    c.looked.retain(|_, at| at.elapsed() < LOOKUP_EVERY);
    for device in targets {
        if c.lookups.len() >= MAX_LOOKUPS {
            break;
        }
        if c.looked.contains_key(&device) {
            continue;
        }
        c.looked.insert(device, Instant::now());
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
