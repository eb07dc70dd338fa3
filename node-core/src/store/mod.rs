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
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

/// The schema, oldest first: (version, SQL). Applied in order, each in a
/// transaction that also records its version in `PRAGMA user_version`.
/// Profiles made before the store left sqlx recorded them in sqlx's
/// `_sqlx_migrations` table, with the same version numbers.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_events.sql")),
    (2, include_str!("../../migrations/0002_outbox.sql")),
    (3, include_str!("../../migrations/0003_files.sql")),
    (4, include_str!("../../migrations/0004_requests.sql")),
];

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

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
        source: rusqlite::Error,
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
        source: rusqlite::Error,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// A newer kith made this profile's database.
    #[error(
        "this profile's database has schema version {0}, newer than this kith knows; run a newer kith"
    )]
    Newer(i64),
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

fn db(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

/// A stored value that does not decode, as a query error.
fn bad_value(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        format!("bad {what}").into(),
    )
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
///
/// Statements run on the calling thread, on the one connection, behind a
/// mutex: a write is a few tens of microseconds of SQLite, less than
/// handing it to a worker thread and waking the caller again cost (sqlx's
/// worker took about 100 µs per statement here, and a one-event commit
/// six statements). When the connection is busy, the waiter leaves its
/// async worker thread to the runtime while it waits, and so do reads
/// that may be long (a whole log).
#[derive(Debug, Clone)]
pub struct Store {
    /// The one connection; `None` once closed.
    conn: Arc<Mutex<Option<Connection>>>,
    /// Rows written since the WAL was last checkpointed (a small commit
    /// counts as [`SMALL_COMMIT_ROWS`]).
    since_checkpoint: Arc<std::sync::atomic::AtomicUsize>,
    /// When commits are on the disk.
    durable: Durability,
    /// What the database is known to hold, to skip needless statements on
    /// the write path.
    known: Arc<Mutex<Known>>,
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

/// Runs `f` where blocking is allowed: on a multi-threaded runtime the
/// async worker hands its tasks to another thread first; elsewhere (a
/// current-thread runtime, a plain thread) it just runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
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
        // Absolute: SQLCipher reads any name starting with `file:` as a URI
        // whatever the flags say, and the durability thread must sync the
        // very file SQLite writes.
        let path = std::path::absolute(profile.database()).map_err(|e| {
            StoreError::Profile(ProfileError::Io {
                what: "finding the database",
                path: profile.database(),
                source: e,
            })
        })?;
        let open = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = blocking(|| open_connection(&path, key)).map_err(|e| match e {
            Opened::NoCipher => StoreError::NoCipher,
            Opened::Newer(version) => StoreError::Newer(version),
            Opened::Failed(source) => open(source),
        })?;
        let pending: i64 = conn
            .query_row("SELECT count(*) FROM pending", [], |r| r.get(0))
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
            conn: Arc::new(Mutex::new(Some(conn))),
            since_checkpoint: Default::default(),
            durable,
            known: Arc::new(Mutex::new(known)),
        })
    }

    /// Closes the database (its last connection: SQLite checkpoints the
    /// WAL into the database file). Later calls on any clone fail.
    pub async fn close(self) {
        if let Err(e) = self.durable.sync().await {
            tracing::error!(error = %e, "closing the store");
        }
        let conn = self.connection().take();
        if let Some(conn) = conn
            && let Some(e) = blocking(|| conn.close().err().map(|(_, e)| e))
        {
            tracing::error!(error = %e, "closing the store");
        }
    }

    /// When this store's commits are on the disk.
    pub fn durability(&self) -> &Durability {
        &self.durable
    }

    /// The connection, waited for off the async worker if another caller
    /// holds it.
    fn connection(&self) -> MutexGuard<'_, Option<Connection>> {
        match self.conn.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                blocking(|| self.conn.lock().unwrap_or_else(|p| p.into_inner()))
            }
        }
    }

    /// Runs `f` on the connection (reads, or a single statement).
    fn read<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let guard = self.connection();
        let conn = guard.as_ref().ok_or(StoreError::Closed)?;
        f(conn).map_err(db(what))
    }

    /// [`Store::read`] for a read that may be long, off the async worker.
    fn read_long<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        blocking(|| self.read(what, f))
    }

    /// Runs `f` in one transaction and commits it (not yet durable: see
    /// [`Durability`]). `rows` is about how many rows it writes: above
    /// [`LONG_BATCH`] it runs off the async worker. The WAL is copied into
    /// the database here too, off the async worker, once about
    /// [`CHECKPOINT_ROWS`] rows were written since the last time (SQLite's
    /// own checkpoints would run inside some small commit, on the worker).
    fn write<T>(
        &self,
        what: &'static str,
        rows: usize,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let long = rows > LONG_BATCH;
        let run = || {
            let mut guard = self.connection();
            let conn = guard.as_mut().ok_or(StoreError::Closed)?;
            let tx = conn.transaction().map_err(db(what))?;
            let out = f(&tx).map_err(db(what))?;
            tx.commit().map_err(db(what))?;
            self.durable.wrote();
            let weight = rows.clamp(SMALL_COMMIT_ROWS, CHECKPOINT_ROWS);
            let n = self
                .since_checkpoint
                .fetch_add(weight, std::sync::atomic::Ordering::Relaxed);
            if n + weight >= CHECKPOINT_ROWS {
                self.since_checkpoint
                    .store(0, std::sync::atomic::Ordering::Relaxed);
                let checkpoint = || conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
                let done = if long {
                    checkpoint()
                } else {
                    blocking(checkpoint)
                };
                if let Err(e) = done {
                    // The WAL keeps the pages; the next checkpoint copies them.
                    tracing::warn!(error = %e, "checkpointing the store");
                }
            }
            Ok(out)
        };
        if long { blocking(run) } else { run() }
    }

    /// A metadata value.
    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read("reading metadata", |c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?")?
                .query_row([key], |r| r.get(0))
                .optional()
        })
    }

    /// Sets metadata values in one transaction.
    pub async fn set_meta(&self, pairs: &[(&str, &[u8])]) -> Result<(), StoreError> {
        self.write("writing metadata", pairs.len(), |tx| put_meta(tx, pairs))
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
        // Large events count by their pages too (the WAL grows by pages).
        let bytes: usize = events
            .iter()
            .map(|e| e.event.header_bytes().len() + e.event.body().map_or(0, <[u8]>::len))
            .sum();
        let still_pending = self.write(
            "storing events",
            events.len() + outbox.len() + meta.len() + bytes / PAGE,
            |tx| {
                let mut q = tx.prepare_cached(
                    "INSERT OR IGNORE INTO outbox (event, log, account) VALUES (?, ?, ?)",
                )?;
                for (event, log, account) in outbox {
                    q.execute(params![
                        event.as_bytes().as_slice(),
                        log.as_bytes().as_slice(),
                        account.as_bytes().as_slice()
                    ])?;
                }
                let still_pending = insert_events(tx, events, &new_logs, pending)?;
                put_meta(tx, meta)?;
                Ok(still_pending)
            },
        )?;
        let mut known = self.known();
        known.logs.extend(new_logs.into_iter().map(|(l, _)| l));
        if !still_pending && known.holds == holds {
            known.pending = false;
        }
        Ok(())
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a verified event that waits for its parents.
    pub async fn hold(&self, event: &Event, first_seen: i64) -> Result<(), StoreError> {
        {
            let mut known = self.known();
            known.pending = true;
            known.holds += 1;
        }
        self.write("holding an event", 1, |tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO pending (id, log, event, first_seen) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![
                event.id().as_bytes().as_slice(),
                event.log_id().as_bytes().as_slice(),
                event.encode(),
                first_seen
            ])
        })?;
        Ok(())
    }

    /// Every event of a log in the order they were stored (so parents
    /// before children): replaying them gives what arrival gave, such as a
    /// room's events held as arrived late (placed far below the heads when
    /// they came, which depth order would no longer show).
    pub async fn events(&self, log: LogId) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.read_long("reading events", |c| {
            c.prepare_cached(
                "SELECT id, effective_time, first_seen, status, header, signature, body
                 FROM events WHERE log = ? ORDER BY rowid",
            )?
            .query_map([log.as_bytes().as_slice()], EventRow::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// Held events of a log, the newest first: at most `max` of them and
    /// `max_bytes` in all.
    pub async fn pending(
        &self,
        log: LogId,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Vec<u8>, i64)>, StoreError> {
        self.read_long("reading pending events", |c| {
            c.prepare_cached(
                "SELECT event, first_seen FROM (
                     SELECT event, first_seen,
                            sum(length(event)) OVER (ORDER BY first_seen DESC, id) AS total,
                            row_number() OVER (ORDER BY first_seen DESC, id) AS n
                     FROM pending WHERE log = ?)
                 WHERE n <= ? AND total <= ?",
            )?
            .query_map(
                params![
                    log.as_bytes().as_slice(),
                    i64::try_from(max).unwrap_or(i64::MAX),
                    i64::try_from(max_bytes).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect()
        })
    }

    /// Deletes every event of a log, stored or held (a stranger's account
    /// log that nothing names any more).
    pub async fn forget_log(&self, log: LogId) -> Result<(), StoreError> {
        // Every event of the log: may be long.
        self.write("forgetting a log", usize::MAX, |tx| {
            for query in [
                "DELETE FROM outbox WHERE log = ?",
                "DELETE FROM events WHERE log = ?",
                "DELETE FROM pending WHERE log = ?",
                "DELETE FROM logs WHERE id = ?",
            ] {
                tx.prepare_cached(query)?
                    .execute([log.as_bytes().as_slice()])?;
            }
            Ok(())
        })?;
        self.known().logs.remove(&log);
        Ok(())
    }

    /// How many held events are kept at rest (all logs).
    pub async fn pending_rows(&self) -> Result<usize, StoreError> {
        let n: i64 = self.read("counting held events", |c| {
            c.prepare_cached("SELECT count(*) FROM pending")?
                .query_row([], |r| r.get(0))
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Forgets held events (pushed out of the buffer).
    pub async fn unhold(&self, ids: &[EventId]) -> Result<(), StoreError> {
        self.for_ids(
            ids,
            "forgetting held events",
            "DELETE FROM pending WHERE id = ?",
        )
    }

    /// Sets the status of stored events (a revocation or a cut changed
    /// what is trusted), in one transaction.
    pub async fn set_status(&self, changes: &[(EventId, Status)]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.write("setting statuses", changes.len(), |tx| {
            let mut q = tx.prepare_cached("UPDATE events SET status = ? WHERE id = ?")?;
            for (id, status) in changes {
                q.execute(params![status_code(*status), id.as_bytes().as_slice()])?;
            }
            Ok(())
        })
    }

    /// Deletes the held events of `log` other than `keep` (what the
    /// buffer took back at start-up).
    pub async fn prune_pending(&self, log: LogId, keep: &[EventId]) -> Result<(), StoreError> {
        let keep: std::collections::HashSet<&[u8]> =
            keep.iter().map(|id| id.as_bytes().as_slice()).collect();
        // Every held event of the log: may be long.
        self.write("pruning held events", usize::MAX, |tx| {
            let held: Vec<Vec<u8>> = tx
                .prepare_cached("SELECT id FROM pending WHERE log = ?")?
                .query_map([log.as_bytes().as_slice()], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut q = tx.prepare_cached("DELETE FROM pending WHERE id = ?")?;
            for id in held.iter().filter(|id| !keep.contains(id.as_slice())) {
                q.execute([id.as_slice()])?;
            }
            Ok(())
        })
    }

    /// Events by id (those stored, each once however often it is named),
    /// parents before children.
    pub async fn events_by_id(&self, ids: &[EventId]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let ids = &ids[..];
        let run = || {
            self.read("reading events", |c| {
                let mut q = c.prepare_cached(
                    "SELECT id, effective_time, first_seen, status, header, signature, body
                     FROM events WHERE id = ?",
                )?;
                let mut rows = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(row) = q
                        .query_row([id.as_bytes().as_slice()], EventRow::from_row)
                        .optional()?
                    {
                        rows.push(row);
                    }
                }
                Ok(rows)
            })
        };
        let rows = if ids.len() > LONG_BATCH {
            blocking(run)?
        } else {
            run()?
        };
        let mut out = rows
            .into_iter()
            .map(EventRow::into_event)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|e| (e.info.depth, e.event.id()));
        Ok(out)
    }

    /// The account has these events: they leave its outbox.
    pub async fn delivered(&self, account: AccountId, ids: &[EventId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write("recording delivery", ids.len(), |tx| {
            let mut q = tx.prepare_cached("DELETE FROM outbox WHERE account = ? AND event = ?")?;
            for id in ids {
                q.execute(params![
                    account.as_bytes().as_slice(),
                    id.as_bytes().as_slice()
                ])?;
            }
            Ok(())
        })
    }

    /// Removes the bodies of these events (deleted messages); headers stay.
    pub async fn drop_bodies(&self, ids: &[EventId]) -> Result<(), StoreError> {
        self.for_ids(
            ids,
            "deleting message bodies",
            "UPDATE events SET body = NULL WHERE body IS NOT NULL AND id = ?",
        )
    }

    /// Runs `statement` (one `?`, an event id) for each of `ids`, in one
    /// transaction.
    fn for_ids(
        &self,
        ids: &[EventId],
        what: &'static str,
        statement: &str,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(what, ids.len(), |tx| {
            let mut q = tx.prepare_cached(statement)?;
            for id in ids {
                q.execute([id.as_bytes().as_slice()])?;
            }
            Ok(())
        })
    }

    /// Events of `log` still waiting for delivery to some account.
    pub async fn undelivered(&self, log: LogId) -> Result<Vec<EventId>, StoreError> {
        let rows = self.read_long("reading the outbox", |c| {
            c.prepare_cached("SELECT DISTINCT event FROM outbox WHERE log = ?")?
                .query_map([log.as_bytes().as_slice()], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
        })?;
        Ok(event_ids(rows))
    }

    /// Events still waiting for delivery to `account`, oldest queued first.
    pub async fn undelivered_to(&self, account: AccountId) -> Result<Vec<EventId>, StoreError> {
        let rows = self.read_long("reading the outbox", |c| {
            c.prepare_cached("SELECT event FROM outbox WHERE account = ? ORDER BY rowid")?
                .query_map([account.as_bytes().as_slice()], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
        })?;
        Ok(event_ids(rows))
    }

    /// Number of events waiting for delivery.
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        self.read("counting the outbox", |c| {
            c.prepare_cached("SELECT count(DISTINCT event) FROM outbox")?
                .query_row([], |r| r.get(0))
        })
    }

    /// The schema version (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.read("reading the schema version", |c| {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
        })
    }

    /// Number of stored events.
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        self.read("counting events", |c| {
            c.prepare_cached("SELECT count(*) FROM events")?
                .query_row([], |r| r.get(0))
        })
    }
}

/// Why a connection could not be opened.
enum Opened {
    NoCipher,
    /// The schema is this version, newer than this build knows.
    Newer(i64),
    Failed(rusqlite::Error),
}

impl From<rusqlite::Error> for Opened {
    fn from(e: rusqlite::Error) -> Self {
        Self::Failed(e)
    }
}

/// Opens the database under `key`, sets the connection up and brings the
/// schema up to date.
fn open_connection(path: &std::path::Path, key: &SecretBytes<32>) -> Result<Connection, Opened> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // SQLCipher needs the key before any other statement.
    let mut pragma = Zeroizing::new(String::with_capacity(84));
    pragma.push_str("PRAGMA key = \"x'");
    for b in key.as_bytes() {
        let _ = write!(pragma, "{b:02x}");
    }
    pragma.push_str("'\";");
    conn.execute_batch(&pragma)?;
    drop(pragma);
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    if cipher.is_none_or(|v| v.is_empty()) {
        return Err(Opened::NoCipher);
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Commits do not wait for the disk; `Durability` syncs the WAL once
    // per group of commits.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Opened::Failed(bad_value("journal mode (not WAL)")));
    }
    // Deleted content (retired mailbox prekeys, deleted messages) is
    // overwritten, not left in free pages.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 16777216;",
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate(&conn)?;
    // What a crash left in the WAL, and the migrations, are copied into
    // the database now (the write counter starts from nothing).
    conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")?;
    Ok(conn)
}

/// Applies the [`MIGRATIONS`] the database lacks; refuses a database a
/// newer build made.
fn migrate(conn: &Connection) -> Result<(), Opened> {
    let mut version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        // A profile made while the store ran on sqlx.
        let by_sqlx: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
            [],
            |r| r.get(0),
        )?;
        if by_sqlx {
            version = conn.query_row(
                "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
                [],
                |r| r.get(0),
            )?;
            conn.pragma_update(None, "user_version", version)?;
        }
    }
    let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if version > known {
        return Err(Opened::Newer(version));
    }
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > version) {
        conn.execute_batch(&format!(
            "BEGIN; {sql}\n; PRAGMA user_version = {v}; COMMIT;"
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
    }
    Ok(())
}

fn put_meta(tx: &rusqlite::Transaction<'_>, pairs: &[(&str, &[u8])]) -> rusqlite::Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut q = tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in pairs {
        q.execute(params![k, v])?;
    }
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

fn status_code(status: Status) -> i64 {
    match status {
        Status::Accepted => 0,
        Status::SoftFailed => 1,
    }
}

/// Rows above which a write or a read by id runs off the async worker.
const LONG_BATCH: usize = 64;

/// Rows written between two checkpoints of the WAL (a large row counts
/// once per page): 256 small commits of a few pages each, or four batches
/// of 500 short events (SQLite's own default is every 1,000 pages). The
/// WAL file is cut back to 16 MiB after a checkpoint.
const CHECKPOINT_ROWS: usize = 2048;

/// A database page, to count large rows by.
const PAGE: usize = 4096;

/// What a small commit counts as towards [`CHECKPOINT_ROWS`].
const SMALL_COMMIT_ROWS: usize = 8;

/// Inserts events; `new_logs` are their logs not known to be recorded,
/// `pending` whether held events may be waiting (and may now leave).
/// Returns whether held events remain.
fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    events: &[StoredEvent],
    new_logs: &[(LogId, LogKind)],
    pending: bool,
) -> rusqlite::Result<bool> {
    if !new_logs.is_empty() {
        let mut q = tx.prepare_cached("INSERT OR IGNORE INTO logs (id, kind) VALUES (?, ?)")?;
        for (log, kind) in new_logs {
            q.execute(params![log.as_bytes().as_slice(), log_kind_code(*kind)])?;
        }
    }
    let mut q = tx.prepare_cached(
        "INSERT INTO events (id, log, depth, author, seq, effective_time, first_seen, status, header, signature, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for e in events {
        let ev = &e.event;
        let h = ev.header();
        q.execute(params![
            ev.id().as_bytes().as_slice(),
            ev.log_id().as_bytes().as_slice(),
            i64::try_from(h.depth).unwrap_or(i64::MAX),
            h.author.as_bytes().as_slice(),
            i64::try_from(h.seq).unwrap_or(i64::MAX),
            e.info.effective_time,
            e.info.first_seen,
            status_code(e.info.status),
            ev.header_bytes(),
            ev.signature().as_bytes().as_slice(),
            ev.body()
        ])?;
    }
    if !pending {
        return Ok(false);
    }
    // Held events that have now been stored leave the pending table.
    tx.prepare_cached(
        "DELETE FROM pending WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = pending.id)",
    )?
    .execute([])?;
    tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM pending)")?
        .query_row([], |r| r.get(0))
}

/// An `events` row as read, before its event is decoded.
struct EventRow {
    id: Vec<u8>,
    effective_time: i64,
    first_seen: i64,
    status: i64,
    header: Vec<u8>,
    signature: Vec<u8>,
    body: Option<Vec<u8>>,
}

impl EventRow {
    /// Reads `id, effective_time, first_seen, status, header, signature,
    /// body`.
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            effective_time: r.get(1)?,
            first_seen: r.get(2)?,
            status: r.get(3)?,
            header: r.get(4)?,
            signature: r.get(5)?,
            body: r.get(6)?,
        })
    }

    fn into_event(self) -> Result<StoredEvent, StoreError> {
        let damaged = |source| StoreError::Damaged {
            id: crate::wire::to_base32(&self.id),
            source,
        };
        let sig: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| {
            damaged(EventError::Format(crate::wire::WireError::Invalid {
                what: "signature",
                why: "not 64 bytes",
            }))
        })?;
        let event = Event::from_parts(self.header, Signature::from_bytes(sig), self.body)
            .map_err(damaged)?;
        let h = event.header();
        let info = NodeInfo {
            parents: h.parents.clone(),
            depth: h.depth,
            author: h.author,
            seq: h.seq,
            effective_time: self.effective_time,
            first_seen: self.first_seen,
            status: if self.status == 0 {
                Status::Accepted
            } else {
                Status::SoftFailed
            },
        };
        Ok(StoredEvent { event, info })
    }
}

/// Event ids from id columns (a value of the wrong length is skipped).
fn event_ids(rows: Vec<Vec<u8>>) -> Vec<EventId> {
    rows.into_iter()
        .filter_map(|b| b.try_into().ok().map(EventId::from_bytes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_migration_file_is_applied_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading migrations: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "a migration is not listed");
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1);
            assert!(files[i].starts_with(&format!("{v:04}_")), "{}", files[i]);
        }
    }
}
