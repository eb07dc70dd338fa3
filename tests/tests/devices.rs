//! Several devices per account (CLI.md "Devices", `init --join`, `delete`):
//! messages relayed by whichever device holds them, linking and revoking
//! while contacts are away, what a revoked device can still do, deletions
//! that follow the user to their own devices only, and bad join codes.

use kith_tests::{
    Daemon, Ids, Message, Profile, assert_fails_cleanly, assert_ok, is_id, pair, run_limited,
    wait_until,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::process::Output;
use std::time::Duration;

/// How long to wait for anything that travels between daemons.
const WAIT: Duration = Duration::from_secs(60);

/// How long something that must not happen is given to happen anyway.
const GRACE: Duration = Duration::from_secs(5);

/// A profile with a name, for assertion messages.
type Named<'a> = (&'a str, &'a Profile);

/// A fresh account named `name` with its first device's daemon running.
fn user(name: &str) -> (Profile, Ids, Daemon) {
    let p = Profile::new();
    let ids = p.init(name);
    let d = p.spawn_daemon_shared();
    (p, ids, d)
}

/// A new profile linked to `inviter`'s account as device `name`; its daemon
/// is not started.
fn linked(inviter: &Profile, name: &str) -> (Profile, Ids) {
    let p = Profile::new();
    let ids = p.join(inviter, name);
    let st = inviter.status_json();
    assert_eq!(
        st["account"],
        ids.account.as_str(),
        "joined another account"
    );
    assert_ne!(
        st["device"],
        ids.device.as_str(),
        "joined with the inviter's device id"
    );
    (p, ids)
}

/// Every profile's daemon logs, for assertion messages.
fn logs(everyone: &[Named<'_>]) -> String {
    everyone
        .iter()
        .map(|(who, p)| format!("=== {who}'s daemons\n{}\n", p.daemon_logs()))
        .collect()
}

/// Stops a daemon with SIGTERM; fails the test if it takes over 20 s.
#[track_caller]
fn stop(d: &mut Daemon, who: &str) {
    let st = d.stop(Duration::from_secs(20));
    assert!(st.is_some(), "{who}'s daemon did not stop\n{}", d.log());
}

/// Stops `p`'s daemon `d` and starts a new one in its place.
#[track_caller]
fn restart(p: &Profile, d: &mut Daemon, who: &str) {
    stop(d, who);
    *d = p.spawn_daemon_shared();
}

/// Runs a daemon that is expected to refuse to start (killed after 30 s if
/// it does not).
fn daemon_once(p: &Profile) -> Output {
    run_limited(
        &mut p.command(["daemon", "--listen", "127.0.0.1:0"]),
        Duration::from_secs(30),
    )
}

/// Polls `probe` until `ok` holds for what it returns, and returns that.
/// Fails the test with `what`, the last value seen and everyone's daemon
/// logs if that takes longer than [`WAIT`].
#[track_caller]
fn wait_for<T: Debug>(
    what: &str,
    everyone: &[Named<'_>],
    mut probe: impl FnMut() -> T,
    mut ok: impl FnMut(&T) -> bool,
) -> T {
    let mut last = None;
    let done = wait_until(WAIT, || {
        let v = probe();
        let good = ok(&v);
        last = Some(v);
        good
    });
    let last = last.expect("probed at least once");
    assert!(
        done,
        "{what}: not within {WAIT:?}; last seen: {last:?}\n{}",
        logs(everyone)
    );
    last
}

/// Waits until `p`'s log of `target` satisfies `cond`; returns that log.
#[track_caller]
fn wait_log(
    p: &Profile,
    target: &str,
    what: &str,
    everyone: &[Named<'_>],
    mut cond: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    wait_for(
        what,
        everyone,
        || p.try_log_json(target),
        |log| log.as_ref().is_ok_and(|log| cond(log)),
    )
    .expect("checked by wait_for")
}

fn ids(log: &[Message]) -> Vec<String> {
    log.iter().map(|m| m.id.clone()).collect()
}

fn has(log: &[Message], id: &str) -> bool {
    log.iter().any(|m| m.id == id)
}

fn has_all(log: &[Message], wanted: &[String]) -> bool {
    wanted.iter().all(|id| has(log, id))
}

fn has_text(log: &[Message], text: &str) -> bool {
    log.iter().any(|m| m.text == text)
}

/// The message `id` in `log`; panics if it is not there.
#[track_caller]
fn find<'a>(log: &'a [Message], id: &str, who: &str) -> &'a Message {
    log.iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("{who}: message {id} not in {log:?}"))
}

/// `device list` of `p` as id → state.
fn states(p: &Profile) -> BTreeMap<String, String> {
    p.devices().into_iter().map(|d| (d.id, d.state)).collect()
}

/// An id → state map from literal pairs.
fn states_of(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|&(id, state)| (id.to_owned(), state.to_owned()))
        .collect()
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|&id| id.to_owned()).collect()
}

/// The ids of the devices `p` marks as current.
fn current(p: &Profile) -> Vec<String> {
    p.devices()
        .into_iter()
        .filter(|d| d.current)
        .map(|d| d.id)
        .collect()
}

/// A message reaches every device whichever of them holds it: A1 → B1 while
/// Bob's devices were all offline, then to B2, then (A1 gone) to A2 from
/// Bob's devices. A2's own message is attributed to A's account and A2's
/// device everywhere, and all four devices show one and the same order.
#[test]
fn seeds_scenario_relay_by_any_holder() {
    let (a1, ia, mut da1) = user("alice");
    let (b1, ib, mut db1) = user("bob");
    pair(&a1, &b1);
    let (b2, ib2) = linked(&b1, "bob-laptop");
    let (a2, ia2) = linked(&a1, "alice-phone");
    let everyone = [("A1", &a1), ("A2", &a2), ("B1", &b1), ("B2", &b2)];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    assert_eq!(ib2.account, b);
    assert_eq!(ia2.account, a);

    stop(&mut db1, "B1");
    let m1 = a1.send(b, "while bob is away");
    assert!(
        !find(&a1.log_json(b), &m1, "A1").delivered,
        "delivered while all of Bob's devices are offline"
    );

    let _db1 = b1.spawn_daemon_shared();
    wait_log(&b1, a, "B1 gets it from A1", &everyone, |l| has(l, &m1));
    let _db2 = b2.spawn_daemon_shared();
    wait_log(&b2, a, "B2 gets it from A1 or B1", &everyone, |l| {
        has(l, &m1)
    });
    stop(&mut da1, "A1");
    let _da2 = a2.spawn_daemon_shared();
    wait_log(&a2, b, "A2 gets it from B1 or B2", &everyone, |l| {
        has(l, &m1)
    });

    let m2 = a2.send(b, "from alice's phone");
    let _da1 = a1.spawn_daemon_shared();
    let wanted = [m1.clone(), m2.clone()];
    let mut orders = Vec::new();
    for (who, p, target) in [
        ("A1", &a1, b),
        ("A2", &a2, b),
        ("B1", &b1, a),
        ("B2", &b2, a),
    ] {
        let log = wait_log(p, target, &format!("{who} has both"), &everyone, |l| {
            has_all(l, &wanted)
        });
        assert_eq!(log.len(), 2, "{who}: {log:?}");
        let first = find(&log, &m1, who);
        assert_eq!(
            (first.author.as_str(), first.device.as_str()),
            (a, ia.device.as_str()),
            "{who}"
        );
        assert_eq!(first.text, "while bob is away", "{who}");
        let second = find(&log, &m2, who);
        assert_eq!(
            (second.author.as_str(), second.device.as_str()),
            (a, ia2.device.as_str()),
            "{who}: A2's message"
        );
        assert_eq!(second.text, "from alice's phone", "{who}");
        orders.push((who, ids(&log)));
    }
    for (who, order) in &orders[1..] {
        assert_eq!(
            order, &orders[0].1,
            "{who} and {} differ in order",
            orders[0].0
        );
    }
}

/// A contact that was offline while two devices were linked learns them all
/// when it comes back; a revocation made on one device reaches the other
/// devices and the contact; messaging still works afterwards.
#[test]
fn link_while_contact_offline_then_revoke() {
    let (a1, ia, _da1) = user("alice");
    let (b1, ib, mut db1) = user("bob");
    pair(&a1, &b1);
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    wait_for(
        "B1 learns A1's device",
        &[("A1", &a1), ("B1", &b1)],
        || b1.contact_devices(a),
        |d| d.contains(&ia.device),
    );

    stop(&mut db1, "B1");
    let (a2, ia2) = linked(&a1, "alice-phone");
    let (a3, ia3) = linked(&a1, "alice-tablet");
    let everyone = [("A1", &a1), ("A2", &a2), ("A3", &a3), ("B1", &b1)];
    let _da2 = a2.spawn_daemon_shared();
    let _db1 = b1.spawn_daemon_shared();

    let all = set_of(&[&ia.device, &ia2.device, &ia3.device]);
    wait_for(
        "B1 learns all three of A's devices",
        &everyone,
        || b1.contact_devices(a),
        |d| *d == all,
    );
    let active = states_of(&[
        (&ia.device, "active"),
        (&ia2.device, "active"),
        (&ia3.device, "active"),
    ]);
    assert_eq!(states(&a1), active, "A1's device list");
    assert_eq!(current(&a1), std::slice::from_ref(&ia.device));
    let names: BTreeMap<String, String> =
        a1.devices().into_iter().map(|d| (d.id, d.name)).collect();
    assert_eq!(names[&ia2.device], "alice-phone");
    assert_eq!(names[&ia3.device], "alice-tablet");

    wait_for(
        "A2 learns of A3",
        &everyone,
        || states(&a2),
        |s| *s == active,
    );
    assert_eq!(current(&a2), std::slice::from_ref(&ia2.device));
    assert_ok(&a2.kith(["device", "revoke", "alice-tablet"]));

    let revoked = states_of(&[
        (&ia.device, "active"),
        (&ia2.device, "active"),
        (&ia3.device, "revoked"),
    ]);
    wait_for(
        "A1 sees A3 revoked",
        &everyone,
        || states(&a1),
        |s| *s == revoked,
    );
    let rest = set_of(&[&ia.device, &ia2.device]);
    wait_for(
        "B1 drops A3 from A's devices",
        &everyone,
        || b1.contact_devices(a),
        |d| *d == rest,
    );

    let id = a1.send(b, "after the revocation");
    wait_log(&a1, b, "A1's message delivered", &everyone, |l| {
        l.iter().any(|m| m.id == id && m.delivered)
    });
}

/// A device revoked while it was offline never receives what was written
/// after the revocation, and what it writes afterwards (not yet knowing) is
/// refused by the contact; once it meets a device that knows, its daemon
/// stops and will not start again.
#[test]
fn revoked_device_gets_nothing_new_and_its_events_are_rejected() {
    const AFTER_CUT: &str = "after cut";
    let (a1, ia, mut da1) = user("alice");
    let (b1, ib, mut db1) = user("bob");
    pair(&a1, &b1);
    let (a2, ia2) = linked(&a1, "alice-phone");
    let everyone = [("A1", &a1), ("A2", &a2), ("B1", &b1)];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    let mut da2 = a2.spawn_daemon_shared();
    wait_for(
        "B1 learns of A2",
        &everyone,
        || b1.contact_devices(a),
        |d| d.contains(&ia2.device),
    );
    let before = b1.send(a, "before the cut");
    wait_log(&a2, b, "A2 gets B's first message", &everyone, |l| {
        has(l, &before)
    });

    // A2 is away when A1 revokes it; B1 is online and learns of it.
    stop(&mut da2, "A2");
    assert_ok(&a1.kith(["device", "revoke", &ia2.device[..12]]));
    wait_for(
        "A1 lists A2 as revoked",
        &everyone,
        || states(&a1),
        |s| *s == states_of(&[(&ia.device, "active"), (&ia2.device, "revoked")]),
    );
    wait_for(
        "B1 drops A2 from A's devices",
        &everyone,
        || b1.contact_devices(a),
        |d| *d == set_of(&[&ia.device]),
    );
    let m = b1.send(a, "not for the lost phone");
    wait_log(&a1, b, "A1 gets M", &everyone, |l| has(l, &m));
    stop(&mut da1, "A1");
    stop(&mut db1, "B1");

    // A2 alone, not knowing it was revoked, writes one more message.
    let mut da2 = a2.spawn_daemon_shared();
    let log = a2.log_json(b);
    assert!(has(&log, &before), "A2: {log:?}");
    assert!(
        !has(&log, &m),
        "A2 got a message written after its revocation"
    );
    a2.send(b, AFTER_CUT);
    stop(&mut da2, "A2");

    // B1 knows A's account log: A2 learns of its revocation and stops.
    let _db1 = b1.spawn_daemon_shared();
    let mut da2 = a2.start_daemon_shared();
    assert!(
        da2.wait(WAIT).is_some(),
        "A2's daemon still runs {WAIT:?} after B1 came up\n{}",
        logs(&everyone)
    );
    let line = assert_fails_cleanly(&daemon_once(&a2));
    assert!(line.contains("revoked"), "{line}");
    let leaked = wait_until(GRACE, || has_text(&b1.log_json(a), AFTER_CUT));
    assert!(
        !leaked,
        "B1 accepted a message A2 wrote after its revocation\n{}",
        logs(&everyone)
    );

    // Nor does it reach A1 through B1.
    let _da1 = a1.spawn_daemon_shared();
    let probe = b1.send(a, "probe");
    let la1 = wait_log(&a1, b, "A1 syncs with B1 again", &everyone, |l| {
        has(l, &probe)
    });
    assert!(!has_text(&la1, AFTER_CUT), "A1: {la1:?}");
    let lb1 = b1.log_json(a);
    assert!(has_all(&lb1, &[before, m, probe]), "B1: {lb1:?}");
    assert!(!has_text(&lb1, AFTER_CUT), "B1: {lb1:?}");
}

/// Deleting a message (or the whole conversation) on one device removes it
/// from the user's other devices, never from the contact's, and it does not
/// come back when both sides restart and sync again.
#[test]
fn delete_on_one_device_removes_on_own_devices_only() {
    let (a1, ia, mut da1) = user("alice");
    let (b1, ib, mut db1) = user("bob");
    pair(&a1, &b1);
    let (a2, _ia2) = linked(&a1, "alice-phone");
    let everyone = [("A1", &a1), ("A2", &a2), ("B1", &b1)];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    let _da2 = a2.spawn_daemon_shared();

    let mut sent: Vec<String> = (0..3).map(|i| b1.send(a, &format!("bob {i}"))).collect();
    sent.push(a1.send(b, "alice 0"));
    let views = [("A1", &a1, b), ("A2", &a2, b), ("B1", &b1, a)];
    for (who, p, target) in views {
        wait_log(p, target, &format!("{who} has all 4"), &everyone, |l| {
            has_all(l, &sent)
        });
    }

    let gone = sent[1].clone();
    assert_ok(&a2.kith(["delete", b, "--message", &gone]));
    assert!(
        !has(&a2.log_json(b), &gone),
        "A2 still shows what it deleted"
    );
    wait_log(&a1, b, "A1 forgets what A2 deleted", &everyone, |l| {
        !has(l, &gone)
    });
    let lb1 = b1.log_json(a);
    assert!(has_all(&lb1, &sent) && lb1.len() == 4, "B1: {lb1:?}");

    // Both sides restart; B1 offers everything again.
    restart(&a1, &mut da1, "A1");
    restart(&b1, &mut db1, "B1");
    sent.push(b1.send(a, "probe 1"));
    let kept: Vec<String> = sent.iter().filter(|&id| *id != gone).cloned().collect();
    for (who, p) in [("A1", &a1), ("A2", &a2)] {
        wait_log(
            p,
            b,
            &format!("{who} syncs after the restarts"),
            &everyone,
            |l| has_all(l, &kept),
        );
    }
    let back = wait_until(GRACE, || {
        has(&a1.log_json(b), &gone) || has(&a2.log_json(b), &gone)
    });
    assert!(!back, "the deleted message came back\n{}", logs(&everyone));
    for (who, p) in [("A1", &a1), ("A2", &a2)] {
        assert_eq!(p.log_json(b).len(), kept.len(), "{who}");
    }
    let lb1 = b1.log_json(a);
    assert!(has_all(&lb1, &sent) && lb1.len() == 5, "B1: {lb1:?}");

    // The whole conversation, deleted on A1.
    assert_ok(&a1.kith(["delete", b]));
    for (who, p) in [("A1", &a1), ("A2", &a2)] {
        wait_log(
            p,
            b,
            &format!("{who} forgets the conversation"),
            &everyone,
            |l| l.is_empty(),
        );
    }
    assert_eq!(ids(&b1.log_json(a)), ids(&lb1), "B1 keeps everything");

    // After another restart of both, only what is new shows.
    restart(&a1, &mut da1, "A1");
    restart(&b1, &mut db1, "B1");
    let fresh = b1.send(a, "probe 2");
    for (who, p) in [("A1", &a1), ("A2", &a2)] {
        wait_log(
            p,
            b,
            &format!("{who} gets the new message"),
            &everyone,
            |l| has(l, &fresh),
        );
    }
    let back = wait_until(GRACE, || {
        a1.log_json(b).len() > 1 || a2.log_json(b).len() > 1
    });
    assert!(!back, "deleted messages came back\n{}", logs(&everyone));
    for (who, p) in [("A1", &a1), ("A2", &a2)] {
        assert_eq!(ids(&p.log_json(b)), std::slice::from_ref(&fresh), "{who}");
    }
    assert_eq!(b1.log_json(a).len(), 6, "B1 keeps everything");
}

/// Garbage, truncated and already used join codes fail cleanly, leave the
/// folder free for a proper join and add no device; unknown devices cannot
/// be revoked.
#[test]
fn bad_join_input_is_refused_and_adds_nothing() {
    let (a1, ia, _da1) = user("alice");
    let code = a1.invite();
    assert_ne!(a1.invite(), code, "two invites gave the same code");
    let only_a1 = states_of(&[(&ia.device, "active")]);

    let newcomer = Profile::new();
    let truncated = &code[..code.len() / 2];
    for bad in ["kith:join/zzzz", "hello", "kith:join/", truncated] {
        let out = newcomer.try_join(bad, "intruder");
        let line = assert_fails_cleanly(&out);
        assert!(out.stdout.is_empty(), "{bad}: stdout on failure");
        eprintln!("{bad}: {line}");
        assert_eq!(states(&a1), only_a1, "{bad} added a device");
    }

    // The folder is still free, and the untruncated code still works.
    let out = newcomer.try_join(&code, "alice-phone");
    let text = assert_ok(&out);
    let v: serde_json::Value = serde_json::from_str(&text).expect("init --join --json is JSON");
    assert_eq!(v["account"], ia.account.as_str(), "{v}");
    let phone = v["device"].as_str().expect("device").to_owned();
    assert!(is_id(&phone), "{v}");
    let two = states_of(&[(&ia.device, "active"), (&phone, "active")]);
    assert_eq!(states(&a1), two);

    // A used code is spent.
    let second = Profile::new();
    let out = second.try_join(&code, "thief");
    let line = assert_fails_cleanly(&out);
    eprintln!("reused code: {line}");
    assert_eq!(states(&a1), two, "a reused code added a device");
    let tablet = second.join(&a1, "alice-tablet").device;
    let three = states_of(&[
        (&ia.device, "active"),
        (&phone, "active"),
        (&tablet, "active"),
    ]);
    assert_eq!(states(&a1), three);

    let stranger = Profile::new().init("mallory").device;
    let made_up = "a".repeat(52);
    for dev in ["nosuchdevice", stranger.as_str(), made_up.as_str()] {
        let out = a1.kith(["device", "revoke", dev]);
        assert_fails_cleanly(&out);
        assert_eq!(states(&a1), three, "revoke {dev} changed the device list");
    }
}

/// The recovery-key path: a thief holding A1 revokes A2 while the owner, on
/// A2, revokes A1 with the recovery code, neither having heard of the other.
/// Once they meet, the recovery key wins on every device (A1 revoked, A2
/// active), A1's daemon stops itself, and a contact sees the same.
#[test]
fn the_recovery_key_beats_a_thiefs_concurrent_revocation() {
    let a1 = Profile::new();
    let out = a1.kith([
        "init",
        "--name",
        "alice",
        "--no-passphrase",
        "--recovery-key",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    let code = v["recovery_code"].as_str().unwrap().to_owned();
    let (a, a1_dev) = (
        v["account"].as_str().unwrap().to_owned(),
        v["device"].as_str().unwrap().to_owned(),
    );
    let mut da1 = a1.spawn_daemon_shared();
    let (b1, _, mut db1) = user("bob");
    pair(&a1, &b1);
    let (a2, ia2) = linked(&a1, "alice-phone");
    let everyone = [("A1", &a1), ("A2", &a2), ("B1", &b1)];

    // A wrong recovery code is refused and changes nothing.
    let mut da2 = a2.spawn_daemon_shared();
    let mut wrong = a2.command(["device", "revoke", a1_dev.as_str(), "--recovery"]);
    wrong.env("KITH_RECOVERY_CODE", "aaaa-bbbb");
    assert_fails_cleanly(&run_limited(&mut wrong, Duration::from_secs(30)));
    wait_for(
        "A2 knows both devices",
        &everyone,
        || states(&a2),
        |s| s.len() == 2,
    );
    stop(&mut da2, "A2");

    // The thief, on A1, revokes A2 while A2 (and B1) are away.
    wait_for(
        "B1 knows both of A's devices",
        &everyone,
        || b1.contact_devices(&a),
        |d| d.len() == 2,
    );
    stop(&mut db1, "B1");
    assert_ok(&a1.kith(["device", "revoke", ia2.device.as_str()]));
    stop(&mut da1, "A1");
    // The owner, on A2 (A1 away), revokes A1 with the recovery code.
    let da2 = a2.spawn_daemon_shared();
    let mut rec = a2.command(["device", "revoke", a1_dev.as_str(), "--recovery"]);
    rec.env("KITH_RECOVERY_CODE", &code);
    assert_ok(&run_limited(&mut rec, Duration::from_secs(30)));

    // They meet (and B1 hears both).
    let _db1 = b1.spawn_daemon_shared();
    let mut da1 = a1.start_daemon_shared();
    let want = states_of(&[
        (a1_dev.as_str(), "revoked"),
        (ia2.device.as_str(), "active"),
    ]);
    wait_for(
        "A2 sees A1 revoked and itself active",
        &everyone,
        || states(&a2),
        |s| *s == want,
    );
    assert!(
        da1.wait(WAIT).is_some(),
        "A1's daemon did not stop after its revocation\n{}",
        da1.log()
    );
    wait_for(
        "B1 sees only A2 as A's device",
        &everyone,
        || b1.contact_devices(&a),
        |d| *d == set_of(&[ia2.device.as_str()]),
    );
    drop(da2);
}
