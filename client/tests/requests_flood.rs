//! Contact requests under a flood: 10,000 requests from fresh strangers
//! (each its own device key, account and QUIC connection) at a real
//! daemon. What it keeps stays bounded in memory and on the disk, it keeps
//! answering its owner, and a real request sent after the flood arrives.

#![allow(clippy::unwrap_used)]

mod support;

use kith_tests::{Profile, assert_ok, wait_until};
use node_core::DeviceId;
use node_core::crypto::SigningKey;
use node_core::transport::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const STRANGERS: usize = 10_000;
/// Strangers asking at once.
const AT_ONCE: usize = 48;

/// One stranger: a fresh key, account and endpoint; the answer, if any.
async fn ask(n: usize, now: i64, to: DeviceId, at: SocketAddr) -> Option<u8> {
    let key = SigningKey::generate();
    let request = support::request_from(&key, &format!("stranger {n}"), now);
    let t = Transport::bind(&key, &["127.0.0.1:0".parse().unwrap()])
        .await
        .ok()?;
    let spam = ["buy cheap watches ".repeat(100)];
    let a = support::ask_request(&t, &request.encode(), &spam, to, at).await;
    t.close().await;
    a
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    kith_tests::walk(dir, &mut |p| {
        total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    });
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_strangers_stay_bounded_and_a_real_request_still_arrives() {
    let mut bob = Profile::new();
    let ib = bob.init("bob");
    let daemon = bob.spawn_daemon();
    let status = bob.status_json();
    let to: DeviceId = status["device"].as_str().unwrap().parse().unwrap();
    let at: SocketAddr = status["listening"][0].as_str().unwrap().parse().unwrap();
    let rss_before = rss_kib(daemon.pid());
    let disk_before = dir_bytes(bob.home());

    let started = Instant::now();
    let answers: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let next = Arc::new(AtomicUsize::new(0));
    let now = 1_800_000_000_000;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..AT_ONCE {
        let (answers, next) = (Arc::clone(&answers), Arc::clone(&next));
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= STRANGERS {
                    return;
                }
                let slot = match ask(n, now, to, at).await {
                    Some(a @ 0..=2) => usize::from(a),
                    _ => 3,
                };
                answers[slot].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // The owner is answered during the flood.
    let home = bob.home().to_owned();
    let owner = tokio::task::spawn_blocking(move || {
        let mut answered = 0;
        for _ in 0..5 {
            let out = kith_tests::run_limited(
                kith_tests::kith_command()
                    .arg("--home")
                    .arg(&home)
                    .args(["status", "--json"]),
                Duration::from_secs(30),
            );
            if out.status.success() {
                answered += 1;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        answered
    });
    while workers.join_next().await.is_some() {}
    let took = started.elapsed();
    let [kept, contact, busy, failed] = [0, 1, 2, 3].map(|i| answers[i].load(Ordering::Relaxed));
    println!(
        "{STRANGERS} stranger requests in {:.1} s: {kept} kept, {contact} contact, {busy} busy, {failed} failed",
        took.as_secs_f64()
    );
    assert_eq!(
        owner.await.unwrap(),
        5,
        "the owner was not answered during the flood"
    );
    assert_eq!(contact, 0);
    assert!(kept > 0, "no stranger's request was looked at");

    let kept_now = bob.requests_json().len();
    let rss_after = rss_kib(daemon.pid());
    let disk_after = dir_bytes(bob.home());
    println!(
        "requests kept {kept_now}; daemon RSS {rss_before} KiB -> {rss_after} KiB; profile {disk_before} -> {disk_after} bytes"
    );
    assert!(kept_now <= node_core::node::requests::MAX_REQUESTS);
    assert!(
        rss_after < rss_before + 200 * 1024,
        "the daemon grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(
        disk_after < disk_before + 64 * 1024 * 1024,
        "the profile grew from {disk_before} to {disk_after} bytes"
    );

    // A real request after the flood arrives.
    let mut alice = Profile::new();
    let ia = alice.init("alice");
    let _da = alice.spawn_daemon();
    alice.add_contact(&bob.card());
    alice.send(&ib.account, "made it through");
    assert!(
        wait_until(Duration::from_secs(60), || bob
            .requests_json()
            .iter()
            .any(|r| r["id"] == ia.account.as_str())),
        "Alice's request did not arrive after the flood\n{}",
        alice.daemon_logs()
    );
    assert_ok(&bob.kith(["contact", "accept", &ia.account]));
    assert!(wait_until(Duration::from_secs(60), || bob
        .try_log_json(&ia.account)
        .is_ok_and(|l| l.iter().any(|m| m.text == "made it through"))));
}
