//! The mailbox with real daemons and a real `kith-mailboxd` (CLI.md
//! "mailbox"): the seeds' offline case, where B has no device online, A
//! sends and goes away, and B still gets the message — through the mailbox
//! on B's first device, and from that device on B's second.

use kith_tests::{Daemon, Ids, Profile, assert_ok, pair, server_bin, wait_until};
use service_kit::testing::RunningServer;
use std::process::Command;
use std::time::Duration;

/// How long to wait for anything that travels between daemons.
const WAIT: Duration = Duration::from_secs(60);

/// Daemon flags: collect the mailbox twice a second.
const POLL: &[&str] = &["--mailbox-poll", "0.5"];

fn mailboxd() -> RunningServer {
    let data = tempfile::tempdir().expect("temp dir").keep();
    let mut command = Command::new(server_bin("kith-mailboxd"));
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "info");
    RunningServer::start(&mut command)
}

/// A counter from the server's `/metrics`.
fn metric(server: &RunningServer, name: &str) -> u64 {
    server
        .get("/metrics")
        .body
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[track_caller]
fn stop(d: &mut Daemon, who: &str) {
    assert!(
        d.stop(Duration::from_secs(20)).is_some(),
        "{who}'s daemon did not stop\n{}",
        d.log()
    );
}

fn texts(p: &Profile, target: &str) -> Vec<String> {
    p.try_log_json(target)
        .map(|log| log.into_iter().map(|m| m.text).collect())
        .unwrap_or_default()
}

#[test]
fn offline_account_gets_messages_through_its_mailbox() {
    let server = mailboxd();
    let url = format!("http://{}", server.addr());

    let a = Profile::new();
    let a_ids: Ids = a.init("Alice");
    let mut a1 = a.spawn_daemon_with(POLL);
    let b1 = Profile::new();
    b1.init("Bob");
    let mut b1d = b1.spawn_daemon_with(POLL);
    let b2 = Profile::new();
    b2.join(&b1, "Bob's laptop");
    let mut b2d = b2.spawn_daemon_with(POLL);
    let (bob, _) = pair(&a, &b1);

    // Bad input first: not a URL, not a mailbox.
    let out = b1.kith(["mailbox", "use", "ftp://x"]);
    assert!(!out.status.success());
    let out = b1.kith(["mailbox", "use", "http://127.0.0.1:9"]);
    assert!(!out.status.success(), "a closed port is not a mailbox");

    assert_ok(&b1.kith(["mailbox", "use", &url]));
    // Alice learns Bob's mailbox from his grant; Bob's second device learns
    // the mailbox from the self log and publishes its prekey.
    let alice_knows = wait_until(WAIT, || {
        let out = a.kith(["mailbox", "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["contacts"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["url"] == url.as_str()))
    });
    assert!(
        alice_knows,
        "A never learned B's mailbox\n{}\n{}",
        a.daemon_logs(),
        b1.daemon_logs()
    );
    let b2_knows = wait_until(WAIT, || {
        let out = b2.kith(["mailbox", "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["url"] == url.as_str()
    });
    assert!(
        b2_knows,
        "B2 never learned the mailbox\n{}",
        b2.daemon_logs()
    );
    // Give B2's mailbox round (once a second) time to publish its prekey.
    std::thread::sleep(Duration::from_secs(3));

    // B has no device online; A sends, deposits, goes away.
    stop(&mut b1d, "B1");
    stop(&mut b2d, "B2");
    let id = a.send(&bob, "while you were away");
    let deposited = wait_until(WAIT, || {
        metric(&server, "kith_mailbox_deposits_total{outcome=\"stored\"}") >= 1
    });
    assert!(
        deposited,
        "A never deposited\n{}\n{}",
        a.daemon_logs(),
        server.stderr()
    );
    stop(&mut a1, "A");

    // B1 comes back alone: the message arrives through the mailbox.
    let alice = a_ids.account.clone();
    let _b1d = b1.spawn_daemon_with(POLL);
    let got = wait_until(WAIT, || {
        texts(&b1, &alice).contains(&"while you were away".to_owned())
    });
    assert!(
        got,
        "B1 did not collect\n{}\n{}",
        b1.daemon_logs(),
        server.stderr()
    );
    let log = b1.log_json(&alice);
    let m = log.iter().find(|m| m.id == id).expect("same event id");
    assert_eq!(m.author, a_ids.account, "signed by A, whoever carried it");
    assert!(
        wait_until(WAIT, || metric(&server, "kith_mailbox_collected_total")
            >= 1),
        "B1 did not delete what it collected"
    );

    // B2 comes back: it gets the message from B1 (the deposit is gone).
    let _b2d = b2.spawn_daemon_with(POLL);
    let relayed = wait_until(WAIT, || {
        texts(&b2, &alice).contains(&"while you were away".to_owned())
    });
    assert!(relayed, "B2 did not get it from B1\n{}", b2.daemon_logs());

    // Turning the mailbox off removes it from the server.
    assert_ok(&b1.kith(["mailbox", "off"]));
    let out = b1.kith(["mailbox", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["url"].is_null(), "{v}");
}
