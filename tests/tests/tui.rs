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

    /// Ctrl-Q, and waits for the UI to go (the shell then sleeps, so the
    /// pane shows the normal screen again: the alternate screen is gone).
    #[track_caller]
    fn quit(&self) {
        self.keys(&["C-q"]);
        assert!(
            wait_until(Duration::from_secs(10), || !self
                .screen()
                .contains("Conversations")),
            "Ctrl-Q did not quit:\n{}",
            self.screen()
        );
    }

    /// The UI for profile `p` in a new tmux (its own socket, `name`),
    /// with `env` before the command.
    fn ui(p: &Profile, name: &str, env: &str) -> Self {
        let command = format!(
            "{env} {} --home {}; sleep 30",
            kith_bin().display(),
            p.home().display()
        );
        Tmux::start(p.scratch(name), &command)
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

    tmux.quit();
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

/// `kith` with no profile, in a terminal: onboarding asks for a name and a
/// passphrase twice (with a strength hint), shows the recovery code once
/// and has a group of it typed back, starts the daemon in the background
/// and opens the UI; the daemon outlives the UI until Ctrl-X asks it to
/// stop.
#[test]
fn a_first_run_sets_itself_up_in_the_terminal_ui() {
    let p = Profile::new();
    let tmux = Tmux::ui(&p, "tmux.sock", "KITH_DAEMON_LISTEN=127.0.0.1:0");
    tmux.wait_for("Welcome to kith", "no onboarding");
    tmux.keys(&["-l", "alice"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("nobody can open this profile", "no word on losing it");
    tmux.keys(&["-l", "hunter2"]);
    tmux.wait_for("strength: weak", "no strength hint");
    tmux.keys(&["BSpace"; 7]);
    let pass = "correct horse battery staple";
    tmux.keys(&["-l", pass]);
    tmux.wait_for("strength: strong", "no strength hint");
    tmux.keys(&["Enter"]);
    tmux.keys(&["-l", "correct horse battery stapler"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("differ", "a mismatch was taken");
    tmux.keys(&["-l", pass]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["-l", pass]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("shown this once", "no recovery code");
    let screen = tmux.screen();
    let code: Vec<String> = screen
        .lines()
        .skip_while(|l| !l.contains("shown this once"))
        .find(|l| {
            let groups: Vec<&str> = l.trim().split('-').collect();
            groups.len() > 4 && groups.iter().all(|g| g.len() == 4)
        })
        .unwrap_or_else(|| panic!("no code on screen:\n{screen}"))
        .trim()
        .split('-')
        .map(str::to_owned)
        .collect();
    tmux.keys(&["Enter"]);
    tmux.wait_for("Type group", "the code is not asked back");
    let screen = tmux.screen();
    let n: usize = screen
        .split("Type group ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("which group?\n{screen}"));
    let wrong = if code[n - 1] == "aaaa" {
        "bbbb"
    } else {
        "aaaa"
    };
    tmux.keys(&["-l", wrong]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("that is not group", "a wrong group was taken");
    tmux.keys(&["-l", &code[n - 1]]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Conversations", "the UI did not open after onboarding");
    // The daemon runs on its own: protected, answering the CLI.
    let status = p.status_json();
    assert_eq!(status["name"], "alice");
    assert_eq!(status["protected"], true, "{status}");
    let log = std::fs::read_to_string(p.home().join("daemon.log")).unwrap();
    assert!(!log.contains(pass), "the passphrase is in the daemon's log");
    tmux.quit();
    assert!(
        p.kith(["status", "--json"]).status.success(),
        "the daemon stopped with the UI"
    );
    // Again: the UI finds the daemon running; Ctrl-X stops both.
    let tmux2 = Tmux::ui(&p, "tmux2.sock", "");
    tmux2.wait_for("Conversations", "the UI did not open again");
    tmux2.keys(&["C-x"]);
    assert!(
        wait_until(Duration::from_secs(20), || !p
            .kith(["status", "--json"])
            .status
            .success()),
        "Ctrl-X did not stop the daemon"
    );
}

/// A room made in the terminal UI: Ctrl-G names it, Ctrl-T shows its
/// members (the maker as admin), `i` invites a contact; the contact's
/// message appears in the room view with its author, what is typed there
/// reaches the contact, and a message that arrives while another
/// conversation is on screen shows as unread with a notice.
#[test]
fn a_room_is_made_and_used_in_the_terminal_ui() {
    let mut a = Profile::new();
    a.init("alice");
    let _da = a.spawn_daemon();
    let mut b = Profile::new();
    b.init("bob");
    let _db = b.spawn_daemon();
    pair(&a, &b);
    let tmux = Tmux::ui(&a, "rooms.sock", "");
    tmux.wait_for("Conversations", "the UI did not come up");

    tmux.keys(&["C-g"]);
    tmux.wait_for("New room", "Ctrl-G shows no prompt");
    tmux.keys(&["-l", "team"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("# team", "the room is not listed");
    // Contacts first, then rooms: one down is the room.
    tmux.keys(&["Down"]);
    tmux.wait_for("you: ★ admin", "the room view shows no role");
    tmux.keys(&["C-t"]);
    tmux.wait_for("me  ★ admin", "the members screen shows no admin");
    tmux.keys(&["i"]);
    tmux.wait_for("Invite a contact", "no invite screen");
    tmux.keys(&["Enter"]);
    tmux.wait_for("invited", "the invitation was not made");
    let joined = wait_until(WAIT, || {
        let out = b.kith(["room", "list", "--json"]);
        let rooms: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        rooms.as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["name"] == "team" && r["membership"] == "join")
        })
    });
    assert!(joined, "bob never joined:\n{}", tmux.screen());
    tmux.wait_for("bob  member", "bob is not listed as a member");
    tmux.keys(&["Escape"]);

    let out = b.kith(["send", "team", "hello team"]);
    assert!(out.status.success(), "{out:?}");
    tmux.wait_for("bob: hello team", "bob's room message never appeared");
    tmux.keys(&["-l", "hi bob"]);
    tmux.keys(&["Enter"]);
    let got = wait_until(WAIT, || {
        let out = b.kith(["log", "team", "--json"]);
        String::from_utf8_lossy(&out.stdout).contains("hi bob")
    });
    assert!(got, "bob never got the room message:\n{}", tmux.screen());

    // Back on bob's conversation, a new room message counts as unread.
    tmux.keys(&["Up"]);
    let out = b.kith(["send", "team", "second"]);
    assert!(out.status.success(), "{out:?}");
    tmux.wait_for("# team (1)", "no unread count on the room");
    tmux.wait_for("1 new message(s) from #team", "no notification");
    tmux.quit();
}

/// A file in the terminal UI: Ctrl-U takes a path and offers the file;
/// on the other side Ctrl-E lists it, `f` fetches it, the progress shows
/// until it is here, and `s` saves it where the prompt says.
#[test]
fn a_file_is_sent_fetched_and_saved_in_the_terminal_ui() {
    let mut a = Profile::new();
    a.init("alice");
    let _da = a.spawn_daemon();
    let b = Profile::new();
    b.init("bob");
    // Nothing is fetched by itself: bob fetches from the files screen.
    let _db = b.spawn_daemon_with(&["--auto-fetch-up-to", "0"]);
    pair(&a, &b);
    let dir = a.scratch("send");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("notes.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();

    let ta = Tmux::ui(&a, "files-a.sock", "");
    ta.wait_for("Conversations", "alice's UI did not come up");
    ta.keys(&["C-u"]);
    ta.wait_for("Send a file", "Ctrl-U shows no prompt");
    ta.keys(&["-l", file.to_str().unwrap()]);
    ta.keys(&["Enter"]);
    ta.wait_for("offered", "the file was not offered");
    ta.wait_for("notes.bin", "the offer is not in the conversation");
    ta.keys(&["C-e"]);
    ta.wait_for(
        "2.9 MiB  here",
        "the sender's files screen does not show it here",
    );
    ta.keys(&["Escape"]);
    ta.quit();

    let out_dir = b.scratch("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let tb = Tmux::ui(&b, "files-b.sock", &format!("cd {} &&", out_dir.display()));
    tb.wait_for("notes.bin", "the offer never reached bob");
    tb.keys(&["C-e"]);
    tb.wait_for(
        "[░░░░░░░░░░]   0% offered",
        "bob's files screen does not show the offer's progress",
    );
    tb.keys(&["f"]);
    tb.wait_for("here", "the file never arrived");
    tb.keys(&["s"]);
    tb.wait_for("Save the file", "no save prompt");
    tb.keys(&["Enter"]);
    tb.wait_for("saved to", "the file was not saved");
    let saved = std::fs::read(out_dir.join("notes.bin")).unwrap();
    assert!(saved == content, "the saved file differs");
    tb.quit();
}
