//! Deposits per second and latency of the real `kith-mailboxd` (release
//! build) under 50 and 500 concurrent clients, each depositing 1 KiB
//! envelopes into its own mailbox over keep-alive HTTP/1.1 on loopback, on
//! SQLite and (when `KITH_TEST_POSTGRES` names a database) PostgreSQL.
//! The load generator runs on the same two cores as the server.
//! Run: `cargo bench -p kith-mailboxd --bench deposits`
//! (`KITH_BENCH_SECS=N` per run, default 5; `KITH_BENCH_CLIENTS=50,500`).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use node_core::mailbox::{self, DeliveryToken, MailboxKey};
use node_core::wire;
use service_kit::testing::{BenchPlan, LoadReport, RunningServer, closed_loop};

const BIN: &str = env!("CARGO_BIN_EXE_kith-mailboxd");
const BODY: usize = 1024;

fn start(database: Option<&str>) -> RunningServer {
    let data = tempfile::tempdir().unwrap().keep();
    let mut command = Command::new(BIN);
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .args([
            "--rate-limit",
            "100000000",
            "--rate-burst",
            "100000000",
            "--mailbox-max-deposits",
            "100000000",
            "--mailbox-max-bytes",
            "100000000000",
            "--sender-max-deposits",
            "100000000",
            "--retention",
            "1h",
            // Every load client comes from loopback.
            "--max-connections-per-address",
            "100000",
        ])
        .env("RUST_LOG", "warn");
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    RunningServer::start(&mut command)
}

/// Registers a mailbox with one token; returns (deposit URL, bearer).
async fn mailbox(http: &reqwest::Client, base: &str) -> (String, String) {
    let key = MailboxKey::generate();
    let token = DeliveryToken::generate();
    let path = format!("/v1/mailboxes/{}", key.id());
    let owner = |method: reqwest::Method, rest: &str, body: Vec<u8>| {
        let (http, key, base, path) = (http.clone(), &key, base.to_owned(), path.clone());
        let rest = rest.to_owned();
        async move {
            let bytes = http
                .post(format!("{base}{path}/challenge"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let challenge: [u8; 32] = wire::from_base32(answer["challenge"].as_str().unwrap(), "c")
                .unwrap()
                .try_into()
                .unwrap();
            let full = format!("{path}{rest}");
            let auth = mailbox::sign_request(key, &challenge, method.as_str(), &full, &body);
            let status = http
                .request(method, format!("{base}{full}"))
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "{status}");
        }
    };
    owner(reqwest::Method::PUT, "", vec![]).await;
    let tokens = serde_json::json!({ "add": [token.hash().to_string()] }).to_string();
    owner(reqwest::Method::POST, "/tokens", tokens.into_bytes()).await;
    (format!("{base}{path}/deposits"), token.bearer())
}

/// Runs `clients` depositors for `secs`.
async fn run(base: &str, clients: usize, secs: u64) -> LoadReport {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let mut boxes = Vec::new();
    for _ in 0..clients {
        boxes.push(mailbox(&http, base).await);
    }
    let boxes = Arc::new(boxes);
    let body = Arc::new(vec![0x5a; BODY]);
    closed_loop(clients, Duration::from_secs(secs), move |client| {
        let (http, boxes, body) = (http.clone(), Arc::clone(&boxes), Arc::clone(&body));
        async move {
            let (url, bearer) = &boxes[client];
            let status = http
                .post(url)
                .header("authorization", bearer)
                .body(body.to_vec())
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 201);
        }
    })
    .await
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plan = BenchPlan::from_env("50,500", "");
    let secs = plan.length.as_secs();
    let rt = BenchPlan::runtime();
    println!(
        "kith-mailboxd deposits of {BODY} B, {secs} s per run, client and server on the same 2 cores"
    );
    for (name, url, n) in plan.runs() {
        let server = start(url);
        let base = format!("http://{}", server.addr());
        let report = rt.block_on(run(&base, n, secs));
        println!("{name:>8} {n:>4} clients: {report} deposits");
        drop(server);
    }
}
