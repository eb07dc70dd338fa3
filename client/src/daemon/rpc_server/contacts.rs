//! Contacts: the card, adding, safety numbers, trust, introductions.

use super::{Daemon, a, answer};
use anyhow::Result;
use kith_client::answers::Id;
use node_core::node::Node;

impl Daemon {
    /// The account's card, with this device's addresses.
    pub(super) fn card(&self, node: &Node, now: i64) -> Result<serde_json::Value> {
        let hints = self.own_hints();
        answer(a::Uri {
            uri: node.card(hints, now)?,
        })
    }
}

pub(super) async fn add(
    node: &mut Node,
    card: &str,
    alias: Option<String>,
    now: i64,
) -> Result<serde_json::Value> {
    let id = node.add_contact(card, alias.as_deref(), now).await?;
    answer(Id { id })
}

pub(super) fn safety_number(node: &Node, contact: &str) -> Result<serde_json::Value> {
    let id = node.resolve_target(contact)?;
    let digits = node.safety_number(id)?;
    answer(a::SafetyNumber {
        contact: id,
        grouped: node_core::node::trust::group_digits(&digits),
        digits,
    })
}

pub(super) async fn verify(
    node: &mut Node,
    contact: &str,
    number: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let id = node.resolve_target(contact)?;
    node.verify_contact(id, number, now).await?;
    answer(a::TrustSet {
        contact: id,
        trust: "validated".into(),
    })
}

pub(super) async fn trust(
    node: &mut Node,
    contact: &str,
    state: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let id = node.resolve_target(contact)?;
    let trust: node_core::node::trust::Trust = state.parse()?;
    node.set_trust(id, trust, "set by hand", now).await?;
    answer(a::TrustSet {
        contact: id,
        trust: trust.as_str().into(),
    })
}

pub(super) async fn share(
    node: &mut Node,
    contact: &str,
    with: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let what = node.resolve_target(contact)?;
    let to = node.resolve_target(with)?;
    let id = node.share_contact(what, to, now).await?;
    answer(Id { id })
}
