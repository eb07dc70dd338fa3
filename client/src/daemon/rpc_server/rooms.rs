//! Rooms: create, invite, link and join, members and roles, kick, leave,
//! name and topic, late history.

use super::{Daemon, a, answer};
use anyhow::{Context, Result};
use kith_client::answers::Id;
use node_core::node::Node;

impl Daemon {
    /// A room's link, naming this device's addresses.
    pub(super) fn room_link(&self, node: &Node, room: &str) -> Result<serde_json::Value> {
        let room = node.resolve_room(room)?;
        let uri = node.room_link(room, self.own_hints())?;
        answer(a::Uri { uri })
    }

    /// Joins a room from its link: holds it, then waits (without holding
    /// the node) until a member's device gave its log and this account
    /// joined.
    pub(super) async fn room_join(&self, uri: &str, wait_secs: u64) -> Result<serde_json::Value> {
        let room = self
            .node
            .lock()
            .await
            .room_join_link(uri, crate::now_ms())
            .await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
        loop {
            {
                let node = self.node.lock().await;
                let me = node.account();
                if node.room_state(&room).is_some_and(|s| s.is_joined(&me)) {
                    return answer(Id { id: room });
                }
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "no member of room {} could be reached within {wait_secs} s; this device keeps trying while the daemon runs",
                    room.short(12)
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

pub(super) async fn create(
    node: &mut Node,
    name: &str,
    public: bool,
    now: i64,
) -> Result<serde_json::Value> {
    let id = node.create_room(name, public, now).await?;
    answer(Id { id })
}

pub(super) async fn invite(
    node: &mut Node,
    room: &str,
    contact: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let contact = node.resolve_target(contact)?;
    let id = node.room_invite(room, contact, now).await?;
    answer(Id { id })
}

pub(super) fn members(node: &Node, room: &str) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    answer(node.room_member_list(room)?)
}

pub(super) async fn role(
    node: &mut Node,
    room: &str,
    account: &str,
    role: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let account = node.resolve_member(room, account)?;
    let id = node.room_set_role(room, account, role, now).await?;
    answer(Id { id })
}

pub(super) async fn kick(
    node: &mut Node,
    room: &str,
    account: &str,
    ban: bool,
    now: i64,
) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let account = node.resolve_member(room, account)?;
    let id = node.room_remove(room, account, ban, now).await?;
    answer(Id { id })
}

pub(super) async fn leave(node: &mut Node, room: &str, now: i64) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let id = node.room_leave(room, now).await?;
    answer(Id { id })
}

pub(super) async fn set_text(
    node: &mut Node,
    room: &str,
    topic: bool,
    text: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let id = node.room_set_text(room, topic, text, now).await?;
    answer(Id { id })
}

pub(super) async fn history(
    node: &mut Node,
    room: &str,
    confirmations: Option<u8>,
    trust: Option<String>,
    now: i64,
) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let trust = trust
        .map(|t| {
            node_core::rooms::Trust::parse(&t)
                .with_context(|| format!("no trust {t:?}: use auto, members or admins"))
        })
        .transpose()?;
    if confirmations.is_some() || trust.is_some() {
        node.room_set_history(room, confirmations, trust, now)
            .await?;
    }
    answer(node.room_history(room)?)
}

pub(super) async fn held(node: &Node, room: &str) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    answer(node.room_held(room).await?)
}

pub(super) async fn confirm(
    node: &mut Node,
    room: &str,
    event: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let room = node.resolve_room(room)?;
    let id = node.room_confirm(room, event, now).await?;
    answer(Id { id })
}
