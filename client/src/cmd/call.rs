//! `kith call`: ring a contact's devices, answer, decline, hang up, and
//! see the calls on this device. The call itself runs in the daemon.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::Result;
use std::path::Path;

/// `kith call` arguments: a TARGET to ring, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// The contact to call (account id, unique prefix, alias or name).
    pub target: Option<String>,
    /// Send video too.
    #[arg(long)]
    pub video: bool,
    /// What to do with a call on this device.
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// `kith call …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Answer a ringing call on this device.
    Answer {
        /// The call (a unique prefix of its id); none: the one ringing.
        call: Option<String>,
        /// Send video too.
        #[arg(long)]
        video: bool,
    },
    /// Decline a ringing call (every own device stops ringing).
    Decline {
        /// The call; none: the one ringing.
        call: Option<String>,
    },
    /// Leave the call, or stop ringing the other side.
    Hangup {
        /// The call; none: the one going on.
        call: Option<String>,
    },
    /// Calls on this device.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith call …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match (args.action, args.target) {
        (Some(Action::Answer { call, video }), _) => {
            rt.block_on(client.call_answer(call.as_deref(), video))?;
        }
        (Some(Action::Decline { call }), _) => {
            rt.block_on(client.call_decline(call.as_deref()))?;
        }
        (Some(Action::Hangup { call }), _) => {
            rt.block_on(client.call_hangup(call.as_deref()))?;
        }
        (Some(Action::Status { json }), _) => {
            let Some(calls) = super::json_or(rt.block_on(client.call_status())?, json)? else {
                return Ok(());
            };
            if calls.is_empty() {
                println!("no calls");
            }
            for c in calls {
                let with = c.device.map(|d| format!(" with {}", &d[..d.len().min(12)]));
                println!(
                    "{}  {}  {}{}{}",
                    &c.id[..12],
                    &c.target[..c.target.len().min(12)],
                    c.state,
                    with.unwrap_or_default(),
                    c.ended
                        .map(|e| format!(" ({})", terminal_safe(&e)))
                        .unwrap_or_default()
                );
            }
        }
        (None, Some(target)) => {
            println!(
                "{}",
                rt.block_on(client.call_start(&target, args.video))?.id
            );
        }
        (None, None) => {
            anyhow::bail!("say whom to call: `kith call TARGET` (or see `kith call --help`)")
        }
    }
    Ok(())
}
