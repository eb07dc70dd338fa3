//! A daemon whose listen addresses are all loopback sends nothing beyond
//! loopback. The test re-runs itself inside a fresh network namespace
//! (`unshare -n`) that has a routable non-loopback interface (a veth pair
//! with a default route), counts with nftables every IP and ARP packet
//! leaving through anything but `lo`, and has two real daemons exchange
//! messages there. The count must stay zero.

#![allow(clippy::unwrap_used)]

mod support;

use kith_tests::{root_with, sh};
use std::process::Command;
use std::time::Duration;
use support::{Running, kith, ok, wait_until};

const INNER: &str = "KITH_NETNS_INNER";

#[test]
fn loopback_daemons_send_nothing_beyond_loopback() {
    if std::env::var_os(INNER).is_some() {
        return inner();
    }
    if !root_with(&["unshare", "ip", "nft"]) {
        // CI runs as root with iproute2 and nftables (installed by .ci/run).
        eprintln!("skipped: needs root, unshare, ip and nft");
        return;
    }
    let out = Command::new("unshare")
        .arg("-n")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "loopback_daemons_send_nothing_beyond_loopback",
            "--nocapture",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner run failed:\n{text}");
    assert!(text.contains("1 passed"), "inner test did not run:\n{text}");
}

fn inner() {
    sh(
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1; sysctl -qw net.ipv6.conf.default.disable_ipv6=1; \
        ip link set lo up; \
        ip link add v0 type veth peer name v1; ip addr add 10.99.0.1/24 dev v0; \
        ip link set v0 up; ip link set v1 up; ip route add default via 10.99.0.2 dev v0; \
        nft add table inet kithtest; \
        nft add chain inet kithtest out '{ type filter hook output priority 0; }'; \
        nft add rule inet kithtest out oifname != lo counter; \
        nft add table arp kithtest; \
        nft add chain arp kithtest out '{ type filter hook output priority 0; }'; \
        nft add rule arp kithtest out counter",
    );
    let alice = Running::start("Alice");
    let bob = Running::start("Bob");
    ok(kith(
        &alice.home,
        &["contact", "add", &bob.card(), "--alias", "bob"],
    ));
    ok(kith(
        &bob.home,
        &["contact", "add", &alice.card(), "--alias", "alice"],
    ));
    // The opt-in DHT lookup, turned on, still sends nothing from a daemon
    // on loopback (it has no bootstrap nodes of its own), and LAN
    // discovery does not run there at all.
    ok(kith(&alice.home, &["lookup", "dht", "on"]));
    for i in 0..20 {
        ok(kith(&alice.home, &["send", "bob", &format!("m{i}")]));
        ok(kith(&bob.home, &["send", "alice", &format!("r{i}")]));
    }
    let delivered = wait_until(Duration::from_secs(60), || {
        alice.status()["outbox"] == 0 && bob.status()["outbox"] == 0
    });
    assert!(
        delivered,
        "messages not delivered:\n{}\n{}",
        alice.log(),
        bob.log()
    );
    std::thread::sleep(Duration::from_secs(5));
    for who in [&alice, &bob] {
        let s = who.status();
        assert_eq!(s["lan"]["on"], false, "{s}");
        assert_eq!(s["dht"]["on"], false, "{s}");
    }
    let rules = sh("nft list ruleset");
    let counts: Vec<&str> = rules.lines().filter(|l| l.contains("counter")).collect();
    assert_eq!(counts.len(), 2, "{rules}");
    for line in counts {
        assert!(
            line.contains("packets 0 "),
            "traffic left loopback: {line}\n{rules}"
        );
    }
}
