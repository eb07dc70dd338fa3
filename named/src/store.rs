//! Where `kith-named` keeps its state: SQLite or PostgreSQL through sqlx's
//! `Any` driver, one set of queries for both.
//!
//! Every change is one conditional statement, so several instances sharing
//! one PostgreSQL decide atomically: a binding replaces a row only when it is
//! newer and the name is free or already the same account's; a unique index
//! over the skeletons of held names refuses look-alikes even when two
//! instances race.
//!
//! Not here: checking records (`service.rs`) or HTTP (`http.rs`).

use service_kit::DatabaseUrl;
use sqlx::{AnyPool, Row as _};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database and the queries on it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

/// A handle's row.
#[derive(Debug, Clone)]
pub struct NameRow {
    /// The account that holds (or last held) it.
    pub account: Vec<u8>,
    /// The latest record, as signed.
    pub record: Vec<u8>,
    /// Its issued time.
    pub issued: i64,
    /// Whether the latest record released the handle.
    pub released: bool,
}

/// What became of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Done.
    Written,
    /// Another account holds the handle.
    Taken,
    /// The stored record is as new or newer.
    Stale,
    /// A held handle that looks the same exists.
    Confusable,
    /// Release of a handle that is not held.
    NotHeld,
}

/// A record to store.
#[derive(Debug)]
pub struct NewRecord<'a> {
    /// Normalised handle.
    pub handle: &'a str,
    /// Its skeleton.
    pub skeleton: &'a str,
    /// The account.
    pub account: &'a [u8],
    /// The record bytes.
    pub record: &'a [u8],
    /// Issued time.
    pub issued: i64,
    /// Now (ms).
    pub now_ms: i64,
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let pool =
            service_kit::database::open_pool(url, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await?;
        Ok(Self { pool })
    }

    /// Closes the pool (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The row of `handle`.
    pub async fn get(&self, handle: &str) -> sqlx::Result<Option<NameRow>> {
        let row =
            sqlx::query("SELECT account, record, issued, released FROM names WHERE handle = $1")
                .bind(handle)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(NameRow {
                account: row.try_get(0)?,
                record: row.try_get(1)?,
                issued: row.try_get(2)?,
                released: row.try_get::<i64, _>(3)? != 0,
            })
        })
        .transpose()
    }

    /// The account-log events held for `account`.
    pub async fn account_events(&self, account: &[u8]) -> sqlx::Result<Vec<Vec<u8>>> {
        let rows = sqlx::query("SELECT event FROM account_events WHERE account = $1")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| row.try_get(0)).collect()
    }

    /// Remembers account-log events (ignoring those held already).
    pub async fn add_account_events(
        &self,
        account: &[u8],
        events: &[(Vec<u8>, Vec<u8>)],
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for (id, event) in events {
            sqlx::query(
                "INSERT INTO account_events (account, id, event) VALUES ($1, $2, $3) \
                 ON CONFLICT (account, id) DO NOTHING",
            )
            .bind(account)
            .bind(id.as_slice())
            .bind(event.as_slice())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Binds a handle: inserts it, or replaces the row when the record is
    /// newer and the handle is released or the same account's.
    pub async fn bind(&self, new: &NewRecord<'_>) -> sqlx::Result<WriteOutcome> {
        let done = sqlx::query(
            "INSERT INTO names (handle, skeleton, account, record, issued, released, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, 0, $6) \
             ON CONFLICT (handle) DO UPDATE SET account = excluded.account, \
               record = excluded.record, issued = excluded.issued, released = 0, \
               updated_ms = excluded.updated_ms \
             WHERE names.issued < excluded.issued \
               AND (names.account = excluded.account OR names.released = 1)",
        )
        .bind(new.handle)
        .bind(new.skeleton)
        .bind(new.account)
        .bind(new.record)
        .bind(new.issued)
        .bind(new.now_ms)
        .execute(&self.pool)
        .await;
        match done {
            Ok(done) if done.rows_affected() == 1 => Ok(WriteOutcome::Written),
            Ok(_) => self.why_not(new).await,
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                Ok(WriteOutcome::Confusable)
            }
            Err(err) => Err(err),
        }
    }

    /// Releases a handle the account holds, if the record is newer.
    pub async fn release(&self, new: &NewRecord<'_>) -> sqlx::Result<WriteOutcome> {
        let done = sqlx::query(
            "UPDATE names SET record = $1, issued = $2, released = 1, updated_ms = $3 \
             WHERE handle = $4 AND account = $5 AND released = 0 AND issued < $2",
        )
        .bind(new.record)
        .bind(new.issued)
        .bind(new.now_ms)
        .bind(new.handle)
        .bind(new.account)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(WriteOutcome::Written);
        }
        match self.get(new.handle).await? {
            None => Ok(WriteOutcome::NotHeld),
            Some(row) if row.released => Ok(WriteOutcome::NotHeld),
            Some(row) if row.account != new.account => Ok(WriteOutcome::Taken),
            Some(_) => Ok(WriteOutcome::Stale),
        }
    }

    async fn why_not(&self, new: &NewRecord<'_>) -> sqlx::Result<WriteOutcome> {
        Ok(match self.get(new.handle).await? {
            Some(row) if !row.released && row.account != new.account => WriteOutcome::Taken,
            // Lost a race to a newer record, or this one is old.
            _ => WriteOutcome::Stale,
        })
    }
}
