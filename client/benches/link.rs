//! Real daemons in one process, linked over QUIC on loopback; prints
//! round-trip latency, sustained throughput, reconnect cost, history
//! transfer, how long a newly linked device takes to hold an account's
//! history, and how long a revocation takes to reach a contact.
//! Also rooms of 10 and 30 daemons (`KITH_ROOM_SIZES`): when every ring
//! link is up, what the idle daemons use, the time until every member
//! holds a message (as each node announces it), and what each device
//! uploads for it.
//! Run: `cargo bench -p kith --bench link` (`KITH_BENCH=rtt|throughput|
//! history|devices|rooms` runs one part; `KITH_BENCH_TMP=/dev/shm` keeps
//! the profiles in memory, to take the disk out).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use kith_app::daemon::Daemon;
use node_core::LogId;
use node_core::node::Node;
use node_core::store::Profile;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Side {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    daemon: Arc<Daemon>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn now() -> i64 {
    kith_app::now_ms()
}

async fn start(
    node: Node,
    echo: bool,
) -> (Arc<Daemon>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let d = Daemon::start(node, vec!["127.0.0.1:0".parse().unwrap()], echo)
        .await
        .unwrap();
    let task = tokio::spawn(Daemon::serve(Arc::clone(&d)));
    (d, task)
}

/// A temporary folder and the profile path inside it.
fn profile_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("kb")
        .tempdir_in(std::env::var("KITH_BENCH_TMP").unwrap_or_else(|_| "/tmp".into()))
        .unwrap();
    let path = dir.path().join("p");
    (dir, path)
}

async fn side(name: &str, echo: bool) -> Side {
    let (dir, path) = profile_dir();
    let (node, _) = Node::create(Profile::new(&path), name, None, false, now())
        .await
        .unwrap();
    let (daemon, task) = start(node, echo).await;
    Side {
        _dir: dir,
        path,
        daemon,
        task,
    }
}

async fn card(s: &Side) -> String {
    let hints = s
        .daemon
        .listening()
        .iter()
        .map(ToString::to_string)
        .collect();
    s.daemon.node().lock().await.card(hints, now()).unwrap()
}

async fn pair(a: &Side, b: &Side) -> (node_core::AccountId, node_core::AccountId) {
    let (ca, cb) = (card(a).await, card(b).await);
    let bid = a
        .daemon
        .node()
        .lock()
        .await
        .add_contact(&cb, None, now())
        .await
        .unwrap();
    let aid = b
        .daemon
        .node()
        .lock()
        .await
        .add_contact(&ca, None, now())
        .await
        .unwrap();
    (aid, bid)
}

async fn count(s: &Side, log: LogId) -> usize {
    s.daemon
        .node()
        .lock()
        .await
        .log(&log)
        .map_or(0, |d| d.len())
}

async fn wait_count(s: &Side, log: LogId, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    if !try_wait_count(s, log, n, limit).await {
        panic!(
            "timed out waiting for {n} events, have {}",
            count(s, log).await
        );
    }
    start.elapsed()
}

async fn try_wait_count(s: &Side, log: LogId, n: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while count(s, log).await < n {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

async fn stop(s: Side) -> std::path::PathBuf {
    s.daemon.shutdown();
    s.task.await.unwrap().unwrap();
    s.daemon.clone().close().await;
    let d = s.daemon;
    drop(d);
    std::mem::forget(s._dir);
    s.path
}

/// CPU seconds this process used (user and system), from `/proc`.
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn round_trips() {
    let a = side("A", false).await;
    let b = side("B", true).await;
    let (_, bid) = pair(&a, &b).await;
    let log = LogId::conversation(a.daemon.node().lock().await.account(), bid);
    let b_device = b.daemon.node().lock().await.device();
    let mut rx = a.daemon.node().lock().await.subscribe();
    let mut samples = Vec::new();
    let mut sends = Vec::new();
    for i in 0..1100 {
        let t = Instant::now();
        a.daemon
            .node()
            .lock()
            .await
            .send_message(bid, &format!("ping {i}"), now())
            .await
            .unwrap();
        // As `kith send` answers: once the message is on the disk.
        a.daemon.durability().sync().await.unwrap();
        if i >= 100 {
            sends.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        loop {
            let ev = rx.recv().await.unwrap();
            if ev.log == log && ev.from == Some(b_device) {
                break;
            }
        }
        if i >= 100 {
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!(
        "round trip (send → peer daemon answers → answer stored), 1000 samples: p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut samples, 0.5),
        pct(&mut samples, 0.99)
    );
    println!(
        "local send alone (sign, one fsync'd transaction): p50 {:.2} ms",
        pct(&mut sends, 0.5)
    );
    lock_report("round trip", &a, &b);
}

/// Where the daemons' time went: the node lock's waits and holds, and the
/// store's sync rounds (group commit), per side.
fn lock_report(part: &str, a: &Side, b: &Side) {
    for (name, s) in [("A", a), ("B", b)] {
        let lock = s.daemon.node();
        println!(
            "{part}, node lock waits on {name}: {}",
            lock.waits.summary()
        );
        println!(
            "{part}, node lock holds on {name}: {}",
            lock.holds.summary()
        );
        let durable = s.daemon.durability();
        let rounds: Vec<String> = durable
            .round_times()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(b, n)| match b {
                Some(b) => format!("<{b}:{n}"),
                None => format!("more:{n}"),
            })
            .collect();
        println!(
            "{part}, store sync rounds on {name}: {} (µs: {})",
            durable.rounds(),
            rounds.join(" ")
        );
    }
}

async fn throughput() {
    let a = side("A", false).await;
    let b = side("B", false).await;
    let (_, bid) = pair(&a, &b).await;
    let log = LogId::conversation(a.daemon.node().lock().await.account(), bid);
    wait_count(&b, log, 0, Duration::from_secs(5)).await;
    // One transaction per message, as `kith send` does.
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        a.daemon
            .node()
            .lock()
            .await
            .send_message(bid, &format!("message {i:>6}"), now())
            .await
            .unwrap();
        a.daemon.durability().sync().await.unwrap();
    }
    wait_count(&b, log, n, Duration::from_secs(120)).await;
    println!(
        "one-way, one send per transaction: {:.0} messages/s ({n} messages)",
        n as f64 / t.elapsed().as_secs_f64()
    );
    // Batched sends (500 per transaction).
    let m = 50_000;
    let t = Instant::now();
    for chunk in 0..m / 500 {
        let texts: Vec<String> = (0..500)
            .map(|i| format!("message {:>6}", chunk * 500 + i))
            .collect();
        a.daemon
            .node()
            .lock()
            .await
            .send_messages(bid, &texts, now())
            .await
            .unwrap();
        a.daemon.durability().sync().await.unwrap();
    }
    if try_wait_count(&b, log, n + m, Duration::from_secs(120)).await {
        let rate = m as f64 / t.elapsed().as_secs_f64();
        println!("one-way, 500 sends per transaction: {rate:.0} messages/s ({m} messages)");
    } else {
        let have = count(&b, log).await;
        println!(
            "one-way, 500 sends per transaction: STALLED, receiver holds {have} of {}",
            n + m
        );
    }
    lock_report("throughput", &a, &b);
}

async fn history_and_reconnect() {
    let a = side("A", false).await;
    let b = side("B", false).await;
    let (_, bid) = pair(&a, &b).await;
    let log = LogId::conversation(a.daemon.node().lock().await.account(), bid);
    // B goes offline; A writes 100k messages of 100 bytes.
    let b_path = stop(b).await;
    let n = 100_000;
    let text = "x".repeat(100);
    for _ in 0..n / 1000 {
        let texts = vec![text.clone(); 1000];
        a.daemon
            .node()
            .lock()
            .await
            .send_messages(bid, &texts, now())
            .await
            .unwrap();
        a.daemon.durability().sync().await.unwrap();
    }
    let event_bytes: usize = {
        let node = a.daemon.node().lock().await;
        let ids: Vec<_> = node.log(&log).unwrap().ids().copied().collect();
        node.serve(log, &ids)
            .await
            .unwrap()
            .iter()
            .map(Vec::len)
            .sum()
    };
    let node = Node::open(Profile::new(&b_path), None).await.unwrap();
    let (bd, btask) = start(node, false).await;
    let b = Side {
        _dir: tempfile::tempdir().unwrap(),
        path: b_path,
        daemon: bd,
        task: btask,
    };
    let took = wait_count(&b, log, n, Duration::from_secs(600)).await;
    let (tx, rx) = b.daemon.wire_bytes();
    let (ftx, frx) = b.daemon.frame_bytes();
    let payload = n * text.len();
    println!(
        "history: {n} messages in {:.2} s; sync frames {} bytes; UDP bytes {} (B sent {tx}, received {rx}); text payload {payload} ({:.2}x); signed events {event_bytes} ({:.2}x)",
        took.as_secs_f64(),
        ftx + frx,
        tx + rx,
        (tx + rx) as f64 / payload as f64,
        (tx + rx) as f64 / event_bytes as f64
    );

    // Reconnect after missing 10 of 100k.
    let b_path = stop(b).await;
    let texts: Vec<String> = (0..10).map(|i| format!("late {i}")).collect();
    a.daemon
        .node()
        .lock()
        .await
        .send_messages(bid, &texts, now())
        .await
        .unwrap();
    let node = Node::open(Profile::new(&b_path), None).await.unwrap();
    let (bd, btask) = start(node, false).await;
    let b = Side {
        _dir: tempfile::tempdir().unwrap(),
        path: b_path,
        daemon: bd,
        task: btask,
    };
    let took = wait_count(&b, log, n + 10, Duration::from_secs(60)).await;
    let (tx, rx) = b.daemon.wire_bytes();
    let (ftx, frx) = b.daemon.frame_bytes();
    println!(
        "reconnect, 10 missed of {n}: {:.1} ms from start; sync frames {} bytes (sent {ftx}, received {frx}); UDP bytes {} (sent {tx}, received {rx}, with the QUIC handshake)",
        took.as_secs_f64() * 1000.0,
        ftx + frx,
        tx + rx
    );
}

/// Joins a new device to `inviter`'s account (node level, as the join
/// connection does) and starts its daemon.
async fn join(inviter: &Side, name: &str) -> Side {
    use node_core::sync::join::Invite;
    let (dir, path) = profile_dir();
    let hints = inviter.daemon.listening();
    let mut node = inviter.daemon.node().lock().await;
    let invite = Invite::parse(&node.invite(hints, now()).unwrap()).unwrap();
    let key = node_core::crypto::SigningKey::generate();
    let device = node_core::DeviceId::from(key.verifying_key());
    let proof = node_core::identity::entry::sign_join(&key, invite.account, name);
    let snapshot = node
        .accept_join(device, &invite.secret, name, proof, now())
        .await
        .unwrap();
    drop(node);
    let joined = Node::create_joined(
        Profile::new(&path),
        name,
        None,
        key,
        &invite,
        snapshot,
        now(),
    )
    .await
    .unwrap();
    let (daemon, task) = start(joined, false).await;
    Side {
        _dir: dir,
        path,
        daemon,
        task,
    }
}

async fn new_device_history() {
    let a = side("A", false).await;
    // 20 contacts (offline: only their cards are needed), 5000 messages
    // of 100 bytes with each.
    let mut logs = Vec::new();
    let text = "y".repeat(100);
    for i in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = Node::create(
            Profile::new(dir.path().join("c")),
            &format!("c{i}"),
            None,
            false,
            now(),
        )
        .await
        .unwrap();
        let card = c.card(vec!["127.0.0.1:9".into()], now()).unwrap();
        c.close().await;
        let mut node = a.daemon.node().lock().await;
        let id = node.add_contact(&card, None, now()).await.unwrap();
        for _ in 0..5 {
            node.send_messages(id, &vec![text.clone(); 1000], now())
                .await
                .unwrap();
        }
        logs.push(LogId::conversation(node.account(), id));
    }
    let event_bytes: usize = {
        let node = a.daemon.node().lock().await;
        let mut total = 0;
        for log in &logs {
            let ids: Vec<_> = node.log(log).unwrap().ids().copied().collect();
            total += node
                .serve(*log, &ids)
                .await
                .unwrap()
                .iter()
                .map(Vec::len)
                .sum::<usize>();
        }
        total
    };
    let t = Instant::now();
    let a2 = join(&a, "A2").await;
    for log in &logs {
        wait_count(&a2, *log, 5000, Duration::from_secs(600)).await;
    }
    let took = t.elapsed();
    let (ftx, frx) = a2.daemon.frame_bytes();
    let (tx, rx) = a2.daemon.wire_bytes();
    let payload = 100_000 * text.len();
    println!(
        "new device, 20 conversations of 5000 messages: full history in {:.2} s; sync frames {} bytes, UDP bytes {} ({:.2}x text payload {payload}, {:.2}x signed events {event_bytes})",
        took.as_secs_f64(),
        ftx + frx,
        tx + rx,
        (tx + rx) as f64 / payload as f64,
        (tx + rx) as f64 / event_bytes as f64
    );
    stop(a2).await;
    stop(a).await;
}

async fn revocation() {
    let a1 = side("A1", false).await;
    let b1 = side("B1", false).await;
    let (aid, _) = pair(&a1, &b1).await;
    let a2 = join(&a1, "A2").await;
    let a2_id = a2.daemon.node().lock().await.device();
    let b_knows = |active: bool| {
        let b1 = &b1;
        async move {
            b1.daemon
                .node()
                .lock()
                .await
                .account_log_state(aid)
                .is_ok_and(|s| s.is_active(&a2_id) == active)
        }
    };
    let start = Instant::now();
    while !b_knows(true).await {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "B1 never learned A2"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut samples = Vec::new();
    let t = Instant::now();
    a1.daemon
        .node()
        .lock()
        .await
        .revoke_device(&a2_id.to_string(), now())
        .await
        .unwrap();
    while !b_knows(false).await {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "B1 never learned the revocation"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    samples.push(t.elapsed());
    let stopped = a2.task.await.unwrap();
    println!(
        "revocation: the contact refuses the revoked device {:.1} ms after `device revoke`; the revoked device stopped itself ({})",
        samples[0].as_secs_f64() * 1000.0,
        stopped.err().map_or("no error".into(), |e| e.to_string())
    );
    stop(b1).await;
    stop(a1).await;
}

/// Rooms of real daemons: one account each, all contacts of the creator
/// only (so messages between the others travel through other members'
/// devices). For each room size: the time until every member device holds
/// a message, and the sync bytes each device sent for it (a multiple of the
/// message event's size).
async fn rooms() {
    let sizes: Vec<usize> = std::env::var("KITH_ROOM_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 30]);
    for n in sizes {
        let mut sides = Vec::with_capacity(n);
        for i in 0..n {
            sides.push(side(&format!("m{i}"), false).await);
        }
        for other in &sides[1..] {
            pair(&sides[0], other).await;
        }
        let room = sides[0]
            .daemon
            .node()
            .lock()
            .await
            .create_room("bench", false, now())
            .await
            .unwrap();
        for other in &sides[1..] {
            let mut node = sides[0].daemon.node().lock().await;
            let account = other.daemon.node().lock().await.account();
            node.room_invite(room, account, now()).await.unwrap();
        }
        let start = Instant::now();
        loop {
            let mut joined = 0;
            for s in &sides {
                let node = s.daemon.node().lock().await;
                if node
                    .room_state(&room)
                    .is_some_and(|st| st.joined().count() == n)
                {
                    joined += 1;
                }
            }
            if joined == n {
                break;
            }
            if start.elapsed() > Duration::from_secs(300) {
                for (i, s) in sides.iter().enumerate() {
                    let node = s.daemon.node().lock().await;
                    let st = node.room_state(&room).cloned().unwrap_or_default();
                    eprintln!(
                        "side {i}: joined {} members {} log {}",
                        st.joined().count(),
                        st.members.len(),
                        node.log(&room).map_or(0, |d| d.len())
                    );
                }
                panic!("room of {n} did not form");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let formed = start.elapsed();
        // Let the gossip links come up and settle (noting when every ring
        // link is first up).
        let mut all_up = None;
        while start.elapsed() < formed + Duration::from_secs(8) {
            if all_up.is_none() {
                let mut missing = 0;
                for s in &sides {
                    let neighbours = s.daemon.node().lock().await.room_ring_neighbours(&room);
                    let connected = s.daemon.connected();
                    missing += neighbours.iter().filter(|d| !connected.contains(d)).count();
                }
                if missing == 0 {
                    all_up = Some(start.elapsed() - formed);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match all_up {
            Some(t) => println!(
                "room of {n}: ring links all up {:.1} s after it formed",
                t.as_secs_f64()
            ),
            None => println!("room of {n}: ring links not all up 8 s after it formed"),
        }
        let (mut ring, mut ring_up, mut alone) = (0, 0, 0);
        for s in &sides {
            let neighbours = s.daemon.node().lock().await.room_ring_neighbours(&room);
            let connected = s.daemon.connected();
            let up = neighbours.iter().filter(|d| connected.contains(d)).count();
            ring += neighbours.len();
            ring_up += up;
            alone += usize::from(up == 0);
        }
        println!(
            "room of {n}: ring links up {ring_up} of {ring} (device ends), devices with none {alone}"
        );
        // What the daemons spend with nothing sent (all in this process).
        let cpu0 = process_cpu();
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "room of {n}: all daemons idle use {:.1}% of a core (2 s, 8 s after it formed)",
            (process_cpu() - cpu0) / 2.0 * 100.0
        );
        let (mut times, mut mean_up, mut max_up) = (Vec::new(), Vec::new(), Vec::new());
        let mut arrivals = Vec::new();
        for trial in 0..10 {
            let writer = &sides[1 + trial % (n - 1)];
            let before: Vec<u64> = sides.iter().map(|s| s.daemon.frame_bytes().0).collect();
            // Each member's time is when its node announces the event (as
            // its user would see it), not when a poll finds it: a poll
            // locking every node in turn measured itself.
            let (target_tx, target_rx) = tokio::sync::watch::channel(None);
            let mut watchers = Vec::with_capacity(n);
            for s in &sides {
                let rx = s.daemon.node().lock().await.subscribe();
                let d = Arc::clone(&s.daemon);
                watchers.push(tokio::spawn(seen_at(d, room, rx, target_rx.clone())));
            }
            let t = Instant::now();
            let id = writer
                .daemon
                .node()
                .lock()
                .await
                .room_send(room, &"x".repeat(1024), now())
                .await
                .unwrap();
            target_tx.send(Some(id)).unwrap();
            let deadline = tokio::time::Instant::from_std(t + Duration::from_secs(60));
            let mut last = t;
            let mut holders = 0;
            for w in watchers {
                let Ok(Ok(at)) = tokio::time::timeout_at(deadline, w).await else {
                    break;
                };
                holders += 1;
                arrivals.push(at.duration_since(t).as_secs_f64() * 1000.0);
                last = last.max(at);
            }
            if holders < n {
                {
                    let wnode = writer.daemon.node().lock().await;
                    let connected = writer.daemon.connected();
                    let pushed: Vec<_> = connected
                        .iter()
                        .filter(|p| wnode.room_push_to(&room, p, &connected))
                        .collect();
                    let parents = wnode
                        .log(&room)
                        .and_then(|d| d.node(&id))
                        .map(|n| n.parents.clone())
                        .unwrap_or_default();
                    eprintln!(
                        "trial {trial}: writer {} ({}) links {}, pushes to {}",
                        1 + trial % (n - 1),
                        wnode.device().short(8),
                        connected.len(),
                        pushed.len()
                    );
                    drop(wnode);
                    for (i, s) in sides.iter().enumerate().take(12) {
                        let node = s.daemon.node().lock().await;
                        let dag = node.log(&room);
                        eprintln!(
                            "side {i}: links {} pending {} len {} parents known {}",
                            s.daemon.connected().len(),
                            dag.map_or(0, |d| d.pending_len()),
                            dag.map_or(0, |d| d.len()),
                            parents
                                .iter()
                                .filter(|p| dag.is_some_and(|d| d.knows(p)))
                                .count()
                        );
                    }
                }
                panic!("message did not spread: {holders} of {n} hold it");
            }
            times.push(last.duration_since(t).as_secs_f64() * 1000.0);
            // Acknowledgements settle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let size = writer
                .daemon
                .node()
                .lock()
                .await
                .serve(room, &[id])
                .await
                .unwrap()[0]
                .len() as f64;
            let up: Vec<f64> = sides
                .iter()
                .zip(&before)
                .map(|(s, b)| (s.daemon.frame_bytes().0 - b) as f64 / size)
                .collect();
            mean_up.push(up.iter().sum::<f64>() / n as f64);
            max_up.push(up.iter().copied().fold(0.0, f64::max));
        }
        println!(
            "room of {n} daemons (formed in {:.1} s): all hold a message p50 {:.1} ms, max {:.1} ms; upload per device mean {:.2}×, max {:.2}× the event",
            formed.as_secs_f64(),
            pct(&mut times.clone(), 0.5),
            pct(&mut times, 1.0),
            mean_up.iter().sum::<f64>() / mean_up.len() as f64,
            max_up.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "room of {n} daemons: each member holds a message p50 {:.1} ms, p90 {:.1} ms",
            pct(&mut arrivals.clone(), 0.5),
            pct(&mut arrivals, 0.9),
        );
        for s in sides {
            stop(s).await;
        }
    }
}

/// When `d`'s node announces the event `target` will name, in `room`.
async fn seen_at(
    d: Arc<Daemon>,
    room: LogId,
    mut events: tokio::sync::broadcast::Receiver<node_core::node::LocalEvent>,
    mut target: tokio::sync::watch::Receiver<Option<node_core::EventId>>,
) -> Instant {
    let mut seen = Vec::new();
    let mut lagged = false;
    loop {
        let wanted = *target.borrow_and_update();
        if let Some(id) = wanted {
            if let Some((_, at)) = seen.iter().find(|(i, _)| *i == id) {
                return *at;
            }
            // (Announcements missed: the store says.)
            if lagged
                && d.node()
                    .lock()
                    .await
                    .log(&room)
                    .is_some_and(|l| l.knows(&id))
            {
                return Instant::now();
            }
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) if ev.log == room => seen.push((ev.id, Instant::now())),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => lagged = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
            },
            _ = target.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)), if lagged => {}
        }
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
    rt.block_on(async {
        // KITH_BENCH=rtt|throughput|history runs one part (for profiling).
        let only = std::env::var("KITH_BENCH").unwrap_or_default();
        if only.is_empty() || only == "rtt" {
            round_trips().await;
        }
        if only.is_empty() || only == "throughput" {
            throughput().await;
        }
        if only.is_empty() || only == "history" {
            history_and_reconnect().await;
        }
        if only.is_empty() || only == "devices" {
            new_device_history().await;
            revocation().await;
        }
        if only.is_empty() || only == "rooms" {
            rooms().await;
        }
    });
}
