//! Deterministic sync harness: several replicas of one log, real sessions
//! and real crypto, over simulated links with virtual time, broken
//! connections (losing what was in flight), re-dials, duplicates through
//! several paths, and partitions. Every replica must converge to the same
//! events and the same display order, with nothing lost.

#![allow(clippy::unwrap_used)]

mod common;

use common::Dev;
use node_core::log::{AllowAll, Dag, DagConfig, Event, LogKind, Offer};
use node_core::sync::{Action, Msg, Role, Session, View, events_messages};
use node_core::{AccountId, DeviceId, EventId, LogId};
use std::collections::{BTreeSet, HashMap, VecDeque};

const LOG: LogId = LogId::from_bytes([42; 32]);

struct Replica {
    dev: Dev,
    account: AccountId,
    dag: Dag,
    bytes: HashMap<EventId, Vec<u8>>,
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
    fn new(i: u8) -> Self {
        Self {
            dev: Dev::new(),
            account: AccountId::from_bytes([i; 32]),
            dag: Dag::new(LOG, LogKind::Conversation, DagConfig::default()),
            bytes: HashMap::new(),
        }
    }
    fn create(&mut self, n: u32, now: i64) -> Vec<u8> {
        let heads: Vec<Event> = self
            .dag
            .heads()
            .map(|(id, _)| Event::decode(&self.bytes[&id]).unwrap())
            .collect();
        let parents: Vec<&Event> = heads.iter().collect();
        let e = self.dev.event(
            Some(LOG),
            LogKind::Conversation,
            &parents,
            1,
            n.to_be_bytes().to_vec(),
            now,
        );
        let bytes = e.encode();
        self.ingest(std::slice::from_ref(&bytes), now);
        bytes
    }
    /// Returns (stored, missing parents).
    fn ingest(&mut self, events: &[Vec<u8>], now: i64) -> (Vec<EventId>, Vec<EventId>) {
        let (mut stored, mut missing) = (Vec::new(), Vec::new());
        for b in events {
            let e = Event::decode(b).unwrap();
            let id = e.id();
            match self.dag.offer(e, now, &mut AllowAll) {
                Ok(Offer::Stored(acc)) => {
                    for a in acc {
                        self.bytes.insert(a.event.id(), a.event.encode());
                        stored.push(a.event.id());
                    }
                }
                Ok(Offer::Held { missing: m }) => missing.extend(m),
                // Already here: acknowledge it all the same.
                Err(_) if self.dag.node(&id).is_some() => stored.push(id),
                Err(_) => {}
            }
        }
        (stored, missing)
    }
}

/// A tiny deterministic generator (no external randomness).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A live connection: two sessions and the frames in flight each way.
struct Conn {
    a: usize,
    b: usize,
    sa: Session,
    sb: Session,
    to_a: VecDeque<Vec<u8>>,
    to_b: VecDeque<Vec<u8>>,
}

struct Sim {
    replicas: Vec<Replica>,
    conns: Vec<Conn>,
    rng: Rng,
    now: i64,
    frames: u64,
    created: BTreeSet<EventId>,
}

impl Sim {
    fn connect(&mut self, a: usize, b: usize) {
        if self
            .conns
            .iter()
            .any(|c| (c.a, c.b) == (a, b) || (c.a, c.b) == (b, a))
        {
            return;
        }
        let (sa, acts_a) = Session::new(
            Role::Dialer,
            self.replicas[a].account,
            self.replicas[b].dev.id(),
        );
        let (sb, acts_b) = Session::new(
            Role::Listener,
            self.replicas[b].account,
            self.replicas[a].dev.id(),
        );
        self.conns.push(Conn {
            a,
            b,
            sa,
            sb,
            to_a: VecDeque::new(),
            to_b: VecDeque::new(),
        });
        let k = self.conns.len() - 1;
        self.run_actions(k, true, acts_a);
        self.run_actions(k, false, acts_b);
    }

    /// Carries out actions of the session on side `a_side` of connection `k`.
    fn run_actions(&mut self, k: usize, a_side: bool, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(act) = queue.pop_front() {
            let me = if a_side {
                self.conns[k].a
            } else {
                self.conns[k].b
            };
            match act {
                Action::Send(msg) => {
                    let bytes = msg.encode();
                    let c = &mut self.conns[k];
                    if a_side {
                        c.to_b.push_back(bytes)
                    } else {
                        c.to_a.push_back(bytes)
                    }
                }
                Action::Serve { log, ids } => {
                    let r = &self.replicas[me];
                    let mut evs: Vec<(u64, Vec<u8>)> = ids
                        .iter()
                        .filter_map(|id| {
                            r.bytes
                                .get(id)
                                .map(|b| (r.dag.node(id).unwrap().depth, b.clone()))
                        })
                        .collect();
                    evs.sort_by_key(|(d, _)| *d);
                    for m in events_messages(log, evs.into_iter().map(|(_, b)| b).collect()) {
                        queue.push_back(Action::Send(m));
                    }
                }
                Action::Ingest { log, events } => {
                    let now = self.now;
                    let (stored, missing) = self.replicas[me].ingest(&events, now);
                    let fresh: Vec<Vec<u8>> = stored
                        .iter()
                        .map(|id| self.replicas[me].bytes[id].clone())
                        .collect();
                    let more = {
                        let c = &mut self.conns[k];
                        let s = if a_side { &mut c.sa } else { &mut c.sb };
                        s.ingested(log, stored, missing, &self.replicas[me])
                            .expect("the simulation stays within bounds")
                    };
                    queue.extend(more);
                    // Relay by any holder: pass new events on to other links.
                    self.push_local(me, Some(k), &fresh);
                }
                Action::Receipts { .. }
                | Action::ReceiptsAll { .. }
                | Action::Hints(_)
                | Action::DeviceHints { .. }
                | Action::Have { .. } => {}
            }
        }
    }

    /// Pushes events new at replica `r` on every live link of it but `except`.
    fn push_local(&mut self, r: usize, except: Option<usize>, events: &[Vec<u8>]) {
        for k in 0..self.conns.len() {
            if Some(k) == except || (self.conns[k].a != r && self.conns[k].b != r) {
                continue;
            }
            let a_side = self.conns[k].a == r;
            let mut acts = Vec::new();
            for e in events {
                let c = &self.conns[k];
                let s = if a_side { &c.sa } else { &c.sb };
                acts.extend(s.local_event(LOG, e.clone(), &self.replicas[r]));
            }
            self.run_actions(k, a_side, acts);
        }
    }

    /// Delivers one frame on connection `k` (towards a random side).
    fn deliver(&mut self, k: usize) -> bool {
        let to_a = {
            let c = &self.conns[k];
            match (c.to_a.is_empty(), c.to_b.is_empty()) {
                (true, true) => return false,
                (false, true) => true,
                (true, false) => false,
                (false, false) => self.rng.below(2) == 0,
            }
        };
        let c = &mut self.conns[k];
        let bytes = if to_a {
            c.to_a.pop_front()
        } else {
            c.to_b.pop_front()
        }
        .unwrap();
        self.frames += 1;
        let msg = Msg::decode(&bytes).expect("frames decode");
        let me = if to_a { c.a } else { c.b };
        let s = if to_a { &mut c.sa } else { &mut c.sb };
        let acts = s
            .on_msg(msg, &self.replicas[me])
            .expect("honest peers never misbehave");
        self.run_actions(k, to_a, acts);
        true
    }

    fn step(&mut self, events_left: &mut u32) {
        self.now += self.rng.below(50) as i64;
        let n = self.replicas.len();
        match self.rng.below(20) {
            0..=2 if *events_left > 0 => {
                let r = self.rng.below(n as u64) as usize;
                let now = self.now;
                let bytes = self.replicas[r].create(*events_left, now);
                self.created.insert(Event::decode(&bytes).unwrap().id());
                *events_left -= 1;
                self.push_local(r, None, &[bytes]);
            }
            3 => {
                // A connection breaks: whatever was in flight is lost.
                if !self.conns.is_empty() {
                    let k = self.rng.below(self.conns.len() as u64) as usize;
                    self.conns.swap_remove(k);
                }
            }
            4 | 5 => {
                let a = self.rng.below(n as u64) as usize;
                let b = self.rng.below(n as u64) as usize;
                if a != b {
                    self.connect(a, b);
                }
            }
            _ => {
                if !self.conns.is_empty() {
                    let k = self.rng.below(self.conns.len() as u64) as usize;
                    self.deliver(k);
                }
            }
        }
    }

    /// Heals every partition and runs until nothing is in flight.
    fn settle(&mut self) {
        self.conns.clear();
        let n = self.replicas.len();
        // A chain of links suffices: any holder relays.
        for i in 1..n {
            self.connect(i - 1, i);
        }
        let mut budget = 1_000_000;
        while budget > 0 {
            budget -= 1;
            let busy: Vec<usize> = (0..self.conns.len())
                .filter(|k| !self.conns[*k].to_a.is_empty() || !self.conns[*k].to_b.is_empty())
                .collect();
            if busy.is_empty() {
                break;
            }
            let k = busy[self.rng.below(busy.len() as u64) as usize];
            self.deliver(k);
        }
        assert!(budget > 0, "sync did not settle");
    }
}

fn run(seed: u64, replicas: usize, events: u32) -> u64 {
    let mut sim = Sim {
        replicas: (0..replicas).map(|i| Replica::new(i as u8 + 1)).collect(),
        conns: Vec::new(),
        rng: Rng(seed),
        now: 1_000,
        frames: 0,
        created: BTreeSet::new(),
    };
    let mut left = events;
    for _ in 0..events * 20 {
        sim.step(&mut left);
    }
    while left > 0 {
        sim.step(&mut left);
    }
    sim.settle();
    let want_order = sim.replicas[0].dag.display_order();
    for (i, r) in sim.replicas.iter().enumerate() {
        let ids: BTreeSet<EventId> = r.dag.ids().copied().collect();
        assert_eq!(
            ids, sim.created,
            "seed {seed}: replica {i} lost or invented events"
        );
        assert_eq!(
            r.dag.pending_len(),
            0,
            "seed {seed}: replica {i} still waits for parents"
        );
        assert_eq!(
            r.dag.display_order(),
            want_order,
            "seed {seed}: replica {i} shows another order"
        );
    }
    sim.frames
}

#[test]
fn replicas_converge_under_breaks_and_partitions_for_many_seeds() {
    let mut frames = 0;
    for seed in 0..300 {
        frames += run(seed, 3 + (seed % 3) as usize, 25);
    }
    assert!(frames > 0);
}

#[test]
fn a_larger_cluster_converges() {
    for seed in 1000..1005 {
        run(seed, 6, 120);
    }
}

/// Counts how often the session asks for every item of the log.
struct Counting<'a> {
    inner: &'a Replica,
    items: std::cell::Cell<usize>,
}

impl View for Counting<'_> {
    fn shared_logs(&self, a: AccountId, d: DeviceId) -> Vec<LogId> {
        self.inner.shared_logs(a, d)
    }
    fn entitled(&self, a: AccountId, d: DeviceId, log: &LogId) -> bool {
        self.inner.entitled(a, d, log)
    }
    fn device_active(&self, a: AccountId, d: DeviceId) -> bool {
        self.inner.device_active(a, d)
    }
    fn heads(&self, log: &LogId) -> Vec<EventId> {
        self.inner.heads(log)
    }
    fn not_below(&self, log: &LogId, known: &[EventId]) -> Vec<EventId> {
        self.inner.not_below(log, known)
    }
    fn has(&self, log: &LogId, id: &EventId) -> bool {
        self.inner.has(log, id)
    }
    fn items(&self, log: &LogId) -> Vec<(u64, EventId)> {
        self.items.set(self.items.get() + 1);
        self.inner.items(log)
    }
}

/// A peer sending many small reconciliation frames costs the listener one
/// walk of the log per round, not one per frame (each frame used to build
/// the whole log's negentropy storage again, under the node lock).
#[test]
fn reconciliation_frames_reuse_one_storage_per_round() {
    let mut r = Replica::new(1);
    for n in 0..500 {
        r.create(n, 1_000 + i64::from(n));
    }
    let view = Counting {
        inner: &r,
        items: std::cell::Cell::new(0),
    };
    let (mut listener, _) = Session::new(
        Role::Listener,
        AccountId::from_bytes([1; 32]),
        DeviceId::from_bytes([9; 32]),
    );
    listener
        .on_msg(
            Msg::Hello {
                version: node_core::sync::SYNC_VERSION,
                account: AccountId::from_bytes([2; 32]),
            },
            &view,
        )
        .unwrap();
    let mut storage = negentropy::NegentropyStorageVector::new();
    storage
        .insert(1, negentropy::Id::from_byte_array([7; 32]))
        .unwrap();
    storage.seal().unwrap();
    let mut neg = negentropy::Negentropy::owned(storage, 60_000).unwrap();
    let first = neg.initiate().unwrap();
    for _ in 0..50 {
        listener
            .on_msg(
                Msg::Recon {
                    log: LOG,
                    recon: first.clone(),
                },
                &view,
            )
            .unwrap();
    }
    assert_eq!(view.items.get(), 1, "the log was walked once per frame");
    // A new round (the dialer says it is done) builds it again.
    listener.on_msg(Msg::Synced { log: LOG }, &view).unwrap();
    listener
        .on_msg(
            Msg::Recon {
                log: LOG,
                recon: first,
            },
            &view,
        )
        .unwrap();
    assert_eq!(view.items.get(), 2);
}

/// Empty logs shared with the peer, more of them as time goes on.
struct Grows {
    logs: std::cell::RefCell<Vec<LogId>>,
}

impl View for Grows {
    fn shared_logs(&self, _: AccountId, _: DeviceId) -> Vec<LogId> {
        self.logs.borrow().clone()
    }
    fn entitled(&self, _: AccountId, _: DeviceId, log: &LogId) -> bool {
        self.logs.borrow().contains(log)
    }
    fn device_active(&self, _: AccountId, _: DeviceId) -> bool {
        true
    }
    fn heads(&self, _: &LogId) -> Vec<EventId> {
        vec![]
    }
    fn not_below(&self, _: &LogId, _: &[EventId]) -> Vec<EventId> {
        vec![]
    }
    fn has(&self, _: &LogId, _: &EventId) -> bool {
        false
    }
    fn items(&self, _: &LogId) -> Vec<(u64, EventId)> {
        vec![]
    }
}

/// The logs a dialer's actions begin; each is answered `Same` at once
/// (the peer holds the same), so the round ends.
fn begun_and_answered(s: &mut Session, actions: Vec<Action>, view: &Grows) -> Vec<LogId> {
    let mut begun = Vec::new();
    let mut queue = VecDeque::from(actions);
    while let Some(a) = queue.pop_front() {
        if let Action::Send(Msg::Begin { log, .. }) = a {
            begun.push(log);
            queue.extend(s.on_msg(Msg::Same { log }, view).unwrap());
        }
    }
    begun.sort();
    begun
}

/// When what is shared with a peer grows (a room member followed, a room
/// held), the dialer begins the new logs and those where events were
/// refused since, not every shared log: in a room of 100 forming, each
/// member followed brought a round of all 100 members' logs on every link.
/// A whole round (the minute's, or one asked for) still begins them all.
#[test]
fn a_round_after_sharing_grew_begins_only_the_new_and_refused_logs() {
    let log = |i: u8| LogId::from_bytes([i; 32]);
    let view = Grows {
        logs: std::cell::RefCell::new((1..=50).map(log).collect()),
    };
    let (mut dialer, _) = Session::new(
        Role::Dialer,
        AccountId::from_bytes([1; 32]),
        DeviceId::from_bytes([9; 32]),
    );
    let hello = Msg::Hello {
        version: node_core::sync::SYNC_VERSION,
        account: AccountId::from_bytes([2; 32]),
    };
    let first = dialer.on_msg(hello, &view).unwrap();
    assert_eq!(begun_and_answered(&mut dialer, first, &view).len(), 50);
    assert!(dialer.is_live());

    // Nothing new: nothing begun.
    assert!(dialer.extend(&view).is_empty());
    // One log more: only it.
    view.logs.borrow_mut().push(log(60));
    let again = dialer.extend(&view);
    assert_eq!(begun_and_answered(&mut dialer, again, &view), vec![log(60)]);
    // An event of log 7 refused (its author not known yet), then one more
    // log: both.
    let refused = dialer.refused(log(7), &[EventId::from_bytes([3; 32])], &view);
    assert!(refused.is_empty());
    view.logs.borrow_mut().push(log(61));
    let again = dialer.extend(&view);
    assert_eq!(
        begun_and_answered(&mut dialer, again, &view),
        vec![log(7), log(61)]
    );
    // A whole round begins every shared log.
    let all = dialer.resync(&view);
    assert_eq!(begun_and_answered(&mut dialer, all, &view).len(), 52);

    // A log no longer shared (a room left), then shared again: begun again.
    view.logs.borrow_mut().retain(|l| *l != log(61));
    assert!(dialer.extend(&view).is_empty());
    view.logs.borrow_mut().push(log(61));
    let again = dialer.extend(&view);
    assert_eq!(begun_and_answered(&mut dialer, again, &view), vec![log(61)]);

    // A `Refuse` for a log this side never began is ignored: it does not
    // make the log live (pushed to, and skipped by the next round).
    view.logs.borrow_mut().push(log(70));
    assert!(
        dialer
            .on_msg(Msg::Refuse { log: log(70) }, &view)
            .unwrap()
            .is_empty()
    );
    assert!(dialer.local_event(log(70), vec![1, 2, 3], &view).is_empty());
    let again = dialer.extend(&view);
    assert_eq!(begun_and_answered(&mut dialer, again, &view), vec![log(70)]);

    // A listener asked to reconcile a log it does not share (a dialer with
    // many heads begins so) refuses it; the link stays.
    let (mut listener, _) = Session::new(
        Role::Listener,
        AccountId::from_bytes([2; 32]),
        DeviceId::from_bytes([8; 32]),
    );
    let hello = Msg::Hello {
        version: node_core::sync::SYNC_VERSION,
        account: AccountId::from_bytes([1; 32]),
    };
    listener.on_msg(hello, &view).unwrap();
    let out = listener
        .on_msg(
            Msg::Recon {
                log: log(99),
                recon: vec![0x61],
            },
            &view,
        )
        .unwrap();
    assert!(matches!(&out[..], [Action::Send(Msg::Refuse { log: l })] if *l == log(99)));
}
