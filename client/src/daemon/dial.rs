//! Keeps links up: dials contacts' devices that have no link, with
//! exponential backoff per device.

use super::Daemon;
use super::policy::Backoff;
use node_core::DeviceId;
use node_core::sync::Role;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

const TICK: Duration = Duration::from_millis(250);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Dials every target without a live link, forever.
pub(super) async fn dial_loop(d: Arc<Daemon>) {
    let mut backoff: HashMap<DeviceId, Backoff> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    let mut scope = 0;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let connected = d.connected();
        let (targets, now_scope) = targets(&d).await;
        // What is shared grew (a room filled, an account log arrived): a
        // device that refused a link, or whose address was unknown, may
        // take one now, so the wait starts again (from its shortest: at most
        // one dial per device every half second while the scope churns).
        if now_scope != scope {
            scope = now_scope;
            for b in backoff.values_mut() {
                b.reset(now);
            }
        }
        for (device, addrs, relay) in targets {
            if connected.contains(&device) || (addrs.is_empty() && relay.is_none()) {
                backoff.remove(&device);
                continue;
            }
            let b = backoff
                .entry(device)
                .or_insert_with(|| Backoff::new(now, FIRST_BACKOFF, MAX_BACKOFF));
            if !b.try_attempt(now) {
                continue;
            }
            d.spawn(dial(Arc::clone(&d), device, addrs, relay));
        }
    }
}

/// A device to dial: its addresses and the relay to try.
type Target = (DeviceId, Vec<SocketAddr>, Option<String>);

/// Devices to dial, and the node's sharing scope (see `Node::scope`).
async fn targets(d: &Daemon) -> (Vec<Target>, u64) {
    let node = d.node.lock().await;
    let me = node.device();
    let targets = node
        .dial_targets()
        .into_iter()
        .filter(|(device, _)| *device != me)
        .map(|(device, mut addrs)| {
            let relay = node.relay_of(&device);
            for a in d
                .lan
                .addrs_of(&device)
                .into_iter()
                .chain(d.dht.addrs_of(&device))
            {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            (device, addrs, relay)
        })
        .collect();
    (targets, node.scope())
}

async fn dial(d: Arc<Daemon>, device: DeviceId, addrs: Vec<SocketAddr>, relay: Option<String>) {
    if d.connected().contains(&device) {
        return;
    }
    let connect = d.transport.connect_via(device, &addrs, relay.as_deref());
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(link)) => super::link::run(d, link, Role::Dialer).await,
        Ok(Err(e)) => debug!(device = %device.short(8), error = %e, "dial failed"),
        Err(_) => debug!(device = %device.short(8), "dial timed out"),
    }
}
