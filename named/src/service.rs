//! What `kith-named` allows, free of HTTP types.
//!
//! A record (see `node_core::names`) is accepted when:
//!
//! - it decodes, its signature verifies, and the account log it carries,
//!   joined with every account event this server has seen for the account,
//!   shows the signer as an active device (so a revoked device cannot hide
//!   its revocation behind an old log);
//! - its handle is under this server's domain;
//! - it was issued within [`MAX_RECORD_SKEW_MS`] of now, and later than the
//!   record held for the handle (so neither an old nor a captured record can
//!   be replayed);
//! - the handle is free, released, or the same account's; and no held handle
//!   of another spelling looks the same (Unicode TS #39 skeletons).
//!
//! Lookups return the record itself: clients check it the same way and do
//! not need to trust this server beyond "it answered".
//!
//! Not here: HTTP (`http.rs`) or SQL (`store.rs`).

use node_core::log::Event;
use node_core::names::{
    DomainName, Handle, MAX_RECORD_SKEW_MS, NameAction, NameRecord, RecordError, resolve_account,
};
use prometheus_client::registry::Registry;
use service_kit::Outcomes;

use crate::store::{NewRecord, Store, WriteOutcome};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum NameServiceError {
    /// The record or handle is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The record does not prove the account asked for it.
    #[error("{0}")]
    Forbidden(String),
    /// The name is held by another account, looks like one that is, or the
    /// record is not newer than the one held.
    #[error("{0}")]
    Conflict(String),
    /// No such name.
    #[error("{0}")]
    NotFound(String),
    /// The database failed.
    #[error("storage error: {0}")]
    Storage(#[from] sqlx::Error),
}

/// What a lookup returns.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The normalised handle.
    pub handle: Handle,
    /// The account.
    pub account: node_core::AccountId,
    /// The record, as signed.
    pub record: Vec<u8>,
    /// When it was issued.
    pub issued: i64,
}

/// Counters of what the service did.
#[derive(Debug, Clone, Default)]
pub struct ServiceMetrics {
    records: Outcomes,
    lookups: Outcomes,
}

impl ServiceMetrics {
    /// Registers the counters.
    pub fn register(&self, registry: &mut Registry) {
        self.records.register(
            registry,
            "kith_named_records",
            "Name records offered, by outcome",
        );
        self.lookups
            .register(registry, "kith_named_lookups", "Name lookups, by outcome");
    }
}

/// The name service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    store: Store,
    domain: DomainName,
    metrics: ServiceMetrics,
}

impl Service {
    /// A service for `domain` over `store`.
    pub fn new(store: Store, domain: DomainName, metrics: ServiceMetrics) -> Self {
        Self {
            store,
            domain,
            metrics,
        }
    }

    /// Accepts a record (bind or release), or says why not.
    pub async fn submit(&self, bytes: &[u8], now_ms: i64) -> Result<Lookup, NameServiceError> {
        let result = self.submit_inner(bytes, now_ms).await;
        self.metrics.records.inc(match &result {
            Ok(_) => "accepted",
            Err(NameServiceError::BadRequest(_)) => "malformed",
            Err(NameServiceError::Forbidden(_)) => "forbidden",
            Err(NameServiceError::Conflict(_)) => "conflict",
            Err(NameServiceError::NotFound(_)) => "not_held",
            Err(NameServiceError::Storage(_)) => "error",
        });
        result
    }

    async fn submit_inner(&self, bytes: &[u8], now_ms: i64) -> Result<Lookup, NameServiceError> {
        let record = NameRecord::verify(bytes, &[]).map_err(refusal)?;
        let account = record.account;
        // Check again with every account event seen before.
        let known = self.known_events(account).await?;
        let state =
            resolve_account(account, record.account_log.iter().chain(&known)).map_err(refusal)?;
        if !state.is_active(&record.signer) {
            return Err(refusal(RecordError::NotAccountDevice));
        }
        check_record(&record, &self.domain, now_ms)?;
        let handle = record.handle.to_string();
        let skeleton = record.handle.skeleton();
        let new = NewRecord {
            handle: &handle,
            skeleton: &skeleton,
            account: account.as_bytes(),
            record: bytes,
            issued: record.issued,
            now_ms,
        };
        let outcome = match record.action {
            NameAction::Bind { .. } => self.store.bind(&new).await?,
            NameAction::Release => self.store.release(&new).await?,
        };
        match outcome {
            WriteOutcome::Written => {}
            WriteOutcome::Taken => {
                return Err(NameServiceError::Conflict(format!(
                    "{handle} is taken by another account"
                )));
            }
            WriteOutcome::Stale => {
                return Err(NameServiceError::Conflict(format!(
                    "a record for {handle} as new or newer is held already (replayed?)"
                )));
            }
            WriteOutcome::Confusable => {
                return Err(NameServiceError::Conflict(format!(
                    "{handle} looks like a name that is already taken"
                )));
            }
            WriteOutcome::NotHeld => {
                return Err(NameServiceError::NotFound(format!(
                    "{handle} is not registered to this account"
                )));
            }
        }
        let events: Vec<(Vec<u8>, Vec<u8>)> = record
            .account_log
            .iter()
            .map(|e| (e.id().as_bytes().to_vec(), e.encode()))
            .collect();
        self.store
            .add_account_events(account.as_bytes(), &events)
            .await?;
        Ok(Lookup {
            handle: record.handle,
            account,
            record: bytes.to_vec(),
            issued: record.issued,
        })
    }

    /// The record bound to `handle`.
    pub async fn lookup(&self, handle: &str) -> Result<Lookup, NameServiceError> {
        let result = self.lookup_inner(handle).await;
        let outcome = match &result {
            Ok(_) => "found",
            Err(NameServiceError::NotFound(_)) => "not_found",
            Err(NameServiceError::Storage(_)) => "error",
            Err(_) => "malformed",
        };
        self.metrics.lookups.inc(outcome);
        result
    }

    async fn lookup_inner(&self, handle: &str) -> Result<Lookup, NameServiceError> {
        let handle = lookup_handle(handle)?;
        if handle.domain() != &self.domain {
            return Err(NameServiceError::NotFound(format!(
                "this server answers for @{}, not @{}",
                self.domain,
                handle.domain()
            )));
        }
        let row = self
            .store
            .get(&handle.to_string())
            .await?
            .filter(|row| !row.released)
            .ok_or_else(|| NameServiceError::NotFound(format!("no such name: {handle}")))?;
        let account: [u8; 32] = row.account.as_slice().try_into().map_err(|_| {
            NameServiceError::Storage(sqlx::Error::Protocol("stored account id length".into()))
        })?;
        Ok(Lookup {
            handle,
            account: node_core::AccountId::from_bytes(account),
            record: row.record,
            issued: row.issued,
        })
    }

    async fn known_events(
        &self,
        account: node_core::AccountId,
    ) -> Result<Vec<Event>, NameServiceError> {
        let raw = self.store.account_events(account.as_bytes()).await?;
        // Stored only after they verified; one that no longer decodes is skipped.
        Ok(raw.iter().filter_map(|b| Event::decode(b).ok()).collect())
    }
}

/// The handle a lookup asks for (`GET /v1/names/{handle}`).
pub fn lookup_handle(text: &str) -> Result<Handle, NameServiceError> {
    text.parse()
        .map_err(|err| NameServiceError::BadRequest(format!("bad handle: {err}")))
}

/// What a verified record must also be, whatever is stored: under
/// `domain`, and issued within [`MAX_RECORD_SKEW_MS`] of `now_ms`.
pub fn check_record(
    record: &NameRecord,
    domain: &DomainName,
    now_ms: i64,
) -> Result<(), NameServiceError> {
    if record.handle.domain() != domain {
        return Err(NameServiceError::BadRequest(format!(
            "this server answers for @{domain}, not @{}",
            record.handle.domain()
        )));
    }
    if record.issued.abs_diff(now_ms) > MAX_RECORD_SKEW_MS.unsigned_abs() {
        return Err(NameServiceError::BadRequest(format!(
            "the record was issued {} s from now; records must be fresh (within {} s): replayed, or a wrong clock",
            record.issued.saturating_sub(now_ms) / 1000,
            MAX_RECORD_SKEW_MS / 1000
        )));
    }
    Ok(())
}

fn refusal(err: RecordError) -> NameServiceError {
    match err {
        RecordError::Format(_) | RecordError::Handle(_) | RecordError::TooLarge => {
            NameServiceError::BadRequest(err.to_string())
        }
        _ => NameServiceError::Forbidden(err.to_string()),
    }
}
