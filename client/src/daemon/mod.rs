//! The daemon: owns the [`Node`] and the transport, keeps links with
//! contacts' devices, runs a sync session on each, serves the local socket,
//! and stops cleanly on SIGINT/SIGTERM.

mod bridges;
mod calls;
mod camera;
mod conf;
mod dht;
mod dial;
mod echo;
mod files;
mod join;
mod lan;
mod link;
mod mailbox;
mod media;
mod policy;
mod push;
mod requests;
mod router;
mod rpc_server;
mod sound;
pub mod timed;
mod video;

pub use camera::CameraChoice;
pub use media::Clocks as CallClocks;
pub use sound::SoundCard;
pub use video::VideoClocks as CallVideoClocks;

use anyhow::{Context, Result};
use node_core::node::Node;
use node_core::transport::Transport;
use node_core::{AccountId, DeviceId, EventId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

/// What the daemon serves from.
#[derive(Debug)]
pub struct Daemon {
    node: timed::TimedMutex<Node>,
    /// Who this device shares what with, published by the node whenever
    /// it changes: read without the node (links, later call media).
    sharing: tokio::sync::watch::Receiver<std::sync::Arc<node_core::node::Sharing>>,
    /// Calls on this device (each runs its own task).
    calls: calls::Calls,
    /// Room conferences on this device (each runs its own task).
    confs: conf::Confs,
    /// Tests only: where conferences copy the keys given to this device
    /// and the sealed frames received (`--danger-conf-dump`).
    conf_dump: std::sync::OnceLock<std::path::PathBuf>,
    /// Tests only: room calls also send replayed, forged and stale frames
    /// (`--danger-conf-hostile`).
    conf_hostile: std::sync::atomic::AtomicBool,
    /// This is its account's always-on device (`kith daemon --always-on`):
    /// room calls say so, and prefer it as a forwarder.
    always_on: std::sync::atomic::AtomicBool,
    /// Benchmarks of many daemons in one process: this daemon's room
    /// calls run on an audio thread of its own (as in a process of its
    /// own) instead of the process's.
    conf_audio: std::sync::OnceLock<tokio::runtime::Handle>,
    /// When the node's writes are on the disk: acknowledgements, events
    /// sent to peers and replies to clients wait for it, never the node.
    durable: node_core::store::Durability,
    /// This device, and its account.
    device: DeviceId,
    account: AccountId,
    transport: Transport,
    /// Live links per peer device.
    links: std::sync::Mutex<HashMap<DeviceId, usize>>,
    /// Answer every received message automatically (benchmarks).
    echo: bool,
    /// Asks `serve` to stop (as SIGTERM does).
    stop: tokio::sync::Notify,
    /// Set once this device learns that it was revoked.
    was_revoked: std::sync::atomic::AtomicBool,
    /// UDP bytes (sent, received) of links already closed.
    wire_closed: std::sync::Mutex<(u64, u64)>,
    /// Sync frame bytes (sent, received) with their length prefixes: the
    /// protocol's share of the wire bytes.
    frame_bytes: [std::sync::atomic::AtomicU64; 2],
    /// Receipts from peers, written in batches by one task (they are soft
    /// state: a lost one only means an event is offered again).
    receipts: tokio::sync::mpsc::Sender<Receipt>,
    receipts_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Receipt>>>,
    /// Wakes the file fetcher (a new offer, a new link, a finished request).
    files_notify: tokio::sync::Notify,
    /// The file fetcher's requests in flight and distrusted sources.
    fetch: std::sync::Mutex<files::FetchState>,
    /// Files up to this size are fetched by every entitled device (unless
    /// the self log's setting says otherwise).
    auto_fetch_limit: u64,
    /// Files asked for explicitly (fetched whatever their size).
    wanted_files: std::sync::Mutex<std::collections::HashSet<node_core::EventId>>,
    /// Largest file `file send` accepts.
    max_file_size: u64,
    /// Tests only: corrupt served chunks.
    corrupt_served: bool,
    /// Tests only: the share of incoming call media datagrams dropped
    /// (seeded), in percent.
    media_loss: std::sync::atomic::AtomicU8,
    /// Benchmarks: added one-way delay on incoming media, milliseconds.
    media_delay: std::sync::atomic::AtomicU16,
    /// The sound calls use when a command names none (`kith daemon
    /// --audio-in/--audio-out`; a call moved here uses it too).
    default_audio: std::sync::Mutex<media::Audio>,
    /// The sound card calls use when they name no file.
    sound_card: std::sync::Mutex<SoundCard>,
    /// The camera video calls use when they name no file.
    camera: std::sync::Mutex<CameraChoice>,
    /// Corrupted chunks received (each from a source then avoided).
    bad_chunks: std::sync::atomic::AtomicU64,
    /// Link, dial and client tasks: all end when the daemon stops.
    tasks: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// Wakes the mailbox loop (setting changed, link lost).
    mailbox_notify: tokio::sync::Notify,
    /// Wakes the push loop (setting changed).
    push_notify: tokio::sync::Notify,
    /// How often the own mailbox is collected, in milliseconds.
    mailbox_poll_ms: std::sync::atomic::AtomicU64,
    /// Notices for subscribed clients that do not come from the node's
    /// event channel (deliveries).
    notices: tokio::sync::broadcast::Sender<crate::rpc::Notice>,
    /// Wakes the link manager (a link came up).
    links_changed: tokio::sync::Notify,
    /// Links now open, with when each came up.
    open_links: std::sync::Mutex<Vec<(node_core::transport::Link, std::time::Instant)>>,
    /// Contact requests: the receiving bounds and whom to ask.
    requests: requests::Requests,
    /// The bridges this device carries.
    bridges: bridges::Bridges,
    /// LAN discovery.
    lan: lan::Lan,
    /// DHT lookup.
    dht: dht::DhtState,
}

/// Binds the transport; where the port is 0, first tries the port bound
/// last time, so contacts' cards and hints keep working after a restart.
async fn bind(node: &Node, listen: Vec<SocketAddr>) -> Result<Transport> {
    if let Some(port) = node.saved_listen_port().await {
        let again: Vec<SocketAddr> = listen
            .iter()
            .map(|a| {
                if a.port() == 0 {
                    SocketAddr::new(a.ip(), port)
                } else {
                    *a
                }
            })
            .collect();
        if !listen.is_empty()
            && again != listen
            && let Ok(t) = node.bind_transport(&again).await
        {
            return Ok(t);
        }
    }
    let t = node
        .bind_transport(&listen)
        .await
        .context("starting device links")?;
    if let Some(port) = t.local_addrs().first().map(SocketAddr::port) {
        node.save_listen_port(port).await?;
    }
    Ok(t)
}

/// Where to dial each active device of contact `account`: the addresses
/// known for it (none when only its relay may reach it) and its relay.
fn devices_to_dial(
    node: &Node,
    account: AccountId,
) -> Vec<(DeviceId, Vec<SocketAddr>, Option<String>)> {
    let mut hints: HashMap<DeviceId, Vec<SocketAddr>> = node.dial_targets().into_iter().collect();
    node.contact_devices(&account)
        .into_iter()
        .map(|dev| {
            let addrs = hints.remove(&dev).unwrap_or_default();
            (dev, addrs, node.relay_of(&dev))
        })
        .collect()
}

/// How often the account's mailbox is collected unless set otherwise.
pub const DEFAULT_MAILBOX_POLL: std::time::Duration = std::time::Duration::from_secs(60);

/// Events a peer's account holds.
type Receipt = (AccountId, Vec<EventId>);

/// Receipt batches waiting to be written before links wait to queue more.
const RECEIPTS_QUEUED: usize = 256;
/// Notices a slow subscriber may lag behind before it is told to refresh
/// everything.
const NOTICES_QUEUED: usize = 256;
/// How long receipts gather before they are written.
const RECEIPTS_GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// Writes receipts, gathering what arrives within [`RECEIPTS_GATHER`] into
/// one transaction.
async fn write_receipts(
    writer: node_core::node::Receipts,
    mut rx: tokio::sync::mpsc::Receiver<Receipt>,
    notices: tokio::sync::broadcast::Sender<crate::rpc::Notice>,
) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(RECEIPTS_GATHER).await;
        let mut by_account: HashMap<AccountId, Vec<EventId>> = HashMap::new();
        let mut add = |(account, ids): (AccountId, Vec<EventId>)| {
            by_account.entry(account).or_default().extend(ids);
        };
        add(first);
        while let Ok(more) = rx.try_recv() {
            add(more);
        }
        let mut count = 0;
        for (account, ids) in by_account {
            match writer.delivered(account, &ids).await {
                Ok(()) => count += ids.len() as u64,
                Err(e) => warn!(error = %e, "recording deliveries failed"),
            }
        }
        if count > 0 {
            // No subscriber listening is fine.
            let _ = notices.send(crate::rpc::Notice::Delivered { count });
        }
    }
}

/// File sizes the daemon works with.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Files up to this size are fetched automatically by every device of
    /// a member of their conversation.
    pub auto_fetch: u64,
    /// The largest file `file send` accepts.
    pub max_file: u64,
    /// Tests only: serve every chunk with one bit flipped, to play a
    /// device that serves corrupted data.
    #[doc(hidden)]
    pub danger_corrupt_served: bool,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            auto_fetch: 512 << 20,
            max_file: 4 << 30,
            danger_corrupt_served: false,
        }
    }
}

impl Daemon {
    /// Binds the transport and wraps an opened node.
    pub async fn start(node: Node, listen: Vec<SocketAddr>, echo: bool) -> Result<Arc<Self>> {
        Self::start_with(node, listen, echo, FileLimits::default()).await
    }

    /// [`Daemon::start`] with file limits.
    pub async fn start_with(
        node: Node,
        listen: Vec<SocketAddr>,
        echo: bool,
        limits: FileLimits,
    ) -> Result<Arc<Self>> {
        let transport = bind(&node, listen).await?;
        let (receipts, receipts_rx) = tokio::sync::mpsc::channel(RECEIPTS_QUEUED);
        Ok(Arc::new(Self {
            durable: node.durability(),
            device: node.device(),
            account: node.account(),
            sharing: node.watch_sharing(),
            calls: Default::default(),
            confs: Default::default(),
            conf_dump: Default::default(),
            conf_hostile: Default::default(),
            always_on: Default::default(),
            conf_audio: Default::default(),
            receipts,
            receipts_rx: std::sync::Mutex::new(Some(receipts_rx)),
            node: timed::TimedMutex::with_release(node, Node::publish_sharing),
            transport,
            links: Default::default(),
            echo,
            stop: tokio::sync::Notify::new(),
            was_revoked: Default::default(),
            wire_closed: Default::default(),
            frame_bytes: Default::default(),
            open_links: Default::default(),
            links_changed: tokio::sync::Notify::new(),
            requests: Default::default(),
            bridges: Default::default(),
            lan: Default::default(),
            dht: Default::default(),
            notices: tokio::sync::broadcast::channel(NOTICES_QUEUED).0,
            tasks: Default::default(),
            files_notify: tokio::sync::Notify::new(),
            fetch: Default::default(),
            auto_fetch_limit: limits.auto_fetch,
            wanted_files: Default::default(),
            max_file_size: limits.max_file,
            corrupt_served: limits.danger_corrupt_served,
            media_loss: Default::default(),
            media_delay: Default::default(),
            default_audio: Default::default(),
            sound_card: Default::default(),
            camera: Default::default(),
            bad_chunks: Default::default(),
            mailbox_notify: tokio::sync::Notify::new(),
            push_notify: tokio::sync::Notify::new(),
            mailbox_poll_ms: std::sync::atomic::AtomicU64::new(
                DEFAULT_MAILBOX_POLL.as_millis() as u64
            ),
        }))
    }

    /// Turns LAN discovery off (`kith daemon --no-lan`); before serving.
    pub fn turn_off_lan(&self) {
        self.lan.turn_off();
    }

    /// This device's account.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// This device.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Serves until SIGINT or SIGTERM, then closes links and the store.
    pub async fn serve(self: Arc<Self>) -> Result<()> {
        self.serve_with(true).await
    }

    /// Serves until [`Daemon::shutdown`] (and, with `signals`, SIGINT or
    /// SIGTERM), then closes links and the store. An app that embeds the
    /// daemon passes false: the signals are the app's.
    pub async fn serve_with(self: Arc<Self>, signals: bool) -> Result<()> {
        let socket = self.node.lock().await.profile().socket();
        // We hold the profile lock, so a socket file left here is stale.
        let _ = std::fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", socket.display()))?;
        self.log_ready().await;
        let mut signals = if signals {
            Some((
                signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
                signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            ))
        } else {
            None
        };
        let accept = tokio::spawn(router::accept_loop(Arc::clone(&self)));
        self.spawn(router::manage_links(Arc::clone(&self)));
        self.spawn(conf::recover(Arc::clone(&self)));
        if self.echo {
            self.spawn(echo::echo_loop(Arc::clone(&self)));
        }
        let dial = tokio::spawn(dial::dial_loop(Arc::clone(&self)));
        self.spawn(files::fetch_loop(Arc::clone(&self)));
        self.spawn(mailbox::mailbox_loop(Arc::clone(&self)));
        self.spawn(push::push_loop(Arc::clone(&self)));
        self.spawn(requests::send_loop(Arc::clone(&self)));
        self.spawn(bridges::bridge_loop(Arc::clone(&self)));
        self.spawn(lan::lan_loop(Arc::clone(&self)));
        self.spawn(dht::dht_loop(Arc::clone(&self)));
        let rx = self
            .receipts_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let receipts = match rx {
            Some(rx) => {
                let writer = self.node.lock().await.receipts();
                Some(tokio::spawn(write_receipts(
                    writer,
                    rx,
                    self.notices.clone(),
                )))
            }
            None => None,
        };
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let me = Arc::clone(&self);
                        self.spawn(async move { me.handle_client(stream).await });
                    }
                    Err(e) => warn!(error = %e, "accepting a client failed"),
                },
                () = signalled(signals.as_mut()) => break,
                _ = self.stop.notified() => break,
            }
        }
        info!("shutting down");
        accept.abort();
        dial.abort();
        let _ = accept.await;
        let _ = dial.await;
        // Every task holding the daemon ends, so the store can be closed.
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        tasks.shutdown().await;
        if let Some(receipts) = receipts {
            // Ends once the links, which hold senders, are gone.
            receipts.abort();
            let _ = receipts.await;
        }
        drop(listener);
        let _ = std::fs::remove_file(&socket);
        self.transport.close().await;
        if self.was_revoked.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("this device was revoked from its account; its profile is locked");
        }
        Ok(())
    }

    async fn log_ready(&self) {
        let node = self.node.lock().await;
        let addrs: Vec<String> = self
            .transport
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        info!(
            account = %node.account().short(8),
            device = %node.device().short(8),
            listening = %addrs.join(","),
            "daemon ready"
        );
        if !node.is_protected() {
            warn!("this profile has no passphrase: anyone with the files can read it");
        }
    }

    /// Where this device can be reached: its addresses and, if it has one,
    /// its home relay's URL (for `Hints` and the contact card).
    pub(super) fn own_hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = self
            .transport
            .hints()
            .iter()
            .map(ToString::to_string)
            .collect();
        hints.extend(self.transport.home_relay());
        hints
    }

    /// How each open link's packets travel now, by peer device.
    fn link_paths(&self) -> std::collections::BTreeMap<String, String> {
        let open = self.open_links.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .map(|(l, _)| (l.peer().to_string(), l.path().as_str().to_owned()))
            .collect()
    }

    /// Whether some listen address is beyond loopback (a daemon on loopback
    /// only sends nothing beyond it: no LAN beacons, no DHT).
    fn listens_beyond_loopback(&self) -> bool {
        self.transport
            .local_addrs()
            .iter()
            .any(|a| !a.ip().is_loopback())
    }

    /// The peer's address on each direct link (`status --json`:
    /// `direct_addrs`).
    fn link_direct_addrs(&self) -> std::collections::BTreeMap<String, String> {
        let open = self.open_links.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .filter_map(|(l, _)| Some((l.peer().to_string(), l.direct_addr()?.to_string())))
            .collect()
    }

    /// Wakes the file fetcher.
    fn files_wake(&self) {
        self.files_notify.notify_one();
    }

    /// How often the account's mailbox is collected.
    pub fn mailbox_poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.mailbox_poll_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Chooses the sound card calls use when they name no file.
    pub fn set_sound_card(&self, card: SoundCard) {
        *self.sound_card.lock().unwrap_or_else(|p| p.into_inner()) = card;
    }

    /// The sound card calls use when they name no file.
    pub(super) fn sound_card(&self) -> SoundCard {
        self.sound_card
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Chooses the camera video calls use when they name no file.
    pub fn set_camera(&self, camera: CameraChoice) {
        *self.camera.lock().unwrap_or_else(|p| p.into_inner()) = camera;
    }

    /// The camera video calls use when they name no file.
    pub(super) fn camera(&self) -> CameraChoice {
        self.camera
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Benchmarks: holds every incoming media datagram back by `ms`
    /// before it is read, as a longer path would (this kernel has no
    /// `tc netem`).
    #[doc(hidden)]
    pub fn set_media_delay(&self, ms: u16) {
        self.media_delay
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Benchmarks: lets a contact ring this device `extra` more times a
    /// minute than a person would (a benchmark places dozens of calls).
    #[doc(hidden)]
    pub fn allow_extra_rings(&self, extra: usize) {
        self.calls
            .extra_rings
            .store(extra, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tests only: room calls copy the keys given to this device and the
    /// sealed frames received into files in `dir` (debug builds only).
    #[doc(hidden)]
    #[cfg(debug_assertions)]
    pub fn set_conf_dump(&self, dir: std::path::PathBuf) {
        let _ = self.conf_dump.set(dir);
    }

    /// This is its account's always-on device: room calls prefer it as a
    /// forwarder (`kith daemon --always-on`).
    pub fn set_always_on(&self) {
        self.always_on
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Benchmarks of many daemons in one process: this daemon's room calls
    /// get an audio thread of their own, named `ka-` and the first eight
    /// characters of its device id (its CPU can be read from `/proc`).
    #[doc(hidden)]
    pub fn own_conf_audio_thread(&self) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name(format!("ka-{}", self.device.short(8)))
            .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        let _ = self.conf_audio.set(handle);
        Ok(())
    }

    /// The audio thread this daemon's room calls run on.
    fn conf_audio(&self) -> anyhow::Result<tokio::runtime::Handle> {
        match self.conf_audio.get() {
            Some(h) => Ok(h.clone()),
            None => media::media_runtime(),
        }
    }

    /// Tests only: room calls also send replayed, forged and stale frames
    /// (debug builds only).
    #[doc(hidden)]
    #[cfg(debug_assertions)]
    pub fn set_conf_hostile(&self) {
        self.conf_hostile
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tests only: drops this share (percent, seeded) of incoming call
    /// media datagrams, to play a lossy path.
    #[doc(hidden)]
    pub fn set_media_loss(&self, percent: u8) {
        self.media_loss
            .store(percent.min(100), std::sync::atomic::Ordering::Relaxed);
    }

    /// The WAV files calls use instead of the sound card when a call's
    /// command names none (and a call moved here from another own device
    /// uses): `input` is read now, `output` made now and written when a
    /// call ends.
    pub fn set_default_audio(&self, input: Option<&str>, output: Option<&str>) -> Result<()> {
        let audio = media::Audio::open(input, output)?;
        *self.default_audio.lock().unwrap_or_else(|p| p.into_inner()) = audio;
        Ok(())
    }

    /// The sound a call uses when its command names none.
    fn default_audio(&self) -> media::Audio {
        self.default_audio
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Benchmarks: each room call's media bytes so far (call id, this
    /// device's frames sent, received, forwarded for others).
    #[doc(hidden)]
    pub fn conf_traffic(&self) -> Vec<(String, u64, u64, u64)> {
        conf::traffic(self)
    }

    /// Benchmarks: each call's media clocks (call id, clocks).
    #[doc(hidden)]
    pub fn call_clocks(&self) -> Vec<(String, CallClocks)> {
        calls::clocks(self)
    }

    /// Benchmarks: each call's video clocks (call id, clocks).
    #[doc(hidden)]
    pub fn call_video_clocks(&self) -> Vec<(String, CallVideoClocks)> {
        calls::video_clocks(self)
    }

    /// Sets how often the account's mailbox is collected.
    pub fn set_mailbox_poll(&self, every: std::time::Duration) {
        let ms = u64::try_from(every.as_millis())
            .unwrap_or(u64::MAX)
            .max(100);
        self.mailbox_poll_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Corrupted chunks received so far.
    pub fn bad_chunks(&self) -> u64 {
        self.bad_chunks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs a task that ends when the daemon stops.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget tasks that have finished.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Devices with at least one live link.
    pub fn connected(&self) -> Vec<DeviceId> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(d, _)| *d)
            .collect()
    }

    fn link_up(&self, peer: DeviceId) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        *links.entry(peer).or_default() += 1;
    }

    fn link_down(&self, peer: DeviceId) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = links.get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
        // A contact may now be unreachable: its events may need depositing.
        self.mailbox_notify.notify_one();
    }

    /// This device was revoked: stop at once (the profile is locked).
    fn revoked(&self) {
        if !self
            .was_revoked
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            warn!("this device was revoked from its account: stopping, its profile is locked");
            self.stop.notify_one();
        }
    }

    /// Makes [`Daemon::serve`] return, as SIGTERM does.
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }

    /// When the node's writes are on the disk.
    pub fn durability(&self) -> &node_core::store::Durability {
        &self.durable
    }

    /// Waits until every write so far is on the disk.
    async fn durable_now(&self) -> Result<()> {
        self.durable.sync().await.context("making writes durable")
    }

    /// The node (for in-process benchmarks and tests).
    pub fn node(&self) -> &timed::TimedMutex<Node> {
        &self.node
    }

    /// The transport's bound addresses.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.transport.local_addrs()
    }

    /// Sync frame bytes (sent, received) over all links so far.
    pub fn frame_bytes(&self) -> (u64, u64) {
        let [tx, rx] = &self.frame_bytes;
        (
            tx.load(std::sync::atomic::Ordering::Relaxed),
            rx.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn count_frames(&self, sent: bool, bytes: usize) {
        self.frame_bytes[usize::from(!sent)]
            .fetch_add(bytes as u64 + 4, std::sync::atomic::Ordering::Relaxed);
    }

    /// UDP bytes (sent, received) over all links so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        let closed = *self.wire_closed.lock().unwrap_or_else(|p| p.into_inner());
        let open = self.open_links.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .map(|(l, _)| l.wire_bytes())
            .fold(closed, |(a, b), (x, y)| (a + x, b + y))
    }

    /// Closes the node's store.
    pub async fn close(self: Arc<Self>) {
        if let Ok(me) = Arc::try_unwrap(self) {
            me.node.into_inner().close().await;
        }
    }
}

/// Waits for SIGTERM or SIGINT (for ever, without the handlers).
async fn signalled(
    signals: Option<&mut (tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
) {
    match signals {
        Some((term, int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        None => std::future::pending().await,
    }
}
