//! `kith log`: a conversation in display order.

use crate::display::terminal_safe;
use crate::rpc::{self, Request};
use anyhow::{Context, Result};
use node_core::node::messages::MessageInfo;
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
    let req = Request::Log {
        target: args.target,
        limit: args.limit,
    };
    let v = super::runtime()?.block_on(rpc::call(home, &req))?;
    if args.json {
        println!("{v}");
        return Ok(());
    }
    let messages: Vec<MessageInfo> =
        serde_json::from_value(v).context("the daemon's log is not valid")?;
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
