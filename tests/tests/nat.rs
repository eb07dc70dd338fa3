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
//! route (iroh needs one). The test reports whether iroh moved the link to a
//! direct path. Needs root, `ip` and `nft`; skipped (with a message) without
//! them, except in CI, where it must run.

use kith_tests::{Profile, daemon_in_netns, pair, root_with, server_bin, sh, wait_until};
use service_kit::testing::RunningServer;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The namespaces; removed on drop.
struct Topology {
    tag: String,
}

impl Topology {
    fn new() -> Self {
        let tag = format!("{}", std::process::id() % 100_000);
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
                 ip netns exec knat{x}{s} nft add rule ip nat post oifname wan{x}{s} masquerade
"
            ));
        }
        sh(&script);
        t
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

fn texts(p: &Profile, target: &str) -> Vec<String> {
    p.try_log_json(target)
        .map(|log| log.into_iter().map(|m| m.text).collect())
        .unwrap_or_default()
}

#[test]
fn devices_behind_two_nats_talk_through_the_relay() {
    if !root_with(&["ip", "nft"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the NAT test (root, ip, nft)"
        );
        eprintln!("skipped: needs root, ip and nft");
        return;
    }
    let net = Topology::new();
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Command::new("ip");
    server
        .args(["netns", "exec", &net.ns("kpub")])
        .arg(server_bin("kith-mailboxd"))
        .args([
            "--listen",
            "203.0.113.1:8480",
            "--relay-listen",
            "203.0.113.1:3340",
            "--data",
        ])
        .arg(data.path());
    let server = RunningServer::start(&mut server);
    let relay = "http://203.0.113.1:3340";

    let a = Profile::new();
    a.init("Alice");
    let b = Profile::new();
    b.init("Bob");
    let env = [("KITH_LOG", "info,iroh=debug")];
    let da = daemon_in_netns(&a, &net.ns("khosta"), "192.168.10.2:0", &env);
    let db = daemon_in_netns(&b, &net.ns("khostb"), "192.168.20.2:0", &env);
    for p in [&a, &b] {
        let out = p.kith(["relay", "use", relay]);
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
    a.send(&bob, "hello from behind NAT A");
    b.send(&alice, "hello from behind NAT B");
    let both = wait_until(WAIT, || {
        texts(&b, &alice).contains(&"hello from behind NAT A".to_owned())
            && texts(&a, &bob).contains(&"hello from behind NAT B".to_owned())
    });
    assert!(
        both,
        "no exchange through the relay\nA:{}\nB:{}",
        da.log(),
        db.log()
    );
    // Let iroh try to punch a hole, then report the path.
    std::thread::sleep(Duration::from_secs(5));
    let paths = a.status_json()["paths"].clone();
    eprintln!("path between the NATed devices after 5 s: {paths}");
    let path = paths
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|v| v.as_str())
        .unwrap_or("none")
        .to_owned();
    assert!(
        ["direct", "relay", "unknown"].contains(&path.as_str()),
        "{paths}"
    );
    drop(server);
}
