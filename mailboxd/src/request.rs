//! What clients send to `kith-mailboxd`, decoded: the mailbox id in the
//! path, the JSON bodies of the token and delete routes, the paging
//! cursor and the `Kith-Ttl` header. Pure functions from bytes or text to
//! values (or the exact 4xx the client gets), called by the handlers in
//! `http.rs` and by the fuzz target `mailboxd_request` (`fuzz/`).
//!
//! Not here: the checks on request signatures, delivery tokens, prekey
//! slots and deposit lifetimes (pure functions in `service.rs`:
//! [`verify_owner`](crate::service::verify_owner),
//! [`bearer`](crate::service::bearer),
//! [`check_prekeys`](crate::service::check_prekeys),
//! [`deposit_ttl_ms`](crate::service::deposit_ttl_ms)). Deposits and
//! prekey bundles are opaque to the server.

use axum::http::HeaderValue;
use node_core::mailbox::{MailboxId, TokenHash};
use node_core::wire;
use serde::Deserialize;
use service_kit::ApiError;

/// A `POST /v1/mailboxes/{id}/tokens` body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChanges {
    /// Token hashes to add.
    pub add: Vec<TokenHash>,
    /// Token hashes to remove.
    pub remove: Vec<TokenHash>,
    /// Remove every token not in `add`.
    pub replace: bool,
}

/// The `{id}` of a mailbox path.
pub fn mailbox_id(text: &str) -> Result<MailboxId, ApiError> {
    text.parse()
        .map_err(|err| ApiError::BadRequest(format!("bad mailbox id: {err}")))
}

/// A tokens body: `{"add": [hash], "remove": [hash], "replace": bool}`.
pub fn token_changes(body: &[u8]) -> Result<TokenChanges, ApiError> {
    let changes: TokenBody = json(body)?;
    let parse = |list: &[String]| {
        list.iter()
            .map(|h| {
                h.parse::<TokenHash>()
                    .map_err(|err| ApiError::BadRequest(format!("bad token hash: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(TokenChanges {
        add: parse(&changes.add)?,
        remove: parse(&changes.remove)?,
        replace: changes.replace,
    })
}

/// A delete body, `{"ids": [id]}`: the deposit ids (base32, any length;
/// an id that names no deposit deletes nothing).
pub fn deposit_ids(body: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    let request: DeleteBody = json(body)?;
    request
        .ids
        .iter()
        .map(|id| {
            wire::from_base32(id, "deposit id")
                .map_err(|err| ApiError::BadRequest(format!("bad deposit id: {err}")))
        })
        .collect()
}

/// A paging cursor, `?after=MS-ID`: the last deposit's time and its
/// 16-byte id in base32 (as the previous page's `cursor` says).
pub fn cursor(text: &str) -> Result<(i64, Vec<u8>), ApiError> {
    let bad = || ApiError::BadRequest("bad cursor: pass back the `cursor` of the last page".into());
    let (ms, id) = text.split_once('-').ok_or_else(bad)?;
    let ms = ms.parse().map_err(|_| bad())?;
    let id = wire::from_base32(id, "cursor").map_err(|_| bad())?;
    if id.len() != 16 {
        return Err(bad());
    }
    Ok((ms, id))
}

/// The `Kith-Ttl` header of a deposit, if sent: whole seconds.
pub fn ttl(header: Option<&HeaderValue>) -> Result<Option<u64>, ApiError> {
    header
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::BadRequest("Kith-Ttl is a number of seconds".into()))
        })
        .transpose()
}

fn json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| ApiError::BadRequest(format!("bad JSON: {err}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    /// Remove every token not in `add`.
    #[serde(default)]
    replace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    ids: Vec<String>,
}
