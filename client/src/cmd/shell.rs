//! `kith completions` and `kith man`: shell completion scripts and manual
//! pages, generated from the command line's own definition (so they
//! never drift from it). Neither needs a profile or a daemon.

use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `kith completions` arguments.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `kith man` arguments.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (`kith.1`, `kith-contact.1`,
    /// `kith-contact-add.1`, …) into DIR instead of printing `kith.1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "kith", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("writing the script")
}

/// Prints `kith.1`, or writes every command's page into `--out`.
pub fn man(args: &ManArgs) -> Result<()> {
    let cmd = crate::Cli::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("making the page")?;
            std::io::stdout()
                .lock()
                .write_all(&page)
                .context("writing the page")
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
            let mut cmd = cmd;
            cmd.build();
            write_pages(&cmd, "kith", dir)
        }
    }
}

/// Writes `name.1` for `cmd`, then its subcommands' pages.
fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().display_name(name))
        .render(&mut page)
        .context("making a page")?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
