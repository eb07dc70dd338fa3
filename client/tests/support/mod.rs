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

/// A new account whose one device is `key`: its id and genesis.
pub fn genesis_of(
    key: &node_core::crypto::SigningKey,
    name: &str,
    now: i64,
) -> (node_core::AccountId, node_core::log::Event) {
    let entry = node_core::identity::AccountEntry::Genesis {
        account_name: name.into(),
        device_name: "d".into(),
        recovery: None,
    };
    let genesis = node_core::log::Event::sign(
        key,
        node_core::log::Draft {
            log: None,
            log_kind: node_core::log::LogKind::Account,
            seq: 1,
            prev: None,
            parents: vec![],
            time: now,
            kind: entry.kind(),
            body: entry.encode(),
        },
    );
    (
        node_core::AccountId::from_bytes(*genesis.id().as_bytes()),
        genesis,
    )
}

/// A contact request from a new account `name` made by `key` (its
/// messages go after the answer: see [`ask_request`]).
pub fn request_from(
    key: &node_core::crypto::SigningKey,
    name: &str,
    now: i64,
) -> node_core::requests::ContactRequest {
    let (account, genesis) = genesis_of(key, name, now);
    let device: node_core::DeviceId = key.verifying_key().into();
    let card = node_core::identity::Card {
        account,
        name: name.into(),
        signer: device,
        devices: vec![device],
        hints: vec![],
        issued: now,
    };
    node_core::requests::ContactRequest::bounded(
        node_core::identity::Card::sign(key, &card),
        node_core::requests::How::Card,
        &[],
        now,
        vec![genesis],
    )
}

/// Sends `bytes` as a contact request from `t` to `to` at `at`, then
/// `messages` (whatever the answer proves): the answer's code, or `None`
/// if the daemon closed without one.
pub async fn ask_request(
    t: &node_core::transport::Transport,
    bytes: &[u8],
    messages: &[String],
    to: node_core::DeviceId,
    at: std::net::SocketAddr,
) -> Option<u8> {
    let answer = async {
        let link = t.connect_request(to, &[at], None).await.ok()?;
        let (mut w, mut r) = link.open().await.ok()?;
        w.danger_write_raw(&u32::try_from(bytes.len()).ok()?.to_be_bytes())
            .await
            .ok()?;
        w.danger_write_raw(bytes).await.ok()?;
        let a = r.recv_max(node_core::requests::MAX_REQUEST).await.ok()??;
        let answer = node_core::requests::RequestAnswer::decode(&a).ok()?;
        if answer.code == node_core::requests::ANSWER_KEPT && !messages.is_empty() {
            let _ = w
                .send(&node_core::requests::encode_messages(messages))
                .await;
        }
        w.finish();
        let _ = tokio::time::timeout(Duration::from_secs(5), link.closed()).await;
        link.close("done");
        Some(answer.code)
    };
    tokio::time::timeout(Duration::from_secs(20), answer)
        .await
        .ok()
        .flatten()
}
