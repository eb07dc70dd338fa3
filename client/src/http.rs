//! HTTP to the helper servers (mailbox, push relay, nameserver): the client
//! set-up, and reading their answers with a bound on their size, and their
//! `{"error": "…"}` bodies.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// A client builder with `timeout` per request, on rustls with the ring
/// provider (reqwest uses the process-wide provider; ring is what iroh uses).
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout)
}

/// A client with `timeout` per request.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    builder(timeout).build().context("building the HTTP client")
}

/// The body, refusing more than `max` bytes.
pub async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading the answer")? {
        if body.len() + chunk.len() > max {
            bail!("the answer is larger than {max} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The JSON body of a 2xx answer (at most `max` bytes read); otherwise an
/// error naming `who` and the server's own message.
pub async fn json_answer(
    response: reqwest::Response,
    max: usize,
    who: &str,
) -> Result<serde_json::Value> {
    let status = response.status();
    let bytes = read_limited(response, max)
        .await
        .with_context(|| format!("reading the {who}'s answer"))?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        let message = body["error"]
            .as_str()
            .map_or_else(|| status.to_string(), str::to_owned);
        bail!("the {who} refused: {message}");
    }
    Ok(body)
}
