//! The async driver of one link's sync `Session`: reads frames, runs the
//! session against the node, and carries out its actions (send, serve,
//! ingest, receipts, hints), never telling a peer it holds what is not on
//! the disk yet.

use super::frames::{Outgoing, read_frames};
use super::*;
use node_core::DeviceId;
use std::collections::HashMap;

pub(super) struct Driver<'a> {
    d: &'a Daemon,
    link: &'a Link,
    session: Session,
    writer: Outgoing,
    /// The node's sharing scope this link last synced for.
    scope: u64,
    /// Events the peer offered (`Have`), to ask for once due if still
    /// missing.
    offered: VecDeque<(Instant, LogId, Vec<EventId>)>,
    /// The sharing scope when device hints were last sent.
    hints_scope: u64,
    /// Whether our address hints went out: only once the peer is proven
    /// (an active device of the account it claims).
    hints_sent: bool,
    /// When the link came up.
    since: Instant,
    /// Whether the peer was seen syncing our conversation (so it has this
    /// account as a contact: no contact request is needed).
    conversation_seen: bool,
    /// Device hints told on this link, and when: the same again only
    /// after [`HINTS_AGAIN`] (a room forming changes what is shared many
    /// times a second, and each change sent every hint again).
    told: HashMap<DeviceId, (Vec<String>, Instant)>,
    /// Whether every hint was told once more, [`HINTS_RETOLD`] after the
    /// first ones (the peer drops hints from a device it has not proven
    /// yet: its account log may still have been on its way).
    retold: bool,
    /// When the first hints went out.
    hints_at: Instant,
}

/// How long after the first device hints on a link all are told once more.
const HINTS_RETOLD: Duration = Duration::from_secs(5);

/// Least time before a device hint the peer was told on this link is told
/// again unchanged (it may have had no place for it then).
const HINTS_AGAIN: Duration = Duration::from_secs(30);

/// Batches at least this large are verified on every core, off the
/// async threads; smaller ones inline (a thread hop costs more).
pub(super) const PARALLEL_VERIFY: usize = 64;

/// Runs one link's session. `stranger` is set to the peer's account if the
/// node started following it for this link (it is forgotten again after).
pub(super) async fn drive(
    d: &Arc<Daemon>,
    link: &Link,
    role: Role,
    stranger: &mut Option<AccountId>,
) -> Result<()> {
    let (writer, reader): (FrameWriter, FrameReader) = match role {
        Role::Dialer => link.open().await?,
        // A peer that opens no stream is closed like one that says no hello.
        Role::Listener => tokio::time::timeout(HELLO_WAIT, link.accept())
            .await
            .map_err(|_| anyhow::anyhow!("no sync stream within {} s", HELLO_WAIT.as_secs()))??,
    };
    // Frames are read by their own task: reading a frame is not
    // cancel-safe, and the loop below waits on timers and new events too.
    let (frames_tx, mut frames) = tokio::sync::mpsc::channel(16);
    let _reader = crate::daemon::files::AbortOnDrop(tokio::spawn(read_frames(reader, frames_tx)));
    // Every further stream on this link is a file request; they end with it.
    let _file_streams = crate::daemon::files::AbortOnDrop(tokio::spawn(
        crate::daemon::files::serve_streams(Arc::clone(d), link.clone()),
    ));
    d.files_wake();
    let (me, mut events, scope) = {
        let node = d.node.lock().await;
        (node.account(), node.subscribe(), node.scope())
    };
    let (session, first) = Session::new(role, me, link.peer());
    let mut drv = Driver {
        d: d.as_ref(),
        link,
        session,
        writer: Outgoing::new(writer),
        scope,
        offered: VecDeque::new(),
        hints_scope: scope,
        hints_sent: false,
        since: Instant::now(),
        conversation_seen: false,
        told: HashMap::new(),
        retold: false,
        hints_at: Instant::now(),
    };
    drv.execute(first.into()).await?;
    let hello = tokio::time::sleep(HELLO_WAIT);
    tokio::pin!(hello);
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.tick().await;
    let mut hints = tokio::time::interval(HINTS_EVERY);
    let mut offers = tokio::time::interval(OFFER_CHECK);
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(bytes) = frame.transpose()? else { return Ok(()) };
                d.count_frames(false, bytes.len());
                let msg = Msg::decode(&bytes).context("malformed frame")?;
                tracing::trace!(peer = %link.peer().short(8), tag = bytes[0], len = bytes.len(), "frame in");
                // The peer syncing our conversation (not refusing it) has
                // this account as a contact: it needs no request.
                let about_conversation = !drv.conversation_seen
                    && matches!(msg, Msg::Same { .. } | Msg::Synced { .. } | Msg::Events { .. })
                    && drv.session.peer_account().is_some_and(|a| {
                        node_core::sync::msg_log(&msg) == Some(LogId::conversation(d.account, a))
                    });
                let actions = {
                    let mut node = d.node.lock().await;
                    if drv.session.peer_account().is_none()
                        && let Msg::Hello { account, .. } = &msg
                    {
                        // A blocked account's links are refused.
                        if node.is_blocked(*account) {
                            bail!("account {} is blocked", account.short(12));
                        }
                        // A stranger dialling in for a public room: follow
                        // its account log so its devices can be checked.
                        if node.follow_stranger(*account) {
                            *stranger = Some(*account);
                            drv.scope = node.scope();
                        }
                    }
                    let actions = drv.session.on_msg(msg, &*node)?;
                    // Only once the session accepted it, from a device the
                    // peer's account log proves.
                    if about_conversation
                        && let Some(a) = drv.session.peer_account()
                        && node_core::sync::View::device_active(&*node, a, link.peer())
                    {
                        drv.conversation_seen = true;
                        d.requests.synced(a);
                    }
                    actions
                };
                drv.execute(actions.into()).await?;
                if !drv.hints_sent {
                    drv.first_hints().await?;
                }
            }
            _ = &mut hello, if drv.session.peer_account().is_none() => {
                bail!("no hello within {} s", HELLO_WAIT.as_secs());
            }
            ev = events.recv() => match ev {
                Ok(first) => {
                    // Push everything already waiting in one go, per log.
                    let mut batch = vec![first];
                    let mut lagged = false;
                    while batch.len() < 4096 {
                        match events.try_recv() {
                            Ok(ev) => batch.push(ev),
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                            Err(_) => break,
                        }
                    }
                    drv.push(batch).await?;
                    if lagged {
                        drv.resync().await?;
                    }
                }
                Err(RecvError::Lagged(_)) => drv.resync().await?,
                Err(RecvError::Closed) => return Ok(()),
            },
            // The dialer's round every minute syncs both ways: the
            // listener asking for one too made two.
            _ = resync.tick(), if role == Role::Dialer => drv.resync().await?,
            _ = hints.tick() => drv.tell_hints().await?,
            _ = offers.tick(), if !drv.offered.is_empty() => drv.want_offered().await?,
        }
    }
}

impl Driver<'_> {
    /// Pushes new local events (not those that came from this peer).
    pub(super) async fn push(&mut self, batch: Vec<node_core::node::LocalEvent>) -> Result<()> {
        let peer = self.link.peer();
        let mut by_log: Vec<(LogId, Vec<node_core::node::LocalEvent>)> = Vec::new();
        for ev in batch.into_iter().filter(|e| e.from != Some(peer)) {
            match by_log.iter_mut().find(|(l, _)| *l == ev.log) {
                Some((_, v)) => v.push(ev),
                None => by_log.push((ev.log, vec![ev])),
            }
        }
        let mut actions = VecDeque::new();
        {
            let node = self.d.node.lock().await;
            let connected = self.d.connected();
            for (log, events) in by_log {
                // Room events go at once only to the room's ring neighbours
                // (and own devices); the others reconcile.
                if node.is_room(&log) && !node.room_push_to(&log, &peer, &connected) {
                    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
                    actions.extend(self.session.offer(log, &ids, &*node));
                    continue;
                }
                let bytes = events.iter().map(|e| e.bytes.to_vec()).collect();
                actions.extend(self.session.local_events(log, bytes, &*node));
            }
            if node.scope() != self.scope {
                self.scope = node.scope();
                actions.extend(self.session.extend(&*node));
            }
        }
        self.execute(actions).await
    }

    /// Tells the peer where room members are, again, after what is shared
    /// changed (at most every tick: a room forming changes it often).
    pub(super) async fn tell_hints(&mut self) -> Result<()> {
        if !self.hints_sent {
            self.first_hints().await?;
            if !self.hints_sent && self.since.elapsed() > PROOF_WAIT {
                bail!("peer not proven within {} s", PROOF_WAIT.as_secs());
            }
            return Ok(());
        }
        // A device revoked while linked hears no more addresses.
        if self.proven_account().is_none() {
            bail!("peer is no longer an active device of its account");
        }
        let retell = !self.retold && self.hints_at.elapsed() >= HINTS_RETOLD;
        if retell {
            self.retold = true;
            self.told.clear();
        }
        let actions: VecDeque<Action> = {
            let node = self.d.node.lock().await;
            if node.scope() == self.hints_scope && !retell {
                return Ok(());
            }
            self.hints_scope = node.scope();
            self.untold(device_hints(&node, self.link.peer()))
        };
        self.execute(actions).await
    }

    /// Sends where this device and (for the peer's account) its other
    /// devices and room members are, once the peer is proven: an
    /// unauthenticated key, or a device its account log does not list as
    /// active, learns no address.
    pub(super) async fn first_hints(&mut self) -> Result<()> {
        let Some(account) = self.session.peer_account() else {
            return Ok(());
        };
        let actions: VecDeque<Action> = {
            let node = self.d.node.lock().await;
            if !node_core::sync::View::device_active(&*node, account, self.link.peer()) {
                return Ok(());
            }
            self.hints_sent = true;
            self.hints_at = Instant::now();
            self.hints_scope = node.scope();
            let mut first = VecDeque::from([Action::Send(Msg::Hints {
                addrs: self.d.own_hints(),
            })]);
            first.extend(self.untold(device_hints(&node, self.link.peer())));
            first
        };
        self.execute(actions).await
    }

    /// Of these device hints, those not told on this link lately as they
    /// are (see [`untold`]).
    fn untold(&mut self, hints: Vec<Action>) -> VecDeque<Action> {
        untold(&mut self.told, hints, Instant::now())
    }

    /// Asks for offered events still missing once their wait is over.
    pub(super) async fn want_offered(&mut self) -> Result<()> {
        let now = Instant::now();
        let mut actions = VecDeque::new();
        {
            let node = self.d.node.lock().await;
            while let Some((due, _, _)) = self.offered.front() {
                if *due > now {
                    break;
                }
                let Some((_, log, ids)) = self.offered.pop_front() else {
                    break;
                };
                let Some(dag) = node.log(&log) else {
                    continue;
                };
                let missing: Vec<EventId> = ids.into_iter().filter(|id| !dag.knows(id)).collect();
                if !missing.is_empty() {
                    actions.push_back(Action::Send(Msg::Want { log, ids: missing }));
                }
            }
        }
        self.execute(actions).await
    }

    pub(super) async fn resync(&mut self) -> Result<()> {
        let actions = {
            let node = self.d.node.lock().await;
            self.session.resync(&*node)
        };
        self.execute(actions.into()).await
    }

    pub(super) async fn execute(&mut self, mut queue: VecDeque<Action>) -> Result<()> {
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send(msg) => {
                    if says_held(&msg) {
                        // Never tell a peer we hold what we could still lose.
                        self.d.durable_now().await?;
                    }
                    self.writer.send(self.d, vec![msg.encode()])?
                }
                Action::Serve { log, ids } => {
                    // An own event just written must be on the disk before
                    // it leaves (after a crash its sequence number would be
                    // used again for another event).
                    self.d.durable_now().await?;
                    // Read from the store without holding the node.
                    let reader = self.d.node.lock().await.event_reader();
                    let events = reader.serve(log, &ids).await?;
                    let frames: Vec<Vec<u8>> = events_messages(log, events)
                        .iter()
                        .map(Msg::encode)
                        .collect();
                    self.writer.send(self.d, frames)?;
                }
                Action::Ingest { log, events } => queue.extend(self.ingest(log, events).await?),
                Action::Receipts { log: _, ids } => {
                    // Only a device its account log lists speaks for it.
                    if let Some(account) = self.proven_account() {
                        self.receipt(account, ids).await?;
                    }
                }
                Action::ReceiptsAll { log, heads } => {
                    let Some(account) = self.proven_account() else {
                        continue;
                    };
                    let ids = {
                        let node = self.d.node.lock().await;
                        node.outbox_below(log, &heads).await?
                    };
                    if !ids.is_empty() {
                        self.receipt(account, ids).await?;
                    }
                }
                Action::Hints(addrs) => {
                    // Kept across restarts (the device may be dialled
                    // later), for devices of accounts we know only.
                    if self.proven_account().is_some() {
                        let (parsed, relay) = split_hints(&addrs);
                        let mut node = self.d.node.lock().await;
                        node.set_hints(self.link.peer(), parsed).await?;
                        node.set_relay_hint(self.link.peer(), relay).await?;
                    }
                }
                Action::Have { log, ids } => {
                    // Bounded: a peer cannot make this device keep more.
                    let queued: usize = self.offered.iter().map(|(_, _, i)| i.len()).sum();
                    if queued + ids.len() <= MAX_OFFERED {
                        self.offered
                            .push_back((Instant::now() + OFFER_WAIT, log, ids));
                    }
                }
                Action::DeviceHints { device, addrs } => {
                    let Some(account) = self.proven_account() else {
                        continue;
                    };
                    let (parsed, relay) = split_hints(&addrs);
                    let mut node = self.d.node.lock().await;
                    // Only for other devices of the sender's own account,
                    // or of members of a room we share with it (a dial
                    // still needs that device's key to succeed).
                    if device == self.link.peer() {
                        continue;
                    }
                    if node.may_hint(account, &device) {
                        node.take_hints(account, device, parsed, relay).await?;
                    } else {
                        // Perhaps a member whose account log is on its way:
                        // kept aside until it is known.
                        node.stash_hints(account, device, parsed, relay);
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues receipts for the daemon's receipt writer.
    pub(super) async fn receipt(&self, account: AccountId, ids: Vec<EventId>) -> Result<()> {
        self.d
            .receipts
            .send((account, ids))
            .await
            .map_err(|_| anyhow::anyhow!("the daemon is stopping"))
    }

    /// The peer's account if its account log (as we hold it) lists the
    /// link's device as active: what `Hello` claimed, proven. A revoked
    /// device proves nothing (its receipts and hints are ignored).
    pub(super) fn proven_account(&self) -> Option<AccountId> {
        let claimed = self.session.peer_account()?;
        let sharing = self.d.sharing.borrow();
        sharing
            .device_active(claimed, self.link.peer())
            .then_some(claimed)
    }

    pub(super) fn peer_account(&self) -> Result<AccountId> {
        self.session
            .peer_account()
            .context("peer has not said hello")
    }

    /// Stores received events; returns the session's follow-up actions.
    pub(super) async fn ingest(&mut self, log: LogId, events: Vec<Vec<u8>>) -> Result<Vec<Action>> {
        // Only after the peer said hello.
        self.peer_account()?;
        let peer = self.link.peer();
        // Signatures are checked on every core before the node is taken.
        let verified = if events.len() < PARALLEL_VERIFY {
            node_core::node::verify_all(&events, 1)
        } else {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            tokio::task::spawn_blocking(move || node_core::node::verify_all(&events, threads))
                .await
                .context("verifying events")?
        };
        let ids: Vec<Option<EventId>> = verified
            .iter()
            .map(|v| v.as_ref().ok().map(|v| v.event().id()))
            .collect();
        let mut node = self.d.node.lock().await;
        // The session has checked that this peer may write `log` (an active
        // device of an entitled account) before asking for this ingest.
        let outcomes = node
            .ingest_verified(log, verified, crate::now_ms(), Some(peer))
            .await?;
        let (mut stored, mut missing): (Vec<EventId>, Vec<EventId>) = (Vec::new(), Vec::new());
        let mut refused = Vec::new();
        for (o, id) in outcomes.into_iter().zip(ids) {
            match o {
                Ok(Ingested::Stored(ids)) => stored.extend(ids),
                Ok(Ingested::Held(m)) => missing.extend(m),
                Err(NodeError::Rejected(node_core::log::Rejection::Duplicate(id))) => {
                    stored.push(id)
                }
                Err(e) => {
                    debug!(peer = %peer.short(8), error = %e, "event refused");
                    refused.extend(id);
                }
            }
        }
        // Rooms or members newly followed: sync again, account logs first.
        let again = node.scope() != self.scope;
        self.scope = node.scope();
        if log == LogId::account(node.account()) && node.is_revoked() {
            self.d.revoked();
        }
        missing.sort();
        missing.dedup();
        missing.retain(|id| node.log(&log).is_some_and(|dag| !dag.knows(id)));
        // Events pushed out of the held buffer are no longer waited for.
        refused.extend(node.take_evicted());
        let mut actions = self
            .session
            .ingested(log, stored.clone(), missing, &*node)?;
        if !refused.is_empty() {
            actions.extend(self.session.refused(log, &refused, &*node));
        }
        if again {
            actions.extend(self.session.extend(&*node));
        }
        Ok(actions)
    }
}

/// Of these actions, all but the device hints `told` holds as they are
/// from less than [`HINTS_AGAIN`] before `now`; those kept are noted as
/// told at `now`. Bounded: entries older than that are dropped, and each
/// call adds at most what `device_hints` gives for one peer.
fn untold(
    told: &mut HashMap<DeviceId, (Vec<String>, Instant)>,
    hints: Vec<Action>,
    now: Instant,
) -> VecDeque<Action> {
    told.retain(|_, (_, at)| now.saturating_duration_since(*at) < HINTS_AGAIN);
    hints
        .into_iter()
        .filter(|a| {
            let Action::Send(Msg::DeviceHints { device, addrs }) = a else {
                return true;
            };
            if told.get(device).is_some_and(|(t, _)| t == addrs) {
                return false;
            }
            told.insert(*device, (addrs.clone(), now));
            true
        })
        .collect()
}

/// Whether sending `msg` tells the peer what this device holds (so the
/// peer may stop keeping it for us: `Begin` heads equal to the listener's
/// count as receipts too) or hands it events: it waits until this device's
/// writes are on the disk.
pub(super) fn says_held(msg: &Msg) -> bool {
    matches!(
        msg,
        Msg::Events { .. }
            | Msg::Ack { .. }
            | Msg::Same { .. }
            | Msg::Synced { .. }
            | Msg::Begin { .. }
    )
}

/// Peer exchange: where this account's other devices were last seen
/// (addresses, and the relay as a URL among them), and where members of
/// rooms shared with the peer's account were, so room members without a
/// contact in common find each other.
pub(super) fn device_hints(node: &node_core::node::Node, peer: node_core::DeviceId) -> Vec<Action> {
    let relays: std::collections::HashMap<_, _> = node.own_device_relays().into_iter().collect();
    let mut devices: Vec<(node_core::DeviceId, Vec<String>)> = node
        .own_device_hints()
        .into_iter()
        .map(|(device, addrs)| (device, addrs.iter().map(ToString::to_string).collect()))
        .collect();
    for (device, relay) in &relays {
        match devices.iter_mut().find(|(d, _)| d == device) {
            Some((_, addrs)) => addrs.push(relay.clone()),
            None => devices.push((*device, vec![relay.clone()])),
        }
    }
    if let Some(peer_account) = node.account_of_device(&peer) {
        for (device, addrs) in node.room_device_hints(peer_account, peer) {
            if !devices.iter().any(|(d, _)| *d == device) {
                let mut hints: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                hints.extend(node.relay_of(&device));
                devices.push((device, hints));
            }
        }
    }
    devices
        .into_iter()
        .filter(|(device, _)| *device != peer)
        .map(|(device, addrs)| Action::Send(Msg::DeviceHints { device, addrs }))
        .collect()
}

/// Address hints as peers send them: `ip:port` strings, and at most one
/// relay URL (the device's home relay).
pub(super) fn split_hints(hints: &[String]) -> (Vec<std::net::SocketAddr>, Option<String>) {
    let addrs = hints.iter().filter_map(|a| a.parse().ok()).collect();
    let relay = hints
        .iter()
        .find(|h| node_core::transport::parse_relay(h).is_ok())
        .cloned();
    (addrs, relay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(device: u8, addr: &str) -> Action {
        Action::Send(Msg::DeviceHints {
            device: DeviceId::from_bytes([device; 32]),
            addrs: vec![addr.to_string()],
        })
    }

    /// A room forming changes what is shared many times a second; each
    /// change used to send every hint again on every link.
    #[test]
    fn device_hints_are_told_again_only_when_changed_or_after_a_while() {
        let mut told = HashMap::new();
        let t0 = Instant::now();
        let all = || vec![hint(1, "127.0.0.1:1"), hint(2, "127.0.0.1:2")];
        assert_eq!(untold(&mut told, all(), t0).len(), 2);
        // The same again: nothing.
        assert!(untold(&mut told, all(), t0 + Duration::from_secs(2)).is_empty());
        // One changed: that one.
        let changed = vec![hint(1, "127.0.0.1:9"), hint(2, "127.0.0.1:2")];
        let out = untold(&mut told, changed, t0 + Duration::from_secs(4));
        assert_eq!(out.len(), 1);
        assert!(
            matches!(&out[0], Action::Send(Msg::DeviceHints { addrs, .. }) if addrs[0].ends_with(":9"))
        );
        // Other actions pass.
        let other = vec![Action::Send(Msg::Resync)];
        assert_eq!(
            untold(&mut told, other, t0 + Duration::from_secs(5)).len(),
            1
        );
        // After a while, told again (the peer may have had no place for it).
        let later = t0 + HINTS_AGAIN + Duration::from_secs(5);
        assert_eq!(untold(&mut told, all(), later).len(), 2);
    }
}
