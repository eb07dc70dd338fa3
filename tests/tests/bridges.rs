//! Bridges through the CLI (CLI.md "Bridges", issue 23): a kith user with
//! two devices, D1 carrying an XMPP bridge to a real Prosody on loopback,
//! D2 reaching the XMPP side through D1; an XMPP user on the other side
//! (the kith-bridge client, tokio-xmpp underneath).

use kith_bridge::xmpp::{self, XmppBridge};
use kith_bridge::{Bridge, Incoming, Outgoing, Password, Received};
use kith_tests::prosody::{DOMAIN, MUC, Prosody};
use kith_tests::{Daemon, Profile, assert_fails_cleanly, assert_ok, wait_until, walk};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(60);
const ALICE_PASSWORD: &str = "alice-xmpp-password-7c1e";

fn json(p: &Profile, args: &[&str]) -> serde_json::Value {
    let out = p.kith(args);
    serde_json::from_str(&assert_ok(&out)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The log entries of a TARGET, or none yet.
fn log(p: &Profile, target: &str) -> Vec<serde_json::Value> {
    let out = p.kith(["log", target, "--json"]);
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default()
}

fn texts(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

/// Bob, on the XMPP side.
struct Bob {
    rt: tokio::runtime::Runtime,
    bridge: XmppBridge,
    rx: Receiver<Incoming>,
}

impl Bob {
    fn start(p: &Prosody) -> Bob {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        let config = xmpp::Config {
            jid: format!("bob@{DOMAIN}"),
            server: Some(p.server()),
            extra_roots_pem: Some(std::fs::read(p.ca_file()).expect("the CA file")),
        };
        let (bridge, rx) = rt
            .block_on(xmpp::start(&config, Password::new("bob-pass".into())))
            .expect("Bob logs in");
        Bob { rt, bridge, rx }
    }

    /// The next message, answering its receipt request.
    fn message(&mut self) -> Received {
        let rx = &mut self.rx;
        let got = self.rt.block_on(async {
            loop {
                match tokio::time::timeout(WAIT, rx.recv()).await {
                    Ok(Some(Incoming::Message(m))) => return m,
                    Ok(Some(_)) => {}
                    other => panic!("Bob got no message: {other:?}"),
                }
            }
        });
        if got.wants_receipt
            && let Some(id) = &got.id
        {
            self.bridge.received(&got.chat, id).expect("a receipt");
        }
        got
    }

    fn send(&self, to: &str, id: &str, text: &str, group: bool) {
        self.bridge
            .send(Outgoing {
                id: id.into(),
                to: to.into(),
                group,
                text: text.into(),
            })
            .expect("Bob sends");
    }
}

fn add_bridge(d: &Profile, p: &Prosody, password: &str) -> std::process::Output {
    let ca = p.ca_file();
    let server = p.server();
    let jid = format!("alice@{DOMAIN}");
    let mut cmd = d.command([
        "bridge",
        "add",
        "xmpp",
        jid.as_str(),
        "--server",
        server.as_str(),
        "--ca",
        ca.to_str().expect("a UTF-8 path"),
        "--json",
    ]);
    cmd.env("KITH_BRIDGE_PASSWORD", password);
    kith_tests::run_limited(&mut cmd, Duration::from_secs(60))
}

#[test]
fn a_bridge_on_one_device_carries_xmpp_for_every_own_device() {
    if !Prosody::available() {
        return;
    }
    let mut prosody = Prosody::start();
    prosody.register("alice", ALICE_PASSWORD);
    prosody.register("bob", "bob-pass");

    let d1 = Profile::new();
    d1.init("Alice");
    let mut d1_daemon: Daemon = d1.spawn_daemon_shared();
    let d2 = Profile::new();
    d2.join(&d1, "phone");
    let _d2_daemon = d2.spawn_daemon_shared();

    // Bad input first: nothing is kept.
    let wrong = add_bridge(&d1, &prosody, "not-the-password");
    let e = assert_fails_cleanly(&wrong);
    assert!(
        e.contains("refused the login") && e.contains("nothing was kept"),
        "{e}"
    );
    let mut nowhere = d1.command([
        "bridge",
        "add",
        "xmpp",
        "alice@localhost",
        "--server",
        "127.0.0.1:1",
    ]);
    nowhere.env("KITH_BRIDGE_PASSWORD", ALICE_PASSWORD);
    let e = assert_fails_cleanly(&kith_tests::run_limited(&mut nowhere, WAIT));
    assert!(e.contains("could not reach"), "{e}");
    assert_eq!(
        json(&d1, &["bridge", "list", "--json"]),
        serde_json::json!([])
    );

    let added = add_bridge(&d1, &prosody, ALICE_PASSWORD);
    let id = serde_json::from_str::<serde_json::Value>(&assert_ok(&added)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        wait_until(
            WAIT,
            || json(&d1, &["bridge", "list", "--json"])[0]["online"] == true
        ),
        "the bridge never came online: {}\n{}",
        json(&d1, &["bridge", "list", "--json"]),
        d1.daemon_logs()
    );
    // D2 learns of it by sync.
    assert!(
        wait_until(WAIT, || json(&d2, &["bridge", "list", "--json"])[0]["id"]
            == id.as_str()),
        "D2 never heard of the bridge"
    );
    let on_d2 = json(&d2, &["bridge", "list", "--json"]);
    assert_eq!(on_d2[0]["network"], "xmpp");
    assert_eq!(on_d2[0]["account"], format!("alice@{DOMAIN}"));
    assert_eq!(on_d2[0]["device_name"], "Alice");

    // XMPP → kith: Bob writes; both devices show it, marked insecure.
    let mut bob = Bob::start(&prosody);
    let alice_jid = format!("alice@{DOMAIN}");
    let bob_jid = format!("bob@{DOMAIN}");
    bob.send(&alice_jid, "b-1", "hello from xmpp", false);
    for (who, d) in [("D1", &d1), ("D2", &d2)] {
        assert!(
            wait_until(WAIT, || texts(&log(d, &bob_jid)) == ["hello from xmpp"]),
            "{who} never showed Bob's message: {:?}\n{}",
            log(d, &bob_jid),
            d1.daemon_logs()
        );
        let entries = log(d, &bob_jid);
        assert_eq!(entries[0]["insecure"], true, "{who}: {entries:?}");
        assert_eq!(entries[0]["sender"], bob_jid.as_str());
        let contacts = json(d, &["contact", "list", "--json"]);
        let entry = contacts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == bob_jid.as_str())
            .unwrap_or_else(|| panic!("{who}: no bridged entry in {contacts}"));
        assert_eq!(entry["insecure"], true);
        assert_eq!(entry["trust"], "unvalidated");
        assert!(
            entry["via"].as_str().unwrap().starts_with("XMPP on "),
            "{entry}"
        );
    }

    // The terminal UI on D2: the conversation is marked insecure, with no
    // trust badge, and the red line says through which device.
    banner_in_the_terminal_ui(&d2);

    // kith → XMPP from the device without the bridge: D2 → D1 → Bob, and
    // Bob's receipt comes back as delivered.
    assert_ok(&d2.kith(["send", &bob_jid, "from the phone"]));
    let got = bob.message();
    assert_eq!(
        (got.chat.as_str(), got.text.as_str()),
        (alice_jid.as_str(), "from the phone")
    );
    assert!(
        wait_until(WAIT, || {
            log(&d2, &bob_jid)
                .iter()
                .any(|m| m["text"] == "from the phone" && m["state"] == "delivered")
        }),
        "D2 never saw it delivered: {:?}",
        log(&d2, &bob_jid)
    );

    // D1 away: D2's messages wait, shown so, and go out in order when it
    // returns.
    assert!(d1_daemon.stop(Duration::from_secs(20)).is_some());
    for i in 0..3 {
        assert_ok(&d2.kith(["send", &bob_jid, &format!("queued {i}")]));
    }
    let waiting = log(&d2, &bob_jid)
        .iter()
        .filter(|m| m["state"] == "waiting")
        .count();
    assert_eq!(waiting, 3, "{:?}", log(&d2, &bob_jid));
    d1_daemon = d1.spawn_daemon_shared();
    let arrived: Vec<String> = (0..3).map(|_| bob.message().text).collect();
    assert_eq!(arrived, ["queued 0", "queued 1", "queued 2"]);
    assert!(wait_until(WAIT, || log(&d2, &bob_jid)
        .iter()
        .all(|m| m["state"] != "waiting")));

    // A group chat: opened from D2, joined by D1's bridge; a message there
    // reaches both devices.
    let room = format!("kith-room@{MUC}");
    assert_ok(&d2.kith(["bridge", "chat", &id, &room, "--group"]));
    bob.bridge.join(&room, None).unwrap();
    // Wait until D1's bridge is in the room (its own join shows in its
    // log once Bob speaks; Bob repeats until it lands).
    let mut n = 0;
    let landed = wait_until(WAIT, || {
        n += 1;
        bob.send(&room, &format!("g-{n}"), "hello room", true);
        std::thread::sleep(Duration::from_millis(500));
        texts(&log(&d1, &room)).iter().any(|t| t == "hello room")
    });
    assert!(
        landed,
        "the group message never reached D1\n{}",
        d1.daemon_logs()
    );
    assert!(
        wait_until(WAIT, || texts(&log(&d2, &room))
            .iter()
            .any(|t| t == "hello room")),
        "the group message never reached D2"
    );
    assert!(log(&d2, &room).iter().all(|m| m["insecure"] == true));

    // Bridged contacts are never validated.
    let e = assert_fails_cleanly(&d2.kith(["contact", "verify", &bob_jid, "123"]));
    assert!(e.contains("cannot be validated"), "{e}");
    let e = assert_fails_cleanly(&d1.kith(["contact", "trust", &bob_jid, "validated"]));
    assert!(e.contains("cannot be validated"), "{e}");

    // The server goes away: the bridge tries again with backoff, and its
    // status says so.
    prosody.stop();
    assert!(
        wait_until(WAIT, || {
            let status = json(&d1, &["bridge", "list", "--json"])[0]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            status.starts_with("offline") && status.contains("next try in")
        }),
        "no offline status: {}",
        json(&d1, &["bridge", "list", "--json"])
    );
    assert_eq!(json(&d1, &["bridge", "list", "--json"])[0]["online"], false);

    // The password is nowhere but in D1's encrypted store: not in D2's
    // profile, not in any log line, not in D1's files in clear.
    drop(d1_daemon);
    for (who, p) in [("D1", &d1), ("D2", &d2)] {
        let mut found = Vec::new();
        walk(p.home(), &mut |f| {
            if std::fs::read(f).is_ok_and(|b| {
                b.windows(ALICE_PASSWORD.len())
                    .any(|w| w == ALICE_PASSWORD.as_bytes())
            }) {
                found.push(f.to_owned());
            }
        });
        assert!(found.is_empty(), "{who}: the password in {found:?}");
        assert!(
            !p.daemon_logs().contains(ALICE_PASSWORD),
            "{who}: the password in a log line"
        );
    }
}

/// `kith tui` on `p` in a tmux of its own: the bridged conversation (the
/// only one) shows the insecure mark and the red line.
fn banner_in_the_terminal_ui(p: &Profile) {
    use std::process::Command;
    let socket = p.scratch("tmux.sock");
    let tmux = |args: &[&str]| {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&socket).args(args);
        c
    };
    let command = format!(
        "{} --home {} tui; sleep 30",
        kith_tests::kith_bin().display(),
        p.home().display()
    );
    let ok = tmux(&["new-session", "-d", "-s", "kith", "-x", "120", "-y", "30"])
        .arg(&command)
        .status()
        .expect("tmux is needed for this test (apt-get install tmux)");
    assert!(ok.success(), "tmux did not start");
    let screen = || {
        let out = tmux(&["capture-pane", "-p", "-t", "kith"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = wait_until(WAIT, || {
        let s = screen();
        s.contains("INSECURE — via XMPP on Alice") && s.contains("⚠ INSECURE")
    });
    let last = screen();
    let _ = tmux(&["kill-server"]).status();
    assert!(shown, "no insecure banner:\n{last}");
    assert!(
        !last.contains("? unvalidated"),
        "a trust badge on a bridged conversation:\n{last}"
    );
}
