//! `kith log`: a conversation in display order.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::Result;
use std::path::Path;

/// `kith log` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Contact (account id, unique prefix, alias or name) or room (id,
    /// unique prefix or name).
    pub target: String,
    /// Only the last N messages.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith log`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let messages = super::runtime()?.block_on(Client::new(home).log(&args.target, args.limit))?;
    let Some(messages) = super::json_or(messages, args.json)? else {
        return Ok(());
    };
    if messages.iter().any(|m| m.insecure) {
        println!("INSECURE — a bridged conversation: the other network reads it");
    }
    for m in messages {
        let mark = match m.state.as_deref() {
            Some("waiting") => "⧗",
            Some("failed") => "✗",
            _ if m.delivered => "✓",
            _ => "…",
        };
        let who = match &m.sender {
            Some(sender) => terminal_safe(sender).into_owned(),
            None => m.author.short(8),
        };
        println!(
            "{} {} {} {}",
            m.time.get(..19).unwrap_or(&m.time),
            who,
            mark,
            terminal_safe(&m.text)
        );
    }
    Ok(())
}

/// `kith search` arguments.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Contact or room, as for `kith log`.
    pub target: String,
    /// The text to look for (case-insensitive).
    pub text: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith search`: the messages of one conversation or room that hold
/// the text, oldest first.
pub fn search(home: &Path, args: SearchArgs) -> Result<()> {
    let found = super::runtime()?.block_on(Client::new(home).search(&args.target, &args.text))?;
    let Some(found) = super::json_or(found, args.json)? else {
        return Ok(());
    };
    if found.is_empty() {
        println!("no message holds that text");
    }
    for m in found {
        println!(
            "{} {} {} {}",
            &m.time[..19],
            m.author.short(8),
            m.id.short(12),
            terminal_safe(&m.text)
        );
    }
    Ok(())
}

/// `kith mute` arguments.
#[derive(Debug, clap::Args)]
pub struct MuteArgs {
    /// Contact or room, as for `kith log`.
    pub target: String,
    /// Notify again.
    #[arg(long)]
    pub off: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith mute`: no notifications for one conversation or room, on
/// every own device (the messages still arrive and count as unread).
pub fn mute(home: &Path, args: MuteArgs) -> Result<()> {
    let done = super::runtime()?.block_on(Client::new(home).mute(&args.target, !args.off))?;
    if super::json_or(done, args.json)?.is_some() {
        println!(
            "{}",
            if args.off {
                "notifications on again (on all your devices)"
            } else {
                "muted on all your devices: messages still arrive, without a notification"
            }
        );
    }
    Ok(())
}
