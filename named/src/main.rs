//! `kith-named`: the kith nameserver for one domain.
//!
//! Binds `name@domain` handles to contact cards signed by their account:
//! a record is accepted only with a signature of one of the account's
//! active devices and the account log proving it (`service.rs`).

use std::process::ExitCode;

use clap::Parser as _;

use kith_named::config::{self, Cli, Settings};
use kith_named::server;

/// Exit code for bad flags, environment or config file (as clap uses).
const EXIT_USAGE: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    service_kit::init_tracing();
    let settings = match Settings::load(cli) {
        Ok(settings) => settings,
        Err(err) => return fail(&err, EXIT_USAGE),
    };
    let shutdown = match service_kit::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            return fail(
                &anyhow::Error::new(err).context("installing signal handlers"),
                1,
            );
        }
    };
    match server::run(settings, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err, 1),
    }
}

/// Prints the error chain on one line and picks the exit code.
fn fail(err: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("{}: error: {err:#}", config::BINARY);
    ExitCode::from(code)
}
