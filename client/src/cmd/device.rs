//! `kith device`: invite a new device, list this account's devices,
//! revoke one.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::{Context, Result};
use std::path::Path;

/// `kith device` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Print a one-time code (valid 10 minutes) for `kith init --join`.
    Invite {
        /// Print JSON (`{"code"}`).
        #[arg(long)]
        json: bool,
    },
    /// List this account's devices.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a lost or stolen device, everywhere.
    Revoke {
        /// Device id, unique prefix or name.
        device: String,
        /// Sign with the account's recovery code (asked on the terminal, or
        /// from KITH_RECOVERY_CODE): it beats a thief's concurrent
        /// revocations.
        #[arg(long)]
        recovery: bool,
    },
}

/// Runs `kith device …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match args {
        Args::Invite { json } => {
            if let Some(invite) = super::json_or(rt.block_on(client.device_invite())?, json)? {
                println!("{}", invite.code);
            }
        }
        Args::List { json } => {
            let Some(devices) = super::json_or(rt.block_on(client.device_list())?, json)? else {
                return Ok(());
            };
            for d in devices {
                let current = if d.current { "  (this device)" } else { "" };
                println!(
                    "{}  {}  [{}]{current}",
                    d.id.short(12),
                    terminal_safe(&d.name),
                    d.state
                );
            }
        }
        Args::Revoke { device, recovery } => {
            let recovery = if recovery {
                Some(recovery_code()?)
            } else {
                None
            };
            let revoked = rt.block_on(
                client.device_revoke(&device, recovery.as_ref().map(|c| c.to_string())),
            )?;
            println!("revoked {}", revoked.id);
        }
    }
    Ok(())
}

/// The recovery code: `KITH_RECOVERY_CODE`, else asked on the terminal.
fn recovery_code() -> Result<zeroize::Zeroizing<String>> {
    use std::io::IsTerminal;
    if let Ok(c) = std::env::var("KITH_RECOVERY_CODE") {
        return Ok(zeroize::Zeroizing::new(c));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no recovery code: set KITH_RECOVERY_CODE or run in a terminal");
    }
    let c = rpassword::prompt_password("recovery code: ").context("reading the recovery code")?;
    Ok(zeroize::Zeroizing::new(c))
}
