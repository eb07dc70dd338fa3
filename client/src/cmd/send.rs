//! `kith send`: queue a message; never waits for the peer.

use crate::rpc::{self, Request};
use anyhow::{Context, Result};
use std::path::Path;

/// `kith send` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Contact (account id, unique prefix, alias or name) or room (id,
    /// unique prefix or name).
    pub target: String,
    /// The message.
    pub text: String,
}

/// Runs `kith send`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let req = Request::Send {
        target: args.target,
        text: args.text,
    };
    let v = super::runtime()?.block_on(rpc::call(home, &req))?;
    println!(
        "{}",
        v["id"].as_str().context("the daemon's answer has no id")?
    );
    Ok(())
}
