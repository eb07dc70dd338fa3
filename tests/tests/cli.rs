//! The command line contract (CLI.md "Conventions", "Profile and daemon",
//! `kith card`): output formats, exit codes, and one-line failures.

use kith_tests::{
    Profile, assert_fails_cleanly, assert_ok, assert_usage_error, is_id, kith_command, run_limited,
    stderr, stdout,
};
use std::ffi::OsStr;
use std::time::{Duration, Instant};

#[test]
fn init_prints_account_and_device_ids() {
    let p = Profile::new();
    let out = p.kith(["init", "--name", "alice", "--no-passphrase"]);
    let text = assert_ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "stdout: {text}");
    let account = lines[0].strip_prefix("account ").expect("account line");
    let device = lines[1].strip_prefix("device ").expect("device line");
    assert!(is_id(account), "account id {account:?}");
    assert!(is_id(device), "device id {device:?}");
    assert_ne!(account, device);
}

#[test]
fn init_json_has_account_and_device() {
    let p = Profile::new();
    let out = p.kith(["init", "--name", "alice", "--no-passphrase", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&assert_ok(&out)).expect("JSON");
    let obj = v.as_object().expect("an object");
    assert!(is_id(obj["account"].as_str().expect("account")), "{v}");
    assert!(is_id(obj["device"].as_str().expect("device")), "{v}");
    assert!(!obj.contains_key("recovery_code"), "{v}");
}

#[test]
fn two_profiles_get_different_ids() {
    let (a, b) = (Profile::new(), Profile::new());
    let (ia, ib) = (a.init("alice"), b.init("alice"));
    assert_ne!(ia.account, ib.account);
    assert_ne!(ia.device, ib.device);
}

#[test]
fn status_without_daemon_fails_at_once() {
    let p = Profile::new();
    p.init("alice");
    let t = Instant::now();
    let out = p.kith(["status"]);
    let took = t.elapsed();
    let line = assert_fails_cleanly(&out);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(line.contains("no kith daemon is running"), "{line}");

    let out = p.kith(["status", "--json"]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("no kith daemon is running"), "{line}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

#[test]
fn status_wait_without_daemon_fails_after_the_wait() {
    let p = Profile::new();
    p.init("alice");
    let t = Instant::now();
    let out = p.kith(["status", "--wait", "1"]);
    let took = t.elapsed();
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("no kith daemon is running"), "{line}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

#[test]
fn status_without_profile_fails_cleanly() {
    let p = Profile::new();
    let line = assert_fails_cleanly(&p.kith(["status"]));
    assert!(line.contains("daemon"), "{line}");
}

#[test]
fn unprotected_profile_status_says_so() {
    let mut p = Profile::new();
    let ids = p.init("alice");
    let _d = p.spawn_daemon();

    let text = assert_ok(&p.kith(["status"]));
    assert!(text.contains(&ids.account), "{text}");
    assert!(text.contains(&ids.device), "{text}");
    let lower = text.to_lowercase();
    assert!(lower.contains("unprotected"), "{text}");

    let v = p.status_json();
    assert_eq!(v["protected"], false, "{v}");
    assert_eq!(v["account"], ids.account.as_str(), "{v}");
    assert_eq!(v["device"], ids.device.as_str(), "{v}");
    assert_eq!(v["name"], "alice", "{v}");
    let warnings = v["warnings"].as_array().expect("warnings array");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("unprotected"))),
        "{v}"
    );
}

#[test]
fn card_uri_qr_and_png() {
    let mut p = Profile::new();
    p.init("alice");
    let _d = p.spawn_daemon();

    let text = assert_ok(&p.kith(["card"]));
    let uri = text.trim();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(uri.starts_with("kith:card/"), "{uri}");
    assert!(uri.len() > "kith:card/".len() + 20, "{uri}");

    let qr = assert_ok(&p.kith(["card", "--qr"]));
    let lines: Vec<&str> = qr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 10, "a QR code has many rows:\n{qr}");
    assert!(
        qr.chars().any(|c| matches!(c, '▀' | '▄' | '█')),
        "no half-block characters:\n{qr}"
    );
    assert!(
        qr.chars()
            .all(|c| matches!(c, '▀' | '▄' | '█' | ' ' | '\n')),
        "unexpected characters in the QR block:\n{qr}"
    );
    assert!(!qr.contains("kith:card/"), "--qr prints the code only");

    let png = p.scratch("card.png");
    assert_ok(&p.kith([OsStr::new("card"), OsStr::new("--qr-png"), png.as_os_str()]));
    let bytes = std::fs::read(&png).expect("PNG written");
    assert!(bytes.len() > 100, "PNG is {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "PNG starts with IHDR");

    let again = assert_ok(&p.kith(["card"]));
    assert!(again.trim().starts_with("kith:card/"), "{again}");
}

#[test]
fn cards_of_two_profiles_differ() {
    let (mut a, mut b) = (Profile::new(), Profile::new());
    a.init("alice");
    b.init("alice");
    let _da = a.spawn_daemon();
    let _db = b.spawn_daemon();
    let ca = assert_ok(&a.kith(["card"]));
    let cb = assert_ok(&b.kith(["card"]));
    assert!(ca.starts_with("kith:card/") && cb.starts_with("kith:card/"));
    assert_ne!(ca, cb);
}

#[test]
fn card_without_daemon_fails_at_once() {
    let p = Profile::new();
    p.init("alice");
    let t = Instant::now();
    let line = assert_fails_cleanly(&p.kith(["card"]));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(line.contains("no kith daemon is running"), "{line}");
}

#[test]
fn help_exits_zero() {
    let out = run_limited(kith_command().arg("--help"), Duration::from_secs(30));
    let text = assert_ok(&out);
    for cmd in ["init", "daemon", "status", "card"] {
        assert!(text.contains(cmd), "--help lists {cmd}:\n{text}");
    }
    let out = run_limited(
        kith_command().args(["init", "--help"]),
        Duration::from_secs(30),
    );
    let text = assert_ok(&out);
    assert!(text.contains("--name"), "{text}");
    assert!(text.contains("--no-passphrase"), "{text}");
}

#[test]
fn bad_usage_exits_two() {
    let p = Profile::new();
    assert_usage_error(&p.kith(["frobnicate"]));
    assert_usage_error(&p.kith(["init"]));
    assert_usage_error(&p.kith(["status", "--wait", "soon"]));
    assert_usage_error(&p.kith(["daemon", "--listen", "not-an-address"]));
    assert!(!p.home().exists(), "bad usage touched the profile");
}

#[test]
fn no_command_is_bad_usage() {
    let out = run_limited(&mut kith_command(), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

#[test]
fn kith_home_environment_variable_names_the_profile() {
    let p = Profile::new();
    let with_env = |args: &[&str]| {
        let mut cmd = kith_command();
        cmd.env("KITH_HOME", p.home()).args(args);
        run_limited(&mut cmd, Duration::from_secs(60))
    };
    let out = with_env(&["init", "--name", "alice", "--no-passphrase", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&assert_ok(&out)).expect("JSON");
    assert!(p.home().join("kith.key").exists(), "init ignored KITH_HOME");

    let mut p = p;
    let _d = p.spawn_daemon();
    let mut cmd = kith_command();
    cmd.env("KITH_HOME", p.home()).args(["status", "--json"]);
    let out = run_limited(&mut cmd, Duration::from_secs(60));
    let s: serde_json::Value = serde_json::from_str(&assert_ok(&out)).expect("JSON");
    assert_eq!(s["account"], v["account"]);
}

#[test]
fn card_png_to_unwritable_path_fails_cleanly() {
    let mut p = Profile::new();
    p.init("alice");
    let _d = p.spawn_daemon();
    let bad = p.scratch("no-such-dir/card.png");
    let out = p.kith([OsStr::new("card"), OsStr::new("--qr-png"), bad.as_os_str()]);
    let line = assert_fails_cleanly(&out);
    assert!(line.contains("card.png"), "{line}");
}

#[test]
fn status_after_daemon_was_killed_fails_at_once() {
    let mut p = Profile::new();
    p.init("alice");
    let mut d = p.spawn_daemon();
    d.kill_hard();
    assert!(
        p.home().join("kith.sock").exists(),
        "SIGKILL cannot remove the socket"
    );
    let t = Instant::now();
    let line = assert_fails_cleanly(&p.kith(["status"]));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(line.contains("no kith daemon is running"), "{line}");
    // A new daemon replaces the stale socket.
    let _d = p.spawn_daemon();
    assert_eq!(p.status_json()["name"], "alice");
}

#[test]
fn status_wait_nan_is_bad_usage() {
    let p = Profile::new();
    p.init("alice");
    let out = p.kith(["status", "--wait", "nan"]);
    assert_ne!(out.status.code(), Some(101), "panicked: {}", stderr(&out));
    assert_usage_error(&out);
}

/// Every command that prints data prints it as JSON with `--json`: the
/// ones whose answer is a single id, URI or code too.
#[test]
fn commands_that_print_data_take_json() {
    let mut alice = Profile::new();
    alice.init("alice");
    let _da = alice.spawn_daemon();
    let mut bob = Profile::new();
    let ib = bob.init("bob");
    let _db = bob.spawn_daemon();
    let json = |p: &Profile, args: &[&str]| -> serde_json::Value {
        let text = assert_ok(&p.kith(args));
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    };
    let field = |v: &serde_json::Value, name: &str| -> String {
        v[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name:?} in {v}"))
            .to_owned()
    };
    let card = field(&json(&bob, &["card", "--json"]), "uri");
    assert!(card.starts_with("kith:card/"), "{card}");
    assert_eq!(
        field(&json(&alice, &["contact", "add", &card, "--json"]), "id"),
        ib.account
    );
    assert!(
        !field(
            &json(&alice, &["send", &ib.account, "hello", "--json"]),
            "id"
        )
        .is_empty()
    );
    let code = field(&json(&alice, &["device", "invite", "--json"]), "code");
    assert!(!code.is_empty());
    let room = field(
        &json(&alice, &["room", "create", "club", "--public", "--json"]),
        "id",
    );
    let link = field(&json(&alice, &["room", "link", &room, "--json"]), "uri");
    assert!(link.starts_with("kith:room/"), "{link}");
    let file = alice.scratch("note.txt");
    std::fs::write(&file, b"a note").unwrap();
    let file = file.to_str().unwrap();
    assert!(
        !field(
            &json(&alice, &["file", "send", &room, file, "--json"]),
            "id"
        )
        .is_empty()
    );
    // A card and --qr at once is bad usage (one output at a time).
    assert_usage_error(&alice.kith(["card", "--json", "--qr"]));
}
