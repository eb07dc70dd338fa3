//! `kith mailbox`: opt in to (or out of) a mailbox server that keeps sealed
//! deposits for this account while all its devices are away.

use crate::rpc::Client;
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
    let client = Client::new(home);
    match args {
        Args::Use { url } => {
            let set = rt.block_on(client.mailbox_use(&url))?;
            println!(
                "using the mailbox at {} (mailbox {}); your devices and contacts follow",
                set.url,
                set.mailbox.unwrap_or_default()
            );
        }
        Args::Off => {
            let off = rt.block_on(client.mailbox_off())?;
            match (off.url, off.removed) {
                (None, _) => println!("no mailbox was in use"),
                (Some(url), true) => println!("stopped using {url}; the mailbox is removed"),
                (Some(url), false) => println!(
                    "stopped using {url}; it could not be reached, so what it holds expires there"
                ),
            }
        }
        Args::Status { json } => {
            let Some(status) = super::json_or(rt.block_on(client.mailbox_status())?, json)? else {
                return Ok(());
            };
            match status.url {
                Some(url) => println!("mailbox: {url}"),
                None => println!("mailbox: off"),
            }
            for c in status.contacts {
                println!("contact {} deposits at {}", c.contact, c.url);
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
    let set = super::runtime()?.block_on(Client::new(home).relay(url.as_deref()))?;
    match set.relay {
        Some(url) => println!("using the relay at {url}; your devices and contacts follow"),
        None => println!("no relay in use"),
    }
    Ok(())
}
