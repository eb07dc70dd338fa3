//! Tracing set-up for a server binary.
//!
//! Log lines go to stderr; the level filter comes from `RUST_LOG` (e.g.
//! `RUST_LOG=debug` or `RUST_LOG=kith_mailboxd=debug,info`), default `info`.
//! Colours only when stderr is a terminal.
//!
//! Not here: deciding what is logged. Servers never log message contents or
//! keys, and log addresses, ids and push tokens only redacted.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Call once, first thing in `main`;
/// a second call is ignored.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Only fails if a subscriber is already installed, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
