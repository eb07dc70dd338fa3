//! The helper servers and names: mailbox, push relay, iroh relay, name
//! records.

use super::{Daemon, a, answer};
use anyhow::Result;
use node_core::node::Node;
use tracing::warn;

/// The self-log setting naming the account's relay (empty: none).
pub(in crate::daemon) const RELAY_SETTING: &str = "relay";

impl Daemon {
    /// `kith mailbox use URL`: checks the server answers as a mailbox, then
    /// sets it for the account; the mailbox loop registers it.
    pub(super) async fn mailbox_use(&self, url: &str) -> Result<serde_json::Value> {
        let url = url.trim_end_matches('/');
        node_core::node::mailbox::check_url(url)?;
        crate::daemon::mailbox::probe(url).await?;
        let id = self
            .node
            .lock()
            .await
            .set_mailbox(Some(url), crate::now_ms())
            .await?;
        self.mailbox_notify.notify_one();
        answer(a::MailboxSet {
            url: url.to_owned(),
            mailbox: id.map(|i| i.to_string()),
        })
    }

    /// `kith mailbox off`: removes the mailbox from its server (best
    /// effort: an unreachable server only keeps it until it expires), then
    /// turns the setting off, which withdraws the contacts' grants.
    pub(super) async fn mailbox_off(&self) -> Result<serde_json::Value> {
        let current = self.node.lock().await.mailbox();
        let Some(current) = current else {
            return answer(a::Removed {
                url: None,
                removed: false,
            });
        };
        let removed = match crate::daemon::mailbox::remove_mailbox(&current.url, &current.key).await
        {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "mailbox: removing it from its server failed");
                false
            }
        };
        self.node
            .lock()
            .await
            .set_mailbox(None, crate::now_ms())
            .await?;
        self.mailbox_notify.notify_one();
        answer(a::Removed {
            url: Some(current.url),
            removed,
        })
    }

    /// `kith push use`: registers with the relay now (so a refusal is the
    /// command's error), then keeps the setting; the push loop tells
    /// contacts.
    pub(super) async fn push_use(
        &self,
        url: &str,
        target: serde_json::Value,
    ) -> Result<serde_json::Value> {
        use node_core::node::push::PushSetting;
        let url = url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            anyhow::bail!("`{url}` is not a push relay URL (http(s)://HOST[:PORT])");
        }
        if !target.is_object() || target.get("platform").is_none() {
            anyhow::bail!("the push target needs a platform");
        }
        let mut setting = PushSetting {
            url: url.to_owned(),
            target: target.to_string(),
            handle: None,
        };
        let senders = self.node.lock().await.push_senders();
        let http = crate::daemon::push::client()?;
        let handle = crate::daemon::push::register(self, &http, &setting, &senders).await?;
        setting.handle = Some(handle);
        self.node.lock().await.set_push(Some(&setting)).await?;
        self.push_notify.notify_one();
        answer(a::PushSet {
            url: url.to_owned(),
            registered: true,
        })
    }

    /// `kith push off`: unregisters (best effort) and withdraws the grants.
    pub(super) async fn push_off(&self) -> Result<serde_json::Value> {
        let current = self.node.lock().await.push_setting().await?;
        let Some(current) = current else {
            return answer(a::Removed {
                url: None,
                removed: false,
            });
        };
        let removed = match crate::daemon::push::unregister(self, &current.url).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "push: unregistering failed");
                false
            }
        };
        self.node.lock().await.set_push(None).await?;
        self.push_notify.notify_one();
        answer(a::Removed {
            url: Some(current.url),
            removed,
        })
    }

    /// Sets (or clears) the account's relay; the mailbox loop applies it.
    pub(super) async fn relay(
        &self,
        node: &mut Node,
        url: Option<String>,
        now: i64,
    ) -> Result<serde_json::Value> {
        // As iroh writes it back (its home relay), so that the hints
        // peers pass on match the setting.
        let url = match url {
            Some(u) => Some(
                node_core::transport::parse_relay(u.trim())?
                    .to_string()
                    .trim_end_matches('/')
                    .to_owned(),
            ),
            None => None,
        };
        let value = url.clone().unwrap_or_default();
        node.set_setting(RELAY_SETTING, value.as_bytes(), now)
            .await?;
        self.mailbox_notify.notify_one();
        answer(a::RelaySet { relay: url })
    }

    /// A signed name record for a nameserver, naming this device's
    /// addresses.
    pub(super) fn name_record(
        &self,
        node: &Node,
        handle: &str,
        release: bool,
        now: i64,
    ) -> Result<serde_json::Value> {
        let handle: node_core::names::Handle = handle
            .parse()
            .map_err(|e| anyhow::anyhow!("bad handle: {e}"))?;
        let record = node.name_record(&handle, release, self.own_hints(), now)?;
        answer(a::NameRecord {
            handle: handle.to_string(),
            record: data_encoding::BASE64.encode(&record),
        })
    }
}

pub(super) fn mailbox_status(node: &Node) -> Result<serde_json::Value> {
    let mailbox = node.mailbox();
    let contacts = node
        .contacts()
        .into_iter()
        .filter_map(|c| {
            let grant = node.grant_from(c.id)?;
            Some(a::MailboxGrant {
                contact: c.id,
                url: grant.url.clone(),
            })
        })
        .collect();
    answer(a::MailboxStatus {
        url: mailbox.as_ref().map(|m| m.url.clone()),
        mailbox: mailbox.as_ref().map(|m| m.key.id().to_string()),
        contacts,
    })
}

pub(super) async fn push_status(node: &Node) -> Result<serde_json::Value> {
    let setting = node.push_setting().await?;
    let contacts = node
        .uncompromised_contacts()
        .iter()
        .flat_map(|c| node.contact_devices(c).into_iter().map(move |d| (*c, d)))
        .filter_map(|(contact, device)| {
            node.push_grant_of(&device).map(|g| a::PushGrant {
                contact,
                device,
                url: g.url.clone(),
            })
        })
        .collect();
    answer(a::PushStatus {
        url: setting.as_ref().map(|s| s.url.clone()),
        registered: setting.as_ref().is_some_and(|s| s.handle.is_some()),
        contacts,
    })
}
