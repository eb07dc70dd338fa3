//! Benchmark mode (`kith daemon --bench-echo`): answers every message a
//! contact sends with `echo:` and its text. A task of its own, subscribed
//! to the node's new events like any other consumer; the sync path knows
//! nothing of it.

use super::Daemon;
use node_core::LogId;
use node_core::log::Event;
use node_core::node::messages::conversation_kind;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

/// Most new events taken in one go.
const BATCH: usize = 4096;

/// Answers contacts' messages until the node's event channel closes.
pub(super) async fn echo_loop(d: Arc<Daemon>) {
    let (mut rx, me) = {
        let node = d.node.lock().await;
        (node.subscribe(), node.account())
    };
    loop {
        let first = match rx.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        let mut node = d.node.lock().await;
        for ev in batch.into_iter().filter(|ev| ev.from.is_some()) {
            let Ok(event) = Event::decode(&ev.bytes) else {
                continue;
            };
            let h = event.header();
            let Some(author) = node.account_of_device(&h.author) else {
                continue;
            };
            if author == me
                || ev.log != LogId::conversation(me, author)
                || h.kind != conversation_kind::MESSAGE
            {
                continue;
            }
            let text = format!(
                "echo:{}",
                String::from_utf8_lossy(event.body().unwrap_or_default())
            );
            if let Err(e) = node.send_message(author, &text, crate::now_ms()).await {
                warn!(error = %e, "echo: answering failed");
            }
        }
    }
}
