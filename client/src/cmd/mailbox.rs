//! `kith mailbox`: opt in to (or out of) a mailbox server that keeps sealed
//! deposits for this account while all its devices are away.

use crate::rpc::{self, Request};
use anyhow::Result;
use std::path::Path;

/// `kith mailbox` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Use the mailbox server at URL (`http(s)://HOST[:PORT]`); your
    /// devices and contacts learn it.
    Use {
        /// The server.
        url: String,
    },
    /// Stop using the mailbox: it is removed from its server and contacts
    /// stop depositing.
    Off,
    /// Show the mailbox in use and which contacts offer theirs.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith mailbox`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    match args {
        Args::Use { url } => {
            let v = rt.block_on(rpc::call(home, &Request::MailboxUse { url }))?;
            println!(
                "using the mailbox at {} (mailbox {}); your devices and contacts follow",
                v["url"].as_str().unwrap_or_default(),
                v["mailbox"].as_str().unwrap_or_default()
            );
        }
        Args::Off => {
            let v = rt.block_on(rpc::call(home, &Request::MailboxOff))?;
            match (v["url"].as_str(), v["removed"].as_bool()) {
                (None, _) => println!("no mailbox was in use"),
                (Some(url), Some(true)) => println!("stopped using {url}; the mailbox is removed"),
                (Some(url), _) => println!(
                    "stopped using {url}; it could not be reached, so what it holds expires there"
                ),
            }
        }
        Args::Status { json } => {
            let v = rt.block_on(rpc::call(home, &Request::MailboxStatus))?;
            if json {
                println!("{v}");
            } else {
                match v["url"].as_str() {
                    Some(url) => println!("mailbox: {url}"),
                    None => println!("mailbox: off"),
                }
                for c in v["contacts"].as_array().into_iter().flatten() {
                    println!(
                        "contact {} deposits at {}",
                        c["contact"].as_str().unwrap_or_default(),
                        c["url"].as_str().unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

/// `kith relay` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RelayArgs {
    /// Be reachable through the relay at URL (`http(s)://HOST[:PORT]`, a
    /// self-hosted iroh-relay); your devices and contacts learn it.
    Use {
        /// The relay.
        url: String,
    },
    /// Stop using a relay.
    Off,
}

/// Runs `kith relay`.
pub fn run_relay(home: &Path, args: RelayArgs) -> Result<()> {
    let url = match args {
        RelayArgs::Use { url } => Some(url),
        RelayArgs::Off => None,
    };
    let v = super::runtime()?.block_on(rpc::call(home, &Request::Relay { url }))?;
    match v["relay"].as_str() {
        Some(url) => println!("using the relay at {url}; your devices and contacts follow"),
        None => println!("no relay in use"),
    }
    Ok(())
}
