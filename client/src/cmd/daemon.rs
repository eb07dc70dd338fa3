//! `kith daemon`: runs the node in the foreground.

use crate::daemon::Daemon;
use crate::passphrase;
use anyhow::{Context, Result};
use node_core::node::Node;
use node_core::store::{Profile, Store};
use std::net::SocketAddr;
use std::path::Path;

/// `kith daemon` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on for device links (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Benchmark mode: answer every received message automatically.
    #[arg(long, hide = true)]
    pub bench_echo: bool,
}

/// Runs `kith daemon` until SIGINT/SIGTERM.
pub fn run(home: &Path, args: Args) -> Result<()> {
    init_tracing();
    let profile = Profile::new(home);
    profile.check()?;
    let pass = if Store::is_protected(&profile)? {
        Some(passphrase::unlock()?)
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let node = Node::open(profile, pass.as_ref())
            .await
            .context("opening the profile")?;
        drop(pass);
        let daemon = Daemon::start(node, args.listen, args.bench_echo).await?;
        Daemon::serve(daemon.clone()).await?;
        daemon.close().await;
        Ok(())
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
