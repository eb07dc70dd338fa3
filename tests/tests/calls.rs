//! Calls between real daemons through the CLI (`shared/CLI.md` "Calls"):
//! a call rings on every device of the callee, the first answer takes it
//! and the other device shows where it was answered, hanging up ends it
//! everywhere, and the call's record is the same in the conversation on
//! every device of both people. Declines, busy and bad input too. Audio
//! (WAV files in place of the sound card) goes both ways at once and
//! arrives recognisably.

#![allow(clippy::unwrap_used)]

use kith_tests::{
    Daemon, Ids, Loopback, Profile, assert_fails_cleanly, assert_ok, pair, port_of, share_of, tone,
    wait_until,
};
use std::time::Duration;

/// The tests that judge what was heard run one at a time: each runs two
/// to four daemons coding and playing audio in real time (debug builds),
/// and several at once on two cores starve each other's playout clocks
/// (seen in a full run: a 160 ms gap where alone it is 20 ms).
fn one_media_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static MEDIA: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MEDIA.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long anything that travels between daemons may take.
const WAIT: Duration = Duration::from_secs(60);

fn user(name: &str) -> (Profile, Ids, Daemon) {
    let p = Profile::new();
    let ids = p.init(name);
    let d = p.spawn_daemon_shared();
    (p, ids, d)
}

/// Alice and Bob, each with a daemon (Bob's started with `bob_args`),
/// each the other's contact, Bob's device online at Alice.
fn alice_and_bob(bob_args: &[&str]) -> (Profile, Ids, Daemon, Profile, Ids, Daemon) {
    let (alice, ia, da) = user("alice");
    let bob = Profile::new();
    let ib = bob.init("bob");
    let db = bob.spawn_daemon_with(bob_args);
    pair(&alice, &bob);
    wait_devices_online(&alice, &ib.account, &[&ib.device]);
    (alice, ia, da, bob, ib, db)
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
    // Alice's second device: not rung, but told where the call is on.
    let alice2 = Profile::new();
    let _ia2 = alice2.join(&alice, "alice-laptop");
    let _da2 = alice2.spawn_daemon_shared();
    let everyone = [&alice, &bob1, &bob2, &alice2];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    wait_devices_online(&alice, b, &[&ib.device, &ib2.device]);
    let linked = wait_until(WAIT, || {
        alice.status_json()["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == _ia2.device.as_str()))
    });
    assert!(linked, "Alice's two devices never linked");

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
    // Alice's other device says the call is on her first.
    wait_state(&alice2, "A2", &id, "answered-elsewhere", &everyone);
    assert_eq!(
        state(&alice2, &id).and_then(|s| s.1),
        Some(ia.device.clone()),
        "A2 says where the call is on"
    );

    // B2 hangs up: it ends everywhere.
    assert_ok(&bob2.kith(["call", "hangup"]));
    wait_state(&alice, "A", &id, "ended", &everyone);
    wait_state(&bob2, "B2", &id, "ended", &everyone);

    // The same record on every device of both people.
    for (who, p, target) in [
        ("A", &alice, b),
        ("A2", &alice2, b),
        ("B1", &bob1, a),
        ("B2", &bob2, a),
    ] {
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

    // A contact Bob marked compromised still rings, flagged, and a plain
    // answer is refused with the reason; `--anyway` answers.
    assert_ok(&bob.kith(["contact", "trust", &ic.account, "compromised"]));
    let id = assert_ok(&carol.kith(["call", b])).trim().to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_eq!(call_of(&bob, &id)["compromised"], true);
    let status = assert_ok(&bob.kith(["call", "status"]));
    assert!(status.contains("marked compromised"), "{status}");
    let refused = assert_fails_cleanly(&bob.kith(["call", "answer"]));
    assert!(refused.contains("--anyway"), "{refused}");
    assert_eq!(call_of(&bob, &id)["state"], "incoming");
    assert_ok(&bob.kith(["call", "answer", "--anyway"]));
    wait_state(&carol, "C", &id, "active", &everyone);
    assert_ok(&carol.kith(["call", "hangup"]));
    wait_state(&bob, "B", &id, "ended", &everyone);
}

/// A 48 kHz tone sweeping from `f0` to `f1` Hz over `secs`, with a slow
/// swell: speech-band, and unlike any other sweep at any shift.
fn sweep(f0: f64, f1: f64, secs: f64) -> Vec<i16> {
    let n = (secs * 48_000.0) as usize;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 48_000.0;
            let f = f0 + (f1 - f0) * t / secs;
            phase += 2.0 * std::f64::consts::PI * f / 48_000.0;
            let env = 0.6 + 0.3 * (2.0 * std::f64::consts::PI * 2.0 * t).sin();
            (env * 10_000.0 * phase.sin()) as i16
        })
        .collect()
}

/// Normalised correlation of `a[ai..ai+n]` with `b[bi..bi+n]` taking every
/// `step`-th sample.
fn corr(a: &[i16], ai: usize, b: &[i16], bi: usize, n: usize, step: usize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let (x, y) = (f64::from(a[ai + i]), f64::from(b[bi + i]));
        ab += x * y;
        aa += x * x;
        bb += y * y;
        i += step;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// How far from its own index `sent`'s sound may be found in `heard`:
/// from half a second early to 2 s late. Late: the call's delay (the
/// playout may also shift by a frame now and then). Early: each side's
/// sound keeps to the clock of its own first flow, so a callee that
/// started its media after the caller writes the caller's words at a
/// lower index than they had in the caller's file.
const OFFSETS: std::ops::RangeInclusive<i64> = -24_000..=96_000;

/// The best correlation of `sent[start..start + window]` with `heard` at
/// an offset in `lags` (first every `step`-th sample and offset, then
/// exactly near the best), and that offset.
fn best_offset(
    (sent, start): (&[i16], usize),
    heard: &[i16],
    window: usize,
    lags: std::ops::RangeInclusive<i64>,
    step: usize,
) -> (f64, i64) {
    let at = |lag: i64| {
        usize::try_from(start as i64 + lag)
            .ok()
            .filter(|&i| i + window <= heard.len())
    };
    let (mut best, mut best_lag) = (0.0f64, 0);
    for lag in lags.step_by(step) {
        if let Some(i) = at(lag) {
            let c = corr(sent, start, heard, i, window, step);
            if c > best {
                (best, best_lag) = (c, lag);
            }
        }
    }
    for lag in best_lag - step as i64..=best_lag + step as i64 {
        if let Some(i) = at(lag) {
            best = best.max(corr(sent, start, heard, i, window, 1));
        }
    }
    (best, best_lag)
}

/// How recognisably `sent` is in `heard`: for each half second of `sent`,
/// the best correlation with `heard` at any of [`OFFSETS`]; the median
/// over the windows.
fn recognisable(sent: &[i16], heard: &[i16]) -> f64 {
    const WINDOW: usize = 24_000;
    let mut scores = Vec::new();
    let mut start = 0;
    while start + WINDOW <= sent.len() {
        let (best, lag) = best_offset((sent, start), heard, WINDOW, OFFSETS, 4);
        if std::env::var_os("KITH_DEBUG_LAGS").is_some() {
            eprintln!("window {start}: best {best:.3} at offset {lag}");
        }
        scores.push(best);
        start += WINDOW;
    }
    scores.sort_by(f64::total_cmp);
    scores.get(scores.len() / 2).copied().unwrap_or(0.0)
}

#[test]
fn audio_goes_both_ways_at_once_and_arrives_recognisably() {
    let _media = one_media_test_at_a_time();
    let (alice, _ia, _da) = user("alice");
    let (bob, ib, _db) = user("bob");
    pair(&alice, &bob);
    wait_devices_online(&alice, &ib.account, &[&ib.device]);
    let run = sweeps_both_ways(&alice, &bob, &ib.account, 4.0);
    assert_eq!(run.a_status["media"], true, "{}", run.a_status);
    // Not merely sound: the other side's sweep, not one's own.
    let [to_b, to_a, echo_a, echo_b] = run.judged(recognisable);
    eprintln!(
        "recognisable: A→B {to_b:.3}, B→A {to_a:.3}; own sweep heard {echo_a:.3}, {echo_b:.3}"
    );
    assert!(to_b > 0.8 && to_a > 0.8, "A→B {to_b}, B→A {to_a}");
    assert!(
        echo_a < 0.5 && echo_b < 0.5,
        "own sweeps heard: {echo_a}, {echo_b}"
    );
    // No byte of the call's media in either profile folder.
    for (who, p, said) in [("A", &alice, &run.a_says), ("B", &bob, &run.b_says)] {
        let needle: Vec<u8> = said[48_000..48_010]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        for (file, bytes) in p.snapshot() {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{who}: call audio in {}",
                file.display()
            );
        }
    }
}

/// What a call with a sweep each way said, heard and showed.
struct Sweeps {
    a_says: Vec<i16>,
    b_says: Vec<i16>,
    a_heard: Vec<i16>,
    b_heard: Vec<i16>,
    a_status: serde_json::Value,
    b_status: serde_json::Value,
}

/// Runs a call from `alice` to `bob` in which each sends a sweep of
/// `secs` from a WAV file and records what it hears to another; each
/// side's `call status` is taken just before Alice hangs up.
fn sweeps_both_ways(alice: &Profile, bob: &Profile, b: &str, secs: f64) -> Sweeps {
    sweeps_both_ways_then(alice, bob, b, secs, |_| {})
}

impl Sweeps {
    /// `score` of what each side said in what the other heard (A→B, B→A),
    /// and in what it heard itself (A, B).
    fn judged(&self, score: fn(&[i16], &[i16]) -> f64) -> [f64; 4] {
        [
            score(&self.a_says, &self.b_heard),
            score(&self.b_says, &self.a_heard),
            score(&self.a_says, &self.a_heard),
            score(&self.b_says, &self.b_heard),
        ]
    }
}

/// [`sweeps_both_ways`], running `then` with the call's id once it is on.
fn sweeps_both_ways_then(
    alice: &Profile,
    bob: &Profile,
    b: &str,
    secs: f64,
    then: impl FnOnce(&str),
) -> Sweeps {
    let (a_says, b_says) = (sweep(300.0, 2_500.0, secs), sweep(2_400.0, 250.0, secs));
    both_ways(alice, bob, b, (a_says, b_says), then)
}

/// Runs a call from `alice` to `bob` in which each sends its sound from a
/// WAV file for as long as the longer lasts (and a second more) and
/// records what it hears to another; each side's `call status` is taken
/// just before Alice hangs up; `then` runs with the call's id once it is
/// on.
fn both_ways(
    alice: &Profile,
    bob: &Profile,
    b: &str,
    (a_says, b_says): (Vec<i16>, Vec<i16>),
    then: impl FnOnce(&str),
) -> Sweeps {
    let everyone = [alice, bob];
    let secs = a_says.len().max(b_says.len()) as f64 / 48_000.0;
    let dir = alice.scratch("audio");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    kith_media::wav::write(std::path::Path::new(&path("a_in.wav")), &a_says).unwrap();
    kith_media::wav::write(std::path::Path::new(&path("b_in.wav")), &b_says).unwrap();
    let id = assert_ok(&alice.kith([
        "call",
        b,
        "--audio-in",
        &path("a_in.wav"),
        "--audio-out",
        &path("a_heard.wav"),
    ]))
    .trim()
    .to_owned();
    wait_state(bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith([
        "call",
        "answer",
        "--audio-in",
        &path("b_in.wav"),
        "--audio-out",
        &path("b_heard.wav"),
    ]));
    wait_state(alice, "A", &id, "active", &everyone);
    then(&id);
    std::thread::sleep(Duration::from_secs_f64(secs + 1.0));
    let status = |p: &Profile| calls(p).into_iter().find(|c| c["id"] == id).unwrap();
    let (a_status, b_status) = (status(alice), status(bob));
    assert_eq!(
        (a_status["state"].as_str(), b_status["state"].as_str()),
        (Some("active"), Some("active"))
    );
    assert_ok(&alice.kith(["call", "hangup"]));
    let read =
        |name: &str| kith_media::wav::read(std::path::Path::new(&path(name)), usize::MAX).unwrap();
    // Read at once: `hangup` returns once the sound is written out (it
    // once returned before, and this read found the file empty).
    let a_heard = read("a_heard.wav");
    wait_state(bob, "B", &id, "ended", &everyone);
    Sweeps {
        a_says,
        b_says,
        a_heard,
        b_heard: read("b_heard.wav"),
        a_status,
        b_status,
    }
}

/// `text` spoken by espeak-ng (`.ci/run` installs it), at 48 kHz.
fn speech(text: &str, voice: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "--stdout", text])
        .output()
        .expect("espeak-ng is needed for this test (apt-get install espeak-ng)");
    assert!(out.status.success(), "espeak-ng failed");
    // RIFF chunks: find `fmt ` (the rate) and `data` (16-bit mono PCM).
    let b = out.stdout;
    let (mut at, mut rate, mut pcm) = (12usize, 22_050u32, Vec::new());
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &b[at + 8..(at + 8 + len).min(b.len())];
        if id == b"fmt " {
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            pcm = body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        // espeak-ng writing to a pipe leaves the lengths unset.
        if len == 0 || len == u32::MAX as usize || id == b"data" && pcm.is_empty() {
            pcm = b[at + 8..]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            break;
        }
        at += 8 + len + (len & 1);
    }
    assert!(pcm.len() > 1000, "espeak-ng gave no speech");
    // Linear interpolation to 48 kHz.
    let n = pcm.len() as u64 * 48_000 / u64::from(rate);
    (0..n)
        .map(|j| {
            let x = j as f64 * f64::from(rate) / 48_000.0;
            let (i, frac) = (x as usize, x.fract());
            let a = f64::from(pcm[i.min(pcm.len() - 1)]);
            let b = f64::from(pcm[(i + 1).min(pcm.len() - 1)]);
            (a + (b - a) * frac) as i16
        })
        .collect()
}

/// [`recognisable`] over the windows of `sent` that hold speech (a
/// quarter of its loudest window's energy or more), at 40 ms windows.
fn speech_recognisable(sent: &[i16], heard: &[i16]) -> f64 {
    const WINDOW: usize = 1_920 * 5;
    let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let loudest = sent.chunks(WINDOW).map(energy).fold(0.0f64, f64::max);
    // The lag of the whole: found once on the loudest stretch, then each
    // window scored near it.
    let mut scores = Vec::new();
    let mut start = 0;
    let mut lag_hint: Option<i64> = None;
    while start + WINDOW <= sent.len() {
        if energy(&sent[start..start + WINDOW]) < loudest / 4.0 {
            start += WINDOW;
            continue;
        }
        let range = match lag_hint {
            Some(l) => l - 960..=l + 960,
            None => OFFSETS,
        };
        let (best, best_lag) = best_offset((sent, start), heard, WINDOW, range, 2);
        lag_hint.get_or_insert(best_lag);
        scores.push(best);
        start += WINDOW;
    }
    scores.sort_by(f64::total_cmp);
    scores.get(scores.len() / 2).copied().unwrap_or(0.0)
}

#[test]
fn speech_goes_both_ways_at_once_and_arrives_recognisably() {
    let _media = one_media_test_at_a_time();
    let (alice, _ia, _da, bob, ib, _db) = alice_and_bob(&[]);
    let a_says = speech(
        "The quick brown fox jumps over the lazy dog, and then it runs away.",
        "en",
    );
    let b_says = speech(
        "Peer to peer calls need no server in between, only the two devices.",
        "en+f3",
    );
    let run = both_ways(&alice, &bob, &ib.account, (a_says, b_says), |_| {});
    let [to_b, to_a, own_a, own_b] = run.judged(speech_recognisable);
    eprintln!(
        "speech (espeak-ng) recognisable: A→B {to_b:.3}, B→A {to_a:.3}; own speech heard {own_a:.3}, {own_b:.3}"
    );
    assert!(to_b > 0.7 && to_a > 0.7, "A→B {to_b}, B→A {to_a}");
    assert!(
        own_a < 0.4 && own_b < 0.4,
        "own speech heard: {own_a}, {own_b}"
    );
}

#[test]
fn ten_percent_loss_leaves_no_gap_over_60_ms() {
    let _media = one_media_test_at_a_time();
    let alice = Profile::new();
    alice.init("alice");
    let _da = alice.spawn_daemon_with(&["--danger-media-loss-percent", "10"]);
    let bob = Profile::new();
    let ib = bob.init("bob");
    let _db = bob.spawn_daemon_with(&["--danger-media-loss-percent", "10"]);
    pair(&alice, &bob);
    wait_devices_online(&alice, &ib.account, &[&ib.device]);
    let run = sweeps_both_ways(&alice, &bob, &ib.account, 5.0);
    let [to_b, to_a, ..] = run.judged(recognisable);
    let (sa, sb) = (&run.a_status, &run.b_status);
    eprintln!(
        "10% loss: recognisable A→B {to_b:.3}, B→A {to_a:.3}; longest gaps {} / {} ms; concealed {} / {}",
        sb["longest_gap_ms"], sa["longest_gap_ms"], sb["loss"], sa["loss"]
    );
    for (who, s) in [("A", sa), ("B", sb)] {
        let gap = s["longest_gap_ms"].as_u64().unwrap_or(u64::MAX);
        assert!(gap <= 60, "{who}: a gap of {gap} ms: {s}");
    }
    assert!(to_b > 0.6 && to_a > 0.6, "A→B {to_b}, B→A {to_a}");
}

#[test]
fn a_muted_device_sends_silence_and_the_call_goes_on() {
    let _media = one_media_test_at_a_time();
    let (alice, _ia, _da) = user("alice");
    let (bob, ib, _db) = user("bob");
    pair(&alice, &bob);
    wait_devices_online(&alice, &ib.account, &[&ib.device]);
    assert_fails_cleanly(&alice.kith(["call", "mute"]));
    let run = sweeps_both_ways_then(&alice, &bob, &ib.account, 3.0, |id| {
        assert_ok(&alice.kith(["call", "mute", id]));
    });
    assert_eq!(run.a_status["muted"], true, "{}", run.a_status);
    let [to_b, to_a, ..] = run.judged(recognisable);
    eprintln!("muted A: A→B {to_b:.3}, B→A {to_a:.3}");
    assert!(
        to_b < 0.5,
        "Bob heard Alice's sweep while she was muted: {to_b}"
    );
    assert!(to_a > 0.8, "Alice stopped hearing Bob: {to_a}");
}

/// Call `id`'s `kith call status --json` entry on `p`.
fn call_of(p: &Profile, id: &str) -> serde_json::Value {
    calls(p)
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_default()
}

#[test]
fn a_cut_of_3_s_resumes_the_call_and_one_of_15_s_ends_it_on_both_sides() {
    let _media = one_media_test_at_a_time();
    let Some(net) = Loopback::new("cut") else {
        return;
    };
    let alice = Profile::new();
    let ia = alice.init("alice");
    let _da = kith_tests::daemon_in_netns(&alice, &net.ns, "127.0.0.1:0", &[]);
    let bob = Profile::new();
    let ib = bob.init("bob");
    let _db = kith_tests::daemon_in_netns(&bob, &net.ns, "127.0.0.1:0", &[]);
    pair(&alice, &bob);
    wait_devices_online(&alice, &ib.account, &[&ib.device]);
    let everyone = [&alice, &bob];
    let b_port = port_of(&bob);

    // 3 s without a packet either way: both sides notice the silence, the
    // caller dials again once the path is back, and the call goes on.
    // Sound keeps to the clock, as on any phone: what was said during the
    // cut is lost, what is said after the call is back is heard.
    let (on, back_at) = (std::cell::Cell::new(None), std::cell::Cell::new(None));
    let run = sweeps_both_ways_then(&alice, &bob, &ib.account, 10.0, |id| {
        on.set(Some(std::time::Instant::now()));
        std::thread::sleep(Duration::from_secs(1));
        net.cut(b_port);
        std::thread::sleep(Duration::from_secs(3));
        net.heal();
        let back = wait_until(Duration::from_secs(20), || {
            [&alice, &bob].iter().all(|p| {
                let c = call_of(p, id);
                c["state"] == "active" && c["media"] == true && c["resumed"].as_u64() >= Some(1)
            })
        });
        assert!(
            back,
            "the call did not resume: {} / {}\n{}{}",
            call_of(&alice, id),
            call_of(&bob, id),
            alice.daemon_logs(),
            bob.daemon_logs()
        );
        back_at.set(Some(std::time::Instant::now()));
    });
    // From half a second after both sides were back (the input and what
    // was heard are on one clock, the call's delay apart).
    let away = back_at.get().unwrap() - on.get().unwrap();
    let from = ((away.as_secs_f64() + 0.5) * 48_000.0) as usize;
    let after = |says: &[i16], heard: &[i16]| {
        recognisable(
            &says[from.min(says.len())..],
            &heard[from.min(heard.len())..],
        )
    };
    let (to_b, to_a) = (
        after(&run.a_says, &run.b_heard),
        after(&run.b_says, &run.a_heard),
    );
    eprintln!(
        "3 s cut: resumed {} / {}, {away:?} after the call was on; after that, recognisable A→B {to_b:.3}, B→A {to_a:.3}",
        run.a_status["resumed"], run.b_status["resumed"]
    );
    assert!(to_b > 0.6 && to_a > 0.6, "A→B {to_b}, B→A {to_a}");

    // 15 s: the call waits 10 s for the path, then ends on both sides as
    // lost, and the caller's record reaches Bob once the path is back.
    let id = assert_ok(&alice.kith(["call", &ib.account]))
        .trim()
        .to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith(["call", "answer"]));
    wait_state(&alice, "A", &id, "active", &everyone);
    net.cut(b_port);
    let cut_at = std::time::Instant::now();
    let ended = |p: &Profile| {
        let c = call_of(p, &id);
        c["state"] == "ended" && c["ended"] == "link-lost"
    };
    let both = wait_until(Duration::from_secs(30), || ended(&alice) && ended(&bob));
    let took = cut_at.elapsed();
    let (sa, sb) = (call_of(&alice, &id), call_of(&bob, &id));
    std::thread::sleep(Duration::from_secs(15).saturating_sub(took));
    net.heal();
    assert!(both, "not ended as lost on both sides: {sa} / {sb}");
    eprintln!("15 s cut: ended as link-lost on both sides {took:?} after the cut");
    for (who, p, target) in [("A", &alice, &ib.account), ("B", &bob, &ia.account)] {
        let ok = wait_until(WAIT, || {
            call_entries(p, target)
                .iter()
                .filter(|e| {
                    e["text"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("[call] answered")
                })
                .count()
                == 2
        });
        assert!(ok, "{who}: {:?}", call_entries(p, target));
    }
}

/// Bob's laptop (B2) takes a call, and Bob moves it to his phone (B1)
/// mid-stream: Alice's side switches to B1 without hanging up, what she
/// hears goes from B2's tone to B1's with no silence longer than 500 ms,
/// B2 says where the call went, and the one record of the call (written
/// by Alice's device when she hangs up) is the same on all three devices.
#[test]
fn a_call_moves_to_another_own_device_mid_stream() {
    let _media = one_media_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let wav = |name: &str, samples: &[i16]| {
        let path = dir.path().join(name);
        kith_media::wav::write(&path, samples).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (b2_says, b1_says) = (
        wav("b2.wav", &tone(440.0, 30.0, 8_000.0)),
        wav("b1.wav", &tone(660.0, 30.0, 8_000.0)),
    );
    let a_heard = dir.path().join("a_heard.wav");
    let (alice, ia, _da) = user("alice");
    let bob1 = Profile::new();
    let ib = bob1.init("bob");
    let _db1 = bob1.spawn_daemon_with(&["--audio-in", &b1_says]);
    pair(&alice, &bob1);
    let bob2 = Profile::new();
    let ib2 = bob2.join(&bob1, "bob-laptop");
    let _db2 = bob2.spawn_daemon_shared();
    let everyone = [&alice, &bob1, &bob2];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    wait_devices_online(&alice, b, &[&ib.device, &ib2.device]);

    let id = assert_ok(&alice.kith(["call", b, "--audio-out", a_heard.to_str().unwrap()]))
        .trim()
        .to_owned();
    wait_state(&bob2, "B2", &id, "incoming", &everyone);
    assert_ok(&bob2.kith(["call", "answer", "--audio-in", &b2_says]));
    wait_state(&alice, "A", &id, "active", &everyone);
    wait_state(&bob1, "B1", &id, "answered-elsewhere", &everyone);
    std::thread::sleep(Duration::from_secs(2));

    // Bad moves first: to no such device, to the device itself.
    assert_fails_cleanly(&bob2.kith(["call", "move", "no-such-device"]));
    assert_fails_cleanly(&bob2.kith(["call", "move", &ib2.device]));
    assert_fails_cleanly(&alice.kith(["call", "move", &ib.device]));

    assert_ok(&bob2.kith(["call", "move", &ib.device[..12]]));
    wait_state(&bob1, "B1", &id, "active", &everyone);
    let ok = wait_until(WAIT, || {
        let c = call_of(&alice, &id);
        c["state"] == "active" && c["device"] == ib.device.as_str()
    });
    assert!(
        ok,
        "Alice's side did not switch to B1: {}",
        call_of(&alice, &id)
    );
    wait_state(&bob2, "B2", &id, "ended", &everyone);
    let b2 = call_of(&bob2, &id);
    assert_eq!(
        (b2["ended"].as_str(), b2["device"].as_str()),
        (Some("moved"), Some(ib.device.as_str())),
        "{b2}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(call_of(&bob1, &id)["state"], "active");
    assert_ok(&alice.kith(["call", "hangup"]));
    wait_state(&bob1, "B1", &id, "ended", &everyone);

    // What Alice heard: B2's tone, then B1's, and no silence between
    // longer than 500 ms.
    let heard = kith_media::wav::read(&a_heard, usize::MAX).unwrap();
    let frames: Vec<&[i16]> = heard.chunks_exact(960).collect();
    let loud = |f: &[i16]| f.iter().map(|&v| i32::from(v).abs()).max().unwrap_or(0) > 500;
    let first = frames
        .iter()
        .position(|f| loud(f))
        .expect("Alice heard nothing");
    let last = frames.iter().rposition(|f| loud(f)).unwrap();
    let (mut run, mut longest) = (0usize, 0usize);
    for f in &frames[first..=last] {
        run = if loud(f) { 0 } else { run + 1 };
        longest = longest.max(run);
    }
    let which = |f: &[i16]| (share_of(f, 440.0), share_of(f, 660.0));
    let b2_frames = frames[first..=last]
        .iter()
        .filter(|f| loud(f) && which(f).0 > 0.5)
        .count();
    let b1_frames = frames[first..=last]
        .iter()
        .filter(|f| loud(f) && which(f).1 > 0.5)
        .count();
    eprintln!(
        "move: Alice heard {} ms of B2's tone, {} ms of B1's; longest silence {} ms",
        b2_frames * 20,
        b1_frames * 20,
        longest * 20
    );
    assert!(
        b2_frames >= 50 && b1_frames >= 50,
        "{b2_frames} / {b1_frames}"
    );
    assert!(longest * 20 <= 500, "a silence of {} ms", longest * 20);

    // One record, the same everywhere: answered on B2.
    for (who, p, target) in [("A", &alice, b), ("B1", &bob1, a), ("B2", &bob2, a)] {
        let ok = wait_until(WAIT, || call_entries(p, target).len() == 1);
        assert!(ok, "{who}: {:?}", call_entries(p, target));
        let text = call_entries(p, target)[0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            text.starts_with("[call] answered on ") && text.contains(&ib2.device[..8]),
            "{who}: {text}"
        );
    }
}

/// The caller's side moves (Alice's phone to her laptop): Bob's side
/// switches, the laptop carries the call, and when Bob hangs up the laptop
/// (now holding the caller's side) writes the one record of the call,
/// answered on Bob's device, the same on all three devices.
#[test]
fn the_callers_side_moves_and_the_new_device_records_the_call() {
    let (alice1, ia, _da1) = user("alice");
    let (bob, ib, _db) = user("bob");
    pair(&alice1, &bob);
    let alice2 = Profile::new();
    let ia2 = alice2.join(&alice1, "alice-laptop");
    let _da2 = alice2.spawn_daemon_shared();
    let everyone = [&alice1, &alice2, &bob];
    let (a, b) = (ia.account.as_str(), ib.account.as_str());
    wait_devices_online(&alice1, b, &[&ib.device]);
    wait_devices_online(&bob, a, &[&ia.device, &ia2.device]);

    let id = assert_ok(&alice1.kith(["call", b])).trim().to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith(["call", "answer"]));
    wait_state(&alice1, "A1", &id, "active", &everyone);
    assert_ok(&alice1.kith(["call", "move", "alice-laptop"]));
    wait_state(&alice2, "A2", &id, "active", &everyone);
    let ok = wait_until(WAIT, || call_of(&bob, &id)["device"] == ia2.device.as_str());
    assert!(ok, "Bob's side did not switch: {}", call_of(&bob, &id));
    wait_state(&alice1, "A1", &id, "ended", &everyone);
    assert_eq!(call_of(&alice1, &id)["ended"], "moved");

    assert_ok(&bob.kith(["call", "hangup"]));
    wait_state(&alice2, "A2", &id, "ended", &everyone);
    for (who, p, target) in [("A1", &alice1, b), ("A2", &alice2, b), ("B", &bob, a)] {
        let ok = wait_until(WAIT, || call_entries(p, target).len() == 1);
        assert!(ok, "{who}: {:?}", call_entries(p, target));
        let e = &call_entries(p, target)[0];
        let text = e["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("[call] answered on ") && text.contains(&ib.device[..8]),
            "{who}: {text}"
        );
        assert_eq!(e["author"], a, "{who}: Alice's side records the call");
    }
    // Nothing more arrives (no second record from the device moved from).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(call_entries(&bob, a).len(), 1);
}

/// A contact that rings again and again is refused after five rings in a
/// minute: the sixth call rings nothing and `kith call` says so.
#[test]
fn a_contact_cannot_ring_more_than_five_times_a_minute() {
    let (alice, _ia, _da) = user("alice");
    let (bob, ib, _db) = user("bob");
    pair(&alice, &bob);
    let everyone = [&alice, &bob];
    let b = ib.account.as_str();
    wait_devices_online(&alice, b, &[&ib.device]);
    for _ in 0..5 {
        let id = assert_ok(&alice.kith(["call", b])).trim().to_owned();
        wait_state(&bob, "B", &id, "incoming", &everyone);
        assert_ok(&alice.kith(["call", "hangup", &id]));
        wait_state(&bob, "B", &id, "ended", &everyone);
    }
    let sixth = alice.kith(["call", b]);
    assert_fails_cleanly(&sixth);
    assert!(
        calls(&bob).iter().all(|c| c["state"] == "ended"),
        "a sixth call rang: {:?}",
        calls(&bob)
    );
}

/// The frame numbers drawn in each picture of a Y4M file, and the
/// pictures.
fn pictures(path: &std::path::Path) -> Vec<(u32, kith_media::video::Picture)> {
    let mut r = kith_media::y4m::Y4mReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_picture().unwrap() {
        out.push((kith_media::video::mark::read(&p).unwrap(), p));
    }
    out
}

#[test]
fn a_video_call_shows_each_side_the_others_pictures() {
    use kith_media::video::{HEIGHT, WIDTH, synthetic};
    let _media = one_media_test_at_a_time();
    // Bob's "camera" is not one: he sends the test picture instead.
    let (alice, _ia, _da, bob, ib, _db) = alice_and_bob(&["--camera", "/dev/null"]);
    let everyone = [&alice, &bob];
    let dir = alice.scratch("video");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name);
    // Alice sends two seconds from a file (the last picture stays after
    // it), Bob the test picture the daemon makes without a camera.
    let frames = 60;
    let mut w = kith_media::y4m::Y4mWriter::create(&path("a_in.y4m")).unwrap();
    let sent: Vec<_> = (0..frames)
        .map(|i| synthetic(1000 + i, WIDTH, HEIGHT))
        .collect();
    for p in &sent {
        w.write(p).unwrap();
    }
    w.flush().unwrap();
    let s = |name: &str| path(name).to_str().unwrap().to_owned();
    let id = assert_ok(&alice.kith([
        "call",
        &ib.account,
        "--video-in",
        &s("a_in.y4m"),
        "--video-out",
        &s("a_seen.y4m"),
    ]))
    .trim()
    .to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    let incoming = call_of(&bob, &id);
    assert_eq!(incoming["video"], true, "{incoming}");
    assert_ok(&bob.kith(["call", "answer", "--video", "--video-out", &s("b_seen.y4m")]));
    wait_state(&alice, "A", &id, "active", &everyone);
    std::thread::sleep(Duration::from_secs(4));
    let (a, b) = (call_of(&alice, &id), call_of(&bob, &id));
    eprintln!("video call: A {a}\nB {b}");
    assert_ok(&alice.kith(["call", "hangup"]));
    wait_state(&bob, "B", &id, "ended", &everyone);
    for (who, s) in [("A", &a), ("B", &b)] {
        assert!(s["video_frames_sent"].as_u64().unwrap() > 60, "{who}: {s}");
        assert!(s["video_frames_shown"].as_u64().unwrap() > 60, "{who}: {s}");
        assert!(s["video_kbps"].as_u64().unwrap() > 0, "{who}: {s}");
    }
    // Bob saw Alice's file, in order, each picture close to the one sent.
    let seen = pictures(&path("b_seen.y4m"));
    let marks: Vec<u32> = seen.iter().map(|(n, _)| *n).collect();
    assert!(marks.windows(2).all(|w| w[0] <= w[1]), "{marks:?}");
    let distinct: std::collections::BTreeSet<u32> = marks.iter().copied().collect();
    assert!(
        distinct.len() > 40,
        "B saw {} of A's pictures: {marks:?}",
        distinct.len()
    );
    let psnr: Vec<f64> = seen
        .iter()
        .map(|(n, p)| p.psnr(&sent[usize::try_from(n - 1000).unwrap()]))
        .collect();
    let worst = psnr.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = psnr.iter().sum::<f64>() / psnr.len() as f64;
    eprintln!(
        "A→B: {} pictures shown, PSNR mean {mean:.1} dB, worst {worst:.1} dB",
        seen.len()
    );
    // The first pictures, coded before the rate control settles, are the
    // worst.
    assert!(
        mean > 32.0 && worst > 25.0,
        "PSNR mean {mean:.1}, worst {worst:.1} dB"
    );
    assert!(
        bob.daemon_logs().contains("the camera could not be opened"),
        "no word of the camera"
    );
    // Alice saw Bob's test picture move.
    let seen = pictures(&path("a_seen.y4m"));
    let distinct: std::collections::BTreeSet<u32> = seen.iter().map(|(n, _)| *n).collect();
    assert!(
        distinct.len() > 60,
        "A saw {} of B's pictures",
        distinct.len()
    );
    // No picture of the call in either profile folder.
    let needle = &sent[30].y()[WIDTH * 200..WIDTH * 200 + 64];
    for p in [&alice, &bob] {
        for (file, bytes) in p.snapshot() {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "call video in {}",
                file.display()
            );
        }
    }
}

#[test]
fn a_call_naming_no_file_uses_the_sound_card() {
    let _media = one_media_test_at_a_time();
    // ALSA's `null` device: a sound card that takes everything and gives
    // silence, present wherever alsa-lib is.
    let (alice, _ia, _da, bob, ib, _db) = alice_and_bob(&["--sound-card", "null"]);
    let everyone = [&alice, &bob];
    let dir = alice.scratch("audio");
    std::fs::create_dir_all(&dir).unwrap();
    let a_in = dir.join("a.wav");
    kith_media::wav::write(&a_in, &sweep(300.0, 2_500.0, 3.0)).unwrap();
    let id = assert_ok(&alice.kith(["call", &ib.account, "--audio-in", a_in.to_str().unwrap()]))
        .trim()
        .to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith(["call", "answer"]));
    wait_state(&alice, "A", &id, "active", &everyone);
    let ok = wait_until(Duration::from_secs(10), || {
        call_of(&bob, &id)["audio_device"]
            .as_str()
            .is_some_and(|d| d.ends_with("null"))
    });
    let b = call_of(&bob, &id);
    assert!(
        ok,
        "B never opened the sound card: {b}\n{}",
        bob.daemon_logs()
    );
    std::thread::sleep(Duration::from_secs(1));
    let (a, b) = (call_of(&alice, &id), call_of(&bob, &id));
    assert_eq!(a["audio_device"], serde_json::Value::Null, "files: {a}");
    assert_eq!(
        (a["media"].as_bool(), b["media"].as_bool()),
        (Some(true), Some(true))
    );
    assert_ok(&alice.kith(["call", "hangup"]));
    wait_state(&bob, "B", &id, "ended", &everyone);
}

#[test]
fn video_comes_down_under_a_capped_uplink_and_keeps_showing() {
    let _media = one_media_test_at_a_time();
    let Some(net) = Loopback::new("cap") else {
        return;
    };
    let alice = Profile::new();
    alice.init("alice");
    let _da = kith_tests::daemon_in_netns(&alice, &net.ns, "127.0.0.1:0", &[]);
    let bob = Profile::new();
    let ib = bob.init("bob");
    // No camera here (nor `--camera`): Bob sends the test picture.
    let _db = kith_tests::daemon_in_netns(&bob, &net.ns, "127.0.0.1:0", &[]);
    pair(&alice, &bob);
    wait_devices_online(&alice, &ib.account, &[&ib.device]);
    let everyone = [&alice, &bob];
    // Bob's uplink carries 50 kB/s (400 kbit/s); his video starts at 1 Mbit/s.
    net.cap(port_of(&bob), 50);
    // Alice offers video (she sends the test picture too, uncapped).
    let id = assert_ok(&alice.kith(["call", &ib.account, "--video"]))
        .trim()
        .to_owned();
    wait_state(&bob, "B", &id, "incoming", &everyone);
    assert_ok(&bob.kith(["call", "answer", "--video"]));
    wait_state(&alice, "A", &id, "active", &everyone);
    std::thread::sleep(Duration::from_secs(12));
    let (a0, b0) = (call_of(&alice, &id), call_of(&bob, &id));
    std::thread::sleep(Duration::from_secs(4));
    let (a1, b1) = (call_of(&alice, &id), call_of(&bob, &id));
    eprintln!("capped uplink: B after 12 s {b0}\nB after 16 s {b1}\nA {a1}");
    assert_ok(&alice.kith(["call", "hangup"]));
    wait_state(&bob, "B", &id, "ended", &everyone);
    let kbps = b1["video_kbps"].as_u64().unwrap_or(u64::MAX);
    assert!(
        kbps < 400,
        "B still sends {kbps} kbit/s of video into a 400 kbit/s uplink"
    );
    let shown =
        a1["video_frames_shown"].as_u64().unwrap() - a0["video_frames_shown"].as_u64().unwrap();
    assert!(
        shown >= 30,
        "A was shown only {shown} frames in the last 4 s"
    );
    assert_eq!(a1["state"], "active");
    assert_eq!(a1["video"], true, "{a1}");
}
