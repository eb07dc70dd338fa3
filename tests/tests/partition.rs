//! The partition suite: three accounts with two devices each, every device
//! in its own network namespace on one bridge this test makes, links cut
//! and healed with nftables in the bridge while everyone keeps writing:
//!
//! 1. a split into two halves (each half holds one device of every account);
//! 2. one-way loss (A1 hears nothing from B1, B1 still hears A1);
//! 3. 30 % random loss on every path (`numgen random`);
//! 4. healed.
//!
//! After the heal every device of the two accounts of a conversation holds
//! every message of it, once, in the same order. Needs root, `ip` and
//! `nft`; skipped (with a message) without them, except in CI.

use kith_tests::{Daemon, Profile, kith_bin, root_with, sh, stderr, stdout, wait_until};
use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Devices: A1 A2 B1 B2 C1 C2 (index = account * 2 + device).
const DEVICES: usize = 6;
const NAMES: [&str; DEVICES] = ["a1", "a2", "b1", "b2", "c1", "c2"];

struct Net {
    tag: String,
}

impl Net {
    fn new() -> Self {
        let tag = format!("{}", std::process::id() % 100_000);
        let s = &tag;
        let mut script = format!(
            "ip netns add kbr{s}
             ip -n kbr{s} link set lo up
             ip -n kbr{s} link add br0 type bridge
             ip -n kbr{s} link set br0 up
             ip netns exec kbr{s} nft add table bridge cut
             ip netns exec kbr{s} nft add chain bridge cut links '{{ type filter hook forward priority 0; policy accept; }}'
"
        );
        for i in 0..DEVICES {
            let n = i + 1;
            script.push_str(&format!(
                "ip netns add kd{i}x{s}
                 ip -n kd{i}x{s} link set lo up
                 ip link add eth0 netns kd{i}x{s} type veth peer name v{i}x{s} netns kbr{s}
                 ip -n kbr{s} link set v{i}x{s} master br0 up
                 ip -n kd{i}x{s} addr add 10.77.0.{n}/24 dev eth0
                 ip -n kd{i}x{s} link set eth0 up
                 ip -n kd{i}x{s} route add default dev eth0
"
            ));
        }
        sh(&script);
        Self { tag }
    }

    fn ns(&self, i: usize) -> String {
        format!("kd{i}x{}", self.tag)
    }

    fn port(&self, i: usize) -> String {
        format!("v{i}x{}", self.tag)
    }

    fn nft(&self, rule: &str) {
        sh(&format!(
            "ip netns exec kbr{} nft add rule bridge cut links '{rule}'",
            self.tag
        ));
    }

    /// Drops every frame from device `from` to device `to`.
    fn cut(&self, from: usize, to: usize) {
        self.nft(&format!(
            "iifname {} oifname {} drop",
            self.port(from),
            self.port(to)
        ));
    }

    fn heal(&self) {
        sh(&format!(
            "ip netns exec kbr{} nft flush chain bridge cut links",
            self.tag
        ));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..DEVICES {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &format!("kbr{}", self.tag)])
            .status();
    }
}

/// `kith ARGS` for `p`, run inside namespace `ns` (for what dials out
/// before a daemon runs: `init --join`).
fn kith_in(p: &Profile, ns: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(kith_bin())
        .arg("--home")
        .arg(p.home())
        .args(args)
        .env_remove("KITH_HOME")
        .env_remove("KITH_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("running kith in a namespace");
    assert!(
        out.status.success(),
        "kith {args:?} in {ns}: {}",
        stderr(&out)
    );
    out
}

fn daemon_in(p: &Profile, ns: &str, addr: &str) -> Daemon {
    let log = p.scratch(&format!("daemon-{ns}.log"));
    let file = std::fs::File::create(&log).expect("daemon log");
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(kith_bin())
        .arg("--home")
        .arg(p.home())
        .args(["daemon", "--listen", addr])
        .env_remove("KITH_HOME")
        .env_remove("KITH_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawning kith daemon");
    let daemon = Daemon::from_child(child, log);
    let up = p.kith(["status", "--wait", "10", "--json"]);
    assert!(
        up.status.success(),
        "daemon in {ns} did not start\n{}",
        daemon.log()
    );
    daemon
}

fn conversation_ids(p: &Profile, target: &str) -> Vec<String> {
    p.try_log_json(target)
        .map(|l| l.into_iter().map(|m| m.id).collect())
        .unwrap_or_default()
}

#[test]
fn three_accounts_converge_after_splits_one_way_and_random_loss() {
    if !root_with(&["ip", "nft"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the partition suite (root, ip, nft)"
        );
        eprintln!("skipped: needs root, ip and nft");
        return;
    }
    let net = Net::new();
    let profiles: Vec<Profile> = (0..DEVICES).map(|_| Profile::new()).collect();
    let addr = |i: usize| format!("10.77.0.{}:4433", i + 1);
    let mut daemons: Vec<Daemon> = Vec::new();
    for account in 0..3 {
        let (first, second) = (account * 2, account * 2 + 1);
        profiles[first].init(NAMES[first]);
        daemons.push(daemon_in(&profiles[first], &net.ns(first), &addr(first)));
        let code = profiles[first].invite();
        kith_in(
            &profiles[second],
            &net.ns(second),
            &[
                "init",
                "--join",
                &code,
                "--name",
                NAMES[second],
                "--json",
                "--no-passphrase",
            ],
        );
        daemons.push(daemon_in(&profiles[second], &net.ns(second), &addr(second)));
    }
    // Every pair of accounts are contacts (added on their first devices).
    let mut ids: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let cards: Vec<String> = (0..3).map(|a| profiles[a * 2].card()).collect();
    for a in 0..3 {
        for (b, card) in cards.iter().enumerate() {
            if a != b {
                let out = profiles[a * 2].kith(["contact", "add", card]);
                assert!(out.status.success(), "{}", stderr(&out));
                ids.insert((a, b), stdout(&out).trim().to_owned());
            }
        }
    }
    let target = |device: usize, other: usize| ids[&(device / 2, other)].clone();
    // Both devices of every account know both contacts.
    let known = wait_until(Duration::from_secs(90), || {
        (0..DEVICES).all(|d| {
            let c = profiles[d].contacts_json();
            c.as_array().is_some_and(|c| c.len() == 2)
        })
    });
    assert!(known, "contacts did not reach every device");

    let mut sent: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let mut n = 0;
    // Every device writes to both other accounts, every 300 ms, for 6 s.
    let mut phase = |label: &str, sent: &mut BTreeMap<(usize, usize), Vec<String>>| {
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            for d in 0..DEVICES {
                for other in (0..3).filter(|o| *o != d / 2) {
                    let text = format!("{label} {n} from {}", NAMES[d]);
                    n += 1;
                    let id = profiles[d].send(&target(d, other), &text);
                    let key = ((d / 2).min(other), (d / 2).max(other));
                    sent.entry(key).or_default().push(id);
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    phase("connected", &mut sent);
    // 1. Split: {A1, B1, C1} | {A2, B2, C2}.
    for x in [0, 2, 4] {
        for y in [1, 3, 5] {
            net.cut(x, y);
            net.cut(y, x);
        }
    }
    phase("split", &mut sent);
    // The split holds: a message A1 writes reaches B1, not A2 or B2.
    let probe = profiles[0].send(&target(0, 1), "probe across the split");
    let has = |d: usize| {
        conversation_ids(&profiles[d], &target(d, if d / 2 == 0 { 1 } else { 0 })).contains(&probe)
    };
    assert!(
        wait_until(Duration::from_secs(30), || has(2)),
        "B1 did not get A1's message inside its half"
    );
    assert!(!has(1) && !has(3), "the split let a message through");
    sent.entry((0, 1)).or_default().push(probe);
    net.heal();
    // 2. One way: nothing from B1 reaches A1.
    net.cut(2, 0);
    phase("one-way", &mut sent);
    net.heal();
    // 3. 30 % random loss everywhere.
    net.nft("numgen random mod 100 < 30 drop");
    phase("lossy", &mut sent);
    net.heal();

    // Healed: the four devices of each conversation agree.
    let conversation_log = |d: usize, other: usize| -> Option<Vec<String>> {
        profiles[d]
            .try_log_json(&target(d, other))
            .ok()
            .map(|l| l.into_iter().map(|m| m.id).collect())
    };
    let agreed = |(a, b): (usize, usize), want: &[String]| {
        let want: HashSet<&String> = want.iter().collect();
        let logs: Vec<Option<Vec<String>>> = [a * 2, a * 2 + 1, b * 2, b * 2 + 1]
            .into_iter()
            .map(|d| conversation_log(d, if d / 2 == a { b } else { a }))
            .collect();
        let Some(Some(first)) = logs.first() else {
            return false;
        };
        first.len() == want.len()
            && first.iter().all(|id| want.contains(id))
            && logs.iter().all(|l| l.as_ref() == Some(first))
    };
    let converged = wait_until(Duration::from_secs(120), || {
        sent.iter().all(|(k, v)| agreed(*k, v))
    });
    if !converged {
        for (k, v) in &sent {
            eprintln!(
                "conversation {k:?}: {} sent, agreed {}",
                v.len(),
                agreed(*k, v)
            );
        }
        for (i, d) in daemons.iter().enumerate() {
            eprintln!("--- {}\n{}", NAMES[i], d.log());
        }
    }
    assert!(converged, "the devices did not converge after the heal");
    let total: usize = sent.values().map(Vec::len).sum();
    eprintln!("partition suite: {total} messages over 3 conversations converged on all devices");
}
