//! Starting real `kith` daemons from the client's own tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn kith(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("KITH_HOME")
        .env_remove("KITH_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A profile with a running daemon; the daemon is stopped on drop.
pub struct Running {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    child: Child,
}

impl Running {
    pub fn start(name: &str) -> Self {
        let root = tempfile::Builder::new()
            .prefix("k")
            .tempdir_in("/tmp")
            .unwrap();
        let home = root.path().join("h");
        ok(kith(&home, &["init", "--name", name, "--no-passphrase"]));
        let log = std::fs::File::create(root.path().join("daemon.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kith"))
            .arg("--home")
            .arg(&home)
            .args(["daemon", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        ok(kith(&home, &["status", "--wait", "20"]));
        Self { root, home, child }
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&ok(kith(&self.home, &["status", "--json"]))).unwrap()
    }

    pub fn card(&self) -> String {
        ok(kith(&self.home, &["card"]))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

/// Polls `f` every 100 ms for up to `limit`.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}
