//! FCM through the HTTP v1 API: `POST /v1/projects/{project}/messages:send`
//! with an OAuth access token that gcp_auth gets for the service account
//! (JWT-bearer grant to the key's `token_uri`, cached until near expiry).
//! The message is data-only, high priority, with one constant key: no
//! notification, no content.

use std::path::Path;

use anyhow::Context as _;
use gcp_auth::{CustomServiceAccount, TokenProvider as _};

use super::{PUSH_TIMEOUT, PushFailure, WAKE_TTL, failure};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

pub struct Fcm {
    http: reqwest::Client,
    account: CustomServiceAccount,
    send_url: String,
}

impl Fcm {
    pub fn new(key_file: &Path, url: &str) -> anyhow::Result<Self> {
        let account = CustomServiceAccount::from_file(key_file)
            .with_context(|| format!("reading the service account {}", key_file.display()))?;
        let project = account
            .project_id()
            .context("the service account has no project_id")?
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            account,
            send_url: format!(
                "{}/v1/projects/{project}/messages:send",
                url.trim_end_matches('/')
            ),
        })
    }

    pub async fn wake(&self, token: &str) -> Result<(), PushFailure> {
        let access = self
            .account
            .token(&[SCOPE])
            .await
            .map_err(|e| PushFailure::Failed(format!("FCM OAuth: {e}")))?;
        let body = serde_json::json!({
            "message": {
                "token": token,
                "data": { "kith": "wake" },
                "android": {
                    "priority": "high",
                    "ttl": format!("{}s", WAKE_TTL.as_secs()),
                },
            }
        });
        let response = self
            .http
            .post(&self.send_url)
            .bearer_auth(access.as_str())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| super::unreachable("FCM", e))?;
        match response.status().as_u16() {
            200 => Ok(()),
            404 => Err(PushFailure::Gone),
            400 => {
                let text = failure(response).await;
                if text.contains("UNREGISTERED") || text.contains("INVALID_ARGUMENT") {
                    Err(PushFailure::Gone)
                } else {
                    Err(PushFailure::Failed(format!("FCM: {text}")))
                }
            }
            _ => Err(PushFailure::Failed(format!(
                "FCM: {}",
                failure(response).await
            ))),
        }
    }
}
