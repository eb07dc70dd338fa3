//! Wake-ups per second accepted by the real `kith-pushd` (release build)
//! and their latency under 200 concurrent clients, with the push service
//! local: an in-process server speaking FCM (OAuth token endpoint and HTTP
//! v1 send) on loopback. Each client is one sending device waking its own
//! contact's registration; every wake-up is signed with a fresh nonce and
//! answered only after the relay's push was accepted. Rates are raised so
//! the limits do not bound the run. Client, relay and the fake FCM share
//! the 2 cores. SQLite, and PostgreSQL when `KITH_TEST_POSTGRES` is set.
//! Run: `cargo bench -p kith-pushd --bench wakeups`
//! (`KITH_BENCH_SECS=N`, default 5; `KITH_BENCH_CLIENTS=200`).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use node_core::DeviceId;
use node_core::crypto::SigningKey;
use node_core::push::sign_request;
use service_kit::testing::{BenchPlan, RunningServer, closed_loop};

const BIN: &str = env!("CARGO_BIN_EXE_kith-pushd");
const RSA_KEY: &str = include_str!("../tests/fixtures/fcm-test-key.pem");

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The fake FCM: a token for anyone, 200 for every send.
async fn fcm() -> String {
    let app = Router::new()
        .route(
            "/token",
            post(|| async {
                r#"{"access_token":"bench","expires_in":3600,"token_type":"Bearer"}"#
            }),
        )
        .route(
            "/v1/projects/{project}/{send}",
            post(|| async { r#"{"name":"projects/bench/messages/1"}"# }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn start(fcm_url: &str, dir: &std::path::Path, database: Option<&str>) -> RunningServer {
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "bench",
        "private_key": RSA_KEY,
        "client_email": "bench@bench.iam.gserviceaccount.com",
        "token_uri": format!("{fcm_url}/token"),
    });
    let key = dir.join("fcm.json");
    std::fs::write(&key, account.to_string()).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .arg("--fcm-service-account")
        .arg(&key)
        .args(["--fcm-url", fcm_url])
        .args(["--rate-limit", "100000000", "--rate-burst", "100000000"])
        // Every load client comes from loopback.
        .args(["--max-connections-per-address", "100000"])
        .args(["--sender-wakes-per-minute", "100000000"])
        .args(["--target-wakes-per-minute", "100000000"])
        .env("RUST_LOG", "warn");
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    RunningServer::start(&mut command)
}

async fn signed(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    path: &str,
    body: String,
) -> u16 {
    let auth = sign_request(key, "POST", path, body.as_bytes());
    let response = http
        .post(format!("{base}{path}"))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    status
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plan = BenchPlan::from_env("200", "_pushd");
    let secs = plan.length.as_secs();
    let rt = BenchPlan::runtime();
    let fcm_url = rt.block_on(fcm());
    println!("kith-pushd wake-ups through a local FCM, {secs} s per run, all on the same 2 cores");
    for (name, url, n) in plan.runs() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(&fcm_url, dir.path(), url);
        let base = format!("http://{}", server.addr());
        let report = rt.block_on(async {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(n)
                .build()
                .unwrap();
            let mut pairs = Vec::new();
            for i in 0..n {
                let (phone, friend) = (SigningKey::generate(), SigningKey::generate());
                let body = serde_json::json!({
                    "platform": "fcm",
                    "token": format!("token-{i}"),
                    "senders": [DeviceId::from(friend.verifying_key()).to_string()],
                    "issued": now_ms(),
                });
                let auth = sign_request(
                    &phone,
                    "POST",
                    "/v1/registrations",
                    body.to_string().as_bytes(),
                );
                let bytes = http
                    .post(format!("{base}/v1/registrations"))
                    .header("authorization", auth)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                pairs.push((friend, answer["handle"].as_str().unwrap().to_owned()));
            }
            let pairs = Arc::new(pairs);
            closed_loop(n, Duration::from_secs(secs), move |client| {
                let (http, pairs, base) = (http.clone(), Arc::clone(&pairs), base.clone());
                async move {
                    let (friend, handle) = &pairs[client];
                    let nonce: [u8; 16] = node_core::crypto::random_bytes();
                    let body = serde_json::json!({
                        "handle": handle,
                        "issued": now_ms(),
                        "nonce": node_core::wire::to_base32(&nonce),
                    })
                    .to_string();
                    assert_eq!(signed(&http, &base, friend, "/v1/wake", body).await, 202);
                }
            })
            .await
        });
        println!("{name:>8} {n:>4} clients: {report} wake-ups accepted");
        drop(server);
    }
}
