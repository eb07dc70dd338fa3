//! Ingest benchmark: prints its figures (run with `cargo bench -p node-core --bench ingest`).
//!
//! - events accepted per second (decode + verify + validate + store), on one
//!   thread and on all cores, beside the bare libsodium verify rate;
//! - store bytes per 1 KB message event;
//! - time to open a profile holding 100k events.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use node_core::crypto::SigningKey;
use node_core::identity::AccountEntry;
use node_core::identity::entry::{kind, sign_join};
use node_core::log::{Draft, Event, LogKind, Verified};
use node_core::node::Node;
use node_core::store::{Passphrase, Profile};
use node_core::{DeviceId, EventId, LogId};
use std::time::Instant;

const BATCH: usize = 1000;

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A chain of `n` self-log events by `key`, each on the previous one.
fn chain(key: &SigningKey, log: LogId, n: usize, body_len: usize, first_seq: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<(EventId, u64)> = None;
    for i in 0..n {
        let e = Event::sign(
            key,
            Draft {
                log: Some(log),
                log_kind: LogKind::SelfLog,
                seq: first_seq + i as u64,
                prev: prev.map(|p| p.0),
                parents: prev.into_iter().collect(),
                time: 1_000 + i as i64,
                kind: 7,
                body: vec![b'm'; body_len],
            },
        );
        prev = Some((e.id(), e.header().depth));
        out.push(e.encode());
    }
    out
}

async fn node_with_phone(dir: &std::path::Path, pass: Option<&Passphrase>) -> (Node, SigningKey) {
    let (mut node, _) = Node::create(Profile::new(dir), "bench", pass, false, 1)
        .await
        .unwrap();
    let phone = SigningKey::generate();
    let device = DeviceId::from(phone.verifying_key());
    let entry = AccountEntry::AddDevice {
        device,
        name: "phone".into(),
        join: sign_join(&phone, node.account(), "phone"),
    };
    let log = LogId::account(node.account());
    node.append(log, kind::ADD_DEVICE, entry.encode(), 2)
        .await
        .unwrap();
    (node, phone)
}

fn bare_verify_rate(events: &[Vec<u8>], threads: usize) -> f64 {
    let decoded: Vec<Event> = events
        .iter()
        .map(|b| Event::decode(b).unwrap().without_body())
        .collect();
    let start = Instant::now();
    let per = decoded.len().div_ceil(threads);
    std::thread::scope(|s| {
        for part in decoded.chunks(per) {
            s.spawn(move || {
                for e in part {
                    // Exactly the signature check of the pipeline: one Ed25519 verify.
                    Verified::new(e.clone()).unwrap();
                }
            });
        }
    });
    decoded.len() as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("KITH_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let cores = threads();
    println!("kith ingest benchmark: {n} events, {cores} cores");

    // Events accepted per second.
    for (label, t) in [("1 thread", 1), ("all cores", cores)] {
        let dir = tempfile::tempdir().unwrap();
        let (mut node, phone) = node_with_phone(&dir.path().join("p"), None).await;
        let log = LogId::self_log(node.account());
        let events = chain(&phone, log, n, 100, 1);
        let bare = bare_verify_rate(&events, t);
        let start = Instant::now();
        for batch in events.chunks(BATCH) {
            let out = node
                .ingest_batch(log, batch, 10_000, t, None)
                .await
                .unwrap();
            assert!(out.iter().all(Result::is_ok));
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        println!(
            "{label:>9}: bare verify {bare:>9.0}/s   accepted {rate:>9.0}/s   ratio {:.0}%",
            100.0 * rate / bare
        );
        node.close().await;
    }

    // Store bytes per 1 KB message event.
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let (mut node, phone) = node_with_phone(&path, None).await;
        let log = LogId::self_log(node.account());
        let m = 10_000;
        let events = chain(&phone, log, m, 1024, 1);
        for batch in events.chunks(BATCH) {
            node.ingest_batch(log, batch, 10_000, cores, None)
                .await
                .unwrap();
        }
        node.close().await;
        let size: u64 = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        println!(
            "store size: {:.0} bytes per 1 KB message event ({m} events, {size} bytes on disk)",
            size as f64 / m as f64
        );
    }

    // Time to open a profile with 100k events.
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let pass = Passphrase::new("bench passphrase".into());
        let (mut node, phone) = node_with_phone(&path, Some(&pass)).await;
        let log = LogId::self_log(node.account());
        let m = 100_000;
        let events = chain(&phone, log, m, 200, 1);
        for batch in events.chunks(5 * BATCH) {
            node.ingest_batch(log, batch, 10_000, cores, None)
                .await
                .unwrap();
        }
        node.close().await;
        let start = Instant::now();
        let node = Node::open(Profile::new(&path), Some(&pass)).await.unwrap();
        let total = start.elapsed();
        assert_eq!(node.log(&log).unwrap().len(), m);
        node.close().await;
        let start = Instant::now();
        let kdf =
            node_core::crypto::argon2id(b"x", &[0; 16], node_core::store::keyfile::DEFAULT_PARAMS)
                .unwrap();
        drop(kdf);
        let kdf_time = start.elapsed();
        println!(
            "open with {m} events: {:.2} s (of which argon2id passphrase derivation {:.2} s)",
            total.as_secs_f64(),
            kdf_time.as_secs_f64()
        );
    }
}
