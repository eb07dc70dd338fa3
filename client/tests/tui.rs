//! The terminal UI as a user sees it: known screens rendered with
//! ratatui's test backend and compared with snapshots in
//! `tests/snapshots/` (run with `KITH_UPDATE_SNAPSHOTS=1` to rewrite them
//! after an intended change, then review the diff), and the keys that
//! drive it.

#![allow(clippy::unwrap_used)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kith_app::rpc::Status;
use kith_app::tui::app::{App, Effect, Safety, Screen};
use kith_app::tui::ui;
use node_core::node::contacts::ContactInfo;
use node_core::node::devices::DeviceInfo;
use node_core::node::messages::MessageInfo;
use node_core::{AccountId, DeviceId, EventId};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const ME: AccountId = AccountId::from_bytes([1; 32]);

fn contact(n: u8, name: &str, trust: &str, unread: usize) -> ContactInfo {
    ContactInfo {
        id: AccountId::from_bytes([n; 32]),
        name: name.into(),
        alias: None,
        trust: trust.into(),
        trust_reason: (trust == "compromised")
            .then(|| "its account log forked: device abc signed two different entries".into()),
        devices: vec![DeviceId::from_bytes([n; 32])],
        introduced_by: None,
        unread,
        new_devices: vec![],
    }
}

fn message(n: u8, author: AccountId, text: &str, delivered: bool) -> MessageInfo {
    MessageInfo {
        id: EventId::from_bytes([n; 32]),
        author,
        device: DeviceId::from_bytes([n; 32]),
        text: text.into(),
        time: format!("2026-11-22T10:{:02}:00Z", n),
        delivered,
        kind: "message".into(),
        introduces: None,
    }
}

fn device(n: u8, name: &str, state: &str, current: bool) -> DeviceInfo {
    DeviceInfo {
        id: DeviceId::from_bytes([n; 32]),
        name: name.into(),
        state: state.into(),
        current,
    }
}

fn app(protected: bool) -> App {
    let mut app = App::new();
    app.status = Some(Status {
        account: ME.to_string(),
        device: DeviceId::from_bytes([1; 32]).to_string(),
        name: "alice".into(),
        listening: vec!["127.0.0.1:4000".into()],
        peers: vec!["x".into()],
        outbox: 0,
        protected,
        warnings: vec![],
        relay: None,
        paths: Default::default(),
        events: 0,
        held: 0,
    });
    app.set_contacts(vec![
        contact(2, "bob", "validated", 0),
        contact(3, "carol", "unvalidated", 2),
        contact(4, "mallory", "compromised", 0),
    ]);
    app
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        let line: String = (0..width)
            .map(|x| buffer[(x, y)].symbol().to_owned())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Compares with `tests/snapshots/NAME.txt` (or writes it when asked).
fn snapshot(name: &str, screen: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("KITH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, screen).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with KITH_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        screen, want,
        "screen {name} differs from its snapshot:\n{screen}"
    );
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(app.on_key(key(KeyCode::Char(c))).is_empty());
    }
}

#[test]
fn chat_with_a_validated_contact_shows_badges_unread_counts_and_delivery_marks() {
    let mut a = app(true);
    a.messages = vec![
        message(1, ME, "hi bob", true),
        message(2, AccountId::from_bytes([2; 32]), "hello alice", true),
        message(3, ME, "are you there?", false),
    ];
    let mut offer = message(
        4,
        AccountId::from_bytes([2; 32]),
        "[file] photo.jpg (5242880 bytes)",
        true,
    );
    offer.kind = "file".into();
    a.messages.push(offer);
    a.files = vec![node_core::node::files::FileInfo {
        id: EventId::from_bytes([4; 32]),
        name: "photo.jpg".into(),
        size: 5 << 20,
        hash: "x".into(),
        state: "partial".into(),
        chunks: 20,
        have: 9,
        error: None,
    }];
    a.input = "typing…".into();
    snapshot("chat_validated", &render(&a, 100, 20));
}

#[test]
fn an_unvalidated_contact_gets_a_suggestion_and_a_compromised_one_a_warning() {
    let mut a = app(true);
    a.selected = 1;
    snapshot("chat_unvalidated", &render(&a, 100, 16));
    a.selected = 2;
    snapshot("chat_compromised", &render(&a, 100, 16));
}

#[test]
fn an_unprotected_profile_says_so_in_the_title() {
    let a = app(false);
    let screen = render(&a, 100, 10);
    assert!(
        screen.lines().next().unwrap().contains("UNPROTECTED"),
        "{screen}"
    );
}

#[test]
fn the_first_run_explains_what_to_do() {
    let mut a = App::new();
    a.status = app(true).status;
    snapshot("empty", &render(&a, 80, 12));
}

#[test]
fn the_safety_number_screen_and_the_device_list() {
    let mut a = app(true);
    a.selected = 1;
    a.screen = Screen::Verify;
    a.safety = Some(Safety {
        contact: AccountId::from_bytes([3; 32]).to_string(),
        digits: "0".repeat(60),
        grouped: "12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890".into(),
        qr: "[QR]".into(),
    });
    snapshot("verify", &render(&a, 90, 16));
    a.screen = Screen::Devices;
    a.devices = vec![
        device(1, "laptop", "active", true),
        device(5, "old phone", "revoked", false),
    ];
    snapshot("devices", &render(&a, 90, 12));
}

#[test]
fn small_terminals_still_show_the_keys() {
    let a = app(true);
    let screen = render(&a, 40, 8);
    assert!(
        screen.lines().last().unwrap().contains("Enter send"),
        "{screen}"
    );
}

#[test]
fn keys_send_validate_revoke_and_quit() {
    let mut a = app(true);
    // Type and send to the selected contact.
    type_text(&mut a, "hello");
    let fx = a.on_key(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::Send {
            to: AccountId::from_bytes([2; 32]).to_string(),
            text: "hello".into()
        }]
    );
    assert!(a.input.is_empty());
    assert!(a.on_key(key(KeyCode::Enter)).is_empty(), "nothing to send");

    // Compare safety numbers with carol, then confirm.
    a.on_key(key(KeyCode::Down));
    let carol = AccountId::from_bytes([3; 32]).to_string();
    assert_eq!(
        a.on_key(ctrl('s')),
        vec![Effect::FetchSafetyNumber(carol.clone())]
    );
    assert_eq!(a.screen, Screen::Verify);
    a.safety = Some(Safety {
        contact: carol.clone(),
        digits: "1".repeat(60),
        grouped: String::new(),
        qr: String::new(),
    });
    assert_eq!(
        a.on_key(key(KeyCode::Char('y'))),
        vec![Effect::Verify {
            contact: carol,
            digits: "1".repeat(60)
        }]
    );
    assert_eq!(a.screen, Screen::Chat);

    // Saying the numbers differ changes nothing.
    a.on_key(ctrl('s'));
    assert!(a.on_key(key(KeyCode::Char('n'))).is_empty());
    assert!(a.notice.as_ref().unwrap().1);

    // Paste a card.
    a.on_key(ctrl('n'));
    assert_eq!(a.screen, Screen::AddContact);
    a.on_paste("kith:card/abc\n");
    assert_eq!(
        a.on_key(key(KeyCode::Enter)),
        vec![Effect::AddContact("kith:card/abc".into())]
    );

    // Revoke needs a second `y`; the current device cannot be revoked.
    assert_eq!(a.on_key(ctrl('d')), vec![Effect::FetchDevices]);
    a.devices = vec![
        device(1, "laptop", "active", true),
        device(5, "phone", "active", false),
    ];
    assert!(a.on_key(key(KeyCode::Char('r'))).is_empty());
    assert!(a.confirm_revoke.is_none());
    a.on_key(key(KeyCode::Down));
    assert!(a.on_key(key(KeyCode::Char('r'))).is_empty());
    assert_eq!(
        a.on_key(key(KeyCode::Char('y'))),
        vec![Effect::Revoke(DeviceId::from_bytes([5; 32]).to_string())]
    );
    assert_eq!(a.on_key(key(KeyCode::Char('i'))), vec![Effect::Invite]);
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.screen, Screen::Chat);

    a.on_key(ctrl('q'));
    assert!(a.quit);
}

/// Regression: the TUI drew peer text raw, so names and messages could
/// carry escape sequences, carriage returns and bidi overrides to the
/// terminal.
#[test]
fn peer_text_is_drawn_without_terminal_controls() {
    let mut a = app(true);
    a.set_contacts(vec![contact(
        2,
        "bob\u{1b}]0;pwned\u{7}\u{202e}",
        "validated",
        0,
    )]);
    a.messages = vec![message(
        1,
        AccountId::from_bytes([2; 32]),
        "hi \u{1b}[2J\r\u{202e}evil\u{9b}31m",
        true,
    )];
    let screen = render(&a, 100, 12);
    for (c, name) in [
        ('\u{1b}', "ESC"),
        ('\u{7}', "BEL"),
        ('\r', "CR"),
        ('\u{202e}', "U+202E"),
        ('\u{9b}', "CSI"),
    ] {
        assert!(!screen.contains(c), "{name} drawn:\n{screen}");
    }
    assert!(
        screen.contains("evil") && screen.contains("pwned"),
        "{screen}"
    );
}
