//! One module per subcommand.

pub mod card;
pub mod contact;
pub mod daemon;
pub mod delete;
pub mod device;
pub mod file;
pub mod init;
pub mod log;
pub mod mailbox;
pub mod name;
pub mod push;
pub mod room;
pub mod send;
pub mod status;

/// A current-thread runtime for the short-lived commands.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
