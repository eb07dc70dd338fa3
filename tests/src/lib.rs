//! Helpers for the whole-system tests: find the `kith` binary, make
//! throw-away profiles, run commands with a time limit, and run daemons that
//! are stopped (SIGTERM, then wait) when their guard is dropped.
//!
//! Daemons only ever listen on loopback (`--listen 127.0.0.1:0`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub mod crash;
pub mod prosody;

/// How long any single command may run before the test gives up on it.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// The `kith` binary: `KITH_BIN`, else `kith` in the target folder holding
/// this test executable (`target/debug/deps/x` → `target/debug/kith`).
pub fn kith_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KITH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // Beside a binary of this crate (target/<profile>/crash-soak), else
    // one folder up from a test executable (target/<profile>/deps/x).
    let beside = exe.parent().map(|d| d.join("kith"));
    if let Some(bin) = beside.filter(|b| b.is_file()) {
        return bin;
    }
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is in target/<profile>/deps");
    let bin = dir.join("kith");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo test --workspace` or set KITH_BIN",
        bin.display()
    );
    bin
}

/// Runs `script` with `sh -ec`; fails the test with its stderr if it fails.
/// Returns its stdout.
pub fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .output()
        .expect("running sh");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether this runs as root with every one of `tools` on the PATH (what
/// network-namespace and mount tests need).
pub fn root_with(tools: &[&str]) -> bool {
    let root =
        std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let found = tools.iter().all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    });
    root.unwrap_or(false) && found
}

/// A server binary (`kith-mailboxd`, …) beside the `kith` binary.
pub fn server_bin(name: &str) -> PathBuf {
    let bin = kith_bin().with_file_name(name);
    assert!(
        bin.is_file(),
        "{} not found: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// A `kith` command with a clean environment: no `KITH_HOME`, no
/// `KITH_PASSPHRASE`, stdin not a terminal.
pub fn kith_command() -> Command {
    let mut cmd = Command::new(kith_bin());
    cmd.env_remove("KITH_HOME")
        .env_remove("KITH_PASSPHRASE")
        .env_remove("KITH_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion, killing it and failing the test if it takes
/// longer than `limit`.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning kith");
    let out = reader(child.stdout.take().expect("piped stdout"));
    let err = reader(child.stderr.take().expect("piped stderr"));
    let status = match wait_limited(&mut child, limit) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Waits for `child` up to `limit`; `None` if it is still running.
pub fn wait_limited(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("waiting for a child") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to `pid` with the `kill` command.
pub fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(st.success(), "kill -TERM {pid} failed");
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the command succeeded; returns its stdout.
#[track_caller]
pub fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts the contract for a failure: a non-zero exit other than 2 (which
/// is kept for bad usage) and exactly one line on stderr, starting with
/// `kith:`. Returns that line.
#[track_caller]
pub fn assert_fails_cleanly(out: &Output) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success\nstdout: {}\nstderr: {err}",
        stdout(out)
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "exit 2 is for bad usage; stderr: {err}"
    );
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}; stderr: {err}",
        out.status
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{err}");
    assert!(
        lines[0].starts_with("kith: "),
        "stderr line does not start with `kith: `: {err}"
    );
    lines[0].to_owned()
}

/// Asserts a clap usage error: exit 2, stderr starting with `error:` and
/// pointing at `--help`, nothing on stdout.
#[track_caller]
pub fn assert_usage_error(out: &Output) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error:"), "stderr: {err}");
    assert!(err.contains("--help"), "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(out));
}

/// True if `s` is a 32-byte id as printed: 52 lowercase base32 characters.
pub fn is_id(s: &str) -> bool {
    s.len() == 52
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The ids `kith init` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// Account id.
    pub account: String,
    /// Device id.
    pub device: String,
}

/// A throw-away profile: `/tmp/kXXXXXX/h` (short, for the Unix socket path
/// limit), with room for logs and other files beside it in `/tmp/kXXXXXX`.
#[derive(Debug)]
pub struct Profile {
    root: tempfile::TempDir,
    home: PathBuf,
    passphrase: Option<String>,
    daemons: AtomicU32,
}

impl Default for Profile {
    fn default() -> Self {
        Self::new()
    }
}

impl Profile {
    /// A new, not yet initialised profile whose commands get no passphrase.
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("k")
            .tempdir_in("/tmp")
            .expect("making a temporary folder");
        let home = root.path().join("h");
        Self {
            root,
            home,
            passphrase: None,
            daemons: AtomicU32::new(0),
        }
    }

    /// Gives every later command this `KITH_PASSPHRASE` (or none).
    pub fn set_passphrase(&mut self, pass: Option<&str>) {
        self.passphrase = pass.map(str::to_owned);
    }

    /// The profile folder (`--home`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// A path beside the profile (not inside it), for outputs and logs.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// A `kith --home HOME ARGS` command, with the profile's passphrase in
    /// the environment if it has one.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = kith_command();
        cmd.arg("--home").arg(&self.home).args(args);
        if let Some(p) = &self.passphrase {
            cmd.env("KITH_PASSPHRASE", p);
        }
        cmd
    }

    /// Runs `kith --home HOME ARGS` to completion.
    pub fn kith<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_limited(&mut self.command(args), COMMAND_LIMIT)
    }

    /// `kith init --name NAME --json` (with `--no-passphrase` if the profile
    /// has no passphrase); panics on failure.
    pub fn init(&self, name: &str) -> Ids {
        let mut args = vec!["init", "--name", name, "--json"];
        if self.passphrase.is_none() {
            args.push("--no-passphrase");
        }
        let v: serde_json::Value =
            serde_json::from_str(&assert_ok(&self.kith(&args))).expect("init --json is JSON");
        Ids {
            account: v["account"].as_str().expect("account").to_owned(),
            device: v["device"].as_str().expect("device").to_owned(),
        }
    }

    /// Starts `kith daemon --listen 127.0.0.1:0` without waiting for it.
    pub fn start_daemon(&mut self) -> Daemon {
        self.start_daemon_shared()
    }

    /// Starts a daemon and waits (up to 10 s) until it answers `status`.
    pub fn spawn_daemon(&mut self) -> Daemon {
        self.spawn_daemon_shared()
    }

    /// Like [`Profile::start_daemon`], through a shared reference (for
    /// restarting a daemon while other threads use the profile).
    pub fn start_daemon_shared(&self) -> Daemon {
        self.start_daemon_with(&[])
    }

    /// Starts `kith daemon --listen 127.0.0.1:0 EXTRA…` without waiting.
    pub fn start_daemon_with(&self, extra: &[&str]) -> Daemon {
        self.start_daemon_on("127.0.0.1:0", extra)
    }

    /// Starts a daemon listening on `listen` (a fixed loopback port keeps a
    /// device's address across restarts) and waits until it answers.
    pub fn spawn_daemon_on(&self, listen: &str) -> Daemon {
        let daemon = self.start_daemon_on(listen, &[]);
        self.wait_answering(daemon)
    }

    fn start_daemon_on(&self, listen: &str, extra: &[&str]) -> Daemon {
        let n = self.daemons.fetch_add(1, Ordering::SeqCst) + 1;
        let log = self.scratch(&format!("daemon{n}.log"));
        let file = std::fs::File::create(&log).expect("creating the daemon log");
        let child = self
            .command(["daemon", "--listen", listen])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawning kith daemon");
        Daemon {
            child: Some(child),
            log,
        }
    }

    /// Starts a daemon listening on `listen` with extra arguments, and
    /// waits until it answers.
    pub fn spawn_daemon_on_with(&self, listen: &str, extra: &[&str]) -> Daemon {
        let daemon = self.start_daemon_on(listen, extra);
        self.wait_answering(daemon)
    }

    /// Like [`Profile::spawn_daemon`], through a shared reference.
    pub fn spawn_daemon_shared(&self) -> Daemon {
        self.spawn_daemon_with(&[])
    }

    /// Starts a daemon with extra arguments and waits until it answers.
    pub fn spawn_daemon_with(&self, extra: &[&str]) -> Daemon {
        let daemon = self.start_daemon_with(extra);
        self.wait_answering(daemon)
    }

    fn wait_answering(&self, daemon: Daemon) -> Daemon {
        // Generous: a passphrase profile first runs argon2id (256 MiB, three
        // passes), which takes well over 10 s while other tests' daemons
        // share the two cores (seen in CI); the wait ends as soon as the
        // daemon answers.
        let out = self.kith(["status", "--wait", "60", "--json"]);
        assert!(
            out.status.success(),
            "daemon did not come up: {}\ndaemon log:\n{}",
            stderr(&out),
            daemon.log()
        );
        daemon
    }

    /// The logs of every daemon this profile ran so far, oldest first, each
    /// under a `--- daemonN.log` heading (for assertion messages).
    pub fn daemon_logs(&self) -> String {
        let mut all = String::new();
        for n in 1..=self.daemons.load(Ordering::SeqCst) {
            let name = format!("daemon{n}.log");
            let text = std::fs::read_to_string(self.scratch(&name)).unwrap_or_default();
            all.push_str(&format!("--- {name}\n{text}"));
        }
        all
    }

    /// `kith card`: the profile's `kith:card/…` URI (needs the daemon).
    pub fn card(&self) -> String {
        let text = assert_ok(&self.kith(["card"]));
        let uri = text.trim();
        assert!(uri.starts_with("kith:card/"), "card: {text}");
        uri.to_owned()
    }

    /// `kith contact add CARD`; returns the account id it printed.
    pub fn add_contact(&self, card: &str) -> String {
        let out = self.kith(["contact", "add", card]);
        let id = assert_ok(&out).trim().to_owned();
        assert!(is_id(&id), "contact add printed {id:?}");
        id
    }

    /// `kith contact requests --json`, parsed; panics on failure.
    pub fn requests_json(&self) -> Vec<serde_json::Value> {
        let out = self.kith(["contact", "requests", "--json"]);
        match serde_json::from_str(&assert_ok(&out)) {
            Ok(serde_json::Value::Array(list)) => list,
            other => panic!("contact requests --json is not an array: {other:?}"),
        }
    }

    /// `kith contact list --json`, parsed.
    pub fn contacts_json(&self) -> serde_json::Value {
        let out = self.kith(["contact", "list", "--json"]);
        serde_json::from_str(&assert_ok(&out)).expect("contact list --json is JSON")
    }

    /// `kith send TARGET TEXT`: the message id, or the failure's stderr.
    pub fn try_send(&self, target: &str, text: &str) -> Result<String, String> {
        let out = self.kith(["send", target, text]);
        if out.status.success() {
            let id = stdout(&out).trim().to_owned();
            assert!(is_id(&id), "send printed {id:?}");
            Ok(id)
        } else {
            Err(format!("{:?}: {}", out.status, stderr(&out)))
        }
    }

    /// `kith send TARGET TEXT`; returns the message id, panics on failure.
    #[track_caller]
    pub fn send(&self, target: &str, text: &str) -> String {
        match self.try_send(target, text) {
            Ok(id) => id,
            Err(e) => panic!("send to {target} failed: {e}\n{}", self.daemon_logs()),
        }
    }

    /// `kith log TARGET --json`, parsed: the messages in display order, or
    /// the failure's stderr (e.g. while the daemon is down).
    pub fn try_log_json(&self, target: &str) -> Result<Vec<Message>, String> {
        let out = self.kith(["log", target, "--json"]);
        if !out.status.success() {
            return Err(format!("{:?}: {}", out.status, stderr(&out)));
        }
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("log --json is JSON");
        Ok(v.as_array()
            .expect("log --json is an array")
            .iter()
            .map(Message::from_json)
            .collect())
    }

    /// `kith log TARGET --json`; panics on failure.
    #[track_caller]
    pub fn log_json(&self, target: &str) -> Vec<Message> {
        match self.try_log_json(target) {
            Ok(log) => log,
            Err(e) => panic!("log {target} failed: {e}\n{}", self.daemon_logs()),
        }
    }

    /// The texts of `log TARGET --json` (none if it fails).
    pub fn texts(&self, target: &str) -> Vec<String> {
        self.try_log_json(target)
            .map(|log| log.into_iter().map(|m| m.text).collect())
            .unwrap_or_default()
    }

    /// Whether this profile's daemon has a link to `device` now.
    pub fn linked_to(&self, device: &str) -> bool {
        self.status_json()["peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|d| d.as_str() == Some(device)))
    }

    /// `kith status --json`, parsed; panics on failure.
    pub fn status_json(&self) -> serde_json::Value {
        let out = self.kith(["status", "--json"]);
        serde_json::from_str(&assert_ok(&out)).expect("status --json is JSON")
    }

    /// Every file in the profile folder (recursively) with its contents.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        walk(&self.home, &mut |p| {
            if p.file_name() == Some(OsStr::new("kith.sock")) {
                return;
            }
            files.insert(p.to_owned(), std::fs::read(p).expect("reading a file"));
        });
        files
    }
}

/// One entry of `kith log --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message id.
    pub id: String,
    /// Author's account id.
    pub author: String,
    /// Author's device id.
    pub device: String,
    /// The text.
    pub text: String,
    /// RFC 3339 time.
    pub time: String,
    /// Whether a device of every other member has it.
    pub delivered: bool,
}

impl Message {
    /// Reads one `kith log --json` entry; panics on a missing field.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("log entry without string {k:?}: {v}"))
                .to_owned()
        };
        Self {
            id: field("id"),
            author: field("author"),
            device: field("device"),
            text: field("text"),
            time: field("time"),
            delivered: v["delivered"]
                .as_bool()
                .unwrap_or_else(|| panic!("log entry without bool delivered: {v}")),
        }
    }
}

/// Makes `a` and `b` contacts of each other (each adds the other's card;
/// both daemons must run). Returns (b's account id as `a` added it, a's
/// account id as `b` added it).
pub fn pair(a: &Profile, b: &Profile) -> (String, String) {
    let (ca, cb) = (a.card(), b.card());
    (a.add_contact(&cb), b.add_contact(&ca))
}

/// Polls `cond` (every 100 ms) until it holds or `limit` passes; returns
/// whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Calls `f` for every regular file under `dir`.
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).expect("reading a folder") {
        let entry = entry.expect("reading a folder entry");
        let ty = entry.file_type().expect("file type");
        if ty.is_dir() {
            walk(&entry.path(), f);
        } else if ty.is_file() {
            f(&entry.path());
        }
    }
}

/// A running `kith daemon`; SIGTERMed and waited for when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// A daemon started some other way (e.g. inside a network namespace),
    /// logging to `log`.
    pub fn from_child(child: Child, log: PathBuf) -> Self {
        Self {
            child: Some(child),
            log,
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon not yet stopped").id()
    }

    /// What the daemon wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has exited (without reaping it for good).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("waiting for the daemon"))
    }

    /// Waits up to `limit` for the daemon to exit by itself.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_limited(self.child.as_mut().expect("daemon"), limit)
    }

    /// Kills the daemon with SIGKILL (no clean-up) and reaps it.
    pub fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("daemon already stopped");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("daemon already stopped");
        if child.try_wait().expect("waiting for the daemon").is_none() {
            sigterm(child.id());
        }
        let status = wait_limited(child, limit);
        if status.is_some() {
            self.child = None;
        }
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // Not `sigterm`: no panic while perhaps already unwinding.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if wait_limited(child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ---- multi-device helpers ----

/// One entry of `kith device list --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id.
    pub id: String,
    /// The name it was given (`init --join … --name`).
    pub name: String,
    /// `active` or `revoked`.
    pub state: String,
    /// Whether it is the device that answered.
    pub current: bool,
}

impl Device {
    /// Reads one `kith device list --json` entry; panics on a missing field.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("device entry without string {k:?}: {v}"))
                .to_owned()
        };
        Self {
            id: field("id"),
            name: field("name"),
            state: field("state"),
            current: v["current"]
                .as_bool()
                .unwrap_or_else(|| panic!("device entry without bool current: {v}")),
        }
    }
}

impl Profile {
    /// `kith device invite`: a one-time `kith:join/…` code (needs the daemon).
    pub fn invite(&self) -> String {
        let text = assert_ok(&self.kith(["device", "invite"]));
        let code = text.trim();
        assert!(
            code.starts_with("kith:join/") && code.lines().count() == 1,
            "device invite printed {text:?}"
        );
        code.to_owned()
    }

    /// `kith init --join CODE --name NAME --json` (with `--no-passphrase` if
    /// the profile has no passphrase), whatever its outcome.
    pub fn try_join(&self, code: &str, name: &str) -> Output {
        let mut args = vec!["init", "--join", code, "--name", name, "--json"];
        if self.passphrase.is_none() {
            args.push("--no-passphrase");
        }
        self.kith(&args)
    }

    /// Links this new profile to `inviter`'s account as device `name`: a code
    /// from `device invite` on `inviter` (whose daemon must run), then
    /// `init --join` here. Does not start this profile's daemon; panics on
    /// failure.
    pub fn join(&self, inviter: &Profile, name: &str) -> Ids {
        let code = inviter.invite();
        let out = self.try_join(&code, name);
        assert!(
            out.status.success(),
            "init --join failed: {:?}\nstdout: {}\nstderr: {}\ninviter's daemons:\n{}",
            out.status,
            stdout(&out),
            stderr(&out),
            inviter.daemon_logs()
        );
        let v: serde_json::Value =
            serde_json::from_str(&stdout(&out)).expect("init --join --json is JSON");
        let ids = Ids {
            account: v["account"].as_str().expect("account").to_owned(),
            device: v["device"].as_str().expect("device").to_owned(),
        };
        assert!(
            is_id(&ids.account) && is_id(&ids.device),
            "init --join: {v}"
        );
        ids
    }

    /// `kith device list --json`, parsed; panics on failure.
    pub fn devices_json(&self) -> serde_json::Value {
        let out = self.kith(["device", "list", "--json"]);
        serde_json::from_str(&assert_ok(&out)).expect("device list --json is JSON")
    }

    /// `kith device list --json` as [`Device`]s.
    pub fn devices(&self) -> Vec<Device> {
        self.devices_json()
            .as_array()
            .expect("device list --json is an array")
            .iter()
            .map(Device::from_json)
            .collect()
    }

    /// The devices `kith contact list --json` shows for the contact with
    /// account id `account` (its active devices); empty if it is not listed.
    pub fn contact_devices(&self, account: &str) -> std::collections::BTreeSet<String> {
        let contacts = self.contacts_json();
        let Some(contact) = contacts
            .as_array()
            .expect("contact list --json is an array")
            .iter()
            .find(|c| c["id"] == account)
        else {
            return std::collections::BTreeSet::new();
        };
        contact["devices"]
            .as_array()
            .unwrap_or_else(|| panic!("contact without a devices array: {contact}"))
            .iter()
            .map(|d| d.as_str().expect("device ids are strings").to_owned())
            .collect()
    }
}

/// A network namespace with only loopback, in which an nftables chain
/// cuts every packet to or from one UDP port (a daemon's: its sync links
/// and its calls alike) and heals it. Needs root, `ip` and `nft`.
#[derive(Debug)]
pub struct Loopback {
    /// The namespace's name.
    pub ns: String,
}

impl Loopback {
    /// A new namespace (its name starts with `k` and `tag`); `None`
    /// (the test skips) without root, `ip` and `nft`, except under CI.
    pub fn new(tag: &str) -> Option<Self> {
        if !root_with(&["ip", "nft"]) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the tests in network namespaces (root, ip, nft)"
            );
            eprintln!("skipped: needs root, ip and nft");
            return None;
        }
        let ns = format!("k{tag}{}", std::process::id() % 100_000);
        sh(&format!(
            "ip netns add {ns}
             ip -n {ns} link set lo up
             ip netns exec {ns} nft add table inet cut
             ip netns exec {ns} nft add chain inet cut out '{{ type filter hook output priority 0; policy accept; }}'
             ip netns exec {ns} nft add chain inet cut inbound '{{ type filter hook input priority 0; policy accept; }}'"
        ));
        Some(Self { ns })
    }

    /// Drops every packet to or from `port`.
    pub fn cut(&self, port: u16) {
        sh(&format!(
            "ip netns exec {ns} nft add rule inet cut out udp dport {port} drop
             ip netns exec {ns} nft add rule inet cut out udp sport {port} drop",
            ns = self.ns
        ));
    }

    /// Polices what leaves `port` to `kbytes` a second (a slow uplink
    /// that drops what it cannot carry).
    pub fn cap(&self, port: u16, kbytes: u32) {
        sh(&format!(
            "ip netns exec {ns} nft add rule inet cut out udp sport {port} limit rate over {kbytes} kbytes/second burst 16 kbytes drop",
            ns = self.ns
        ));
    }

    /// Polices what leaves `port` to `kbytes` a second where it arrives
    /// (the sender's socket sees no error, as behind a real bottleneck:
    /// what does not fit is lost on the way).
    pub fn police(&self, port: u16, kbytes: u32) {
        sh(&format!(
            "ip netns exec {ns} nft add rule inet cut inbound udp sport {port} limit rate over {kbytes} kbytes/second burst 8 kbytes drop",
            ns = self.ns
        ));
    }

    /// Polices what arrives at `port` to `kbytes` a second (what does not
    /// fit is lost on the way, as behind a real bottleneck in front of a
    /// downlink).
    pub fn police_to(&self, port: u16, kbytes: u32) {
        sh(&format!(
            "ip netns exec {ns} nft add rule inet cut inbound udp dport {port} limit rate over {kbytes} kbytes/second burst 8 kbytes drop",
            ns = self.ns
        ));
    }

    /// Takes every cut and cap away.
    pub fn heal(&self) {
        sh(&format!(
            "ip netns exec {ns} nft flush chain inet cut out
             ip netns exec {ns} nft flush chain inet cut inbound",
            ns = self.ns
        ));
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .status();
    }
}

/// The UDP port a daemon listens on.
pub fn port_of(p: &Profile) -> u16 {
    let st = p.status_json();
    let addr: std::net::SocketAddr = st["listening"][0]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("a daemon listens on an address");
    addr.port()
}

/// `kith daemon` for `p` run inside network namespace `ns`, listening on
/// `addr` (several, comma-separated), with `env` set (e.g. `KITH_LOG`);
/// waits until it answers.
pub fn daemon_in_netns(p: &Profile, ns: &str, addr: &str, env: &[(&str, &str)]) -> Daemon {
    daemon_in_netns_with(p, ns, addr, env, &[])
}

/// [`daemon_in_netns`] with more `kith daemon` arguments.
pub fn daemon_in_netns_with(
    p: &Profile,
    ns: &str,
    addr: &str,
    env: &[(&str, &str)],
    extra: &[&str],
) -> Daemon {
    let log = p.scratch(&format!("daemon-{ns}.log"));
    let file = std::fs::File::create(&log).expect("daemon log");
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(kith_bin())
        .arg("--home")
        .arg(p.home())
        .arg("daemon")
        .args(addr.split(',').flat_map(|a| ["--listen", a]))
        .args(extra)
        .env_remove("KITH_HOME")
        .env_remove("KITH_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawning kith daemon");
    let daemon = Daemon::from_child(child, log);
    let up = p.kith(["status", "--wait", "10", "--json"]);
    assert!(
        up.status.success(),
        "daemon in {ns} did not start\n{}",
        daemon.log()
    );
    daemon
}

/// A steady tone of `f` Hz for `secs` at 48 kHz, of peak `amplitude`.
pub fn tone(f: f64, secs: f64, amplitude: f64) -> Vec<i16> {
    (0..(secs * 48_000.0) as usize)
        .map(|i| {
            let t = i as f64 / 48_000.0;
            (amplitude * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
        })
        .collect()
}

/// The share of `x`'s power at `f` Hz (Goertzel).
pub fn share_of(x: &[i16], f: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * f / 48_000.0;
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &v in x {
        let v = f64::from(v);
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
        total += v * v;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    if total == 0.0 {
        0.0
    } else {
        2.0 * power / (total * x.len() as f64)
    }
}
