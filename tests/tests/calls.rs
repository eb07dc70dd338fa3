//! Calls between real daemons through the CLI (`shared/CLI.md` "Calls"):
//! a call rings on every device of the callee, the first answer takes it
//! and the other device shows where it was answered, hanging up ends it
//! everywhere, and the call's record is the same in the conversation on
//! every device of both people. Declines, busy and bad input too. (Media
//! is not carried yet: see docs/calls.md.)

use kith_tests::{Daemon, Ids, Profile, assert_fails_cleanly, assert_ok, pair, wait_until};
use std::time::Duration;

/// How long anything that travels between daemons may take.
const WAIT: Duration = Duration::from_secs(60);

fn user(name: &str) -> (Profile, Ids, Daemon) {
    let p = Profile::new();
    let ids = p.init(name);
    let d = p.spawn_daemon_shared();
    (p, ids, d)
}

/// `kith call status --json` on `p`.
fn calls(p: &Profile) -> Vec<serde_json::Value> {
    let out = p.kith(["call", "status", "--json"]);
    serde_json::from_str(&assert_ok(&out)).expect("call status --json is JSON")
}

/// The state of call `id` on `p` (`None`: not known there).
fn state(p: &Profile, id: &str) -> Option<(String, Option<String>)> {
    calls(p).into_iter().find(|c| c["id"] == id).map(|c| {
        (
            c["state"].as_str().unwrap_or_default().to_owned(),
            c["device"].as_str().map(str::to_owned),
        )
    })
}

#[track_caller]
fn wait_state(p: &Profile, who: &str, id: &str, want: &str, logs: &[&Profile]) {
    let ok = wait_until(WAIT, || state(p, id).is_some_and(|(s, _)| s == want));
    if !ok {
        let all: String = logs.iter().map(|p| p.daemon_logs()).collect();
        panic!("{who}: call {id} never {want}: {:?}\n{all}", state(p, id));
    }
}

/// The call entries of `p`'s conversation with `target`, as `kith log
/// --json` shows them.
fn call_entries(p: &Profile, target: &str) -> Vec<serde_json::Value> {
    let out = p.kith(["log", target, "--json"]);
    let log: Vec<serde_json::Value> =
        serde_json::from_str(&assert_ok(&out)).expect("log --json is JSON");
    log.into_iter().filter(|m| m["kind"] == "call").collect()
}

/// Waits until `b`'s second device is known to `a` (its account log came)
/// and linked (online), so a call rings on it.
fn wait_devices_online(a: &Profile, b_account: &str, devices: &[&str]) {
    let ok = wait_until(WAIT, || {
        let st = a.status_json();
        let peers: Vec<String> = st["peers"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let known = a.contacts_json().as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["id"] == b_account
                    && c["devices"]
                        .as_array()
                        .is_some_and(|d| d.len() == devices.len())
            })
        });
        known && devices.iter().all(|d| peers.iter().any(|p| p == d))
    });
    assert!(ok, "{b_account}'s devices never all online for the caller");
}

#[test]
fn a_call_rings_on_every_device_and_the_first_answer_takes_it() {
    let (alice, ia, _da) = user("alice");
    let (bob1, ib, _db1) = user("bob");
    pair(&alice, &bob1);
    let bob2 = Profile::new();
    let ib2 = bob2.join(&bob1, "bob-laptop");
    let _db2 = bob2.spawn_daemon_shared();
    let everyone = [&alice, &bob1, &bob2];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    wait_devices_online(&alice, b, &[&ib.device, &ib2.device]);

    let out = alice.kith(["call", b]);
    let id = assert_ok(&out).trim().to_owned();
    assert_eq!(id.len(), 32, "call id: {id:?}");
    wait_state(&alice, "A", &id, "ringing", &everyone);
    wait_state(&bob1, "B1", &id, "incoming", &everyone);
    wait_state(&bob2, "B2", &id, "incoming", &everyone);

    assert_ok(&bob2.kith(["call", "answer"]));
    wait_state(&alice, "A", &id, "active", &everyone);
    assert_eq!(
        state(&alice, &id).and_then(|s| s.1),
        Some(ib2.device.clone())
    );
    wait_state(&bob2, "B2", &id, "active", &everyone);
    wait_state(&bob1, "B1", &id, "answered-elsewhere", &everyone);
    assert_eq!(
        state(&bob1, &id).and_then(|s| s.1),
        Some(ib2.device.clone()),
        "B1 says where it was answered"
    );
    // B1 can no longer take it.
    assert_fails_cleanly(&bob1.kith(["call", "answer", &id]));

    // B2 hangs up: it ends everywhere.
    assert_ok(&bob2.kith(["call", "hangup"]));
    wait_state(&alice, "A", &id, "ended", &everyone);
    wait_state(&bob2, "B2", &id, "ended", &everyone);

    // The same record on every device of both people.
    for (who, p, target) in [("A", &alice, b), ("B1", &bob1, a), ("B2", &bob2, a)] {
        let ok = wait_until(WAIT, || call_entries(p, target).len() == 1);
        assert!(
            ok,
            "{who} has no call record: {:?}",
            call_entries(p, target)
        );
        let entry = &call_entries(p, target)[0];
        let text = entry["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("[call] answered on ") && text.contains(&ib2.device[..8]),
            "{who}: {text}"
        );
        assert_eq!(entry["author"], a, "{who}: the caller records the call");
    }
}

#[test]
fn declines_busy_and_bad_input() {
    let (alice, _ia, _da) = user("alice");
    let (bob, ib, _db) = user("bob");
    let (carol, ic, _dc) = user("carol");
    pair(&alice, &bob);
    pair(&carol, &bob);
    let everyone = [&alice, &bob, &carol];
    let b = ib.account.as_str();
    wait_devices_online(&alice, b, &[&ib.device]);
    wait_devices_online(&carol, b, &[&ib.device]);

    // Bad input: an unknown target, answering or hanging up no call.
    assert_fails_cleanly(&alice.kith(["call", "nobody-by-that-name"]));
    assert_fails_cleanly(&bob.kith(["call", "answer"]));
    assert_fails_cleanly(&bob.kith(["call", "hangup"]));
    assert_fails_cleanly(&bob.kith(["call", "decline", "ffff"]));
    assert!(calls(&bob).is_empty());

    // Declined: ends on both sides, recorded as declined.
    let id = assert_ok(&alice.kith(["call", b])).trim().to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith(["call", "decline"]));
    wait_state(&alice, "A", &id, "ended", &everyone);
    let declined = calls(&alice)
        .into_iter()
        .find(|c| c["id"] == id)
        .map(|c| c["ended"].clone());
    assert_eq!(declined, Some("declined".into()));
    let ok = wait_until(WAIT, || {
        call_entries(&bob, &_ia.account)
            .iter()
            .any(|e| e["text"] == "[call] declined")
    });
    assert!(
        ok,
        "no declined record at B: {:?}",
        call_entries(&bob, &_ia.account)
    );

    // Busy: while Bob is in a call with Alice, Carol's call is refused.
    let id = assert_ok(&alice.kith(["call", b])).trim().to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith(["call", "answer", &id[..8]]));
    wait_state(&alice, "A", &id, "active", &everyone);
    let busy = carol.kith(["call", b]);
    let line = assert_fails_cleanly(&busy);
    assert!(line.contains("another call"), "{line}");
    // And the caller cannot start a second call while in one.
    assert_fails_cleanly(&alice.kith(["call", b]));
    assert_ok(&alice.kith(["call", "hangup"]));
    wait_state(&bob, "B", &id, "ended", &everyone);
    let _ = ic;
}
