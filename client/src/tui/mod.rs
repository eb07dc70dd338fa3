//! The terminal UI (`kith` in a terminal, or `kith tui`): a client of the
//! daemon like the CLI, over the same socket. [`app`] holds the state and
//! turns keys into requests, [`ui`] draws it, this module runs the loop:
//! it refreshes when the daemon's subscription says something changed
//! (and every few seconds), or every 500 ms if no subscription is up.

pub mod app;
pub mod launch;
pub mod notify;
pub mod onboard;
pub mod ui;

use crate::rpc::Client;
use anyhow::{Context, Result};
use app::{App, Effect, Safety, Screen};
use crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use node_core::identity::card::qr_terminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the UI asks the daemon for news when the daemon cannot tell
/// it (no subscription).
const REFRESH: Duration = Duration::from_millis(500);
/// How often the UI refreshes anyway while subscribed (what no notice
/// covers: peers, paths, the clock in message times).
const SLOW_REFRESH: Duration = Duration::from_secs(5);
/// How often the UI asks for the calls on this device.
const CALLS_EVERY: Duration = Duration::from_millis(300);
/// How long the loop waits for a key before it looks for notices.
const KEY_WAIT: Duration = Duration::from_millis(50);

/// Keeps a subscription to the daemon's notices on its own thread; each
/// notice (or a lost subscription) is one message on the channel. The
/// flag says whether a subscription is up.
fn watch_daemon(
    home: &Path,
) -> (
    std::sync::mpsc::Receiver<()>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let (tx, rx) = std::sync::mpsc::channel();
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (home, flag) = (home.to_path_buf(), std::sync::Arc::clone(&up));
    // If no thread can be started, the flag stays down: the UI polls.
    let _ = std::thread::Builder::new()
        .name("kith-tui-notices".into())
        .spawn(move || {
            let Ok(rt) = crate::cmd::runtime() else {
                return;
            };
            rt.block_on(async {
                loop {
                    if let Ok(mut sub) = Client::new(&home).subscribe().await {
                        flag.store(true, Ordering::SeqCst);
                        // Catch up on what changed before the subscription.
                        if tx.send(()).is_err() {
                            return;
                        }
                        while let Ok(Some(_)) = sub.next().await {
                            if tx.send(()).is_err() {
                                return;
                            }
                        }
                        flag.store(false, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        });
    (rx, up)
}

/// Puts the terminal back however the UI ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            DisableBracketedPaste,
            LeaveAlternateScreen
        );
    }
}

/// Takes the terminal for a full-screen UI (given back when the guard
/// drops).
fn take_terminal() -> Result<(
    TerminalGuard,
    ratatui::Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>,
)> {
    enable_raw_mode().context("the terminal cannot be put in raw mode")?;
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    )?;
    let terminal =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    Ok((guard, terminal))
}

/// Runs the UI until the user quits. With no profile, onboarding comes
/// first; with no daemon answering, one is started in the background
/// (asking for the passphrase if the profile has one).
pub fn run(home: &Path) -> Result<()> {
    let rt = crate::cmd::runtime()?;
    let profile = node_core::store::Profile::new(home);
    if !profile.exists() {
        if !onboard_here(&rt, home)? {
            return Ok(());
        }
    } else if rt.block_on(Client::new(home).status()).is_err() {
        let pass = if node_core::store::Store::is_protected(&profile)? {
            Some(match std::env::var(crate::passphrase::ENV) {
                Ok(p) => zeroize::Zeroizing::new(p),
                Err(_) => zeroize::Zeroizing::new(
                    rpassword::prompt_password("passphrase (to start the daemon): ")
                        .context("reading the passphrase")?,
                ),
            })
        } else {
            None
        };
        eprintln!(
            "starting the daemon (its log: {})",
            launch::log_path(home).display()
        );
        launch::start_daemon(home, pass.as_ref().map(|p| p.as_str()))?;
    }
    let status = rt.block_on(Client::new(home).status())?;
    let (guard, mut terminal) = take_terminal()?;
    let mut app = App::new();
    app.status = Some(status);
    let (notices, subscribed) = watch_daemon(home);
    let notifier = notify::Notifier::new();
    let mut last = Instant::now() - SLOW_REFRESH;
    let mut last_calls = Instant::now() - CALLS_EVERY;
    while !app.quit {
        // Calls change by the moment (a ring must show at once).
        if last_calls.elapsed() >= CALLS_EVERY {
            if let Ok(calls) = rt.block_on(Client::new(home).call_status()) {
                app.set_calls(calls);
            }
            if app.moving
                && app.devices.is_empty()
                && let Ok(devices) = rt.block_on(Client::new(home).device_list())
            {
                app.devices = devices;
            }
            last_calls = Instant::now();
        }
        // Something changed (new messages, deliveries), or the slow round.
        let mut changed = false;
        while notices.try_recv().is_ok() {
            changed = true;
        }
        let every = if subscribed.load(std::sync::atomic::Ordering::SeqCst) {
            SLOW_REFRESH
        } else {
            REFRESH
        };
        if changed || last.elapsed() >= every {
            refresh(&rt, home, &mut app);
            last = Instant::now();
        }
        ring(&notifier, &mut app)?;
        terminal.draw(|f| ui::draw(f, &app))?;
        if !event::poll(KEY_WAIT)? {
            continue;
        }
        let effects = match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => app.on_key(k),
            Event::Paste(text) => {
                app.on_paste(&text);
                vec![]
            }
            _ => vec![],
        };
        if !effects.is_empty() {
            for e in effects {
                perform(&rt, home, &mut app, e);
            }
            refresh(&rt, home, &mut app);
            last = Instant::now();
        }
    }
    drop(terminal);
    drop(guard);
    if app.stop_daemon {
        // It may stop before its answer is written: wait for it to go.
        let _ = rt.block_on(Client::new(home).stop());
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            rt.block_on(Client::new(home).status()).is_err()
        });
        if gone {
            println!("the daemon stopped");
        } else {
            println!(
                "the daemon did not stop; see {}",
                launch::log_path(home).display()
            );
        }
    }
    Ok(())
}

/// Shows the notifications the last refresh found (on the desktop, else
/// with the terminal bell), and the last of them on the notice line.
fn ring(notifier: &notify::Notifier, app: &mut App) -> Result<()> {
    let mut bell = false;
    for (title, body) in std::mem::take(&mut app.notifications) {
        bell |= notifier.show(&title, &body);
        app.notice = Some((body, false));
    }
    if bell {
        use std::io::Write;
        let mut out = std::io::stdout();
        out.write_all(b"\x07")?;
        out.flush()?;
    }
    Ok(())
}

/// First run in `home`: onboarding, then the daemon started with the
/// passphrase chosen. False if the user left before the end.
fn onboard_here(rt: &tokio::runtime::Runtime, home: &Path) -> Result<bool> {
    let (guard, mut terminal) = take_terminal()?;
    let mut o = onboard::Onboarding::new();
    let mut made = false;
    while !o.done && !o.quit {
        terminal.draw(|f| onboard::draw(f, &o))?;
        let effect = match event::read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => o.on_key(k),
            Event::Paste(text) => {
                o.on_paste(&text);
                None
            }
            _ => None,
        };
        if effect == Some(onboard::Effect::Create) {
            o.busy = true;
            terminal.draw(|f| onboard::draw(f, &o))?;
            o.busy = false;
            let pass = node_core::store::Passphrase::new(o.passphrase().to_owned());
            let created = rt.block_on(async {
                let (node, code) = node_core::node::Node::create(
                    node_core::store::Profile::new(home),
                    &o.name,
                    Some(&pass),
                    true,
                    crate::now_ms(),
                )
                .await?;
                node.close().await;
                anyhow::Ok(code)
            });
            match created {
                Ok(Some(code)) => {
                    let words = zeroize::Zeroizing::new(code.to_words());
                    let groups: Vec<String> = words
                        .split(['-', ' '])
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect();
                    let pick: [u8; 1] = node_core::crypto::random_bytes();
                    let ask = usize::from(pick[0]) % groups.len().max(1);
                    o.made(groups, ask);
                    made = true;
                }
                Ok(None) => o.failed("no recovery code was made".into()),
                Err(e) => o.failed(crate::one_line(&e)),
            }
        }
    }
    if o.done {
        o.busy = true;
        terminal.draw(|f| onboard::draw(f, &o))?;
        let started = launch::start_daemon(home, Some(o.passphrase()));
        drop(terminal);
        drop(guard);
        started?;
        return Ok(true);
    }
    drop(terminal);
    drop(guard);
    if made {
        println!(
            "The profile is made in {}; run kith again to start it.",
            home.display()
        );
    }
    Ok(false)
}

/// Asks the daemon for everything the current screen shows.
fn refresh(rt: &tokio::runtime::Runtime, home: &Path, app: &mut App) {
    let client = Client::new(home);
    let result: Result<()> = rt.block_on(async {
        app.status = Some(client.status().await?);
        app.set_contacts(client.contact_list().await?);
        app.set_rooms(client.room_list().await?);
        if let Some(c) = app.conversation(app.selected) {
            let in_room = app.current_room().is_some();
            let shown = match client.log(&c.id, Some(500)).await {
                Ok(messages) => {
                    app.messages = messages;
                    if in_room {
                        app.files = client.file_list(&c.id).await.unwrap_or_default();
                        app.set_members(client.room_members(&c.id).await.unwrap_or_default());
                    } else {
                        app.files = client.file_list(&c.id).await?;
                    }
                    true
                }
                // A room being joined has no log here yet: it shows empty.
                Err(_) if in_room => {
                    app.messages.clear();
                    app.files.clear();
                    app.members.clear();
                    false
                }
                Err(e) => return Err(e.into()),
            };
            // What is on screen has been read.
            if shown
                && c.unread > 0
                && app.screen == Screen::Chat
                && app.may_mark_read(&c.id, Instant::now())
            {
                client.mark_read(&c.id).await?;
            }
            if in_room && app.screen == Screen::Held {
                app.set_held(client.room_held(&c.id).await?);
            }
        }
        // The list (up to 1,000, each decoded) only where it is shown.
        if app.screen == Screen::Requests {
            app.set_requests(client.contact_requests().await?);
        } else if let Some(s) = &app.status {
            app.request_count = s.requests;
        }
        if app.screen == Screen::Devices || app.moving {
            app.devices = client.device_list().await?;
        }
        app.set_calls(client.call_status().await?);
        Ok(())
    });
    if let Err(e) = result {
        app.notice = Some((crate::one_line(&e), true));
    }
}

/// Carries out one effect; its outcome lands in `app`.
fn perform(rt: &tokio::runtime::Runtime, home: &Path, app: &mut App, effect: Effect) {
    let client = Client::new(home);
    let result: Result<Option<String>> = rt.block_on(async {
        Ok(match effect {
            Effect::Send { to, text } => {
                client.send(&to, &text).await?;
                None
            }
            Effect::AddContact(card) => {
                let added = client.contact_add(&card, None).await?;
                Some(format!(
                    "contact added ({}), unvalidated: compare safety numbers with Ctrl-S",
                    added.id
                ))
            }
            Effect::FetchCard => {
                let uri = client.card().await?.uri;
                let qr = qr_terminal(&uri)?;
                app.card = Some((uri, qr));
                None
            }
            Effect::FetchSafetyNumber(contact) => {
                let number = client.safety_number(&contact).await?;
                let qr = qr_terminal(&format!("KITH:SAFETY/{}", number.digits))?;
                app.safety = Some(Safety {
                    contact,
                    digits: number.digits,
                    grouped: number.grouped,
                    qr,
                });
                None
            }
            Effect::Verify { contact, digits } => {
                client.contact_verify(&contact, &digits).await?;
                Some("validated: the safety numbers match".into())
            }
            Effect::MarkRead(target) => {
                client.mark_read(&target).await?;
                None
            }
            Effect::FetchDevices | Effect::FetchRequests => None,
            Effect::Invite => {
                app.invite = Some(client.device_invite().await?.code);
                None
            }
            Effect::Revoke(device) => {
                client.device_revoke(&device, None).await?;
                Some("device revoked".into())
            }
            Effect::CallStart { to, video } => {
                let options = kith_client::CallOptions {
                    video,
                    ..Default::default()
                };
                client.call_start(&to, &options).await?;
                None
            }
            Effect::CallAnswer {
                call,
                video,
                anyway,
            } => {
                let options = kith_client::CallOptions {
                    video,
                    anyway,
                    ..Default::default()
                };
                client.call_answer(Some(&call), &options).await?;
                None
            }
            Effect::CallDecline(call) => {
                client.call_decline(Some(&call)).await?;
                Some("call declined".into())
            }
            Effect::CallHangup(call) => {
                client.call_hangup(Some(&call)).await?;
                Some("call ended".into())
            }
            Effect::CallMute { call, on } => {
                client.call_mute(Some(&call), on).await?;
                None
            }
            Effect::AnswerRequest { id, answer } => {
                let done = client.contact_answer(&id, answer).await?;
                Some(match answer {
                    "accept" => format!(
                        "{} is a contact now (unvalidated: compare safety numbers with Ctrl-S)",
                        done.id.short(12)
                    ),
                    "block" => format!("{} is blocked on all your devices", done.id.short(12)),
                    _ => format!("request from {} declined", done.id.short(12)),
                })
            }
            Effect::RoomCreate { name, public } => {
                client.room_create(&name, public).await?;
                Some(format!(
                    "room {} made; you are its admin: Ctrl-T for members, then i to invite",
                    crate::display::terminal_safe(&name)
                ))
            }
            Effect::RoomJoin(uri) => {
                // A short wait (the UI is held meanwhile); after it, the
                // daemon goes on trying and says so.
                client.room_join(&uri, 3).await?;
                Some("joined".into())
            }
            Effect::RoomInvite { room, contact } => {
                client.room_invite(&room, &contact).await?;
                Some("invited: their devices fetch the room and join".into())
            }
            Effect::RoomLink(room) => {
                // A room whose link cannot be made (not a member yet)
                // shows none.
                app.room_link = client.room_link(&room).await.ok().map(|u| u.uri);
                None
            }
            Effect::RoomRole {
                room,
                account,
                role,
            } => {
                client.room_role(&room, &account, role).await?;
                Some(format!("now {role}"))
            }
            Effect::RoomKick { room, account, ban } => {
                client.room_kick(&room, &account, ban).await?;
                Some(if ban { "banned" } else { "removed" }.into())
            }
            Effect::RoomLeave(room) => {
                client.room_leave(&room).await?;
                Some("you left the room (on all your devices)".into())
            }
            Effect::RoomConfirm { room, event } => {
                client.room_confirm(&room, &event).await?;
                Some("released: it is shown in the room now".into())
            }
            Effect::FileSend { to, path } => {
                client.file_send(&to, &path).await?;
                Some("offered: the content follows in the background (Ctrl-E shows it)".into())
            }
            Effect::FileFetch(id) => {
                client.file_fetch(&id).await?;
                Some("fetching".into())
            }
            Effect::FileSave { id, dest } => {
                let saved = client.file_save(&id, &dest).await?;
                Some(format!(
                    "saved to {}",
                    crate::display::terminal_safe(&saved.saved)
                ))
            }
            Effect::Search { target, text } => {
                app.found = Some(client.search(&target, &text).await?);
                None
            }
            Effect::Mute { target, on } => {
                client.mute(&target, on).await?;
                Some(
                    if on {
                        "muted on all your devices: messages arrive without a notification"
                    } else {
                        "notifications on again"
                    }
                    .into(),
                )
            }
            Effect::CallMove { call, device } => {
                client.call_move(&device, Some(&call)).await?;
                Some("the call moved to your other device".into())
            }
        })
    });
    match result {
        Ok(Some(note)) => app.notice = Some((note, false)),
        Ok(None) => {}
        Err(e) => {
            app.notice = Some((crate::one_line(&e), true));
            if app.screen == Screen::Verify || app.screen == Screen::MyCard {
                app.screen = Screen::Chat;
            }
        }
    }
}
