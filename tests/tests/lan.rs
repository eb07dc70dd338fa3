//! LAN discovery: devices on one local network find each other with no
//! address hint that still works, and what goes over the wire names no
//! device or account in clear. The topology, made here:
//!
//! ```text
//!  klanA{tag} eth0 10.77.0.2 (then .12) ─┐
//!                                          ├─ klsw{tag} br0 10.77.0.1 (a switch; the capture and a stranger run here)
//!  klanB{tag} eth0 10.77.0.3 (then .13) ─┘
//! ```
//!
//! Alice and Bob become contacts while on their first addresses, then both
//! daemons stop, both hosts change address, and both start again: the
//! addresses in their cards and hints now lead nowhere, and only LAN
//! discovery can bring them together. Needs root, `ip` and `nft`; skipped
//! (with a message) without them, except in CI, where it must run.

use kith_tests::{Profile, daemon_in_netns, pair, root_with, sh, wait_until};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

struct Lan {
    tag: String,
}

impl Lan {
    fn new(variant: &str) -> Self {
        let tag = format!("{}{variant}", std::process::id() % 100_000);
        let s = &tag;
        let mut script = format!(
            "ip netns add klsw{s}
             ip -n klsw{s} link set lo up
             ip -n klsw{s} link add br0 type bridge
             ip -n klsw{s} link set br0 up
             ip -n klsw{s} addr add 10.77.0.1/24 dev br0
             ip -n klsw{s} route add default dev br0
"
        );
        for (x, n) in [("a", 2), ("b", 3)] {
            // IPv6 too (no duplicate address detection: the address is
            // usable at once).
            script.push_str(&format!(
                "ip netns add klan{x}{s}
                 ip -n klan{x}{s} link set lo up
                 ip link add eth0 netns klan{x}{s} type veth peer name p{x}{s} netns klsw{s}
                 ip -n klsw{s} link set p{x}{s} master br0 up
                 ip -n klan{x}{s} addr add 10.77.0.{n}/24 dev eth0
                 ip -n klan{x}{s} link set eth0 up
                 ip -n klan{x}{s} route add default dev eth0
                 ip -n klan{x}{s} addr add fd77::{n}/64 dev eth0 nodad
"
            ));
        }
        sh(&script);
        Self { tag }
    }

    fn ns(&self, name: &str) -> String {
        format!("{name}{}", self.tag)
    }

    /// Moves host `x` to a new address.
    fn readdress(&self, x: &str, ip: &str) {
        let ns = self.ns(&format!("klan{x}"));
        sh(&format!(
            "ip -n {ns} addr flush dev eth0
             ip -n {ns} addr add {ip}/24 dev eth0
             ip -n {ns} route add default dev eth0
"
        ));
    }

    /// Captures every frame on every port of the switch into `file` until
    /// killed (unbound: the bridge device itself does not see unicast
    /// between its ports).
    fn capture(&self, file: &std::path::Path) -> Child {
        let script = "import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
f = open(sys.argv[1], 'wb')
while True:
    data = s.recv(65535)
    f.write(len(data).to_bytes(4, 'big') + data)
    f.flush()
";
        Command::new("ip")
            .args(["netns", "exec", &self.ns("klsw"), "python3", "-c", script])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the capture")
    }

    /// Sends `payload` to `to` (the beacon group, or one host) on the
    /// beacon port from the switch (a stranger on the network).
    fn send_from_switch(&self, payload: &[u8], to: &str) {
        let script = "import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'br0')
s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 47575))
";
        let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("klsw"),
                "python3",
                "-c",
                script,
                &hex,
                to,
            ])
            .status()
            .expect("python3")
            .success();
        assert!(ok, "sending from the switch failed");
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for name in ["klana", "klanb", "klsw"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(name)])
                .status();
        }
    }
}

/// The network (`variant` keeps two tests' namespaces apart) and the
/// profiles of Alice and Bob; `None` (skipped) without root, `ip`, `nft`
/// and `python3`, except in CI.
fn scene(variant: &str) -> Option<(Lan, Profile, Profile)> {
    if !root_with(&["ip", "nft", "python3"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the LAN test (root, ip, nft, python3)"
        );
        eprintln!("skipped: needs root, ip, nft and python3");
        return None;
    }
    let net = Lan::new(variant);
    let a = Profile::new();
    a.init("Alice");
    let b = Profile::new();
    b.init("Bob");
    Some((net, a, b))
}

/// The byte strings that would give a device or account away: raw, and
/// as the CLI writes them.
fn needles(status: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for key in ["device", "account"] {
        let text = status[key].as_str().expect("id").to_owned();
        let raw = data_encoding::BASE32_NOPAD
            .decode(text.to_uppercase().as_bytes())
            .expect("a base32 id");
        assert_eq!(raw.len(), 32, "{text}");
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        out.push((format!("{key} raw"), raw[..16].to_vec()));
        out.push((format!("{key} text"), text.as_bytes()[..20].to_vec()));
        out.push((format!("{key} hex"), hex.as_bytes()[..32].to_vec()));
    }
    out
}

#[test]
fn devices_on_one_network_find_each_other_without_hints_and_stay_anonymous() {
    let Some((net, a, b)) = scene("") else {
        return;
    };
    let mut da = daemon_in_netns(&a, &net.ns("klana"), "10.77.0.2:0", &[]);
    let mut db = daemon_in_netns(&b, &net.ns("klanb"), "10.77.0.3:0", &[]);
    let (bob, alice) = pair(&a, &b);
    let (sa, sb) = (a.status_json(), b.status_json());
    let (dev_a, dev_b) = (
        sa["device"].as_str().expect("device").to_owned(),
        sb["device"].as_str().expect("device").to_owned(),
    );
    assert_eq!(sa["lan"]["on"], true, "{sa}");
    a.send(&bob, "before the move");
    assert!(
        wait_until(WAIT, || b
            .texts(&alice)
            .contains(&"before the move".to_owned())),
        "no first exchange\nA:{}\nB:{}",
        da.log(),
        db.log()
    );
    // Each must know the other's beacon (the grants went through) before
    // the move, or nothing could be recognised after it.
    let know = wait_until(WAIT, || {
        a.status_json()["lan"]["known"].as_u64() >= Some(1)
            && b.status_json()["lan"]["known"].as_u64() >= Some(1)
    });
    assert!(
        know,
        "LAN grants never arrived\nA:{}\nB:{}",
        da.log(),
        db.log()
    );

    da.stop(Duration::from_secs(10));
    db.stop(Duration::from_secs(10));
    net.readdress("a", "10.77.0.12");
    net.readdress("b", "10.77.0.13");
    let dir = tempfile::tempdir().expect("temp dir");
    let pcap = dir.path().join("lan.frames");
    let mut capture = net.capture(&pcap);
    std::thread::sleep(Duration::from_millis(300));

    let start = Instant::now();
    let da2 = daemon_in_netns(&a, &net.ns("klana"), "10.77.0.12:0", &[]);
    let db2 = daemon_in_netns(&b, &net.ns("klanb"), "10.77.0.13:0", &[]);
    let met = wait_until(WAIT, || a.linked_to(&dev_b) && b.linked_to(&dev_a));
    let took = start.elapsed();
    eprintln!(
        "LAN: both daemons started on new addresses; linked with no working hint after {:.2} s",
        took.as_secs_f64()
    );
    assert!(
        met,
        "they never met on the LAN\nA:{}\nB:{}",
        da2.log(),
        db2.log()
    );
    a.send(&bob, "after the move, from A");
    b.send(&alice, "after the move, from B");
    let both = wait_until(WAIT, || {
        b.texts(&alice)
            .contains(&"after the move, from A".to_owned())
            && a.texts(&bob).contains(&"after the move, from B".to_owned())
    });
    assert!(both, "no exchange after the move");

    // Datagrams sent to a host rather than to the group never reach
    // discovery (its socket is bound to the group): nothing is counted.
    let mut fake = b"KLAN\x01".to_vec();
    fake.extend([0x5a; 16]);
    fake.extend([0x17; 8]);
    let ignored_before = b.status_json()["lan"]["ignored"].as_u64().unwrap_or(0);
    for _ in 0..20 {
        net.send_from_switch(&fake, "10.77.0.13");
    }
    std::thread::sleep(Duration::from_millis(500));
    let ignored_after = b.status_json()["lan"]["ignored"].as_u64().unwrap_or(0);
    assert!(
        ignored_after < ignored_before + 20,
        "unicast reached LAN discovery ({ignored_before} → {ignored_after})"
    );
    // A stranger on the network: junk, a truncated beacon, and a beacon
    // with a tag nobody knows. All ignored, counted, nothing breaks.
    let ignored_before = b.status_json()["lan"]["ignored"].as_u64().unwrap_or(0);
    for payload in [&b"junk"[..], &fake[..10], &fake[..], &[0xff; 200][..]] {
        net.send_from_switch(payload, "239.255.75.75");
    }
    let counted = wait_until(Duration::from_secs(10), || {
        b.status_json()["lan"]["ignored"].as_u64().unwrap_or(0) >= ignored_before + 4
    });
    assert!(counted, "stranger's datagrams not counted as ignored");
    a.send(&bob, "still fine");
    assert!(
        wait_until(WAIT, || b.texts(&alice).contains(&"still fine".to_owned())),
        "the link broke after the stranger's beacons"
    );

    let _ = capture.kill();
    let _ = capture.wait();
    let frames = std::fs::read(&pcap).expect("capture file");
    assert!(
        frames.len() > 1000,
        "the capture saw almost nothing: {} bytes",
        frames.len()
    );
    for (who, status) in [("Alice", &sa), ("Bob", &sb)] {
        for (what, needle) in needles(status) {
            assert!(
                !frames.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{who}'s {what} appears in clear on the LAN"
            );
        }
    }
    eprintln!(
        "LAN capture: {} bytes of frames, no device or account id in clear",
        frames.len()
    );
    drop(net);
}

#[test]
fn on_both_families_a_direct_link_prefers_ipv6() {
    let Some((net, a, b)) = scene("6") else {
        return;
    };
    let env = [("KITH_LOG", "info,iroh=debug")];
    let da = daemon_in_netns(&a, &net.ns("klana"), "10.77.0.2:0,[fd77::2]:0", &env);
    let db = daemon_in_netns(&b, &net.ns("klanb"), "10.77.0.3:0,[fd77::3]:0", &env);
    let (bob, alice) = pair(&a, &b);
    let dev_b = b.status_json()["device"]
        .as_str()
        .expect("device")
        .to_owned();
    a.send(&bob, "over which family?");
    assert!(
        wait_until(WAIT, || b
            .texts(&alice)
            .contains(&"over which family?".to_owned())),
        "no exchange\nA:{}\nB:{}",
        da.log(),
        db.log()
    );
    let mut addr = String::new();
    let v6 = wait_until(Duration::from_secs(20), || {
        addr = a.status_json()["direct_addrs"][&dev_b]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        addr.starts_with("[fd77::")
    });
    eprintln!("dual stack: the direct link to B runs over {addr}");
    assert!(
        v6,
        "not IPv6: {:?}\nA:{}\nB:{}",
        a.status_json(),
        da.log(),
        db.log()
    );
}
