//! kith for apps: the typed client library ([`kith_client`], the requests
//! the CLI and the terminal UI make) and an in-process node, exported
//! with uniffi for Kotlin, Swift and Python.
//!
//! An app makes a profile ([`create_profile`]), runs its node in its own
//! process ([`start_node`]: the daemon on a thread of its own, without
//! signal handlers, serving the profile's socket) and talks to it through
//! [`Kith`], whose calls are async (tokio inside; the foreign side awaits
//! them as coroutines, suspend functions or async functions). Changes
//! arrive through a [`Listener`] the app implements.
//!
//! Nothing here is new protocol: every call is one client request, and a
//! node started here is the same daemon `kith daemon` runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

uniffi::setup_scaffolding!();

/// Why a call failed: one line, as the CLI prints it.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KithError {
    /// The request failed (the daemon's message, or why it could not be
    /// reached).
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
    },
}

impl KithError {
    fn from_display(e: impl std::fmt::Display) -> Self {
        Self::Failed {
            message: e.to_string(),
        }
    }
}

impl From<kith_client::ClientError> for KithError {
    fn from(e: kith_client::ClientError) -> Self {
        Self::from_display(e)
    }
}

type Result<T> = std::result::Result<T, KithError>;

/// A profile just made.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewProfile {
    /// The new account's id.
    pub account: String,
    /// The recovery code, if asked for: show it once, have it written
    /// down, and keep it nowhere (it restores the account on a new device
    /// when every device is lost).
    pub recovery_code: Option<String>,
}

/// Makes a new account and its first device in the empty folder `home`.
/// With a passphrase the profile is encrypted under it (SQLCipher);
/// without, it is not (say so to the user). With `recovery`, a recovery
/// code is made and returned once.
#[uniffi::export]
pub fn create_profile(
    home: String,
    name: String,
    passphrase: Option<String>,
    recovery: bool,
) -> Result<NewProfile> {
    // Moved, not copied (the wrapper wipes it when dropped).
    let pass = passphrase.map(node_core::store::Passphrase::new);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(KithError::from_display)?;
    rt.block_on(async {
        let (node, code) = node_core::node::Node::create(
            node_core::store::Profile::new(PathBuf::from(&home)),
            &name,
            pass.as_ref(),
            recovery,
            kith_app::now_ms(),
        )
        .await
        .map_err(KithError::from_display)?;
        let account = node.account().to_string();
        node.close().await;
        Ok(NewProfile {
            account,
            recovery_code: code.map(|c| c.to_words()),
        })
    })
}

/// A node running in this process (see [`start_node`]); it stops when
/// told to or when the handle is dropped.
#[derive(Debug, uniffi::Object)]
pub struct RunningNode {
    /// Only the node's thread holds the daemon itself: closing it at the
    /// end needs the last reference (the store's final sync and the
    /// profile's lock).
    daemon: std::sync::Weak<kith_app::daemon::Daemon>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    account: String,
    device: String,
}

/// How long [`start_node`] waits for the profile's socket to answer.
const START_WAIT: Duration = Duration::from_secs(20);

/// Opens the profile in `home` (with its passphrase, if it has one) and
/// runs its node on a thread of its own, listening for device links on
/// `listen` (`ADDR:PORT` each; none: every address, a port of the
/// system's choosing). Returns once the node answers on its socket (it
/// blocks: call it off the app's UI thread).
#[uniffi::export]
pub fn start_node(
    home: String,
    passphrase: Option<String>,
    listen: Vec<String>,
) -> Result<Arc<RunningNode>> {
    let listen = listen
        .iter()
        .map(|a| {
            a.parse::<SocketAddr>().map_err(|_| KithError::Failed {
                message: format!("{a:?} is not an ADDR:PORT"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let profile = node_core::store::Profile::new(PathBuf::from(&home));
    profile.check().map_err(KithError::from_display)?;
    let socket = profile.socket();
    // Moved into the wrapper that wipes it; taken out (not copied) once.
    let mut pass = zeroize::Zeroizing::new(passphrase);
    // The node's thread says it started (the daemon, its account and
    // device), or why it did not; later, why serving ended early (the
    // socket could not be bound, say).
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("kith-node".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let opened = async {
                    let pass = pass.take().map(node_core::store::Passphrase::new);
                    let node = node_core::node::Node::open(profile, pass.as_ref())
                        .await
                        .map_err(|e| e.to_string())?;
                    drop(pass);
                    kith_app::daemon::Daemon::start(node, listen, false)
                        .await
                        .map_err(|e| format!("{e:#}"))
                }
                .await;
                match opened {
                    Ok(daemon) => {
                        let _ = tx.send(Ok((
                            Arc::downgrade(&daemon),
                            daemon.account().to_string(),
                            daemon.device().to_string(),
                        )));
                        if let Err(e) = Arc::clone(&daemon).serve_with(false).await {
                            tracing::warn!(error = %e, "the node stopped");
                            let _ = tx.send(Err(format!("{e:#}")));
                        }
                        daemon.close().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(KithError::from_display)?;
    let (daemon, account, device) = match rx.recv() {
        Ok(Ok(started)) => started,
        Ok(Err(message)) => {
            let _ = thread.join();
            return Err(KithError::Failed { message });
        }
        Err(_) => {
            let _ = thread.join();
            return Err(KithError::Failed {
                message: "the node's thread ended before it started".into(),
            });
        }
    };
    let node = RunningNode {
        account,
        device,
        daemon,
        thread: Mutex::new(Some(thread)),
    };
    let deadline = std::time::Instant::now() + START_WAIT;
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if let Ok(Err(message)) = rx.try_recv() {
            node.stop();
            return Err(KithError::Failed { message });
        }
        if std::time::Instant::now() >= deadline {
            node.stop();
            return Err(KithError::Failed {
                message: "the node did not answer on its socket".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Arc::new(node))
}

#[uniffi::export]
impl RunningNode {
    /// This node's account id.
    pub fn account(&self) -> String {
        self.account.clone()
    }

    /// This node's device id.
    pub fn device(&self) -> String {
        self.device.clone()
    }

    /// Stops the node (links closed, the store closed, the profile free
    /// again) and waits for it; again, it does nothing.
    pub fn stop(&self) {
        if let Some(daemon) = self.daemon.upgrade() {
            daemon.shutdown();
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the app is told when something changed (it then asks for what it
/// shows: the log, the contact list...).
#[uniffi::export(with_foreign)]
pub trait Listener: Send + Sync {
    /// New events were stored in a log (messages, room events, files):
    /// the log's id and how many.
    fn stored(&self, log: String, count: u64);
    /// Peers now hold own events they lacked (delivery marks changed).
    fn delivered(&self, count: u64);
    /// A contact request was kept, from this account.
    fn request(&self, account: String);
    /// Notices were lost, or the node went away and came back: refresh
    /// everything.
    fn refresh(&self);
}

/// A contact.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Contact {
    /// Account id.
    pub id: String,
    /// The name its card gives.
    pub name: String,
    /// The user's alias for it.
    pub alias: Option<String>,
    /// `unvalidated`, `validated` or `compromised`.
    pub trust: String,
    /// Messages not read yet.
    pub unread: u64,
    /// Its notifications are muted.
    pub muted: bool,
}

/// A message (or a file offer, a call record) in a conversation or room.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Message {
    /// Event id.
    pub id: String,
    /// The author's account.
    pub author: String,
    /// The author's device.
    pub device: String,
    /// Its text (peer text: clean it before a terminal shows it).
    pub text: String,
    /// RFC 3339.
    pub time: String,
    /// A device of every other member has it.
    pub delivered: bool,
    /// `message`, `file`, `call`...
    pub kind: String,
}

/// A contact request.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ContactRequest {
    /// The requesting account (answer with it).
    pub id: String,
    /// The name it claims.
    pub name: String,
    /// How it found this account, as the CLI words it.
    pub how: String,
    /// Its first messages.
    pub messages: Vec<String>,
}

/// A room.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Room {
    /// Room id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Anyone with the link may join.
    pub public: bool,
    /// Joined members.
    pub members: u64,
    /// This account's membership.
    pub membership: String,
    /// Messages not read yet.
    pub unread: u64,
}

/// The node's state.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NodeStatus {
    /// Account id.
    pub account: String,
    /// Device id.
    pub device: String,
    /// Device name.
    pub name: String,
    /// Addresses the node listens on.
    pub listening: Vec<String>,
    /// Peer devices linked now.
    pub peers: Vec<String>,
    /// Contact requests waiting.
    pub requests: u64,
    /// Whether the profile has a passphrase.
    pub protected: bool,
}

fn message(m: node_core::node::messages::MessageInfo) -> Message {
    Message {
        id: m.id.to_string(),
        author: m.author.to_string(),
        device: m.device.to_string(),
        text: m.text,
        time: m.time,
        delivered: m.delivered,
        kind: m.kind,
    }
}

/// A client of the node serving profile folder `home` (in this process
/// or not): one method per request.
#[derive(Debug, uniffi::Object)]
pub struct Kith {
    client: kith_client::Client,
}

#[uniffi::export(async_runtime = "tokio")]
impl Kith {
    /// A client of the node of profile folder `home`.
    #[uniffi::constructor]
    pub fn new(home: String) -> Arc<Self> {
        Arc::new(Self {
            client: kith_client::Client::new(PathBuf::from(home)),
        })
    }

    /// The node's state.
    pub async fn status(&self) -> Result<NodeStatus> {
        let s = self.client.status().await?;
        Ok(NodeStatus {
            account: s.account,
            device: s.device,
            name: s.name,
            listening: s.listening,
            peers: s.peers,
            requests: s.requests,
            protected: s.protected,
        })
    }

    /// This account's card (`kith:card/…`), to give to people.
    pub async fn card(&self) -> Result<String> {
        Ok(self.client.card().await?.uri)
    }

    /// Adds a contact from its card (they get a request, unless they
    /// added this account too); returns its account id.
    pub async fn contact_add(&self, card: String, alias: Option<String>) -> Result<String> {
        Ok(self
            .client
            .contact_add(&card, alias.as_deref())
            .await?
            .id
            .to_string())
    }

    /// The contacts.
    pub async fn contacts(&self) -> Result<Vec<Contact>> {
        Ok(self
            .client
            .contact_list()
            .await?
            .into_iter()
            .map(|c| Contact {
                id: c.id.to_string(),
                name: c.name,
                alias: c.alias,
                trust: c.trust,
                unread: c.unread as u64,
                muted: c.muted,
            })
            .collect())
    }

    /// Contact requests waiting for an answer.
    pub async fn contact_requests(&self) -> Result<Vec<ContactRequest>> {
        Ok(self
            .client
            .contact_requests()
            .await?
            .into_iter()
            .map(|r| ContactRequest {
                how: kith_app::display::request_how(&r),
                id: r.id.to_string(),
                name: r.name,
                messages: r.messages,
            })
            .collect())
    }

    /// Answers a contact request: `accept`, `decline` or `block`.
    pub async fn contact_answer(&self, id: String, answer: String) -> Result<()> {
        self.client.contact_answer(&id, &answer).await?;
        Ok(())
    }

    /// Sends a message to a contact or room; returns its id once it is on
    /// the disk.
    pub async fn send(&self, target: String, text: String) -> Result<String> {
        Ok(self.client.send(&target, &text).await?.id.to_string())
    }

    /// A conversation's or room's messages in display order (the last
    /// `limit`).
    pub async fn log(&self, target: String, limit: Option<u32>) -> Result<Vec<Message>> {
        let limit = limit.map(|l| l as usize);
        Ok(self
            .client
            .log(&target, limit)
            .await?
            .into_iter()
            .map(message)
            .collect())
    }

    /// Marks a conversation or room read (on every own device).
    pub async fn mark_read(&self, target: String) -> Result<()> {
        self.client.mark_read(&target).await?;
        Ok(())
    }

    /// The messages of a conversation or room that hold `text`.
    pub async fn search(&self, target: String, text: String) -> Result<Vec<Message>> {
        Ok(self
            .client
            .search(&target, &text)
            .await?
            .into_iter()
            .map(message)
            .collect())
    }

    /// Mutes (or unmutes) a conversation's or room's notifications.
    pub async fn mute(&self, target: String, on: bool) -> Result<()> {
        self.client.mute(&target, on).await?;
        Ok(())
    }

    /// Makes a room; returns its id.
    pub async fn room_create(&self, name: String, public: bool) -> Result<String> {
        Ok(self.client.room_create(&name, public).await?.id.to_string())
    }

    /// Invites a contact to a room.
    pub async fn room_invite(&self, room: String, contact: String) -> Result<()> {
        self.client.room_invite(&room, &contact).await?;
        Ok(())
    }

    /// The rooms.
    pub async fn rooms(&self) -> Result<Vec<Room>> {
        Ok(self
            .client
            .room_list()
            .await?
            .into_iter()
            .map(|r| Room {
                id: r.id.to_string(),
                name: r.name,
                public: r.public,
                members: r.members as u64,
                membership: r.membership,
                unread: r.unread as u64,
            })
            .collect())
    }

    /// Offers a file (absolute path) in a conversation or room; returns
    /// its id.
    pub async fn file_send(&self, target: String, path: String) -> Result<String> {
        Ok(self.client.file_send(&target, &path).await?.id.to_string())
    }

    /// Writes a complete file out to `dest` (absolute, must not exist).
    pub async fn file_save(&self, id: String, dest: String) -> Result<()> {
        self.client.file_save(&id, &dest).await?;
        Ok(())
    }

    /// Tells `listener` of every change until the node has been gone for
    /// a minute; returns at once (the listening runs on a thread of its
    /// own; call it once per listener). A lost subscription is made
    /// again, and `refresh` says so. A listener that throws is told of
    /// the next change all the same.
    pub fn listen(&self, listener: Arc<dyn Listener>) -> Result<()> {
        let home = self.client.home().to_path_buf();
        std::thread::Builder::new()
            .name("kith-listen".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(listen(home, listener));
            })
            .map_err(KithError::from_display)?;
        Ok(())
    }
}

/// Subscribes to the node's notices and hands each to `listener`; gives
/// up once the node has not answered for a minute.
async fn listen(home: PathBuf, listener: Arc<dyn Listener>) {
    let mut since_up = std::time::Instant::now();
    while since_up.elapsed() < Duration::from_secs(60) {
        if let Ok(mut sub) = kith_client::Client::new(&home).subscribe().await {
            tell(|| listener.refresh());
            while let Ok(Some(notice)) = sub.next().await {
                match notice {
                    kith_client::Notice::Stored { log, count } => {
                        tell(|| listener.stored(log, count));
                    }
                    kith_client::Notice::Delivered { count } => tell(|| listener.delivered(count)),
                    kith_client::Notice::Request { account } => {
                        tell(|| listener.request(account));
                    }
                    _ => tell(|| listener.refresh()),
                }
            }
            since_up = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Calls the app's listener; a listener that throws (a panic here) does
/// not end the listening.
fn tell(call: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).is_err() {
        tracing::warn!("the app's listener failed; listening goes on");
    }
}
