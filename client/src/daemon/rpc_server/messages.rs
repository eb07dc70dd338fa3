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
    }
}

pub(super) async fn mark_read(
    node: &mut Node,
    target: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let with = node.resolve_target(target)?;
    node.mark_read(with, now).await?;
    answer(a::Done {})
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
