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
/// The least time between two wake-ups of one device.
const WAKE_EVERY: Duration = Duration::from_secs(120);
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
    /// When each contact device was last woken.
    woken: HashMap<DeviceId, Instant>,
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .context("building the HTTP client")
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
            if stale || setting.handle.is_none() {
                let handle = register(d, http, &setting, &senders).await?;
                state.registered = Some((senders, Instant::now()));
                if setting.handle != Some(handle) {
                    setting.handle = Some(handle);
                    d.node.lock().await.set_push(Some(&setting)).await?;
                    info!("push: registered with {}", setting.url);
                }
            }
            setting.handle.map(|handle| PushGrant {
                url: setting.url.clone(),
                handle,
            })
        }
    };
    let mut node = d.node.lock().await;
    for contact in node.push_grants_due(grant.as_ref()) {
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
                .filter_map(|dev| node.push_grant_of(&dev).map(|g| (dev, g)))
                .collect();
            if devices.is_empty() || !node.has_undelivered_for(contact).await.unwrap_or(false) {
                continue;
            }
            due.extend(devices);
        }
    }
    for (device, grant) in due {
        if state
            .woken
            .get(&device)
            .is_some_and(|at| at.elapsed() < WAKE_EVERY)
        {
            continue;
        }
        state.woken.insert(device, Instant::now());
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
