//! Sync links: the registry of open links (`run`: admission of duplicate
//! and replacing links, counting, clean-up), frame I/O (`frames`) and the
//! async driver of one sync `Session` per link (`driver`), carrying out
//! its actions against the node and the link.

mod driver;
mod frames;

use super::Daemon;
use super::policy::{self, Admission};
use anyhow::{Context, Result, bail};
use driver::drive;
use node_core::node::{Ingested, NodeError};
use node_core::sync::{Action, Msg, Role, Session, events_messages};
use node_core::transport::{FrameReader, FrameWriter, Link};
use node_core::{AccountId, EventId, LogId};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};
/// How often a live link re-runs reconciliation.
const RESYNC_EVERY: Duration = Duration::from_secs(60);
/// How often a link sends where room members are, if that changed.
const HINTS_EVERY: Duration = Duration::from_secs(2);
/// How long an offered room event (`Have`) may take to arrive through the
/// room's ring before it is asked for.
const OFFER_WAIT: Duration = Duration::from_millis(500);
/// How often offered events are checked.
const OFFER_CHECK: Duration = Duration::from_millis(100);
/// Most offered event ids waiting per link.
const MAX_OFFERED: usize = 16_384;
/// How long a peer has to say hello once the link is up.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// How long a peer may stay unproven (its account log, as we hold it, not
/// listing its device as active): enough to sync that account log.
const PROOF_WAIT: Duration = Duration::from_secs(30);
/// Runs a sync link until it ends, keeping the daemon's link count. When
/// two devices dial each other at once, both keep the link dialled by the
/// lower device id and close the other; a new link replaces older ones
/// (`policy::admit`). How long a link lives is the link manager's call
/// (`router::manage_links`), not this driver's.
pub(super) async fn run(d: Arc<Daemon>, link: Link, role: Role) {
    let peer = link.peer();
    let me = d.node.lock().await.device();
    {
        let mut open = d.open_links.lock().unwrap_or_else(|p| p.into_inner());
        let others: Vec<&(Link, Instant)> = open.iter().filter(|(l, _)| l.peer() == peer).collect();
        let ups: Vec<Instant> = others.iter().map(|(_, up)| *up).collect();
        match policy::admit(me, peer, role, &ups, Instant::now()) {
            Admission::Duplicate => {
                link.close("duplicate");
                return;
            }
            Admission::Keep { replace } => {
                for i in replace {
                    if let Some((other, _)) = others.get(i) {
                        other.close("replaced");
                    }
                }
            }
        }
        open.push((link.clone(), Instant::now()));
    }
    d.link_up(peer);
    d.links_changed.notify_one();
    info!(peer = %peer.short(8), ?role, "link up");
    let mut stranger = None;
    let result = drive(&d, &link, role, &mut stranger).await;
    if let Some(account) = stranger
        && let Err(e) = d.node.lock().await.leave_stranger(account).await
    {
        warn!(error = %e, "forgetting a stranger failed");
    }
    d.files_wake();
    match result {
        Ok(()) => info!(peer = %peer.short(8), "link closed"),
        // Renewed or replaced by the link manager, or the daemon stopping.
        Err(_) if link.closed_here() => info!(peer = %peer.short(8), "link closed here"),
        Err(e) => {
            warn!(peer = %peer.short(8), error = %format!("{e:#}"), "link dropped");
            link.close("protocol error");
        }
    }
    {
        let mut open = d.open_links.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(l, _)| !l.same_as(&link));
        let (tx, rx) = link.wire_bytes();
        let mut closed = d.wire_closed.lock().unwrap_or_else(|p| p.into_inner());
        closed.0 += tx;
        closed.1 += rx;
    }
    d.link_down(peer);
}
