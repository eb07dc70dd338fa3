//! One sync session between two devices: pure code fed messages, giving
//! back actions for a driver to carry out (send, serve, ingest, record
//! receipts). No I/O, no clock, no store.
//!
//! Flow: both sides send `Hello`. The dialer then syncs each shared log,
//! account logs first, starting with its heads (`Begin`):
//! - equal heads: nothing to do (`Same`);
//! - the listener holds all the dialer's heads: it sends what lies above
//!   them, then `Same` (one round trip);
//! - otherwise it answers with its own heads (`Heads`); if the dialer
//!   holds all of those, it sends what lies above them, then `Synced`;
//! - otherwise (both sides wrote, or too many heads) the dialer
//!   reconciles with negentropy (`Recon`), sends what the listener lacks,
//!   asks (`Want`) for what it lacks itself and, once that has arrived,
//!   says `Synced`.
//!
//! Stored events are acknowledged (`Ack`); while connected, new local
//! events are pushed at once.

use super::message::{MAX_EVENTS, MAX_HEADS, MAX_IDS, Msg, SYNC_VERSION};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Largest negentropy frame we produce.
pub const RECON_FRAME_LIMIT: u64 = 60_000;
/// Most logs a listener keeps a reconciliation storage for at once.
const MAX_ANSWERING: usize = 4;
/// Most logs kept as stale per link (a peer's refused events cannot make
/// it keep more; beyond this a log waits for the next whole round).
const MAX_STALE: usize = 1024;
/// Most event ids one session waits for at once (all logs): a peer that
/// offers more (by claiming parents or items that never come) is dropped.
pub const MAX_NEEDED: usize = 1 << 20;

/// What a session needs to know about the local replica.
pub trait View {
    /// Logs shared with `peer` (a device of `account`), account logs first.
    fn shared_logs(&self, account: AccountId, peer: DeviceId) -> Vec<LogId>;
    /// Whether the peer may receive and write `log`.
    fn entitled(&self, account: AccountId, peer: DeviceId, log: &LogId) -> bool;
    /// Whether the peer device is (still) an active device of `account`.
    fn device_active(&self, account: AccountId, peer: DeviceId) -> bool;
    /// The log's heads, sorted.
    fn heads(&self, log: &LogId) -> Vec<EventId>;
    /// Stored events that are neither in `known` nor below it, parents
    /// first (see [`crate::log::Dag::not_below`]).
    fn not_below(&self, log: &LogId, known: &[EventId]) -> Vec<EventId>;
    /// Every stored event of the log as (depth, id).
    fn items(&self, log: &LogId) -> Vec<(u64, EventId)>;
    /// Whether the event is stored here (through any link).
    fn has(&self, log: &LogId, id: &EventId) -> bool;
    /// Whether `log` is an account log (synced, with the two accounts'
    /// own, before the logs whose authors they prove).
    fn is_account_log(&self, _log: &LogId) -> bool {
        false
    }
    /// Whether `log` is one whose sharing changes over time (a room), so
    /// a peer may still send for it after it stopped being shared.
    fn is_shared_once(&self, _log: &LogId) -> bool {
        false
    }
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
    /// The peer's account holds these heads and everything below them.
    ReceiptsAll {
        /// The log.
        log: LogId,
        /// Heads (ours at the start of the round).
        heads: Vec<EventId>,
    },
    /// The peer gave its address hints.
    Hints(Vec<String>),
    /// The peer says where another device of its account was seen (the
    /// driver keeps it only if that device is in the peer's account).
    DeviceHints {
        /// The device.
        device: DeviceId,
        /// `ip:port` strings.
        addrs: Vec<String>,
    },
    /// The peer offers these new events (see [`Msg::Have`]): ask for those
    /// still missing a moment later.
    Have {
        /// The log.
        log: LogId,
        /// Event ids.
        ids: Vec<EventId>,
    },
}

/// Why a session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// Dialer: logs begun, waiting for `Same`, `Heads` or `Refuse`, with
    /// the heads we sent.
    begun: BTreeMap<LogId, Vec<EventId>>,
    /// Listener: our heads when the dialer began a log (what its `Synced`
    /// vouches for).
    began: HashMap<LogId, Vec<EventId>>,
    /// Dialer: reconciliations in flight.
    recon: HashMap<LogId, Negentropy<'static, NegentropyStorageVector>>,
    /// Dialer: per log, events wanted and not yet stored.
    needed: HashMap<LogId, BTreeSet<EventId>>,
    /// Logs that finished the initial sync: live pushes go to these.
    live: BTreeSet<LogId>,
    /// Dialer: reconcile again once the current round is done.
    resync_wanted: bool,
    /// Dialer: once the current round is done, begin the logs shared since
    /// (what is shared grew during it).
    extend_wanted: bool,
    /// Dialer: the current round begins only logs not live on this link
    /// or [`Session::stale`] (a round after what is shared grew), not
    /// every shared log.
    new_only: bool,
    /// Logs where an event that came on this link was refused (its
    /// author's account log not here yet, say) since the log was last
    /// begun: a round after what is shared grew begins these again.
    stale: BTreeSet<LogId>,
    /// Listener: the negentropy storage answering the dialer's
    /// reconciliation of a log, built once per round (not per frame).
    answering: HashMap<LogId, Negentropy<'static, NegentropyStorageVector>>,
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
    #[must_use = "the session's actions must be carried out"]
    pub fn new(role: Role, me: AccountId, peer: DeviceId) -> (Self, Vec<Action>) {
        let s = Self {
            role,
            me,
            peer,
            peer_account: None,
            phase: Phase::AwaitHello,
            queue: VecDeque::new(),
            begun: BTreeMap::new(),
            began: HashMap::new(),
            recon: HashMap::new(),
            needed: HashMap::new(),
            live: BTreeSet::new(),
            resync_wanted: false,
            extend_wanted: false,
            new_only: false,
            stale: BTreeSet::new(),
            answering: HashMap::new(),
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
                // (A dialer with more than `MAX_HEADS` heads begins with
                // `Recon`: refused alike, rather than the link closed.)
                Msg::Recon { log, .. } if self.role == Role::Listener => {
                    Ok(vec![Action::Send(Msg::Refuse { log })])
                }
                Msg::Refuse { log } => Ok(self.on_refuse(log, view)),
                // Room membership changes while events are in flight: what
                // a removed member's device still pushes is dropped, the
                // link stays.
                Msg::Events { .. } | Msg::Ack { .. } | Msg::Synced { .. } | Msg::Have { .. }
                    if view.is_shared_once(&log) =>
                {
                    Ok(vec![])
                }
                _ => Err(SyncError::NotEntitled(format!(
                    "log {log} is not shared with this peer"
                ))),
            };
        }
        match msg {
            Msg::Hello { .. } => Err(protocol("second hello")),
            Msg::Begin { log, heads } => self.on_begin(log, &heads, view),
            Msg::Heads { log, heads } => self.on_heads(log, heads, view),
            Msg::Recon { log, recon } => self.on_recon(log, &recon, view),
            Msg::Same { log } => self.on_same(log, view),
            Msg::Refuse { log } => Ok(self.on_refuse(log, view)),
            Msg::Events { log, events } => Ok(vec![Action::Ingest { log, events }]),
            Msg::Want { log, ids } => Ok(vec![Action::Serve { log, ids }]),
            Msg::Ack { log, ids } => Ok(vec![Action::Receipts { log, ids }]),
            Msg::Synced { log } => self.on_synced(log),
            Msg::Hints { addrs } => Ok(vec![Action::Hints(addrs)]),
            Msg::DeviceHints { device, addrs } => Ok(vec![Action::DeviceHints { device, addrs }]),
            Msg::Have { log, ids } => Ok(vec![Action::Have { log, ids }]),
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
            .filter(|l| is_account_log(account, self.me)(l) || view.is_account_log(l))
            .filter(|l| self.wanted_in_round(l))
            .collect();
        self.begin_next(view)
    }

    /// Dialer: starts every queued log of the current phase.
    fn begin_next(&mut self, view: &dyn View) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(log) = self.queue.pop_front() {
            // Events made from now on are pushed; older ones come through
            // this round.
            self.live.insert(log);
            self.stale.remove(&log);
            let heads = view.heads(&log);
            if heads.len() <= MAX_HEADS {
                self.begun.insert(log, heads.clone());
                out.push(Action::Send(Msg::Begin { log, heads }));
            } else {
                out.extend(self.reconcile(log, view));
            }
        }
        out.extend(self.advance(view));
        out
    }

    /// Dialer: starts a negentropy reconciliation of `log`.
    fn reconcile(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        let Some(mut neg) = negentropy_for(view, &log) else {
            return vec![];
        };
        let Ok(recon) = neg.initiate() else {
            return vec![];
        };
        self.recon.insert(log, neg);
        vec![Action::Send(Msg::Recon { log, recon })]
    }

    /// Dialer: whether the current round begins `log` (every shared log,
    /// or in a round after what is shared grew, those new to this link or
    /// stale).
    fn wanted_in_round(&self, log: &LogId) -> bool {
        !self.new_only || !self.live.contains(log) || self.stale.contains(log)
    }

    /// Dialer: moves to the next phase once the current one is done.
    fn advance(&mut self, view: &dyn View) -> Vec<Action> {
        if self.role != Role::Dialer
            || !self.recon.is_empty()
            || !self.begun.is_empty()
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
                    .filter(|l| !is_account_log(account, self.me)(l) && !view.is_account_log(l))
                    .filter(|l| self.wanted_in_round(l))
                    .collect();
                self.begin_next(view)
            }
            Phase::Logs => {
                self.phase = Phase::Live;
                self.new_only = false;
                if std::mem::take(&mut self.resync_wanted) {
                    self.extend_wanted = false;
                    return self.resync(view);
                }
                if std::mem::take(&mut self.extend_wanted) {
                    return self.extend(view);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    fn on_begin(
        &mut self,
        log: LogId,
        theirs: &[EventId],
        view: &dyn View,
    ) -> Result<Vec<Action>, SyncError> {
        if self.role != Role::Listener {
            return Err(protocol("only the dialer begins"));
        }
        self.answering.remove(&log);
        self.live.insert(log);
        let mine = view.heads(&log);
        let mut theirs = theirs.to_vec();
        theirs.sort();
        theirs.dedup();
        if theirs == mine {
            return Ok(vec![
                Action::Send(Msg::Same { log }),
                Action::ReceiptsAll { log, heads: mine },
            ]);
        }
        if theirs.iter().all(|id| view.has(&log, id)) {
            // The dialer holds a part of what we hold: send the rest.
            let mut out = serve(log, view.not_below(&log, &theirs));
            out.push(Action::Send(Msg::Same { log }));
            return Ok(out);
        }
        self.began.insert(log, mine.clone());
        let heads = (mine.len() <= MAX_HEADS).then_some(mine);
        Ok(vec![Action::Send(Msg::Heads { log, heads })])
    }

    /// Dialer: the listener lacks some of our heads and told us its own.
    fn on_heads(
        &mut self,
        log: LogId,
        theirs: Option<Vec<EventId>>,
        view: &dyn View,
    ) -> Result<Vec<Action>, SyncError> {
        if self.role != Role::Dialer || self.begun.remove(&log).is_none() {
            return Err(protocol("unexpected heads"));
        }
        match theirs {
            Some(theirs) if theirs.iter().all(|id| view.has(&log, id)) => {
                // The listener holds a part of what we hold: send the rest.
                let mut out = serve(log, view.not_below(&log, &theirs));
                out.push(Action::Send(Msg::Synced { log }));
                out.extend(self.finish_log(log, view));
                Ok(out)
            }
            _ => {
                let out = self.reconcile(log, view);
                if out.is_empty() {
                    return Ok(self.finish_log(log, view));
                }
                Ok(out)
            }
        }
    }

    fn on_same(&mut self, log: LogId, view: &dyn View) -> Result<Vec<Action>, SyncError> {
        let Some(heads) = self.begun.get(&log).filter(|_| self.role == Role::Dialer) else {
            return Err(protocol("unexpected same"));
        };
        let mut out = vec![Action::ReceiptsAll {
            log,
            heads: heads.clone(),
        }];
        out.extend(self.finish_log(log, view));
        Ok(out)
    }

    fn on_recon(
        &mut self,
        log: LogId,
        recon: &[u8],
        view: &dyn View,
    ) -> Result<Vec<Action>, SyncError> {
        match self.role {
            Role::Listener => {
                self.live.insert(log);
                // A dialer with many heads starts here rather than with `Begin`.
                self.began.entry(log).or_insert_with(|| view.heads(&log));
                // Stateless on this side: one storage answers the round's
                // frames (rebuilding it per frame let small frames cost a
                // walk of the whole log each).
                // Bounded: storages for a few logs at once per link.
                if !self.answering.contains_key(&log) && self.answering.len() >= MAX_ANSWERING {
                    self.answering.clear();
                }
                let neg = match self.answering.entry(log) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(
                        negentropy_for(view, &log).ok_or_else(|| protocol("cannot reconcile"))?,
                    ),
                };
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
                    out.extend(serve(log, have.iter().map(to_event_id).collect()));
                }
                if !need.is_empty() {
                    let ids: Vec<EventId> = need.iter().map(to_event_id).collect();
                    self.need(log, &ids)?;
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

    /// Dialer: the listener does not share a log this round began. A
    /// `Refuse` for a log not begun is ignored (it made the log live on
    /// this link: pushed to a peer that refused it, and skipped by the
    /// rounds after what is shared grew).
    fn on_refuse(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        if self.begun.contains_key(&log) || self.recon.contains_key(&log) {
            self.finish_log(log, view)
        } else {
            vec![]
        }
    }

    fn finish_log(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        self.begun.remove(&log);
        self.recon.remove(&log);
        self.needed.remove(&log);
        self.live.insert(log);
        self.advance(view)
    }

    /// Dialer: once a log's wanted events are all stored, tell the peer.
    fn maybe_synced(&mut self, log: LogId, view: &dyn View) -> Vec<Action> {
        if self.recon.contains_key(&log)
            || self.begun.contains_key(&log)
            || self.needed.get(&log).is_some_and(|n| !n.is_empty())
        {
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
        self.answering.remove(&log);
        self.live.insert(log);
        Ok(match self.began.remove(&log) {
            Some(heads) => vec![Action::ReceiptsAll { log, heads }],
            None => vec![],
        })
    }

    /// Reports what the driver stored from an `Ingest` action: acknowledge
    /// it, ask for missing parents, and move the sync along.
    pub fn ingested(
        &mut self,
        log: LogId,
        stored: Vec<EventId>,
        missing: Vec<EventId>,
        view: &dyn View,
    ) -> Result<Vec<Action>, SyncError> {
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
                self.need(log, &missing)?;
            }
            out.extend(want(log, missing));
        }
        if self.role == Role::Dialer
            && !self.recon.contains_key(&log)
            && self.needed.contains_key(&log)
        {
            out.extend(self.maybe_synced(log, view));
        }
        Ok(out)
    }

    /// Records events this round waits for, within [`MAX_NEEDED`].
    fn need(&mut self, log: LogId, ids: &[EventId]) -> Result<(), SyncError> {
        let waiting: usize = self.needed.values().map(BTreeSet::len).sum();
        if waiting + ids.len() > MAX_NEEDED {
            return Err(protocol(format!(
                "peer makes us wait for over {MAX_NEEDED} events"
            )));
        }
        self.needed
            .entry(log)
            .or_default()
            .extend(ids.iter().copied());
        Ok(())
    }

    /// Received events the node refused (e.g. by an account whose log has
    /// not arrived yet): no longer waited for in this round; the next
    /// round asks again.
    #[must_use = "the session's actions must be carried out"]
    pub fn refused(&mut self, log: LogId, ids: &[EventId], view: &dyn View) -> Vec<Action> {
        if self.role == Role::Dialer && !ids.is_empty() && self.stale.len() < MAX_STALE {
            self.stale.insert(log);
        }
        let Some(needed) = self.needed.get_mut(&log) else {
            return vec![];
        };
        for id in ids {
            needed.remove(id);
        }
        if self.role == Role::Dialer && !self.recon.contains_key(&log) {
            return self.maybe_synced(log, view);
        }
        vec![]
    }

    /// New local events of one log: pushed at once if the log is live on
    /// this link.
    #[must_use = "the session's actions must be carried out"]
    pub fn local_events(&self, log: LogId, events: Vec<Vec<u8>>, view: &dyn View) -> Vec<Action> {
        if events.is_empty() || !self.pushes(log, view) {
            return vec![];
        }
        events_messages(log, events)
            .into_iter()
            .map(Action::Send)
            .collect()
    }

    /// Offers new local events of one log by id ([`Msg::Have`]) under the
    /// same conditions as [`Session::local_events`]: only once the peer
    /// said hello, only for a log live on this link and shared with it.
    #[must_use = "the session's actions must be carried out"]
    pub fn offer(&self, log: LogId, ids: &[EventId], view: &dyn View) -> Vec<Action> {
        if ids.is_empty() || !self.pushes(log, view) {
            return vec![];
        }
        ids.chunks(MAX_IDS)
            .map(|c| {
                Action::Send(Msg::Have {
                    log,
                    ids: c.to_vec(),
                })
            })
            .collect()
    }

    /// Whether new events of `log` go to the peer as they are made: it
    /// said hello, the log is live on this link and shared with it.
    fn pushes(&self, log: LogId, view: &dyn View) -> bool {
        self.peer_account.is_some_and(|account| {
            self.live.contains(&log) && view.entitled(account, self.peer, &log)
        })
    }

    /// One new local event (see [`Session::local_events`]).
    #[must_use = "the session's actions must be carried out"]
    pub fn local_event(&self, log: LogId, event: Vec<u8>, view: &dyn View) -> Vec<Action> {
        self.local_events(log, vec![event], view)
    }

    /// After what is shared with the peer may have grown (a room held, a
    /// member's account followed): if a shared log is not synced on this
    /// link yet, a round of those logs (account logs first) and of the
    /// logs where events were refused since (they may be taken now); else
    /// nothing. A listener asks the dialer for a whole round.
    #[must_use = "the session's actions must be carried out"]
    pub fn extend(&mut self, view: &dyn View) -> Vec<Action> {
        let Some(account) = self.peer_account else {
            return vec![];
        };
        let shared = view.shared_logs(account, self.peer);
        // A log no longer shared (a room left) is begun again once it is
        // shared again.
        self.live.retain(|l| shared.contains(l));
        self.stale.retain(|l| shared.contains(l));
        let grown = shared.iter().any(|l| !self.live.contains(l));
        if !grown {
            return vec![];
        }
        if self.role == Role::Listener {
            return self.resync(view);
        }
        if self.phase != Phase::Live {
            self.extend_wanted = true;
            return self.settle_wants(view);
        }
        // (A round of every shared log for each log newly shared cost a
        // room of 100 forming most of its time: each member followed
        // brought a round of all 100 members' logs on every link.)
        self.new_only = true;
        self.begin_account_logs(account, view)
    }

    /// Re-runs reconciliation of every shared log (periodically, or after
    /// falling behind on pushes). The listener asks the dialer instead; a
    /// dialer busy with a round reconciles again when it is done.
    #[must_use = "the session's actions must be carried out"]
    pub fn resync(&mut self, view: &dyn View) -> Vec<Action> {
        if self.role == Role::Listener {
            return match self.phase {
                Phase::AwaitHello => vec![],
                _ => vec![Action::Send(Msg::Resync)],
            };
        }
        if self.phase != Phase::Live {
            self.resync_wanted = true;
            return self.settle_wants(view);
        }
        match self.peer_account {
            Some(account) => self.begin_account_logs(account, view),
            None => vec![],
        }
    }

    /// Dialer, during a round: wants another link has satisfied meanwhile
    /// no longer block it.
    fn settle_wants(&mut self, view: &dyn View) -> Vec<Action> {
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
        out
    }
}

/// Serve actions for `ids` (parents first), a bounded number each.
fn serve(log: LogId, ids: Vec<EventId>) -> Vec<Action> {
    ids.chunks(MAX_IDS)
        .map(|c| Action::Serve {
            log,
            ids: c.to_vec(),
        })
        .collect()
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
pub fn msg_log(msg: &Msg) -> Option<LogId> {
    match msg {
        Msg::Begin { log, .. }
        | Msg::Heads { log, .. }
        | Msg::Same { log }
        | Msg::Recon { log, .. }
        | Msg::Refuse { log }
        | Msg::Events { log, .. }
        | Msg::Want { log, .. }
        | Msg::Ack { log, .. }
        | Msg::Have { log, .. }
        | Msg::Synced { log } => Some(*log),
        Msg::Hello { .. } | Msg::Hints { .. } | Msg::DeviceHints { .. } | Msg::Resync => None,
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
