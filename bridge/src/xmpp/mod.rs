//! The XMPP bridge: one account on an XMPP server, kept logged in.
//!
//! [`start`] logs in once before anything else, so a wrong password, an
//! unreachable server or an untrusted certificate is a clear error and
//! nothing runs. Then a session task owns tokio-xmpp's stanza stream (which
//! binds a resource and resumes with stream management, XEP-0198, where the
//! server offers it) and a reconnector logs in again with backoff (1 s
//! doubling to 60 s) whenever the stream is lost; only a refused login
//! stops it. After every fresh login the session sends its presence, asks
//! for the roster and rejoins its group chats (XEP-0045, with the history
//! since the last message kept).
//!
//! Outgoing messages wait in the session's own queue while it is offline
//! and go out in order once it is up, each with a receipt request
//! (XEP-0184) and the id the daemon chose. At most [`IN_FLIGHT`] stanzas
//! are handed to the stream at once, so the session never blocks on it.
//!
//! Not here: SRV lookups (the server is `--server`, or the JID's domain on
//! port 5222), carbons, message archives (MAM), file transfer, encryption
//! (OMEMO): a bridged conversation is insecure whatever the network offers.

mod login;
pub(crate) mod map;

use crate::{
    Bridge, BridgeError, Contact, Incoming, MAX_FIELD, Network, Outgoing, Password, Status,
};
use login::Target;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::rustls;
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{Id, Lang, Message};
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::muc::muc::History;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::receipts;
use tokio_xmpp::parsers::roster::Roster;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::parsers::{date::DateTime, ns};
use tokio_xmpp::stanzastream::{Connection, Event, StanzaStage, StanzaStream, StreamEvent};

/// Most stanzas handed to the stream and not yet written.
pub const IN_FLIGHT: usize = 64;
/// Most outgoing messages queued while offline; past it `send` says busy.
pub const MAX_QUEUED: usize = 10_000;
/// Most reported events not yet taken by the daemon (the session waits).
pub const EVENTS: usize = 256;
/// The first wait before logging in again; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between logins.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Most group chats one bridge is in.
pub const MAX_GROUPS: usize = 256;
/// Most answers (receipts, IQ replies) waiting to go out; more are dropped.
pub const MAX_CONTROL: usize = 256;
/// Most of our messages remembered for their receipt or error.
pub const MAX_SENT: usize = 10_000;
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);

/// Which account, on which server, trusting which roots.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The account: a bare JID (`user@domain`).
    pub jid: String,
    /// `host:port` of the server; the JID's domain on port 5222 if absent.
    pub server: Option<String>,
    /// Extra trusted certificate authorities (PEM), beside Mozilla's roots:
    /// for a server with its own CA.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// The checked form of a [`Config`].
fn target(config: &Config) -> Result<Target, BridgeError> {
    let jid = BareJid::new(config.jid.trim())
        .map_err(|e| BridgeError::Invalid(format!("{:?} is not a JID: {e}", config.jid)))?;
    if jid.node().is_none() {
        return Err(BridgeError::Invalid(format!(
            "{jid} has no user part (user@domain)"
        )));
    }
    let server = match &config.server {
        Some(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > MAX_FIELD || s.rsplit_once(':').is_none() {
                return Err(BridgeError::Invalid(format!(
                    "--server {s:?}: give HOST:PORT"
                )));
            }
            s.to_owned()
        }
        None => format!("{}:5222", jid.domain()),
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = &config.extra_roots_pem {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| BridgeError::Invalid(format!("the CA file: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| BridgeError::Invalid(format!("the CA file: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(BridgeError::Invalid(
                "the CA file holds no PEM certificate".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BridgeError::Protocol(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Target {
        jid,
        server,
        tls: Arc::new(tls),
    })
}

/// Logs in once and, if that works, keeps the session up. The receiver
/// gets everything the session reports; the session waits while it is
/// full, so keep taking (dropped, reports are lost and the session goes on).
pub async fn start(
    config: &Config,
    password: Password,
) -> Result<(XmppBridge, mpsc::Receiver<Incoming>), BridgeError> {
    let target = target(config)?;
    let first = login::login(&target, password.expose()).await?;
    let account = target.jid.to_string();
    let shared = Arc::new(Shared {
        status: Mutex::new(Status::Connecting),
        contacts: Mutex::new(Vec::new()),
        queued: AtomicUsize::new(0),
    });
    let (events_tx, events_rx) = mpsc::channel(EVENTS);
    let (commands_tx, commands_rx) = mpsc::channel(MAX_QUEUED + 64);
    let (closed_tx, closed_rx) = watch::channel(false);
    let mut reconnector = Reconnector {
        target: target.clone(),
        password,
        first: Some(first),
        backoff: Arc::new(Mutex::new((FIRST_BACKOFF, Some(std::time::Instant::now())))),
        shared: Arc::clone(&shared),
        events: events_tx.clone(),
        closed: closed_rx,
    };
    let stream = StanzaStream::new(Box::new(move |_, slot| reconnector.connect(slot)), 128);
    let nick = target
        .jid
        .node()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let (done_tx, done_rx) = mpsc::channel(IN_FLIGHT * 2);
    let session = Session {
        stream: Some(stream),
        own: target.jid.clone(),
        nick,
        shared: Arc::clone(&shared),
        events: events_tx,
        groups: HashMap::new(),
        online: false,
        queue: VecDeque::new(),
        control: VecDeque::new(),
        sent: HashMap::new(),
        sent_order: VecDeque::new(),
        in_flight: 0,
        done_tx,
        roster_id: String::new(),
        iq_counter: 0,
    };
    tokio::spawn(session.run(commands_rx, done_rx, closed_tx));
    Ok((
        XmppBridge {
            account,
            shared,
            commands: commands_tx,
        },
        events_rx,
    ))
}

/// An address as the bridge writes it (a bare JID with a user part, in
/// its normal form), or why it is not one.
pub fn normalize_address(address: &str) -> Result<String, BridgeError> {
    let jid = BareJid::new(address.trim())
        .map_err(|e| BridgeError::Invalid(format!("{address:?} is not an XMPP address: {e}")))?;
    if jid.node().is_none() {
        return Err(BridgeError::Invalid(format!(
            "{jid} has no user part (user@domain, or room@service for a group)"
        )));
    }
    Ok(jid.to_string())
}

/// A plain tokio-xmpp stanza stream logged in the way the bridge logs in
/// (same TLS and SASL checks), with no reconnection: for tests and tools
/// that write stanzas themselves (another client, a hostile one).
pub async fn raw_stream(config: &Config, password: &Password) -> Result<StanzaStream, BridgeError> {
    let target = target(config)?;
    let mut first = Some(login::login(&target, password.expose()).await?);
    let once = move |_: Option<String>, slot: oneshot::Sender<Connection>| match first.take() {
        Some(connection) => {
            let _ = slot.send(connection);
        }
        // No second login: the stream waits (see Reconnector on why the
        // slot is never dropped).
        None => std::mem::forget(slot),
    };
    Ok(StanzaStream::new(Box::new(once), 16))
}

/// A running XMPP bridge (see the module documentation).
pub struct XmppBridge {
    account: String,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl fmt::Debug for XmppBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XmppBridge")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl XmppBridge {
    fn command(&self, c: Command) -> Result<(), BridgeError> {
        self.commands.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BridgeError::Protocol(
                "the bridge's queue is full; try again when it is online".into(),
            ),
            mpsc::error::TrySendError::Closed(_) => BridgeError::Closed,
        })
    }
}

impl Bridge for XmppBridge {
    fn network(&self) -> Network {
        Network::Xmpp
    }
    fn account(&self) -> &str {
        &self.account
    }
    fn status(&self) -> Status {
        lock(&self.shared.status).clone()
    }
    fn contacts(&self) -> Vec<Contact> {
        lock(&self.shared.contacts).clone()
    }
    fn send(&self, message: Outgoing) -> Result<(), BridgeError> {
        let to = BareJid::new(&message.to)
            .map_err(|e| BridgeError::Invalid(format!("{:?} is not a JID: {e}", message.to)))?;
        if message.id.is_empty() || message.id.len() > MAX_FIELD {
            return Err(BridgeError::Invalid(
                "a message id of 1 to 1024 bytes".into(),
            ));
        }
        let room = self
            .shared
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_QUEUED).then_some(n + 1)
            });
        if room.is_err() {
            return Err(BridgeError::Protocol(format!(
                "{MAX_QUEUED} messages already wait for the network; try again later"
            )));
        }
        self.command(Command::Send(to, message)).inspect_err(|_| {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        })
    }
    fn join(&self, group: &str, since_ms: Option<i64>) -> Result<(), BridgeError> {
        let group = BareJid::new(group)
            .map_err(|e| BridgeError::Invalid(format!("{group:?} is not a group address: {e}")))?;
        self.command(Command::Join(group, since_ms))
    }
    fn leave(&self, group: &str) -> Result<(), BridgeError> {
        let group = BareJid::new(group)
            .map_err(|e| BridgeError::Invalid(format!("{group:?} is not a group address: {e}")))?;
        self.command(Command::Leave(group))
    }
    fn received(&self, chat: &str, id: &str) -> Result<(), BridgeError> {
        let chat = BareJid::new(chat)
            .map_err(|e| BridgeError::Invalid(format!("{chat:?} is not a JID: {e}")))?;
        self.command(Command::Receipt(chat, id.to_owned()))
    }
    fn close(&self) {
        // Closing twice, or after the session ended, is nothing to report.
        let _ = self.commands.try_send(Command::Close);
    }
}

/// What the session and its handle share.
struct Shared {
    status: Mutex<Status>,
    contacts: Mutex<Vec<Contact>>,
    /// Outgoing messages given to `send` and not yet handed to the stream.
    queued: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Command {
    Send(BareJid, Outgoing),
    Join(BareJid, Option<i64>),
    Leave(BareJid),
    Receipt(BareJid, String),
    Close,
}

/// Logs in again whenever the stanza stream asks, with backoff.
struct Reconnector {
    target: Target,
    password: Password,
    /// The connection `start` made, for the stream's first ask.
    first: Option<Connection>,
    /// The next wait, and when the last connection was handed over: a
    /// connection lost within [`STABLE`] keeps the backoff growing, so a
    /// server that takes the login and drops the stream is not hammered.
    backoff: Arc<Mutex<(Duration, Option<std::time::Instant>)>>,
    shared: Arc<Shared>,
    events: mpsc::Sender<Incoming>,
    closed: watch::Receiver<bool>,
}

impl Reconnector {
    fn connect(&mut self, slot: oneshot::Sender<Connection>) {
        if let Some(first) = self.first.take() {
            // The stream only just asked: it is waiting for this.
            let _ = slot.send(first);
            return;
        }
        let target = self.target.clone();
        let password = self.password.clone();
        let shared = Arc::clone(&self.shared);
        let events = self.events.clone();
        let mut closed = self.closed.clone();
        let backoff = Arc::clone(&self.backoff);
        let (mut delay, wait_first) = {
            let mut b = lock(&backoff);
            let stable = b.1.is_none_or(|t| t.elapsed() >= STABLE);
            if stable {
                b.0 = FIRST_BACKOFF;
            }
            (b.0, !stable)
        };
        tokio::spawn(async move {
            if wait_first {
                let why = "the connection was lost soon after the login".to_owned();
                delay = offline(&shared, &events, &mut closed, why, delay).await;
            }
            loop {
                if *closed.borrow() {
                    // Never drop the slot: tokio-xmpp's worker takes that
                    // as a bug and panics. It waits, with the session gone.
                    std::mem::forget(slot);
                    return;
                }
                report(&shared, &events, Status::Connecting).await;
                match login::login(&target, password.expose()).await {
                    Ok(connection) => {
                        *lock(&backoff) = (delay, Some(std::time::Instant::now()));
                        let _ = slot.send(connection);
                        return;
                    }
                    Err(e) if login::is_final(&e) => {
                        tracing::warn!(account = %target.jid, "bridge login refused: {e}");
                        report(&shared, &events, Status::Refused { why: e.to_string() }).await;
                        std::mem::forget(slot);
                        return;
                    }
                    Err(e) => {
                        tracing::info!(account = %target.jid, "bridge offline: {e}; next try in {delay:?}");
                        delay = offline(&shared, &events, &mut closed, e.to_string(), delay).await;
                    }
                }
            }
        });
    }
}

/// Says the session is offline for `why`, waits `delay` (or until the
/// bridge is closed) and gives the next, doubled, delay.
async fn offline(
    shared: &Shared,
    events: &mpsc::Sender<Incoming>,
    closed: &mut watch::Receiver<bool>,
    why: String,
    delay: Duration,
) -> Duration {
    let status = Status::Offline {
        why,
        retry_in: delay,
    };
    report(shared, events, status).await;
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = closed.changed() => {}
    }
    (delay * 2).min(MAX_BACKOFF)
}

async fn report(shared: &Shared, events: &mpsc::Sender<Incoming>, status: Status) {
    // A server's words reach a terminal: control characters out, bounded.
    let clean = |why: String| {
        let mut why: String = why.chars().filter(|c| !c.is_control()).collect();
        crate::cut(&mut why, MAX_FIELD);
        why
    };
    let status = match status {
        Status::Offline { why, retry_in } => Status::Offline {
            why: clean(why),
            retry_in,
        },
        Status::Refused { why } => Status::Refused { why: clean(why) },
        other => other,
    };
    *lock(&shared.status) = status.clone();
    let _ = events.send(Incoming::Status(status)).await;
}

/// The task that owns the stanza stream.
struct Session {
    stream: Option<StanzaStream>,
    own: BareJid,
    nick: String,
    shared: Arc<Shared>,
    events: mpsc::Sender<Incoming>,
    /// Group chats to be in, with the time of history to ask for.
    groups: HashMap<BareJid, Option<i64>>,
    online: bool,
    /// Our messages (and, first after a login, presence, roster and
    /// joins) waiting to be handed to the stream, with the id to report as
    /// sent (our messages only).
    queue: VecDeque<(Stanza, Option<String>)>,
    /// Answers (receipts, IQ replies): at most [`MAX_CONTROL`], beside the
    /// messages so a flood of requests cannot grow memory or starve them.
    control: VecDeque<Stanza>,
    /// Our messages awaiting a receipt or an error: id → (recipient, group).
    sent: HashMap<String, (BareJid, bool)>,
    sent_order: VecDeque<String>,
    in_flight: usize,
    done_tx: mpsc::Sender<Done>,
    roster_id: String,
    iq_counter: u64,
}

/// A stanza handed to the stream reached its end state.
struct Done {
    id: Option<String>,
    failed: Option<String>,
}

impl Session {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut done: mpsc::Receiver<Done>,
        closed: watch::Sender<bool>,
    ) {
        use futures::StreamExt;
        while let Some(stream) = self.stream.as_mut() {
            tokio::select! {
                event = stream.next() => match event {
                    Some(event) => self.event(event).await,
                    None => break,
                },
                command = commands.recv() => match command {
                    Some(Command::Close) | None => {
                        self.close(&closed).await;
                        break;
                    }
                    Some(c) => self.command(c),
                },
                Some(d) = done.recv() => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    match (d.id, d.failed) {
                        (Some(id), None) => self.emit(Incoming::Sent { id }).await,
                        (Some(id), Some(why)) => self.emit(Incoming::Failed { id, why }).await,
                        _ => {}
                    }
                }
            }
            self.flush().await;
        }
        let _ = closed.send(true);
        *lock(&self.shared.status) = Status::Closed;
    }

    async fn close(&mut self, closed: &watch::Sender<bool>) {
        let _ = closed.send(true);
        // Offline, the stream waits for a login that will not come: it is
        // dropped and its worker stays parked (see Reconnector).
        if let Some(stream) = self.stream.take()
            && self.online
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
        }
        *lock(&self.shared.status) = Status::Closed;
        let _ = self.events.try_send(Incoming::Status(Status::Closed));
    }

    async fn emit(&self, event: Incoming) {
        let _ = self.events.send(event).await;
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Send(to, out) => {
                let mut m = if out.group {
                    Message::groupchat(Jid::from(to.clone()))
                } else {
                    Message::chat(Jid::from(to.clone())).with_payload(receipts::Request)
                };
                m = m.with_body(Lang::new(), out.text);
                m.id = Some(Id(out.id.clone()));
                if self.sent_order.len() >= MAX_SENT
                    && let Some(old) = self.sent_order.pop_front()
                {
                    self.sent.remove(&old);
                }
                self.sent.insert(out.id.clone(), (to.clone(), out.group));
                self.sent_order.push_back(out.id.clone());
                self.queue.push_back((m.into(), Some(out.id)));
            }
            Command::Join(group, since) => {
                if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&group) {
                    tracing::warn!(
                        "bridge: more than {MAX_GROUPS} group chats; {group} not joined"
                    );
                    return;
                }
                self.groups.insert(group.clone(), since);
                if self.online
                    && let Some(p) = self.join_presence(&group, since)
                {
                    self.queue.push_front((p.into(), None));
                }
            }
            Command::Leave(group) => {
                if self.groups.remove(&group).is_some()
                    && let Ok(occupant) = group.with_resource_str(&self.nick)
                {
                    let p = Presence::new(PresenceType::Unavailable).with_to(occupant);
                    self.answer(p.into());
                }
            }
            Command::Receipt(chat, id) => {
                let m = Message::chat(Jid::from(chat)).with_payload(receipts::Received { id });
                self.answer(m.into());
            }
            Command::Close => {}
        }
    }

    fn join_presence(&self, group: &BareJid, since: Option<i64>) -> Option<Presence> {
        let occupant = group.with_resource_str(&self.nick).ok()?;
        let history = match since.and_then(chrono::DateTime::from_timestamp_millis) {
            // Ask from just after the last message kept (repeats are
            // dropped by the daemon by id anyway).
            Some(t) => History::new().with_since(DateTime(t.fixed_offset())),
            None => History::new().with_maxstanzas(20),
        };
        Some(
            Presence::available()
                .with_to(occupant)
                .with_payload(Muc::new().with_history(history)),
        )
    }

    /// Queues an answer, dropping it if [`MAX_CONTROL`] already wait.
    fn answer(&mut self, stanza: Stanza) {
        if self.control.len() < MAX_CONTROL {
            self.control.push_back(stanza);
        } else {
            tracing::debug!("bridge: {MAX_CONTROL} answers already wait; one dropped");
        }
    }

    /// Hands queued stanzas to the stream while it is up and has room:
    /// answers first, then the messages, in order.
    async fn flush(&mut self) {
        while self.online && self.in_flight < IN_FLIGHT {
            let next = match self.control.pop_front() {
                Some(stanza) => Some((stanza, None)),
                None => self.queue.pop_front(),
            };
            let Some((stanza, id)) = next else {
                return;
            };
            let Some(stream) = self.stream.as_ref() else {
                return;
            };
            if id.is_some() {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            }
            let mut token = stream.send(Box::new(stanza)).await;
            self.in_flight += 1;
            let done = self.done_tx.clone();
            tokio::spawn(async move {
                let state = token.wait_for(StanzaStage::Sent).await;
                let failed = match state
                    .as_ref()
                    .map(tokio_xmpp::stanzastream::StanzaStage::from)
                {
                    Some(StanzaStage::Sent | StanzaStage::Acked) => None,
                    Some(StanzaStage::Failed) => Some("the connection failed".to_owned()),
                    _ => Some("dropped before it was sent".to_owned()),
                };
                let _ = done.send(Done { id, failed }).await;
            });
        }
    }

    /// Queues the stanzas a fresh login needs, ahead of everything else.
    fn after_login(&mut self) {
        // Answers to the last session's requests are stale.
        self.control.clear();
        self.iq_counter += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        self.roster_id = format!("kith-roster-{}-{nanos:x}", self.iq_counter);
        let mut first: Vec<Stanza> = vec![
            Presence::available().into(),
            Iq::from_get(
                self.roster_id.clone(),
                Roster {
                    ver: None,
                    items: vec![],
                },
            )
            .into(),
        ];
        let groups: Vec<(BareJid, Option<i64>)> =
            self.groups.iter().map(|(g, s)| (g.clone(), *s)).collect();
        for (group, since) in groups {
            if let Some(p) = self.join_presence(&group, since) {
                first.push(p.into());
            }
        }
        for s in first.into_iter().rev() {
            self.queue.push_front((s, None));
        }
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Stream(StreamEvent::Reset { .. }) => {
                self.online = true;
                self.after_login();
                report(&self.shared, &self.events, Status::Online).await;
            }
            Event::Stream(StreamEvent::Resumed) => {
                self.online = true;
                report(&self.shared, &self.events, Status::Online).await;
            }
            Event::Stream(StreamEvent::Suspended) => {
                self.online = false;
                // The reconnector reports what happens next.
            }
            Event::Stanza(stanza) => self.stanza(stanza).await,
        }
    }

    async fn stanza(&mut self, stanza: Stanza) {
        let groups: HashSet<BareJid> = self.groups.keys().cloned().collect();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let view = map::View {
            own: &self.own,
            nick: &self.nick,
            groups: &groups,
            sent: &self.sent,
            now_ms,
        };
        match stanza {
            Stanza::Message(m) => {
                if let Some(event) = map::message(&view, m) {
                    if let Incoming::Delivered { id, .. } | Incoming::Failed { id, .. } = &event {
                        self.sent.remove(id);
                    }
                    self.emit(event).await;
                }
            }
            Stanza::Presence(p) => {
                if let Some(event) = map::presence(&view, &p) {
                    self.emit(event).await;
                }
            }
            Stanza::Iq(Iq::Result {
                from,
                id,
                payload: Some(payload),
                ..
            }) if !self.roster_id.is_empty()
                && id == self.roster_id
                && from
                    .as_ref()
                    .is_none_or(|f| f.as_str() == self.own.as_str()) =>
            {
                // Our roster comes from our own account only, once per ask.
                self.roster_id.clear();
                if let Some((contacts, _)) = map::roster(payload) {
                    *lock(&self.shared.contacts) = contacts.clone();
                    self.emit(Incoming::Contacts(contacts)).await;
                }
            }
            Stanza::Iq(Iq::Set {
                from, id, payload, ..
            }) if payload.is("query", ns::ROSTER) => {
                // A push is only believed from our own bare account (RFC 6121).
                let ours = from
                    .as_ref()
                    .is_none_or(|f| f.as_str() == self.own.as_str());
                if ours && let Some((changed, removed)) = map::roster(payload) {
                    let contacts = {
                        let mut list = lock(&self.shared.contacts);
                        map::apply_push(&mut list, changed, &removed);
                        list.clone()
                    };
                    self.emit(Incoming::Contacts(contacts)).await;
                }
                let answer = Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: None,
                };
                self.answer(answer.into());
            }
            Stanza::Iq(Iq::Get { from, id, .. }) | Stanza::Iq(Iq::Set { from, id, .. }) => {
                let error = StanzaError::new(
                    ErrorType::Cancel,
                    DefinedCondition::ServiceUnavailable,
                    "en",
                    "",
                );
                let mut answer = Iq::from_error(id, error);
                if let Some(to) = from {
                    answer = answer.with_to(to);
                }
                self.answer(answer.into());
            }
            Stanza::Iq(_) => {}
        }
    }
}

/// What the session makes of one stanza's XML (a `<message/>`,
/// `<presence/>` or a roster `<query/>`), as the account `own` with
/// nickname `nick` in the group chats `groups`: for tests and fuzzing
/// (the session gets its stanzas already parsed by tokio-xmpp).
pub fn read_stanza(own: &str, nick: &str, groups: &[&str], xml: &[u8]) -> Vec<Incoming> {
    use tokio_xmpp::minidom::Element;
    let (Ok(text), Ok(own)) = (std::str::from_utf8(xml), BareJid::new(own)) else {
        return Vec::new();
    };
    let Ok(element) = text.parse::<Element>() else {
        return Vec::new();
    };
    let groups: HashSet<BareJid> = groups.iter().filter_map(|g| BareJid::new(g).ok()).collect();
    let sent = HashMap::new();
    let view = map::View {
        own: &own,
        nick,
        groups: &groups,
        sent: &sent,
        now_ms: i64::MAX,
    };
    if element.is("query", ns::ROSTER) {
        return map::roster(element)
            .map(|(contacts, _)| vec![Incoming::Contacts(contacts)])
            .unwrap_or_default();
    }
    if element.is("message", ns::DEFAULT_NS) {
        return Message::try_from(element)
            .ok()
            .and_then(|m| map::message(&view, m))
            .into_iter()
            .collect();
    }
    Presence::try_from(element)
        .ok()
        .and_then(|p| map::presence(&view, &p))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: [&str; 1] = ["room@muc.example.org"];

    fn read(xml: &str) -> Vec<Incoming> {
        read_stanza("me@example.org", "me", &GROUPS, xml.as_bytes())
    }

    #[test]
    fn stanzas_read_as_the_session_reads_them() {
        let chat = read(
            "<message xmlns='jabber:client' from='bob@example.org/phone' id='m1' type='chat'>\
             <body>hi</body><request xmlns='urn:xmpp:receipts'/></message>",
        );
        assert!(matches!(&chat[..], [Incoming::Message(m)] if m.text == "hi" && m.wants_receipt));
        let group = read(
            "<message xmlns='jabber:client' from='room@muc.example.org/alice' type='groupchat'>\
             <body>all</body><delay xmlns='urn:xmpp:delay' stamp='2026-12-06T10:00:00Z'/></message>",
        );
        assert!(matches!(&group[..], [Incoming::Message(m)]
            if m.group && m.sender == "alice" && m.time_ms == Some(1_796_551_200_000)));
        let joined = read(
            "<presence xmlns='jabber:client' from='room@muc.example.org/me'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>",
        );
        assert_eq!(
            joined,
            vec![Incoming::Joined {
                group: "room@muc.example.org".into()
            }]
        );
        let roster = read(
            "<query xmlns='jabber:iq:roster'><item jid='bob@example.org' name='Bob' \
             subscription='both'/><item jid='old@example.org' subscription='remove'/></query>",
        );
        assert_eq!(
            roster,
            vec![Incoming::Contacts(vec![Contact {
                address: "bob@example.org".into(),
                name: Some("Bob".into())
            }])]
        );
    }

    #[test]
    fn garbage_reads_as_nothing() {
        for xml in [
            "",
            "<",
            "not xml",
            "<message/>",
            "<iq xmlns='jabber:client'/>",
            "\u{0}",
        ] {
            assert!(read(xml).is_empty(), "{xml:?}");
        }
        assert!(read_stanza("not a jid@@", "me", &GROUPS, b"<x/>").is_empty());
    }

    #[test]
    fn configs_are_checked_before_any_connection() {
        let bad = |jid: &str, server: Option<&str>| {
            target(&Config {
                jid: jid.into(),
                server: server.map(Into::into),
                extra_roots_pem: None,
            })
            .is_err()
        };
        assert!(bad("example.org", None));
        assert!(bad("a@b@c", None));
        assert!(bad("me@example.org", Some("no-port")));
        assert!(bad("me@example.org", Some("")));
        let ok = target(&Config {
            jid: "me@example.org".into(),
            server: None,
            extra_roots_pem: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.server, "example.org:5222");
    }
}
