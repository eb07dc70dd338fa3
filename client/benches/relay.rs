//! Messages per second between two device endpoints through a relay,
//! beside the same two endpoints linked directly, in one run. The relay is
//! an in-process iroh relay (as `kith-mailboxd --relay-listen` runs it);
//! for the relay run, nftables drops UDP between the two endpoints so no
//! direct path can form. Runs in a private network namespace (root,
//! `unshare`, `nft`; skipped without them).
//! Run: `cargo bench -p kith --bench relay` (`KITH_BENCH_N=N` messages).
#![allow(clippy::unwrap_used)]

use kith_tests::{root_with, sh};
use node_core::DeviceId;
use node_core::crypto::SigningKey;
use node_core::transport::{LinkPath, Transport};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const INNER: &str = "KITH_BENCH_RELAY_INNER";
/// A typical signed message event is a few hundred bytes.
const MESSAGE: usize = 300;

async fn bind(ip: [u8; 4]) -> (Transport, DeviceId) {
    let key = SigningKey::generate();
    let device = DeviceId::from(key.verifying_key());
    let addr = SocketAddr::from((ip, 0));
    (Transport::bind(&key, &[addr]).await.unwrap(), device)
}

/// Sends `n` messages one way, then `n / 10` round trips; returns
/// (one-way messages/s, round trip p50) and the path the link ended on.
async fn measure(
    a: &Transport,
    b: Transport,
    bdev: DeviceId,
    addrs: &[SocketAddr],
    relay: Option<&str>,
    n: usize,
) -> (f64, Duration, LinkPath) {
    let echo = tokio::spawn(async move {
        let link = b.accept().await.unwrap().unwrap();
        let (mut w, mut r) = link.accept().await.unwrap();
        let mut got = 0usize;
        while let Some(frame) = r.recv().await.unwrap() {
            got += 1;
            if frame.first() == Some(&1) {
                w.send(&frame).await.unwrap();
            }
        }
        (got, b)
    });
    let link = a.connect_via(bdev, addrs, relay).await.unwrap();
    let (mut w, mut r) = link.open().await.unwrap();
    let one_way = vec![0u8; MESSAGE];
    let mut ping = vec![1u8; MESSAGE];
    let t = Instant::now();
    for _ in 0..n {
        w.send(&one_way).await.unwrap();
    }
    // The stream is in order: the echo of a ping sent last means every
    // one-way message has arrived.
    w.send(&ping).await.unwrap();
    assert_eq!(r.recv().await.unwrap().unwrap(), ping);
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let mut rtts = Vec::new();
    for i in 0..(n / 10).max(1) {
        ping[1..9].copy_from_slice(&(i as u64).to_be_bytes());
        let s = Instant::now();
        w.send(&ping).await.unwrap();
        assert_eq!(r.recv().await.unwrap().unwrap(), ping);
        rtts.push(s.elapsed());
    }
    let path = link.path();
    w.finish();
    let (got, b) = echo.await.unwrap();
    assert!(got > n);
    b.close().await;
    rtts.sort();
    (rate, rtts[rtts.len() / 2], path)
}

fn inner() {
    sh("ip link set lo up; \
        nft add table inet kbench; \
        nft add chain inet kbench out '{ type filter hook output priority 0; }'; \
        nft add rule inet kbench out ip saddr 127.0.0.2 ip daddr 127.0.0.3 meta l4proto udp drop; \
        nft add rule inet kbench out ip saddr 127.0.0.3 ip daddr 127.0.0.2 meta l4proto udp drop");
    let n: usize = std::env::var("KITH_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = iroh_relay::server::ServerConfig::default();
        config.relay = Some(iroh_relay::server::RelayConfig::new(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
        let server = iroh_relay::server::Server::spawn(config).await.unwrap();
        let url = format!("http://{}", server.http_addr().unwrap());

        let (a, _) = bind([127, 0, 0, 1]).await;
        let (b, bdev) = bind([127, 0, 0, 1]).await;
        let baddrs = b.local_addrs();
        let (rate, rtt, path) = measure(&a, b, bdev, &baddrs, None, n).await;
        println!(
            "direct: {rate:>8.0} messages/s one way, round trip p50 {:.2} ms ({} path)",
            rtt.as_secs_f64() * 1e3,
            path.as_str()
        );
        a.close().await;

        let (a, _) = bind([127, 0, 0, 2]).await;
        let (b, bdev) = bind([127, 0, 0, 3]).await;
        for t in [&a, &b] {
            t.set_relays(std::slice::from_ref(&url)).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while (a.home_relay().is_none() || b.home_relay().is_none()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            a.home_relay().is_some() && b.home_relay().is_some(),
            "no home relay"
        );
        let (rate, rtt, path) = measure(&a, b, bdev, &[], Some(&url), n).await;
        println!(
            "relay:  {rate:>8.0} messages/s one way, round trip p50 {:.2} ms ({} path)",
            rtt.as_secs_f64() * 1e3,
            path.as_str()
        );
        a.close().await;
        server.shutdown().await.unwrap();
    });
}

fn main() {
    if std::env::var_os(INNER).is_some() {
        return inner();
    }
    if !root_with(&["unshare", "ip", "nft"]) {
        println!("skipped: needs root, unshare, ip and nft");
        return;
    }
    println!("{MESSAGE} B messages over one QUIC stream, both endpoints in this process");
    let status = Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args(std::env::args().skip(1))
        .env(INNER, "1")
        .status()
        .unwrap();
    assert!(status.success());
}
