//! One sync session per link: the thin async driver around the pure
//! `Session`, carrying out its actions against the node and the link.

use super::Daemon;
use anyhow::{Context, Result, bail};
use node_core::node::{Ingested, NodeError};
use node_core::sync::{Action, Msg, Role, Session, events_messages};
use node_core::transport::{FrameReader, FrameWriter, Link};
use node_core::{AccountId, EventId, LogId};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

/// Links are closed and re-established at least this often (fresh keys).
const MAX_LINK_AGE: Duration = Duration::from_secs(3600);
/// How often a live link re-runs reconciliation.
const RESYNC_EVERY: Duration = Duration::from_secs(60);

/// Accepts incoming links until the transport closes.
pub(super) async fn accept_loop(d: Arc<Daemon>) {
    while let Some(incoming) = d.transport.accept().await {
        match incoming {
            Ok(link) => {
                let d = Arc::clone(&d);
                tokio::spawn(async move { run(d, link, Role::Listener).await });
            }
            Err(e) => debug!(error = %e, "incoming link failed"),
        }
    }
}

/// Runs a link until it ends, keeping the daemon's link count. When two
/// devices dial each other at once, both keep the link dialled by the
/// lower device id and close the other.
pub(super) async fn run(d: Arc<Daemon>, link: Link, role: Role) {
    let peer = link.peer();
    let me = d.node.lock().await.device();
    let preferred = if me < peer {
        Role::Dialer
    } else {
        Role::Listener
    };
    if d.connected().contains(&peer) {
        if role != preferred {
            link.close("duplicate");
            return;
        }
        let open = d.open_links.lock().unwrap_or_else(|p| p.into_inner());
        for other in open.iter().filter(|l| l.peer() == peer) {
            other.close("duplicate");
        }
    }
    d.link_up(peer);
    d.open_links
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(link.clone());
    info!(peer = %peer.short(8), ?role, "link up");
    let result = tokio::time::timeout(MAX_LINK_AGE, drive(&d, &link, role)).await;
    match result {
        Ok(Ok(())) => info!(peer = %peer.short(8), "link closed"),
        Ok(Err(e)) => {
            warn!(peer = %peer.short(8), error = %format!("{e:#}"), "link dropped");
            link.close("protocol error");
        }
        Err(_) => {
            info!(peer = %peer.short(8), "link renewed after an hour");
            link.close("renew");
        }
    }
    {
        let mut open = d.open_links.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|l| !l.same_as(&link));
        let (tx, rx) = link.wire_bytes();
        let mut closed = d.wire_closed.lock().unwrap_or_else(|p| p.into_inner());
        closed.0 += tx;
        closed.1 += rx;
    }
    d.link_down(peer);
}

struct Driver<'a> {
    d: &'a Daemon,
    link: &'a Link,
    session: Session,
    writer: Outgoing,
}

/// Most bytes queued for a peer that does not read before the link is
/// dropped.
const MAX_QUEUED: usize = 64 << 20;

/// Frames to send, written by their own task so that a link never stops
/// reading while it waits to write (both sides writing at once into full
/// flow-control windows would otherwise wait on each other forever).
struct Outgoing {
    tx: tokio::sync::mpsc::UnboundedSender<Vec<Vec<u8>>>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Outgoing {
    fn new(mut writer: FrameWriter) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Vec<u8>>>();
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let q = Arc::clone(&queued);
        let task = tokio::spawn(async move {
            while let Some(frames) = rx.recv().await {
                let size: usize = frames.iter().map(Vec::len).sum();
                let sent = writer.send_many(&frames).await;
                q.fetch_sub(size, std::sync::atomic::Ordering::Relaxed);
                if sent.is_err() {
                    return;
                }
            }
            writer.finish();
        });
        Self { tx, queued, task }
    }

    fn send(&self, frames: Vec<Vec<u8>>) -> Result<()> {
        let size: usize = frames.iter().map(Vec::len).sum();
        let before = self
            .queued
            .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        if before + size > MAX_QUEUED {
            bail!("peer does not read: over {MAX_QUEUED} bytes queued");
        }
        self.tx
            .send(frames)
            .map_err(|_| anyhow::anyhow!("link writer stopped"))
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn drive(d: &Daemon, link: &Link, role: Role) -> Result<()> {
    let (writer, mut reader): (FrameWriter, FrameReader) = match role {
        Role::Dialer => link.open().await?,
        Role::Listener => link.accept().await?,
    };
    let (me, mut events) = {
        let node = d.node.lock().await;
        (node.account(), node.subscribe())
    };
    let (session, first) = Session::new(role, me, link.peer());
    let mut drv = Driver {
        d,
        link,
        session,
        writer: Outgoing::new(writer),
    };
    let hints: Vec<String> = d
        .transport
        .hints()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut first: VecDeque<Action> = first.into();
    first.push_back(Action::Send(Msg::Hints { addrs: hints }));
    drv.execute(first).await?;
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.tick().await;
    loop {
        tokio::select! {
            frame = reader.recv() => {
                let Some(bytes) = frame? else { return Ok(()) };
                let msg = Msg::decode(&bytes).context("malformed frame")?;
                let actions = {
                    let node = d.node.lock().await;
                    drv.session.on_msg(msg, &*node)?
                };
                drv.execute(actions.into()).await?;
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
            _ = resync.tick() => drv.resync().await?,
        }
    }
}

impl Driver<'_> {
    /// Pushes new local events (not those that came from this peer).
    async fn push(&mut self, batch: Vec<node_core::node::LocalEvent>) -> Result<()> {
        let peer = self.link.peer();
        let mut by_log: Vec<(LogId, Vec<Vec<u8>>)> = Vec::new();
        for ev in batch.into_iter().filter(|e| e.from != Some(peer)) {
            match by_log.iter_mut().find(|(l, _)| *l == ev.log) {
                Some((_, v)) => v.push(ev.bytes.to_vec()),
                None => by_log.push((ev.log, vec![ev.bytes.to_vec()])),
            }
        }
        let mut actions = VecDeque::new();
        {
            let node = self.d.node.lock().await;
            for (log, events) in by_log {
                actions.extend(self.session.local_events(log, events, &*node));
            }
        }
        self.execute(actions).await
    }

    async fn resync(&mut self) -> Result<()> {
        let actions = {
            let node = self.d.node.lock().await;
            self.session.resync(&*node)
        };
        self.execute(actions.into()).await
    }

    async fn execute(&mut self, mut queue: VecDeque<Action>) -> Result<()> {
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Send(msg) => self.writer.send(vec![msg.encode()])?,
                Action::Serve { log, ids } => {
                    let events = self.d.node.lock().await.serve(log, &ids).await?;
                    let frames: Vec<Vec<u8>> = events_messages(log, events)
                        .iter()
                        .map(Msg::encode)
                        .collect();
                    self.writer.send(frames)?;
                }
                Action::Ingest { log, events } => queue.extend(self.ingest(log, events).await?),
                Action::Receipts { log: _, ids } => {
                    let account = self.peer_account()?;
                    self.d
                        .node
                        .lock()
                        .await
                        .record_delivery(account, &ids)
                        .await?;
                }
                Action::ReceiptsAll { log } => {
                    let account = self.peer_account()?;
                    self.d
                        .node
                        .lock()
                        .await
                        .record_delivered_all(account, log)
                        .await?;
                }
                Action::Hints(addrs) => {
                    let parsed = addrs.iter().filter_map(|a| a.parse().ok()).collect();
                    let mut hints = self.d.hints.lock().unwrap_or_else(|p| p.into_inner());
                    hints.insert(self.link.peer(), parsed);
                }
            }
        }
        Ok(())
    }

    fn peer_account(&self) -> Result<AccountId> {
        self.session
            .peer_account()
            .context("peer has not said hello")
    }

    /// Stores received events; returns the session's follow-up actions.
    async fn ingest(&mut self, log: LogId, events: Vec<Vec<u8>>) -> Result<Vec<Action>> {
        let account = self.peer_account()?;
        let peer = self.link.peer();
        let mut node = self.d.node.lock().await;
        // The session has checked that this peer may write `log` (an active
        // device of an entitled account) before asking for this ingest.
        let outcomes = node
            .ingest_batch(log, &events, crate::now_ms(), 1, Some(peer))
            .await?;
        let (mut stored, mut missing): (Vec<EventId>, Vec<EventId>) = (Vec::new(), Vec::new());
        for o in outcomes {
            match o {
                Ok(Ingested::Stored(ids)) => stored.extend(ids),
                Ok(Ingested::Held(m)) => missing.extend(m),
                Err(NodeError::Rejected(node_core::log::Rejection::Duplicate(id))) => {
                    stored.push(id)
                }
                Err(e) => debug!(peer = %peer.short(8), error = %e, "event refused"),
            }
        }
        missing.sort();
        missing.dedup();
        missing.retain(|id| node.log(&log).is_some_and(|dag| !dag.knows(id)));
        let actions = self.session.ingested(log, stored.clone(), missing, &*node);
        if self.d.echo && log == LogId::conversation(node.account(), account) {
            drop(node);
            self.echo(account, &stored).await?;
        }
        Ok(actions)
    }

    /// Benchmark mode: answer each received message at once.
    async fn echo(&self, to: AccountId, ids: &[EventId]) -> Result<()> {
        let mut node = self.d.node.lock().await;
        let me = node.account();
        let log = LogId::conversation(me, to);
        for e in node.serve(log, ids).await? {
            let Ok(ev) = node_core::log::Event::decode(&e) else {
                continue;
            };
            if node.account_of_device(&ev.header().author) == Some(me) {
                continue;
            }
            let text = format!(
                "echo:{}",
                String::from_utf8_lossy(ev.body().unwrap_or_default())
            );
            node.send_message(to, &text, crate::now_ms()).await?;
        }
        Ok(())
    }
}
