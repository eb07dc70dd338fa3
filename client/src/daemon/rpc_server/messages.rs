//! Messages: send, the conversation or room log, read markers, deletion.

use super::{a, answer};
use anyhow::Result;
use kith_client::answers::Id;
use node_core::node::Node;
use node_core::node::rooms::Target;

pub(super) async fn send(
    node: &mut Node,
    target: &str,
    text: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let id = match node.resolve_any(target)? {
        Target::Contact(to) => node.send_message(to, text, now).await?,
        Target::Room(room) => node.room_send(room, text, now).await?,
        Target::Bridged(log) => node.bridged_send(log, text, now).await?,
    };
    answer(Id { id })
}

pub(super) async fn log(
    node: &Node,
    target: &str,
    limit: Option<usize>,
) -> Result<serde_json::Value> {
    match node.resolve_any(target)? {
        Target::Contact(with) => answer(node.conversation(with, limit).await?),
        Target::Room(room) => answer(node.room_log(room, limit).await?),
        Target::Bridged(log) => answer(node.bridged_log(log, limit).await?),
    }
}

pub(super) async fn mark_read(
    node: &mut Node,
    target: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let log = node.target_log(node.resolve_any(target)?);
    node.mark_read(log, now).await?;
    answer(a::Done {})
}

pub(super) async fn mute(
    node: &mut Node,
    target: &str,
    on: bool,
    now: i64,
) -> Result<serde_json::Value> {
    let log = node.target_log(node.resolve_any(target)?);
    node.set_muted(log, on, now).await?;
    answer(a::Done {})
}

/// Longest text `search` looks for.
const MAX_SEARCH: usize = 256;
/// Most messages `search` answers with (the newest).
const MAX_FOUND: usize = 500;

pub(super) async fn search(node: &Node, target: &str, text: &str) -> Result<serde_json::Value> {
    let want = text.trim().to_lowercase();
    if want.is_empty() {
        anyhow::bail!("nothing to search for");
    }
    if want.len() > MAX_SEARCH {
        anyhow::bail!("the text to search for is longer than {MAX_SEARCH} bytes");
    }
    let all = match node.resolve_any(target)? {
        Target::Contact(with) => node.conversation(with, None).await?,
        Target::Room(room) => node.room_log(room, None).await?,
        Target::Bridged(log) => node.bridged_log(log, None).await?,
    };
    let mut found: Vec<_> = all
        .into_iter()
        .filter(|m| m.text.to_lowercase().contains(&want))
        .collect();
    let skip = found.len().saturating_sub(MAX_FOUND);
    found.drain(..skip);
    answer(found)
}

pub(super) async fn delete(
    node: &mut Node,
    target: &str,
    messages: &[String],
    now: i64,
) -> Result<serde_json::Value> {
    let log = node.target_log(node.resolve_any(target)?);
    let count = node.delete(log, messages, now).await?;
    answer(a::Deleted { deleted: count })
}
