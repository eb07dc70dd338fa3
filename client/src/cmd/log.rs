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
    for m in messages {
        let mark = if m.delivered { "✓" } else { "…" };
        println!(
            "{} {} {} {}",
            &m.time[..19],
            m.author.short(8),
            mark,
            terminal_safe(&m.text)
        );
    }
    Ok(())
}
