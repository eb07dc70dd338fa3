//! Lookups per second and latency of the real `kith-named` (release build)
//! under 200 concurrent clients over keep-alive HTTP/1.1 on loopback, on
//! SQLite and (when `KITH_TEST_POSTGRES` names a database) PostgreSQL.
//! 1000 names are registered first; each lookup asks for one of them and
//! gets its signed record. The load generator shares the server's 2 cores.
//! Run: `cargo bench -p kith-named --bench lookups`
//! (`KITH_BENCH_SECS=N` per run, default 5; `KITH_BENCH_CLIENTS=200`).
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Account, now};
use data_encoding::BASE64;
use service_kit::testing::{BenchPlan, RunningServer, closed_loop};

const BIN: &str = env!("CARGO_BIN_EXE_kith-named");
const NAMES: usize = 1000;

fn start(database: Option<&str>) -> RunningServer {
    let data = tempfile::tempdir().unwrap().keep();
    let mut command = Command::new(BIN);
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--domain",
            "bench.test",
            "--data",
        ])
        .arg(&data)
        .args(["--rate-limit", "100000000", "--rate-burst", "100000000"])
        // Every load client comes from loopback.
        .args(["--max-connections-per-address", "100000"])
        .env("RUST_LOG", "warn");
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    RunningServer::start(&mut command)
}

async fn register(http: &reqwest::Client, base: &str, run: i64) -> Vec<String> {
    let mut names = Vec::with_capacity(NAMES);
    for i in 0..NAMES {
        let account = Account::new("bench");
        let handle = format!("user{run}x{i}@bench.test");
        let record = account.bind(&handle, now());
        let body = serde_json::json!({ "record": BASE64.encode(&record) }).to_string();
        let status = http
            .post(format!("{base}/v1/names"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
        names.push(handle);
    }
    names
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plan = BenchPlan::from_env("200", "_named");
    let secs = plan.length.as_secs();
    let rt = BenchPlan::runtime();
    println!(
        "kith-named lookups of {NAMES} names, {secs} s per run, client and server on the same 2 cores"
    );
    for (name, url, n) in plan.runs() {
        let server = start(url);
        let base = format!("http://{}", server.addr());
        let report = rt.block_on(async {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(n)
                .build()
                .unwrap();
            let names = Arc::new(register(&http, &base, now()).await);
            let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            closed_loop(n, Duration::from_secs(secs), move |_| {
                let (http, names, base) = (http.clone(), Arc::clone(&names), base.clone());
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let handle = &names[i % names.len()];
                    let response = http
                        .get(format!("{base}/v1/names/{handle}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                }
            })
            .await
        });
        println!("{name:>8} {n:>4} clients: {report} lookups");
        drop(server);
    }
}
