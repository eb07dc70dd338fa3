//! The bridges this device carries (see `docs/bridges.md`): for every
//! bridge the account's self log gives to this device, a session with the
//! other network (`kith-bridge`), started with the password kept in this
//! device's store. What arrives is written into the bridged conversation
//! (and so reaches every own device by sync); what any own device queued
//! there (OUT events without a state) is handed to the session, and what
//! becomes of it (sent, delivered, failed) is written back.
//!
//! One loop reconciles: on start, on every new event of the self log or a
//! bridged conversation, and every few seconds. The node is locked only
//! for its own steps, never across a login.

use super::Daemon;
use anyhow::{Context, Result};
use kith_bridge::xmpp::{self, XmppBridge};
use kith_bridge::{Bridge, BridgeError, Incoming, Outgoing, Password, Status};
use node_core::node::bridged::{Arrived, BridgeRecord, OutState};
use node_core::{EventId, LogId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// How often the loop looks again with nothing new.
const TICK: Duration = Duration::from_secs(3);
/// The longest wait between tries to start a bridge the network refuses
/// for now (unreachable, no TLS).
const MAX_START_BACKOFF: Duration = Duration::from_secs(60);
/// Most conversations one bridge opens for people who are not in its
/// contact list (anyone on the network can write; each conversation is a
/// setting every own device keeps). Past it, such messages are dropped
/// (logged) until the user opens the conversation (`bridge chat`).
const MAX_STRANGER_CHATS: usize = 100;
/// Most messages remembered as handed to a session, for their receipts.
const MAX_HANDED: usize = 10_000;

/// The sessions this device runs, by bridge id.
#[derive(Debug, Default)]
pub(super) struct Bridges {
    running: Mutex<HashMap<String, Arc<Running>>>,
    /// Bridges whose start is under way or waiting to try again, with
    /// their status.
    starting: Mutex<HashMap<String, Status>>,
    /// Wakes the loop.
    pub(super) notify: tokio::sync::Notify,
}

/// One running session.
#[derive(Debug)]
pub(super) struct Running {
    record: BridgeRecord,
    bridge: XmppBridge,
    /// OUT events handed to the session, with their logs (at most
    /// [`MAX_HANDED`], the oldest forgotten first).
    handed: Mutex<(HashMap<EventId, LogId>, std::collections::VecDeque<EventId>)>,
    /// Group chats joined this session.
    joined: Mutex<HashSet<LogId>>,
    /// Each conversation's event count when last looked at.
    seen: Mutex<HashMap<LogId, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Bridges {
    /// The status of a bridge this device carries, if it does.
    pub(super) fn status(&self, id: &str) -> Option<Status> {
        if let Some(r) = lock(&self.running).get(id) {
            return Some(r.bridge.status());
        }
        lock(&self.starting).get(id).cloned()
    }

    fn stop(&self, id: &str) {
        if let Some(r) = lock(&self.running).remove(id) {
            r.bridge.close();
        }
        lock(&self.starting).remove(id);
    }
}

/// The config for a bridge record.
fn config(record: &BridgeRecord, ca_pem: Option<Vec<u8>>) -> xmpp::Config {
    xmpp::Config {
        jid: record.account.clone(),
        server: record.server.clone(),
        extra_roots_pem: ca_pem,
    }
}

impl Daemon {
    /// `kith bridge add`: logs in once (nothing is kept if that fails),
    /// then records the bridge on every own device and keeps the password
    /// in this device's store.
    pub(super) async fn bridge_add(
        self: &Arc<Self>,
        network: &str,
        account: &str,
        server: Option<String>,
        ca_pem: Option<String>,
        password: &str,
    ) -> Result<String> {
        let network: kith_bridge::Network = network.parse()?;
        let account = account.trim().to_owned();
        let record = BridgeRecord {
            id: BridgeRecord::id_for(network.name(), &account),
            network: network.name().into(),
            account,
            device: self.device,
            server,
        };
        let ca = ca_pem.map(String::into_bytes);
        let (bridge, rx) =
            xmpp::start(&config(&record, ca.clone()), Password::new(password.into()))
                .await
                .map_err(|e| match e {
                    BridgeError::Refused(_) => anyhow::anyhow!("{e}; nothing was kept"),
                    other => anyhow::anyhow!("{other}; nothing was kept"),
                })?;
        {
            let mut node = self.node.lock().await;
            let now = crate::now_ms();
            node.add_bridge(&record, now).await?;
            node.set_bridge_secret(&record.id, &encode_secret(password, ca.as_deref()))
                .await?;
        }
        self.bridges.stop(&record.id);
        self.run_bridge(record.clone(), bridge, rx);
        info!(bridge = %record.id, "bridge added");
        Ok(record.id)
    }

    /// `kith bridge remove`.
    pub(super) async fn bridge_remove(self: &Arc<Self>, id: &str) -> Result<()> {
        let removed = {
            let mut node = self.node.lock().await;
            let removed = node.remove_bridge(id, crate::now_ms()).await?;
            if removed.device == self.device {
                node.set_bridge_secret(&removed.id, &[]).await?;
            }
            removed
        };
        self.bridges.stop(&removed.id);
        Ok(())
    }

    /// `kith bridge list`: every bridge of the account; the state of those
    /// this device carries.
    pub(super) fn bridge_list(&self, node: &node_core::node::Node) -> Vec<kith_client::BridgeInfo> {
        let names: HashMap<node_core::DeviceId, String> = node
            .devices()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        node.bridges()
            .into_iter()
            .map(|b| {
                let device_name = names
                    .get(&b.device)
                    .cloned()
                    .unwrap_or_else(|| b.device.short(12));
                let (online, status) = if b.device == self.device {
                    match self.bridges.status(&b.id) {
                        Some(s) => (s == Status::Online, s.to_string()),
                        None => (false, "starting".to_owned()),
                    }
                } else {
                    let linked = self.connected().contains(&b.device);
                    let where_ = if linked {
                        "connected now"
                    } else {
                        "not connected now"
                    };
                    (
                        false,
                        format!("carried by {device_name} ({where_}); its state is known there"),
                    )
                };
                kith_client::BridgeInfo {
                    id: b.id,
                    network: b.network,
                    account: b.account,
                    device: b.device,
                    device_name,
                    online,
                    status,
                }
            })
            .collect()
    }

    /// Wakes the bridge loop (a conversation was opened, say).
    pub(super) fn bridges_changed(&self) {
        self.bridges.notify.notify_one();
    }

    /// Starts the tasks of a session that logged in.
    fn run_bridge(
        self: &Arc<Self>,
        record: BridgeRecord,
        bridge: XmppBridge,
        rx: tokio::sync::mpsc::Receiver<Incoming>,
    ) {
        let running = Arc::new(Running {
            record: record.clone(),
            bridge,
            handed: Mutex::default(),
            joined: Mutex::default(),
            seen: Mutex::default(),
        });
        lock(&self.bridges.starting).remove(&record.id);
        if let Some(old) =
            lock(&self.bridges.running).insert(record.id.clone(), Arc::clone(&running))
        {
            old.bridge.close();
        }
        let me = Arc::clone(self);
        self.spawn(async move { me.take_incoming(running, rx).await });
        self.bridges.notify.notify_one();
    }

    /// What a session reports, into the node.
    async fn take_incoming(
        self: Arc<Self>,
        running: Arc<Running>,
        mut rx: tokio::sync::mpsc::Receiver<Incoming>,
    ) {
        while let Some(event) = rx.recv().await {
            if let Err(e) = self.incoming(&running, event).await {
                warn!(bridge = %running.record.id, "bridge event not kept: {e:#}");
            }
        }
    }

    async fn incoming(&self, running: &Running, event: Incoming) -> Result<()> {
        let now = crate::now_ms();
        let id = running.record.id.as_str();
        match event {
            Incoming::Message(m) => {
                // Our own messages echoed by a group (or in its history)
                // are already in the conversation as sent.
                if m.own
                    && m.id
                        .as_deref()
                        .is_some_and(|i| i.parse::<EventId>().is_ok())
                {
                    return Ok(());
                }
                // A known conversation or a group is taken at once; only a
                // new 1:1 conversation outside the contact list is counted
                // against the cap (that count decodes every setting).
                let known = {
                    let node = self.node.lock().await;
                    m.group || node.is_bridged(&LogId::bridged(id, &m.chat)) || {
                        let contacts = running.bridge.contacts();
                        let strangers = node
                            .bridged()
                            .iter()
                            .filter(|b| b.bridge == id && !b.group)
                            .count()
                            .saturating_sub(contacts.len());
                        contacts.iter().any(|c| c.address == m.chat)
                            || strangers < MAX_STRANGER_CHATS
                    }
                };
                if !known {
                    warn!(bridge = %id, "a message from someone not in the contact list dropped: {MAX_STRANGER_CHATS} such conversations already");
                    return Ok(());
                }
                let arrived = Arrived {
                    sender: m.sender,
                    own: m.own,
                    network_id: m.id.clone(),
                    network_time: m.time_ms,
                    text: m.text,
                };
                {
                    let mut node = self.node.lock().await;
                    let log = node.open_bridged(id, &m.chat, m.group, now).await?;
                    node.bridged_arrived(log, &arrived, now).await?;
                }
                // Kept (durably, with the store's group commit): now the
                // sender may hear that it arrived.
                if m.wants_receipt
                    && let Some(network_id) = &m.id
                {
                    self.durable.sync().await?;
                    let _ = running.bridge.received(&m.chat, network_id);
                }
            }
            Incoming::Contacts(list) => {
                let mut node = self.node.lock().await;
                for c in list {
                    let log = LogId::bridged(id, &c.address);
                    if !node.is_bridged(&log)
                        && let Err(e) = node.open_bridged(id, &c.address, false, now).await
                    {
                        warn!(bridge = %id, "a contact of the bridged account not opened: {e}");
                    }
                }
            }
            Incoming::Sent { id: out } => {
                self.out_state(running, &out, None, OutState::Sent, "")
                    .await?;
            }
            Incoming::Delivered { id: out, chat } => {
                // The conversation follows from the recipient, even for a
                // message handed over by an earlier run.
                let log = LogId::bridged(id, &chat);
                self.out_state(running, &out, Some(log), OutState::Delivered, "")
                    .await?;
            }
            Incoming::Failed { id: out, why } => {
                self.out_state(running, &out, None, OutState::Failed, &why)
                    .await?;
            }
            Incoming::Joined { group } => {
                info!(bridge = %id, "joined a group chat");
                let _ = group;
            }
            Incoming::Status(status) => {
                if status == Status::Online {
                    // A new session: groups are joined again by the session
                    // itself; anything unsent is looked at again.
                    lock(&running.seen).clear();
                    self.bridges.notify.notify_one();
                }
            }
        }
        Ok(())
    }

    async fn out_state(
        &self,
        running: &Running,
        out: &str,
        to: Option<LogId>,
        state: OutState,
        why: &str,
    ) -> Result<()> {
        let Ok(event) = out.parse::<EventId>() else {
            return Ok(());
        };
        let handed = lock(&running.handed).0.get(&event).copied();
        let log = match (handed, to) {
            // A receipt names its recipient: it must be the one we sent to.
            (Some(h), Some(t)) if h != t => return Ok(()),
            (Some(h), _) => h,
            (None, Some(t)) => t,
            (None, None) => return Ok(()),
        };
        if state != OutState::Sent {
            lock(&running.handed).0.remove(&event);
        }
        let mut node = self.node.lock().await;
        if !node.is_bridged(&log) {
            return Ok(());
        }
        node.bridged_state(log, event, state, why, crate::now_ms())
            .await?;
        Ok(())
    }

    /// Starts and stops sessions as the self log says, and hands each
    /// running one what its conversations queued.
    async fn reconcile(self: &Arc<Self>) -> Result<()> {
        let (mine, bridged) = {
            let node = self.node.lock().await;
            let mine: Vec<BridgeRecord> = node
                .bridges()
                .into_iter()
                .filter(|b| b.device == self.device)
                .collect();
            (mine, node.bridged())
        };
        // Stop what is no longer this device's.
        let wanted: HashSet<&str> = mine.iter().map(|b| b.id.as_str()).collect();
        let stale: Vec<String> = lock(&self.bridges.running)
            .keys()
            .chain(lock(&self.bridges.starting).keys())
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        for id in stale {
            info!(bridge = %id, "bridge no longer carried here: stopped");
            self.bridges.stop(&id);
            // Its password does not stay where it is no longer used.
            self.node.lock().await.set_bridge_secret(&id, &[]).await?;
        }
        // Start what is this device's and not running.
        for record in &mine {
            let busy = lock(&self.bridges.running).contains_key(&record.id)
                || lock(&self.bridges.starting).contains_key(&record.id);
            if !busy {
                lock(&self.bridges.starting).insert(record.id.clone(), Status::Connecting);
                let me = Arc::clone(self);
                let record = record.clone();
                self.spawn(async move { me.start_bridge(record).await });
            }
        }
        // Hand over what waits.
        let running: Vec<Arc<Running>> = lock(&self.bridges.running).values().cloned().collect();
        for r in running {
            for b in bridged.iter().filter(|b| b.bridge == r.record.id) {
                // One conversation's trouble (a bad group address) does not
                // hold up the others.
                if let Err(e) = self.hand_over(&r, b).await {
                    warn!(bridge = %r.record.id, "bridged conversation {}: {e:#}", b.log.short(12));
                }
            }
        }
        Ok(())
    }

    /// Logs a bridge in from its kept password, trying again with backoff
    /// while the network is away; a refused password stops it.
    async fn start_bridge(self: Arc<Self>, record: BridgeRecord) {
        let mut delay = Duration::from_secs(1);
        loop {
            let secret = self.node.lock().await.bridge_secret(&record.id).await;
            let (password, ca) = match secret {
                Ok(Some(s)) => match decode_secret(&s) {
                    Some(v) => v,
                    None => {
                        lock(&self.bridges.starting).insert(
                            record.id.clone(),
                            Status::Refused {
                                why: "its kept password is damaged: add the bridge again here"
                                    .into(),
                            },
                        );
                        return;
                    }
                },
                _ => {
                    lock(&self.bridges.starting).insert(
                        record.id.clone(),
                        Status::Refused {
                            why: "its password is not on this device: add the bridge again here"
                                .into(),
                        },
                    );
                    return;
                }
            };
            let started = xmpp::start(
                &config(&record, ca),
                Password::new(password.as_str().to_owned()),
            )
            .await;
            if !lock(&self.bridges.starting).contains_key(&record.id) {
                // Removed meanwhile.
                if let Ok((bridge, _)) = started {
                    bridge.close();
                }
                return;
            }
            match started {
                Ok((bridge, rx)) => {
                    info!(bridge = %record.id, "bridge logged in");
                    self.run_bridge(record, bridge, rx);
                    return;
                }
                Err(e)
                    if e.kind() == kith_bridge::ErrorKind::Refused
                        || e.kind() == kith_bridge::ErrorKind::Invalid =>
                {
                    warn!(bridge = %record.id, "bridge login refused: {e}");
                    lock(&self.bridges.starting)
                        .insert(record.id.clone(), Status::Refused { why: e.to_string() });
                    return;
                }
                Err(e) => {
                    lock(&self.bridges.starting).insert(
                        record.id.clone(),
                        Status::Offline {
                            why: e.to_string(),
                            retry_in: delay,
                        },
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_START_BACKOFF);
                }
            }
        }
    }

    /// Hands a conversation's unsent messages to its session (once each),
    /// and joins it if it is a group.
    async fn hand_over(
        &self,
        running: &Running,
        b: &node_core::node::bridged::BridgedRecord,
    ) -> Result<()> {
        if b.group && !lock(&running.joined).contains(&b.log) {
            // Marked first: a bad address is reported once, not every tick.
            lock(&running.joined).insert(b.log);
            let since = self.node.lock().await.bridged_last_time(b.log).await?;
            running.bridge.join(&b.address, since)?;
        }
        let unsent = {
            let node = self.node.lock().await;
            let len = node.log_len(&b.log);
            if lock(&running.seen).get(&b.log) == Some(&len) {
                return Ok(());
            }
            lock(&running.seen).insert(b.log, len);
            node.bridged_unsent(b.log).await?
        };
        for u in unsent {
            if lock(&running.handed).0.contains_key(&u.id) {
                continue;
            }
            let out = Outgoing {
                id: u.id.to_string(),
                to: b.address.clone(),
                group: b.group,
                text: u.text,
            };
            match running.bridge.send(out) {
                Ok(()) => {
                    let mut handed = lock(&running.handed);
                    if handed.1.len() >= MAX_HANDED
                        && let Some(old) = handed.1.pop_front()
                    {
                        handed.0.remove(&old);
                    }
                    handed.0.insert(u.id, b.log);
                    handed.1.push_back(u.id);
                }
                Err(e) => {
                    // Busy: looked at again next time.
                    lock(&running.seen).remove(&b.log);
                    return Err(e).context("handing a message to the bridge");
                }
            }
        }
        Ok(())
    }
}

/// The loop (see the module documentation).
pub(super) async fn bridge_loop(d: Arc<Daemon>) {
    let mut events = d.node.lock().await.subscribe();
    loop {
        if let Err(e) = d.reconcile().await {
            warn!("bridges: {e:#}");
        }
        tokio::select! {
            ev = events.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev {
                    return;
                }
                // Several at once: one look.
                while events.try_recv().is_ok() {}
            }
            () = d.bridges.notify.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// The kept secret: the password, and the CA file given with it.
fn encode_secret(password: &str, ca: Option<&[u8]>) -> zeroize::Zeroizing<Vec<u8>> {
    let mut w = node_core::wire::Writer::new();
    w.str(password).bytes(ca.unwrap_or_default());
    zeroize::Zeroizing::new(w.finish())
}

fn decode_secret(bytes: &[u8]) -> Option<(zeroize::Zeroizing<String>, Option<Vec<u8>>)> {
    let mut r = node_core::wire::Reader::new(bytes);
    let password = zeroize::Zeroizing::new(r.str(4096, "password").ok()?.to_owned());
    let ca = r.bytes(1 << 20, "ca").ok()?.to_vec();
    Some((password, (!ca.is_empty()).then_some(ca)))
}
