//! Every route of `kith-mailboxd`, in one place.
//!
//! For now only the shared ones: `GET /healthz` and `GET /metrics`. The
//! mailbox API (`PUT` a sealed deposit, `GET`/`DELETE` by the key holder)
//! comes with its own issue, with its domain logic kept free of axum types.

use axum::Router;
use service_kit::{Health, Metrics};

/// The full router of the server.
pub fn router(metrics: Metrics, health: Health) -> Router {
    service_kit::base_router(Router::new(), metrics, health)
}
