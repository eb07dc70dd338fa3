//! `kith card`: this account's contact card, as a URI or QR code.

use crate::rpc::Client;
use anyhow::{Context, Result};
use node_core::identity::card::{qr_png, qr_terminal};
use std::path::{Path, PathBuf};

/// `kith card` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the card as a QR code in the terminal.
    #[arg(long)]
    pub qr: bool,
    /// Write the card as a QR code PNG to FILE.
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,
    /// Print JSON (`{"uri"}`).
    #[arg(long, conflicts_with = "qr")]
    pub json: bool,
}

/// Runs `kith card`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let card = super::runtime()?.block_on(Client::new(home).card())?;
    if let Some(path) = &args.qr_png {
        let png = qr_png(&card.uri, 8)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.qr {
        print!("{}", qr_terminal(&card.uri)?);
        println!();
    }
    if args.json {
        super::json_or(card, true)?;
    } else if !args.qr {
        println!("{}", card.uri);
    }
    Ok(())
}
