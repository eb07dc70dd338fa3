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

/// The daemon's answer `v`: printed as it is for `--json` (then `None`),
/// else read as `T` for a human rendering ("the daemon's {what} is not
/// valid" if it cannot be).
pub(crate) fn json_or<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    json: bool,
    what: &str,
) -> anyhow::Result<Option<T>> {
    if json {
        println!("{v}");
        return Ok(None);
    }
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| anyhow::Error::new(e).context(format!("the daemon's {what} is not valid")))
}
