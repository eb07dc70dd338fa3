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
use node_core::node::files::FileInfo;
use node_core::node::messages::MessageInfo;
use node_core::node::rooms::{HeldInfo, MemberInfo, RoomInfo};
use node_core::{AccountId, DeviceId, EventId, LogId};
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
        muted: false,
        insecure: false,
        via: None,
        group: false,
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
        insecure: false,
        sender: None,
        state: None,
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
        direct_addrs: Default::default(),
        events: 0,
        held: 0,
        requests: 0,
        lan: Default::default(),
        dht: Default::default(),
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
    let lines: Vec<&str> = screen.lines().collect();
    let keys = lines[lines.len() - 2..].join(" ");
    // Sending and quitting are among the first keys shown.
    assert!(
        keys.contains("Enter send") && keys.contains("^Q quit"),
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

fn request(
    n: u8,
    name: &str,
    messages: &[&str],
    resembles: Option<AccountId>,
) -> kith_client::RequestInfo {
    kith_client::RequestInfo {
        id: AccountId::from_bytes([n; 32]),
        name: name.into(),
        how: "card".into(),
        introduced_by: None,
        introducer_name: None,
        handle: None,
        time: "2026-12-06T10:00:00Z".into(),
        messages: messages.iter().map(|m| (*m).to_owned()).collect(),
        device: DeviceId::from_bytes([n; 32]),
        resembles,
    }
}

/// The requests screen: who asks, the claim of how, the first message,
/// a look-alike of a contact flagged, every stranger's text made safe;
/// the selection stays on the request it was on when a new one arrives,
/// and a/d/b answer that one.
#[test]
fn contact_requests_are_shown_safely_and_answered_by_id() {
    let mut app = app(true);
    app.on_key(ctrl('r'));
    assert_eq!(app.screen, Screen::Requests);
    let carol = AccountId::from_bytes([3; 32]);
    app.set_requests(vec![
        request(7, "mallory\u{1b}[2J\u{202e}", &["hi\u{7}, it's\nme"], None),
        request(8, "carol", &["it's carol, new phone"], Some(carol)),
    ]);
    app.on_key(key(KeyCode::Down));
    let screen = render(&app, 100, 24);
    assert!(screen.contains("People who added you"), "{screen}");
    assert!(
        !screen.contains('\u{1b}') && !screen.contains('\u{202e}'),
        "{screen}"
    );
    assert!(screen.contains("Careful: a different account"), "{screen}");
    assert!(screen.contains("it's carol, new phone"), "{screen}");
    // A new request arrives on top: the selection stays on carol's.
    app.set_requests(vec![
        request(9, "eve", &[], None),
        request(7, "mallory", &[], None),
        request(8, "carol", &[], Some(carol)),
    ]);
    assert_eq!(
        app.on_key(key(KeyCode::Char('b'))),
        vec![Effect::AnswerRequest {
            id: AccountId::from_bytes([8; 32]).to_string(),
            answer: "block",
        }]
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Chat);
}

fn room(n: u8, name: &str, unread: usize, membership: &str) -> RoomInfo {
    RoomInfo {
        id: LogId::from_bytes([n; 32]),
        name: name.into(),
        public: false,
        members: 3,
        membership: membership.into(),
        topic: String::new(),
        unread,
        muted: n == 8,
        call: None,
        in_call: 0,
    }
}

fn member(n: u8, role: &str, name: Option<&str>) -> MemberInfo {
    MemberInfo {
        account: AccountId::from_bytes([n; 32]),
        role: role.into(),
        power: None,
        membership: "join".into(),
        name: name.map(Into::into),
    }
}

#[test]
fn rooms_show_unread_counts_members_roles_and_files_with_progress() {
    let mut app = app(true);
    app.set_rooms(vec![
        room(9, "team", 3, "join"),
        room(8, "lobby", 0, "join"),
        room(7, "gone", 0, "leave"),
    ]);
    // Contacts, then rooms by name; a room left is not listed.
    assert_eq!(app.conversations(), 5);
    app.selected = 4;
    let team = LogId::from_bytes([9; 32]).to_string();
    assert_eq!(app.current_target(), Some(team.clone()));
    app.members = vec![
        member(1, "admin", None),
        member(2, "moderator", Some("bob")),
        member(7, "member", None),
    ];
    let mut file = message(3, AccountId::from_bytes([2; 32]), "[file] plan.pdf", true);
    file.kind = "file".into();
    app.messages = vec![
        message(
            1,
            AccountId::from_bytes([7; 32]),
            "hi from a stranger",
            true,
        ),
        message(2, ME, "welcome", false),
        file,
    ];
    app.files = vec![FileInfo {
        id: EventId::from_bytes([3; 32]),
        name: "plan.pdf".into(),
        size: 2_500_000,
        hash: "x".into(),
        state: "partial".into(),
        chunks: 10,
        have: 4,
        error: None,
    }];
    snapshot("room", &render(&app, 110, 16));

    // Enter sends to the room.
    type_text(&mut app, "hello all");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Effect::Send {
            to: team.clone(),
            text: "hello all".into()
        }]
    );
    // Members: roles, and a removal needs y.
    assert_eq!(app.on_key(ctrl('t')), vec![Effect::RoomLink(team.clone())]);
    app.room_link = Some("kith:room/abc".into());
    snapshot("room_members", &render(&app, 110, 16));
    app.on_key(key(KeyCode::Down));
    let bob = AccountId::from_bytes([2; 32]).to_string();
    // Every change to a member waits for y, and acts on the member that
    // was selected when the key was pressed, whoever joins meanwhile.
    assert!(app.on_key(key(KeyCode::Char('a'))).is_empty());
    assert!(app.notice.as_ref().unwrap().0.contains("make bob an admin"));
    let mut joined = app.members.clone();
    joined.insert(0, member(0, "member", Some("mallory")));
    app.set_members(joined);
    assert_eq!(app.members[app.member_selected].account.to_string(), bob);
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![Effect::RoomRole {
            room: team.clone(),
            account: bob.clone(),
            role: "admin"
        }]
    );
    assert!(app.on_key(key(KeyCode::Char('b'))).is_empty());
    assert!(
        app.on_key(key(KeyCode::Char('n'))).is_empty(),
        "n is not yes"
    );
    assert!(app.on_key(key(KeyCode::Char('b'))).is_empty());
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![Effect::RoomKick {
            room: team.clone(),
            account: bob,
            ban: true
        }]
    );
    app.set_members(app.members[1..].to_vec());
    // Own entry: not removable from here.
    app.member_selected = 0;
    assert!(app.on_key(key(KeyCode::Char('k'))).is_empty());
    assert!(app.confirm_member.is_none());
    app.on_key(key(KeyCode::Esc));

    // Files: the bar, and no saving before the file is here.
    app.on_key(ctrl('e'));
    assert_eq!(app.screen, Screen::Files);
    snapshot("files", &render(&app, 110, 12));
    assert!(app.on_key(key(KeyCode::Char('s'))).is_empty());
    assert_eq!(
        app.on_key(key(KeyCode::Char('f'))),
        vec![Effect::FileFetch(EventId::from_bytes([3; 32]).to_string())]
    );
    app.on_key(key(KeyCode::Esc));

    // Search.
    app.on_key(ctrl('f'));
    type_text(&mut app, "plan");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Effect::Search {
            target: team.clone(),
            text: "plan".into()
        }]
    );
    app.on_key(key(KeyCode::Esc));

    // Mute follows what the room says it is.
    assert_eq!(
        app.on_key(ctrl('p')),
        vec![Effect::Mute {
            target: team,
            on: true
        }]
    );
}

#[test]
fn new_unread_messages_notify_unless_muted_or_on_screen() {
    let mut app = app(true);
    app.set_rooms(vec![
        room(9, "team", 0, "join"),
        room(8, "lobby", 0, "join"),
    ]);
    app.notifications.clear();
    // bob (selected, on screen), carol, team, lobby (muted) all gain one.
    app.set_contacts(vec![
        contact(2, "bob", "validated", 1),
        contact(3, "carol", "unvalidated", 3),
        contact(4, "mallory", "compromised", 0),
    ]);
    app.set_rooms(vec![
        room(9, "team", 1, "join"),
        room(8, "lobby", 5, "join"),
    ]);
    let bodies: Vec<&str> = app.notifications.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(
        bodies,
        ["3 new message(s) from carol", "1 new message(s) from #team"]
    );
}

#[test]
fn progress_bars_fill_by_tenths() {
    assert_eq!(ui::bar(0, 10), "[░░░░░░░░░░]   0%");
    assert_eq!(ui::bar(4, 10), "[████░░░░░░]  40%");
    assert_eq!(ui::bar(10, 10), "[██████████] 100%");
    assert_eq!(ui::bar(3, 0), "[░░░░░░░░░░]   0%");
}

#[test]
fn a_held_event_is_released_only_as_seen_and_confirmed() {
    let mut app = app(true);
    app.set_rooms(vec![room(9, "team", 0, "join")]);
    app.selected = 3;
    app.screen = Screen::Held;
    let held = |n: u8, depth: u64| HeldInfo {
        id: EventId::from_bytes([n; 32]),
        author: AccountId::from_bytes([7; 32]),
        device: DeviceId::from_bytes([7; 32]),
        kind: "message".into(),
        text: format!("late {n}"),
        time: "2026-01-01T00:00:00Z".into(),
        depth,
        head_depth: 900,
    };
    app.set_held(vec![held(20, 500)]);
    assert!(app.on_key(key(KeyCode::Char('c'))).is_empty());
    // A backdated event arrives and sorts first: the selection stays.
    app.set_held(vec![held(21, 3), held(20, 500)]);
    assert_eq!(
        app.held[app.held_selected].id,
        EventId::from_bytes([20; 32])
    );
    assert_eq!(
        app.on_key(key(KeyCode::Char('y'))),
        vec![Effect::RoomConfirm {
            room: LogId::from_bytes([9; 32]).to_string(),
            event: EventId::from_bytes([20; 32]).to_string(),
        }]
    );
}

#[test]
fn a_room_one_is_removed_from_takes_the_draft_with_it() {
    let mut app = app(true);
    app.set_rooms(vec![room(9, "team", 0, "join"), room(10, "zoo", 0, "join")]);
    app.selected = 3;
    type_text(&mut app, "meant for team only");
    // Kicked: the room is listed as left, and goes from the list.
    app.set_rooms(vec![
        room(9, "team", 0, "leave"),
        room(10, "zoo", 0, "join"),
    ]);
    assert!(
        app.input.is_empty(),
        "the draft would go to another conversation"
    );
    assert!(app.notice.as_ref().unwrap().1);
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
}

#[test]
fn a_peers_file_name_is_saved_under_a_plain_name() {
    use kith_app::tui::app::save_name;
    assert_eq!(save_name("photo.jpg", "abc"), "photo.jpg");
    assert_eq!(save_name(".bash_login", "abc"), "bash_login");
    assert_eq!(save_name("../../etc/passwd", "abc"), "_.._etc_passwd");
    assert_eq!(save_name("..", "abc"), "file-abc");
    assert_eq!(save_name("", "abc"), "file-abc");
    assert_eq!(save_name("a\u{1b}[2Jb", "abc"), "a\u{fffd}[2Jb");
    assert_eq!(save_name(&"x".repeat(500), "abc").chars().count(), 100);
}

/// A room's call: the room list marks the room, Ctrl-K on it starts (or
/// joins) its call, and the call screen lists who is in it with their
/// trust badges and who is speaking.
#[test]
fn a_room_call_lists_its_participants_and_who_speaks() {
    let mut app = app(false);
    let mut r = room(9, "band", 0, "join");
    r.call = Some("ab".repeat(16));
    r.in_call = 3;
    app.set_rooms(vec![r]);
    app.selected = 3;
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('k'), KeyModifiers::CONTROL)),
        vec![Effect::CallStart {
            to: LogId::from_bytes([9; 32]).to_string(),
            video: false
        }]
    );
    let bob = DeviceId::from_bytes([2; 32]).to_string();
    let carol = DeviceId::from_bytes([3; 32]).to_string();
    let stranger = DeviceId::from_bytes([7; 32]).to_string();
    let call: kith_app::rpc::CallInfo = serde_json::from_value(serde_json::json!({
        "id": "ab".repeat(16),
        "target": LogId::from_bytes([9; 32]).to_string(),
        "room": LogId::from_bytes([9; 32]).to_string(),
        "state": "active",
        "device": null,
        "participants": [bob, carol, stranger],
        "participant_accounts": [
            AccountId::from_bytes([2; 32]).to_string(),
            AccountId::from_bytes([3; 32]).to_string(),
            AccountId::from_bytes([7; 32]).to_string(),
        ],
        "speaking": carol,
        "path": "direct",
        "rtt_ms": null,
        "loss": 0.0,
        "audio_kbps": 33,
        "video_kbps": null,
        "media": true,
    }))
    .unwrap();
    app.set_calls(vec![call]);
    let screen = render(&app, 90, 24);
    assert!(screen.contains("In the call of # band"), "{screen}");
    assert!(screen.contains("bob  ✔ validated"), "{screen}");
    assert!(
        screen.contains("🔊") && screen.contains("carol  ? unvalidated  speaking"),
        "{screen}"
    );
    assert!(screen.contains("not a contact"), "{screen}");
    snapshot("room_call", &screen);
}
