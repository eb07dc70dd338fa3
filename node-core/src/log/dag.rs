//! One log's DAG: the validation pipeline, the pending-parents buffer and
//! the display order. Pure code: it is given events and `now`, and says what
//! to store; the store and the network live elsewhere.

use super::event::{Event, EventError, LogKind, Verified};
use crate::id::{DeviceId, EventId, LogId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// How far into the future (relative to when we first saw it) an event's
/// claimed time may reach before it is clamped, in milliseconds.
pub const DEFAULT_TIME_MARGIN_MS: i64 = 5 * 60 * 1000;
/// How many events one log may hold while waiting for their parents.
pub const DEFAULT_MAX_PENDING: usize = 4096;
/// How many bytes (bodies plus the largest header each) one log may hold
/// while waiting for parents.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 16 << 20;

/// Limits of one DAG.
#[derive(Debug, Clone, Copy)]
pub struct DagConfig {
    /// Largest pending-parents buffer, in events.
    pub max_pending: usize,
    /// Largest pending-parents buffer, in bytes (see [`pending_size`]).
    pub max_pending_bytes: usize,
    /// Future-time margin for the effective-time clamp.
    pub time_margin_ms: i64,
}

impl Default for DagConfig {
    fn default() -> Self {
        Self {
            max_pending: DEFAULT_MAX_PENDING,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            time_margin_ms: DEFAULT_TIME_MARGIN_MS,
        }
    }
}

/// Whether an accepted event is shown and built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Valid at its parents and against current state.
    Accepted,
    /// Valid at its parents but not against the current state: stored, not
    /// shown, never built on.
    SoftFailed,
}

/// Why an event was refused. The DAG is unchanged after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes themselves are bad.
    #[error(transparent)]
    Event(#[from] EventError),
    /// We hold this event already.
    #[error("duplicate event {0}")]
    Duplicate(EventId),
    /// The event names another log or log kind.
    #[error("event {id} belongs to another log")]
    WrongLog {
        /// The event.
        id: EventId,
    },
    /// The depth is not one more than the deepest parent's.
    #[error("event {id} claims depth {claimed}, expected {expected}")]
    BadDepth {
        /// The event.
        id: EventId,
        /// What the header says.
        claimed: u64,
        /// What the parents imply.
        expected: u64,
    },
    /// The author's previous event does not fit.
    #[error("event {id} has an invalid previous event: {why}")]
    BadPrev {
        /// The event.
        id: EventId,
        /// What is wrong.
        why: &'static str,
    },
    /// The log's rules do not allow this author or content here.
    #[error("event {id} is not authorised: {why}")]
    Unauthorized {
        /// The event.
        id: EventId,
        /// The rule that refused it.
        why: String,
    },
    /// Parents are missing and the sender is not proven: only events from
    /// devices known to be entitled are held.
    #[error("event {id} waits for parents, and its sender is not proven")]
    NotHeld {
        /// The event.
        id: EventId,
    },
    /// Too many events already wait for parents; try again later.
    #[error("pending-parents buffer full ({max} events)")]
    PendingFull {
        /// The bound.
        max: usize,
    },
}

/// What a log kind's rules say about an event whose parents are present.
pub trait Rules {
    /// Authorisation by the state at the event's parents; `Err` rejects.
    fn authorize(&self, event: &Event, dag: &Dag) -> Result<(), String>;
    /// Check against the current state: `true` soft-fails the event.
    fn soft_fail(&self, _event: &Event, _dag: &Dag) -> bool {
        false
    }
    /// Told of every event the DAG links in, at once, so the rules see
    /// events released from the pending buffer in the same call.
    fn accepted(&mut self, _event: &Event, _status: Status) {}
}

/// Rules that allow every author (for tests and benchmarks of the
/// machinery itself).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Rules for AllowAll {
    fn authorize(&self, _: &Event, _: &Dag) -> Result<(), String> {
        Ok(())
    }
}

/// What the DAG keeps about each stored event.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Parent ids.
    pub parents: Vec<EventId>,
    /// Depth in the DAG.
    pub depth: u64,
    /// Author device.
    pub author: DeviceId,
    /// Author sequence number.
    pub seq: u64,
    /// Claimed time clamped by parents and first sight.
    pub effective_time: i64,
    /// When this device first saw the event.
    pub first_seen: i64,
    /// Shown or soft-failed.
    pub status: Status,
}

/// An event the caller must now store.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The event.
    pub event: Event,
    /// What the DAG recorded for it.
    pub info: NodeInfo,
}

/// The result of offering an event.
#[derive(Debug)]
pub enum Offer {
    /// The event (and any held events it completed) are in, in this order.
    Stored(Vec<Accepted>),
    /// Parents are missing: the event is held until they come.
    Held {
        /// Parents we do not have (fetch these).
        missing: Vec<EventId>,
    },
}

/// A log's DAG.
#[derive(Debug)]
pub struct Dag {
    log: LogId,
    kind: LogKind,
    config: DagConfig,
    nodes: HashMap<EventId, NodeInfo>,
    heads: BTreeSet<EventId>,
    pending: BTreeMap<EventId, (Event, i64)>,
    waiting_on: HashMap<EventId, BTreeSet<EventId>>,
    /// Held events per author, with their bytes (what eviction is fair by).
    pending_by: HashMap<DeviceId, (usize, BTreeSet<(u64, EventId)>)>,
    /// Bytes held (see [`pending_size`]).
    pending_bytes: usize,
    /// Held events pushed out of the buffer since the last
    /// [`Dag::take_evicted`] (their copies at rest go too).
    evicted: Vec<EventId>,
    /// Each author's latest event here: (seq, id).
    latest: HashMap<DeviceId, (u64, EventId)>,
}

impl Dag {
    /// An empty DAG for `log`.
    pub fn new(log: LogId, kind: LogKind, config: DagConfig) -> Self {
        Self {
            log,
            kind,
            config,
            nodes: HashMap::new(),
            heads: BTreeSet::new(),
            pending: BTreeMap::new(),
            waiting_on: HashMap::new(),
            pending_by: HashMap::new(),
            pending_bytes: 0,
            evicted: Vec::new(),
            latest: HashMap::new(),
        }
    }

    /// The log id.
    pub fn log(&self) -> LogId {
        self.log
    }
    /// The log kind.
    pub fn kind(&self) -> LogKind {
        self.kind
    }
    /// Accepted events nothing accepted builds on yet: a new event's parents.
    pub fn heads(&self) -> impl Iterator<Item = (EventId, u64)> + '_ {
        self.heads.iter().map(|id| (*id, self.nodes[id].depth))
    }
    /// What is known of a stored event.
    pub fn node(&self, id: &EventId) -> Option<&NodeInfo> {
        self.nodes.get(id)
    }
    /// Whether the event is stored or held.
    pub fn knows(&self, id: &EventId) -> bool {
        self.nodes.contains_key(id) || self.pending.contains_key(id)
    }
    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Number of events waiting for parents.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
    /// Ids of the events waiting for parents.
    pub fn pending_ids(&self) -> Vec<EventId> {
        self.pending.keys().copied().collect()
    }
    /// Held events pushed out of the buffer since the last call: their
    /// copies at rest are to be deleted too.
    pub fn take_evicted(&mut self) -> Vec<EventId> {
        std::mem::take(&mut self.evicted)
    }
    /// All stored event ids.
    pub fn ids(&self) -> impl Iterator<Item = &EventId> {
        self.nodes.keys()
    }

    /// The stored events that are not `known` or ancestors of them: what a
    /// peer whose heads are `known` lacks, parents first ((depth, id)
    /// order). Ids in `known` that are not stored here are ignored.
    ///
    /// Walks down from both head sets at once, deepest first, and stops
    /// as soon as everything left to visit is below `known`; the cost
    /// follows the size of the difference, not of the log.
    pub fn not_below(&self, known: &[EventId]) -> Vec<EventId> {
        use std::collections::BinaryHeap;
        // Per queued or visited event: whether it is below `known`.
        let mut below: HashMap<EventId, bool> = HashMap::new();
        let mut queue: BinaryHeap<(u64, EventId)> = BinaryHeap::new();
        let mut unknown_queued = 0usize;
        for id in known {
            if let Some(n) = self.nodes.get(id)
                && below.insert(*id, true).is_none()
            {
                queue.push((n.depth, *id));
            }
        }
        for id in &self.heads {
            if below.contains_key(id) {
                continue;
            }
            below.insert(*id, false);
            unknown_queued += 1;
            queue.push((self.nodes[id].depth, *id));
        }
        let mut out = Vec::new();
        while unknown_queued > 0 {
            let Some((_, id)) = queue.pop() else { break };
            // Every child has a greater depth, so this flag is final.
            let is_below = below[&id];
            if !is_below {
                unknown_queued -= 1;
                out.push(id);
            }
            for p in &self.nodes[&id].parents {
                match below.get_mut(p) {
                    Some(flag) => {
                        if is_below && !*flag {
                            *flag = true;
                            unknown_queued -= 1;
                        }
                    }
                    None => {
                        let Some(n) = self.nodes.get(p) else { continue };
                        below.insert(*p, is_below);
                        if !is_below {
                            unknown_queued += 1;
                        }
                        queue.push((n.depth, *p));
                    }
                }
            }
        }
        out.sort_by_key(|id| (self.nodes[id].depth, *id));
        out
    }

    /// Puts back an event read from the store, trusting what was checked
    /// when it was first stored. Parents must be restored first.
    pub fn restore(&mut self, id: EventId, info: NodeInfo) {
        self.link(id, info);
    }

    /// The events by each of `authors` here, in one pass.
    pub fn by_authors(
        &self,
        authors: &std::collections::BTreeSet<DeviceId>,
    ) -> HashMap<DeviceId, Vec<EventId>> {
        let mut out: HashMap<DeviceId, Vec<EventId>> = HashMap::new();
        for (id, n) in &self.nodes {
            if authors.contains(&n.author) {
                out.entry(n.author).or_default().push(*id);
            }
        }
        out
    }

    /// The stored ancestors of any of `ids` (not those themselves), in one
    /// walk.
    pub fn ancestors_of_all(&self, ids: &[EventId]) -> std::collections::HashSet<EventId> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<EventId> = ids
            .iter()
            .filter_map(|id| self.nodes.get(id))
            .flat_map(|n| n.parents.iter().copied())
            .collect();
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p)
                && seen.insert(p)
            {
                stack.extend(n.parents.iter().copied());
            }
        }
        seen
    }

    /// `author`'s events that no stored event cites (whatever their
    /// status): what a cut cites so that it covers all of them.
    pub fn leaves_by(&self, author: &DeviceId) -> Vec<(EventId, u64)> {
        let mut cited: std::collections::HashSet<EventId> = std::collections::HashSet::new();
        for n in self.nodes.values() {
            cited.extend(n.parents.iter().copied());
        }
        self.nodes
            .iter()
            .filter(|(id, n)| n.author == *author && !cited.contains(id))
            .map(|(id, n)| (*id, n.depth))
            .collect()
    }

    /// The authors of events kept only as structure.
    pub fn soft_failed_authors(&self) -> std::collections::BTreeSet<DeviceId> {
        self.nodes
            .values()
            .filter(|n| n.status == Status::SoftFailed)
            .map(|n| n.author)
            .collect()
    }

    /// Runs the whole pipeline on one event. On `Err` nothing changed.
    pub fn offer(
        &mut self,
        event: Event,
        now: i64,
        rules: &mut dyn Rules,
    ) -> Result<Offer, Rejection> {
        self.offer_verified(Verified::new(event)?, now, rules)
    }

    /// [`Dag::offer`] for an event whose signature was checked already
    /// (e.g. on another core).
    pub fn offer_verified(
        &mut self,
        event: Verified,
        now: i64,
        rules: &mut dyn Rules,
    ) -> Result<Offer, Rejection> {
        let event = event.into_inner();
        let id = event.id();
        if self.knows(&id) {
            return Err(Rejection::Duplicate(id));
        }
        self.check_log(&event)?;
        let missing = self.missing(&event);
        if !missing.is_empty() {
            self.hold(event, now, &missing)?;
            return Ok(Offer::Held { missing });
        }
        let first = self.admit(event, now, rules)?;
        let mut stored = vec![first];
        self.release(&mut stored, rules);
        Ok(Offer::Stored(stored))
    }

    /// Parents (and the author's previous event) not stored yet: the event
    /// waits for all of them, so arrival order never changes the outcome.
    pub fn missing(&self, event: &Event) -> Vec<EventId> {
        let h = event.header();
        let mut missing: Vec<EventId> = h
            .parents
            .iter()
            .chain(h.prev.iter())
            .filter(|p| !self.nodes.contains_key(p))
            .copied()
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// Checks an event whose parents are all present, and links it in.
    fn admit(
        &mut self,
        event: Event,
        first_seen: i64,
        rules: &mut dyn Rules,
    ) -> Result<Accepted, Rejection> {
        let info = self.check_linked(&event, first_seen)?;
        rules
            .authorize(&event, self)
            .map_err(|why| Rejection::Unauthorized {
                id: event.id(),
                why,
            })?;
        let status = if rules.soft_fail(&event, self) {
            Status::SoftFailed
        } else {
            Status::Accepted
        };
        let info = NodeInfo { status, ..info };
        self.link(event.id(), info.clone());
        rules.accepted(&event, status);
        Ok(Accepted { event, info })
    }

    fn check_log(&self, event: &Event) -> Result<(), Rejection> {
        let h = event.header();
        let wrong = Rejection::WrongLog { id: event.id() };
        if h.log_kind != self.kind {
            return Err(wrong);
        }
        // Account and room logs are named after their genesis, their only root.
        let genesis_named = matches!(self.kind, LogKind::Account | LogKind::Room);
        match h.log {
            Some(_) if genesis_named && h.parents.is_empty() => Err(wrong),
            Some(log) if log == self.log => Ok(()),
            // A genesis event belongs to the log named after it.
            None if genesis_named && event.log_id() == self.log => Ok(()),
            _ => Err(wrong),
        }
    }

    /// Depth, previous event and effective time, given present parents.
    fn check_linked(&self, event: &Event, first_seen: i64) -> Result<NodeInfo, Rejection> {
        let h = event.header();
        let id = event.id();
        let parents: Vec<&NodeInfo> = h.parents.iter().map(|p| &self.nodes[p]).collect();
        let expected = parents.iter().map(|p| p.depth + 1).max().unwrap_or(0);
        if h.depth != expected {
            return Err(Rejection::BadDepth {
                id,
                claimed: h.depth,
                expected,
            });
        }
        if let Some(prev) = h.prev {
            let bad = |why| Rejection::BadPrev { id, why };
            let p = self.nodes.get(&prev).ok_or(bad("not stored before it"))?;
            if p.author != h.author {
                return Err(bad("written by another author"));
            }
            if p.seq >= h.seq {
                return Err(bad("sequence number does not increase"));
            }
            if p.depth >= h.depth {
                return Err(bad("not deeper than the previous event"));
            }
        }
        let lower = parents
            .iter()
            .map(|p| p.effective_time)
            .max()
            .unwrap_or(i64::MIN);
        let upper = first_seen.saturating_add(self.config.time_margin_ms);
        Ok(NodeInfo {
            parents: h.parents.clone(),
            depth: h.depth,
            author: h.author,
            seq: h.seq,
            effective_time: h.time.min(upper).max(lower),
            first_seen,
            status: Status::Accepted,
        })
    }

    /// The author's latest event in this log (by sequence number).
    pub fn latest_by(&self, author: &DeviceId) -> Option<EventId> {
        self.latest.get(author).map(|(_, id)| *id)
    }

    fn link(&mut self, id: EventId, info: NodeInfo) {
        let newer = self
            .latest
            .get(&info.author)
            .is_none_or(|(seq, _)| *seq < info.seq);
        if newer {
            self.latest.insert(info.author, (info.seq, id));
        }
        if info.status == Status::Accepted {
            for p in &info.parents {
                self.heads.remove(p);
            }
            self.heads.insert(id);
        }
        self.nodes.insert(id, info);
    }

    /// Keeps an event until its parents come. The buffer is bounded in
    /// events and bytes; when full, the author holding the most gives up
    /// its deepest event, and only for a shallower event of its own or for
    /// another author's (ancestors come before descendants, and no author
    /// can push out what others wait for by writing more; fairness counts
    /// bytes, so one large event does not outweigh many small ones).
    fn hold(&mut self, event: Event, now: i64, missing: &[EventId]) -> Result<(), Rejection> {
        let size = pending_size(&event);
        let author = event.header().author;
        let depth = event.header().depth;
        while self.pending.len() >= self.config.max_pending
            || self.pending_bytes + size > self.config.max_pending_bytes
        {
            let full = Rejection::PendingFull {
                max: self.config.max_pending,
            };
            // Fair by bytes: an author may push out another's events only
            // while that one holds more than it would after this event.
            let mine = self.pending_by.get(&author).map_or(0, |(b, _)| *b);
            let Some((biggest, held)) = self
                .pending_by
                .iter()
                .max_by_key(|(d, (bytes, _))| (*bytes, **d))
                .map(|(d, (bytes, _))| (*d, *bytes))
            else {
                return Err(full);
            };
            let victim = if biggest == author || held <= mine + size {
                // The author holds about as much as anyone: only its own
                // deeper events make room.
                match self.pending_by.get(&author).and_then(|(_, s)| s.last()) {
                    Some((d, id)) if *d > depth => *id,
                    _ => return Err(full),
                }
            } else {
                match self.pending_by.get(&biggest).and_then(|(_, s)| s.last()) {
                    Some((_, id)) => *id,
                    None => return Err(full),
                }
            };
            self.unhold(&victim);
            self.evicted.push(victim);
        }
        let id = event.id();
        for m in missing {
            self.waiting_on.entry(*m).or_default().insert(id);
        }
        let entry = self.pending_by.entry(author).or_default();
        entry.0 += size;
        entry.1.insert((depth, id));
        self.pending_bytes += size;
        self.pending.insert(id, (event, now));
        Ok(())
    }

    /// Takes a held event out of the buffer and its indexes.
    fn unhold(&mut self, id: &EventId) -> Option<(Event, i64)> {
        let (event, seen) = self.pending.remove(id)?;
        let h = event.header();
        self.pending_bytes = self.pending_bytes.saturating_sub(pending_size(&event));
        if let Some((bytes, held)) = self.pending_by.get_mut(&h.author) {
            held.remove(&(h.depth, *id));
            *bytes = bytes.saturating_sub(pending_size(&event));
            if held.is_empty() {
                self.pending_by.remove(&h.author);
            }
        }
        for p in h.parents.iter().chain(h.prev.iter()) {
            if let Some(waiters) = self.waiting_on.get_mut(p) {
                waiters.remove(id);
                if waiters.is_empty() {
                    self.waiting_on.remove(p);
                }
            }
        }
        Some((event, seen))
    }

    /// Admits held events whose parents have now all arrived. Held events
    /// that turn out invalid are dropped (they were never stored).
    fn release(&mut self, stored: &mut Vec<Accepted>, rules: &mut dyn Rules) {
        let mut i = 0;
        while i < stored.len() {
            let done = stored[i].event.id();
            i += 1;
            let Some(waiters) = self.waiting_on.remove(&done) else {
                continue;
            };
            for w in waiters {
                let ready = self
                    .pending
                    .get(&w)
                    .is_some_and(|(e, _)| self.missing(e).is_empty());
                if !ready {
                    continue;
                }
                if let Some((event, seen)) = self.unhold(&w)
                    && let Ok(acc) = self.admit(event, seen, rules)
                {
                    stored.push(acc);
                }
            }
        }
    }

    /// The display order: topological, ties by effective time then id.
    /// Soft-failed events are left out.
    pub fn display_order(&self) -> Vec<EventId> {
        let mut indegree: HashMap<EventId, usize> = HashMap::with_capacity(self.nodes.len());
        let mut children: HashMap<EventId, Vec<EventId>> = HashMap::new();
        for (id, n) in &self.nodes {
            indegree.insert(*id, n.parents.len());
            for p in &n.parents {
                children.entry(*p).or_default().push(*id);
            }
        }
        let mut ready: BinaryHeap<Reverse<(i64, EventId)>> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(id, _)| Reverse((self.nodes[id].effective_time, *id)))
            .collect();
        let mut out = Vec::with_capacity(self.nodes.len());
        while let Some(Reverse((_, id))) = ready.pop() {
            if self.nodes[&id].status == Status::Accepted {
                out.push(id);
            }
            for c in children.get(&id).into_iter().flatten() {
                let d = indegree.entry(*c).or_default();
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse((self.nodes[c].effective_time, *c)));
                }
            }
        }
        out
    }
}

/// What a held event counts against the buffer's byte bound: its body and
/// the largest header (headers are bounded by [`super::event::MAX_HEADER`]).
pub fn pending_size(event: &Event) -> usize {
    super::event::MAX_HEADER + event.body().map_or(0, <[u8]>::len)
}
