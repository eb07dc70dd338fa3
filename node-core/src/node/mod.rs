//! The `Node` facade: one device's identity, logs and store behind one
//! object. The daemon owns it; nothing else reaches into the store.
//!
//! Not here: transport and the sync driver (the daemon runs them around
//! [`Node::ingest_batch`], [`Node::subscribe`] and the sync `View` this
//! node implements).

mod accounts;
pub mod bridged;
pub mod contacts;
mod cuts;
pub mod delete;
pub mod devices;
pub mod files;
pub mod lan;
pub mod mailbox;
pub mod messages;
pub mod push;
pub mod read;
pub mod requests;
pub mod rooms;
mod sharing;
pub mod trust;
mod view;
pub use sharing::Sharing;
pub use view::{EventReader, Receipts};

use crate::crypto::{SecretBytes, SigningKey};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::identity::entry::{check_name, kind};
use crate::identity::{AccountEntry, AccountLog, AccountState, Card, Members};
use crate::log::{
    Dag, DagConfig, Draft, Event, EventError, LogKind, Offer, Rejection, Rules, Status, Verified,
};
use crate::store::{Passphrase, Profile, ProfileLock, Store, StoreError, StoredEvent};
use crate::wire::to_base32;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use tokio::sync::broadcast;

const META_SEED: &str = "device_seed";
const META_ACCOUNT: &str = "account";
const META_NAME: &str = "device_name";
pub(super) const META_NEXT_SEQ: &str = "next_seq";
const META_LISTEN_PORT: &str = "listen_port";

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event was refused.
    #[error("event refused: {0}")]
    Rejected(#[from] Rejection),
    /// A name is not acceptable.
    #[error("invalid name: {0}")]
    BadName(&'static str),
    /// This device holds no such log (or is not entitled to it).
    #[error("unknown log {0}")]
    UnknownLog(LogId),
    /// A contact card was refused.
    #[error(transparent)]
    Card(#[from] crate::identity::CardError),
    /// The request makes no sense (unknown target, own card, ...).
    #[error("{0}")]
    Invalid(String),
    /// The stored profile is inconsistent.
    #[error("profile is damaged: {0}")]
    Damaged(String),
    /// This device was revoked from its account: its profile is locked.
    #[error("this device was revoked from its account; its profile is locked")]
    Revoked,
}

impl From<EventError> for NodeError {
    fn from(e: EventError) -> Self {
        NodeError::Rejected(e.into())
    }
}

/// The recovery key's secret, shown once at creation.
pub struct RecoveryCode(SecretBytes<32>);

impl RecoveryCode {
    /// The code as base32 in groups of four, for writing down.
    pub fn to_words(&self) -> String {
        let s = to_base32(self.0.as_bytes());
        s.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Reads a code as [`RecoveryCode::to_words`] writes it (case, dashes
    /// and spaces do not matter).
    pub fn parse(words: &str) -> Result<Self, NodeError> {
        let compact: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
            words
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect(),
        );
        let bytes = zeroize::Zeroizing::new(
            crate::wire::from_base32(&compact, "recovery code")
                .map_err(|_| NodeError::Invalid("that is not a recovery code".into()))?,
        );
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| NodeError::Invalid("that is not a recovery code".into()))?;
        Ok(Self(SecretBytes::new(seed)))
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

/// What happened to an offered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored: these events (the offered one and any it released).
    Stored(Vec<EventId>),
    /// Held until these parents arrive.
    Held(Vec<EventId>),
}

/// One device.
pub struct Node {
    profile: Profile,
    _lock: ProfileLock,
    store: Store,
    key: SigningKey,
    account: AccountId,
    name: String,
    protected: bool,
    accounts: accounts::Accounts,
    logs: HashMap<LogId, Dag>,
    contacts: BTreeMap<AccountId, contacts::Contact>,
    next_seq: u64,
    events: broadcast::Sender<LocalEvent>,
    /// Open invite codes: (secret, expiry). Not stored: a restart of the
    /// daemon voids them.
    invites: Vec<(SecretBytes<16>, i64)>,
    /// Known addresses of devices (own and contacts'), kept across restarts.
    device_hints: BTreeMap<DeviceId, Vec<std::net::SocketAddr>>,
    /// The relay each device (own and contacts') was last reachable through.
    device_relays: BTreeMap<DeviceId, String>,
    /// Deletions from the self log, per log.
    deletions: HashMap<LogId, delete::Deletions>,
    /// Introductions received and not yet acted on: (introducer, card URI).
    introduced: Vec<(AccountId, String)>,
    /// Read markers per conversation: (depth, id) of the last event read.
    read_markers: HashMap<LogId, (u64, EventId)>,
    /// File content (one instance: it caches open files and progress).
    files: crate::files::FileStore,
    /// Settings from the self log: name → (entry that set it, value).
    settings: HashMap<String, (contacts::RegisterKey, Vec<u8>)>,
    /// Mailbox grants seen in conversations (ours and contacts').
    grants: mailbox::Grants,
    /// Push grants seen in conversations (ours and contacts' devices').
    push_grants: push::PushGrants,
    /// LAN discovery grants, ours and contacts'.
    lan_grants: lan::LanGrants,
    /// Room logs' rules and resolved state.
    rooms: HashMap<LogId, crate::rooms::RoomLog>,
    /// Rooms held (from the self log): creator and who brought them.
    held_rooms: HashMap<LogId, rooms::HeldRoom>,
    /// Room invitations received and not yet acted on.
    room_invites: Vec<(LogId, rooms::HeldRoom)>,
    /// See [`Node::scope`].
    scope: u64,
    /// Rooms being joined from a link (joined once their log arrives).
    joining: std::collections::BTreeSet<LogId>,
    /// Devices named by those links, to dial until joined.
    join_targets: BTreeMap<DeviceId, LogId>,
    /// Accounts followed because they dialled in for a public room.
    strangers: HashMap<AccountId, usize>,
    /// Accounts whose requests were declined or blocked (self log).
    refused: requests::Refusals,
    /// Held events pushed out of a buffer by the last ingest (a sync
    /// round waiting for them stops waiting).
    evicted: Vec<EventId>,
    /// Hints for devices not known yet (see [`Node::stash_hints`]).
    stashed_hints: BTreeMap<DeviceId, rooms::StashedHints>,
    /// Devices revoked with cuts (see `cuts`).
    distrusted: cuts::Distrusted,
    /// Cuts stored per log: (event, author, body).
    cuts: HashMap<LogId, Vec<(EventId, DeviceId, crate::log::Cut)>>,
    /// The sharing snapshot for [`Node::sharing_key`], once asked for.
    sharing: std::sync::Mutex<Option<Arc<Sharing>>>,
    /// The last published one (see [`Node::watch_sharing`]).
    sharing_tx: tokio::sync::watch::Sender<Arc<Sharing>>,
}

/// What [`Node::assemble`] needs.
struct Parts {
    profile: Profile,
    lock: ProfileLock,
    store: Store,
    key: SigningKey,
    account: AccountId,
    name: String,
    protected: bool,
    next_seq: u64,
}

/// A newly stored event, announced to the sync sessions.
#[derive(Debug, Clone)]
pub struct LocalEvent {
    /// Its log.
    pub log: LogId,
    /// Its id.
    pub id: EventId,
    /// Wire form.
    pub bytes: Arc<Vec<u8>>,
    /// The device it came from (not pushed back there); `None` if made here.
    pub from: Option<DeviceId>,
}

/// How many new-event announcements a slow session may lag behind before it
/// falls back to reconciliation.
const EVENT_CHANNEL: usize = 4096;

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("account", &self.account)
            .field("device", &self.device())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Makes a new device and a new account in an empty profile folder.
    pub async fn create(
        profile: Profile,
        name: &str,
        passphrase: Option<&Passphrase>,
        with_recovery: bool,
        now: i64,
    ) -> Result<(Node, Option<RecoveryCode>), NodeError> {
        check_name(name).map_err(NodeError::BadName)?;
        let key = SigningKey::generate();
        let recovery_key = with_recovery.then(SigningKey::generate);
        let genesis = Event::sign(
            &key,
            Draft {
                log: None,
                log_kind: LogKind::Account,
                seq: 1,
                prev: None,
                parents: vec![],
                time: now,
                kind: kind::GENESIS,
                body: AccountEntry::Genesis {
                    account_name: name.to_owned(),
                    device_name: name.to_owned(),
                    recovery: recovery_key.as_ref().map(|k| k.verifying_key()),
                }
                .encode(),
            },
        );
        let account = AccountId::from_bytes(*genesis.id().as_bytes());
        let mut node = Node::new_profile(profile, name, passphrase, key, account, 2).await?;
        node.ingest_event(genesis, now, None).await?;
        Ok((node, recovery_key.map(|k| RecoveryCode(k.seed()))))
    }

    /// Opens an existing profile.
    pub async fn open(
        profile: Profile,
        passphrase: Option<&Passphrase>,
    ) -> Result<Node, NodeError> {
        profile.check().map_err(StoreError::from)?;
        let lock = profile.lock().map_err(StoreError::from)?;
        let protected = Store::is_protected(&profile)?;
        let store = Store::open(&profile, passphrase).await?;
        let seed = meta_array::<32>(&store, META_SEED).await?;
        let key = SigningKey::from_seed(&SecretBytes::new(seed));
        let account = AccountId::from_bytes(meta_array(&store, META_ACCOUNT).await?);
        let name = String::from_utf8(meta(&store, META_NAME).await?)
            .map_err(|_| NodeError::Damaged("device name is not UTF-8".into()))?;
        let next_seq = u64::from_be_bytes(meta_array(&store, META_NEXT_SEQ).await?);
        let mut node = Node::assemble(Parts {
            profile,
            lock,
            store,
            key,
            account,
            name,
            protected,
            next_seq,
        });
        node.load().await?;
        node.device_hints = devices::decode_hints(
            &node
                .store
                .meta(devices::META_DEVICE_HINTS)
                .await?
                .unwrap_or_default(),
        );
        node.device_relays = devices::decode_relays(
            &node
                .store
                .meta(devices::META_DEVICE_RELAYS)
                .await?
                .unwrap_or_default(),
        );
        if node.is_revoked() {
            node.close().await;
            return Err(NodeError::Revoked);
        }
        Ok(node)
    }

    /// Makes a new profile's folder and store, records the device's
    /// identity in it and assembles the node (nothing in its logs yet).
    pub(super) async fn new_profile(
        profile: Profile,
        name: &str,
        passphrase: Option<&Passphrase>,
        key: SigningKey,
        account: AccountId,
        next_seq: u64,
    ) -> Result<Node, NodeError> {
        profile.create_dir().map_err(StoreError::from)?;
        let lock = profile.lock().map_err(StoreError::from)?;
        let store = Store::create(&profile, passphrase).await?;
        let seed = key.seed();
        store
            .set_meta(&[
                (META_SEED, seed.as_bytes()),
                (META_ACCOUNT, account.as_bytes()),
                (META_NAME, name.as_bytes()),
                (META_NEXT_SEQ, &next_seq.to_be_bytes()),
            ])
            .await?;
        Ok(Node::assemble(Parts {
            profile,
            lock,
            store,
            key,
            account,
            name: name.to_owned(),
            protected: passphrase.is_some(),
            next_seq,
        }))
    }

    /// A node with its own account and self log registered, nothing loaded.
    fn assemble(p: Parts) -> Node {
        let files = crate::files::FileStore::new(p.profile.dir(), p.store.clone());
        let mut node = Node {
            profile: p.profile,
            _lock: p.lock,
            store: p.store,
            key: p.key,
            account: p.account,
            name: p.name,
            protected: p.protected,
            accounts: accounts::Accounts::new(BTreeMap::from([(
                p.account,
                AccountLog::new(p.account),
            )])),
            logs: HashMap::new(),
            contacts: BTreeMap::new(),
            next_seq: p.next_seq,
            events: broadcast::channel(EVENT_CHANNEL).0,
            invites: Vec::new(),
            device_hints: BTreeMap::new(),
            deletions: HashMap::new(),
            introduced: Vec::new(),
            read_markers: HashMap::new(),
            files,
            settings: HashMap::new(),
            grants: Default::default(),
            push_grants: Default::default(),
            lan_grants: Default::default(),
            device_relays: Default::default(),
            rooms: HashMap::new(),
            held_rooms: HashMap::new(),
            room_invites: Vec::new(),
            scope: 0,
            joining: Default::default(),
            join_targets: Default::default(),
            strangers: HashMap::new(),
            refused: HashMap::new(),
            evicted: Vec::new(),
            stashed_hints: BTreeMap::new(),
            distrusted: Default::default(),
            cuts: HashMap::new(),
            sharing: std::sync::Mutex::new(None),
            sharing_tx: tokio::sync::watch::channel(Arc::new(Sharing::empty(p.account))).0,
        };
        node.add_log(LogId::account(p.account), LogKind::Account);
        node.add_log(LogId::self_log(p.account), LogKind::SelfLog);
        node
    }

    async fn load(&mut self) -> Result<(), NodeError> {
        // Own account and self log first: the self log names the contacts,
        // whose logs are loaded next.
        self.load_log(LogId::account(self.account)).await?;
        self.load_log(LogId::self_log(self.account)).await?;
        // Room members' account logs are loaded before the rooms; each
        // room's events are read once, for both.
        let rooms: Vec<LogId> = self.rooms.keys().copied().collect();
        let mut room_events = HashMap::new();
        for room in rooms {
            let events = self.store.events(room).await?;
            self.track_named_accounts(events.iter().map(|s| &s.event));
            room_events.insert(room, events);
        }
        let mut others: Vec<LogId> = self
            .logs
            .keys()
            .filter(|l| **l != LogId::account(self.account) && **l != LogId::self_log(self.account))
            .copied()
            .collect();
        // Contacts' account logs before their conversations: reading a
        // conversation's grants needs to know whose devices wrote them.
        // Rooms last: reading their events needs every member's devices.
        others.sort_by_key(|l| {
            (
                self.rooms.contains_key(l),
                self.account_of_log(*l).is_none(),
            )
        });
        for log in others {
            match room_events.remove(&log) {
                Some(events) => self.load_log_from(log, events).await?,
                None => self.load_log(log).await?,
            }
        }
        // Whole-log deletions are resolved against the loaded logs again.
        let logs: Vec<LogId> = self.deletions.keys().copied().collect();
        for log in logs {
            self.note_new_events(log);
        }
        self.enforce_deletions().await?;
        self.settle_all().await?;
        self.restore_joining().await
    }

    async fn load_log(&mut self, log: LogId) -> Result<(), NodeError> {
        let events = self.store.events(log).await?;
        self.load_log_from(log, events).await
    }

    /// [`Node::load_log`] with the log's stored events read already.
    async fn load_log_from(
        &mut self,
        log: LogId,
        events: Vec<StoredEvent>,
    ) -> Result<(), NodeError> {
        let kind = self
            .logs
            .get(&log)
            .map(Dag::kind)
            .ok_or(NodeError::UnknownLog(log))?;
        let mut dag = Dag::new(log, kind, DagConfig::default());
        self.cuts.remove(&log);
        for stored in &events {
            dag.restore(stored.event.id(), stored.info.clone());
            self.index_cut(log, &stored.event);
        }
        self.logs.insert(log, dag);
        if let Some(account) = self.account_of_log(log) {
            let mut alog = AccountLog::new(account);
            for stored in &events {
                alog.insert(stored.event.clone());
            }
            self.accounts.map_mut().insert(account, alog);
        }
        // Rows kept only as structure mean nothing (see `apply_rows`).
        let trusted = |s: &&StoredEvent| s.info.status == Status::Accepted;
        if log == LogId::self_log(self.account) {
            for stored in events.iter().filter(trusted) {
                self.apply_self_entry(&stored.event);
            }
        }
        if kind == LogKind::Room {
            self.restore_room(log, events.iter().map(|s| (&s.event, s.info.status)));
        }
        for stored in events.iter().filter(trusted) {
            if stored.event.header().kind == messages::conversation_kind::MAILBOX_GRANT
                && stored.event.header().log_kind == LogKind::Conversation
            {
                self.apply_grant_entry(log, &stored.event);
            }
            if stored.event.header().kind == messages::conversation_kind::PUSH_GRANT
                && stored.event.header().log_kind == LogKind::Conversation
            {
                self.apply_push_grant_entry(log, &stored.event);
            }
            if stored.event.header().kind == messages::conversation_kind::LAN_GRANT
                && stored.event.header().log_kind == LogKind::Conversation
            {
                self.apply_lan_grant_entry(log, &stored.event);
            }
        }
        self.restore_pending(log).await
    }

    /// The account whose account log `log` is, among those we track.
    fn account_of_log(&self, log: LogId) -> Option<AccountId> {
        let account = AccountId::from_bytes(*log.as_bytes());
        self.accounts.contains_key(&account).then_some(account)
    }

    /// Held events the last [`Node::ingest_verified`] pushed out of its
    /// log's buffer: a sync round waiting for them should stop waiting
    /// (they come again in a later round).
    pub fn take_evicted(&mut self) -> Vec<EventId> {
        std::mem::take(&mut self.evicted)
    }

    /// Puts events that were waiting for parents back into the buffer.
    /// Reads at most what the buffer holds (the newest first); rows it
    /// does not keep are deleted.
    async fn restore_pending(&mut self, log: LogId) -> Result<(), NodeError> {
        let bound = DagConfig::default();
        let rows = self
            .store
            .pending(log, bound.max_pending, bound.max_pending_bytes)
            .await?;
        for (bytes, first_seen) in rows {
            let Ok(event) = Event::decode(&bytes) else {
                continue;
            };
            let mut rules = self.rules_for(log)?;
            if let Some(dag) = self.logs.get_mut(&log) {
                // Still held (or, if its parents came meanwhile, rejected as
                // a duplicate): either way nothing new to store.
                let _ = dag.offer(
                    event,
                    first_seen,
                    &mut rules.as_rules(&mut self.accounts, &mut self.rooms),
                );
            }
        }
        if let Some(dag) = self.logs.get_mut(&log) {
            dag.take_evicted();
            let kept = dag.pending_ids();
            self.store.prune_pending(log, &kept).await?;
        }
        Ok(())
    }

    fn add_log(&mut self, log: LogId, kind: LogKind) {
        self.logs
            .entry(log)
            .or_insert_with(|| Dag::new(log, kind, DagConfig::default()));
    }

    /// Closes the store cleanly.
    pub async fn close(self) {
        self.store.close().await;
    }

    /// The profile folder.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    /// This device's account.
    pub fn account(&self) -> AccountId {
        self.account
    }
    /// This device.
    pub fn device(&self) -> DeviceId {
        self.key.verifying_key().into()
    }
    /// This device's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether the store key is protected by a passphrase.
    pub fn is_protected(&self) -> bool {
        self.protected
    }
    /// The resolved account log.
    pub fn account_state(&self) -> Result<AccountState, NodeError> {
        self.account_log_state(self.account)
    }

    /// The resolved account log of `account` (own or a contact's).
    pub fn account_log_state(&self, account: AccountId) -> Result<AccountState, NodeError> {
        self.accounts
            .get(&account)
            .ok_or(NodeError::UnknownLog(LogId::account(account)))?
            .state()
            .map_err(|e| NodeError::Damaged(e.to_string()))
    }
    /// A log's DAG.
    pub fn log(&self, log: &LogId) -> Option<&Dag> {
        self.logs.get(log)
    }

    /// This account's signed contact card.
    pub fn card(&self, hints: Vec<String>, now: i64) -> Result<String, NodeError> {
        let state = self.account_state()?;
        let card = Card {
            account: self.account,
            name: state.name.clone(),
            signer: self.device(),
            devices: state.active_devices().map(|(d, _)| *d).collect(),
            hints,
            issued: now,
        };
        Ok(Card::sign(&self.key, &card))
    }

    /// A signed name record for `handle`: binding it to this account's card
    /// (with `hints`), or releasing it. It carries the account log, which
    /// proves this device belongs to the account (see `crate::names`).
    pub fn name_record(
        &self,
        handle: &crate::names::Handle,
        release: bool,
        hints: Vec<String>,
        now: i64,
    ) -> Result<Vec<u8>, NodeError> {
        use crate::names::{MAX_RECORD_EVENTS, NameAction, NameRecord};
        let action = if release {
            NameAction::Release
        } else {
            NameAction::Bind {
                card: self.card(hints, now)?,
            }
        };
        let events: Vec<Event> = self
            .accounts
            .get(&self.account)
            .map(|log| log.events().cloned().collect())
            .unwrap_or_default();
        if events.len() > MAX_RECORD_EVENTS {
            return Err(NodeError::Invalid(format!(
                "the account log has {} entries; a name record carries at most {MAX_RECORD_EVENTS}",
                events.len()
            )));
        }
        Ok(NameRecord::sign(
            &self.key,
            handle,
            self.account,
            &action,
            now,
            &events,
        ))
    }

    /// Runs an event received as bytes through the whole pipeline and
    /// stores what it accepts. On error nothing is stored.
    pub async fn ingest(&mut self, bytes: &[u8], now: i64) -> Result<Ingested, NodeError> {
        let event = Event::decode(bytes)?;
        self.ingest_event(event, now, None).await
    }

    /// Ingests many events of one log at once: decoded and verified on
    /// `threads` cores, then checked in order and stored in one
    /// transaction. Returns each event's outcome, in input order. `from` is
    /// the device they came from (they are not announced back to it).
    pub async fn ingest_batch(
        &mut self,
        log: LogId,
        batch: &[Vec<u8>],
        now: i64,
        threads: usize,
        from: Option<DeviceId>,
    ) -> Result<Vec<Result<Ingested, NodeError>>, NodeError> {
        let verified = verify_all(batch, threads.max(1));
        self.ingest_verified(log, verified, now, from).await
    }

    /// [`Node::ingest_batch`] for events decoded and verified already with
    /// [`verify_all`] (e.g. without holding the node while verifying).
    pub async fn ingest_verified(
        &mut self,
        log: LogId,
        verified: Vec<Result<Verified, EventError>>,
        now: i64,
        from: Option<DeviceId>,
    ) -> Result<Vec<Result<Ingested, NodeError>>, NodeError> {
        if self.rooms.contains_key(&log) {
            self.track_named_accounts(
                verified
                    .iter()
                    .filter_map(|v| v.as_ref().ok().map(Verified::event)),
            );
        }
        // Only a device an account log we follow lists gets events held
        // (an unproven peer's must come parents first).
        // Only events whose author is such a device too: made-up author
        // keys would each count as a new author in the buffer's fairness.
        let may_hold = from.is_none_or(|d| self.active_account_of(&d).is_some());
        let mut known_authors: std::collections::HashSet<DeviceId> = verified
            .iter()
            .filter_map(|v| v.as_ref().ok().map(|v| v.event().header().author))
            .collect();
        known_authors.retain(|a| self.active_account_of(a).is_some());
        let mut rules = self.rules_for(log)?;
        let dag = self.logs.get_mut(&log).ok_or(NodeError::UnknownLog(log))?;
        let mut rows = Vec::new();
        let mut held = Vec::new();
        let mut outcomes = Vec::with_capacity(verified.len());
        for v in verified {
            let outcome = match v {
                Err(e) => Err(e.into()),
                Ok(v) if v.event().log_id() != log => {
                    Err(NodeError::UnknownLog(v.event().log_id()))
                }
                Ok(v)
                    if (!may_hold || !known_authors.contains(&v.event().header().author))
                        && !dag.knows(&v.event().id())
                        && !dag.missing(v.event()).is_empty() =>
                {
                    Err(Rejection::NotHeld { id: v.event().id() }.into())
                }
                Ok(v) => {
                    let event = v.event().clone();
                    match dag.offer_verified(
                        v,
                        now,
                        &mut rules.as_rules(&mut self.accounts, &mut self.rooms),
                    ) {
                        Err(e) => Err(e.into()),
                        Ok(Offer::Held { missing }) => {
                            held.push(event);
                            Ok(Ingested::Held(missing))
                        }
                        Ok(Offer::Stored(acc)) => {
                            let ids = acc.iter().map(|a| a.event.id()).collect();
                            rows.extend(acc.into_iter().map(StoredEvent::from));
                            Ok(Ingested::Stored(ids))
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        let evicted = dag.take_evicted();
        // What was pushed out of the buffer may have been held just now.
        held.retain(|e| !evicted.contains(&e.id()));
        for e in &held {
            self.store.hold(e, now).await?;
        }
        self.store.unhold(&evicted).await?;
        self.evicted = evicted;
        let stored: Vec<EventId> = rows.iter().map(|r| r.event.id()).collect();
        self.persist(log, rows, &[], &[], from).await?;
        if self.rooms.contains_key(&log) {
            self.room_receipts(log, &stored).await?;
        }
        self.after_ingest(log, now).await?;
        Ok(outcomes)
    }

    /// What follows new events from elsewhere: a contact's account log may
    /// now show a compromise.
    async fn after_ingest(&mut self, log: LogId, now: i64) -> Result<(), NodeError> {
        if let Some(account) = self.account_of_log(log)
            && account != self.account
        {
            self.check_compromise(account, now).await?;
            if !self.stashed_hints.is_empty() {
                self.place_stashed_hints().await?;
            }
        }
        if !self.introduced.is_empty() {
            self.add_introduced(now).await?;
        }
        if !self.room_invites.is_empty() {
            self.accept_room_invites(now).await?;
        }
        if self.rooms.contains_key(&log) {
            self.join_if_wanted(log, now).await?;
        }
        Ok(())
    }

    async fn ingest_event(
        &mut self,
        event: Event,
        now: i64,
        from: Option<DeviceId>,
    ) -> Result<Ingested, NodeError> {
        let log = event.log_id();
        let mut rules = self.rules_for(log)?;
        let dag = self.logs.get_mut(&log).ok_or(NodeError::UnknownLog(log))?;
        let offer = dag.offer(
            event.clone(),
            now,
            &mut rules.as_rules(&mut self.accounts, &mut self.rooms),
        )?;
        match offer {
            Offer::Held { missing } => {
                let evicted = dag.take_evicted();
                self.store.hold(&event, now).await?;
                self.store.unhold(&evicted).await?;
                Ok(Ingested::Held(missing))
            }
            Offer::Stored(accepted) => {
                let rows: Vec<StoredEvent> = accepted.into_iter().map(StoredEvent::from).collect();
                let stored = self.persist(log, rows, &[], &[], from).await?;
                if let Ingested::Stored(ids) = &stored
                    && self.rooms.contains_key(&log)
                {
                    self.room_receipts(log, ids).await?;
                }
                self.after_ingest(log, now).await?;
                Ok(stored)
            }
        }
    }

    /// Stores accepted rows; if the store fails, the log is reloaded from
    /// disk so memory never runs ahead of what was written. Then applies
    /// what the rows mean and announces them to the sync sessions.
    async fn persist(
        &mut self,
        log: LogId,
        mut rows: Vec<StoredEvent>,
        meta: &[(&str, &[u8])],
        outbox: &[(EventId, LogId, AccountId)],
        from: Option<DeviceId>,
    ) -> Result<Ingested, NodeError> {
        if rows.is_empty() {
            return Ok(Ingested::Stored(vec![]));
        }
        self.strip_deleted(log, &mut rows);
        if let Err(e) = self.store.insert_with_outbox(&rows, meta, outbox).await {
            self.reload(log).await?;
            return Err(e.into());
        }
        self.note_new_events(log);
        if self.rooms.contains_key(&log)
            && rows
                .iter()
                .any(|r| r.event.header().kind != crate::rooms::kind::MESSAGE)
        {
            self.scope += 1;
        }
        self.register_offers(log, &rows).await?;
        self.apply_rows(log, &rows);
        for r in &rows {
            self.index_cut(log, &r.event);
        }
        self.settle_after(log, &rows).await?;
        for r in &rows {
            // No session listening is fine: nothing to push to.
            let _ = self.events.send(LocalEvent {
                log,
                id: r.event.id(),
                bytes: Arc::new(r.event.encode()),
                from,
            });
        }
        self.enforce_deletions().await?;
        Ok(Ingested::Stored(
            rows.iter().map(|r| r.event.id()).collect(),
        ))
    }

    /// What stored rows mean, applied by the [`HANDLERS`] of their log's
    /// family and kind. Rows kept only as structure (a revoked device's
    /// events no cut vouches for) mean nothing.
    fn apply_rows(&mut self, log: LogId, rows: &[StoredEvent]) {
        let (family, whose) = if log == LogId::self_log(self.account) {
            (Family::SelfLog, self.account)
        } else if let Some(contact) = self.contact_of_conversation(log) {
            (Family::Conversation, contact)
        } else {
            return;
        };
        for r in rows.iter().filter(|r| r.info.status == Status::Accepted) {
            let h = r.event.header();
            for handler in HANDLERS
                .iter()
                .filter(|x| x.family == family && x.kind.is_none_or(|k| k == h.kind))
            {
                if handler.by_owner_only && self.account_of_device(&h.author) != Some(whose) {
                    continue;
                }
                (handler.apply)(self, log, whose, &r.event);
            }
        }
    }

    async fn reload(&mut self, log: LogId) -> Result<(), NodeError> {
        self.load_log(log).await
    }

    fn rules_for(&self, log: LogId) -> Result<LogRules, NodeError> {
        if let Some(account) = self.account_of_log(log) {
            return Ok(LogRules::Account(account));
        }
        let own = self.account_state()?;
        // A bridged conversation is written by own devices only, as the
        // self log.
        if log == LogId::self_log(self.account) || self.is_bridged(&log) {
            return Ok(LogRules::Members(
                Members::new(vec![own]).distrusting(self.distrusted.keys().copied().collect()),
            ));
        }
        if self.rooms.contains_key(&log) {
            return Ok(LogRules::Room {
                log,
                members: self.room_members(),
                devices: self.known_devices(),
            });
        }
        if let Some(contact) = self.contact_of_conversation(log) {
            let mut members = vec![own];
            // Until the contact's account log has arrived, its devices
            // cannot write here.
            if let Ok(theirs) = self.account_log_state(contact) {
                members.push(theirs);
            }
            return Ok(LogRules::Members(
                Members::new(members).distrusting(self.distrusted.keys().copied().collect()),
            ));
        }
        Err(NodeError::UnknownLog(log))
    }

    /// Writes a new event by this device on the heads of `log`; it is
    /// queued for delivery to each account in `recipients`.
    pub async fn append_for(
        &mut self,
        log: LogId,
        kind: u16,
        body: Vec<u8>,
        now: i64,
        recipients: &[AccountId],
    ) -> Result<EventId, NodeError> {
        let ids = self
            .append_many(log, kind, vec![body], now, recipients)
            .await?;
        ids.first()
            .copied()
            .ok_or_else(|| NodeError::Damaged("appending stored no event".into()))
    }

    /// Writes several events in a chain on the heads of `log` and stores
    /// them in one transaction (queued for delivery to `recipients`).
    pub async fn append_many(
        &mut self,
        log: LogId,
        kind: u16,
        bodies: Vec<Vec<u8>>,
        now: i64,
        recipients: &[AccountId],
    ) -> Result<Vec<EventId>, NodeError> {
        self.append_citing(log, kind, bodies, now, recipients, &[])
            .await
    }

    /// The parents a new entry of account log `log` cites: its valid
    /// entries no valid entry cites (`AccountLog::frontier`), capped. None
    /// if `log` is not a followed account log or the frontier is empty.
    pub(super) fn account_parents(&self, log: LogId) -> Option<Vec<(EventId, u64)>> {
        let frontier = self.accounts.get(&self.account_of_log(log)?)?.frontier();
        let dag = self.logs.get(&log)?;
        let mut parents: Vec<(EventId, u64)> = frontier
            .iter()
            .filter_map(|id| dag.node(id).map(|n| (*id, n.depth)))
            .collect();
        crate::log::cap_parents(&mut parents, crate::log::MAX_PARENTS);
        (!parents.is_empty()).then_some(parents)
    }

    /// [`Node::append_many`] whose first event also cites `also` (a cut
    /// cites the events it vouches for), in place of the shallowest heads
    /// if there are too many.
    pub(super) async fn append_citing(
        &mut self,
        log: LogId,
        kind: u16,
        bodies: Vec<Vec<u8>>,
        now: i64,
        recipients: &[AccountId],
        also: &[EventId],
    ) -> Result<Vec<EventId>, NodeError> {
        // Checked before any is signed (the usual refusal; any later one
        // reloads the log, below).
        if let Some(b) = bodies
            .iter()
            .find(|b| b.len() > crate::log::event::MAX_BODY)
        {
            return Err(NodeError::Invalid(format!(
                "too large to write: {} bytes, limit {}",
                b.len(),
                crate::log::event::MAX_BODY
            )));
        }
        let mut rules = self.rules_for(log)?;
        let me = self.device();
        let key = &self.key;
        // In an account log, only valid entries are built on.
        let frontier = self.account_parents(log);
        let dag = self.logs.get_mut(&log).ok_or(NodeError::UnknownLog(log))?;
        let mut prev = dag.latest_by(&me);
        // In a room, events held as arrived late are not built on.
        let mut parents: Option<Vec<(EventId, u64)>> = self.rooms.get(&log).map(|r| {
            r.parents_for(
                dag,
                kind,
                bodies.first().map(Vec::as_slice).unwrap_or_default(),
            )
        });
        if frontier.is_some() {
            parents = frontier;
        }
        let extra: Vec<(EventId, u64)> = also
            .iter()
            .filter_map(|id| dag.node(id).map(|n| (*id, n.depth)))
            .collect();
        if !extra.is_empty() {
            let mut first = parents.take().unwrap_or_else(|| dag.heads().collect());
            first.retain(|(id, _)| !extra.iter().any(|(e, _)| e == id));
            crate::log::cap_parents(&mut first, crate::log::MAX_PARENTS - extra.len());
            first.extend(extra);
            parents = Some(first);
        }
        let mut rows = Vec::with_capacity(bodies.len());
        let mut seq = self.next_seq;
        let mut offered = false;
        let outcome: Result<(), NodeError> = 'offer: {
            for body in bodies {
                let event = match Verified::signed(
                    key,
                    Draft {
                        log: Some(log),
                        log_kind: dag.kind(),
                        seq,
                        prev,
                        parents: parents.take().unwrap_or_else(|| dag.heads().collect()),
                        time: now,
                        kind,
                        body,
                    },
                ) {
                    Ok(e) => e,
                    Err(e) => {
                        break 'offer Err(NodeError::Invalid(format!(
                            "cannot write this event: {e}"
                        )));
                    }
                };
                offered = true;
                let accepted = match dag.offer_verified(
                    event,
                    now,
                    &mut rules.as_rules(&mut self.accounts, &mut self.rooms),
                ) {
                    Ok(Offer::Stored(accepted)) => accepted,
                    Ok(_) => {
                        break 'offer Err(NodeError::Damaged(
                            "own event held for missing parents".into(),
                        ));
                    }
                    Err(e) => break 'offer Err(e.into()),
                };
                seq += 1;
                for a in accepted {
                    prev = Some(a.event.id());
                    rows.push(StoredEvent::from(a));
                }
            }
            Ok(())
        };
        if let Err(e) = outcome {
            // Events of this batch already in the DAG were never stored:
            // the log is read again from the store.
            if offered {
                self.reload(log).await?;
            }
            return Err(e);
        }
        self.next_seq = seq;
        let ids: Vec<EventId> = rows.iter().map(|r| r.event.id()).collect();
        let outbox: Vec<(EventId, LogId, AccountId)> = ids
            .iter()
            .flat_map(|id| recipients.iter().map(move |a| (*id, log, *a)))
            .collect();
        let seq_bytes = self.next_seq.to_be_bytes();
        self.persist(log, rows, &[(META_NEXT_SEQ, &seq_bytes)], &outbox, None)
            .await?;
        Ok(ids)
    }

    /// Writes a new event by this device on the heads of `log`.
    pub async fn append(
        &mut self,
        log: LogId,
        kind: u16,
        body: Vec<u8>,
        now: i64,
    ) -> Result<EventId, NodeError> {
        self.append_for(log, kind, body, now, &[]).await
    }

    /// Binds this device's link endpoint (keyed by the device key).
    pub async fn bind_transport(
        &self,
        listen: &[std::net::SocketAddr],
    ) -> Result<crate::transport::Transport, crate::transport::TransportError> {
        crate::transport::Transport::bind(&self.key, listen).await
    }

    /// The port the transport last bound, kept so that cards and peers'
    /// hints stay valid across restarts.
    pub async fn saved_listen_port(&self) -> Option<u16> {
        let bytes = self.store.meta(META_LISTEN_PORT).await.ok()??;
        Some(u16::from_be_bytes(bytes.try_into().ok()?))
    }

    /// Remembers the port the transport bound.
    pub async fn save_listen_port(&self, port: u16) -> Result<(), NodeError> {
        Ok(self
            .store
            .set_meta(&[(META_LISTEN_PORT, &port.to_be_bytes())])
            .await?)
    }

    /// When this node's writes are on the disk (group commit): what must
    /// not leave the device before its write is durable waits on this.
    pub fn durability(&self) -> crate::store::Durability {
        self.store.durability().clone()
    }

    /// New stored events, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<LocalEvent> {
        self.events.subscribe()
    }
}

/// Which logs a [`Handler`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// This account's self log (the owner is this account).
    SelfLog,
    /// A conversation with a contact (the owner is the contact).
    Conversation,
}

/// Where an accepted event takes effect beyond its log: the node's state
/// that follows from it. New event kinds (call records, contact requests)
/// plug in here.
struct Handler {
    family: Family,
    /// The event kind, or every kind.
    kind: Option<u16>,
    /// Only events written by a device of the log's owner (the contact in
    /// a conversation) count.
    by_owner_only: bool,
    /// Applies one event: (node, log, owner account, event).
    apply: fn(&mut Node, LogId, AccountId, &Event),
}

/// Every handler, in the order they run for an event.
const HANDLERS: &[Handler] = &[
    Handler {
        family: Family::SelfLog,
        kind: None,
        by_owner_only: false,
        apply: |node, _, _, event| node.apply_self_entry(event),
    },
    Handler {
        family: Family::Conversation,
        kind: Some(messages::conversation_kind::MAILBOX_GRANT),
        by_owner_only: false,
        apply: |node, log, _, event| node.apply_grant_entry(log, event),
    },
    Handler {
        family: Family::Conversation,
        kind: Some(messages::conversation_kind::PUSH_GRANT),
        by_owner_only: false,
        apply: |node, log, _, event| node.apply_push_grant_entry(log, event),
    },
    Handler {
        family: Family::Conversation,
        kind: Some(messages::conversation_kind::LAN_GRANT),
        by_owner_only: false,
        apply: |node, log, _, event| node.apply_lan_grant_entry(log, event),
    },
    Handler {
        family: Family::Conversation,
        kind: Some(messages::conversation_kind::ROOM_INVITE),
        by_owner_only: true,
        apply: |node, _, contact, event| node.note_room_invite(contact, event),
    },
    Handler {
        family: Family::Conversation,
        kind: Some(messages::conversation_kind::INTRODUCTION),
        by_owner_only: true,
        apply: |node, _, contact, event| {
            if let Some((_, uri, _)) = event.body().and_then(messages::decode_introduction) {
                node.introduced.push((contact, uri));
            }
        },
    },
];

enum LogRules {
    Account(AccountId),
    Members(Members),
    Room {
        log: LogId,
        members: Members,
        devices: Vec<(DeviceId, AccountId)>,
    },
}

/// The rules [`LogRules::as_rules`] lends out for one offer.
enum ActiveRules<'a> {
    Plain(&'a mut dyn Rules),
    Room(rooms::RoomRules<'a>),
}

impl Rules for ActiveRules<'_> {
    fn authorize(&self, event: &Event, dag: &Dag) -> Result<(), String> {
        match self {
            ActiveRules::Plain(r) => r.authorize(event, dag),
            ActiveRules::Room(r) => r.authorize(event, dag),
        }
    }
    fn soft_fail(&self, event: &Event, dag: &Dag) -> bool {
        match self {
            ActiveRules::Plain(r) => r.soft_fail(event, dag),
            ActiveRules::Room(r) => r.soft_fail(event, dag),
        }
    }
    fn accepted(&mut self, event: &Event, status: Status) {
        match self {
            ActiveRules::Plain(r) => r.accepted(event, status),
            ActiveRules::Room(r) => r.accepted(event, status),
        }
    }
}

impl LogRules {
    fn as_rules<'a>(
        &'a mut self,
        accounts: &'a mut accounts::Accounts,
        rooms: &'a mut HashMap<LogId, crate::rooms::RoomLog>,
    ) -> ActiveRules<'a> {
        match self {
            // `rules_for` only names accounts this node tracks. Only here
            // are account logs lent out to change (the device index follows).
            LogRules::Account(a) => ActiveRules::Plain(
                accounts
                    .map_mut()
                    .entry(*a)
                    .or_insert_with(|| AccountLog::new(*a)),
            ),
            LogRules::Members(m) => ActiveRules::Plain(m),
            LogRules::Room {
                log,
                members,
                devices,
            } => {
                let room = rooms.entry(*log).or_default();
                // Once per `rules_for`, not at every offer of a batch.
                for (d, a) in devices.drain(..) {
                    room.set_device(d, a);
                }
                ActiveRules::Room(rooms::RoomRules { members, room })
            }
        }
    }
}

/// Decodes and verifies events on `threads` threads, keeping input order.
/// Needs no node: run it before taking the node for
/// [`Node::ingest_verified`].
pub fn verify_all(batch: &[Vec<u8>], threads: usize) -> Vec<Result<Verified, EventError>> {
    let check = |b: &Vec<u8>| Event::decode(b).and_then(Verified::new);
    if threads == 1 || batch.len() < 64 {
        return batch.iter().map(check).collect();
    }
    let chunk = batch.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

async fn meta(store: &Store, key: &'static str) -> Result<Vec<u8>, NodeError> {
    store
        .meta(key)
        .await?
        .ok_or_else(|| NodeError::Damaged(format!("missing {key}")))
}

async fn meta_array<const N: usize>(
    store: &Store,
    key: &'static str,
) -> Result<[u8; N], NodeError> {
    meta(store, key)
        .await?
        .try_into()
        .map_err(|_| NodeError::Damaged(format!("{key} has the wrong length")))
}
