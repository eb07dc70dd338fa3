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

/// Draws the whole UI.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
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
        }
    }
    if let Some((text, error)) = &app.notice {
        let style = if *error {
            Style::default().fg(Color::Red)
        } else {
            Style::default().fg(Color::Cyan)
        };
        f.render_widget(Paragraph::new(text.as_str()).style(style), rows[2]);
    }
    let help = match app.live_call() {
        Some(c) if app.call_shown() => call_keys(app, &c.state),
        _ => keys(&app.screen),
    };
    f.render_widget(
        Paragraph::new(help).style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[3],
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

/// The incoming-call and in-call screen.
fn draw_call(f: &mut Frame<'_>, area: Rect, app: &App) {
    let Some(call) = app.live_call() else { return };
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
            lines.push(Line::from(Span::styled(
                "MUTED: they hear nothing from you (m to unmute)",
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            )));
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
            " Enter send  ↑↓ chats  ^K call  ^N add contact  ^O my card  ^S safety number  ^D devices  ^Q quit"
        }
        Screen::AddContact => " paste or type a kith:card/… URI   Enter add   Esc cancel",
        Screen::MyCard => " Esc back",
        Screen::Verify => " y the numbers match   n they differ   Esc back",
        Screen::Devices => " ↑↓ select   i invite a device   r revoke   Esc back",
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
    let items: Vec<ListItem<'_>> = app
        .contacts
        .iter()
        .map(|c| {
            let mut spans = vec![Span::raw(App::name_of(c)), Span::raw(" ")];
            spans.push(badge(&c.trust));
            if c.unread > 0 {
                spans.push(Span::styled(
                    format!(" ({})", c.unread),
                    Style::default().add_modifier(Modifier::BOLD),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut state = ListState::default();
    if !app.contacts.is_empty() {
        state.select(Some(app.selected));
    }
    let list = List::new(items)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Conversations "),
        )
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    f.render_stateful_widget(list, cols[0], &mut state);

    let Some(contact) = app.current() else {
        f.render_widget(
            Paragraph::new(
                "No contacts yet.\n\nPress Ctrl-O to show your card to someone, and Ctrl-N to paste theirs.",
            )
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL)),
            cols[1],
        );
        return;
    };
    let banner: Option<(String, Style, u16)> = match contact.trust.as_str() {
        "compromised" => Some((
            format!(
                "WARNING: {} may be compromised: {}. Do not trust what arrives until you have checked in person.",
                App::name_of(contact),
                contact.trust_reason.as_deref().unwrap_or("marked by hand")
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
    let me = app.status.as_ref().map(|s| s.account.clone());
    let lines: Vec<Line<'_>> = app
        .messages
        .iter()
        .map(|m| {
            let own = me.as_deref() == Some(m.author.to_string().as_str());
            let who = if own {
                "me".to_owned()
            } else {
                App::name_of(contact)
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
                let progress = match f.state.as_str() {
                    "complete" => " · here".to_owned(),
                    _ if f.chunks > 0 => format!(
                        " · {}% ({})",
                        u64::from(f.have) * 100 / u64::from(f.chunks),
                        f.state
                    ),
                    _ => format!(" · {}", f.state),
                };
                spans.push(Span::styled(progress, Style::default().fg(Color::Cyan)));
            }
            if own {
                let (mark, color) = if m.delivered {
                    (" ✓✓", Color::Green)
                } else {
                    (" ✓", Color::DarkGray)
                };
                spans.push(Span::styled(mark, Style::default().fg(color)));
            }
            Line::from(spans)
        })
        .collect();
    let height = right[1].height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(height);
    let title = Line::from(vec![
        Span::raw(format!(" {} ", App::name_of(contact))),
        badge(&contact.trust),
        Span::raw(" "),
    ]);
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(title)),
        right[1],
    );
    f.render_widget(
        Paragraph::new(app.input.as_str())
            .block(Block::default().borders(Borders::ALL).title(" message ")),
        right[2],
    );
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
    let mut state = ListState::default();
    if !app.devices.is_empty() {
        state.select(Some(app.device_selected));
    }
    f.render_stateful_widget(
        List::new(items)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Devices of this account "),
            )
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[0],
        &mut state,
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
