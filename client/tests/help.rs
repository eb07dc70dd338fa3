//! The command line's help and usage errors (also makes `cargo test`
//! build the `kith` binary that the whole-system tests drive).

use std::process::Command;

fn kith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(args)
        .env_remove("KITH_HOME")
        .output()
        .expect("run kith")
}

#[test]
fn help_lists_every_command() {
    let out = kith(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["init", "daemon", "status", "card", "--home"] {
        assert!(text.contains(cmd), "help lacks {cmd}:\n{text}");
    }
}

#[test]
fn status_flags_are_documented() {
    let out = kith(&["status", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--wait <SECS>") && text.contains("--json"),
        "{text}"
    );
}

#[test]
fn a_non_finite_wait_is_bad_usage() {
    for bad in ["nan", "inf", "-1", "abc"] {
        let out = kith(&["--home", "/nonexistent-kith", "status", "--wait", bad]);
        assert_eq!(out.status.code(), Some(2), "--wait {bad}");
    }
}
