//! One sync session per link: the thin async driver around the pure
//! `Session`, carrying out its actions against the node and the link.

use super::Daemon;
use anyhow::{Context, Result, bail};
use node_core::node::{Ingested, NodeError};
use node_core::sync::{Action, Msg, Role, Session, View, events_messages};
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

/// Runs a link until it ends, keeping the daemon's link count.
pub(super) async fn run(d: Arc<Daemon>, link: Link, role: Role) {
    let peer = link.peer();
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
    writer: FrameWriter,
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
        writer,
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
                Ok(ev) if ev.from == Some(link.peer()) => {}
                Ok(ev) => {
                    let actions = {
                        let node = d.node.lock().await;
                        drv.session.local_event(ev.log, ev.bytes.to_vec(), &*node)
                    };
                    drv.execute(actions.into()).await?;
                }
                Err(RecvError::Lagged(_)) => drv.resync().await?,
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = resync.tick() => drv.resync().await?,
        }
    }
}

impl Driver<'_> {
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
                Action::Send(msg) => self.writer.send(&msg.encode()).await?,
                Action::Serve { log, ids } => {
                    let events = self.d.node.lock().await.serve(log, &ids).await?;
                    let frames: Vec<Vec<u8>> = events_messages(log, events)
                        .iter()
                        .map(Msg::encode)
                        .collect();
                    self.writer.send_many(&frames).await?;
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
        let is_account_log =
            log == LogId::account(account) || log == LogId::account(node.account());
        if !is_account_log && !node.device_active(account, peer) {
            bail!(
                "device {} is not an active device of account {}",
                peer.short(8),
                account.short(8)
            );
        }
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
        let mut actions = self.session.ingested(log, stored.clone(), missing, &*node);
        if self.d.echo && log == LogId::conversation(node.account(), account) {
            drop(node);
            self.echo(account, &stored).await?;
        }
        actions.shrink_to_fit();
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
