//! The terminal UI (`kith` in a terminal, or `kith tui`): a client of the
//! daemon like the CLI, over the same socket. [`app`] holds the state and
//! turns keys into requests, [`ui`] draws it, this module runs the loop:
//! it refreshes when the daemon's subscription says something changed
//! (and every few seconds), or every 500 ms if no subscription is up.

pub mod app;
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

/// Runs the UI until the user quits.
pub fn run(home: &Path) -> Result<()> {
    let rt = crate::cmd::runtime()?;
    // Fail before touching the terminal if no daemon answers.
    let status = rt.block_on(Client::new(home).status())?;
    enable_raw_mode().context("the terminal cannot be put in raw mode")?;
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    )?;
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    let mut app = App::new();
    app.status = Some(status);
    let (notices, subscribed) = watch_daemon(home);
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
    Ok(())
}

/// Asks the daemon for everything the current screen shows.
fn refresh(rt: &tokio::runtime::Runtime, home: &Path, app: &mut App) {
    let client = Client::new(home);
    let result: Result<()> = rt.block_on(async {
        app.status = Some(client.status().await?);
        app.set_contacts(client.contact_list().await?);
        if let Some(c) = app.current() {
            let target = c.id.to_string();
            let unread = c.unread;
            app.messages = client.log(&target, Some(500)).await?;
            app.files = client.file_list(&target).await?;
            // What is on screen has been read.
            if unread > 0 && app.screen == Screen::Chat {
                client.mark_read(&target).await?;
            }
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
            Effect::FetchDevices => None,
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
