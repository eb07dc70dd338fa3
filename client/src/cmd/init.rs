//! `kith init`: a new device and a new account.

use crate::passphrase;
use anyhow::{Context, Result};
use node_core::node::Node;
use node_core::store::Profile;
use std::path::Path;

/// `kith init` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Display name for the account and this device.
    #[arg(long)]
    pub name: String,
    /// Make a profile without passphrase (for tests and demos: unprotected).
    #[arg(long)]
    pub no_passphrase: bool,
    /// Also make an offline recovery key, printed once; keep it safe.
    #[arg(long)]
    pub recovery_key: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith init`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let profile = Profile::new(home);
    if profile.exists() {
        anyhow::bail!("a kith profile already exists at {}", home.display());
    }
    let pass = if args.no_passphrase {
        None
    } else {
        Some(passphrase::choose()?)
    };
    let (node, recovery) = super::runtime()?.block_on(async {
        let made = Node::create(
            profile,
            &args.name,
            pass.as_ref(),
            args.recovery_key,
            crate::now_ms(),
        )
        .await;
        let (node, recovery) = made.context("creating the profile")?;
        let out = (node.account(), node.device());
        node.close().await;
        anyhow::Ok((out, recovery))
    })?;
    let (account, device) = node;
    if args.json {
        let mut v =
            serde_json::json!({ "account": account.to_string(), "device": device.to_string() });
        if let Some(r) = &recovery {
            v["recovery_code"] = r.to_words().into();
        }
        println!("{v}");
    } else {
        println!("account {account}");
        println!("device {device}");
        if let Some(r) = recovery {
            println!(
                "recovery code (shown once, write it down): {}",
                r.to_words()
            );
        }
        if args.no_passphrase {
            eprintln!(
                "warning: this profile has no passphrase; anyone who can read its files can read it"
            );
        }
    }
    Ok(())
}
