//! The encrypted local store: one SQLite database encrypted whole by
//! SQLCipher under a random store key, which the key file wraps.
//!
//! Writes are transactions in WAL mode with `synchronous=NORMAL`: once a
//! call returns, its rows survive the process being killed; they survive
//! the machine stopping once the durable watermark passes them (group
//! commit, `durable.rs`).
//!
//! Not here: what events mean or whether they are valid (`log`,
//! `identity`); the store keeps what it is given.

pub mod durable;
pub mod files;
pub mod keyfile;
pub mod profile;
pub mod requests;

pub use durable::{Durability, Ticket};
pub use files::FileRow;
pub use keyfile::{KeyFileError, Passphrase};
pub use profile::{Profile, ProfileError, ProfileLock};
pub use requests::RequestRow;

use crate::crypto::{SecretBytes, Signature};
use crate::id::{AccountId, EventId, LogId};
use crate::log::{Event, EventError, LogKind, NodeInfo, Status};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::fmt::Write as _;
use zeroize::Zeroizing;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The profile folder is not usable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The key file does not give the key.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The database could not be opened with the key.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// The cause.
        source: sqlx::Error,
    },
    /// SQLCipher is missing: the build would store plaintext.
    #[error("this build's SQLite has no SQLCipher; refusing to store plaintext")]
    NoCipher,
    /// A query failed.
    #[error("database error while {what}: {source}")]
    Db {
        /// What we were doing.
        what: &'static str,
        /// The cause.
        source: sqlx::Error,
    },
    /// The disk did not confirm that writes are durable.
    #[error("syncing the store: {0}")]
    Sync(String),
    /// A stored row does not decode (the database was tampered with).
    #[error("stored event {id} is damaged: {source}")]
    Damaged {
        /// The row's event id.
        id: String,
        /// The cause.
        source: EventError,
    },
}

fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// An event as stored, with what the DAG recorded for it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event (body `None` when deleted).
    pub event: Event,
    /// DAG data.
    pub info: NodeInfo,
}

impl From<crate::log::Accepted> for StoredEvent {
    fn from(a: crate::log::Accepted) -> Self {
        Self {
            event: a.event,
            info: a.info,
        }
    }
}

/// The open store.
#[derive(Debug, Clone)]
pub struct Store {
    /// The one writing connection.
    pool: SqlitePool,
    /// When commits are on the disk.
    durable: Durability,
    /// What the database is known to hold, to skip needless statements on
    /// the write path.
    known: std::sync::Arc<std::sync::Mutex<Known>>,
}

#[derive(Debug, Default)]
struct Known {
    /// Logs with a row in `logs`.
    logs: std::collections::HashSet<LogId>,
    /// Whether `pending` may have rows.
    pending: bool,
    /// Holds so far (a hold during a write keeps `pending` set).
    holds: u64,
}

impl Store {
    /// Creates the key file and the database of a new profile.
    pub async fn create(
        profile: &Profile,
        passphrase: Option<&Passphrase>,
    ) -> Result<Self, StoreError> {
        profile.create_dir()?;
        let key = SecretBytes::<32>::random();
        let file = keyfile::wrap(&key, passphrase)?;
        profile.write_key_file(&file)?;
        Self::connect(profile, &key).await
    }

    /// Opens an existing profile's store.
    pub async fn open(
        profile: &Profile,
        passphrase: Option<&Passphrase>,
    ) -> Result<Self, StoreError> {
        profile.check()?;
        let file = profile.read_key_file()?;
        let key = keyfile::unwrap(&file, passphrase)?;
        Self::connect(profile, &key).await
    }

    /// Whether the profile's key is wrapped by a passphrase.
    pub fn is_protected(profile: &Profile) -> Result<bool, StoreError> {
        Ok(keyfile::is_protected(&profile.read_key_file()?))
    }

    async fn connect(profile: &Profile, key: &SecretBytes<32>) -> Result<Self, StoreError> {
        let path = profile.database();
        let mut hex = Zeroizing::new(String::with_capacity(70));
        hex.push_str("\"x'");
        for b in key.as_bytes() {
            let _ = write!(hex, "{b:02x}");
        }
        hex.push_str("'\"");
        // sqlx places `key` first, before any other pragma, as SQLCipher needs.
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .pragma("key", hex.to_string())
            .journal_mode(SqliteJournalMode::Wal)
            // Commits do not wait for the disk; `Durability` syncs the WAL
            // once per group of commits.
            .synchronous(SqliteSynchronous::Normal)
            // Deleted content (retired mailbox prekeys, deleted messages) is
            // overwritten, not left in free pages.
            .pragma("secure_delete", "ON")
            .foreign_keys(true);
        // The writer's connection stays open for the store's life (closing
        // the last connection deletes the WAL file).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let cipher: Option<String> = sqlx::query_scalar("PRAGMA cipher_version")
            .fetch_optional(&pool)
            .await
            .map_err(db("checking SQLCipher"))?;
        if cipher.is_none_or(|v| v.is_empty()) {
            return Err(StoreError::NoCipher);
        }
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Open {
            path: path.clone(),
            source: e.into(),
        })?;
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM pending")
            .fetch_one(&pool)
            .await
            .map_err(db("counting held events"))?;
        let known = Known {
            logs: Default::default(),
            pending: pending > 0,
            holds: 0,
        };
        // Reads share the writer's connection for now: a pool of reading
        // connections stalled reads for ~50 ms when a peer reconnected
        // (ARCHITECTURE.md, "Store").
        let durable = Durability::start(path)?;
        Ok(Self {
            pool,
            durable,
            known: std::sync::Arc::new(std::sync::Mutex::new(known)),
        })
    }

    /// Closes the database, checkpointing the WAL.
    pub async fn close(self) {
        if let Err(e) = self.durable.sync().await {
            tracing::error!(error = %e, "closing the store");
        }
        self.pool.close().await;
    }

    /// When this store's commits are on the disk.
    pub fn durability(&self) -> &Durability {
        &self.durable
    }

    /// A metadata value.
    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading metadata"))
    }

    /// Sets metadata values in one transaction.
    pub async fn set_meta(&self, pairs: &[(&str, &[u8])]) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("beginning a transaction"))?;
        for (k, v) in pairs {
            put_meta(&mut tx, k, v).await?;
        }
        tx.commit().await.map_err(db("committing metadata"))?;
        self.durable.wrote();
        Ok(())
    }

    /// Stores accepted events (and metadata) atomically.
    pub async fn insert(
        &self,
        events: &[StoredEvent],
        meta: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        self.insert_with_outbox(events, meta, &[]).await
    }

    /// Stores events, metadata and outbox entries (event, log, recipient
    /// account) in one transaction.
    pub async fn insert_with_outbox(
        &self,
        events: &[StoredEvent],
        meta: &[(&str, &[u8])],
        outbox: &[(EventId, LogId, AccountId)],
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("beginning a transaction"))?;
        for (event, log, account) in outbox {
            sqlx::query("INSERT OR IGNORE INTO outbox (event, log, account) VALUES (?, ?, ?)")
                .bind(event.as_bytes().as_slice())
                .bind(log.as_bytes().as_slice())
                .bind(account.as_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map_err(db("queueing for delivery"))?;
        }
        let (new_logs, pending, holds) = {
            let known = self.known();
            let mut logs: Vec<(LogId, LogKind)> = events
                .iter()
                .map(|e| (e.event.log_id(), e.event.header().log_kind))
                .filter(|(l, _)| !known.logs.contains(l))
                .collect();
            logs.sort_by_key(|(l, _)| *l);
            logs.dedup_by_key(|(l, _)| *l);
            (logs, known.pending, known.holds)
        };
        let still_pending = insert_events(&mut tx, events, &new_logs, pending).await?;
        for (k, v) in meta {
            put_meta(&mut tx, k, v).await?;
        }
        tx.commit().await.map_err(db("committing events"))?;
        self.durable.wrote();
        let mut known = self.known();
        known.logs.extend(new_logs.into_iter().map(|(l, _)| l));
        if !still_pending && known.holds == holds {
            known.pending = false;
        }
        Ok(())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a verified event that waits for its parents.
    pub async fn hold(&self, event: &Event, first_seen: i64) -> Result<(), StoreError> {
        {
            let mut known = self.known();
            known.pending = true;
            known.holds += 1;
        }
        sqlx::query(
            "INSERT OR IGNORE INTO pending (id, log, event, first_seen) VALUES (?, ?, ?, ?)",
        )
        .bind(event.id().as_bytes().as_slice())
        .bind(event.log_id().as_bytes().as_slice())
        .bind(event.encode())
        .bind(first_seen)
        .execute(&self.pool)
        .await
        .map_err(db("holding an event"))?;
        self.durable.wrote();
        Ok(())
    }

    /// Every event of a log in the order they were stored (so parents
    /// before children): replaying them gives what arrival gave, such as a
    /// room's events held as arrived late (placed far below the heads when
    /// they came, which depth order would no longer show).
    pub async fn events(&self, log: LogId) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, effective_time, first_seen, status, header, signature, body
             FROM events WHERE log = ? ORDER BY rowid",
        )
        .bind(log.as_bytes().as_slice())
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading events"))?;
        rows.iter().map(row_to_event).collect()
    }

    /// Held events of a log, the newest first: at most `max` of them and
    /// `max_bytes` in all.
    pub async fn pending(
        &self,
        log: LogId,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Vec<u8>, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT event, first_seen FROM (
                 SELECT event, first_seen,
                        sum(length(event)) OVER (ORDER BY first_seen DESC, id) AS total,
                        row_number() OVER (ORDER BY first_seen DESC, id) AS n
                 FROM pending WHERE log = ?)
             WHERE n <= ? AND total <= ?",
        )
        .bind(log.as_bytes().as_slice())
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading pending events"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Deletes every event of a log, stored or held (a stranger's account
    /// log that nothing names any more).
    pub async fn forget_log(&self, log: LogId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db("forgetting a log"))?;
        for query in [
            "DELETE FROM outbox WHERE log = ?",
            "DELETE FROM events WHERE log = ?",
            "DELETE FROM pending WHERE log = ?",
            "DELETE FROM logs WHERE id = ?",
        ] {
            sqlx::query(query)
                .bind(log.as_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map_err(db("forgetting a log"))?;
        }
        tx.commit().await.map_err(db("forgetting a log"))?;
        self.durable.wrote();
        self.known().logs.remove(&log);
        Ok(())
    }

    /// How many held events are kept at rest (all logs).
    pub async fn pending_rows(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pending")
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting held events"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Forgets held events (pushed out of the buffer).
    pub async fn unhold(&self, ids: &[EventId]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new("DELETE FROM pending WHERE id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_bytes().to_vec());
            }
            sep.push_unseparated(")");
            q.build()
                .execute(&self.pool)
                .await
                .map_err(db("forgetting held events"))?;
            self.durable.wrote();
        }
        Ok(())
    }

    /// Sets the status of stored events (a revocation or a cut changed
    /// what is trusted), in one transaction.
    pub async fn set_status(&self, changes: &[(EventId, Status)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db("setting statuses"))?;
        for (id, status) in changes {
            sqlx::query("UPDATE events SET status = ? WHERE id = ?")
                .bind(match status {
                    Status::Accepted => 0i64,
                    Status::SoftFailed => 1,
                })
                .bind(id.as_bytes().to_vec())
                .execute(&mut *tx)
                .await
                .map_err(db("setting statuses"))?;
        }
        tx.commit().await.map_err(db("setting statuses"))?;
        self.durable.wrote();
        Ok(())
    }

    /// Deletes the held events of `log` other than `keep` (what the
    /// buffer took back at start-up).
    pub async fn prune_pending(&self, log: LogId, keep: &[EventId]) -> Result<(), StoreError> {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new("DELETE FROM pending WHERE log = ");
        q.push_bind(log.as_bytes().to_vec());
        if !keep.is_empty() {
            q.push(" AND id NOT IN (");
            let mut sep = q.separated(", ");
            for id in keep {
                sep.push_bind(id.as_bytes().to_vec());
            }
            sep.push_unseparated(")");
        }
        q.build()
            .execute(&self.pool)
            .await
            .map_err(db("pruning held events"))?;
        self.durable.wrote();
        Ok(())
    }

    /// Events by id (those stored), parents before children.
    pub async fn events_by_id(&self, ids: &[EventId]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT id, effective_time, first_seen, status, header, signature, body FROM events WHERE id IN (",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_bytes().to_vec());
            }
            q.push(")");
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading events"))?;
            for r in &rows {
                out.push(row_to_event(r)?);
            }
        }
        out.sort_by_key(|e| (e.info.depth, e.event.id()));
        Ok(out)
    }

    /// The account has these events: they leave its outbox.
    pub async fn delivered(&self, account: AccountId, ids: &[EventId]) -> Result<(), StoreError> {
        let account = account.as_bytes().to_vec();
        self.for_ids(ids, "recording delivery", |q| {
            q.push("DELETE FROM outbox WHERE account = ");
            q.push_bind(account.clone());
            q.push(" AND event IN (");
        })
        .await
    }

    /// Removes the bodies of these events (deleted messages); headers stay.
    pub async fn drop_bodies(&self, ids: &[EventId]) -> Result<(), StoreError> {
        self.for_ids(ids, "deleting message bodies", |q| {
            q.push("UPDATE events SET body = NULL WHERE body IS NOT NULL AND id IN (");
        })
        .await
    }

    /// Runs `start … (id, id, …)` over `ids` in chunks, in one transaction.
    async fn for_ids(
        &self,
        ids: &[EventId],
        what: &'static str,
        start: impl Fn(&mut sqlx::QueryBuilder<Sqlite>),
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("beginning a transaction"))?;
        for chunk in ids.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new("");
            start(&mut q);
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_bytes().to_vec());
            }
            q.push(")");
            q.build().execute(&mut *tx).await.map_err(db(what))?;
        }
        tx.commit().await.map_err(db(what))?;
        self.durable.wrote();
        Ok(())
    }

    /// Events of `log` still waiting for delivery to some account.
    pub async fn undelivered(&self, log: LogId) -> Result<Vec<EventId>, StoreError> {
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT DISTINCT event FROM outbox WHERE log = ?")
                .bind(log.as_bytes().as_slice())
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading the outbox"))?;
        Ok(event_ids(rows))
    }

    /// Events still waiting for delivery to `account`, oldest queued first.
    pub async fn undelivered_to(&self, account: AccountId) -> Result<Vec<EventId>, StoreError> {
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT event FROM outbox WHERE account = ? ORDER BY rowid")
                .bind(account.as_bytes().as_slice())
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading the outbox"))?;
        Ok(event_ids(rows))
    }

    /// Number of events waiting for delivery.
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(DISTINCT event) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting the outbox"))
    }

    /// Number of stored events.
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting events"))
    }
}

async fn put_meta(
    tx: &mut Transaction<'_, Sqlite>,
    key: &str,
    value: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await
        .map_err(db("writing metadata"))?;
    Ok(())
}

fn log_kind_code(kind: LogKind) -> i64 {
    match kind {
        LogKind::Account => 1,
        LogKind::SelfLog => 2,
        LogKind::Conversation => 3,
        LogKind::Room => 4,
        LogKind::Bridged => 5,
    }
}

/// Rows per multi-row INSERT (11 bound values each; SQLite allows 32766).
const ROWS_PER_STATEMENT: usize = 256;

/// Inserts events; `new_logs` are their logs not known to be recorded,
/// `pending` whether held events may be waiting (and may now leave).
/// Returns whether held events remain.
async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[StoredEvent],
    new_logs: &[(LogId, LogKind)],
    pending: bool,
) -> Result<bool, StoreError> {
    for (log, kind) in new_logs {
        sqlx::query("INSERT OR IGNORE INTO logs (id, kind) VALUES (?, ?)")
            .bind(log.as_bytes().as_slice())
            .bind(log_kind_code(*kind))
            .execute(&mut **tx)
            .await
            .map_err(db("recording a log"))?;
    }
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, log, depth, author, seq, effective_time, first_seen, status, header, signature, body) ",
        );
        q.push_values(chunk, |mut row, e| {
            let ev = &e.event;
            let h = ev.header();
            row.push_bind(ev.id().as_bytes().to_vec())
                .push_bind(ev.log_id().as_bytes().to_vec())
                .push_bind(h.depth as i64)
                .push_bind(h.author.as_bytes().to_vec())
                .push_bind(h.seq as i64)
                .push_bind(e.info.effective_time)
                .push_bind(e.info.first_seen)
                .push_bind(match e.info.status {
                    Status::Accepted => 0i64,
                    Status::SoftFailed => 1,
                })
                .push_bind(ev.header_bytes().to_vec())
                .push_bind(ev.signature().as_bytes().to_vec())
                .push_bind(ev.body().map(<[u8]>::to_vec));
        });
        q.build()
            .execute(&mut **tx)
            .await
            .map_err(db("storing events"))?;
    }
    if !pending {
        return Ok(false);
    }
    // Held events that have now been stored leave the pending table.
    sqlx::query(
        "DELETE FROM pending WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = pending.id)",
    )
    .execute(&mut **tx)
    .await
    .map_err(db("clearing held events"))?;
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pending)")
        .fetch_one(&mut **tx)
        .await
        .map_err(db("checking held events"))
}

fn row_to_event(r: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, StoreError> {
    let id: Vec<u8> = r.get(0);
    let damaged = |source| StoreError::Damaged {
        id: crate::wire::to_base32(&id),
        source,
    };
    let sig: Vec<u8> = r.get(5);
    let sig: [u8; 64] = sig.try_into().map_err(|_| {
        damaged(EventError::Format(crate::wire::WireError::Invalid {
            what: "signature",
            why: "not 64 bytes",
        }))
    })?;
    let event =
        Event::from_parts(r.get(4), Signature::from_bytes(sig), r.get(6)).map_err(damaged)?;
    let h = event.header();
    let info = NodeInfo {
        parents: h.parents.clone(),
        depth: h.depth,
        author: h.author,
        seq: h.seq,
        effective_time: r.get(1),
        first_seen: r.get(2),
        status: if r.get::<i64, _>(3) == 0 {
            Status::Accepted
        } else {
            Status::SoftFailed
        },
    };
    Ok(StoredEvent { event, info })
}

/// Event ids from id columns (a value of the wrong length is skipped).
fn event_ids(rows: Vec<Vec<u8>>) -> Vec<EventId> {
    rows.into_iter()
        .filter_map(|b| b.try_into().ok().map(EventId::from_bytes))
        .collect()
}
