//! `kith status`: the daemon's state.

use crate::rpc::Client;
use anyhow::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// `kith status` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wait up to SECS for the daemon to answer.
    #[arg(long, value_name = "SECS", value_parser = parse_wait)]
    pub wait: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith status`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.wait.unwrap_or(0.0));
    let client = Client::new(home);
    let status = super::runtime()?.block_on(async {
        loop {
            match client.status().await {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })?;
    let Some(s) = super::json_or(status, args.json)? else {
        return Ok(());
    };
    println!("account    {}", s.account);
    println!("device     {} ({})", s.device, s.name);
    println!(
        "listening  {}",
        if s.listening.is_empty() {
            "-".into()
        } else {
            s.listening.join(", ")
        }
    );
    println!("peers      {}", s.peers.len());
    println!("outbox     {}", s.outbox);
    println!(
        "protected  {}",
        if s.protected {
            "yes (passphrase)"
        } else {
            "NO"
        }
    );
    // A warning may quote a server (a relay's refusal): cleaned like
    // peer text.
    for w in s.warnings {
        println!("warning: {}", crate::display::terminal_safe(&w));
    }
    Ok(())
}

/// A number of seconds: finite, from 0 to one day.
fn parse_wait(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between 0 and 86400 seconds: {s}"))
    }
}
