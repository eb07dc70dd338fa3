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
