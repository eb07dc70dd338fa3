//! `kith file`: offer files, list them, watch a transfer, save one out.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `kith file` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Offer a file in a conversation or room; returns once it is offered (the
    /// content moves in the background and never delays text).
    Send {
        /// Contact (id, prefix, alias or name) or room.
        target: String,
        /// The file.
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Files of a conversation or room and how much of each is here.
    List {
        /// Contact or room.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a transfer's progress until the file is complete.
    Wait {
        /// File id (or unique prefix).
        id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Print progress as JSON lines instead of a bar.
        #[arg(long)]
        json: bool,
    },
    /// Show, or set on all your devices, the size up to which files are
    /// fetched automatically (larger ones when you `wait` for them).
    SyncLimit {
        /// The new limit in bytes.
        bytes: Option<u64>,
    },
    /// Write a complete file's content to DEST (which must not exist).
    Save {
        /// File id (or unique prefix).
        id: String,
        /// Where to write it.
        dest: PathBuf,
    },
}

fn absolute(p: &Path) -> Result<String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .context("finding the current folder")?
            .join(p)
    };
    abs.to_str()
        .map(str::to_owned)
        .context("the path is not valid UTF-8")
}

/// Runs `kith file …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match args {
        Args::Send { target, path, json } => {
            if !path.exists() {
                anyhow::bail!("{} does not exist", path.display());
            }
            let path = absolute(&path)?;
            let offered = rt.block_on(client.file_send(&target, &path))?;
            if let Some(offered) = super::json_or(offered, json)? {
                println!("{}", offered.id);
            }
        }
        Args::List { target, json } => {
            let Some(files) = super::json_or(rt.block_on(client.file_list(&target))?, json)? else {
                return Ok(());
            };
            for f in files {
                println!(
                    "{}  {}  {} bytes  {} ({}/{} chunks)",
                    f.id.short(12),
                    terminal_safe(&f.name),
                    f.size,
                    f.state,
                    f.have,
                    f.chunks
                );
            }
        }
        Args::SyncLimit { bytes } => {
            let limit = rt.block_on(client.file_sync_limit(bytes))?;
            println!(
                "files up to {} bytes are fetched automatically",
                limit.bytes
            );
        }
        Args::Wait { id, timeout, json } => {
            // Waiting for a file asks for it, whatever its size.
            rt.block_on(client.file_fetch(&id))?;
            let bar = (!json).then(|| {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} chunks ({percent}%)",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar
            });
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let f = rt.block_on(client.file_status(&id))?;
                match &bar {
                    Some(bar) => {
                        bar.set_length(u64::from(f.chunks));
                        bar.set_position(u64::from(f.have));
                        match &f.error {
                            Some(e) => bar.set_message(format!(
                                "{} (waiting: {})",
                                terminal_safe(&f.name),
                                terminal_safe(e)
                            )),
                            None => bar.set_message(terminal_safe(&f.name).into_owned()),
                        }
                    }
                    None => println!(
                        "{}",
                        serde_json::json!({"id": f.id, "state": f.state, "have": f.have, "chunks": f.chunks, "error": f.error})
                    ),
                }
                if f.state == "complete" {
                    if let Some(bar) = bar {
                        bar.finish();
                    }
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    anyhow::bail!("{} is not complete after {timeout} s", f.name);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        Args::Save { id, dest } => {
            let dest = absolute(&dest)?;
            rt.block_on(client.file_save(&id, &dest))?;
            println!("saved {dest}");
        }
    }
    Ok(())
}
