//! The profile folder and the daemon's life: passphrases, permissions, the
//! lock, clean shutdown, and no plaintext on disk.

use kith_tests::{Profile, assert_fails_cleanly, assert_ok, run_limited, walk};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const PASS: &str = "PassMarker0b5e1d correct horse";

/// Runs a daemon that is expected to fail at start (killed after 30 s if it
/// does not).
fn daemon_once(p: &Profile) -> Output {
    run_limited(
        &mut p.command(["daemon", "--listen", "127.0.0.1:0"]),
        Duration::from_secs(30),
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn init_twice_fails_and_changes_nothing() {
    let mut p = Profile::new();
    p.init("alice");
    let before = p.snapshot();
    assert!(before.keys().any(|f| f.ends_with("kith.key")), "{before:?}");
    assert!(before.keys().any(|f| f.ends_with("kith.db")), "{before:?}");

    let line = assert_fails_cleanly(&p.kith(["init", "--name", "bob", "--no-passphrase"]));
    assert!(line.contains("already exists"), "{line}");
    let line =
        assert_fails_cleanly(&p.kith(["init", "--name", "bob", "--no-passphrase", "--json"]));
    assert!(line.contains("already exists"), "{line}");
    p.set_passphrase(Some(PASS));
    let line = assert_fails_cleanly(&p.kith(["init", "--name", "bob", "--recovery-key"]));
    assert!(line.contains("already exists"), "{line}");

    assert_eq!(p.snapshot(), before, "a failed init changed the profile");
}

#[test]
fn init_twice_while_daemon_runs_fails_and_changes_nothing() {
    let mut p = Profile::new();
    let ids = p.init("alice");
    let _d = p.spawn_daemon();
    let before = p.snapshot();
    let line = assert_fails_cleanly(&p.kith(["init", "--name", "bob", "--no-passphrase"]));
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(p.snapshot(), before);
    assert_eq!(p.status_json()["account"], ids.account.as_str());
}

#[test]
fn init_without_passphrase_source_fails_and_makes_nothing() {
    let p = Profile::new();
    // stdin is not a terminal and KITH_PASSPHRASE is unset.
    let line = assert_fails_cleanly(&p.kith(["init", "--name", "alice"]));
    assert!(line.contains("passphrase"), "{line}");
    assert!(!p.home().join("kith.key").exists());

    let mut p = p;
    p.set_passphrase(Some(""));
    let line = assert_fails_cleanly(&p.kith(["init", "--name", "alice"]));
    assert!(line.contains("passphrase"), "{line}");
    assert!(!p.home().join("kith.key").exists());
}

#[test]
fn passphrase_protected_profile() {
    let mut p = Profile::new();
    p.set_passphrase(Some(PASS));
    let ids = p.init("alice");
    let before = p.snapshot();

    p.set_passphrase(Some("not the passphrase"));
    let out = daemon_once(&p);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("wrong passphrase"), "{line}");
    assert_eq!(p.snapshot(), before, "a refused daemon changed the profile");
    assert!(!p.home().join("kith.sock").exists());

    p.set_passphrase(Some(PASS));
    let _d = p.spawn_daemon();
    let v = p.status_json();
    assert_eq!(v["account"], ids.account.as_str(), "{v}");
    assert_eq!(v["device"], ids.device.as_str(), "{v}");
    assert_eq!(v["name"], "alice", "{v}");
    assert_eq!(v["protected"], true, "{v}");
    assert_eq!(v["outbox"], 0, "{v}");
    assert!(v["listening"].is_array(), "{v}");
    assert!(v["peers"].is_array(), "{v}");
    let warnings = v["warnings"].as_array().expect("warnings array");
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("unprotected"))),
        "{v}"
    );

    // The daemon's clients need no passphrase.
    p.set_passphrase(None);
    let text = assert_ok(&p.kith(["status"]));
    assert!(text.contains(&ids.account), "{text}");
    assert!(!text.to_lowercase().contains("unprotected"), "{text}");
}

#[test]
fn empty_passphrase_on_protected_profile_is_refused() {
    let mut p = Profile::new();
    p.set_passphrase(Some(PASS));
    p.init("alice");
    let before = p.snapshot();
    p.set_passphrase(Some(""));
    let line = assert_fails_cleanly(&daemon_once(&p));
    assert!(line.contains("passphrase"), "{line}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn protected_profile_without_passphrase_or_terminal_fails() {
    let mut p = Profile::new();
    p.set_passphrase(Some(PASS));
    p.init("alice");
    let before = p.snapshot();
    p.set_passphrase(None);
    let t = Instant::now();
    let line = assert_fails_cleanly(&daemon_once(&p));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(line.contains("passphrase"), "{line}");
    assert!(line.contains("KITH_PASSPHRASE"), "{line}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn daemon_stops_on_sigterm_and_removes_its_socket() {
    let mut p = Profile::new();
    p.init("alice");
    let mut d = p.spawn_daemon();
    let sock = p.home().join("kith.sock");
    assert!(sock.exists(), "no socket while the daemon runs");
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");

    let status = d.stop(Duration::from_secs(5));
    let status = status.unwrap_or_else(|| panic!("still running 5 s after SIGTERM\n{}", d.log()));
    assert!(status.success(), "exit {status:?}\n{}", d.log());
    assert!(!sock.exists(), "socket left behind");
    let line = assert_fails_cleanly(&p.kith(["status"]));
    assert!(line.contains("no kith daemon is running"), "{line}");

    // The lock was released: a new daemon starts.
    let mut d = p.spawn_daemon();
    assert_eq!(p.status_json()["name"], "alice");
    let st = d.stop(Duration::from_secs(5)).expect("stopped");
    assert!(st.success());
}

#[test]
fn daemon_stops_on_sigint() {
    let mut p = Profile::new();
    p.init("alice");
    let mut d = p.spawn_daemon();
    let st = std::process::Command::new("kill")
        .args(["-INT", &d.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let status = d
        .wait(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGINT\n{}", d.log()));
    assert!(status.success(), "exit {status:?}\n{}", d.log());
    assert!(!p.home().join("kith.sock").exists(), "socket left behind");
}

#[test]
fn second_daemon_on_same_profile_fails() {
    let mut p = Profile::new();
    let ids = p.init("alice");
    let mut first = p.spawn_daemon();

    let line = assert_fails_cleanly(&daemon_once(&p));
    assert!(line.contains("in use"), "{line}");

    // The first one is untouched and still answers on its socket.
    assert!(first.try_wait().is_none(), "first daemon died");
    assert!(p.home().join("kith.sock").exists(), "socket removed");
    assert_eq!(p.status_json()["account"], ids.account.as_str());
}

#[test]
fn loose_folder_permissions_are_refused() {
    let mut p = Profile::new();
    p.init("alice");
    chmod(p.home(), 0o755);
    let line = assert_fails_cleanly(&daemon_once(&p));
    assert!(line.contains("chmod"), "{line}");
    assert!(line.contains("700"), "{line}");
    chmod(p.home(), 0o700);
    let _d = p.spawn_daemon();
}

#[test]
fn loose_key_file_permissions_are_refused() {
    let mut p = Profile::new();
    p.init("alice");
    let key = p.home().join("kith.key");
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "init made kith.key {mode:o}");
    chmod(&key, 0o644);
    let line = assert_fails_cleanly(&daemon_once(&p));
    assert!(line.contains("chmod"), "{line}");
    assert!(line.contains("600"), "{line}");
    chmod(&key, 0o600);
    let _d = p.spawn_daemon();
}

#[test]
fn init_makes_owner_only_folder() {
    let p = Profile::new();
    p.init("alice");
    let mode = std::fs::metadata(p.home())
        .expect("home")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "profile folder {mode:o}");
}

/// Every file under the profile folder that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    walk(dir, &mut |f| {
        let bytes = std::fs::read(f).expect("read");
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(f.display().to_string());
        }
    });
    hits
}

#[test]
fn profile_holds_no_plaintext() {
    const NAME: &str = "MarkerName7f3a9c";
    let mut p = Profile::new();
    p.set_passphrase(Some(PASS));
    p.init(NAME);
    let mut d = p.spawn_daemon();
    assert_eq!(p.status_json()["name"], NAME);
    assert!(assert_ok(&p.kith(["card"])).starts_with("kith:card/"));
    assert_ok(&p.kith(["card", "--qr"]));

    let check = |when: &str| {
        let mut files = Vec::new();
        walk(p.home(), &mut |f| files.push(f.display().to_string()));
        for needle in [NAME, PASS, "PassMarker0b5e1d"] {
            let hits = files_containing(p.home(), needle.as_bytes());
            assert!(hits.is_empty(), "{needle:?} in {hits:?} ({when})");
            // UTF-16 too, in case something stores wide strings.
            let wide: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let hits = files_containing(p.home(), &wide);
            assert!(hits.is_empty(), "{needle:?} (UTF-16) in {hits:?} ({when})");
        }
        files
    };
    let running = check("daemon running");
    assert!(
        running.iter().any(|f| f.ends_with("kith.db")),
        "{running:?}"
    );
    let st = d.stop(Duration::from_secs(5)).expect("daemon stopped");
    assert!(st.success());
    check("daemon stopped");
}

#[test]
fn unprotected_profile_holds_no_plaintext_name_either() {
    // Without a passphrase the store key sits in kith.key, but the database
    // is still encrypted: the name must not appear in clear.
    const NAME: &str = "MarkerName5d1e8b";
    let mut p = Profile::new();
    p.init(NAME);
    let mut d = p.spawn_daemon();
    assert!(assert_ok(&p.kith(["card"])).starts_with("kith:card/"));
    let hits = files_containing(p.home(), NAME.as_bytes());
    assert!(hits.is_empty(), "name in {hits:?}");
    d.stop(Duration::from_secs(5)).expect("daemon stopped");
    let hits = files_containing(p.home(), NAME.as_bytes());
    assert!(hits.is_empty(), "name in {hits:?}");
}
