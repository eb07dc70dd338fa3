//! Push wake-ups (see `docs/push.md`): registers this device with its push
//! relay, tells contacts where to wake it (a grant in each 1:1
//! conversation), and wakes contacts' devices that are not connected while
//! something waits for them.
//!
//! The registration lists the contacts' devices as known senders and is
//! renewed when that list changes and every [`REREGISTER`]. A device is
//! woken at most once per [`WAKE_EVERY`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use node_core::DeviceId;
use node_core::node::push::{PushGrant, PushSetting};
use node_core::push::PushHandle;
use tracing::{debug, info, warn};

use super::Daemon;

/// How often the loop looks around (it is also woken on changes).
const ROUND: Duration = Duration::from_secs(2);
/// How often the registration is renewed even if nothing changed.
const REREGISTER: Duration = Duration::from_secs(12 * 3600);
/// The least time between two wake-ups of one device; it doubles, up to
/// [`MAX_WAKE_EVERY`], while the device stays unreachable.
const WAKE_EVERY: Duration = Duration::from_secs(120);
/// The most time between two wake-ups of a device that stays unreachable.
const MAX_WAKE_EVERY: Duration = Duration::from_secs(3600);
/// The first wait after a failed registration (doubling up to [`REREGISTER`]).
const RETRY: Duration = Duration::from_secs(5);
/// How long one request to a relay may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read from a relay.
const MAX_ANSWER: usize = 64 * 1024;
/// Registration path on a relay.
const REGISTRATIONS: &str = "/v1/registrations";

#[derive(Default)]
struct State {
    /// Senders and time of the last registration this run made.
    registered: Option<(Vec<DeviceId>, Instant)>,
    /// After a failed registration: when to try again, and the wait after that.
    retry: Option<(Instant, Duration)>,
    /// Per contact device: when it may be woken again, and the wait after
    /// that (doubling while it stays unreachable).
    woken: HashMap<DeviceId, (Instant, Duration)>,
}

/// Runs until the daemon stops.
pub(super) async fn push_loop(d: Arc<Daemon>) {
    let http = match client() {
        Ok(http) => http,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "push: no HTTP client; wake-ups are off");
            return;
        }
    };
    let mut state = State::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(ROUND) => {}
            () = d.push_notify.notified() => {}
        }
        if let Err(e) = own_registration(&d, &http, &mut state).await {
            warn!(error = %format!("{e:#}"), "push: keeping the registration failed");
        }
        wake_unreachable(&d, &http, &mut state).await;
    }
}

pub(super) fn client() -> Result<reqwest::Client> {
    crate::http::client(HTTP_TIMEOUT)
}

/// Registers `setting` with its relay; returns the handle.
pub(super) async fn register(
    d: &Daemon,
    http: &reqwest::Client,
    setting: &PushSetting,
    senders: &[DeviceId],
) -> Result<PushHandle> {
    let mut body: serde_json::Value =
        serde_json::from_str(&setting.target).context("the stored push target is not JSON")?;
    body["senders"] = senders.iter().map(|s| s.to_string()).collect();
    body["issued"] = crate::now_ms().into();
    let answer = signed(d, http, &setting.url, "POST", REGISTRATIONS, &body).await?;
    answer["handle"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .context("the relay's answer has no handle")
}

/// Removes this device's registration from `url`.
pub(super) async fn unregister(d: &Daemon, url: &str) -> Result<()> {
    let http = client()?;
    let body = serde_json::json!({ "issued": crate::now_ms() });
    signed(d, &http, url, "DELETE", REGISTRATIONS, &body).await?;
    Ok(())
}

/// A request signed by this device; the answer's JSON (or a clear error).
async fn signed(
    d: &Daemon,
    http: &reqwest::Client,
    url: &str,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let body = body.to_string();
    let auth = d
        .node
        .lock()
        .await
        .sign_push_request(method, path, body.as_bytes());
    let method = reqwest::Method::from_bytes(method.as_bytes()).context("HTTP method")?;
    let response = http
        .request(method, format!("{url}{path}"))
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the push relay at {url}"))?;
    crate::http::json_answer(response, MAX_ANSWER, "push relay").await
}

async fn own_registration(d: &Daemon, http: &reqwest::Client, state: &mut State) -> Result<()> {
    let (setting, senders) = {
        let node = d.node.lock().await;
        (node.push_setting().await?, node.push_senders())
    };
    let grant = match setting {
        None => None,
        Some(mut setting) => {
            let stale = match &state.registered {
                Some((known, at)) => *known != senders || at.elapsed() > REREGISTER,
                None => true,
            };
            let waiting = state.retry.is_some_and(|(at, _)| Instant::now() < at);
            if (stale || setting.handle.is_none()) && !waiting {
                let handle = match register(d, http, &setting, &senders).await {
                    Ok(handle) => {
                        state.retry = None;
                        handle
                    }
                    Err(e) => {
                        let wait = state.retry.map_or(RETRY, |(_, w)| (w * 2).min(REREGISTER));
                        state.retry = Some((Instant::now() + wait, wait));
                        return Err(e.context(format!("retrying in {} s", wait.as_secs())));
                    }
                };
                state.registered = Some((senders, Instant::now()));
                // `push use` or `push off` may have run meanwhile: keep the
                // handle only if the setting is still the one registered.
                let node = d.node.lock().await;
                let now = node.push_setting().await?;
                match now {
                    Some(now) if now.url == setting.url && now.target == setting.target => {
                        if setting.handle != Some(handle) {
                            setting.handle = Some(handle);
                            node.set_push(Some(&setting)).await?;
                            info!("push: registered with {}", setting.url);
                        }
                    }
                    _ => return Ok(()),
                }
            }
            setting.handle.map(|handle| PushGrant {
                url: setting.url.clone(),
                handle,
            })
        }
    };
    let mut node = d.node.lock().await;
    for (contact, grant) in node.push_grants_due(grant.as_ref()) {
        node.write_push_grant(contact, grant.as_ref(), crate::now_ms())
            .await?;
    }
    Ok(())
}

/// Wakes contacts' devices that are not connected while events wait for
/// their account.
async fn wake_unreachable(d: &Daemon, http: &reqwest::Client, state: &mut State) {
    let connected: std::collections::HashSet<DeviceId> = d.connected().into_iter().collect();
    let mut due: Vec<(DeviceId, PushGrant)> = Vec::new();
    {
        let node = d.node.lock().await;
        for contact in node.uncompromised_contacts() {
            let devices: Vec<(DeviceId, PushGrant)> = node
                .contact_devices(&contact)
                .into_iter()
                .filter(|dev| !connected.contains(dev))
                .filter(|dev| {
                    state
                        .woken
                        .get(dev)
                        .is_none_or(|(at, _)| Instant::now() >= *at)
                })
                .filter_map(|dev| node.push_grant_of(&dev).map(|g| (dev, g)))
                .collect();
            // Only for something a person sent (not grants or receipts).
            if devices.is_empty()
                || !node
                    .has_undelivered_messages_for(contact)
                    .await
                    .unwrap_or(false)
            {
                continue;
            }
            due.extend(devices);
        }
    }
    // A device that came back starts over at the shortest wait.
    state.woken.retain(|dev, _| !connected.contains(dev));
    for (device, grant) in due {
        let wait = state
            .woken
            .get(&device)
            .map_or(WAKE_EVERY, |(_, w)| (*w * 2).min(MAX_WAKE_EVERY));
        state.woken.insert(device, (Instant::now() + wait, wait));
        let nonce: [u8; 16] = node_core::crypto::random_bytes();
        let body = serde_json::json!({
            "handle": grant.handle.to_string(),
            "issued": crate::now_ms(),
            "nonce": node_core::wire::to_base32(&nonce),
        });
        match signed(d, http, &grant.url, "POST", "/v1/wake", &body).await {
            Ok(_) => info!(device = %device.short(8), "push: woke a device that was not reachable"),
            Err(e) => {
                debug!(device = %device.short(8), error = %format!("{e:#}"), "push: wake-up failed")
            }
        }
    }
}
