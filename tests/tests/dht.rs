//! Opt-in address lookup in the Mainline DHT, on a local testnet bound to
//! loopback (nothing leaves it): the two devices of an account, with no
//! relay, both move to new addresses and find each other again through
//! the records they published.

use kith_tests::{Profile, assert_ok, wait_until};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A loopback UDP port free now.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn both_devices_move_and_find_each_other_through_the_dht() {
    let testnet = mainline::Testnet::builder(10)
        .build()
        .expect("a local DHT testnet");
    assert!(
        testnet
            .bootstrap
            .iter()
            .all(|b| b.starts_with("127.0.0.1:")),
        "{:?}",
        testnet.bootstrap
    );
    let bootstrap = testnet.bootstrap.join(",");
    let extra = ["--dht-bootstrap", bootstrap.as_str()];

    let a1 = Profile::new();
    let ids1 = a1.init("Alice laptop");
    let d1 = a1.spawn_daemon_on_with(&format!("127.0.0.1:{}", free_port()), &extra);
    let a2 = Profile::new();
    let ids2 = a2.join(&a1, "Alice phone");
    let d2 = a2.spawn_daemon_on_with(&format!("127.0.0.1:{}", free_port()), &extra);
    assert!(
        wait_until(WAIT, || a1.linked_to(&ids2.device)),
        "the two devices never linked\n{}\n{}",
        d1.log(),
        d2.log()
    );
    // Off by default; on from one device, followed by both.
    assert_eq!(a1.status_json()["dht"]["on"], false);
    assert_ok(&a1.kith(["lookup", "dht", "on"]));
    let published = wait_until(WAIT, || {
        [&a1, &a2]
            .iter()
            .all(|p| p.status_json()["dht"]["published"].as_u64() >= Some(1))
    });
    assert!(
        published,
        "records not published\n{}\n{}",
        d1.log(),
        d2.log()
    );
    drop(d1);
    drop(d2);

    // Both move: new ports, so every address each knows of the other is
    // dead, and there is no relay, and no LAN discovery on loopback.
    let start = Instant::now();
    let d1 = a1.spawn_daemon_on_with(&format!("127.0.0.1:{}", free_port()), &extra);
    let d2 = a2.spawn_daemon_on_with(&format!("127.0.0.1:{}", free_port()), &extra);
    let met = wait_until(WAIT, || {
        a1.linked_to(&ids2.device) && a2.linked_to(&ids1.device)
    });
    eprintln!(
        "DHT: both devices moved; linked again through the testnet after {:.2} s \
         (lookups that found a record: {}, {}; the last took {} ms, {} ms)",
        start.elapsed().as_secs_f64(),
        a1.status_json()["dht"]["found"],
        a2.status_json()["dht"]["found"],
        a1.status_json()["dht"]["last_lookup_ms"],
        a2.status_json()["dht"]["last_lookup_ms"]
    );
    assert!(
        met,
        "they never found each other through the DHT\n{}\n{}",
        d1.log(),
        d2.log()
    );
    assert_ok(&a2.kith(["lookup", "dht", "off"]));
    assert!(
        wait_until(WAIT, || a1.status_json()["dht"]["on"] == false),
        "turning it off on one device did not reach the other"
    );
}
