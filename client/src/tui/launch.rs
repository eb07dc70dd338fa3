//! Starting the daemon from the terminal UI when none answers: `kith
//! daemon` as a child in its own process group (so the terminal's Ctrl-C
//! and hang-up do not reach it), its log in the profile folder, the
//! passphrase handed over a pipe (never in its environment or arguments).
//! It keeps running when the UI quits, unless the user asks it to stop.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the daemon may take to answer (opening a protected profile
/// runs argon2id, several seconds on a slow machine).
const START_WAIT: Duration = Duration::from_secs(90);

/// Where a daemon the UI started writes its log.
pub fn log_path(home: &Path) -> PathBuf {
    home.join("daemon.log")
}

/// Addresses for the daemon the UI starts, comma-separated (each a
/// `--listen`); unset, it listens where `kith daemon` does by default.
pub const ENV_LISTEN: &str = "KITH_DAEMON_LISTEN";

/// Starts `kith daemon` for `home` in the background and waits until it
/// answers.
pub fn start_daemon(home: &Path, pass: Option<&str>) -> Result<()> {
    let exe = std::env::current_exe().context("finding the kith program")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path(home))
        .with_context(|| format!("opening {}", log_path(home).display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--home").arg(home).arg("daemon");
    if let Ok(listen) = std::env::var(ENV_LISTEN) {
        for addr in listen.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            cmd.arg("--listen").arg(addr);
        }
    }
    cmd.stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .env_remove(crate::passphrase::ENV)
        .env_remove(crate::passphrase::ENV_FILE);
    if pass.is_some() {
        cmd.env(crate::passphrase::ENV_STDIN, "1")
            .stdin(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null());
    }
    let mut child = cmd.spawn().context("starting the daemon")?;
    if let (Some(p), Some(mut stdin)) = (pass, child.stdin.take()) {
        // Sized once: a growing buffer would leave unwiped copies.
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(p.len() + 1));
        line.extend_from_slice(p.as_bytes());
        line.push(b'\n');
        stdin
            .write_all(&line)
            .context("handing the daemon its passphrase")?;
    }
    let rt = crate::cmd::runtime()?;
    let client = crate::rpc::Client::new(home);
    let started = Instant::now();
    loop {
        if rt.block_on(client.status()).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(log_path(home)).unwrap_or_default();
            let last = tail.lines().last().unwrap_or("").to_owned();
            // Another daemon holds the profile (a second UI started one
            // at the same time): wait for that one to answer.
            if last.contains("in use by another process") && started.elapsed() < START_WAIT {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            bail!(
                "the daemon stopped ({status}): {} — see {}",
                crate::display::terminal_safe(&last),
                log_path(home).display()
            );
        }
        if started.elapsed() > START_WAIT {
            bail!(
                "the daemon did not answer within {} s — see {}",
                START_WAIT.as_secs(),
                log_path(home).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
