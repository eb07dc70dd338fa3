//! This device and the account's devices: status, invite codes, the
//! device list, revocation.

use super::{Daemon, a, answer};
use anyhow::Result;
use kith_client::answers::{Id, Status};
use node_core::node::Node;

impl Daemon {
    pub(super) async fn status(&self, node: &Node) -> Result<Status> {
        let mut warnings = Vec::new();
        if !node.is_protected() {
            warnings.push(
                "profile is unprotected: it has no passphrase, so anyone who can read its files can read your messages"
                    .to_owned(),
            );
        }
        warnings.extend(self.transport.relay_problem());
        Ok(Status {
            account: node.account().to_string(),
            device: node.device().to_string(),
            name: node.name().to_owned(),
            listening: self
                .transport
                .local_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
            peers: self.connected().iter().map(ToString::to_string).collect(),
            outbox: node.outbox_len().await?,
            protected: node.is_protected(),
            warnings,
            relay: self
                .transport
                .connected_relay()
                .map(|r| node_core::relay_tls::redacted(&r)),
            paths: self.link_paths(),
            direct_addrs: self.link_direct_addrs(),
            events: node.event_count().await?,
            held: node.held_count().await?,
            requests: node.request_count().await?,
            lan: self.lan_status(),
            dht: self.dht.status(),
        })
    }

    /// A code that joins a new device, naming this device's addresses.
    pub(super) fn device_invite(&self, node: &mut Node, now: i64) -> Result<serde_json::Value> {
        let code = node.invite(self.transport.hints(), now)?;
        answer(a::InviteCode { code })
    }
}

pub(super) async fn revoke(
    node: &mut Node,
    device: &str,
    recovery: Option<String>,
    now: i64,
) -> Result<serde_json::Value> {
    let id = match recovery.map(zeroize::Zeroizing::new) {
        Some(words) => {
            let code = node_core::node::RecoveryCode::parse(&words)?;
            node.revoke_device_with_recovery(device, &code, now).await?
        }
        None => node.revoke_device(device, now).await?,
    };
    answer(Id { id })
}
