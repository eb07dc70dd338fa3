//! `kith delete`: forget messages (or a whole conversation) on all own
//! devices.

use crate::rpc::Client;
use anyhow::Result;
use std::path::Path;

/// `kith delete` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Contact (id, prefix, alias or name).
    pub target: String,
    /// A message id (or unique prefix) to delete; repeat for more. Without
    /// it, the whole conversation is deleted.
    #[arg(long = "message")]
    pub messages: Vec<String>,
}

/// Runs `kith delete`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let answer =
        super::runtime()?.block_on(Client::new(home).delete(&args.target, args.messages))?;
    println!(
        "deleted {} message(s) on this device; own devices follow",
        answer.deleted
    );
    Ok(())
}
