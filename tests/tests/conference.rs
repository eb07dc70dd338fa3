//! Room calls between real daemons through the CLI: four members of a
//! private room in one call, each sending its own tone; every participant
//! hears the other three and not itself; a kicked member is dropped from
//! the call; one leaves, the others make new keys, and nothing the leaver
//! holds opens what is sent after it left. A stranger to the room cannot
//! join its call. Four members in a video call each take the others'
//! full layer and show their pictures, never their own; nine, beyond a
//! mesh, see each other through the forwarders; one whose downlink is
//! policed takes fewer senders' video. A member whose
//! uplink cannot carry a copy for each other (capped by nftables in a
//! network namespace) measures it, says so in the room, and sends through
//! a forwarder: the always-on device of another member.

#![allow(clippy::unwrap_used)]

use kith_tests::{
    Daemon, Ids, Loopback, Profile, assert_fails_cleanly, assert_ok, pair, port_of, share_of, tone,
    wait_until,
};
use node_core::call::conf::SenderKeys;
use node_core::crypto::SecretBytes;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// One call test at a time: each runs three to five daemons coding and
/// mixing audio in real time (debug builds) on two cores.
fn one_media_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static MEDIA: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MEDIA.lock().unwrap_or_else(|p| p.into_inner())
}

fn user(name: &str, dump: &Path) -> (Profile, Ids, Daemon) {
    let p = Profile::new();
    let ids = p.init(name);
    std::fs::create_dir_all(dump).unwrap();
    let d = p.spawn_daemon_with(&["--danger-conf-dump", dump.to_str().unwrap()]);
    (p, ids, d)
}

fn calls(p: &Profile) -> Vec<serde_json::Value> {
    serde_json::from_str(&assert_ok(&p.kith(["call", "status", "--json"]))).unwrap()
}

fn call_of(p: &Profile, id: &str) -> Option<serde_json::Value> {
    calls(p).into_iter().find(|c| c["id"] == id)
}

fn linked(p: &Profile, id: &str) -> Vec<String> {
    call_of(p, id)
        .and_then(|c| {
            c["participants"].as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn room_entry(p: &Profile, room: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&assert_ok(&p.kith(["room", "list", "--json"]))).unwrap();
    v.as_array()?.iter().find(|r| r["id"] == room).cloned()
}

/// A private room made by the first of `people`, every other one a
/// contact of hers invited and joined (`names` are theirs, in order).
fn room_of(people: &[(Profile, Ids, Daemon)], names: &[impl AsRef<str>]) -> String {
    for (p, ..) in &people[1..] {
        pair(&people[0].0, p);
    }
    let a = &people[0].0;
    let room = assert_ok(&a.kith(["room", "create", "band"]))
        .trim()
        .to_owned();
    for n in &names[1..] {
        assert_ok(&a.kith(["room", "invite", &room, n.as_ref()]));
    }
    let all_joined = |p: &Profile| {
        room_entry(p, &room)
            .is_some_and(|r| r["members"] == people.len() && r["membership"] == "join")
    };
    assert!(
        wait_until(WAIT * 2, || people.iter().all(|(p, ..)| all_joined(p))),
        "not everyone joined"
    );
    room
}

/// A daemon of its own for each of `names`, each with an account of that
/// name.
fn daemons(names: &[String]) -> Vec<(Profile, Ids, Daemon)> {
    names
        .iter()
        .map(|name| {
            let mut p = Profile::new();
            let ids = p.init(name);
            let d = p.spawn_daemon();
            (p, ids, d)
        })
        .collect()
}

/// Whether call `id` formed as a forwarded call of at most 16: everyone
/// linked with everyone, and all but the two forwarders sending through
/// one.
fn forwarded_by_two(people: &[(Profile, Ids, Daemon)], id: &str) -> bool {
    let n = people.len();
    let infos: Vec<_> = people.iter().map(|(p, ..)| call_of(p, id)).collect();
    let linked = infos.iter().all(|c| {
        c.as_ref()
            .and_then(|c| c["participants"].as_array().map(Vec::len))
            == Some(n - 1)
    });
    let through = infos
        .iter()
        .filter(|c| c.as_ref().is_some_and(|c| c["forwarder"].is_string()))
        .count();
    linked && through == n - 2
}

/// The first of `people` starts the room's call (`start(0)`, the call's
/// id); each other one waits until its room shows that call on, and joins
/// it (`start(i)` must give the same id).
fn everyone_joins(
    people: &[(Profile, Ids, Daemon)],
    names: &[impl AsRef<str>],
    room: &str,
    start: impl Fn(usize) -> String,
) -> String {
    let id = start(0);
    for (i, (p, ..)) in people.iter().enumerate().skip(1) {
        assert!(
            wait_until(WAIT, || room_entry(p, room)
                .is_some_and(|r| r["call"] == id.as_str())),
            "{} does not see the call",
            names[i].as_ref()
        );
        assert_eq!(start(i), id, "{} joined another call", names[i].as_ref());
    }
    id
}

/// Everyone in `people` joins `room`'s call (as [`everyone_joins`]), each
/// sending a tone of its own (`freqs`, 90 s at peak `amplitude`) and
/// keeping what it hears: the call's id, and the files heard, in order.
fn everyone_joins_with_tones(
    people: &[(Profile, Ids, Daemon)],
    names: &[impl AsRef<str>],
    room: &str,
    dir: &Path,
    (freqs, amplitude): (&[f64], f64),
) -> (String, Vec<std::path::PathBuf>) {
    let outs: Vec<_> = names
        .iter()
        .map(|n| dir.join(format!("{}-out.wav", n.as_ref())))
        .collect();
    let start = |i: usize| {
        let input = dir.join(format!("{}-in.wav", names[i].as_ref()));
        kith_media::wav::write(&input, &tone(freqs[i], 90.0, amplitude)).unwrap();
        let out = people[i].0.kith([
            "call",
            room,
            "--audio-in",
            input.to_str().unwrap(),
            "--audio-out",
            outs[i].to_str().unwrap(),
        ]);
        assert_ok(&out).trim().to_owned()
    };
    (everyone_joins(people, names, room, start), outs)
}

/// In the last `secs` of what each of `outs` heard, some half second holds
/// every other one's tone (`freqs`, in order) and not its own.
fn each_heard_the_others(outs: &[std::path::PathBuf], names: &[&str], freqs: &[f64], secs: usize) {
    for (i, out) in outs.iter().enumerate() {
        let heard = kith_media::wav::read(out, 48_000 * 120).unwrap();
        let tail = &heard[heard.len().saturating_sub(secs * 48_000)..];
        let others: Vec<f64> = (0..freqs.len())
            .filter(|&j| j != i)
            .map(|j| freqs[j])
            .collect();
        let (least, own) = best_window(tail, &others, freqs[i]);
        eprintln!(
            "{}: heard {:.1} s; the others' tones at least {least:.3} of the power, its own {own:.4}",
            names[i],
            heard.len() as f64 / 48_000.0
        );
        assert!(least > 0.1, "{} did not hear all the others", names[i]);
        assert!(own < 0.01, "{} heard itself", names[i]);
    }
}

/// The best half second of `heard`: the least share among the `others`'
/// tones is highest there; that least share, and the own tone's share in
/// the same window.
fn best_window(heard: &[i16], others: &[f64], own: f64) -> (f64, f64) {
    let n = 24_000;
    let mut best = (0.0, 1.0);
    let mut at = 0;
    while at + n <= heard.len() {
        let w = &heard[at..at + n];
        let least = others
            .iter()
            .map(|f| share_of(w, *f))
            .fold(f64::INFINITY, f64::min);
        if least > best.0 {
            best = (least, share_of(w, own));
        }
        at += 4_800;
    }
    best
}

/// Reads a `--danger-conf-dump` file: one line per entry, fields split
/// by spaces, hex decoded.
fn dump_lines(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Whether `frame` (a whole media datagram) opens under `key`, whatever
/// key id the frame names.
fn opens(frame: &[u8], key: &[u8]) -> bool {
    if frame.len() < 12 + 28 {
        return false;
    }
    let kid = u32::from_be_bytes([frame[12], frame[13], frame[14], frame[15]]);
    let mut k = [0u8; 32];
    k.copy_from_slice(key);
    let mut keys = SenderKeys::default();
    keys.add(kid, SecretBytes::new(k));
    keys.open(&frame[..12], &frame[12..]).is_ok()
}

#[test]
fn four_members_hear_each_other_a_kicked_one_is_dropped_and_a_leaver_opens_nothing_after() {
    let _media = one_media_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let names = ["alice", "bob", "carol", "dave"];
    let freqs = [440.0, 550.0, 660.0, 770.0];
    let mut people = Vec::new();
    for n in names {
        people.push(user(n, &dir.path().join(format!("dump-{n}"))));
    }
    let (erin, _ie, _de) = user("erin", &dir.path().join("dump-erin"));
    pair(&people[0].0, &erin);
    let room = room_of(&people, &names);
    let a = &people[0].0;

    // Each sends its own tone and keeps what it hears.
    let wav = |n: &str, f: f64| {
        let path = dir.path().join(format!("{n}-in.wav"));
        kith_media::wav::write(&path, &tone(f, 40.0, 6_000.0)).unwrap();
        path
    };
    let outs: Vec<_> = names
        .iter()
        .map(|n| dir.path().join(format!("{n}-out.wav")))
        .collect();
    let start = |i: usize| {
        let input = wav(names[i], freqs[i]);
        let out = people[i].0.kith([
            "call",
            &room,
            "--audio-in",
            input.to_str().unwrap(),
            "--audio-out",
            outs[i].to_str().unwrap(),
        ]);
        assert_ok(&out).trim().to_owned()
    };
    // The others see the call on in the room, and join that one.
    let id = everyone_joins(&people, &names, &room, start);
    // A stranger to the room (a contact of Alice's) cannot call it: it
    // does not hold the room, and it could not join if it did (below).
    let line = assert_fails_cleanly(&erin.kith(["call", &room]));
    assert!(
        line.contains("no room") || line.contains("no contact"),
        "{line}"
    );

    let full_mesh = || people.iter().all(|(p, ..)| linked(p, &id).len() == 3);
    assert!(
        wait_until(WAIT, full_mesh),
        "no full mesh: {:?}",
        people
            .iter()
            .map(|(p, ..)| call_of(p, &id))
            .collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_secs(5));

    // A member cannot mute another; Alice (the creator) mutes Bob for
    // everyone for a while.
    let line = assert_fails_cleanly(&people[1].0.kith(["call", "mute", "--member", "alice"]));
    assert!(line.contains("power"), "{line}");
    assert_ok(&a.kith(["call", "mute", "--member", "bob"]));
    std::thread::sleep(Duration::from_secs(3));
    assert_ok(&a.kith(["call", "mute", "--member", "bob", "--off"]));
    std::thread::sleep(Duration::from_secs(2));

    // Alice (the room's creator) kicks Carol: everyone drops her from the
    // call, and her call ends.
    let carol_device = people[2].1.device.clone();
    assert_ok(&a.kith(["room", "kick", &room, &people[2].1.account]));
    assert!(
        wait_until(WAIT, || [0usize, 1, 3].iter().all(|&i| !linked(
            &people[i].0,
            &id
        )
        .contains(&carol_device))),
        "carol is still linked"
    );
    // Nothing of the room reaches her any more, but every participant
    // refuses her: alone, her side ends.
    assert!(
        wait_until(WAIT, || call_of(&people[2].0, &id)
            .is_some_and(|c| c["state"] == "ended")),
        "carol's call: {:?}",
        call_of(&people[2].0, &id)
    );

    // Dave leaves; Bob's frames received after the others made new keys
    // are kept apart from those before.
    let bob_frames = dir.path().join("dump-bob").join("frames");
    let dave_device = people[3].1.device.clone();
    let keys_before: Vec<u64> = [0usize, 1]
        .iter()
        .map(|&i| {
            call_of(&people[i].0, &id).unwrap()["keys_made"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_ok(&people[3].0.kith(["call", "hangup"]));
    assert!(
        wait_until(WAIT, || [0usize, 1].iter().all(|&i| !linked(
            &people[i].0,
            &id
        )
        .contains(&dave_device))),
        "dave is still linked"
    );
    for (k, &i) in [0usize, 1].iter().enumerate() {
        let made = call_of(&people[i].0, &id).unwrap()["keys_made"]
            .as_u64()
            .unwrap();
        assert!(made > keys_before[k], "{} made no new key", names[i]);
    }
    // The new key is used from 200 ms on; frames from then on.
    std::thread::sleep(Duration::from_millis(600));
    let cut = dump_lines(&bob_frames).len();
    std::thread::sleep(Duration::from_secs(3));
    for i in [0usize, 1] {
        assert_ok(&people[i].0.kith(["call", "hangup"]));
    }

    // What each heard: the others' tones, not its own.
    each_heard_the_others(&outs, &names, &freqs, 120);
    // While Bob was muted, Carol heard Alice and Dave and not him.
    let carol = kith_media::wav::read(&outs[2], 48_000 * 120).unwrap();
    let (least, bob_share) = best_window(&carol, &[440.0, 770.0], 550.0);
    eprintln!("carol while bob was muted: alice and dave at least {least:.3}, bob {bob_share:.4}");
    assert!(least > 0.3 && bob_share < 0.01, "the mute did not hold");

    // Nothing Dave holds opens what Bob received after Dave left; what
    // Bob received while Dave was in the call does open with Dave's keys
    // (the check can tell).
    let dave_keys: Vec<Vec<u8>> = dump_lines(&dir.path().join("dump-dave").join("keys"))
        .into_iter()
        .map(|l| unhex(&l[2]))
        .collect();
    assert!(!dave_keys.is_empty(), "dave was given no keys");
    let frames: Vec<Vec<u8>> = dump_lines(&bob_frames)
        .into_iter()
        .map(|l| unhex(&l[1]))
        .collect();
    let (before, after) = frames.split_at(cut.min(frames.len()));
    assert!(
        after.len() > 50,
        "only {} frames after dave left",
        after.len()
    );
    let opened_before = before
        .iter()
        .filter(|f| dave_keys.iter().any(|k| opens(f, k)))
        .count();
    let opened_after = after
        .iter()
        .filter(|f| dave_keys.iter().any(|k| opens(f, k)))
        .count();
    eprintln!(
        "frames bob received: {} before dave left ({opened_before} open with dave's keys), {} after ({opened_after})",
        before.len(),
        after.len()
    );
    assert!(opened_before > 0, "the check cannot tell");
    assert_eq!(opened_after, 0, "a leaver's key opens frames sent after");
    // The room says who was in the call and that it ended.
    assert!(
        wait_until(WAIT, || room_entry(a, &room)
            .is_some_and(|r| r["call"].is_null())),
        "the call is still on in the room"
    );
}

/// A participant that sends, beside its good frames, replays of them,
/// forged ones, frames under the key it used before and junk: each is
/// dropped and counted by the others, whose call goes on hearing it.
#[test]
fn a_hostile_participants_bad_frames_are_dropped_and_counted() {
    let _media = one_media_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (bob, _ib, _db) = user("bob", &dir.path().join("dump-bob"));
    let mallory = Profile::new();
    let im = mallory.init("mallory");
    let _dm = mallory.spawn_daemon_with(&["--danger-conf-hostile"]);
    let (carol, _ic, _dc) = user("carol", &dir.path().join("dump-carol"));
    pair(&bob, &mallory);
    pair(&bob, &carol);
    let room = assert_ok(&bob.kith(["room", "create", "den"]))
        .trim()
        .to_owned();
    assert_ok(&bob.kith(["room", "invite", &room, "mallory"]));
    assert_ok(&bob.kith(["room", "invite", &room, "carol"]));
    for p in [&bob, &mallory, &carol] {
        assert!(
            wait_until(WAIT, || room_entry(p, &room)
                .is_some_and(|r| r["members"] == 3 && r["membership"] == "join")),
            "not everyone joined"
        );
    }
    let wav = |n: &str, f: f64| {
        let path = dir.path().join(format!("{n}-in.wav"));
        kith_media::wav::write(&path, &tone(f, 30.0, 6_000.0)).unwrap();
        path
    };
    let bob_out = dir.path().join("bob-out.wav");
    let (bob_in, mallory_in, carol_in) = (
        wav("bob", 440.0),
        wav("mallory", 660.0),
        wav("carol", 550.0),
    );
    // Bob takes video: Mallory's pieces sealed as audio, replayed, and her
    // requests for a layer there is not reach his video's checks.
    let id = assert_ok(&bob.kith([
        "call",
        &room,
        "--video",
        "--audio-in",
        bob_in.to_str().unwrap(),
        "--audio-out",
        bob_out.to_str().unwrap(),
    ]))
    .trim()
    .to_owned();
    assert!(wait_until(WAIT, || room_entry(&mallory, &room)
        .is_some_and(|r| r["call"] == id.as_str())));
    assert_ok(&mallory.kith(["call", &room, "--audio-in", mallory_in.to_str().unwrap()]));
    assert!(wait_until(WAIT, || linked(&bob, &id) == vec![im.device.clone()]));
    std::thread::sleep(Duration::from_secs(2));
    // Carol comes and goes: everyone makes new keys twice, so Mallory's
    // frames under her key before are stale at Bob.
    assert!(wait_until(WAIT, || room_entry(&carol, &room)
        .is_some_and(|r| r["call"] == id.as_str())));
    assert_ok(&carol.kith(["call", &room, "--audio-in", carol_in.to_str().unwrap()]));
    assert!(wait_until(WAIT, || linked(&bob, &id).len() == 2));
    std::thread::sleep(Duration::from_secs(2));
    assert_ok(&carol.kith(["call", "hangup"]));
    std::thread::sleep(Duration::from_secs(3));
    let c = call_of(&bob, &id).unwrap();
    eprintln!(
        "bob counted: replayed {}, forged {}, stale key {}, bad {}",
        c["frames_replayed"], c["frames_forged"], c["frames_stale_key"], c["bad_datagrams"]
    );
    for counter in ["frames_replayed", "frames_forged", "frames_stale_key"] {
        assert!(c[counter].as_u64().unwrap() > 0, "{counter}: {c}");
    }
    assert!(
        c["bad_datagrams"].as_u64().unwrap()
            > c["frames_replayed"].as_u64().unwrap() + c["frames_forged"].as_u64().unwrap(),
        "junk not counted: {c}"
    );
    assert_eq!(c["state"], "active");
    assert_eq!(c["video_frames_shown"], 0, "{c}");
    // Bob (the room's creator) removes Mallory from the call: dropped,
    // her side ends, and she cannot join again.
    let line = assert_fails_cleanly(&mallory.kith(["call", "remove", "bob"]));
    assert!(line.contains("power"), "{line}");
    assert_ok(&bob.kith(["call", "remove", "mallory"]));
    assert!(
        wait_until(WAIT, || linked(&bob, &id).is_empty()),
        "mallory still linked"
    );
    assert!(
        wait_until(WAIT, || call_of(&mallory, &id)
            .is_some_and(|c| c["state"] == "ended" && c["ended"] == "removed")),
        "mallory's call: {:?}",
        call_of(&mallory, &id)
    );
    let line = assert_fails_cleanly(&mallory.kith(["call", &room]));
    assert!(line.contains("removed"), "{line}");
    // Carol, neither its starter nor a moderator nor in it, cannot end
    // the call while Bob is in it; Bob, who started it, can.
    let line = assert_fails_cleanly(&carol.kith(["call", "end", &room]));
    assert!(line.contains("others are still in the call"), "{line}");
    assert_ok(&bob.kith(["call", "end", &room]));
    assert!(
        wait_until(WAIT, || call_of(&bob, &id).is_some_and(|c| c["state"]
            == "ended"
            && c["ended"] == "call-ended")),
        "bob's call: {:?}",
        call_of(&bob, &id)
    );
    assert!(wait_until(WAIT, || room_entry(&carol, &room)
        .is_some_and(|r| r["call"].is_null())));
    // Bob heard Mallory all along (the good frames between the bad).
    let heard = kith_media::wav::read(&bob_out, 48_000 * 120).unwrap();
    let (least, _) = best_window(&heard, &[660.0], 440.0);
    assert!(least > 0.3, "bob did not hear mallory: {least}");
}

/// The longest stretch (seconds) of `heard[from..to]` without the tone at
/// `f`, in 100 ms windows.
fn longest_absence(heard: &[i16], f: f64, from: usize, to: usize) -> f64 {
    const W: usize = 4_800;
    let to = to.min(heard.len());
    let mut longest = 0usize;
    let mut run = 0usize;
    for w in heard[from.min(to)..to].chunks_exact(W) {
        run = if share_of(w, f) > 0.02 { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    longest as f64 * W as f64 / 48_000.0
}

#[test]
fn a_forwarded_call_of_twelve_forms_again_within_a_second_when_its_forwarder_is_killed() {
    let _media = one_media_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let n = 12usize;
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let freqs: Vec<f64> = (0..n).map(|i| 400.0 + 120.0 * i as f64).collect();
    let mut people = daemons(&names);
    let room = room_of(&people, &names);
    let (id, outs) =
        everyone_joins_with_tones(&people, &names, &room, dir.path(), (&freqs, 2_500.0));
    // Everyone linked with everyone (keys go end to end on those links);
    // beyond eight, all but the two forwarders send through one.
    let formed = || forwarded_by_two(&people, &id);
    assert!(
        wait_until(WAIT, formed),
        "the call never formed: {:?}",
        people
            .iter()
            .map(|(p, ..)| call_of(p, &id))
            .collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_secs(5));
    // Kill the forwarder serving the most (kill -9: no bye, no leave).
    let serving: Vec<u64> = people
        .iter()
        .map(|(p, ..)| call_of(p, &id).map_or(0, |c| c["forwarding_for"].as_u64().unwrap_or(0)))
        .collect();
    let f = (0..n).max_by_key(|i| serving[*i]).unwrap();
    assert!(serving[f] >= 4, "forwarding for {serving:?}");
    let f_device = people[f].1.device.clone();
    let turned: Vec<usize> = (0..n)
        .filter(|i| {
            call_of(&people[*i].0, &id).is_some_and(|c| c["forwarder"] == f_device.as_str())
        })
        .collect();
    eprintln!(
        "killing {} (forwarding for {:?}), whose frames go through it: {turned:?}",
        names[f], serving[f]
    );
    let killed_at = std::time::Instant::now();
    people[f].2.kill_hard();
    // Those it forwarded for turn to the other forwarder (not watched
    // meanwhile: asking twelve daemons ten times a second costs what the
    // call needs).
    std::thread::sleep(Duration::from_secs(6));
    for i in &turned {
        let c = call_of(&people[*i].0, &id).unwrap();
        assert!(
            c["forwarder"].is_string() && c["forwarder"] != f_device.as_str(),
            "{} did not turn to another forwarder: {c}",
            names[*i]
        );
    }
    for (i, (p, ids, _)) in people.iter().enumerate() {
        if i != f {
            let c = call_of(p, &id).unwrap();
            eprintln!(
                "{} {}: forwarder {} forwarding for {} linked {} replayed {} stale {} forged {} bad {}",
                names[i],
                &ids.device[..8],
                c["forwarder"].as_str().map_or("-", |d| &d[..8]),
                c["forwarding_for"],
                c["participants"].as_array().map_or(0, Vec::len),
                c["frames_replayed"],
                c["frames_stale_key"],
                c["frames_forged"],
                c["bad_datagrams"]
            );
        }
    }
    let mut hung_up_at = vec![killed_at; n];
    for (i, (p, ..)) in people.iter().enumerate() {
        if i != f {
            hung_up_at[i] = std::time::Instant::now();
            assert_ok(&p.kith(["call", "hangup"]));
        }
    }
    let first_hangup = hung_up_at[if f == 0 { 1 } else { 0 }];
    // Every remaining pair heard each other again within a second: no
    // stretch longer than that without the other's tone from a second
    // before the kill until the first hangs up. (A recording ends about
    // 100 ms after its hangup: where the kill and the first hangup fall
    // in it follows.)
    let mut worst = (0.0f64, 0, 0);
    let mut table = String::new();
    for r in (0..n).filter(|r| *r != f) {
        let heard = kith_media::wav::read(&outs[r], usize::MAX).unwrap();
        assert!(
            share_of(&heard, freqs[r]) < 0.01,
            "{} hears itself",
            names[r]
        );
        let end = hung_up_at[r] + Duration::from_millis(100);
        let at = |t: std::time::Instant| {
            heard
                .len()
                .saturating_sub((end.duration_since(t).as_secs_f64() * 48_000.0) as usize)
        };
        let (from, to) = (at(killed_at - Duration::from_secs(1)), at(first_hangup));
        assert!(to > from + 48_000 * 5, "{} heard too little", names[r]);
        table += &format!("{:>4} hears:", names[r]);
        for s in (0..n).filter(|s| *s != f && *s != r) {
            let gap = longest_absence(&heard, freqs[s], from, to);
            table += &format!(" {}:{gap:.1}", names[s]);
            if gap > worst.0 {
                worst = (gap, r, s);
            }
        }
        table += "\n";
    }
    eprintln!("longest silences (s):\n{table}");
    eprintln!(
        "longest silence of one participant in another's ears, the kill included: {:.1} s ({} hearing {})",
        worst.0, names[worst.1], names[worst.2]
    );
    assert!(
        worst.0 <= 1.0,
        "{} did not hear {} for {:.1} s",
        names[worst.1],
        names[worst.2],
        worst.0
    );
}

/// Four members in a video call: each sends its own pictures (a file whose
/// frames carry numbers of its own) and takes the full layer of the other
/// three, sealed under their keys; what each shows is the others'
/// pictures, never its own.
#[test]
fn four_members_see_each_other_at_the_full_layer() {
    use kith_media::video::{HEIGHT, WIDTH, mark, synthetic};
    let _media = one_media_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let names = ["alice", "bob", "carol", "dave"];
    let mut people = Vec::new();
    for n in names {
        people.push(user(n, &dir.path().join(format!("dump-{n}"))));
    }
    let room = room_of(&people, &names);
    // Each one's pictures are numbered from 1000 × its place on (the file
    // ends after two seconds; its last picture stays).
    let path = |n: &str, what: &str| dir.path().join(format!("{n}-{what}.y4m"));
    for (i, n) in names.iter().enumerate() {
        let mut w = kith_media::y4m::Y4mWriter::create(&path(n, "in")).unwrap();
        for f in 0..60 {
            w.write(&synthetic(1000 * (i as u32 + 1) + f, WIDTH, HEIGHT))
                .unwrap();
        }
        w.flush().unwrap();
    }
    let start = |i: usize| {
        let (input, output) = (path(names[i], "in"), path(names[i], "out"));
        let out = people[i].0.kith([
            "call",
            &room,
            "--video",
            "--video-in",
            input.to_str().unwrap(),
            "--video-out",
            output.to_str().unwrap(),
        ]);
        assert_ok(&out).trim().to_owned()
    };
    let id = everyone_joins(&people, &names, &room, start);
    let full_mesh = || people.iter().all(|(p, ..)| linked(p, &id).len() == 3);
    assert!(wait_until(WAIT, full_mesh), "no full mesh");
    // Every one takes every other's full layer and decodes its frames.
    let seeing = |p: &Profile| {
        call_of(p, &id).is_some_and(|c| {
            let from = c["video_from"].as_array().cloned().unwrap_or_default();
            from.len() == 3
                && from
                    .iter()
                    .all(|f| f["layer"] == 1 && f["frames"].as_u64().unwrap_or(0) >= 30)
        })
    };
    let all_seeing = wait_until(WAIT, || people.iter().all(|(p, ..)| seeing(p)));
    let states: Vec<_> = people.iter().map(|(p, ..)| call_of(p, &id)).collect();
    for (i, s) in states.iter().enumerate() {
        eprintln!("{}: {}", names[i], s.as_ref().unwrap());
    }
    assert!(all_seeing, "not everyone sees the others");
    for (i, s) in states.iter().enumerate() {
        let s = s.as_ref().unwrap();
        assert_eq!(s["video"], true, "{}", names[i]);
        assert!(
            s["video_frames_sent"].as_u64().unwrap() > 30,
            "{}",
            names[i]
        );
        assert!(s["video_kbps"].as_u64().unwrap() > 0, "{}", names[i]);
        assert_eq!(s["bad_datagrams"], 0, "{}", names[i]);
    }
    for (p, ..) in &people {
        assert_ok(&p.kith(["call", "hangup"]));
    }
    // What each showed: pictures of the others (numbered in their ranges),
    // none of its own.
    for (i, n) in names.iter().enumerate() {
        let mut r = kith_media::y4m::Y4mReader::open(&path(n, "out")).unwrap();
        let mut whose = std::collections::BTreeMap::<u32, usize>::new();
        while let Some(p) = r.next_picture().unwrap() {
            if let Some(m) = mark::read(&p) {
                *whose.entry(m / 1000).or_default() += 1;
            }
        }
        eprintln!("{n} showed pictures of senders (by 1000s): {whose:?}");
        let shown: usize = whose.values().sum();
        assert!(shown > 30, "{n} showed {shown} pictures");
        assert!(!whose.contains_key(&(i as u32 + 1)), "{n} showed its own");
        assert!(
            whose.keys().all(|k| (1..=4).contains(k)),
            "{n}: pictures of no one: {whose:?}"
        );
    }
}

/// Nine members in a video call: beyond a mesh, so all but the two
/// forwarders send their video through one, a single copy of each layer
/// taken. Each forwarder opens its clients' pieces and passes them on only
/// to those that asked it for that layer. Every participant decodes the
/// small layer of all eight others (no one speaks, so no one is featured),
/// and a client sends a fraction of what a forwarder sends.
#[test]
fn nine_members_see_each_other_through_the_forwarders() {
    use kith_media::video::synthetic;
    let _media = one_media_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let n = 9usize;
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let people = daemons(&names);
    let room = room_of(&people, &names);
    // Small pictures (160×120, 5 s, then the last one stays): nine
    // daemons each decoding eight senders stay cheap on two cores.
    let input = |i: usize| dir.path().join(format!("p{i}-in.y4m"));
    for i in 0..n {
        let mut w = kith_media::y4m::Y4mWriter::create(&input(i)).unwrap();
        for f in 0..150 {
            w.write(&synthetic(1000 * (i as u32 + 1) + f, 160, 120))
                .unwrap();
        }
        w.flush().unwrap();
    }
    let start = |i: usize| {
        let file = input(i);
        let out = people[i].0.kith([
            "call",
            &room,
            "--video",
            "--video-in",
            file.to_str().unwrap(),
        ]);
        assert_ok(&out).trim().to_owned()
    };
    let id = everyone_joins(&people, &names, &room, start);
    let formed = || forwarded_by_two(&people, &id);
    assert!(wait_until(WAIT, formed), "the call never formed");
    // Each decodes frames of every other at the small layer.
    let seeing = |p: &Profile| {
        call_of(p, &id).is_some_and(|c| {
            let from = c["video_from"].as_array().cloned().unwrap_or_default();
            from.len() == n - 1
                && from
                    .iter()
                    .all(|f| f["layer"] == 0 && f["frames"].as_u64().unwrap_or(0) >= 20)
        })
    };
    let all_seeing = wait_until(WAIT, || people.iter().all(|(p, ..)| seeing(p)));
    let states: Vec<serde_json::Value> = people
        .iter()
        .map(|(p, ..)| call_of(p, &id).unwrap())
        .collect();
    for (i, s) in states.iter().enumerate() {
        eprintln!(
            "{}: forwarder {} forwarding for {} video {} kbit/s, sent {} lost {} keys asked {} bad {} stale {} forged {} replayed {}; from {}",
            names[i],
            s["forwarder"].as_str().map_or("-", |d| &d[..8]),
            s["forwarding_for"],
            s["video_kbps"],
            s["video_frames_sent"],
            s["video_frames_lost"],
            s["video_keys_asked"],
            s["bad_datagrams"],
            s["frames_stale_key"],
            s["frames_forged"],
            s["frames_replayed"],
            s["video_from"]
        );
    }
    assert!(all_seeing, "not everyone sees the others");
    // A client sends one copy; a forwarder sends its own to eight.
    let rate = |forwarded: bool| {
        let v: Vec<f64> = states
            .iter()
            .filter(|s| s["forwarder"].is_string() == forwarded)
            .map(|s| s["video_kbps"].as_f64().unwrap_or(0.0))
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (client, forwarder) = (rate(true), rate(false));
    eprintln!("video sent, mean kbit/s: a client {client:.0}, a forwarder {forwarder:.0}");
    assert!(
        client > 0.0 && client * 3.0 < forwarder,
        "a client sends {client:.0} kbit/s of video, a forwarder {forwarder:.0}"
    );
    // Nothing bad but a few frames that came both directly and through a
    // forwarder while a participant turned from one to the other (counted
    // as replays, not held against either link).
    for (i, s) in states.iter().enumerate() {
        let (bad, replayed) = (
            s["bad_datagrams"].as_u64().unwrap(),
            s["frames_replayed"].as_u64().unwrap(),
        );
        assert_eq!(bad - replayed, 0, "{}", names[i]);
        assert!(replayed < 50, "{}: {replayed} replayed", names[i]);
    }
    for (p, ..) in &people {
        assert_ok(&p.kith(["call", "hangup"]));
    }
}

/// Four members in a call, in a network namespace: what Bob sends is
/// policed to 24 kB/s once the mesh formed (three copies of his frames and
/// his acknowledgements take about 30, one copy about 13). His links lose
/// what he sends beyond that; he measures it, says it in the room, and
/// every participant computes the same plan: he sends through Dave (whose
/// daemon runs `--always-on`, so he forwards however the call's order
/// falls), the others stay a mesh. Everyone hears the three others again, Bob too.
#[test]
fn a_member_whose_uplink_cannot_carry_the_mesh_sends_through_the_always_on_device() {
    let _media = one_media_test_at_a_time();
    let Some(net) = Loopback::new("up") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let names = ["alice", "bob", "carol", "dave"];
    let freqs = [440.0, 550.0, 660.0, 770.0];
    let people: Vec<(Profile, Ids, Daemon)> = names
        .iter()
        .map(|n| {
            let p = Profile::new();
            let ids = p.init(n);
            let extra: &[&str] = if *n == "dave" { &["--always-on"] } else { &[] };
            let d = kith_tests::daemon_in_netns_with(
                &p,
                &net.ns,
                "127.0.0.1:0",
                &[("KITH_LOG", "info,kith_app::daemon::conf=debug")],
                extra,
            );
            (p, ids, d)
        })
        .collect();
    let room = room_of(&people, &names);
    let (id, outs) =
        everyone_joins_with_tones(&people, &names, &room, dir.path(), (&freqs, 6_000.0));
    let full_mesh = || people.iter().all(|(p, ..)| linked(p, &id).len() == 3);
    assert!(wait_until(WAIT, full_mesh), "no full mesh");
    // Dave says he is always on; with everyone's uplink good, a mesh.
    assert!(
        wait_until(WAIT, || call_of(&people[3].0, &id)
            .is_some_and(|c| c["always_on"] == true)),
        "dave never said he is always on"
    );
    std::thread::sleep(Duration::from_secs(3));
    for (p, ..) in &people {
        let c = call_of(p, &id).unwrap();
        assert!(c["forwarder"].is_null(), "{c}");
        assert_eq!(c["uplink_kbps"], 0, "{c}");
    }

    net.police(port_of(&people[1].0), 24);
    let dave = people[3].1.device.as_str();
    let through_dave = || {
        let bob = call_of(&people[1].0, &id);
        let dave_serves = call_of(&people[3].0, &id).is_some_and(|c| c["forwarding_for"] == 1);
        bob.is_some_and(|c| c["forwarder"] == dave && c["uplink_kbps"].as_u64() > Some(0))
            && dave_serves
    };
    let formed = wait_until(WAIT, through_dave);
    let states: Vec<_> = people.iter().map(|(p, ..)| call_of(p, &id)).collect();
    for (i, s) in states.iter().enumerate() {
        eprintln!("{}: {}", names[i], s.as_ref().unwrap());
    }
    if !formed || std::env::var_os("KITH_TEST_LOGS").is_some() {
        for (i, (_, _, d)) in people.iter().enumerate() {
            for line in d.log().lines().filter(|l| l.contains("conf{")) {
                eprintln!("{}'s log: {line}", names[i]);
            }
        }
    }
    assert!(formed, "bob does not send through dave");
    for i in [0usize, 2, 3] {
        let c = states[i].as_ref().unwrap();
        assert!(c["forwarder"].is_null(), "{}: {c}", names[i]);
        assert_eq!(c["uplink_kbps"], 0, "{}: {c}", names[i]);
    }
    // Some seconds through the forwarder, then everyone leaves.
    std::thread::sleep(Duration::from_secs(8));
    for (p, ..) in &people {
        assert_ok(&p.kith(["call", "hangup"]));
    }
    // The last six seconds each heard: the three others, not itself.
    each_heard_the_others(&outs, &names, &freqs, 6);
}

/// Four members in a video call, in a network namespace, each sending the
/// moving test picture: once the mesh formed and each takes the others'
/// full layer, what arrives at Bob is policed to 64 kB/s (three full
/// layers take about 300, three small ones and the audio about 80). He steps down to the small layers, and when
/// they still lose frames over every sender he takes fewer senders, and
/// the pictures of those he keeps come whole; the others still take all
/// three. Healed, he takes all three again.
#[test]
fn a_member_whose_downlink_cannot_carry_every_sender_takes_fewer() {
    let _media = one_media_test_at_a_time();
    let Some(net) = Loopback::new("down") else {
        return;
    };
    let names = ["alice", "bob", "carol", "dave"];
    let people: Vec<(Profile, Ids, Daemon)> = names
        .iter()
        .map(|n| {
            let p = Profile::new();
            let ids = p.init(n);
            let d = kith_tests::daemon_in_netns_with(
                &p,
                &net.ns,
                "127.0.0.1:0",
                &[("KITH_LOG", "info,kith_app::daemon::conf=debug")],
                &[],
            );
            (p, ids, d)
        })
        .collect();
    let room = room_of(&people, &names);
    let start = |i: usize| {
        assert_ok(&people[i].0.kith(["call", &room, "--video"]))
            .trim()
            .to_owned()
    };
    let id = everyone_joins(&people, &names, &room, start);
    let taking = |p: &Profile| -> Vec<(String, u64, u64)> {
        call_of(p, &id)
            .map(|c| {
                c["video_from"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|f| {
                        (
                            f["device"].as_str().unwrap_or("").to_owned(),
                            f["layer"].as_u64().unwrap_or(9),
                            f["frames"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let full_of_all = |p: &Profile| {
        let t = taking(p);
        t.len() == 3 && t.iter().all(|(_, l, f)| *l == 1 && *f >= 20)
    };
    assert!(
        wait_until(WAIT, || people.iter().all(|(p, ..)| full_of_all(p))),
        "not everyone takes the others' full layer"
    );
    let bob = &people[1].0;
    net.police_to(port_of(bob), 64);
    let fewer = wait_until(WAIT, || {
        let t = taking(bob);
        !t.is_empty() && t.len() < 3 && t.iter().all(|(_, l, _)| *l == 0)
    });
    let dump = |why: &str| {
        for (i, (p, _, d)) in people.iter().enumerate() {
            eprintln!("{} ({why}): {}", names[i], call_of(p, &id).unwrap());
            if std::env::var_os("KITH_TEST_LOGS").is_some() {
                for line in d
                    .log()
                    .lines()
                    .filter(|l| l.contains("video") || l.contains("link"))
                {
                    eprintln!("{}'s log: {line}", names[i]);
                }
            }
        }
    };
    if !fewer {
        dump("never fewer");
    }
    assert!(fewer, "bob never took fewer senders");
    // Once it settles, what he keeps comes: over some 5 s (within a
    // minute), fewer than three senders, each with at least 2 pictures a
    // second (its small layer has 15).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let before = taking(bob);
        std::thread::sleep(Duration::from_secs(5));
        let after = taking(bob);
        let kept: Vec<(String, u64)> = after
            .iter()
            .filter_map(|(d, _, f)| {
                let was = before.iter().find(|(b, ..)| b == d)?.2;
                Some((d[..8].to_owned(), f.saturating_sub(was)))
            })
            .collect();
        eprintln!(
            "bob took {} of 3 senders; pictures decoded over 5 s: {kept:?}",
            after.len()
        );
        let good = !kept.is_empty()
            && after.len() < 3
            && kept.len() == after.len()
            && kept.iter().all(|(_, n)| *n >= 10);
        if good || std::time::Instant::now() >= deadline {
            break good;
        }
    };
    if !settled || std::env::var_os("KITH_TEST_LOGS").is_some() {
        dump("kept");
    }
    assert!(settled, "what bob kept never came whole");
    // The others' downlinks are not limited: they still take all three.
    for i in [0usize, 2, 3] {
        assert_eq!(taking(&people[i].0).len(), 3, "{}", names[i]);
    }
    // Healed, he takes one more each 10 clean seconds.
    net.heal();
    let all_again = wait_until(WAIT, || taking(bob).len() == 3);
    if !all_again {
        dump("healed");
    }
    assert!(all_again, "bob never took all three again");
    for (p, ..) in &people {
        assert_ok(&p.kith(["call", "hangup"]));
    }
}
