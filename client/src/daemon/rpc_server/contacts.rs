//! Contacts: the card, adding, safety numbers, trust, introductions.

use super::{Daemon, a, answer};
use anyhow::Result;
use kith_client::answers::Id;
use node_core::node::Node;
use node_core::node::requests::Answer;
use node_core::requests::How;

impl Daemon {
    /// The account's card, with this device's addresses.
    pub(super) fn card(&self, node: &Node, now: i64) -> Result<serde_json::Value> {
        let hints = self.own_hints();
        answer(a::Uri {
            uri: node.card(hints, now)?,
        })
    }
}

impl Daemon {
    /// Adds a contact and asks it right away (a contact request, unless it
    /// has this account as a contact already).
    pub(super) async fn contact_add(
        &self,
        node: &mut Node,
        card: &str,
        alias: Option<String>,
        handle: Option<String>,
        now: i64,
    ) -> Result<serde_json::Value> {
        let how = match handle {
            Some(h) => Some(How::Nameserver(
                h.parse::<node_core::names::Handle>()?.to_string(),
            )),
            None => None,
        };
        let id = node.add_contact(card, alias.as_deref(), now).await?;
        self.requests.added(id, how);
        answer(Id { id })
    }

    /// Answers a contact request.
    pub(super) async fn contact_answer(
        &self,
        node: &mut Node,
        id: &str,
        how: &str,
        now: i64,
    ) -> Result<serde_json::Value> {
        let how: Answer = how.parse()?;
        let id = node.answer_request(id, how, now).await?;
        if how == Answer::Accept {
            // It asked: it has this account as a contact.
            self.requests.synced(id);
        }
        answer(Id { id })
    }
}

pub(super) fn safety_number(node: &Node, contact: &str) -> Result<serde_json::Value> {
    refuse_bridged(node, contact)?;
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
    refuse_bridged(node, contact)?;
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
    refuse_bridged(node, contact)?;
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

/// Trust is about kith keys: a bridged conversation has none to check, so
/// it is never validated (nor marked by hand).
fn refuse_bridged(node: &Node, target: &str) -> Result<()> {
    if node.resolve_target(target).is_err() && node.resolve_bridged(target).ok().flatten().is_some()
    {
        anyhow::bail!(
            "{:?} is a bridged conversation: bridged contacts cannot be validated (the other \
             network carries it; there are no kith keys to compare)",
            target.trim()
        );
    }
    Ok(())
}
