//! `kith name`: publish this account under a `name@domain` handle, release
//! it, or look a handle up.

use crate::display::terminal_safe;
use crate::names::{Finder, submit};
use crate::rpc::Client;
use anyhow::{Context, Result};
use node_core::names::Handle;
use std::path::Path;

/// `kith name` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Bind NAME@DOMAIN to this account's contact card on the domain's
    /// nameserver (a record signed by this device, carrying the account log
    /// that proves it).
    Register {
        /// The handle, `name@domain`.
        handle: String,
        /// The nameserver, `https://HOST[:PORT]`.
        #[arg(long)]
        server: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give the handle up.
    Release {
        /// The handle.
        handle: String,
        /// The nameserver.
        #[arg(long)]
        server: String,
    },
    /// Find who a handle belongs to (checked, not added).
    Lookup {
        /// The handle.
        handle: String,
        /// Ask these nameservers instead of finding the domain's (repeatable).
        #[arg(long)]
        nameserver: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith name …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    match args {
        Args::Register {
            handle,
            server,
            json,
        } => {
            let handle = parse(&handle)?;
            let answer = rt.block_on(publish(home, &handle, &server, false))?;
            if json {
                println!("{answer}");
            } else {
                println!("{handle} now points at this account on {server}");
            }
        }
        Args::Release { handle, server } => {
            let handle = parse(&handle)?;
            rt.block_on(publish(home, &handle, &server, true))?;
            println!("released {handle} on {server}");
        }
        Args::Lookup {
            handle,
            nameserver,
            json,
        } => {
            let handle = parse(&handle)?;
            let found = rt.block_on(async {
                let finder = Finder::from_env()?;
                finder.find(&handle, &nameserver).await
            })?;
            report_silent(&found.silent);
            if json {
                let v = serde_json::json!({
                    "handle": found.handle.to_string(),
                    "account": found.account,
                    "card": found.card,
                    "nameservers": found.agreeing,
                });
                println!("{v}");
            } else {
                println!("{} is account {}", found.handle, found.account);
                println!("{}", terminal_safe(&found.card));
            }
        }
    }
    Ok(())
}

/// Parses a handle with a clear error.
pub fn parse(handle: &str) -> Result<Handle> {
    handle
        .parse()
        .with_context(|| format!("`{handle}` is not a usable handle"))
}

/// Warns about nameservers that had nothing to say.
pub fn report_silent(silent: &[(String, String)]) {
    for (server, why) in silent {
        eprintln!("warning: nameserver {server}: {why}");
    }
}

async fn publish(
    home: &Path,
    handle: &Handle,
    server: &str,
    release: bool,
) -> Result<serde_json::Value> {
    let record = Client::new(home)
        .name_record(&handle.to_string(), release)
        .await?;
    let finder = Finder::from_env()?;
    submit(&finder, server, &record.record).await
}
