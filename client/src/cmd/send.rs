//! `kith send`: queue a message; never waits for the peer.

use crate::rpc::Client;
use anyhow::Result;
use std::path::Path;

/// `kith send` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Contact (account id, unique prefix, alias or name) or room (id,
    /// unique prefix or name).
    pub target: String,
    /// The message.
    pub text: String,
    /// Print JSON (`{"id"}`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith send`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let sent = super::runtime()?.block_on(Client::new(home).send(&args.target, &args.text))?;
    if let Some(sent) = super::json_or(sent, args.json)? {
        println!("{}", sent.id);
    }
    Ok(())
}
