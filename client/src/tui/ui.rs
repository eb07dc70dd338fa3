//! Drawing the terminal UI from [`App`]: nothing here changes state.

use super::app::{App, Screen};
use crate::display::terminal_safe;
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};

/// The trust badge of a contact: a mark and its word, so it reads without
/// colour too.
fn badge(trust: &str) -> Span<'static> {
    match trust {
        "validated" => Span::styled("✔ validated", Style::default().fg(Color::Green)),
        "compromised" => Span::styled(
            "! COMPROMISED",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        _ => Span::styled("? unvalidated", Style::default().fg(Color::Yellow)),
    }
}

/// The badge of a conversation in lists and titles: a bridged one is
/// marked insecure and never shows a kith trust badge.
fn contact_badge(c: &node_core::node::contacts::ContactInfo) -> Span<'static> {
    if c.insecure {
        return Span::styled(
            "⚠ INSECURE",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        );
    }
    badge(&c.trust)
}

/// Draws the whole UI.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(2),
        ])
        .split(f.area());
    draw_title(f, rows[0], app);
    if app.call_shown() {
        draw_call(f, rows[1], app);
    } else {
        match app.screen {
            Screen::Chat => draw_chat(f, rows[1], app),
            Screen::AddContact => draw_add_contact(f, rows[1], app),
            Screen::MyCard => draw_card(f, rows[1], app),
            Screen::Verify => draw_verify(f, rows[1], app),
            Screen::Devices => draw_devices(f, rows[1], app),
            Screen::Requests => draw_requests(f, rows[1], app),
            Screen::NewRoom
            | Screen::JoinRoom
            | Screen::SendFile
            | Screen::SaveFile
            | Screen::Search => draw_prompt(f, rows[1], app),
            Screen::Members => draw_members(f, rows[1], app),
            Screen::InviteMember => draw_invite(f, rows[1], app),
            Screen::Held => draw_held(f, rows[1], app),
            Screen::Files => draw_files(f, rows[1], app),
        }
    }
    if let Some((text, error)) = &app.notice {
        let style = if *error {
            Style::default().fg(Color::Red)
        } else {
            Style::default().fg(Color::Cyan)
        };
        // Errors may quote a peer's words (a file's name, say).
        f.render_widget(
            Paragraph::new(terminal_safe(text).into_owned()).style(style),
            rows[2],
        );
    }
    let help = match app.live_call() {
        Some(c) if app.call_shown() => call_keys(app, &c.state),
        _ => keys(&app.screen),
    };
    f.render_widget(
        Paragraph::new(help)
            .wrap(Wrap { trim: true })
            .style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[3],
    );
}

/// A progress bar of `have` out of `all`, ten cells wide, with the
/// percentage.
pub fn bar(have: u64, all: u64) -> String {
    let pct = (have.min(all) * 100).checked_div(all).unwrap_or(0);
    let full = usize::try_from(pct / 10).unwrap_or(10);
    format!(
        "[{}{}] {pct:>3}%",
        "█".repeat(full),
        "░".repeat(10usize.saturating_sub(full))
    )
}

/// How a file's progress reads: "here" once complete, else a bar.
fn file_progress(f: &node_core::node::files::FileInfo) -> String {
    match f.state.as_str() {
        "complete" => "here".to_owned(),
        _ if f.chunks > 0 => format!(
            "{} {}",
            bar(u64::from(f.have), u64::from(f.chunks)),
            f.state
        ),
        other => other.to_owned(),
    }
}

/// Bytes as people read them.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The prompt screens: a question, the field, and (search) what was
/// found.
fn draw_prompt(f: &mut Frame<'_>, area: Rect, app: &App) {
    let (title, ask) = match app.screen {
        Screen::NewRoom => (
            " New room ",
            format!(
                "Name the room and press Enter. You are its admin.\n{}",
                if app.public_room {
                    "PUBLIC: anyone with its link may join (Tab: make it private)"
                } else {
                    "Private: members you invite only (Tab: make it public)"
                }
            ),
        ),
        Screen::JoinRoom => (
            " Join a room ",
            "Paste the room's link (kith:room/…) and press Enter.".to_owned(),
        ),
        Screen::SendFile => (
            " Send a file ",
            "Type the file's path (~/ for your home folder) and press Enter. It is offered at once; the content follows in the background.".to_owned(),
        ),
        Screen::SaveFile => (
            " Save the file ",
            "Where to save it (the file must not exist yet); Enter saves.".to_owned(),
        ),
        _ => (
            " Find in this conversation ",
            "Type what to look for (any case) and press Enter.".to_owned(),
        ),
    };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(6), Constraint::Min(3)])
        .split(area);
    let mut lines: Vec<Line<'_>> = ask.lines().map(|l| Line::from(l.to_owned())).collect();
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("> ", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(terminal_safe(&app.field).into_owned()),
    ]));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        rows[0],
    );
    if app.screen != Screen::Search {
        return;
    }
    let lines: Vec<Line<'_>> = match &app.found {
        None => vec![],
        Some(found) if found.is_empty() => vec![Line::from("no message holds that text")],
        Some(found) => found
            .iter()
            .map(|m| {
                Line::from(vec![
                    Span::styled(
                        format!("{} ", day_time(&m.time)),
                        Style::default().fg(Color::DarkGray),
                    ),
                    Span::styled(
                        format!("{}: ", app.author_name(&m.author)),
                        Style::default().add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(terminal_safe(&m.text).into_owned()),
                ])
            })
            .collect(),
    };
    let title = match &app.found {
        Some(found) => format!(" Found: {} ", found.len()),
        None => " Found ".to_owned(),
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        rows[1],
    );
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM`.
fn day_time(time: &str) -> String {
    time.get(..16).unwrap_or("").replace('T', " ")
}

/// A list with its selected row shown reversed (none when it is empty).
fn draw_list(
    f: &mut Frame<'_>,
    area: Rect,
    items: Vec<ListItem<'_>>,
    selected: usize,
    block: Block<'_>,
) {
    let mut state = ListState::default();
    if !items.is_empty() {
        state.select(Some(selected));
    }
    f.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
        &mut state,
    );
}

/// A role as shown, with its mark.
fn role_span(role: &str) -> Span<'static> {
    match role {
        "admin" => Span::styled("★ admin", Style::default().fg(Color::Magenta)),
        "moderator" => Span::styled("☆ moderator", Style::default().fg(Color::Cyan)),
        _ => Span::raw("member"),
    }
}

fn draw_members(f: &mut Frame<'_>, area: Rect, app: &App) {
    let Some(room) = app.current_room() else {
        return;
    };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(4)])
        .split(area);
    let items: Vec<ListItem<'_>> = app
        .members
        .iter()
        .map(|m| {
            let mut spans = vec![
                Span::raw(format!("{}  ", app.member_name(m))),
                role_span(&m.role),
            ];
            if m.membership == "invite" {
                spans.push(Span::styled(
                    "  (invited)",
                    Style::default().fg(Color::DarkGray),
                ));
            }
            if let Some(c) = app.contacts.iter().find(|c| c.id == m.account) {
                spans.push(Span::raw("  "));
                spans.push(badge(&c.trust));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let title = format!(
        " #{} · {} · {} member(s) ",
        App::room_name(room),
        if room.public { "public" } else { "private" },
        room.members
    );
    draw_list(
        f,
        rows[0],
        items,
        app.member_selected,
        Block::default().borders(Borders::ALL).title(title),
    );
    let link = match &app.room_link {
        Some(uri) => format!("Anyone with this link may join: {uri}"),
        None if !room.public => {
            "A private room: members come in by invitation (i); it has no link.".to_owned()
        }
        None => "No link to give out yet (once this device has joined).".to_owned(),
    };
    f.render_widget(
        Paragraph::new(link)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL)),
        rows[1],
    );
}

fn draw_invite(f: &mut Frame<'_>, area: Rect, app: &App) {
    let people = app.invitable();
    let items: Vec<ListItem<'_>> = people
        .iter()
        .map(|c| {
            ListItem::new(Line::from(vec![
                Span::raw(format!("{}  ", App::name_of(c))),
                badge(&c.trust),
            ]))
        })
        .collect();
    let title = if people.is_empty() {
        " Every contact is in this room already "
    } else {
        " Invite a contact "
    };
    draw_list(
        f,
        area,
        items,
        app.member_selected,
        Block::default().borders(Borders::ALL).title(title),
    );
}

fn draw_held(f: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(4)])
        .split(area);
    let items: Vec<ListItem<'_>> = app
        .held
        .iter()
        .map(|h| {
            ListItem::new(Line::from(format!(
                "{}  {}  {}: {}  (placed at depth {}, the room is at {}; claims {})",
                h.id.short(12),
                h.kind,
                app.author_name(&h.author),
                terminal_safe(&h.text),
                h.depth,
                h.head_depth,
                day_time(&h.time)
            )))
        })
        .collect();
    draw_list(
        f,
        rows[0],
        items,
        app.held_selected,
        Block::default()
            .borders(Borders::ALL)
            .title(" Held: arrived late, placed far back in the room's history "),
    );
    let text = if app.held.is_empty() {
        "Nothing is held."
    } else {
        "An event placed far back may be someone rewriting history. Release it (c) only if you know it is genuine; it is then shown where it was placed."
    };
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL)),
        rows[1],
    );
}

fn draw_files(f: &mut Frame<'_>, area: Rect, app: &App) {
    let items: Vec<ListItem<'_>> = app
        .files
        .iter()
        .map(|file| {
            let mut spans = vec![
                Span::raw(format!(
                    "{}  {}  ",
                    terminal_safe(&file.name),
                    size(file.size)
                )),
                Span::styled(file_progress(file), Style::default().fg(Color::Cyan)),
            ];
            if let Some(e) = &file.error {
                spans.push(Span::styled(
                    format!("  {}", terminal_safe(e)),
                    Style::default().fg(Color::Red),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let title = if app.files.is_empty() {
        " Files: none in this conversation (Ctrl-U sends one) "
    } else {
        " Files "
    };
    draw_list(
        f,
        area,
        items,
        app.file_selected,
        Block::default().borders(Borders::ALL).title(title),
    );
}

/// The call screen's keys.
fn call_keys(app: &App, state: &str) -> &'static str {
    if app.moving {
        return " 1–9 move the call to that device   Esc back";
    }
    if app.confirm_answer {
        return " Ctrl-A answer anyway   ←→ choose again   Esc put away";
    }
    match state {
        "incoming" => " ←→ choose   Enter do it   Esc put away",
        "active" | "reconnecting" => {
            " m mute/unmute   h hang up   o move to another device   Esc put away (^K back)"
        }
        _ => " h hang up   Esc put away (^K back)",
    }
}

/// The line saying this device is muted in a call.
fn muted_line() -> Line<'static> {
    Line::from(Span::styled(
        "MUTED: they hear nothing from you (m to unmute)",
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
    ))
}

/// A room's call: who is in it (with their trust badges), who speaks,
/// and the call's figures.
fn draw_room_call(f: &mut Frame<'_>, area: Rect, app: &App, call: &crate::rpc::CallInfo) {
    let room = app
        .rooms
        .iter()
        .find(|r| Some(r.id.to_string()) == call.room)
        .map_or_else(|| "a room".to_owned(), App::room_name);
    let mut lines = vec![
        Line::from(Span::styled(
            format!("In the call of # {room}"),
            Style::default().add_modifier(Modifier::BOLD),
        )),
        Line::from(""),
        Line::from(format!(
            "with {} (every frame sealed under its sender's key):",
            call.participants.len()
        )),
    ];
    if call.participants.is_empty() {
        lines.push(Line::from("  no one yet"));
    }
    for (i, device) in call.participants.iter().enumerate() {
        let account = call.participant_accounts.get(i).map_or("", String::as_str);
        let speaking = call.speaking.as_deref() == Some(device.as_str());
        let mut spans = vec![Span::raw(if speaking { "  🔊 " } else { "     " })];
        match app.contact_of(account) {
            Some(c) => {
                spans.push(Span::raw(format!("{}  ", App::name_of(c))));
                spans.push(contact_badge(c));
            }
            None => {
                spans.push(Span::raw(format!(
                    "{}  ",
                    terminal_safe(&account[..account.len().min(12)])
                )));
                spans.push(Span::styled(
                    "not a contact",
                    Style::default().fg(Color::Yellow),
                ));
            }
        }
        if speaking {
            spans.push(Span::styled(
                "  speaking",
                Style::default().fg(Color::Green),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    let stat = |v: Option<u64>, unit: &str| v.map_or("–".to_owned(), |v| format!("{v} {unit}"));
    lines.push(Line::from(format!(
        "path: {}   loss: {}   longest gap: {}   sending: {}",
        terminal_safe(call.path.as_deref().unwrap_or("–")),
        call.loss
            .map_or("–".to_owned(), |l| format!("{:.1}%", l * 100.0)),
        stat(call.longest_gap_ms, "ms"),
        stat(call.audio_kbps, "kbit/s"),
    )));
    if call.muted {
        lines.push(muted_line());
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Room call ")),
        area,
    );
}

/// The incoming-call and in-call screen.
fn draw_call(f: &mut Frame<'_>, area: Rect, app: &App) {
    let Some(call) = app.live_call() else { return };
    if call.room.is_some() {
        return draw_room_call(f, area, app, call);
    }
    let contact = app.contact_of(&call.target);
    let name = contact.map_or_else(
        || terminal_safe(&call.target[..call.target.len().min(12)]).into_owned(),
        App::name_of,
    );
    let trust = contact.map_or("unvalidated", |c| c.trust.as_str());
    let mut lines = Vec::new();
    let what = if call.video { "video call" } else { "call" };
    let headline = match call.state.as_str() {
        "incoming" => format!("Incoming {what} from {name}"),
        "ringing" => format!("Calling {name}…"),
        "reconnecting" => format!("In a {what} with {name} — reconnecting…"),
        _ => format!("In a {what} with {name}"),
    };
    lines.push(Line::from(vec![
        Span::styled(headline, Style::default().add_modifier(Modifier::BOLD)),
        Span::raw("  "),
        badge(trust),
    ]));
    lines.push(Line::from(""));
    match trust {
        "compromised" => {
            let why = contact
                .and_then(|c| c.trust_reason.as_deref())
                .unwrap_or("marked by hand");
            lines.push(Line::from(Span::styled(
                format!(
                    "WARNING: {name} may be compromised ({}). Whoever holds their device may be calling.",
                    terminal_safe(why)
                ),
                Style::default().fg(Color::White).bg(Color::Red),
            )));
            if call.state == "incoming" {
                lines.push(Line::from(Span::styled(
                    if app.confirm_answer {
                        "Press Ctrl-A to answer anyway."
                    } else {
                        "Answering takes Ctrl-A after choosing it."
                    },
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                )));
            }
        }
        "unvalidated" => lines.push(Line::from(Span::styled(
            format!(
                "You have not compared safety numbers with {name}: on this call, read them to each other (Esc, then Ctrl-S)."
            ),
            Style::default().fg(Color::Yellow),
        ))),
        _ => {}
    }
    if call.state == "incoming" {
        lines.push(Line::from(""));
        let choices = ["Answer", "Answer with video", "Decline"];
        let mut spans = Vec::new();
        for (i, c) in choices.iter().enumerate() {
            let style = if app.choice == Some(i) {
                Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
            } else {
                Style::default()
            };
            spans.push(Span::styled(format!("[ {c} ]"), style));
            spans.push(Span::raw("  "));
        }
        lines.push(Line::from(spans));
    }
    if call.state != "incoming" && call.state != "ringing" {
        lines.push(Line::from(""));
        let path = call.path.as_deref().unwrap_or("unknown");
        let path_span = if path == "relay" {
            Span::styled(
                "relayed (lower bitrate)",
                Style::default().fg(Color::Yellow),
            )
        } else {
            Span::raw(terminal_safe(path).into_owned())
        };
        lines.push(Line::from(vec![Span::raw("path: "), path_span]));
        let stat =
            |v: Option<u64>, unit: &str| v.map_or("–".to_owned(), |v| format!("{v} {unit}"));
        lines.push(Line::from(format!(
            "round trip: {}   loss: {}   longest gap: {}",
            stat(call.rtt_ms, "ms"),
            call.loss
                .map_or("–".to_owned(), |l| format!("{:.1}%", l * 100.0)),
            stat(call.longest_gap_ms, "ms"),
        )));
        lines.push(Line::from(format!(
            "sending: audio {}, video {}   video shown: {} frames",
            stat(call.audio_kbps, "kbit/s"),
            stat(call.video_kbps, "kbit/s"),
            call.video_frames_shown
        )));
        if call.muted {
            lines.push(muted_line());
        }
        if let Some(d) = &call.audio_device {
            lines.push(Line::from(format!("sound: {}", terminal_safe(d))));
        }
    }
    if app.moving {
        lines.push(Line::from(""));
        lines.push(Line::from("Move the call to:"));
        let others: Vec<_> = app
            .devices
            .iter()
            .filter(|d| !d.current && d.state == "active")
            .collect();
        if others.is_empty() {
            lines.push(Line::from("  (no other device of yours)"));
        }
        for (i, d) in others.iter().take(9).enumerate() {
            lines.push(Line::from(format!(
                "  {}  {} ({})",
                i + 1,
                terminal_safe(&d.name),
                &d.id.to_string()[..8]
            )));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Call ")),
        area,
    );
}

/// The key bindings of a screen, always on screen.
fn keys(screen: &Screen) -> &'static str {
    match screen {
        Screen::Chat => {
            " Enter send ↑↓ chats ^Q quit ^K call ^U send file ^E files ^F find ^N add contact ^O card ^S safety no. ^G new room ^L join room ^T members ^P mute ^D devices ^R requests ^X stop all"
        }
        Screen::NewRoom => " Enter make it   Tab private/public   Esc cancel",
        Screen::JoinRoom | Screen::SendFile | Screen::SaveFile => " Enter go   Esc cancel",
        Screen::Search => " Enter find   Esc back",
        Screen::Members => {
            " ↑↓ select   i invite   a admin m moderator u member   k remove b ban   h held events   x leave   Esc back"
        }
        Screen::InviteMember => " ↑↓ select   Enter invite   Esc back",
        Screen::Held => " ↑↓ select   c release it   Esc back",
        Screen::Files => " ↑↓ select   s save   f fetch   Esc back",
        Screen::AddContact => " paste or type a kith:card/… URI   Enter add   Esc cancel",
        Screen::MyCard => " Esc back",
        Screen::Verify => " y the numbers match   n they differ   Esc back",
        Screen::Devices => " ↑↓ select   i invite a device   r revoke   Esc back",
        Screen::Requests => {
            " ↑↓ select   a accept   d decline   b block (on all your devices)   Esc back"
        }
    }
}

fn draw_title(f: &mut Frame<'_>, area: Rect, app: &App) {
    let mut spans = vec![Span::styled(
        " kith ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    match &app.status {
        Some(s) => {
            spans.push(Span::raw(format!(
                "· {}  · {} peer(s) online  ",
                terminal_safe(&s.name),
                s.peers.len()
            )));
            if !s.protected {
                spans.push(Span::styled(
                    " UNPROTECTED: this profile has no passphrase ",
                    Style::default().fg(Color::White).bg(Color::Red),
                ));
            }
        }
        None => spans.push(Span::raw("· connecting to the daemon…")),
    }
    if app.request_count > 0 && app.screen != Screen::Requests {
        spans.push(Span::styled(
            format!(" {} contact request(s) (^R) ", app.request_count),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if let Some(c) = app.live_call()
        && !app.call_shown()
    {
        let name = app
            .contact_of(&c.target)
            .map_or_else(|| "someone".to_owned(), App::name_of);
        spans.push(Span::styled(
            format!(" ☎ {} with {name} (^K) ", c.state),
            Style::default().fg(Color::Black).bg(Color::Green),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_chat(f: &mut Frame<'_>, area: Rect, app: &App) {
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(32), Constraint::Percentage(68)])
        .split(area);
    let unread = |n: usize, muted: bool, spans: &mut Vec<Span<'static>>| {
        if n > 0 {
            spans.push(Span::styled(
                format!(" ({n})"),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        }
        if muted {
            spans.push(Span::styled(" muted", Style::default().fg(Color::DarkGray)));
        }
    };
    let mut items: Vec<ListItem<'_>> = app
        .contacts
        .iter()
        .map(|c| {
            let mut spans = vec![Span::raw(App::name_of(c)), Span::raw(" ")];
            spans.push(contact_badge(c));
            unread(c.unread, c.muted, &mut spans);
            ListItem::new(Line::from(spans))
        })
        .collect();
    items.extend(app.rooms.iter().map(|r| {
        let mut spans = vec![Span::styled(
            format!("# {}", App::room_name(r)),
            Style::default().fg(Color::Cyan),
        )];
        if r.membership != "join" {
            spans.push(Span::styled(
                " (joining)",
                Style::default().fg(Color::DarkGray),
            ));
        }
        if r.call.is_some() {
            spans.push(Span::styled(
                format!(" ☎ {}", r.in_call),
                Style::default().fg(Color::Green),
            ));
        }
        unread(r.unread, r.muted, &mut spans);
        ListItem::new(Line::from(spans))
    }));
    draw_list(
        f,
        cols[0],
        items,
        app.selected,
        Block::default()
            .borders(Borders::ALL)
            .title(" Conversations "),
    );

    if let Some(room) = app.current_room() {
        draw_room(f, cols[1], app, room);
        return;
    }
    let Some(contact) = app.current() else {
        f.render_widget(
            Paragraph::new(
                "No contacts yet.\n\nPress Ctrl-O to show your card to someone, and Ctrl-N to paste theirs.\nCtrl-G makes a room; Ctrl-L joins one from its link.",
            )
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL)),
            cols[1],
        );
        return;
    };
    let banner: Option<(String, Style, u16)> = match contact.trust.as_str() {
        _ if contact.insecure => Some((
            format!(
                "INSECURE — via {}: the other network reads this conversation and its people are not proven by kith keys.",
                terminal_safe(contact.via.as_deref().unwrap_or("a bridge"))
            ),
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            2,
        )),
        "compromised" => Some((
            format!(
                "WARNING: {} may be compromised: {}. Do not trust what arrives until you have checked in person.",
                App::name_of(contact),
                terminal_safe(contact.trust_reason.as_deref().unwrap_or("marked by hand"))
            ),
            Style::default().fg(Color::White).bg(Color::Red),
            3,
        )),
        "unvalidated" => Some((
            format!(
                "Tip: you have not compared safety numbers with {} yet. Press Ctrl-S to do it.",
                App::name_of(contact)
            ),
            Style::default().fg(Color::Yellow),
            2,
        )),
        _ if !contact.new_devices.is_empty() => Some((
            format!(
                "Notice: {} added {} device(s) since you validated; their other devices signed it, so validation stands.",
                App::name_of(contact),
                contact.new_devices.len()
            ),
            Style::default().fg(Color::Cyan),
            2,
        )),
        _ => None,
    };
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(banner.as_ref().map_or(0, |b| b.2)),
            Constraint::Min(3),
            Constraint::Length(3),
        ])
        .split(cols[1]);
    if let Some((text, style, _)) = banner {
        f.render_widget(
            Paragraph::new(text).style(style).wrap(Wrap { trim: true }),
            right[0],
        );
    }
    let lines = message_lines(app, |_| App::name_of(contact));
    let title = Line::from(vec![
        Span::raw(format!(" {} ", App::name_of(contact))),
        contact_badge(contact),
        Span::raw(" "),
    ]);
    draw_messages(f, (right[1], right[2]), app, lines, title);
}

/// The messages of the selected conversation as lines; `name` gives the
/// name of an author that is not this account.
fn message_lines(app: &App, name: impl Fn(&node_core::AccountId) -> String) -> Vec<Line<'_>> {
    let me = app.status.as_ref().map(|s| s.account.clone());
    app.messages
        .iter()
        .map(|m| {
            let own = me.as_deref() == Some(m.author.to_string().as_str());
            let who = match &m.sender {
                // A bridged conversation: who wrote it on the other network.
                Some(sender) => terminal_safe(sender).into_owned(),
                None if own => "me".to_owned(),
                None => name(&m.author),
            };
            let time = m.time.get(11..16).unwrap_or("");
            let who = if m.kind == "call" {
                format!("☎ {who}")
            } else {
                who
            };
            let mut spans = vec![
                Span::styled(format!("{time} "), Style::default().fg(Color::DarkGray)),
                Span::styled(
                    format!("{who}: "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(terminal_safe(&m.text).into_owned()),
            ];
            if m.kind == "file"
                && let Some(f) = app.files.iter().find(|f| f.id == m.id)
            {
                spans.push(Span::styled(
                    format!(" · {}", file_progress(f)),
                    Style::default().fg(Color::Cyan),
                ));
            }
            if own {
                let (mark, color) = match m.state.as_deref() {
                    Some("waiting") => (" ⧗ waiting for the bridge device", Color::Yellow),
                    Some("failed") => (" ✗ not sent", Color::Red),
                    Some("sent") => (" ✓", Color::DarkGray),
                    _ if m.delivered => (" ✓✓", Color::Green),
                    _ => (" ✓", Color::DarkGray),
                };
                spans.push(Span::styled(mark, Style::default().fg(color)));
            }
            Line::from(spans)
        })
        .collect()
}

/// The message pane (the last lines that fit) and the input below it.
fn draw_messages(
    f: &mut Frame<'_>,
    (pane, input): (Rect, Rect),
    app: &App,
    lines: Vec<Line<'_>>,
    title: Line<'_>,
) {
    let height = pane.height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(height);
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(title)),
        pane,
    );
    f.render_widget(
        Paragraph::new(app.input.as_str())
            .block(Block::default().borders(Borders::ALL).title(" message ")),
        input,
    );
}

/// A room: who is in it and what it says.
fn draw_room(f: &mut Frame<'_>, area: Rect, app: &App, room: &node_core::node::rooms::RoomInfo) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(3),
        ])
        .split(area);
    let me = app.status.as_ref().map(|s| s.account.clone());
    let my_role = app
        .members
        .iter()
        .find(|m| me.as_deref() == Some(m.account.to_string().as_str()))
        .map(|m| m.role.clone());
    let about = if room.membership != "join" {
        Line::from(Span::styled(
            "Joining: the room fills in once a member's device gives it to this one.",
            Style::default().fg(Color::Yellow),
        ))
    } else {
        let mut spans = vec![Span::raw(format!(
            "{} · {} member(s) · you: ",
            if room.public { "public" } else { "private" },
            room.members
        ))];
        spans.push(role_span(my_role.as_deref().unwrap_or("member")));
        if !room.topic.is_empty() {
            spans.push(Span::raw(format!(" · {}", terminal_safe(&room.topic))));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(about), rows[0]);
    let lines = message_lines(app, |a| app.author_name(a));
    let title = Line::from(format!(" # {} ", App::room_name(room)));
    draw_messages(f, (rows[1], rows[2]), app, lines, title);
}

fn draw_add_contact(f: &mut Frame<'_>, area: Rect, app: &App) {
    let text = vec![
        Line::from("Paste the contact's card (kith:card/…) and press Enter."),
        Line::from("They arrive as unvalidated: compare safety numbers afterwards (Ctrl-S)."),
        Line::from(""),
        Line::from(app.input.as_str()),
    ];
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Add a contact "),
        ),
        area,
    );
}

fn draw_card(f: &mut Frame<'_>, area: Rect, app: &App) {
    let body = match &app.card {
        Some((uri, qr)) => format!("{qr}\n{uri}"),
        None => "…".into(),
    };
    f.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" My card: let them scan it "),
        ),
        area,
    );
}

fn draw_verify(f: &mut Frame<'_>, area: Rect, app: &App) {
    let name = app.current().map(App::name_of).unwrap_or_default();
    let body = match &app.safety {
        Some(s) => format!(
            "Compare this number with {name}, in person or on a call you trust.\n\
             It is the same on both sides and does not change when devices come and go.\n\n\
             {}\n\n{}\n\nDoes {name} see the same number?  y = yes, they match   n = no",
            s.grouped, s.qr
        ),
        None => "…".into(),
    };
    f.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Safety number "),
        ),
        area,
    );
}

fn draw_devices(f: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(4)])
        .split(area);
    let items: Vec<ListItem<'_>> = app
        .devices
        .iter()
        .map(|d| {
            let state = if d.state == "revoked" {
                Span::styled("revoked", Style::default().fg(Color::Red))
            } else {
                Span::styled("active", Style::default().fg(Color::Green))
            };
            let current = if d.current { "  (this device)" } else { "" };
            ListItem::new(Line::from(vec![
                Span::raw(format!("{}  {}  ", d.id.short(12), terminal_safe(&d.name))),
                state,
                Span::raw(current),
            ]))
        })
        .collect();
    draw_list(
        f,
        rows[0],
        items,
        app.device_selected,
        Block::default()
            .borders(Borders::ALL)
            .title(" Devices of this account "),
    );
    let invite = match &app.invite {
        Some(code) => format!(
            "On the new device: kith init --join {code} --name NAME   (valid 10 minutes, once)"
        ),
        None => "Press i for a one-time code to link a new device.".into(),
    };
    f.render_widget(
        Paragraph::new(invite)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL)),
        rows[1],
    );
}

fn draw_requests(f: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(40), Constraint::Min(4)])
        .split(area);
    let items: Vec<ListItem<'_>> = app
        .requests
        .iter()
        .map(|r| {
            ListItem::new(Line::from(format!(
                "{}  {}  {}",
                r.id.short(12),
                terminal_safe(&r.name),
                crate::display::request_how(r)
            )))
        })
        .collect();
    draw_list(
        f,
        rows[0],
        items,
        app.request_selected,
        Block::default()
            .borders(Borders::ALL)
            .title(" People who added you "),
    );
    let mut lines: Vec<Line<'_>> = Vec::new();
    match app.requests.get(app.request_selected) {
        None => lines.push(Line::from("No contact requests.")),
        Some(r) => {
            lines.push(Line::from(format!(
                "{} — {} ({}). Not a contact: nothing from them is shown or fetched until you accept.",
                terminal_safe(&r.name),
                crate::display::request_how(r),
                r.time
            )));
            if let Some(like) = r.resembles {
                lines.push(Line::from(Span::styled(
                    format!(
                        "Careful: a different account from your contact with the same name ({}).",
                        like.short(12)
                    ),
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                )));
            }
            lines.push(Line::from(""));
            if r.messages.is_empty() {
                lines.push(Line::from("(no message)"));
            }
            for m in &r.messages {
                lines.push(Line::from(format!("> {}", terminal_safe(m))));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL)),
        rows[1],
    );
}
