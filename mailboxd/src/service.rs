//! What each mailbox request may do, free of HTTP types.
//!
//! - Anyone may ask for a challenge (rate-limited per address).
//! - The mailbox key holder, answering a challenge, may create or remove the
//!   mailbox, add and remove delivery tokens, publish prekey bundles, fetch
//!   deposits and delete them.
//! - A holder of a delivery token may read the prekeys and deposit.
//!
//! Refusals say precisely what was wrong and change nothing. The server
//! stores the mailbox id, token hashes, opaque prekey bundles, sealed
//! deposits with their expiry, and outstanding challenges; it logs none of
//! them.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use node_core::crypto;
use node_core::mailbox::{self, CHALLENGE_LEN, DeliveryToken, MailboxId, TokenHash};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use service_kit::{ApiError, Outcomes};

use crate::config::Limits;
use crate::store::{DepositOutcome, NewDeposit, Quotas, Store, StoredDeposit};
use tokio::sync::{mpsc, oneshot};

/// How long a challenge may be answered.
const CHALLENGE_MS: i64 = 60_000;
/// Most delivery tokens per mailbox (one per contact).
pub const MAX_TOKENS: i64 = 4096;
/// Most token changes in one request.
pub const MAX_TOKEN_CHANGES: usize = 1024;
/// Most prekey slots (devices) per mailbox.
pub const MAX_PREKEY_SLOTS: i64 = 64;
/// Largest prekey bundle.
pub const MAX_PREKEY_BUNDLE: usize = 4096;
/// Most deposits answered by one fetch.
pub const FETCH_COUNT: i64 = 256;
/// Most bytes answered by one fetch (past the first deposit).
pub const FETCH_BYTES: usize = 8 * 1024 * 1024;
/// Most deposit ids in one delete.
pub const MAX_DELETE: usize = 1024;

/// Most deposits committed in one transaction.
const GROUP_COMMIT: usize = 256;

/// The mailbox service: store, limits, metrics.
#[derive(Debug, Clone)]
pub struct Service {
    store: Store,
    limits: Limits,
    metrics: ServiceMetrics,
    /// Deposit writers (group commit): one for SQLite, several for
    /// PostgreSQL; requests pick one in turn.
    writers: std::sync::Arc<Vec<mpsc::Sender<Job>>>,
    next_writer: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Tokens seen valid recently (mailbox, token hash) → when. Only lets a
    /// deposit skip the pre-check read: the writer checks the token again
    /// in its transaction.
    known_tokens: std::sync::Arc<std::sync::Mutex<KnownTokens>>,
}

/// (mailbox, token hash) → when it was last seen valid.
type KnownTokens = HashMap<([u8; 32], [u8; 32]), Instant>;

/// How long a token seen valid skips the pre-check.
const KNOWN_TOKEN_FOR: Duration = Duration::from_secs(60);
/// Most tokens remembered (the map is cleared when full).
const KNOWN_TOKENS: usize = 100_000;

/// A deposit waiting for its writer.
struct Job {
    mailbox: [u8; 32],
    token_hash: [u8; 32],
    id: [u8; 16],
    body: Vec<u8>,
    now_ms: i64,
    expires_ms: i64,
    reply: oneshot::Sender<Result<DepositOutcome, String>>,
}

/// Commits deposits as they come, up to [`GROUP_COMMIT`] per transaction:
/// under load many requests share one commit instead of queueing for it.
async fn write_deposits(store: Store, quotas: Quotas, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_COMMIT {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let news: Vec<NewDeposit<'_>> = jobs
            .iter()
            .map(|j| NewDeposit {
                mailbox: &j.mailbox,
                token_hash: &j.token_hash,
                id: &j.id,
                body: &j.body,
                now_ms: j.now_ms,
                expires_ms: j.expires_ms,
            })
            .collect();
        let result = store.deposit_many(&news, quotas).await;
        drop(news);
        match result {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                let err = err.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// Counters of `kith-mailboxd`'s own work.
#[derive(Debug, Clone, Default)]
pub struct ServiceMetrics {
    deposits: Outcomes,
    collected: Counter,
    purged: Counter,
}

impl ServiceMetrics {
    /// Registers the counters.
    pub fn register(&self, registry: &mut Registry) {
        self.deposits.register(
            registry,
            "kith_mailbox_deposits",
            "Deposits offered, by outcome",
        );
        registry.register(
            "kith_mailbox_collected",
            "Deposits deleted by their mailbox's owner",
            self.collected.clone(),
        );
        registry.register(
            "kith_mailbox_purged",
            "Deposits deleted on expiry",
            self.purged.clone(),
        );
    }

    fn deposit(&self, outcome: &'static str) {
        self.deposits.inc(outcome);
    }
}

/// An owner request's proof: the `Authorization` header and what it signs.
#[derive(Debug, Clone, Copy)]
pub struct OwnerRequest<'a> {
    /// The mailbox named in the path.
    pub mailbox: &'a MailboxId,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The HTTP method.
    pub method: &'a str,
    /// The request path (no query).
    pub path: &'a str,
    /// The body.
    pub body: &'a [u8],
}

/// A deposit as accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Its id.
    pub id: [u8; 16],
    /// When it will be purged.
    pub expires_ms: i64,
}

impl Service {
    /// A service over `store`; starts its deposit writers (so it must be
    /// made inside a tokio runtime). They end when the last clone is gone.
    pub fn new(store: Store, limits: Limits, metrics: ServiceMetrics) -> Self {
        let quotas = Quotas {
            mailbox_deposits: limits.mailbox_max_deposits,
            mailbox_bytes: limits.mailbox_max_bytes,
            sender_deposits: limits.sender_max_deposits,
        };
        let count = if store.is_sqlite() { 1 } else { 4 };
        let writers = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel(GROUP_COMMIT * 4);
                tokio::spawn(write_deposits(store.clone(), quotas, rx));
                tx
            })
            .collect();
        Self {
            store,
            limits,
            metrics,
            writers: std::sync::Arc::new(writers),
            next_writer: Default::default(),
            known_tokens: Default::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Issues a challenge for `mailbox` (which need not exist yet).
    pub async fn challenge(&self, mailbox: &MailboxId) -> Result<[u8; CHALLENGE_LEN], ApiError> {
        let nonce = mailbox::new_challenge();
        self.store
            .add_challenge(mailbox.as_bytes(), &nonce, now_ms() + CHALLENGE_MS)
            .await
            .map_err(ApiError::internal)?;
        Ok(nonce)
    }

    /// Checks the signature, then uses up the challenge it answers.
    async fn authorise(&self, req: &OwnerRequest<'_>) -> Result<(), ApiError> {
        let challenge = verify_owner(req)?;
        let fresh = self
            .store
            .take_challenge(req.mailbox.as_bytes(), &challenge, now_ms())
            .await
            .map_err(ApiError::internal)?;
        if !fresh {
            return Err(ApiError::Unauthorized(
                "challenge unknown, already used or expired: ask for a new one".into(),
            ));
        }
        Ok(())
    }

    /// Like [`Service::authorise`], and the mailbox must exist.
    async fn authorise_existing(&self, req: &OwnerRequest<'_>) -> Result<(), ApiError> {
        self.authorise(req).await?;
        if !self
            .store
            .exists(req.mailbox.as_bytes())
            .await
            .map_err(ApiError::internal)?
        {
            return Err(ApiError::NotFound(
                "no such mailbox: register it first".into(),
            ));
        }
        Ok(())
    }

    /// Creates the mailbox; `true` if it is new.
    pub async fn register(&self, req: OwnerRequest<'_>) -> Result<bool, ApiError> {
        self.authorise(&req).await?;
        self.store
            .register(req.mailbox.as_bytes(), now_ms())
            .await
            .map_err(ApiError::internal)
    }

    /// Removes the mailbox with everything in it.
    pub async fn remove(&self, req: OwnerRequest<'_>) -> Result<(), ApiError> {
        self.authorise_existing(&req).await?;
        self.store
            .remove(req.mailbox.as_bytes())
            .await
            .map_err(ApiError::internal)
    }

    /// Adds and removes delivery tokens (by hash; with `replace`, all not
    /// in `add` are removed, with their deposits); returns how many remain.
    pub async fn update_tokens(
        &self,
        req: OwnerRequest<'_>,
        add: &[TokenHash],
        remove: &[TokenHash],
        replace: bool,
    ) -> Result<i64, ApiError> {
        if add.len() + remove.len() > MAX_TOKEN_CHANGES {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {MAX_TOKEN_CHANGES} token changes per request"
            )));
        }
        self.authorise_existing(&req).await?;
        let add: Vec<[u8; 32]> = add.iter().map(|h| *h.as_bytes()).collect();
        let remove: Vec<[u8; 32]> = remove.iter().map(|h| *h.as_bytes()).collect();
        self.store
            .update_tokens(req.mailbox.as_bytes(), &add, &remove, replace, MAX_TOKENS)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::TooManyRequests(format!("a mailbox holds at most {MAX_TOKENS} tokens"))
            })
    }

    /// Sets the prekey bundle in `slot` (one per device).
    pub async fn put_prekeys(&self, req: OwnerRequest<'_>, slot: &str) -> Result<(), ApiError> {
        check_prekeys(slot, req.body)?;
        self.authorise_existing(&req).await?;
        let stored = self
            .store
            .put_prekeys(
                req.mailbox.as_bytes(),
                slot,
                req.body,
                now_ms(),
                MAX_PREKEY_SLOTS,
            )
            .await
            .map_err(ApiError::internal)?;
        if !stored {
            return Err(ApiError::TooManyRequests(format!(
                "a mailbox holds at most {MAX_PREKEY_SLOTS} prekey bundles"
            )));
        }
        Ok(())
    }

    /// The mailbox's prekey bundles, for a token holder.
    pub async fn prekeys(
        &self,
        mailbox: &MailboxId,
        authorization: Option<&str>,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        self.token(mailbox, authorization).await?;
        self.store
            .prekeys(mailbox.as_bytes())
            .await
            .map_err(ApiError::internal)
    }

    /// Checks a `Bearer` token against the mailbox's. A token the mailbox
    /// never issued costs one read (never a place in the writer's queue).
    async fn token(
        &self,
        mailbox: &MailboxId,
        authorization: Option<&str>,
    ) -> Result<TokenHash, ApiError> {
        let hash = bearer(authorization)?;
        if !self.token_seen(mailbox, &hash).await? {
            return Err(ApiError::Forbidden(
                "this delivery token does not open this mailbox".into(),
            ));
        }
        Ok(hash)
    }

    /// Stores a sealed deposit for a token holder. `ttl_secs` may shorten
    /// the retention.
    pub async fn deposit(
        &self,
        mailbox: &MailboxId,
        authorization: Option<&str>,
        ttl_secs: Option<u64>,
        body: &[u8],
    ) -> Result<Receipt, ApiError> {
        if body.len() > self.limits.max_deposit_size {
            self.metrics.deposit("too_large");
            return Err(ApiError::PayloadTooLarge(format!(
                "a deposit is at most {} bytes",
                self.limits.max_deposit_size
            )));
        }
        if body.is_empty() {
            return Err(ApiError::BadRequest("empty deposit".into()));
        }
        let hash = match self.token(mailbox, authorization).await {
            Err(err @ ApiError::Forbidden(_)) => {
                self.metrics.deposit("unknown_token");
                return Err(err);
            }
            other => other?,
        };
        let now = now_ms();
        let ttl_ms = deposit_ttl_ms(ttl_secs, self.limits.retention_ms);
        let id: [u8; 16] = crypto::random_bytes();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            mailbox: *mailbox.as_bytes(),
            token_hash: *hash.as_bytes(),
            id,
            body: body.to_vec(),
            now_ms: now,
            expires_ms: now + ttl_ms,
            reply,
        };
        let turn = self
            .next_writer
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let writer = &self.writers[turn % self.writers.len()];
        writer
            .send(job)
            .await
            .map_err(|_| ApiError::internal("the deposit writer stopped"))?;
        let outcome = answer
            .await
            .map_err(|_| ApiError::internal("the deposit writer stopped"))?
            .map_err(ApiError::internal)?;
        match outcome {
            DepositOutcome::Stored => {
                self.metrics.deposit("stored");
                Ok(Receipt {
                    id,
                    expires_ms: now + ttl_ms,
                })
            }
            DepositOutcome::UnknownToken => {
                self.metrics.deposit("unknown_token");
                Err(ApiError::Forbidden(
                    "this delivery token does not open this mailbox".into(),
                ))
            }
            DepositOutcome::SenderQuota => {
                self.metrics.deposit("sender_quota");
                Err(ApiError::TooManyRequests(format!(
                    "sender quota exceeded: at most {} deposits per sender until some are collected",
                    self.limits.sender_max_deposits
                )))
            }
            DepositOutcome::MailboxQuota => {
                self.metrics.deposit("mailbox_quota");
                Err(ApiError::TooManyRequests(
                    "mailbox quota exceeded: it is full until its owner collects".into(),
                ))
            }
        }
    }

    /// The oldest deposits after the cursor `after` and whether more
    /// remain, for the key holder.
    pub async fn fetch(
        &self,
        req: OwnerRequest<'_>,
        after: Option<(i64, &[u8])>,
    ) -> Result<(Vec<StoredDeposit>, bool), ApiError> {
        self.authorise_existing(&req).await?;
        self.store
            .fetch(
                req.mailbox.as_bytes(),
                now_ms(),
                after,
                FETCH_COUNT,
                FETCH_BYTES,
            )
            .await
            .map_err(ApiError::internal)
    }

    /// Deletes deposits by id, for the key holder; returns how many existed.
    pub async fn delete(&self, req: OwnerRequest<'_>, ids: &[Vec<u8>]) -> Result<u64, ApiError> {
        if ids.len() > MAX_DELETE {
            return Err(ApiError::PayloadTooLarge(format!(
                "at most {MAX_DELETE} ids per request"
            )));
        }
        self.authorise_existing(&req).await?;
        let deleted = self
            .store
            .delete_deposits(req.mailbox.as_bytes(), ids, now_ms())
            .await
            .map_err(ApiError::internal)?;
        self.metrics.collected.inc_by(deleted);
        Ok(deleted)
    }

    /// Whether the mailbox issued `hash`: from the recent-tokens map, else
    /// one read (remembered if so).
    async fn token_seen(&self, mailbox: &MailboxId, hash: &TokenHash) -> Result<bool, ApiError> {
        let key = (*mailbox.as_bytes(), *hash.as_bytes());
        let now = Instant::now();
        {
            let known = self
                .known_tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if known
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < KNOWN_TOKEN_FOR)
            {
                return Ok(true);
            }
        }
        let known = self
            .store
            .token_known(mailbox.as_bytes(), hash.as_bytes())
            .await
            .map_err(ApiError::internal)?;
        if known {
            let mut map = self
                .known_tokens
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.len() >= KNOWN_TOKENS {
                map.clear();
            }
            map.insert(key, now);
        }
        Ok(known)
    }

    /// Deletes what has expired; returns how many deposits.
    pub async fn purge(&self) -> Result<u64, sqlx::Error> {
        let purged = self.store.purge(now_ms()).await?;
        self.metrics.purged.inc_by(purged);
        Ok(purged)
    }
}

/// The challenge an owner request answers, if its `Authorization` header
/// (`Kith-Mailbox CHALLENGE.SIGNATURE`) is the mailbox key's signature
/// over it. Whether the challenge is fresh is the store's to say.
pub fn verify_owner(req: &OwnerRequest<'_>) -> Result<[u8; CHALLENGE_LEN], ApiError> {
    let header = req.authorization.ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Kith-Mailbox CHALLENGE.SIGNATURE".into())
    })?;
    mailbox::verify_request(req.mailbox, header, req.method, req.path, req.body)
        .map_err(|err| ApiError::Unauthorized(format!("not the mailbox key: {err}")))
}

/// The hash of the delivery token in an `Authorization: Bearer TOKEN`
/// header. Whether the mailbox issued it is the store's to say.
pub fn bearer(authorization: Option<&str>) -> Result<TokenHash, ApiError> {
    let header = authorization.ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer DELIVERY-TOKEN".into())
    })?;
    Ok(DeliveryToken::from_bearer(header)
        .map_err(|err| ApiError::Unauthorized(format!("bad delivery token: {err}")))?
        .hash())
}

/// Checks a prekey slot's name (1 to 64 letters, digits or dashes) and
/// the bundle's size (1 to [`MAX_PREKEY_BUNDLE`] bytes; its content is
/// opaque here).
pub fn check_prekeys(slot: &str, bundle: &[u8]) -> Result<(), ApiError> {
    if slot.is_empty()
        || slot.len() > 64
        || !slot.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::BadRequest(
            "a prekey slot is 1 to 64 letters, digits or dashes".into(),
        ));
    }
    if bundle.is_empty() || bundle.len() > MAX_PREKEY_BUNDLE {
        return Err(ApiError::PayloadTooLarge(format!(
            "a prekey bundle is 1 to {MAX_PREKEY_BUNDLE} bytes"
        )));
    }
    Ok(())
}

/// How long a deposit is kept (ms): the depositor's `Kith-Ttl` (seconds)
/// if sent, within 1 s and `retention_ms` (the operator's, at least 1 s).
pub fn deposit_ttl_ms(ttl_secs: Option<u64>, retention_ms: i64) -> i64 {
    ttl_secs
        .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
        .unwrap_or(i64::MAX)
        .clamp(1000, retention_ms)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
