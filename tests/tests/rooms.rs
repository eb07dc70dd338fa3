//! Rooms between real daemons (CLI.md "Rooms"): a private room of five
//! accounts (one with two devices) where the inviter is the only contact
//! the others share, so messages between them travel through other
//! members; identical order on every device; a member offline for 100
//! messages catches up; a kicked member receives nothing afterwards; a
//! member without power cannot change roles; a public room joined by its
//! link; bad input.

use kith_tests::{
    Daemon, Ids, Message, Profile, assert_fails_cleanly, assert_ok, is_id, pair, wait_until,
};
use std::time::Duration;

/// How long to wait for anything that travels between daemons.
const WAIT: Duration = Duration::from_secs(90);

fn user(name: &str) -> (Profile, Ids, Daemon) {
    let mut p = Profile::new();
    let ids = p.init(name);
    let d = p.spawn_daemon();
    (p, ids, d)
}

fn rooms(p: &Profile) -> serde_json::Value {
    serde_json::from_str(&assert_ok(&p.kith(["room", "list", "--json"])))
        .expect("room list --json is JSON")
}

/// `room list --json` entry for `room` on `p`, if held.
fn room_entry(p: &Profile, room: &str) -> Option<serde_json::Value> {
    rooms(p)
        .as_array()
        .expect("room list is an array")
        .iter()
        .find(|r| r["id"] == room)
        .cloned()
}

fn members(p: &Profile, room: &str) -> Vec<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&assert_ok(&p.kith(["room", "members", room, "--json"])))
            .expect("room members --json is JSON");
    v.as_array()
        .expect("members is an array")
        .iter()
        .map(|m| {
            (
                m["account"].as_str().expect("account").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect()
}

fn texts(log: &[Message]) -> Vec<String> {
    log.iter().map(|m| m.text.clone()).collect()
}

fn ids(log: &[Message]) -> Vec<String> {
    log.iter().map(|m| m.id.clone()).collect()
}

fn all_logs(devices: &[&Profile]) -> String {
    devices
        .iter()
        .enumerate()
        .map(|(i, p)| format!("=== device {i}\n{}", p.daemon_logs()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn five_accounts_in_a_private_room() {
    let (a1, ia, _da1) = user("alice");
    let mut a2 = Profile::new();
    let ia2 = a2.join(&a1, "alice-phone");
    let _da2 = a2.spawn_daemon();
    let (b, ib, _db) = user("bob");
    let (c, ic, _dc) = user("carol");
    let (d, id_, _dd) = user("dave");
    let (e, ie, de) = user("erin");
    // Alice is the only contact the others have.
    for p in [&b, &c, &d, &e] {
        pair(&a1, p);
    }
    let room = assert_ok(&a1.kith(["room", "create", "team"]))
        .trim()
        .to_owned();
    assert!(is_id(&room), "room create printed {room:?}");

    // Bad input first: each a clear error that changes nothing.
    let out = a1.kith(["room", "invite", "team", "nobody-we-know"]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("no contact"), "{line}");
    let out = a1.kith(["room", "join", "kith:room/notarealroomlink"]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("not a kith room link"), "{line}");
    let out = a1.kith(["room", "join", "https://example.org/room"]);
    assert_fails_cleanly(&out);
    let out = a1.kith(["room", "role", "team", &ia.account, "overlord"]);
    let line = assert_fails_cleanly(&out);
    assert!(
        line.contains("no role") && line.contains("moderator"),
        "{line}"
    );
    let out = a1.kith(["room", "link", "team"]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("private"), "{line}");
    let out = a1.kith(["send", "no-such-room", "hello"]);
    assert_fails_cleanly(&out);

    for who in ["bob", "carol", "dave", "erin"] {
        assert_ok(&a1.kith(["room", "invite", "team", who]));
    }
    let everyone = [&a1, &a2, &b, &c, &d, &e];
    let accounts = [
        &ia.account,
        &ib.account,
        &ic.account,
        &id_.account,
        &ie.account,
    ];
    let all_joined = |p: &Profile| {
        room_entry(p, &room).is_some_and(|r| r["members"] == 5 && r["membership"] == "join")
    };
    assert!(
        wait_until(WAIT, || everyone.iter().all(|p| all_joined(p))),
        "not everyone joined: {:?}\n{}",
        everyone
            .iter()
            .map(|p| room_entry(p, &room))
            .collect::<Vec<_>>(),
        all_logs(&everyone)
    );
    let listed = members(&c, &room);
    assert_eq!(listed.len(), 5, "{listed:?}");
    for a in accounts {
        let role = if a == &ia.account { "admin" } else { "member" };
        assert!(listed.contains(&(a.clone(), role.to_owned())), "{listed:?}");
    }
    let _ = ia2;

    // Every member writes; every device shows all of it in the same order.
    let mut sent = Vec::new();
    for (p, who) in [
        (&a1, "a1"),
        (&a2, "a2"),
        (&b, "b"),
        (&c, "c"),
        (&d, "d"),
        (&e, "e"),
    ] {
        for i in 0..2 {
            let text = format!("{who}-{i}");
            p.send(&room, &text);
            sent.push(text);
        }
    }
    let complete = |p: &Profile| {
        p.try_log_json(&room)
            .is_ok_and(|log| sent.iter().all(|t| texts(&log).contains(t)))
    };
    assert!(
        wait_until(WAIT, || everyone.iter().all(|p| complete(p))),
        "messages missing: {:?}\n{}",
        everyone
            .iter()
            .map(|p| p.try_log_json(&room).map(|l| texts(&l)))
            .collect::<Vec<_>>(),
        all_logs(&everyone)
    );
    let order = ids(&a1.log_json(&room));
    for p in &everyone[1..] {
        assert_eq!(ids(&p.log_json(&room)), order, "display order differs");
    }
    // Authors are accounts, whichever device wrote.
    let log = b.log_json(&room);
    let by_a2 = log.iter().find(|m| m.text == "a2-0").expect("a2's message");
    assert_eq!(by_a2.author, ia.account);
    assert_eq!(by_a2.device, ia2.device);

    // Erin is away while Bob writes 100 messages; she catches up.
    drop(de);
    let mut burst = Vec::new();
    for i in 0..100 {
        let text = format!("while-away-{i}");
        b.send("team", &text);
        burst.push(text);
    }
    let _de = e.spawn_daemon_shared();
    let caught_up = |p: &Profile| {
        p.try_log_json(&room)
            .is_ok_and(|log| burst.iter().all(|t| texts(&log).contains(t)))
    };
    assert!(
        wait_until(WAIT, || caught_up(&e) && caught_up(&c)),
        "erin did not catch up: {} of 100\n{}",
        e.try_log_json(&room)
            .map(|l| burst.iter().filter(|t| texts(&l).contains(t)).count())
            .unwrap_or(0),
        all_logs(&everyone)
    );
    assert_eq!(ids(&e.log_json(&room)), ids(&b.log_json(&room)));

    // A member without power cannot change roles.
    let out = b.kith(["room", "role", "team", &ic.account, "moderator"]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("power"), "{line}");
    // Nor kick.
    let out = b.kith(["room", "kick", "team", &ic.account]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("power"), "{line}");
    // The admin can; the new moderator shows everywhere.
    assert_ok(&a1.kith(["room", "role", "team", &ic.account, "moderator"]));
    assert!(
        wait_until(WAIT, || members(&e, &room)
            .contains(&(ic.account.clone(), "moderator".into()))),
        "role change did not arrive"
    );

    // Dave is kicked: nothing written afterwards reaches him.
    assert_ok(&c.kith(["room", "kick", "team", &id_.account]));
    let gone = |p: &Profile| room_entry(p, &room).is_some_and(|r| r["members"] == 4);
    let others = [&a1, &a2, &b, &c, &e];
    assert!(
        wait_until(WAIT, || others.iter().all(|p| gone(p))),
        "the kick did not arrive everywhere\n{}",
        all_logs(&everyone)
    );
    let secret = "after dave left";
    e.send(&room, secret);
    assert!(
        wait_until(WAIT, || others.iter().all(|p| p
            .try_log_json(&room)
            .is_ok_and(|l| texts(&l).contains(&secret.to_owned())))),
        "the message after the kick did not arrive\n{}",
        all_logs(&everyone)
    );
    // Give anything in flight time to arrive at Dave too.
    std::thread::sleep(Duration::from_secs(3));
    let at_dave = texts(&d.log_json(&room));
    assert!(
        !at_dave.contains(&secret.to_owned()),
        "dave got a message after his kick"
    );
    // What Dave writes now is not shown to anyone.
    if let Ok(_id) = d.try_send(&room, "dave again") {
        std::thread::sleep(Duration::from_secs(3));
        for p in &others {
            assert!(!texts(&p.log_json(&room)).contains(&"dave again".to_owned()));
        }
    }

    // Erin leaves; everyone sees it, and her leave reached them.
    assert_ok(&e.kith(["room", "leave", "team"]));
    let left = |p: &Profile| room_entry(p, &room).is_some_and(|r| r["members"] == 3);
    assert!(
        wait_until(WAIT, || [&a1, &a2, &b, &c].iter().all(|p| left(p))),
        "erin's leave did not arrive\n{}",
        all_logs(&everyone)
    );
    assert_eq!(
        room_entry(&e, &room).map(|r| r["membership"].clone()),
        Some(serde_json::json!("leave"))
    );
}

/// A public room "lobby" made by `a`, and its link.
fn lobby(a: &Profile) -> (String, String) {
    let room = assert_ok(&a.kith(["room", "create", "lobby", "--public"]))
        .trim()
        .to_owned();
    let link = assert_ok(&a.kith(["room", "link", "lobby"]))
        .trim()
        .to_owned();
    (room, link)
}

#[test]
fn a_public_room_is_joined_by_its_link() {
    let (a, ia, _da) = user("alice");
    let (f, if_, _df) = user("frank");
    let (room, link) = lobby(&a);
    a.send(&room, "welcome");
    assert!(link.starts_with("kith:room/"), "{link}");
    // Frank is nobody's contact.
    let out = f.kith(["room", "join", &link]);
    let joined = assert_ok(&out).trim().to_owned();
    assert_eq!(joined, room);
    assert!(
        wait_until(WAIT, || f
            .try_log_json(&room)
            .is_ok_and(|l| texts(&l) == ["welcome"])),
        "frank does not see the room's history\n{}",
        all_logs(&[&a, &f])
    );
    f.send("lobby", "hi all");
    assert!(
        wait_until(WAIT, || a
            .try_log_json(&room)
            .is_ok_and(|l| texts(&l) == ["welcome", "hi all"])),
        "alice does not see frank's message\n{}",
        all_logs(&[&a, &f])
    );
    let listed = members(&a, &room);
    assert!(
        listed.contains(&(if_.account.clone(), "member".into())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(ia.account.clone(), "admin".into())),
        "{listed:?}"
    );
    // Frank is still not a contact.
    assert_eq!(a.contacts_json().as_array().map(Vec::len), Some(0));
}

/// A file offered into a room reaches a member who is nobody's contact, from
/// the room's other device; the history rule is guarded and its bad input
/// fails cleanly.
#[test]
fn a_file_in_a_room_and_the_rooms_history_rule() {
    let (a, _ia, _da) = user("alice");
    let (f, _if, _df) = user("frank");
    let (room, link) = lobby(&a);
    assert_ok(&f.kith(["room", "join", &link]));

    // 3 MiB of incompressible bytes.
    let src = a.scratch("photo.bin");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&src, &bytes).unwrap();
    let id = assert_ok(&a.kith(["file", "send", "lobby", src.to_str().unwrap()]))
        .trim()
        .to_owned();
    assert!(is_id(&id), "{id}");
    a.send(&room, "sent you a photo");
    let complete = || {
        let out = f.kith(["file", "list", &room, "--json"]);
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|v| {
                v.as_array()
                    .is_some_and(|l| l.iter().any(|e| e["id"] == id && e["state"] == "complete"))
            })
    };
    assert!(
        wait_until(WAIT, complete),
        "frank does not get the file\n{}",
        all_logs(&[&a, &f])
    );
    let log = f.log_json(&room);
    assert_eq!(
        texts(&log),
        ["[file] photo.bin (3145728 bytes)", "sent you a photo"]
    );
    let dest = f.scratch("saved.bin");
    assert_ok(&f.kith(["file", "save", &id, dest.to_str().unwrap()]));
    assert!(
        std::fs::read(&dest).unwrap() == bytes,
        "the saved file differs"
    );

    // Deleting the file message takes its content with it.
    let content_bytes = |p: &Profile| -> u64 {
        std::fs::read_dir(p.home().join("files"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    assert!(content_bytes(&f) >= 3 << 20, "no content at rest");
    assert_ok(&f.kith(["delete", &room, "--message", &id]));
    let listed = assert_ok(&f.kith(["file", "list", &room, "--json"]));
    assert!(
        !listed.contains(&id),
        "a deleted file is still listed: {listed}"
    );
    assert!(
        content_bytes(&f) < 1 << 20,
        "the deleted file's content stayed"
    );
    let again = f.scratch("again.bin");
    assert_fails_cleanly(&f.kith(["file", "save", &id, again.to_str().unwrap()]));
    assert_eq!(texts(&f.log_json(&room)), ["sent you a photo"]);

    // The history rule: shown to anyone, changed by admins only.
    let rule: serde_json::Value =
        serde_json::from_str(&assert_ok(&f.kith(["room", "history", "lobby", "--json"]))).unwrap();
    assert_eq!(rule["trust"], "auto");
    assert_eq!(rule["admin_trusted"], true, "a public room: {rule}");
    let err = assert_fails_cleanly(&f.kith(["room", "history", "lobby", "--trust", "members"]));
    assert!(err.contains("power 100"), "{err}");
    let err = assert_fails_cleanly(&a.kith(["room", "history", "lobby", "--trust", "nobody"]));
    assert!(err.contains("auto, members or admins"), "{err}");
    let err = assert_fails_cleanly(&a.kith(["room", "history", "lobby", "--confirmations", "0"]));
    assert!(err.contains("from 1 to 32"), "{err}");
    let rule: serde_json::Value = serde_json::from_str(&assert_ok(&a.kith([
        "room",
        "history",
        "lobby",
        "--trust",
        "members",
        "--confirmations",
        "3",
        "--json",
    ])))
    .unwrap();
    assert_eq!(rule["confirmations"], 3);
    assert_eq!(rule["admin_trusted"], false, "{rule}");
    assert!(
        wait_until(WAIT, || serde_json::from_str::<serde_json::Value>(
            &assert_ok(&f.kith(["room", "history", "lobby", "--json"]))
        )
        .is_ok_and(|r| r["trust"] == "members")),
        "frank does not see the new rule"
    );
    // Nothing is held; confirming needs a held event (and power).
    assert_eq!(
        assert_ok(&a.kith(["room", "held", "lobby", "--json"])).trim(),
        "[]"
    );
    let err = assert_fails_cleanly(&a.kith(["room", "confirm", "lobby", "abcd"]));
    assert!(err.contains("no event held as arrived late"), "{err}");
}

/// A join from a link outlives a restart of the joining daemon: Frank asks
/// to join while every member device is away, restarts, and joins once
/// Alice's device is back.
#[test]
fn a_link_join_survives_a_restart() {
    // A fixed port for Alice's device, so the link's address holds after
    // her restart.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let fixed = format!("127.0.0.1:{port}");
    let a = Profile::new();
    a.init("alice");
    let da = a.spawn_daemon_on(&fixed);
    let (room, link) = lobby(&a);
    a.send(&room, "welcome");
    drop(da);

    let (f, _if, df) = user("frank");
    let err = assert_fails_cleanly(&f.kith(["room", "join", &link, "--wait", "2"]));
    assert!(err.contains("could be reached"), "{err}");
    drop(df);
    let _df = f.spawn_daemon_shared();
    let _da = a.spawn_daemon_on(&fixed);
    assert!(
        wait_until(WAIT, || room_entry(&f, &room)
            .is_some_and(|r| r["membership"] == "join")),
        "frank did not join after the restart\n{}\n{}",
        f.daemon_logs(),
        a.daemon_logs()
    );
    assert!(
        wait_until(WAIT, || f
            .try_log_json(&room)
            .is_ok_and(|l| texts(&l) == ["welcome"])),
        "frank does not see the room's history"
    );
}
