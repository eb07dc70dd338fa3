//! `kith contact`: add and list contacts.

use crate::rpc::{self, Request};
use anyhow::{Context, Result};
use node_core::node::contacts::ContactInfo;
use std::path::Path;

/// `kith contact` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Add a contact from its `kith:` card.
    Add {
        /// The card URI.
        card: String,
        /// A local name for the contact.
        #[arg(long)]
        alias: Option<String>,
    },
    /// List contacts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith contact …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    match args {
        Args::Add { card, alias } => {
            let v = rt.block_on(rpc::call(home, &Request::ContactAdd { card, alias }))?;
            println!(
                "{}",
                v["id"].as_str().context("the daemon's answer has no id")?
            );
        }
        Args::List { json } => {
            let v = rt.block_on(rpc::call(home, &Request::ContactList))?;
            if json {
                println!("{v}");
                return Ok(());
            }
            let contacts: Vec<ContactInfo> =
                serde_json::from_value(v).context("the daemon's list is not valid")?;
            for c in contacts {
                let alias = c.alias.map(|a| format!(" ({a})")).unwrap_or_default();
                println!(
                    "{}  {}{}  [{}]  {} device(s)",
                    c.id.short(12),
                    c.name,
                    alias,
                    c.trust,
                    c.devices.len()
                );
            }
        }
    }
    Ok(())
}
