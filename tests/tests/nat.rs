//! Two devices, each behind its own NAT, reach each other through a relay
//! (`kith relay use`), in a topology of network namespaces this test makes:
//!
//! ```text
//!  hostA 192.168.10.2 ─ natA (masquerade) 203.0.113.10 ─┐
//!                                                        ├─ public 203.0.113.1: kith-mailboxd + relay
//!  hostB 192.168.20.2 ─ natB (masquerade) 203.0.113.20 ─┘
//! ```
//!
//! Neither host can reach the other's private address; each has a default
//! route (iroh needs one). Each NAT drops what arrives unasked (as home
//! routers do): a packet dropped before Linux confirms its connection
//! leaves no conntrack entry, so a hole punched from the inside keeps the
//! port the relay saw. (Without the drop, the first punch from outside
//! claims that port in the NAT's table and masquerade moves the inside
//! device to another, and no punch ever meets.) The relay runs QUIC address discovery (with the
//! certificate kith-mailboxd makes, trusted by its pin) and admits only
//! devices with its token. Behind NATs that keep one public port per
//! device (endpoint-independent mapping, Linux masquerade's way), the link
//! starts on the relay and moves to a direct path, with no message lost
//! across the switch. Behind NATs that pick a new port for every
//! destination (symmetric: `masquerade fully-random`), no hole can be
//! punched and the link stays on the relay, still carrying every message.
//! Needs root, `ip` and `nft`; skipped (with a message) without them,
//! except in CI, where it must run.

use kith_tests::{
    Profile, assert_ok, daemon_in_netns, pair, root_with, server_bin, sh, wait_until,
};
use service_kit::testing::RunningServer;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The namespaces; removed on drop.
struct Topology {
    tag: String,
}

/// How the NATs map ports.
#[derive(Clone, Copy, PartialEq)]
enum Nat {
    /// One public port per device, whatever the destination.
    EndpointIndependent,
    /// A random port for every destination.
    Symmetric,
}

impl Topology {
    fn new(nat: Nat) -> Self {
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            if nat == Nat::Symmetric { "s" } else { "" }
        );
        let masquerade = match nat {
            Nat::EndpointIndependent => "masquerade",
            Nat::Symmetric => "masquerade fully-random",
        };
        let t = Self { tag };
        let s = &t.tag;
        let mut script = format!(
            "ip netns add kpub{s}
             ip -n kpub{s} link set lo up
             ip -n kpub{s} link add br0 type bridge
             ip -n kpub{s} addr add 203.0.113.1/24 dev br0
             ip -n kpub{s} link set br0 up
             ip -n kpub{s} route add default dev br0
"
        );
        for (x, n) in [("a", 1), ("b", 2)] {
            script.push_str(&format!(
                "ip netns add knat{x}{s}
                 ip netns add khost{x}{s}
                 ip -n knat{x}{s} link set lo up
                 ip -n khost{x}{s} link set lo up
                 ip link add wan{x}{s} netns knat{x}{s} type veth peer name p{x}{s} netns kpub{s}
                 ip -n kpub{s} link set p{x}{s} master br0 up
                 ip -n knat{x}{s} addr add 203.0.113.{n}0/24 dev wan{x}{s}
                 ip -n knat{x}{s} link set wan{x}{s} up
                 ip -n knat{x}{s} route add default via 203.0.113.1
                 ip link add lan{x}{s} netns knat{x}{s} type veth peer name eth0 netns khost{x}{s}
                 ip -n knat{x}{s} addr add 192.168.{n}0.1/24 dev lan{x}{s}
                 ip -n knat{x}{s} link set lan{x}{s} up
                 ip -n khost{x}{s} addr add 192.168.{n}0.2/24 dev eth0
                 ip -n khost{x}{s} link set eth0 up
                 ip -n khost{x}{s} route add default via 192.168.{n}0.1
                 ip netns exec knat{x}{s} sysctl -qw net.ipv4.ip_forward=1
                 ip netns exec knat{x}{s} nft add table ip nat
                 ip netns exec knat{x}{s} nft add chain ip nat post '{{ type nat hook postrouting priority 100; }}'
                 ip netns exec knat{x}{s} nft add rule ip nat post oifname wan{x}{s} {masquerade}
                 ip netns exec knat{x}{s} nft add table ip filter
                 ip netns exec knat{x}{s} nft add chain ip filter input '{{ type filter hook input priority 0; }}'
                 ip netns exec knat{x}{s} nft add rule ip filter input iifname wan{x}{s} ct state new drop
"
            ));
        }
        sh(&script);
        t
    }

    /// Drops packets between the two NATs' public addresses on the public
    /// bridge (everything else, the relay included, still passes), or
    /// lets them pass again.
    fn block_direct(&self, block: bool) {
        let ns = self.ns("kpub");
        if block {
            sh(&format!(
                "ip netns exec {ns} nft add table bridge direct
                 ip netns exec {ns} nft add chain bridge direct between '{{ type filter hook forward priority 0; }}'
                 ip netns exec {ns} nft add rule bridge direct between ip saddr 203.0.113.10 ip daddr 203.0.113.20 drop
                 ip netns exec {ns} nft add rule bridge direct between ip saddr 203.0.113.20 ip daddr 203.0.113.10 drop
"
            ));
        } else {
            sh(&format!(
                "ip netns exec {ns} nft delete table bridge direct\n"
            ));
        }
    }

    fn ns(&self, name: &str) -> String {
        format!("{name}{}", self.tag)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in ["khosta", "khostb", "knata", "knatb", "kpub"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(name)])
                .status();
        }
    }
}

const TOKEN: &str = "nat-test-token-1";

/// The relay's server, a device behind each NAT with the relay in use and
/// each other as contacts.
struct Scene {
    net: Topology,
    server: RunningServer,
    a: Profile,
    b: Profile,
    da: kith_tests::Daemon,
    db: kith_tests::Daemon,
    bob: String,
    alice: String,
    _data: tempfile::TempDir,
}

/// With `blocked`, the NATs cannot reach each other directly until
/// [`Topology::block_direct`] lifts it.
fn scene(nat: Nat, blocked: bool) -> Option<Scene> {
    if !root_with(&["ip", "nft"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the NAT test (root, ip, nft)"
        );
        eprintln!("skipped: needs root, ip and nft");
        return None;
    }
    let net = Topology::new(nat);
    if blocked {
        net.block_direct(true);
    }
    let data = tempfile::tempdir().expect("temp dir");
    let tokens = data.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens file");
    let mut server = Command::new("ip");
    server
        .args(["netns", "exec", &net.ns("kpub")])
        .arg(server_bin("kith-mailboxd"))
        .args([
            "--listen",
            "203.0.113.1:8480",
            "--relay-listen",
            "203.0.113.1:3340",
            "--relay-quic-listen",
            "203.0.113.1:7842",
            "--relay-tokens",
        ])
        .arg(&tokens)
        .arg("--data")
        .arg(data.path());
    let server = RunningServer::start(&mut server);
    let pin = std::fs::read_to_string(data.path().join("relay-tls/pin")).expect("relay pin");
    let pin = pin.trim();

    let a = Profile::new();
    a.init("Alice");
    let b = Profile::new();
    b.init("Bob");
    let env = [("KITH_LOG", "info,iroh=debug")];
    let da = daemon_in_netns(&a, &net.ns("khosta"), "192.168.10.2:0", &env);
    let db = daemon_in_netns(&b, &net.ns("khostb"), "192.168.20.2:0", &env);
    for p in [&a, &b] {
        let out = p.kith([
            "relay",
            "use",
            "http://203.0.113.1:3340",
            "--token",
            TOKEN,
            "--pin",
            pin,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each device connects to the relay (its home relay) before its card
    // can name it.
    for (who, p, d) in [("A", &a, &da), ("B", &b, &db)] {
        let homed = wait_until(WAIT, || p.status_json()["relay"].as_str().is_some());
        assert!(
            homed,
            "{who} never reached the relay\n{}\n{}",
            d.log(),
            server.stderr()
        );
    }
    let (bob, alice) = pair(&a, &b);
    Some(Scene {
        net,
        server,
        a,
        b,
        da,
        db,
        bob,
        alice,
        _data: data,
    })
}

/// The path A's link to B takes now (`direct`, `relay`, `unknown`, `none`).
fn path(p: &Profile) -> String {
    p.status_json()["paths"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|v| v.as_str())
        .unwrap_or("none")
        .to_owned()
}

/// Sends numbered messages both ways, one pair every 200 ms, until `done`
/// says so (given the seconds elapsed), then checks that each side holds
/// every message the other sent. Returns how many went each way.
fn stream_until(s: &Scene, mut done: impl FnMut(f64) -> bool) -> usize {
    let start = std::time::Instant::now();
    let mut n = 0;
    while !done(start.elapsed().as_secs_f64()) {
        s.a.send(&s.bob, &format!("a{n}"));
        s.b.send(&s.alice, &format!("b{n}"));
        n += 1;
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stream ran too long"
        );
    }
    let expect_b: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let expect_a: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
    let all = wait_until(WAIT, || {
        let (at_b, at_a) = (s.b.texts(&s.alice), s.a.texts(&s.bob));
        expect_b.iter().all(|m| at_b.contains(m)) && expect_a.iter().all(|m| at_a.contains(m))
    });
    let (at_b, at_a) = (s.b.texts(&s.alice), s.a.texts(&s.bob));
    let lost_ab = expect_b.iter().filter(|m| !at_b.contains(m)).count();
    let lost_ba = expect_a.iter().filter(|m| !at_a.contains(m)).count();
    eprintln!("messages: A→B sent {n}, lost {lost_ab}; B→A sent {n}, lost {lost_ba}");
    assert!(
        all,
        "messages lost: A→B {lost_ab}, B→A {lost_ba}\nA:{}\nB:{}",
        s.da.log(),
        s.db.log()
    );
    n
}

#[test]
fn behind_two_nats_the_link_moves_from_the_relay_to_a_direct_path() {
    // The NATs cannot reach each other at first: the link forms on the
    // relay and carries messages there; then the direct path opens, and
    // iroh moves the link onto it (its next upgrade attempt, within 60 s)
    // while messages keep flowing both ways.
    let Some(s) = scene(Nat::EndpointIndependent, true) else {
        return;
    };
    let mut relay_pairs = 0;
    let mut opened_at = None;
    let mut direct_at = None;
    let mut after = 0;
    let sent = stream_until(&s, |elapsed| {
        let now = path(&s.a);
        match opened_at {
            None => {
                assert_ne!(now, "direct", "direct while blocked");
                if now == "relay" {
                    relay_pairs += 1;
                }
                if relay_pairs >= 10 {
                    s.net.block_direct(false);
                    opened_at = Some(elapsed);
                }
            }
            Some(opened) => {
                if direct_at.is_none() && now == "direct" {
                    direct_at = Some(elapsed - opened);
                }
            }
        }
        if direct_at.is_some() {
            after += 1;
        }
        after > 10 || opened_at.is_some_and(|o| direct_at.is_none() && elapsed - o > 90.0)
    });
    eprintln!(
        "NAT (endpoint-independent): {relay_pairs} pairs on the relay, then direct {:?} s \
         after the direct path opened; {sent} messages each way",
        direct_at.map(|t| (t * 10.0).round() / 10.0),
    );
    assert!(
        direct_at.is_some(),
        "the link never went direct: {}\nA:{}\nB:{}\nserver:{}",
        path(&s.a),
        s.da.log(),
        s.db.log(),
        s.server.stderr()
    );
    assert_eq!(path(&s.b), "direct", "B's side of the link");
    drop(s.net);
}

#[test]
fn behind_symmetric_nats_the_link_stays_on_the_relay_and_works() {
    let Some(s) = scene(Nat::Symmetric, false) else {
        return;
    };
    let sent = stream_until(&s, |elapsed| elapsed > 12.0);
    let now = path(&s.a);
    eprintln!("NAT (symmetric): path after 12 s {now}, {sent} messages each way");
    assert_eq!(
        now, "relay",
        "no hole can be punched through symmetric NATs"
    );
    drop(s.net);
}

#[test]
fn a_relay_with_tokens_refuses_devices_without_one() {
    let data = tempfile::tempdir().expect("temp dir");
    let tokens = data.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens file");
    let mut server = Command::new(server_bin("kith-mailboxd"));
    server
        .args([
            "--listen",
            "127.0.0.1:0",
            "--relay-listen",
            "127.0.0.1:0",
            "--relay-tokens",
        ])
        .arg(&tokens)
        .arg("--data")
        .arg(data.path());
    let server = RunningServer::start(&mut server);
    let relay = wait_for_relay_url(&server);
    let mut with = Profile::new();
    with.init("With");
    let mut without = Profile::new();
    without.init("Without");
    let _dw = with.spawn_daemon();
    let _do = without.spawn_daemon();
    assert_ok(&with.kith(["relay", "use", &relay, "--token", TOKEN]));
    assert_ok(&without.kith(["relay", "use", &relay, "--token", "wrong-token-9"]));
    assert!(
        wait_until(WAIT, || with.status_json()["relay"].as_str().is_some()),
        "the device with the token never homed on the relay\n{}",
        server.stderr()
    );
    // The refusal is the user's to see, in `status`.
    let refused = wait_until(WAIT, || {
        without.status_json()["warnings"]
            .as_array()
            .is_some_and(|w| {
                w.iter().any(|w| {
                    w.as_str()
                        .is_some_and(|w| w.contains("refused this device"))
                })
            })
    });
    let status = without.status_json();
    assert!(refused, "no refusal in status: {status}");
    assert!(
        status["relay"].is_null(),
        "a device with a wrong token homed: {status}"
    );
    assert!(!status.to_string().contains("wrong-token-9"), "{status}");
    // The token is a capability: it never shows in the daemon's log.
    let logs = with.daemon_logs();
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(TOKEN)).collect();
    assert!(leaks.is_empty(), "the token was logged: {leaks:#?}");
}

/// The relay's URL, from the server's start-up line.
fn wait_for_relay_url(server: &RunningServer) -> String {
    let mut found = None;
    wait_until(Duration::from_secs(10), || {
        found = server
            .stderr()
            .lines()
            .find_map(|l| l.split("relay listening on ").nth(1))
            .map(|u| u.trim().to_owned());
        found.is_some()
    });
    found.expect("the relay reports its address")
}
