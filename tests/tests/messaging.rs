//! Messages between two users (CLI.md "Messages", `contact`, `status`):
//! many messages both ways at once, an offline receiver, daemons killed with
//! SIGKILL, bad input, and what `status` shows about peers.

use kith_tests::{
    Daemon, Ids, Message, Profile, assert_fails_cleanly, assert_ok, is_id, pair, stdout, wait_until,
};
use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for anything that travels between daemons.
const WAIT: Duration = Duration::from_secs(60);

/// A fresh profile named `name` with a running daemon.
fn user(name: &str) -> (Profile, Ids, Daemon) {
    let mut p = Profile::new();
    let ids = p.init(name);
    let d = p.spawn_daemon();
    (p, ids, d)
}

fn ids(log: &[Message]) -> Vec<String> {
    log.iter().map(|m| m.id.clone()).collect()
}

/// The ids of the messages `author` wrote, in log order.
fn ids_by(log: &[Message], author: &str) -> Vec<String> {
    log.iter()
        .filter(|m| m.author == author)
        .map(|m| m.id.clone())
        .collect()
}

/// Both profiles' daemon logs, for assertion messages.
fn logs(a: &Profile, b: &Profile) -> String {
    format!(
        "=== A's daemons\n{}\n=== B's daemons\n{}",
        a.daemon_logs(),
        b.daemon_logs()
    )
}

fn outbox(p: &Profile) -> u64 {
    let v = p.status_json();
    v["outbox"]
        .as_u64()
        .unwrap_or_else(|| panic!("status without numeric outbox: {v}"))
}

fn peers(p: &Profile) -> Vec<String> {
    let v = p.status_json();
    v["peers"]
        .as_array()
        .unwrap_or_else(|| panic!("status without peers array: {v}"))
        .iter()
        .map(|d| d.as_str().expect("peer ids are strings").to_owned())
        .collect()
}

fn assert_no_duplicates(log: &[Message], who: &str) {
    let set: HashSet<&str> = log.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(set.len(), log.len(), "{who}'s log has duplicate ids");
}

#[test]
fn two_users_exchange_1000_messages_both_ways() {
    const N: usize = 1000;
    let (a, ia, _da) = user("alice");
    let (b, ib, _db) = user("bob");
    let (b_at_a, a_at_b) = pair(&a, &b);
    assert_eq!(b_at_a, ib.account);
    assert_eq!(a_at_b, ia.account);
    // A names B by card name, B names A by a short prefix.
    let a_prefix = &ia.account[..6];

    let t = Instant::now();
    let (sent_a, sent_b) = thread::scope(|s| {
        let ta = s.spawn(|| {
            (0..N)
                .map(|i| a.send("bob", &format!("a{i:04}")))
                .collect::<Vec<_>>()
        });
        let tb = s.spawn(|| {
            (0..N)
                .map(|i| b.send(a_prefix, &format!("b{i:04}")))
                .collect::<Vec<_>>()
        });
        (
            ta.join().expect("A's sender"),
            tb.join().expect("B's sender"),
        )
    });
    eprintln!("sent 2×{N} in {:?}", t.elapsed());

    let (mut la, mut lb) = (Vec::new(), Vec::new());
    let done = wait_until(WAIT, || {
        la = a.log_json("bob");
        lb = b.log_json(a_prefix);
        la.len() == 2 * N
            && lb.len() == 2 * N
            && la
                .iter()
                .filter(|m| m.author == ia.account)
                .all(|m| m.delivered)
            && lb
                .iter()
                .filter(|m| m.author == ib.account)
                .all(|m| m.delivered)
    });
    let undelivered = |log: &[Message], author: &str| {
        log.iter()
            .filter(|m| m.author == author && !m.delivered)
            .count()
    };
    assert!(
        done,
        "after {WAIT:?}: A has {} messages ({} own undelivered), B has {} ({} own undelivered)\n{}",
        la.len(),
        undelivered(&la, &ia.account),
        lb.len(),
        undelivered(&lb, &ib.account),
        logs(&a, &b)
    );
    eprintln!("all delivered after {:?}", t.elapsed());

    assert_no_duplicates(&la, "A");
    assert_eq!(
        ids(&la),
        ids(&lb),
        "the two logs differ in order or content"
    );
    assert_eq!(
        ids_by(&la, &ia.account),
        sent_a,
        "A's own messages out of order"
    );
    assert_eq!(
        ids_by(&lb, &ib.account),
        sent_b,
        "B's own messages out of order"
    );
    for (log, who) in [(&la, "A"), (&lb, "B")] {
        for m in log.iter() {
            let (prefix, ids) = if m.author == ia.account {
                ("a", &ia)
            } else {
                assert_eq!(m.author, ib.account, "{who}: stranger in the log: {m:?}");
                ("b", &ib)
            };
            assert_eq!(m.device, ids.device, "{who}: {m:?}");
            assert!(m.text.starts_with(prefix), "{who}: {m:?}");
            assert!(m.time.ends_with('Z'), "{who}: time not UTC: {m:?}");
        }
    }
    assert_eq!(outbox(&a), 0);
    assert_eq!(outbox(&b), 0);
}

#[test]
fn offline_receiver_gets_all_50() {
    let (a, ia, _da) = user("alice");
    let (mut b, ib, mut db) = user("bob");
    pair(&a, &b);
    let listening_before = b.status_json()["listening"].clone();

    // One message first, so the two have met before B goes away.
    let first = a.send("bob", "hello");
    assert!(
        wait_until(WAIT, || a.log_json("bob").iter().all(|m| m.delivered)),
        "first message not delivered\n{}",
        logs(&a, &b)
    );

    let status = db.stop(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "B's daemon did not stop cleanly: {status:?}\n{}",
        b.daemon_logs()
    );

    let mut sent = vec![first];
    for i in 0..50 {
        sent.push(a.send(&ib.account, &format!("offline {i:02}")));
    }
    let la = a.log_json("bob");
    assert_eq!(ids(&la), sent);
    assert!(
        la[1..].iter().all(|m| !m.delivered),
        "delivered to a stopped daemon? {la:?}"
    );
    assert_eq!(outbox(&a), 50);
    let limited = assert_ok_json(&a, &["log", "bob", "--limit", "5", "--json"]);
    assert_eq!(ids(&limited), sent[sent.len() - 5..], "--limit 5");

    let _db = b.spawn_daemon();
    assert_eq!(
        b.status_json()["listening"],
        listening_before,
        "a restarted daemon re-binds its port"
    );
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    let mut out = u64::MAX;
    let done = wait_until(WAIT, || {
        lb = b.log_json(&ia.account);
        la = a.log_json("bob");
        out = outbox(&a);
        lb.len() == sent.len() && la.iter().all(|m| m.delivered) && out == 0
    });
    assert!(
        done,
        "after {WAIT:?}: B has {} of {}, A shows {} undelivered, outbox {out}\n{}",
        lb.len(),
        sent.len(),
        la.iter().filter(|m| !m.delivered).count(),
        logs(&a, &b)
    );
    assert_eq!(ids(&lb), sent, "B's log is not in the order sent");
    assert_eq!(ids(&la), sent);
    for (i, m) in lb[1..].iter().enumerate() {
        assert_eq!(m.text, format!("offline {i:02}"));
        assert_eq!(m.author, ia.account);
        assert_eq!(m.device, ia.device);
    }
}

fn assert_ok_json(p: &Profile, args: &[&str]) -> Vec<Message> {
    let out = p.kith(args);
    let text = assert_ok(&out);
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(Message::from_json)
        .collect()
}

/// Waits until A's and B's logs list the same ids, include every id in
/// `expected`, and show all of them delivered (on both sides).
/// `a_at_b` and `b_at_a` name each to the other.
fn wait_all_delivered(
    (a, b_at_a): (&Profile, &str),
    (b, a_at_b): (&Profile, &str),
    expected: &[String],
    when: &str,
) {
    let (mut la, mut lb) = (Ok(Vec::new()), Ok(Vec::new()));
    let done = wait_until(WAIT, || {
        la = a.try_log_json(b_at_a);
        lb = b.try_log_json(a_at_b);
        let (Ok(la), Ok(lb)) = (&la, &lb) else {
            return false;
        };
        let have: HashSet<&str> = la.iter().map(|m| m.id.as_str()).collect();
        ids(la) == ids(lb)
            && expected.iter().all(|id| have.contains(id.as_str()))
            && la.iter().chain(lb).all(|m| m.delivered)
    });
    let summary = |l: &Result<Vec<Message>, String>| match l {
        Ok(l) => {
            let have: HashSet<&str> = l.iter().map(|m| m.id.as_str()).collect();
            format!(
                "{} messages, {} undelivered, {} of the {} recorded ids missing",
                l.len(),
                l.iter().filter(|m| !m.delivered).count(),
                expected
                    .iter()
                    .filter(|id| !have.contains(id.as_str()))
                    .count(),
                expected.len()
            )
        }
        Err(e) => e.clone(),
    };
    assert!(
        done,
        "{when}: after {WAIT:?}\nA: {}\nB: {}\n{}",
        summary(&la),
        summary(&lb),
        logs(a, b)
    );
    let la = la.expect("checked above");
    assert_no_duplicates(&la, "A");
    assert_eq!(outbox(a), 0, "{when}: A's outbox");
}

#[test]
fn kill_9_loses_nothing() {
    const N: usize = 200;
    let (a, ia, da) = user("alice");
    let (b, _ib, db) = user("bob");
    pair(&a, &b);
    let attempts = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);

    let (mut recorded, errors, mut da, mut db) = thread::scope(|s| {
        let (mut da, mut db) = (da, db);
        let sender = s.spawn(|| {
            let (mut ok, mut failed, mut errors) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..N {
                let text = format!("k{i:03}");
                match a.try_send("bob", &text) {
                    Ok(id) => ok.push(id),
                    Err(e) => {
                        errors.push(e);
                        failed.push(text);
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                attempts.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(10));
            }
            // Retry what failed while A's daemon was down.
            for text in failed {
                let deadline = Instant::now() + WAIT;
                loop {
                    match a.try_send("bob", &text) {
                        Ok(id) => {
                            ok.push(id);
                            break;
                        }
                        Err(e) if Instant::now() > deadline => {
                            panic!("retrying {text}: {e}\n{}", a.daemon_logs())
                        }
                        Err(_) => thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
            (ok, errors)
        });

        let t = Instant::now();
        let reached = |n: usize| wait_until(WAIT, || attempts.load(Ordering::SeqCst) >= n);
        assert!(reached(50), "sender stuck before 50\n{}", logs(&a, &b));
        db.kill_hard();
        db = b.spawn_daemon_shared();
        eprintln!("B killed and restarted at {:?}", t.elapsed());
        assert!(reached(120), "sender stuck before 120\n{}", logs(&a, &b));
        da.kill_hard();
        // Let a few sends fail against the dead daemon.
        wait_until(Duration::from_secs(10), || {
            failures.load(Ordering::SeqCst) >= 3 || sender.is_finished()
        });
        da = a.spawn_daemon_shared();
        eprintln!("A killed and restarted at {:?}", t.elapsed());
        let (recorded, errors) = sender.join().expect("the sending thread panicked");
        (recorded, errors, da, db)
    });
    eprintln!(
        "{} sends failed while A was down; recorded {} ids",
        errors.len(),
        recorded.len()
    );
    assert!(
        !errors.is_empty(),
        "no send failed while A's daemon was dead"
    );
    for e in &errors {
        // "exit status: N: kith: …" — one clean line each.
        let line = e.split_once(": ").map_or(e.as_str(), |(_, rest)| rest);
        assert!(
            line.starts_with("kith: ") && line.trim_end().lines().count() == 1,
            "send against a dead daemon did not fail cleanly: {e}"
        );
    }
    assert_eq!(recorded.len(), N, "every message was sent in the end");
    let (a_side, b_side) = ((&a, "bob"), (&b, ia.account.as_str()));
    let t = Instant::now();
    wait_all_delivered(a_side, b_side, &recorded, "after killing B, then A");
    eprintln!("all delivered {:?} after the sender finished", t.elapsed());

    // A burst, then both killed at the same moment.
    for i in 0..20 {
        recorded.push(a.send("bob", &format!("z{i:02}")));
    }
    let (pa, pb) = (da.pid(), db.pid());
    let st = Command::new("kill")
        .args(["-KILL", &pa.to_string(), &pb.to_string()])
        .status()
        .expect("running kill");
    assert!(st.success(), "kill -KILL {pa} {pb}");
    da.kill_hard();
    db.kill_hard();
    let _da = a.spawn_daemon_shared();
    let _db = b.spawn_daemon_shared();
    let t = Instant::now();
    wait_all_delivered(a_side, b_side, &recorded, "after killing both at once");
    eprintln!("all delivered {:?} after both restarted", t.elapsed());
}

/// Every single-character change of a real card is refused: no field
/// (address hints included) escapes the signature.
#[test]
fn tampered_cards_are_refused() {
    let (a, _ia, _da) = user("alice");
    let (b, _ib, _db) = user("bob");
    let card = b.card();
    let body = card.strip_prefix("kith:card/").expect("card prefix");
    for i in 0..body.len() {
        let mut t = body.as_bytes().to_vec();
        t[i] = if t[i] == b'a' { b'b' } else { b'a' };
        let t = format!("kith:card/{}", String::from_utf8(t).expect("ASCII"));
        let out = a.kith(["contact", "add", t.as_str()]);
        assert!(
            !out.status.success(),
            "a card changed at {i} was accepted: {t}\n{}",
            a.daemon_logs()
        );
        assert_fails_cleanly(&out);
    }
    assert_eq!(a.contacts_json(), serde_json::json!([]));
}

/// A cause chain printed twice ("x: y: y") says nothing new the second
/// time.
#[test]
fn card_errors_do_not_repeat_themselves() {
    let (a, _ia, _da) = user("alice");
    for card in ["kith:card/", "kith:card/Not-Base32", "kith:card/aaaaaaaa"] {
        let line = assert_fails_cleanly(&a.kith(["contact", "add", card]));
        let parts: Vec<&str> = line.split(": ").collect();
        for n in 1..=parts.len() / 2 {
            let tail = &parts[parts.len() - n..];
            let before = &parts[parts.len() - 2 * n..parts.len() - n];
            assert_ne!(tail, before, "{card}: the cause is repeated: {line}");
        }
    }
}

/// Random lowercase base32 text of `len` characters.
fn random_base32(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let state = RandomState::new();
    (0..len)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            char::from(ALPHABET[(h.finish() % 32) as usize])
        })
        .collect()
}

#[test]
fn bad_input_is_refused_cleanly() {
    let (a, _ia, _da) = user("alice");
    let (b, ib, _db) = user("Bob");
    let (c, ic, _dc) = user("Bob");
    let card_b = b.card();
    assert_eq!(a.add_contact(&card_b), ib.account);
    assert_eq!(a.add_contact(&c.card()), ic.account);
    let contacts = a.contacts_json();
    let outbox_before = outbox(&a);
    let unchanged = |what: &str| {
        assert_eq!(
            a.contacts_json(),
            contacts,
            "{what} changed the contact list"
        );
        assert_eq!(outbox(&a), outbox_before, "{what} changed the outbox");
    };

    let body = card_b.strip_prefix("kith:card/").expect("card prefix");
    let mut flipped = body.as_bytes().to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    let bad_cards = [
        ("garbage", "garbage".to_owned()),
        ("empty card", "kith:card/".to_owned()),
        ("card cut in half", card_b[..card_b.len() / 2].to_owned()),
        (
            // A length that is whole base32 groups, so it decodes, but short.
            "card cut at a base32 group",
            format!("kith:card/{}", &body[..body.len() / 2 / 8 * 8]),
        ),
        (
            "uppercase random base32",
            format!("kith:card/{}", random_base32(body.len()).to_uppercase()),
        ),
        (
            "random base32",
            format!("kith:card/{}", random_base32(body.len())),
        ),
        (
            "card with one character changed",
            format!("kith:card/{flipped}"),
        ),
        ("own card", a.card()),
    ];
    for (what, card) in &bad_cards {
        let out = a.kith(["contact", "add", card.as_str()]);
        let line = assert_fails_cleanly(&out);
        assert!(out.stdout.is_empty(), "{what}: stdout on failure");
        eprintln!("{what}: {line}");
        unchanged(what);
    }

    for args in [
        ["send", "nosuchcontact", "hi"].as_slice(),
        &["log", "nosuchcontact"],
        &["log", "nosuchcontact", "--json"],
        // Shorter than the 4 characters a prefix needs.
        &["send", &ib.account[..3], "hi"],
    ] {
        let line = assert_fails_cleanly(&a.kith(args));
        assert!(line.contains(args[1]), "{args:?}: {line}");
        unchanged(&format!("{args:?}"));
    }

    for args in [["send", "Bob", "hi"].as_slice(), &["log", "Bob", "--json"]] {
        let out = a.kith(args);
        let line = assert_fails_cleanly(&out);
        assert!(line.contains("ambiguous"), "{args:?}: {line}");
        for id in [&ib.account, &ic.account] {
            assert!(
                line.contains(&id[..8]),
                "{args:?}: candidate {id} not listed: {line}"
            );
        }
        unchanged(&format!("{args:?}"));
    }

    // The contacts themselves are fine: a full id still works.
    assert!(is_id(&a.send(&ib.account, "hi")));
    assert_eq!(a.log_json(&ic.account), vec![], "nothing went to C");
}

#[test]
fn status_shows_peers_and_listening() {
    let (a, ia, _da) = user("alice");
    let (b, ib, mut db) = user("bob");

    let st = a.status_json();
    let listening: Vec<&str> = st["listening"]
        .as_array()
        .unwrap_or_else(|| panic!("status without listening: {st}"))
        .iter()
        .map(|v| v.as_str().expect("addresses are strings"))
        .collect();
    assert!(
        listening.iter().any(|l| l.starts_with("127.0.0.1:")
            && l["127.0.0.1:".len()..].parse::<u16>().is_ok_and(|p| p != 0)),
        "{st}"
    );
    assert!(peers(&a).is_empty(), "peers before pairing: {st}");

    pair(&a, &b);
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || peers(&a).contains(&ib.device)),
        "B's device not among A's peers after 30 s: {}\n{}",
        a.status_json(),
        logs(&a, &b)
    );
    assert!(
        wait_until(Duration::from_secs(30), || peers(&b).contains(&ia.device)),
        "A's device not among B's peers after 30 s: {}\n{}",
        b.status_json(),
        logs(&a, &b)
    );
    eprintln!("peers after {:?}", t.elapsed());
    assert!(!peers(&a).contains(&ia.device), "A lists itself as a peer");

    let stopped = db.stop(Duration::from_secs(20));
    assert!(stopped.is_some(), "B did not stop\n{}", b.daemon_logs());
    let t = Instant::now();
    assert!(
        wait_until(WAIT, || !peers(&a).contains(&ib.device)),
        "B still among A's peers 60 s after it stopped: {}\n{}",
        a.status_json(),
        logs(&a, &b)
    );
    eprintln!("peer gone after {:?}", t.elapsed());
}

/// Regression: `kith log` printed peer text raw, so a peer could clear the
/// screen, set the window title, hide text behind a carriage return or
/// reverse it with a bidi override on the receiver's terminal.
#[test]
fn peer_text_reaches_the_terminal_without_controls() {
    let (a, _ia, _da) = user("alice");
    let (b, _ib, _db) = user("bob");
    let (b_at_a, a_at_b) = pair(&a, &b);
    let text = "hi \x1b[2J\x1b]0;pwned\x07\r\u{202e}evil";
    a.send(&b_at_a, text);
    let arrived = wait_until(WAIT, || {
        b.try_log_json(&a_at_b)
            .is_ok_and(|log| log.iter().any(|m| m.text == text))
    });
    assert!(
        arrived,
        "the message did not arrive exactly\n{}",
        logs(&a, &b)
    );
    let human = assert_ok(&b.kith(["log", &a_at_b]));
    for (byte, name) in [
        ('\x1b', "ESC"),
        ('\x07', "BEL"),
        ('\r', "CR"),
        ('\u{202e}', "U+202E"),
    ] {
        assert!(!human.contains(byte), "{name} in `kith log`: {human:?}");
    }
    assert!(
        human.contains("pwned") && human.contains("evil"),
        "{human:?}"
    );
    // The sender's own log is shown the same way.
    let own = assert_ok(&a.kith(["log", &b_at_a]));
    assert!(!own.contains('\x1b') && !own.contains('\r'), "{own:?}");
}

/// A conversation whose `log --json` answer is over 1 MiB (the request
/// line limit, which also bounded answers: a long history could not be
/// read at all) is read whole.
#[test]
fn a_log_larger_than_a_request_line_is_read_whole() {
    let (a, _, _da) = user("alice");
    let (b, _, _db) = user("bob");
    let (bid, _) = pair(&a, &b);
    let text = "x".repeat(50_000);
    let sent: Vec<String> = (0..25).map(|_| a.send(&bid, &text)).collect();
    let log = a.log_json(&bid);
    assert_eq!(ids(&log), sent);
}

/// An acknowledgement leaves only once the receiver's write is on its
/// disk: B's daemon syncs its store 2 s late, so for 2 s B holds the
/// message committed but not durable. A must not count it delivered in
/// that window; B is killed in it, and A, still holding the message as
/// undelivered, delivers it again when B is back. (Before group commit's
/// durable watermark, B acknowledged at once.)
#[test]
fn an_ack_waits_for_the_receivers_disk() {
    let (a, ia, _da) = user("alice");
    let mut b = Profile::new();
    b.init("bob");
    let mut db = b.spawn_daemon_with(&["--danger-sync-delay-ms", "2000"]);
    pair(&a, &b);
    let first = a.send("bob", "hello");
    assert!(
        wait_until(WAIT, || a.log_json("bob").iter().all(|m| m.delivered)),
        "first message not delivered\n{}",
        logs(&a, &b)
    );

    let id = a.send("bob", "before the disk");
    // B shows it as soon as it is committed (reads do not wait)...
    assert!(
        wait_until(WAIT, || b.log_json(&ia.account).iter().any(|m| m.id == id)),
        "B never stored the message\n{}",
        logs(&a, &b)
    );
    // ...but A must not have heard that B holds it: B's disk has not
    // confirmed it yet.
    let la = a.log_json("bob");
    let m = la.iter().find(|m| m.id == id).expect("A's own message");
    assert!(
        !m.delivered,
        "A counts the message delivered before B's write is durable\n{}",
        logs(&a, &b)
    );
    db.kill_hard();
    thread::sleep(Duration::from_millis(500));
    let la = a.log_json("bob");
    assert!(
        la.iter().any(|m| m.id == id && !m.delivered),
        "A lost track of a message B never confirmed: {la:?}"
    );
    assert_eq!(outbox(&a), 1, "A's outbox still holds the message");

    let _db = b.spawn_daemon();
    assert!(
        wait_until(WAIT, || {
            a.log_json("bob").iter().all(|m| m.delivered) && outbox(&a) == 0
        }),
        "not delivered again after B restarted\n{}",
        logs(&a, &b)
    );
    let lb = b.log_json(&ia.account);
    assert_eq!(ids(&lb), vec![first, id], "B holds each message once");
}

/// `kith search` finds a conversation's messages by their text, in any
/// case, oldest first, and refuses to look for nothing; `kith mute`
/// follows the user to the other own device (self log), and `--off` undoes
/// it; a room counts the messages of others not read yet.
#[test]
fn search_mute_on_every_own_device_and_room_unread_counts() {
    let mut a = Profile::new();
    let ia = a.init("alice");
    let _da = a.spawn_daemon();
    let mut b = Profile::new();
    let ib = b.init("bob");
    let _db = b.spawn_daemon();
    pair(&a, &b);
    for text in ["Train at 9", "see you", "the TRAIN is late"] {
        b.send(&ia.account, text);
    }
    assert!(
        wait_until(WAIT, || a
            .try_log_json(&ib.account)
            .is_ok_and(|l| l.len() >= 3)),
        "alice never got bob's messages"
    );
    let found: Vec<serde_json::Value> = serde_json::from_str(&assert_ok(&a.kith([
        "search",
        &ib.account,
        "train",
        "--json",
    ])))
    .unwrap();
    let texts: Vec<&str> = found.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Train at 9", "the TRAIN is late"]);
    assert!(stdout(&a.kith(["search", &ib.account, "plane"])).contains("no message"));
    assert_fails_cleanly(&a.kith(["search", &ib.account, "  "]));
    assert_fails_cleanly(&a.kith(["search", "nobody-at-all", "train"]));

    // A second own device learns of the mute through the self log.
    let mut a2 = Profile::new();
    a2.join(&a, "alice-laptop");
    let _da2 = a2.spawn_daemon();
    let muted_on = |p: &Profile| {
        p.contacts_json()
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == ib.account.as_str()))
            .is_some_and(|c| c["muted"] == true)
    };
    assert!(!muted_on(&a));
    assert_ok(&a.kith(["mute", &ib.account]));
    assert!(muted_on(&a));
    assert!(
        wait_until(WAIT, || muted_on(&a2)),
        "the mute never reached the other own device"
    );
    assert_ok(&a2.kith(["mute", &ib.account, "--off"]));
    assert!(
        wait_until(WAIT, || !muted_on(&a)),
        "unmuting never came back"
    );

    // Rooms: others' messages count as unread, one's own do not.
    let room = assert_ok(&a.kith(["room", "create", "team"]))
        .trim()
        .to_owned();
    assert_ok(&a.kith(["room", "invite", &room, &ib.account]));
    let b_joined = || {
        let rooms: serde_json::Value =
            serde_json::from_str(&assert_ok(&b.kith(["room", "list", "--json"]))).unwrap();
        rooms.as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["id"] == room.as_str() && r["membership"] == "join")
        })
    };
    assert!(wait_until(WAIT, b_joined), "bob never joined the room");
    a.send(&room, "mine");
    b.send(&room, "one");
    b.send(&room, "two");
    let unread = |p: &Profile| {
        let rooms: serde_json::Value =
            serde_json::from_str(&assert_ok(&p.kith(["room", "list", "--json"]))).unwrap();
        rooms
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == room.as_str()))
            .and_then(|r| r["unread"].as_u64())
    };
    assert!(
        wait_until(WAIT, || unread(&a) == Some(2)),
        "alice's unread count: {:?}",
        unread(&a)
    );
    assert_ok(&b.kith(["mute", &room]));
    let found: Vec<serde_json::Value> =
        serde_json::from_str(&assert_ok(&a.kith(["search", &room, "TWO", "--json"]))).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["author"], ib.account.as_str());
}
