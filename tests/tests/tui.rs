//! The real `kith` terminal UI, driven as a user would: in a tmux pane,
//! type a message and press Enter; the peer receives it, answers, and the
//! answer appears on screen. Needs tmux (`.ci/run` installs it).

#![allow(clippy::unwrap_used)]

use kith_tests::{Profile, kith_bin, pair, wait_until};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A tmux session of its own (its own server socket), killed on drop.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn start(socket: std::path::PathBuf, command: &str) -> Self {
        let t = Tmux { socket };
        let ok = t
            .cmd()
            .args(["new-session", "-d", "-s", "kith", "-x", "110", "-y", "30"])
            .arg(command)
            .status()
            .expect("tmux is needed for this test (apt-get install tmux)");
        assert!(ok.success(), "tmux did not start");
        t
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "kith"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "kith"])
            .args(keys)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits until the screen shows `text`; fails with `why` and the
    /// screen if it never does.
    #[track_caller]
    fn wait_for(&self, text: &str, why: &str) {
        assert!(
            wait_until(WAIT, || self.screen().contains(text)),
            "{why}:\n{}",
            self.screen()
        );
    }

    fn running(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", "kith"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Type, send, see the peer's reply appear; the unvalidated contact gets
/// the suggestion to compare safety numbers; Ctrl-Q quits cleanly.
#[test]
fn type_send_and_see_the_reply_in_the_terminal_ui() {
    let mut a = Profile::new();
    a.init("alice");
    let _da = a.spawn_daemon();
    let mut b = Profile::new();
    let ib = b.init("bob");
    let _db = b.spawn_daemon();
    let (_, aid) = pair(&a, &b);

    let command = format!(
        "{} --home {} tui; sleep 30",
        kith_bin().display(),
        a.home().display()
    );
    let tmux = Tmux::start(a.scratch("tmux.sock"), &command);
    assert!(
        wait_until(WAIT, || tmux.screen().contains("Conversations")),
        "the UI did not come up:\n{}",
        tmux.screen()
    );
    let screen = tmux.screen();
    assert!(screen.contains("bob"), "{screen}");
    assert!(screen.contains("unvalidated"), "{screen}");
    assert!(
        screen.contains("Ctrl-S"),
        "no suggestion to validate:\n{screen}"
    );
    assert!(screen.contains("^Q quit"), "no key help:\n{screen}");

    tmux.keys(&["-l", "hello from the terminal"]);
    tmux.keys(&["Enter"]);
    assert!(
        wait_until(WAIT, || b.try_log_json(&aid).is_ok_and(|l| l
            .iter()
            .any(|m| m.text == "hello from the terminal"))),
        "bob never got it; screen:\n{}",
        tmux.screen()
    );
    b.send(&aid, "reply from bob");
    assert!(
        wait_until(WAIT, || tmux.screen().contains("reply from bob")),
        "the reply never appeared:\n{}",
        tmux.screen()
    );
    assert!(tmux.screen().contains("me: hello from the terminal"));

    tmux.keys(&["C-q"]);
    // The UI exits; the shell then sleeps, so the pane shows the normal
    // screen again (the alternate screen is gone).
    assert!(
        wait_until(Duration::from_secs(10), || !tmux
            .screen()
            .contains("Conversations")),
        "Ctrl-Q did not quit:\n{}",
        tmux.screen()
    );
    assert!(tmux.running());
    let _ = ib;
}

/// A call in the terminal UI: it rings on screen with the caller's trust
/// badge and the suggestion to compare safety numbers; typing does
/// nothing to it, → and Enter answer, and
/// the in-call screen shows the path and the figures; `m` mutes, Esc puts
/// the screen away and Ctrl-K brings it back, `h` hangs up, and the call's
/// entry appears in the conversation.
#[test]
fn a_call_rings_is_answered_muted_and_hung_up_in_the_terminal_ui() {
    let a = Profile::new();
    a.init("alice");
    let _da = a.spawn_daemon_with(&["--sound-card", "none"]);
    let b = Profile::new();
    b.init("bob");
    let _db = b.spawn_daemon_with(&["--sound-card", "none"]);
    let (bid, aid) = pair(&a, &b);
    let command = format!(
        "{} --home {} tui; sleep 30",
        kith_bin().display(),
        a.home().display()
    );
    let tmux = Tmux::start(a.scratch("tmux.sock"), &command);
    assert!(
        wait_until(WAIT, || tmux.screen().contains("Conversations")),
        "the UI did not come up:\n{}",
        tmux.screen()
    );
    // Bob rings Alice (until his daemon knows her device is active).
    let rang = wait_until(WAIT, || b.kith(["call", &aid]).status.success());
    assert!(rang, "bob could not ring alice");
    assert!(
        wait_until(WAIT, || tmux.screen().contains("Incoming call from bob")),
        "no incoming call on screen:\n{}",
        tmux.screen()
    );
    let screen = tmux.screen();
    assert!(screen.contains("unvalidated"), "{screen}");
    assert!(screen.contains("compared safety numbers"), "{screen}");
    assert!(screen.contains("[ Answer ]"), "{screen}");
    // Typing does not answer; choosing and Enter does.
    tmux.keys(&["-l", "hav"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(tmux.screen().contains("Incoming call from bob"));
    tmux.keys(&["Right"]);
    tmux.keys(&["Enter"]);
    assert!(
        wait_until(WAIT, || {
            let s = tmux.screen();
            s.contains("In a call with bob") && s.contains("path: direct")
        }),
        "not in the call:\n{}",
        tmux.screen()
    );
    tmux.keys(&["m"]);
    tmux.wait_for("MUTED", "mute not shown");
    tmux.keys(&["Escape"]);
    assert!(
        wait_until(WAIT, || {
            let s = tmux.screen();
            s.contains("Conversations") && s.contains("active with bob")
        }),
        "the call screen did not go away:\n{}",
        tmux.screen()
    );
    tmux.keys(&["C-k"]);
    tmux.wait_for("In a call with bob", "Ctrl-K did not bring the call back");
    tmux.keys(&["h"]);
    let ended = wait_until(WAIT, || {
        let out = b.kith(["call", "status", "--json"]);
        String::from_utf8_lossy(&out.stdout).contains("they-hung-up")
    });
    assert!(ended, "bob's call did not end");
    assert!(
        wait_until(WAIT, || tmux.screen().contains("☎")),
        "no call entry in the conversation:\n{}",
        tmux.screen()
    );
    let _ = bid;
}
