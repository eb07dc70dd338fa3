//! `kith bridge`: this device logged in to another network for the
//! account, so every own device reaches that network's people through it
//! (see `docs/bridges.md`). Everything through a bridge is insecure.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `kith bridge` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Log this device in to another network for the account. The password
    /// comes from the terminal or KITH_BRIDGE_PASSWORD and stays in this
    /// device's store only.
    Add {
        /// The network: `xmpp`.
        network: String,
        /// The account there (XMPP: user@domain).
        account: String,
        /// HOST:PORT of the server (default: the account's domain, port 5222).
        #[arg(long)]
        server: Option<String>,
        /// A PEM file of certificate authorities to trust for that server.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Print JSON (`{"id"}`).
        #[arg(long)]
        json: bool,
    },
    /// The account's bridges (from any own device).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a bridge (its conversations stay, read only).
    Remove {
        /// Bridge id or unique prefix.
        id: String,
    },
    /// Open a conversation with an address through a bridge, or join a
    /// group chat there with --group; prints its id (a TARGET).
    Chat {
        /// Bridge id or unique prefix.
        bridge: String,
        /// The address there (XMPP: user@domain, or room@service).
        address: String,
        /// A group chat.
        #[arg(long)]
        group: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith bridge …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match args {
        Args::Add {
            network,
            account,
            server,
            ca,
            json,
        } => {
            let ca_pem = match ca {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                ),
                None => None,
            };
            let password = match std::env::var("KITH_BRIDGE_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => rpassword::prompt_password(format!("password of {account}: "))
                    .context("reading the password")?,
            };
            let added =
                rt.block_on(client.bridge_add(&network, &account, server, ca_pem, password))?;
            if let Some(added) = super::json_or(added, json)? {
                println!("{}", added.id);
            }
        }
        Args::List { json } => {
            let Some(list) = super::json_or(rt.block_on(client.bridge_list())?, json)? else {
                return Ok(());
            };
            if list.is_empty() {
                println!("no bridges");
            }
            for b in list {
                println!(
                    "{} {} {} on {}: {}",
                    b.id,
                    b.network,
                    terminal_safe(&b.account),
                    terminal_safe(&b.device_name),
                    terminal_safe(&b.status)
                );
            }
        }
        Args::Remove { id } => {
            rt.block_on(client.bridge_remove(&id))?;
        }
        Args::Chat {
            bridge,
            address,
            group,
            json,
        } => {
            let chat = rt.block_on(client.bridge_chat(&bridge, &address, group))?;
            if let Some(chat) = super::json_or(chat, json)? {
                println!("{}", chat.id);
                eprintln!("insecure: the other network reads this conversation");
            }
        }
    }
    Ok(())
}
