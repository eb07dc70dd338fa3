//! One module per subcommand.

pub mod bridge;
pub mod call;
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
pub mod shell;
pub mod status;

/// A current-thread runtime for the short-lived commands.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The daemon's typed answer: printed as JSON for `--json` (then
/// `None`), else given back for a human rendering.
pub(crate) fn json_or<T: serde::Serialize>(answer: T, json: bool) -> anyhow::Result<Option<T>> {
    if json {
        println!("{}", serde_json::to_string(&answer)?);
        return Ok(None);
    }
    Ok(Some(answer))
}
