//! The protocol router and the link manager. The router accepts incoming
//! connections, runs their handshakes concurrently (bounded in number and
//! time), and hands each to the handler of its protocol, named by its
//! ALPN: sync links to `link::run`, joining devices to `join::serve`,
//! calls to `calls::serve`, contact requests to
//! `requests::serve`. The manager decides how long sync links
//! live: it renews each after [`policy::MAX_LINK_AGE`]; links of other
//! protocols (a call) are never renewed or replaced by it.

use super::Daemon;
use super::policy;
use node_core::sync::Role;
use node_core::transport::Protocol;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Most incoming links (handshaking or up) at once; more are refused.
const MAX_INCOMING: usize = 512;
/// How long an incoming handshake may take.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// How often the manager looks at links when none is due sooner.
const MANAGE_EVERY: Duration = Duration::from_secs(60);

/// Accepts incoming links until the transport closes. Each handshake runs
/// on its own task (a slow one does not hold up the next), bounded in
/// time, and at most [`MAX_INCOMING`] incoming links live at once.
pub(super) async fn accept_loop(d: Arc<Daemon>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_INCOMING));
    while let Some(incoming) = d.transport.accept_incoming().await {
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!("incoming link refused: {MAX_INCOMING} incoming links already");
            incoming.refuse();
            continue;
        };
        let d2 = Arc::clone(&d);
        d.spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_WAIT, incoming.link()).await {
                Ok(Ok(link)) => match link.protocol() {
                    Protocol::Sync => super::link::run(d2, link, Role::Listener).await,
                    Protocol::Join => super::join::serve(d2, link).await,
                    Protocol::Call => super::calls::serve(d2, link).await,
                    Protocol::Conf => {
                        let span = super::conf::span(&d2.device);
                        tracing::Instrument::instrument(super::conf::serve(d2, link), span).await
                    }
                    Protocol::Request => {
                        // Strangers' requests get a few places of their own.
                        match Arc::clone(&d2.requests.serving).try_acquire_owned() {
                            Ok(_place) => super::requests::serve(d2, link).await,
                            Err(_) => link.close("busy"),
                        }
                    }
                    _ => link.close("unsupported protocol"),
                },
                Ok(Err(e)) => debug!(error = %e, "incoming link failed"),
                Err(_) => debug!("incoming handshake timed out"),
            }
        });
    }
}

/// Renews sync links that are due, waking when the oldest is due or when
/// links change.
pub(super) async fn manage_links(d: Arc<Daemon>) {
    loop {
        let now = Instant::now();
        let (due, next) = {
            let open = d.open_links.lock().unwrap_or_else(|p| p.into_inner());
            let live = open.iter().filter(|(l, _)| !l.is_closed());
            let (due, later): (Vec<_>, Vec<_>) =
                live.partition(|(_, up)| policy::renew_due(*up, now));
            let due: Vec<node_core::transport::Link> =
                due.into_iter().map(|(l, _)| l.clone()).collect();
            (
                due,
                policy::next_renewal(later.into_iter().map(|(_, up)| *up)),
            )
        };
        for link in due {
            info!(peer = %link.peer().short(8), "link renewed after an hour");
            link.close("renew");
        }
        let wait = next
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(MANAGE_EVERY)
            .clamp(Duration::from_millis(100), MANAGE_EVERY);
        let _ = tokio::time::timeout(wait, d.links_changed.notified()).await;
    }
}
