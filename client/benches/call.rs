//! Calls between two real daemons in one process, over QUIC on loopback,
//! driven through the client library as `kith call` drives them; prints
//! call set-up times, audio mouth-to-ear delay (clicks in the caller's
//! input found in what the callee played, both on this process's clock,
//! sound cards excluded: WAV files stand in for them), the bitrate each
//! way, and the CPU an audio call costs on this machine; then room calls
//! of 3, 8, 16 and 32 daemons (a full mesh up to 8, forwarded beyond):
//! mouth-to-ear over all pairs, upload and download per participant and
//! per forwarder, CPU per participant and per forwarder; and room calls
//! with video of 4 and 8 (the same, and the video frames each takes).
//! Run: `cargo bench -p kith --bench call` (`KITH_BENCH=conf` for the
//! room calls alone, `KITH_CONF_SIZES=3,8` for some sizes;
//! `KITH_BENCH=conf-video` for room calls with video, of 4 and 8, or of
//! the sizes given, forwarded beyond 8).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use kith_app::daemon::{CallClocks, Daemon};
use kith_client::{CallInfo, CallOptions, Client};
use node_core::node::Node;
use node_core::store::Profile;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: f64 = 48_000.0;

struct Side {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    daemon: Arc<Daemon>,
}

async fn side(name: &str) -> Side {
    let dir = tempfile::Builder::new()
        .prefix("kc")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("p");
    let (node, _) = Node::create(Profile::new(&path), name, None, false, kith_app::now_ms())
        .await
        .unwrap();
    let daemon = Daemon::start(node, vec!["127.0.0.1:0".parse().unwrap()], false)
        .await
        .unwrap();
    // No sound card: calls that name no file are silent (and ALSA says
    // nothing on a machine without one).
    daemon.set_sound_card(kith_app::daemon::SoundCard::None);
    tokio::spawn(Daemon::serve(Arc::clone(&daemon)));
    // Until its socket answers.
    let client = Client::new(&path);
    for _ in 0..500 {
        if client.call_status().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Side {
        _dir: dir,
        path,
        daemon,
    }
}

async fn card(s: &Side) -> String {
    let hints = s
        .daemon
        .listening()
        .iter()
        .map(ToString::to_string)
        .collect();
    s.daemon
        .node()
        .lock()
        .await
        .card(hints, kith_app::now_ms())
        .unwrap()
}

/// Makes `a` and `b` contacts and waits until they are linked; `b`'s
/// account id.
async fn pair(a: &Side, b: &Side) -> String {
    let (ca, cb) = (card(a).await, card(b).await);
    let bid = a
        .daemon
        .node()
        .lock()
        .await
        .add_contact(&cb, None, kith_app::now_ms())
        .await
        .unwrap();
    let aid = b
        .daemon
        .node()
        .lock()
        .await
        .add_contact(&ca, None, kith_app::now_ms())
        .await
        .unwrap();
    let bdev = b.daemon.node().lock().await.device();
    let adev = a.daemon.node().lock().await.device();
    let start = Instant::now();
    // Linked, and each holds the other's device list (a call is only
    // taken from an active device of a contact).
    loop {
        let linked = a.daemon.connected().contains(&bdev);
        let a_knows = a
            .daemon
            .node()
            .lock()
            .await
            .contact_devices(&bid)
            .contains(&bdev);
        let b_knows = b
            .daemon
            .node()
            .lock()
            .await
            .contact_devices(&aid)
            .contains(&adev);
        if linked && a_knows && b_knows {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never linked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bid.to_string()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// `secs` of silence with a 10 ms 1 kHz click every `every` seconds,
/// starting at `first`; the clicks' first samples.
fn clicks(secs: f64, first: f64, every: f64) -> (Vec<i16>, Vec<usize>) {
    let mut x = vec![0i16; (secs * RATE) as usize];
    let mut at = Vec::new();
    let mut t = first;
    while t + 0.01 < secs {
        let start = (t * RATE) as usize;
        for i in 0..480 {
            let v = (2.0 * std::f64::consts::PI * 1_000.0 * i as f64 / RATE).sin();
            x[start + i] = (v * 12_000.0) as i16;
        }
        at.push(start);
        t += every;
    }
    (x, at)
}

/// `secs` of a voiced, speech-band signal with no pause (a glide with
/// harmonics): what keeps the encoder at its full bitrate.
fn voiced(secs: f64) -> Vec<i16> {
    let mut phase = 0.0f64;
    (0..(secs * RATE) as usize)
        .map(|i| {
            let t = i as f64 / RATE;
            let f = 140.0 + 60.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            phase += 2.0 * std::f64::consts::PI * f / RATE;
            let v = phase.sin() + 0.5 * (2.0 * phase).sin() + 0.3 * (3.0 * phase).sin();
            (v * 5_000.0) as i16
        })
        .collect()
}

/// Where a click starts in `heard`: the first loud sample after at least
/// 100 ms of quiet.
fn onsets(heard: &[i16]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut quiet = 0usize;
    for (i, &v) in heard.iter().enumerate() {
        if i32::from(v).abs() > 3_000 {
            if quiet >= 4_800 {
                out.push(i);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    out
}

/// The process's CPU time so far (user + system).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 after ')'.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

async fn clocks_of(s: &Side, id: &str) -> CallClocks {
    s.daemon
        .call_clocks()
        .into_iter()
        .find(|(c, _)| c == id)
        .map(|(_, c)| c)
        .unwrap()
}

/// The call `id` as `c` reports it.
async fn status_of(c: &Client, id: &str) -> CallInfo {
    c.call_status()
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.id == id)
        .unwrap()
}

/// The share of one core the process used over `secs` after the call's
/// first 2 s (both ends are in this process: halved).
async fn cpu_over_middle(secs: f64) -> f64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c0, t0) = (cpu(), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(secs - 2.0)).await;
    (cpu() - c0).as_secs_f64() / t0.elapsed().as_secs_f64() / 2.0
}

async fn state_of(s: &Side, id: &str) -> String {
    Client::new(&s.path)
        .call_status()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.state)
        .unwrap_or_default()
}

async fn wait_state(s: &Side, id: &str, want: &str) {
    let start = Instant::now();
    while state_of(s, id).await != want {
        assert!(start.elapsed() < Duration::from_secs(30), "never {want}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Calls set up and torn down: `kith call` until the callee rings and
/// until the caller hears that it does; answer until the first frame of
/// audio is played on each side.
async fn set_up(a: &Side, b: &Side, bid: &str) {
    let (ca, cb) = (Client::new(&a.path), Client::new(&b.path));
    // Warm up: a call is taken only from a device active in the caller's
    // account log as the callee holds it, which may arrive just after the
    // link; ring until it is, then measure.
    let start = Instant::now();
    loop {
        match ca.call_start(bid, &CallOptions::default()).await {
            Ok(id) => {
                wait_state(b, &id.id, "incoming").await;
                ca.call_hangup(Some(&id.id)).await.unwrap();
                wait_state(b, &id.id, "ended").await;
                break;
            }
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(30), "never rang: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let (mut rings, mut told, mut at_callee, mut at_caller) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10 {
        let t0 = Instant::now();
        let call = {
            let ca = ca.clone();
            let bid = bid.to_owned();
            tokio::spawn(async move { ca.call_start(&bid, &CallOptions::default()).await })
        };
        // The callee rings once its daemon knows the call.
        let id = loop {
            // A busy socket may refuse a connection now and then: ask again.
            let calls = cb.call_status().await.unwrap_or_default();
            if let Some(c) = calls.iter().find(|c| c.state == "incoming") {
                rings.push(t0.elapsed().as_secs_f64() * 1000.0);
                break c.id.clone();
            }
            if t0.elapsed() > Duration::from_secs(20) {
                panic!(
                    "the callee never rang: {:?}; callee says {:?}",
                    call.await,
                    cb.call_status().await
                );
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        call.await.unwrap().unwrap();
        told.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t1 = Instant::now();
        cb.call_answer(Some(&id), &CallOptions::default())
            .await
            .unwrap();
        let (mut callee, mut caller) = (None, None);
        while callee.is_none() || caller.is_none() {
            if callee.is_none() {
                callee = clocks_of(b, &id).await.first_played;
            }
            if caller.is_none() {
                caller = clocks_of(a, &id).await.first_played;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
            assert!(t1.elapsed() < Duration::from_secs(10), "no audio played");
        }
        at_callee.push(callee.unwrap().duration_since(t1).as_secs_f64() * 1000.0);
        at_caller.push(caller.unwrap().duration_since(t1).as_secs_f64() * 1000.0);
        ca.call_hangup(Some(&id)).await.unwrap();
        wait_state(b, &id, "ended").await;
    }
    println!(
        "call set-up, 10 calls, already linked: kith call → ringing at the callee p50 {:.1} ms (caller told p50 {:.1} ms)",
        pct(&mut rings, 0.5),
        pct(&mut told, 0.5)
    );
    println!(
        "call set-up: answer → first audio frame played p50 {:.1} ms at the callee, {:.1} ms at the caller",
        pct(&mut at_callee, 0.5),
        pct(&mut at_caller, 0.5)
    );
}

/// One call of `secs` with clicks from A to B: mouth-to-ear delays, the
/// bitrates each way, and the CPU over the call's middle.
async fn one_call(a: &Side, b: &Side, bid: &str, label: &str, secs: f64) {
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let (a_says, a_clicks) = clicks(secs, 0.5, 0.4);
    let b_says = voiced(secs);
    kith_media::wav::write(std::path::Path::new(&file("a.wav")), &a_says).unwrap();
    kith_media::wav::write(std::path::Path::new(&file("b.wav")), &b_says).unwrap();
    let (ca, cb) = (Client::new(&a.path), Client::new(&b.path));
    let opts = |i: &str, o: &str| CallOptions {
        audio_in: Some(file(i)),
        audio_out: Some(file(o)),
        ..CallOptions::default()
    };
    let id = ca
        .call_start(bid, &opts("a.wav", "a_heard.wav"))
        .await
        .unwrap()
        .id;
    wait_state(b, &id, "incoming").await;
    cb.call_answer(Some(&id), &opts("b.wav", "b_heard.wav"))
        .await
        .unwrap();
    let cpu_share = cpu_over_middle(secs).await;
    let kbps = |s: CallInfo| s.audio_kbps.unwrap_or(0);
    let (ab, ba) = (
        kbps(status_of(&ca, &id).await),
        kbps(status_of(&cb, &id).await),
    );
    let (sent, heard) = (clocks_of(a, &id).await, clocks_of(b, &id).await);
    ca.call_hangup(Some(&id)).await.unwrap();
    wait_state(b, &id, "ended").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b_heard =
        kith_media::wav::read(std::path::Path::new(&file("b_heard.wav")), usize::MAX).unwrap();
    // Input sample k left A at send_started + (k - send_from) / RATE; output
    // sample j was played at B at play_started + (j - heard_from) / RATE.
    let (s0, p0) = (sent.send_started.unwrap(), heard.play_started.unwrap());
    let offset = p0.duration_since(s0).as_secs_f64();
    let mut delays = Vec::new();
    for j in onsets(&b_heard) {
        let played = offset + (j as f64 - heard.heard_from as f64) / RATE;
        let best = a_clicks
            .iter()
            .map(|&k| played - (k as f64 - sent.send_from as f64) / RATE)
            .filter(|d| *d >= 0.0 && *d < 0.4)
            .fold(f64::INFINITY, f64::min);
        if best.is_finite() {
            delays.push(best * 1000.0);
        }
    }
    assert!(!delays.is_empty(), "no click found in what B heard");
    let n = delays.len();
    println!(
        "audio mouth-to-ear {label} (clicks, sound cards excluded), {n} of {} clicks: p50 {:.1} ms, p95 {:.1} ms",
        a_clicks.len(),
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.95)
    );
    println!(
        "audio bitrate sent {label}: A→B {ab} kbit/s (clicks in silence, DTX), B→A {ba} kbit/s (unbroken voice); Opus and our header"
    );
    println!(
        "CPU per audio call {label} (both ends in one process, halved): {:.1}% of one core",
        cpu_share * 100.0
    );
}

/// Mean SSIM of two luma planes over 8×8 windows (the usual constants
/// for 8-bit pictures).
fn ssim(a: &kith_media::video::Picture, b: &kith_media::video::Picture) -> f64 {
    let (w, h) = (a.width, a.height);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut sum, mut n) = (0.0, 0);
    for by in (0..h - 7).step_by(8) {
        for bx in (0..w - 7).step_by(8) {
            let (mut ma, mut mb, mut va, mut vb, mut cov) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in by..by + 8 {
                for x in bx..bx + 8 {
                    let (p, q) = (f64::from(a.data[y * w + x]), f64::from(b.data[y * w + x]));
                    ma += p;
                    mb += q;
                    va += p * p;
                    vb += q * q;
                    cov += p * q;
                }
            }
            let k = 64.0;
            let (ma, mb) = (ma / k, mb / k);
            let (va, vb, cov) = (va / k - ma * ma, vb / k - mb * mb, cov / k - ma * mb);
            sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    sum / f64::from(n)
}

/// The pictures A sends: a 640×480 4:2:0 clip named by `KITH_VIDEO_CLIP`
/// (its frames looped), or the daemon's moving test picture; each with
/// its number drawn in.
fn source_pictures(frames: u32) -> (Vec<kith_media::video::Picture>, String) {
    use kith_media::video::{HEIGHT, WIDTH, mark, synthetic};
    match std::env::var("KITH_VIDEO_CLIP") {
        Ok(path) => {
            let mut clip = Vec::new();
            let mut r = kith_media::y4m::Y4mReader::open(std::path::Path::new(&path)).unwrap();
            assert_eq!((r.width, r.height), (WIDTH, HEIGHT), "a 640×480 clip");
            while let Some(p) = r.next_picture().unwrap() {
                clip.push(p);
                if clip.len() as u32 == frames {
                    break;
                }
            }
            let name = std::path::Path::new(&path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let out = (0..frames)
                .map(|i| {
                    let mut p = clip[i as usize % clip.len()].clone();
                    mark::draw(&mut p, i);
                    p
                })
                .collect();
            (out, name)
        }
        Err(_) => (
            (0..frames).map(|i| synthetic(i, WIDTH, HEIGHT)).collect(),
            "the moving test picture".into(),
        ),
    }
}

/// A video call of `secs` both ways (A from a file, B its test picture):
/// glass-to-glass delay of A's pictures at B, their PSNR and SSIM, the
/// bitrates each way and the CPU an audio and video call costs.
async fn video_call(a: &Side, b: &Side, bid: &str, secs: f64) {
    use kith_media::video::{FPS, mark};
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let frames = (secs * f64::from(FPS)) as u32 + 30;
    let (sent, what) = source_pictures(frames);
    let mut w = kith_media::y4m::Y4mWriter::create(std::path::Path::new(&file("a.y4m"))).unwrap();
    for p in &sent {
        w.write(p).unwrap();
    }
    w.flush().unwrap();
    let (ca, cb) = (Client::new(&a.path), Client::new(&b.path));
    let id = ca
        .call_start(
            bid,
            &CallOptions {
                video: true,
                video_in: Some(file("a.y4m")),
                ..CallOptions::default()
            },
        )
        .await
        .unwrap()
        .id;
    wait_state(b, &id, "incoming").await;
    cb.call_answer(
        Some(&id),
        &CallOptions {
            video: true,
            video_out: Some(file("b_seen.y4m")),
            ..CallOptions::default()
        },
    )
    .await
    .unwrap();
    let cpu_share = cpu_over_middle(secs).await;
    let (sa, sb) = (status_of(&ca, &id).await, status_of(&cb, &id).await);
    let video_clocks = |s: &Side| {
        s.daemon
            .call_video_clocks()
            .into_iter()
            .find(|(c, _)| *c == id)
            .unwrap()
            .1
    };
    let (taken, shown) = (video_clocks(a), video_clocks(b));
    ca.call_hangup(Some(&id)).await.unwrap();
    wait_state(b, &id, "ended").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut r =
        kith_media::y4m::Y4mReader::open(std::path::Path::new(&file("b_seen.y4m"))).unwrap();
    let (mut delays, mut psnr, mut ssims, mut seen) = (Vec::new(), Vec::new(), Vec::new(), 0u32);
    let (s0, p0) = (taken.send_started.unwrap(), shown.show_started.unwrap());
    let offset = p0.duration_since(s0).as_secs_f64();
    let frame = 1.0 / f64::from(FPS);
    let mut last = None;
    let mut k = 0u64;
    while let Some(p) = r.next_picture().unwrap() {
        let n = mark::read(&p).unwrap();
        // Skip the first second (the rate control settling).
        if n >= FPS && (n as usize) < sent.len() {
            psnr.push(p.psnr(&sent[n as usize]));
            if seen % 5 == 0 {
                ssims.push(ssim(&p, &sent[n as usize]));
            }
            seen += 1;
        }
        // The first picture showing frame n: when it was shown, against
        // when frame n was taken.
        if last != Some(n) && k >= shown.shown_from {
            let shown_at = offset + (k - shown.shown_from) as f64 * frame;
            let taken_at = (f64::from(n) - taken.send_from as f64) * frame;
            let d = shown_at - taken_at;
            if (0.0..1.0).contains(&d) {
                delays.push(d * 1000.0);
            }
        }
        last = Some(n);
        k += 1;
    }
    assert!(!delays.is_empty() && !psnr.is_empty(), "no video shown");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "video glass-to-glass, 640×480 at {FPS} fps ({what}, frame numbers as pixel blocks), {} frames: p50 {:.1} ms, p95 {:.1} ms",
        delays.len(),
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.95)
    );
    println!(
        "video quality at {} kbit/s ({what}): PSNR-Y mean {:.1} dB (worst {:.1}), SSIM-Y mean {:.3}, {} frames",
        sa.video_kbps.unwrap_or(0),
        mean(&psnr),
        psnr.iter().copied().fold(f64::INFINITY, f64::min),
        mean(&ssims),
        psnr.len()
    );
    println!(
        "video call bitrate sent: A→B video {} kbit/s + audio {} kbit/s, B→A video {} kbit/s + audio {} kbit/s; frames lost at B {}, key frames asked {}",
        sa.video_kbps.unwrap_or(0),
        sa.audio_kbps.unwrap_or(0),
        sb.video_kbps.unwrap_or(0),
        sb.audio_kbps.unwrap_or(0),
        sb.video_frames_lost,
        sb.video_keys_asked
    );
    println!(
        "CPU per audio+video call (both ends in one process, halved): {:.1}% of one core",
        cpu_share * 100.0
    );
}

/// A click of 20 ms at `f` Hz (a multiple of 400 Hz: a whole number of
/// periods in the 2.5 ms windows [`tone_onsets`] looks at) every `every`
/// seconds from `first`; the clicks' first samples.
fn tone_clicks(secs: f64, (f, first, every): (f64, f64, f64)) -> (Vec<i16>, Vec<usize>) {
    let mut x = vec![0i16; (secs * RATE) as usize];
    let mut at = Vec::new();
    let mut t = first;
    while t + 0.02 < secs {
        let start = (t * RATE) as usize;
        for i in 0..960 {
            let v = (2.0 * std::f64::consts::PI * f * i as f64 / RATE).sin();
            x[start + i] = (v * 6_000.0) as i16;
        }
        at.push(start);
        t += every;
    }
    (x, at)
}

/// Where a click at `f` Hz starts in `heard` (a mix): the first 2.5 ms
/// window whose amplitude at `f` is loud after 100 ms without it, and
/// loud in the two windows after it too. (A click at another pitch leaks
/// into this pitch's windows only where it starts or ends, a window it
/// fills in part: the whole windows inside it hold whole periods of each
/// pitch and do not. A leak taken as an onset was put down to the click
/// of this pitch before it: every mouth-to-ear p95 read 230–350 ms.)
fn tone_onsets(heard: &[i16], f: f64) -> Vec<usize> {
    const W: usize = 120;
    const LOUD: f64 = 1_500.0;
    let w = 2.0 * std::f64::consts::PI * f / RATE;
    let amps: Vec<f64> = heard
        .chunks_exact(W)
        .map(|win| {
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &v in win {
                let s0 = f64::from(v) + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2).sqrt() * 2.0 / W as f64
        })
        .collect();
    let mut out = Vec::new();
    let mut quiet = 0usize;
    for (n, amp) in amps.iter().enumerate() {
        if *amp > LOUD {
            let held = amps
                .get(n + 1..n + 3)
                .is_some_and(|next| next.iter().all(|a| *a > LOUD));
            if quiet >= 40 && held {
                out.push(n * W);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    out
}

/// CPU time of each thread of this process named `ka-…` (a daemon's own
/// audio thread), by name.
fn audio_threads_cpu() -> std::collections::HashMap<String, Duration> {
    let mut out = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if !comm.starts_with("ka-") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.len() > 12 {
            let ticks: u64 =
                fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
            out.insert(comm.to_owned(), Duration::from_millis(ticks * 10));
        }
    }
    out
}

/// Participant `i`'s pitch, first click and click period: eight pitches;
/// beyond eight participants two to four share a pitch, each clicking at a
/// period of its own (1.0, 1.13, 1.26, 1.39 s). Each participant's clicks
/// keep to its own clock, which starts when it joins, so clicks of one
/// pitch cannot be kept apart by their times; at different periods they
/// meet only now and then (the bench counts those, heard as one), and
/// every pair is measured.
fn click_plan(i: usize) -> (f64, f64, f64) {
    (
        800.0 + 400.0 * (i % 8) as f64,
        1.0,
        1.0 + 0.13 * (i / 8) as f64,
    )
}

/// A room call of `n` daemons in one process (each with an audio thread of
/// its own, as in a process of its own), each clicking once a second (see
/// [`click_plan`]): mouth-to-ear over all pairs, bytes each way per
/// participant (and per forwarder beyond a mesh), CPU per participant and
/// per forwarder. With `video`, each also sends the moving test picture
/// and takes the others' (the layers each receiver chose, frames decoded).
async fn conference(n: usize, secs: f64, video: bool) {
    let mut sides = Vec::new();
    for i in 0..n {
        let s = side(&format!("P{i}")).await;
        s.daemon.own_conf_audio_thread().unwrap();
        sides.push(s);
    }
    // P0 knows everyone; the room is P0's, the others invited.
    let mut ids = Vec::new();
    for s in &sides[1..] {
        ids.push(pair(&sides[0], s).await);
    }
    let c0 = Client::new(&sides[0].path);
    let room = c0.room_create("bench", false).await.unwrap().id.to_string();
    for id in &ids {
        c0.room_invite(&room, id).await.unwrap();
    }
    let start = Instant::now();
    loop {
        let mut joined = 0;
        for s in &sides {
            let rooms = s.daemon.node().lock().await.rooms();
            if rooms
                .iter()
                .any(|r| r.members == n && r.membership == "join")
            {
                joined += 1;
            }
        }
        if joined == n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not everyone joined"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut clicks_at = Vec::new();
    let mut call = String::new();
    for (i, s) in sides.iter().enumerate() {
        let plan = click_plan(i);
        // Long enough for the slowest formation waited for (180 s) and the
        // measurement.
        let (x, at) = tone_clicks(secs + 200.0, plan);
        clicks_at.push(at);
        let input = dir.path().join(format!("in{i}.wav"));
        kith_media::wav::write(&input, &x).unwrap();
        let opts = CallOptions {
            video,
            audio_in: Some(input.to_str().unwrap().to_owned()),
            audio_out: Some(
                dir.path()
                    .join(format!("out{i}.wav"))
                    .to_str()
                    .unwrap()
                    .to_owned(),
            ),
            ..CallOptions::default()
        };
        // Each joins the call the room says is on.
        if i > 0 {
            let start = Instant::now();
            while s
                .daemon
                .node()
                .lock()
                .await
                .rooms()
                .iter()
                .all(|r| r.call.as_deref() != Some(call.as_str()))
            {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the call never reached P{i}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let id = Client::new(&s.path)
            .call_start(&room, &opts)
            .await
            .unwrap()
            .id;
        if i == 0 {
            call = id;
        }
    }
    let forwarded = n > node_core::call::conf::MESH_SIZE;
    // Beyond a mesh, all but the first ⌈n/8⌉ send through a forwarder.
    let through_one = if forwarded {
        n - n.div_ceil(node_core::call::conf::PER_FORWARDER)
    } else {
        0
    };
    let start = Instant::now();
    let mut infos = Vec::new();
    loop {
        infos.clear();
        for s in &sides {
            infos.push(status_of(&Client::new(&s.path), &call).await);
        }
        let linked = infos.iter().all(|c| c.participants.len() == n - 1);
        let through = infos.iter().filter(|c| c.forwarder.is_some()).count();
        if linked && through == through_one {
            break;
        }
        if start.elapsed() >= Duration::from_secs(180) {
            println!(
                "room call, {n} participants: did not form within 180 s ({} of {n} linked with every other, {through} of {through_one} sending through a forwarder)",
                infos
                    .iter()
                    .filter(|c| c.participants.len() == n - 1)
                    .count()
            );
            // What the room says on each device: participants listed and
            // events held as arrived late.
            let mut seen = Vec::new();
            for s in &sides {
                let node = s.daemon.node().lock().await;
                let room_id = node.resolve_room(&room).unwrap();
                let listed = node
                    .room_conference(&room_id)
                    .map_or(0, |c| c.participants.len());
                let held = node.room_history(room_id).map_or(0, |h| h.held);
                seen.push(format!("{listed}/{held}"));
            }
            println!("  listed/held per device: {}", seen.join(" "));
            for s in sides {
                s.daemon.shutdown();
                s.daemon.clone().close().await;
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let formed = start.elapsed();
    let traffic = |s: &Side| {
        s.daemon
            .conf_traffic()
            .into_iter()
            .find(|(c, ..)| *c == call)
            .map(|(_, up, down, fwd)| (up, down, fwd))
            .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut video_before = Vec::new();
    if video {
        for s in &sides {
            video_before.push(status_of(&Client::new(&s.path), &call).await);
        }
    }
    let before: Vec<(u64, u64, u64)> = sides.iter().map(traffic).collect();
    let (c0, t0, threads0) = (cpu(), Instant::now(), audio_threads_cpu());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let measured_to = Instant::now();
    let cpu_share = (cpu() - c0).as_secs_f64() / elapsed / n as f64;
    let threads1 = audio_threads_cpu();
    let after: Vec<(u64, u64, u64)> = sides.iter().map(traffic).collect();
    // Roles now: a participant that sends through a forwarder is a
    // client; every other one sends its frames to everyone, as a
    // forwarder does (one the call's order made a forwarder forwards for
    // no one if its clients turned elsewhere while the call formed: it
    // still uploads a forwarder's share, and once counted as a client it
    // doubled the clients' mean).
    let mut roles = Vec::new();
    let mut video_after = Vec::new();
    for s in &sides {
        let info = status_of(&Client::new(&s.path), &call).await;
        roles.push(info.forwarder.is_none());
        video_after.push(info);
    }
    let mut clocks = Vec::new();
    for s in &sides {
        clocks.push(clocks_of(s, &call).await);
    }
    let mut thread_cpu = Vec::new();
    for s in &sides {
        let name = format!("ka-{}", s.daemon.node().lock().await.device().short(8));
        let used = threads1.get(&name).copied().unwrap_or_default()
            - threads0.get(&name).copied().unwrap_or_default();
        thread_cpu.push(used.as_secs_f64() / elapsed);
    }
    for s in &sides {
        Client::new(&s.path).call_hangup(Some(&call)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Sample k of i's input left at send_started + (k - send_from) / RATE;
    // sample j of what r heard was played at play_started + (j - heard_from) / RATE.
    // A click at one pitch is put down to the sender of that pitch it
    // follows most closely.
    let mut delays = Vec::new();
    let mut found_from = std::collections::BTreeMap::new();
    for (r, heard_by) in clocks.iter().enumerate() {
        let heard =
            kith_media::wav::read(&dir.path().join(format!("out{r}.wav")), usize::MAX).unwrap();
        let p0 = heard_by.play_started.unwrap();
        let mut pitches: Vec<f64> = (0..n)
            .filter(|i| *i != r)
            .map(|i| click_plan(i).0)
            .collect();
        pitches.sort_by(f64::total_cmp);
        pitches.dedup();
        for f in pitches {
            let senders: Vec<usize> = (0..n)
                .filter(|i| *i != r && click_plan(*i).0 == f)
                .collect();
            for j in tone_onsets(&heard, f) {
                let played = p0
                    + Duration::from_secs_f64(
                        (j as f64 - heard_by.heard_from as f64).max(0.0) / RATE,
                    );
                let best = senders
                    .iter()
                    .flat_map(|&i| {
                        let sent_by = &clocks[i];
                        let s0 = sent_by.send_started.unwrap();
                        clicks_at[i].iter().filter_map(move |&k| {
                            let sent = s0
                                + Duration::from_secs_f64(
                                    (k as f64 - sent_by.send_from as f64).max(0.0) / RATE,
                                );
                            Some((played.checked_duration_since(sent)?, sent, i))
                        })
                    })
                    .filter(|(d, ..)| d.as_secs_f64() < 0.4)
                    .min_by_key(|(d, ..)| *d);
                // Only clicks sent while the call was measured (not while
                // it formed).
                if let Some((d, sent, i)) = best
                    && sent >= t0
                    && sent < measured_to
                {
                    delays.push(d.as_secs_f64() * 1000.0);
                    *found_from.entry((r, i)).or_insert(0usize) += 1;
                }
            }
        }
    }
    assert!(!delays.is_empty(), "no click found");
    if std::env::var_os("KITH_BENCH_PAIRS").is_some() {
        // Clicks found per pair, by the roles of receiver and sender
        // (forwarder or not): where the ones not found went missing.
        let mut by_roles = std::collections::BTreeMap::new();
        for r in 0..n {
            for i in (0..n).filter(|i| *i != r) {
                let k = found_from.get(&(r, i)).copied().unwrap_or(0);
                let e = by_roles.entry((roles[r], roles[i])).or_insert((
                    0usize,
                    0usize,
                    usize::MAX,
                    0usize,
                ));
                e.0 += 1;
                e.1 += k;
                e.2 = e.2.min(k);
                e.3 = e.3.max(k);
            }
        }
        eprintln!(
            "clicks found per pair, by (receiver forwards, sender forwards): (pairs, found, min, max) {by_roles:?}"
        );
        for (i, info) in video_after.iter().enumerate() {
            let heard_by: Vec<usize> = (0..n)
                .filter(|r| *r != i && found_from.get(&(*r, i)).is_some_and(|k| *k > 0))
                .collect();
            eprintln!(
                "sender {i}: via {:?}, forwarding for {}, heard by {heard_by:?}",
                info.forwarder.as_ref().map(|f| &f[..8]),
                info.forwarding_for
            );
        }
    }
    let kbps = |a: u64, b: u64| (b - a) as f64 * 8.0 / elapsed / 1000.0;
    let ups: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| kbps(b.0, a.0))
        .collect();
    let downs: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| kbps(b.1, a.1))
        .collect();
    let fwds: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| kbps(b.2, a.2))
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let pick = |v: &[f64], forwarder: bool| -> Vec<f64> {
        v.iter()
            .zip(&roles)
            .filter(|(_, r)| **r == forwarder)
            .map(|(x, _)| *x)
            .collect()
    };
    let pairs = n * (n - 1);
    let found = delays.len();
    let shape = if forwarded { "forwarded" } else { "full mesh" };
    let media = if video { "audio and video" } else { "audio" };
    println!(
        "room call, {n} participants ({shape}, {media}): mouth-to-ear over {pairs} pairs, {found} clicks: p50 {:.1} ms, p95 {:.1} ms",
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.95)
    );
    // Clicks sent while measured, over all pairs, and of them those another
    // participant's click at the same pitch came within 120 ms of (each
    // participant's clicks keep to its own clock, which started when it
    // joined: two at one pitch may meet, and are then heard as one).
    let sent_at = |i: usize| -> Vec<Instant> {
        let c = &clocks[i];
        let s0 = c.send_started.unwrap();
        clicks_at[i]
            .iter()
            .map(|&k| s0 + Duration::from_secs_f64((k as f64 - c.send_from as f64).max(0.0) / RATE))
            .collect()
    };
    let all_sent: Vec<Vec<Instant>> = (0..n).map(sent_at).collect();
    let (mut sent_total, mut met) = (0usize, 0usize);
    for r in 0..n {
        for i in (0..n).filter(|i| *i != r) {
            for t in all_sent[i]
                .iter()
                .filter(|t| **t >= t0 && **t < measured_to)
            {
                sent_total += 1;
                let near = (0..n)
                    .filter(|j| *j != r && *j != i && click_plan(*j).0 == click_plan(i).0)
                    .any(|j| {
                        all_sent[j].iter().any(|u| {
                            let d = if u > t { *u - *t } else { *t - *u };
                            d < Duration::from_millis(120)
                        })
                    });
                if near {
                    met += 1;
                }
            }
        }
    }
    println!(
        "room call, {n} participants: clicks found {found} of {sent_total} sent while measured; {met} of those met another participant's click at the same pitch within 120 ms (heard as one: the bench cannot tell them apart)"
    );
    if forwarded {
        // One stream: what a participant sends to one other.
        let clients_up = pick(&ups, false);
        let stream = mean(&pick(&ups, true)) / (n - 1) as f64;
        println!(
            "room call, {n} participants: upload per non-forwarding participant {:.1} kbit/s ({:.2}× one {:.1} kbit/s stream), download {:.1} kbit/s; per forwarder ({} of them) own {:.1} + forwarded {:.1} kbit/s up, {:.1} kbit/s down (media datagrams with our header and sealing; QUIC's not counted)",
            mean(&clients_up),
            mean(&clients_up) / stream,
            stream,
            mean(&pick(&downs, false)),
            roles.iter().filter(|r| **r).count(),
            mean(&pick(&ups, true)),
            mean(&pick(&fwds, true)),
            mean(&pick(&downs, true)),
        );
        println!(
            "room call, {n} participants: CPU per participant {:.1}% of one core (all {n} in one process, divided); audio thread per non-forwarding participant {:.1}%, per forwarder {:.1}%; formed {:.2} s after the last joined",
            cpu_share * 100.0,
            mean(&pick(&thread_cpu, false)) * 100.0,
            mean(&pick(&thread_cpu, true)) * 100.0,
            formed.as_secs_f64()
        );
    } else if video {
        println!(
            "room call, {n} participants: upload per participant {:.1} kbit/s, download {:.1} kbit/s, audio and video (media datagrams with our header and sealing; QUIC's not counted)",
            mean(&ups),
            mean(&downs)
        );
        println!(
            "room call, {n} participants: CPU per participant {:.1}% of one core (all {n} in one process, divided, the test picture's drawing included; audio thread alone {:.1}%); mesh formed {:.2} s after the last joined",
            cpu_share * 100.0,
            mean(&thread_cpu) * 100.0,
            formed.as_secs_f64()
        );
    } else {
        println!(
            "room call, {n} participants: upload per participant {:.1} kbit/s ({} copies of one {:.1} kbit/s stream), download {:.1} kbit/s (media datagrams with our header and sealing; QUIC's not counted)",
            mean(&ups),
            n - 1,
            mean(&ups) / (n - 1) as f64,
            mean(&downs)
        );
        println!(
            "room call, {n} participants: CPU per participant {:.1}% of one core (all {n} in one process, divided; audio thread alone {:.1}%); mesh formed {:.2} s after the last joined",
            cpu_share * 100.0,
            mean(&thread_cpu) * 100.0,
            formed.as_secs_f64()
        );
    }
    if video {
        // Frames decoded per receiver a second, over every sender; the
        // layers receivers took; what a sender coded.
        let per = |f: fn(&CallInfo) -> u64| -> Vec<f64> {
            video_before
                .iter()
                .zip(&video_after)
                .map(|(b, a)| f(a).saturating_sub(f(b)) as f64 / elapsed)
                .collect()
        };
        let shown = per(|c| c.video_frames_shown);
        let sent = per(|c| c.video_frames_sent);
        let lost = per(|c| c.video_frames_lost);
        let (mut full, mut small) = (0usize, 0usize);
        for c in &video_after {
            for f in &c.video_from {
                if f.layer == 0 {
                    small += 1;
                } else {
                    full += 1;
                }
            }
        }
        let kbps: Vec<f64> = video_after
            .iter()
            .map(|c| c.video_kbps.unwrap_or(0) as f64)
            .collect();
        println!(
            "room call, {n} participants, video: {:.1} frames/s decoded per participant (of {} senders), {:.1} lost; {full} sender-receiver pairs at the full layer, {small} at the small; a sender codes {:.1} frames/s and sends {:.0} kbit/s of video",
            mean(&shown),
            n - 1,
            mean(&lost),
            mean(&sent),
            mean(&kbps),
        );
    }
    for s in sides {
        s.daemon.shutdown();
        s.daemon.clone().close().await;
    }
}

fn main() {
    if let Ok(filter) = std::env::var("KITH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("KITH_BENCH").unwrap_or_default();
    let sizes: Vec<usize> = std::env::var("KITH_CONF_SIZES")
        .unwrap_or_else(|_| "3,8,16,32".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .filter(|n| *n >= 2)
        .collect();
    if only == "conf" {
        rt.block_on(async {
            for n in sizes {
                conference(n, 12.0, false).await;
            }
        });
        return;
    }
    if only == "conf-video" {
        let sizes: Vec<usize> = std::env::var("KITH_CONF_SIZES")
            .unwrap_or_else(|_| "4,8".into())
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .filter(|n| (2..=node_core::call::conf::MAX_PARTICIPANTS).contains(n))
            .collect();
        rt.block_on(async {
            for n in sizes {
                conference(n, 12.0, true).await;
            }
        });
        return;
    }
    rt.block_on(async {
        let a = side("A").await;
        let b = side("B").await;
        let bid = pair(&a, &b).await;
        b.daemon.allow_extra_rings(100);
        set_up(&a, &b, &bid).await;
        one_call(&a, &b, &bid, "no loss", 12.0).await;
        a.daemon.set_media_loss(5);
        b.daemon.set_media_loss(5);
        one_call(&a, &b, &bid, "5% loss each way", 12.0).await;
        a.daemon.set_media_delay(40);
        b.daemon.set_media_delay(40);
        one_call(&a, &b, &bid, "5% loss and 40 ms added delay each way", 12.0).await;
        for s in [&a, &b] {
            s.daemon.set_media_loss(0);
            s.daemon.set_media_delay(0);
        }
        video_call(&a, &b, &bid, 10.0).await;
        for s in [a, b] {
            s.daemon.shutdown();
            s.daemon.clone().close().await;
        }
        for n in sizes {
            conference(n, 12.0, false).await;
        }
        for n in [4, 8] {
            conference(n, 12.0, true).await;
        }
    });
}
