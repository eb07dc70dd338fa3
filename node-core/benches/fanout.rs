//! Room fan-out without a hub, in a deterministic harness: N member
//! devices, each dialling the [`FANOUT`] member devices `ring_links` names
//! (as `Node::room_dial_targets` does),
//! real sync sessions, real signatures and DAGs, over simulated links with
//! virtual time (one-way latency, per-device upload bandwidth, a fixed
//! cost per received batch). One member writes one message; the harness
//! reports the virtual time until every member device holds it and the
//! bytes each device uploaded for it.
//!
//! Run: `cargo bench -p node-core --bench fanout` (`KITH_FANOUT_SIZES=10,100`
//! to choose sizes).

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use node_core::crypto::SigningKey;
use node_core::log::{AllowAll, Dag, DagConfig, Draft, Event, LogKind, Offer};
use node_core::node::rooms::ring_links;
use node_core::sync::{Action, Msg, Role, Session, View, events_messages};
use node_core::{AccountId, DeviceId, EventId, LogId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

const LOG: LogId = LogId::from_bytes([7; 32]);
/// Links each device dials (node-core `node::rooms::FANOUT`).
const FANOUT: usize = node_core::node::rooms::FANOUT;
/// One-way latency of every link, µs.
const LATENCY_US: u64 = 25_000;
/// Upload bandwidth of every device, bytes per second (100 Mbit/s).
const UPLINK: u64 = 12_500_000;
/// Cost of handling one received batch of events (verify, store), µs.
const INGEST_US: u64 = 300;
/// The message's text size.
const MESSAGE: usize = 1024;

struct Replica {
    key: SigningKey,
    account: AccountId,
    dag: Dag,
    bytes: HashMap<EventId, Vec<u8>>,
    seq: u64,
}

impl View for Replica {
    fn shared_logs(&self, _: AccountId, _: DeviceId) -> Vec<LogId> {
        vec![LOG]
    }
    fn entitled(&self, _: AccountId, _: DeviceId, log: &LogId) -> bool {
        *log == LOG
    }
    fn device_active(&self, _: AccountId, _: DeviceId) -> bool {
        true
    }
    fn heads(&self, _: &LogId) -> Vec<EventId> {
        self.dag.heads().map(|(id, _)| id).collect()
    }
    fn not_below(&self, _: &LogId, known: &[EventId]) -> Vec<EventId> {
        self.dag.not_below(known)
    }
    fn has(&self, _: &LogId, id: &EventId) -> bool {
        self.dag.node(id).is_some()
    }
    fn items(&self, _: &LogId) -> Vec<(u64, EventId)> {
        self.dag
            .ids()
            .map(|id| (self.dag.node(id).unwrap().depth, *id))
            .collect()
    }
}

impl Replica {
    fn device(&self) -> DeviceId {
        self.key.verifying_key().into()
    }

    fn ingest(
        &mut self,
        events: &[Vec<u8>],
        now: i64,
    ) -> (Vec<EventId>, Vec<EventId>, Vec<Vec<u8>>) {
        let (mut stored, mut missing, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
        for b in events {
            let e = Event::decode(b).unwrap();
            let id = e.id();
            match self.dag.offer(e, now, &mut AllowAll) {
                Ok(Offer::Stored(acc)) => {
                    for a in acc {
                        let bytes = a.event.encode();
                        self.bytes.insert(a.event.id(), bytes.clone());
                        stored.push(a.event.id());
                        fresh.push(bytes);
                    }
                }
                Ok(Offer::Held { missing: m }) => missing.extend(m),
                Err(_) if self.dag.node(&id).is_some() => stored.push(id),
                Err(_) => {}
            }
        }
        (stored, missing, fresh)
    }
}

struct Conn {
    a: usize,
    b: usize,
    sa: Session,
    sb: Session,
}

/// A frame in flight: (arrival µs, order, connection, towards side a, bytes).
type Flight = Reverse<(u64, u64, usize, bool, Vec<u8>)>;

struct Sim {
    replicas: Vec<Replica>,
    conns: Vec<Conn>,
    flights: BinaryHeap<Flight>,
    order: u64,
    uplink_free: Vec<u64>,
    uploaded: Vec<u64>,
    busy_until: Vec<u64>,
}

impl Sim {
    fn new(n: usize) -> Self {
        let replicas = (0..n)
            .map(|i| {
                let key = SigningKey::generate();
                let mut a = [0u8; 32];
                a[..8].copy_from_slice(&(i as u64).to_be_bytes());
                Replica {
                    key,
                    account: AccountId::from_bytes(a),
                    dag: Dag::new(LOG, LogKind::Conversation, DagConfig::default()),
                    bytes: HashMap::new(),
                    seq: 0,
                }
            })
            .collect();
        Self {
            replicas,
            conns: Vec::new(),
            flights: BinaryHeap::new(),
            order: 0,
            uplink_free: vec![0; n],
            uploaded: vec![0; n],
            busy_until: vec![0; n],
        }
    }

    /// Each device links to the devices `ring_links` names for it.
    fn link_up(&mut self, now: u64) {
        let devices: Vec<DeviceId> = self.replicas.iter().map(Replica::device).collect();
        let index: HashMap<DeviceId, usize> =
            devices.iter().enumerate().map(|(i, d)| (*d, i)).collect();
        let mut pairs = std::collections::BTreeSet::new();
        for (i, me) in devices.iter().enumerate() {
            for d in ring_links(&LOG, *me, &devices) {
                let j = index[&d];
                pairs.insert((i.min(j), i.max(j)));
            }
        }
        for (a, b) in pairs {
            let (sa, acts_a) = Session::new(
                Role::Dialer,
                self.replicas[a].account,
                self.replicas[b].device(),
            );
            let (sb, acts_b) = Session::new(
                Role::Listener,
                self.replicas[b].account,
                self.replicas[a].device(),
            );
            self.conns.push(Conn { a, b, sa, sb });
            let k = self.conns.len() - 1;
            self.run(k, true, acts_a, now);
            self.run(k, false, acts_b, now);
        }
    }

    fn send(&mut self, k: usize, from_a: bool, bytes: Vec<u8>, now: u64) {
        let from = if from_a {
            self.conns[k].a
        } else {
            self.conns[k].b
        };
        let start = now.max(self.uplink_free[from]);
        let done = start + (bytes.len() as u64 * 1_000_000).div_ceil(UPLINK);
        self.uplink_free[from] = done;
        self.uploaded[from] += bytes.len() as u64;
        self.order += 1;
        self.flights
            .push(Reverse((done + LATENCY_US, self.order, k, !from_a, bytes)));
    }

    fn run(&mut self, k: usize, a_side: bool, actions: Vec<Action>, now: u64) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        let me = if a_side {
            self.conns[k].a
        } else {
            self.conns[k].b
        };
        while let Some(act) = queue.pop_front() {
            match act {
                Action::Send(msg) => self.send(k, a_side, msg.encode(), now),
                Action::Serve { log, ids } => {
                    let r = &self.replicas[me];
                    let evs: Vec<Vec<u8>> = ids
                        .iter()
                        .filter_map(|id| r.bytes.get(id).cloned())
                        .collect();
                    for m in events_messages(log, evs) {
                        queue.push_back(Action::Send(m));
                    }
                }
                Action::Ingest { log, events } => {
                    let (stored, missing, fresh) =
                        self.replicas[me].ingest(&events, (now / 1000) as i64);
                    let more = {
                        let c = &mut self.conns[k];
                        let s = if a_side { &mut c.sa } else { &mut c.sb };
                        s.ingested(log, stored, missing, &self.replicas[me])
                            .expect("the simulation stays within bounds")
                    };
                    queue.extend(more);
                    if !fresh.is_empty() {
                        self.push_local(me, Some(k), &fresh, now);
                    }
                }
                _ => {}
            }
        }
    }

    fn push_local(&mut self, r: usize, except: Option<usize>, events: &[Vec<u8>], now: u64) {
        for k in 0..self.conns.len() {
            if Some(k) == except || (self.conns[k].a != r && self.conns[k].b != r) {
                continue;
            }
            let a_side = self.conns[k].a == r;
            let acts = {
                let c = &self.conns[k];
                let s = if a_side { &c.sa } else { &c.sb };
                s.local_events(LOG, events.to_vec(), &self.replicas[r])
            };
            self.run(k, a_side, acts, now);
        }
    }

    /// Delivers frames until none is in flight; returns the time of the
    /// last delivery at which `done` first held (or the end).
    fn settle(&mut self, mut done: impl FnMut(&Sim) -> bool) -> Option<u64> {
        let mut reached = None;
        while let Some(Reverse((at, _, k, to_a, bytes))) = self.flights.pop() {
            let me = if to_a {
                self.conns[k].a
            } else {
                self.conns[k].b
            };
            let msg = Msg::decode(&bytes).unwrap();
            let mut now = at.max(self.busy_until[me]);
            if matches!(msg, Msg::Events { .. }) {
                now += INGEST_US;
                self.busy_until[me] = now;
            }
            let acts = {
                let c = &mut self.conns[k];
                let s = if to_a { &mut c.sa } else { &mut c.sb };
                s.on_msg(msg, &self.replicas[me]).unwrap()
            };
            self.run(k, to_a, acts, now);
            if reached.is_none() && done(self) {
                reached = Some(now);
            }
        }
        reached
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("KITH_FANOUT_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 500]);
    println!(
        "fan-out of one {MESSAGE}-byte message; links: each device dials {FANOUT}; \
         latency {} ms one way, upload {} Mbit/s, {INGEST_US} µs per received batch",
        LATENCY_US / 1000,
        UPLINK * 8 / 1_000_000
    );
    println!(
        "{:>8} {:>6} {:>12} {:>10} {:>16} {:>16} {:>10}",
        "devices", "links", "all hold", "event B", "upload mean ×", "upload max ×", "wall"
    );
    for n in sizes {
        let wall = std::time::Instant::now();
        let mut sim = Sim::new(n);
        sim.link_up(0);
        sim.settle(|_| false);
        let start = sim
            .flights
            .peek()
            .map_or(0, |f| f.0.0)
            .max(*sim.uplink_free.iter().max().unwrap_or(&0))
            + 1_000_000;
        sim.uploaded.iter_mut().for_each(|u| *u = 0);
        let writer = &mut sim.replicas[0];
        writer.seq += 1;
        let event = Event::sign(
            &writer.key,
            Draft {
                log: Some(LOG),
                log_kind: LogKind::Conversation,
                seq: writer.seq,
                prev: None,
                parents: vec![],
                time: (start / 1000) as i64,
                kind: 1,
                body: vec![b'x'; MESSAGE],
            },
        );
        let id = event.id();
        let bytes = event.encode();
        let size = bytes.len() as f64;
        sim.replicas[0].ingest(std::slice::from_ref(&bytes), (start / 1000) as i64);
        sim.push_local(0, None, &[bytes], start);
        let reached = sim.settle(|s| s.replicas.iter().all(|r| r.dag.node(&id).is_some()));
        let holders = sim
            .replicas
            .iter()
            .filter(|r| r.dag.node(&id).is_some())
            .count();
        assert_eq!(holders, n, "not every device got the message");
        let mean = sim.uploaded.iter().sum::<u64>() as f64 / n as f64 / size;
        let max = *sim.uploaded.iter().max().unwrap() as f64 / size;
        println!(
            "{:>8} {:>6} {:>9.1} ms {:>10} {:>16.2} {:>16.2} {:>8.2} s",
            n,
            sim.conns.len(),
            reached.map_or(f64::NAN, |t| (t - start) as f64 / 1000.0),
            size as u64,
            mean,
            max,
            wall.elapsed().as_secs_f64()
        );
    }
}
