//! The crash suite: two accounts with two devices each exchange messages
//! while daemons are killed with SIGKILL at seeded random moments (the
//! sender's, the receiver's, or both), then restarted. Every message whose
//! `kith send` returned must end up exactly once on all four devices, in
//! the same order everywhere.
//!
//! A short round runs in `cargo test` (`tests/tests/crash.rs`); the long
//! soak is `cargo build --release -p kith && cargo run --release -p
//! kith-tests --bin crash-soak -- --rounds 100 --messages 10000`.

use crate::{Daemon, Profile, pair, wait_until};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds, each with four fresh profiles.
    pub rounds: u32,
    /// Messages sent per round (half each way).
    pub messages: u32,
    /// Seed of the kill schedule.
    pub seed: u64,
    /// Longest wait between two kills, in milliseconds.
    pub kill_every_ms: u64,
}

/// What a run found (all counts over every round).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Rounds run.
    pub rounds: u32,
    /// Messages whose `kith send` returned an id.
    pub messages: u64,
    /// Sends that failed (their daemon was down): not counted as sent.
    pub refused: u64,
    /// Daemons killed with SIGKILL.
    pub kills: u64,
    /// (message, device) pairs where a returned message is missing.
    pub lost: u64,
    /// (message, device) pairs where a message shows more than once.
    pub duplicated: u64,
    /// Devices whose order of the conversation differs from the first's.
    pub order_mismatches: u64,
}

impl Report {
    /// One line, stable for scripts that read it.
    pub fn line(&self) -> String {
        format!(
            "crash-soak: rounds {} messages {} refused {} kills {} lost {} duplicated {} order-mismatches {}",
            self.rounds,
            self.messages,
            self.refused,
            self.kills,
            self.lost,
            self.duplicated,
            self.order_mismatches
        )
    }
}

/// `kith send` without a process per message: the same request, one JSON
/// line each way over the daemon's socket (what the CLI sends). The id, or
/// why not (the daemon is down, or refused).
fn rpc_send(home: &std::path::Path, target: &str, text: &str) -> Result<String, String> {
    let v = rpc(
        home,
        &serde_json::json!({ "method": "send", "target": target, "text": text }),
    )?;
    match v["id"].as_str() {
        Some(id) => Ok(id.to_owned()),
        None => Err(format!("no id in {v}")),
    }
}

/// The ids of a conversation in display order, read over the socket
/// (a long conversation's answer is larger than the CLI reads in one line).
fn rpc_log_ids(home: &std::path::Path, target: &str) -> Result<Vec<String>, String> {
    let v = rpc(
        home,
        &serde_json::json!({ "method": "log", "target": target, "limit": null }),
    )?;
    let list = v.as_array().ok_or_else(|| format!("not a list: {v}"))?;
    Ok(list
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect())
}

/// One request to the daemon, one JSON line each way (as the CLI does):
/// the answer's value, or why not.
fn rpc(home: &std::path::Path, req: &serde_json::Value) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(home.join("kith.sock"))
        .map_err(|e| format!("no daemon: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut line = req.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("reading: {e}"))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&answer).map_err(|e| format!("answer {answer:?}: {e}"))?;
    match v.get_mut("ok") {
        Some(ok) => Ok(ok.take()),
        None => Err(format!("refused: {answer}")),
    }
}

/// A small seeded generator (SplitMix64): the same seed, the same kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One device: its profile and its daemon (absent while killed).
struct Device {
    profile: Profile,
    daemon: Mutex<Option<Daemon>>,
}

impl Device {
    fn new(profile: Profile) -> Self {
        let daemon = profile.spawn_daemon_shared();
        Self {
            profile,
            daemon: Mutex::new(Some(daemon)),
        }
    }
    fn kill(&self) {
        let mut d = self.daemon.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut daemon) = d.take() {
            daemon.kill_hard();
        }
    }
    fn ensure_running(&self) {
        let mut d = self.daemon.lock().unwrap_or_else(|p| p.into_inner());
        if d.is_none() {
            *d = Some(self.profile.spawn_daemon_shared());
        }
    }
}

/// Runs `plan`, printing one line per round; returns the totals.
pub fn run(plan: Plan) -> Report {
    let mut total = Report::default();
    let mut rng = Rng(plan.seed);
    for round in 0..plan.rounds {
        let r = run_round(plan, rng.next());
        eprintln!("round {}: {}", round + 1, r.line());
        total.rounds += 1;
        total.messages += r.messages;
        total.refused += r.refused;
        total.kills += r.kills;
        total.lost += r.lost;
        total.duplicated += r.duplicated;
        total.order_mismatches += r.order_mismatches;
    }
    total
}

fn run_round(plan: Plan, seed: u64) -> Report {
    // A1 and A2 are Alice's devices, B1 and B2 Bob's.
    let a1 = Profile::new();
    a1.init("alice");
    let a1 = Device::new(a1);
    let b1 = Profile::new();
    b1.init("bob");
    let b1 = Device::new(b1);
    let a2 = Profile::new();
    a2.join(&a1.profile, "alice-2");
    let a2 = Device::new(a2);
    let b2 = Profile::new();
    b2.join(&b1.profile, "bob-2");
    let b2 = Device::new(b2);
    let (bob, alice) = pair(&a1.profile, &b1.profile);
    let devices = Arc::new([a1, a2, b1, b2]);
    // Every device knows the other account before the storm starts.
    for (i, who) in [(1, &bob), (3, &alice)] {
        let known = wait_until(Duration::from_secs(60), || {
            devices[i]
                .profile
                .contacts_json()
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x["id"] == who.as_str()))
        });
        assert!(known, "device {i} never learned its account's contact");
    }

    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let refused = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    // Each account's two devices take turns sending to the other account.
    for (from, to) in [([0usize, 1], bob.clone()), ([2, 3], alice.clone())] {
        let (devices, sent, refused) = (
            Arc::clone(&devices),
            Arc::clone(&sent),
            Arc::clone(&refused),
        );
        let n = plan.messages / 2;
        senders.push(thread::spawn(move || {
            let mut i = 0;
            let deadline = Instant::now() + Duration::from_secs(60 + u64::from(n) / 20);
            while i < n && Instant::now() < deadline {
                let dev = &devices[from[(i % 2) as usize]];
                match rpc_send(dev.profile.home(), &to, &format!("m{i}")) {
                    Ok(id) => {
                        sent.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                        i += 1;
                    }
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }));
    }
    let killer = {
        let (devices, done) = (Arc::clone(&devices), Arc::clone(&done));
        thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut kills = 0u64;
            while !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50 + rng.below(plan.kill_every_ms)));
                // The sender, the receiver, or both (by device).
                let victims: Vec<usize> = match rng.below(5) {
                    0 => vec![0],
                    1 => vec![2],
                    2 => vec![0, 2],
                    3 => vec![1, 3],
                    _ => vec![rng.below(4) as usize],
                };
                for &v in &victims {
                    devices[v].kill();
                    kills += 1;
                }
                thread::sleep(Duration::from_millis(rng.below(300)));
                for &v in &victims {
                    devices[v].ensure_running();
                }
            }
            kills
        })
    };
    for s in senders {
        let _ = s.join();
    }
    done.store(true, Ordering::Relaxed);
    let kills = killer.join().unwrap_or(0);
    for d in devices.iter() {
        d.ensure_running();
    }

    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let targets = [&bob, &bob, &alice, &alice];
    let want: HashSet<&String> = sent.iter().collect();
    let complete = |logs: &BTreeMap<usize, Vec<String>>| {
        logs.len() == 4
            && logs.values().all(|l| {
                let have: HashSet<&String> = l.iter().collect();
                want.iter().all(|id| have.contains(id))
            })
    };
    let read = || {
        let mut logs = BTreeMap::new();
        for (i, d) in devices.iter().enumerate() {
            if let Ok(ids) = rpc_log_ids(d.profile.home(), targets[i]) {
                logs.insert(i, ids);
            }
        }
        logs
    };
    let settle = Duration::from_secs(60 + sent.len() as u64 / 50);
    let mut logs = read();
    let deadline = Instant::now() + settle;
    while !complete(&logs) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(500));
        logs = read();
    }
    let mut report = Report {
        rounds: 1,
        messages: sent.len() as u64,
        refused: refused.load(Ordering::Relaxed),
        kills,
        ..Report::default()
    };
    let first: Option<Vec<&String>> = logs
        .get(&0)
        .map(|l| l.iter().filter(|id| want.contains(id)).collect());
    for i in 0..4 {
        let Some(log) = logs.get(&i) else {
            report.lost += sent.len() as u64;
            continue;
        };
        let mut count: HashMap<&String, u64> = HashMap::new();
        for id in log {
            *count.entry(id).or_default() += 1;
        }
        report.lost += want.iter().filter(|id| !count.contains_key(**id)).count() as u64;
        report.duplicated += count
            .values()
            .filter(|c| **c > 1)
            .map(|c| c - 1)
            .sum::<u64>();
        let order: Vec<&String> = log.iter().filter(|id| want.contains(id)).collect();
        if first.as_ref().is_some_and(|f| *f != order) {
            report.order_mismatches += 1;
        }
    }
    if report.lost + report.duplicated + report.order_mismatches > 0 {
        for d in devices.iter() {
            eprintln!("{}", d.profile.daemon_logs());
        }
    }
    report
}
