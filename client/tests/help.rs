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

#[test]
fn completions_are_made_for_each_shell_without_a_profile() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = kith(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["kith", "contact", "room", "call"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = kith(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad usage");
}

#[test]
fn the_manual_page_covers_every_command() {
    let out = kith(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH kith 1"), "{page}");
    for cmd in ["init", "daemon", "contact", "room", "call", "completions"] {
        assert!(page.contains(cmd), "the page lacks {cmd}");
    }
    let dir = std::env::temp_dir().join(format!("kith-man-{}", std::process::id()));
    let out = kith(&["man", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    for page in [
        "kith.1",
        "kith-contact.1",
        "kith-contact-add.1",
        "kith-room-create.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    // A folder that cannot be made: one clear line, no panic.
    let out = kith(&["man", "--out", "/proc/kith-man"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("kith: ") && err.lines().count() == 1,
        "{err}"
    );
}
