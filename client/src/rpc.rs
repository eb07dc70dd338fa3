//! The daemon's socket protocol as the rest of this crate sees it: the
//! typed library (`kith-client`) re-exported, the `anyhow` shims the
//! commands use, and the daemon's side of errors (which [`ErrorKind`] a
//! failure is).

pub use kith_client::answers::*;
pub use kith_client::wire::{read_request, write_line};
pub use kith_client::{
    Client, ClientError, ErrorKind, MAX_ANSWER, MAX_LINE, Notice, Request, Response, Subscription,
};

use anyhow::Result;
use std::path::Path;

/// Sends one request to the daemon of the profile at `home`; the answer
/// as JSON.
pub async fn call(home: &Path, req: &Request) -> Result<serde_json::Value> {
    Ok(Client::new(home).call(req).await?)
}

/// Subscribes to the notices of the daemon of the profile at `home`.
pub async fn subscribe(home: &Path) -> Result<Subscription> {
    Ok(Client::new(home).subscribe().await?)
}

/// The [`ClientError`] an error from a [`Client`] carries, wherever it
/// sits in the chain.
pub fn client_error(e: &anyhow::Error) -> Option<&ClientError> {
    e.chain().find_map(|c| c.downcast_ref::<ClientError>())
}

/// The answer to a request that failed with `e`.
pub fn failed(e: &anyhow::Error) -> Response {
    Response::Failed {
        kind: error_kind(e),
        message: crate::one_line(e),
    }
}

/// The kind of a daemon-side failure, from the first cause that says.
fn error_kind(e: &anyhow::Error) -> ErrorKind {
    use node_core::node::NodeError;
    use node_core::store::StoreError;
    if let Some(c) = client_error(e) {
        return c.kind;
    }
    for cause in e.chain() {
        if let Some(n) = cause.downcast_ref::<NodeError>() {
            return match n {
                NodeError::Store(_) | NodeError::Damaged(_) => ErrorKind::Storage,
                NodeError::Rejected(_) | NodeError::Revoked => ErrorKind::Refused,
                NodeError::UnknownLog(_) => ErrorKind::NotFound,
                NodeError::BadName(_) | NodeError::Card(_) | NodeError::Invalid(_) => {
                    ErrorKind::Invalid
                }
                _ => ErrorKind::Other,
            };
        }
        if cause.downcast_ref::<StoreError>().is_some() {
            return ErrorKind::Storage;
        }
    }
    ErrorKind::Other
}
