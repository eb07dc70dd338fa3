//! One sync session between two devices: pure code fed messages, giving
//! back actions for a driver to carry out (send, serve, ingest, record
//! receipts). No I/O, no clock, no store.
//!
//! Flow: both sides send `Hello`. The dialer reconciles each shared log
//! with negentropy (`Begin`/`Recon`), account logs first; a log whose heads
//! digest matches is skipped (`Same`). It then sends what the listener
//! lacks, asks (`Want`) for what it lacks itself and, once that has
//! arrived, says `Synced`. Stored events are acknowledged (`Ack`); while
//! connected, new local events are pushed at once.

use super::message::{MAX_EVENTS, MAX_IDS, Msg, SYNC_VERSION};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Largest negentropy frame we produce.
pub const RECON_FRAME_LIMIT: u64 = 60_000;

/// What a session needs to know about the local replica.
pub trait View {
    /// Logs shared with `peer` (a device of `account`), account logs first.
    fn shared_logs(&self, account: AccountId, peer: DeviceId) -> Vec<LogId>;
    /// Whether the peer may receive and write `log`.
    fn entitled(&self, account: AccountId, peer: DeviceId, log: &LogId) -> bool;
    /// Whether the peer device is (still) an active device of `account`.
    fn device_active(&self, account: AccountId, peer: DeviceId) -> bool;
    /// A summary of the log's heads.
    fn digest(&self, log: &LogId) -> [u8; 32];
    /// Every stored event of the log as (depth, id).
    fn items(&self, log: &LogId) -> Vec<(u64, EventId)>;
    /// Whether the event is stored here (through any link).
    fn has(&self, log: &LogId, id: &EventId) -> bool;
}

/// Which end of the link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the connection; drives reconciliation.
    Dialer,
    /// Accepted the connection.
    Listener,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message.
    Send(Msg),
    /// Send these events (read from the store, parents first).
    Serve {
        /// The log.
        log: LogId,
        /// Event ids.
        ids: Vec<EventId>,
    },
    /// Run these received events through the pipeline, then report with
    /// [`Session::ingested`].
    Ingest {
        /// The log.
        log: LogId,
        /// Encoded events.
        events: Vec<Vec<u8>>,
    },
    /// The peer's account holds these events.
    Receipts {
        /// The log.
        log: LogId,
        /// Event ids.
        ids: Vec<EventId>,
    },
    /// The peer's account holds every event of this log we hold.
    ReceiptsAll {
        /// The log.
        log: LogId,
    },
    /// The peer gave address hints.
    Hints(Vec<String>),
}

/// Why a session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The peer speaks another protocol version.
    #[error("peer speaks sync version {0}, we speak {SYNC_VERSION}")]
    Version(u16),
    /// The peer broke the protocol.
    #[error("peer misbehaved: {0}")]
    Protocol(String),
    /// The peer is not entitled to talk to us.
    #[error("peer is not entitled: {0}")]
    NotEntitled(String),
}

fn protocol(why: impl Into<String>) -> SyncError {
    SyncError::Protocol(why.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHello,
    AccountLogs,
    Logs,
    Live,
}

/// One side of a sync session.
pub struct Session {
    role: Role,
    me: AccountId,
    peer: DeviceId,
    peer_account: Option<AccountId>,
    phase: Phase,
    /// Dialer: logs still to begin in the current phase.
    queue: VecDeque<LogId>,
    /// Dialer: reconciliations in flight.
    recon: HashMap<LogId, Negentropy<'static, NegentropyStorageVector>>,
    /// Dialer: per log, events wanted and not yet stored.
    needed: HashMap<LogId, BTreeSet<EventId>>,
    /// Logs that finished the initial sync: live pushes go to these.
    live: BTreeSet<LogId>,
    /// Dialer: reconcile again once the current round is done.
    resync_wanted: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session with `peer` (authenticated by the link); returns the
    /// first actions (our `Hello`).
    pub fn new(role: Role, me: AccountId, peer: DeviceId) -> (Self, Vec<Action>) {
        let s = Self {
            role,
            me,
            peer,
            peer_account: None,
            phase: Phase::AwaitHello,
            queue: VecDeque::new(),
            recon: HashMap::new(),
            needed: HashMap::new(),
            live: BTreeSet::new(),
            resync_wanted: false,
        };
        let hello = Msg::Hello {
            version: SYNC_VERSION,
            account: me,
        };
        (s, vec![Action::Send(hello)])
    }

    /// The peer's account, once it said hello.
    pub fn peer_account(&self) -> Option<AccountId> {
        self.peer_account
    }
    /// The peer device.
    pub fn peer(&self) -> DeviceId {
        self.peer
    }
    /// Whether the initial sync of every shared log is done.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Handles one message from the peer.
    pub fn on_msg(&mut self, msg: Msg, view: &dyn View) -> Result<Vec<Action>, SyncError> {
        let Some(account) = self.peer_account else {
            return self.on_hello(msg, view);
        };
        if let Some(log) = msg_log(&msg)
            && !view.entitled(account, self.peer, &log)
        {
            return match msg {
                // A proposal either side does not share is refused, not fatal.
                Msg::Begin { log, .. } => Ok(vec![Action::Send(Msg::Refuse { log })]),
                Msg::Refuse { log } => Ok(self.finish_log(log, view)),
                _ => Err(SyncError::NotEntitled(format!(
                    "log {log} is not shared with this peer"
                ))),
            };
        }
        match msg {
            Msg::Hello { .. } => Err(protocol("second hello")),
            Msg::Begin { log, digest, recon } => self.on_begin(log, digest, &recon, view),
            Msg::Recon { log, recon } => self.on_recon(log, &recon, view),
            Msg::Same { log } => Ok(self.with_receipts_all(log, view)),
            Msg::Refuse { log } => Ok(self.finish_log(log, view)),
            Msg::Events { log, events } => Ok(vec![Action::Ingest { log, events }]),
            Msg::Want { log, ids } => Ok(vec![Action::Serve { log, ids }]),
            Msg::Ack { log, ids } => Ok(vec![Action::Receipts { log, ids }]),
            Msg::Synced { log } => self.on_synced(log),
            Msg::Hints { addrs } => Ok(vec![Action::Hints(addrs)]),
            Msg::Resync => Ok(self.resync(view)),
        }
    }

    fn on_hello(&mut self, msg: Msg, view: &dyn View) -> Result<Vec<Action>, SyncError> {
        let Msg::Hello { version, account } = msg else {
            return Err(protocol("expected hello first"));
        };
        if version != SYNC_VERSION {
            return Err(SyncError::Version(version));
        }
        if view.shared_logs(account, self.peer).is_empty() {
            return Err(SyncError::NotEntitled(format!(
                "account {account} is not a contact"
            )));
        }
        self.peer_account = Some(account);
        self.phase = Phase::AccountLogs;
        if self.role == Role::Listener {
            return Ok(vec![]);
        }
        Ok(self.begin_account_logs(account, view))
    }

    /// Dialer: starts a round with the account logs (the rest follow).
    fn begin_account_logs(&mut self, account: AccountId, view: &dyn View) -> Vec<Action> {
        self.phase = Phase::AccountLogs;
        self.queue = view
            .shared_logs(account, self.peer)
            .into_iter()
            .filter(is_account_log(account, self.me))
            .collect();
        self.begin_next(view)
    }

    /// Dialer: starts every queued log of the current phase.
    fn begin_next(&mut self, view: &dyn View) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(log) = self.queue.pop_front() {
            let mut neg = match negentropy_for(view, &log) {
                Some(n) => n,
                None => continue,
            };
            let Ok(recon) = neg.initiate() else { continue };
            self.recon.insert(log, neg);
            // Events made from now on are pushed; older ones come through
            // the reconciliation.
            self.live.insert(log);
            out.push(Action::Send(Msg::Begin {
                log,
                digest: view.digest(&log),
                recon,
            }));
        }
        out.extend(self.advance(view));
        out
    }

    /// Dialer: moves to the next phase once the current one is done.
    fn advance(&mut self, view: &dyn View) -> Vec<Action> {
        if self.role != Role::Dialer
            || !self.recon.is_empty()
            || self.needed.values().any(|n| !n.is_empty())
        {
            return vec![];
        }
        let Some(account) = self.peer_account else {
            return vec![];
        };
        match self.phase {
            Phase::AccountLogs => {
                self.phase = Phase::Logs;
                self.queue = view
                    .shared_logs(account, self.peer)
                    .into_iter()
                    .filter(|l| !is_account_log(account, self.me)(l))
                    .collect();
                self.begin_next(view)
            }
            Phase::Logs => {
                self.phase = Phase::Live;
                if std::mem::take(&mut self.resync_wanted) {
                    return self.resync(view);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    fn on_begin(
        &mut self,
        log: LogId,
        digest: [u8; 32],
        recon: &[u8],
        view: &dyn View,
    ) -> Result<Vec<Action>, SyncError> {
        if self.role != Role::Listener {
            return Err(protocol("only the dialer begins"));
        }
        self.live.insert(log);
        if digest == view.digest(&log) {
            let mut out = vec![Action::Send(Msg::Same { log })];
            out.push(Action::ReceiptsAll { log });
            return Ok(out);
        }
        let mut neg = negentropy_for(view, &log).ok_or_else(|| protocol("cannot reconcile"))?;
        let reply = neg
            .reconcile(recon)
            .map_err(|e| protocol(format!("bad reconciliation: {e}")))?;
        Ok(vec![Action::Send(Msg::Recon { log, recon: reply })])
    }

    fn on_recon(
        &mut self,
        log: LogId,
        recon: &[u8],
        view: &dyn View,
    ) -> Result<Vec<Action>, SyncError> {
        match self.role {
            Role::Listener => {
                // Stateless on this side: a fresh storage answers each round.
                let mut neg =
                    negentropy_for(view, &log).ok_or_else(|| protocol("cannot reconcile"))?;
                let reply = neg
                    .reconcile(recon)
                    .map_err(|e| protocol(format!("bad reconciliation: {e}")))?;
                Ok(vec![Action::Send(Msg::Recon { log, recon: reply })])
            }
            Role::Dialer => {
                let neg = self
                    .recon
                    .get_mut(&log)
                    .ok_or_else(|| protocol("unexpected reconciliation"))?;
                let (mut have, mut need) = (Vec::new(), Vec::new());
                let next = neg
                    .reconcile_with_ids(recon, &mut have, &mut need)
                    .map_err(|e| protocol(format!("bad reconciliation: {e}")))?;
                let mut out = Vec::new();
                if !have.is_empty() {
                    out.push(Action::Serve {
                        log,
                        ids: have.iter().map(to_event_id).collect(),
                    });
                }
                if !need.is_empty() {
                    let ids: Vec<EventId> = need.iter().map(to_event_id).collect();
                    self.needed
                        .entry(log)
                        .or_default()
                        .extend(ids.iter().copied());
                    out.extend(want(log, ids));
                }
                match next {
                    Some(msg) => out.push(Action::Send(Msg::Recon { log, recon: msg })),
                    None => {
                        self.recon.remove(&log);
                        out.extend(self.maybe_synced(log, view));
                    }
                }
                Ok(out)
            }
        }
    }

    fn with_receipts_all(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        let mut out = vec![Action::ReceiptsAll { log }];
        out.extend(self.finish_log(log, view));
        out
    }

    fn finish_log(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        self.recon.remove(&log);
        self.needed.remove(&log);
        self.live.insert(log);
        self.advance(view)
    }

    /// Dialer: once a log's wanted events are all stored, tell the peer.
    fn maybe_synced(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        if self.recon.contains_key(&log) || self.needed.get(&log).is_some_and(|n| !n.is_empty()) {
            return vec![];
        }
        let mut out = vec![Action::Send(Msg::Synced { log })];
        out.extend(self.finish_log(log, view));
        out
    }

    fn on_synced(&mut self, log: LogId) -> Result<Vec<Action>, SyncError> {
        if self.role != Role::Listener {
            return Err(protocol("only the dialer says synced"));
        }
        self.live.insert(log);
        Ok(vec![Action::ReceiptsAll { log }])
    }

    /// Reports what the driver stored from an `Ingest` action: acknowledge
    /// it, ask for missing parents, and move the sync along.
    pub fn ingested(
        &mut self,
        log: LogId,
        stored: Vec<EventId>,
        missing: Vec<EventId>,
        view: &dyn View,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(needed) = self.needed.get_mut(&log) {
            for id in &stored {
                needed.remove(id);
            }
            // Events that arrived through another link count too.
            needed.retain(|id| !view.has(&log, id));
        }
        for chunk in stored.chunks(MAX_IDS) {
            out.push(Action::Send(Msg::Ack {
                log,
                ids: chunk.to_vec(),
            }));
        }
        if !missing.is_empty() {
            if self.role == Role::Dialer {
                self.needed
                    .entry(log)
                    .or_default()
                    .extend(missing.iter().copied());
            }
            out.extend(want(log, missing));
        }
        if self.role == Role::Dialer
            && !self.recon.contains_key(&log)
            && self.needed.contains_key(&log)
        {
            out.extend(self.maybe_synced(log, view));
        }
        out
    }

    /// New local events of one log: pushed at once if the log is live on
    /// this link.
    pub fn local_events(&self, log: LogId, events: Vec<Vec<u8>>, view: &dyn View) -> Vec<Action> {
        let Some(account) = self.peer_account else {
            return vec![];
        };
        if events.is_empty()
            || !self.live.contains(&log)
            || !view.entitled(account, self.peer, &log)
        {
            return vec![];
        }
        events_messages(log, events)
            .into_iter()
            .map(Action::Send)
            .collect()
    }

    /// One new local event (see [`Session::local_events`]).
    pub fn local_event(&self, log: LogId, event: Vec<u8>, view: &dyn View) -> Vec<Action> {
        self.local_events(log, vec![event], view)
    }

    /// Re-runs reconciliation of every shared log (periodically, or after
    /// falling behind on pushes). The listener asks the dialer instead; a
    /// dialer busy with a round reconciles again when it is done.
    pub fn resync(&mut self, view: &dyn View) -> Vec<Action> {
        if self.role == Role::Listener {
            return match self.phase {
                Phase::AwaitHello => vec![],
                _ => vec![Action::Send(Msg::Resync)],
            };
        }
        if self.phase != Phase::Live {
            self.resync_wanted = true;
            // Wants another link has satisfied meanwhile no longer block.
            let logs: Vec<LogId> = self.needed.keys().copied().collect();
            let mut out = Vec::new();
            for log in logs {
                if let Some(needed) = self.needed.get_mut(&log) {
                    needed.retain(|id| !view.has(&log, id));
                }
                if !self.recon.contains_key(&log) {
                    out.extend(self.maybe_synced(log, view));
                }
            }
            return out;
        }
        match self.peer_account {
            Some(account) => self.begin_account_logs(account, view),
            None => vec![],
        }
    }
}

fn want(log: LogId, ids: Vec<EventId>) -> Vec<Action> {
    ids.chunks(MAX_IDS)
        .map(|c| {
            Action::Send(Msg::Want {
                log,
                ids: c.to_vec(),
            })
        })
        .collect()
}

fn is_account_log(peer: AccountId, me: AccountId) -> impl Fn(&LogId) -> bool {
    move |l| *l == LogId::account(peer) || *l == LogId::account(me)
}

fn to_event_id(id: &Id) -> EventId {
    EventId::from_bytes(*id.as_bytes())
}

fn negentropy_for(
    view: &dyn View,
    log: &LogId,
) -> Option<Negentropy<'static, NegentropyStorageVector>> {
    let items = view.items(log);
    let mut storage = NegentropyStorageVector::with_capacity(items.len());
    for (depth, id) in items {
        storage
            .insert(depth, Id::from_byte_array(*id.as_bytes()))
            .ok()?;
    }
    storage.seal().ok()?;
    Negentropy::owned(storage, RECON_FRAME_LIMIT).ok()
}

/// The log a message is about, if any.
fn msg_log(msg: &Msg) -> Option<LogId> {
    match msg {
        Msg::Begin { log, .. }
        | Msg::Same { log }
        | Msg::Recon { log, .. }
        | Msg::Refuse { log }
        | Msg::Events { log, .. }
        | Msg::Want { log, .. }
        | Msg::Ack { log, .. }
        | Msg::Synced { log } => Some(*log),
        Msg::Hello { .. } | Msg::Hints { .. } | Msg::Resync => None,
    }
}

/// Splits events into messages within the frame and count bounds.
pub fn events_messages(log: LogId, events: Vec<Vec<u8>>) -> Vec<Msg> {
    let budget = super::message::MAX_FRAME - 1024;
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for e in events {
        if !batch.is_empty() && (size + e.len() + 4 > budget || batch.len() == MAX_EVENTS) {
            out.push(Msg::Events {
                log,
                events: std::mem::take(&mut batch),
            });
            size = 0;
        }
        size += e.len() + 4;
        batch.push(e);
    }
    if !batch.is_empty() {
        out.push(Msg::Events { log, events: batch });
    }
    out
}
