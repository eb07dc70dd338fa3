//! Where `kith-mailboxd` keeps its state: SQLite or PostgreSQL through
//! sqlx's `Any` driver, one set of queries for both.
//!
//! Every quota is kept as a counter beside what it counts (`mailboxes` and
//! `tokens`), changed in the same transaction as the deposits themselves, so
//! a check never scans the deposits and several server instances sharing one
//! PostgreSQL cannot together exceed a quota. Challenges live here too, for
//! the same reason: any instance may see the answer to another's challenge,
//! and `DELETE … ` decides atomically which request used it.
//!
//! Not here: what a request may do (`service.rs`) or HTTP (`http.rs`).

use service_kit::DatabaseUrl;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row as _};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database and the queries on it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    sqlite: bool,
}

/// What became of a deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepositOutcome {
    /// Kept.
    Stored,
    /// The token is not one the mailbox issued (or the mailbox is gone).
    UnknownToken,
    /// This sender already has its share of the mailbox.
    SenderQuota,
    /// The mailbox is full.
    MailboxQuota,
}

/// A deposit as its owner fetches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeposit {
    /// Server-chosen random id.
    pub id: Vec<u8>,
    /// The sealed envelope, as deposited.
    pub body: Vec<u8>,
    /// When it will be purged (ms since the epoch).
    pub expires_ms: i64,
    /// When it was stored (with the id, the paging cursor).
    pub created_ms: i64,
}

/// A new deposit.
#[derive(Debug)]
pub struct NewDeposit<'a> {
    /// The mailbox it goes to.
    pub mailbox: &'a [u8],
    /// The depositor's token hash.
    pub token_hash: &'a [u8],
    /// Random id.
    pub id: &'a [u8],
    /// The sealed envelope.
    pub body: &'a [u8],
    /// Now (ms).
    pub now_ms: i64,
    /// When to purge it (ms).
    pub expires_ms: i64,
}

/// Quota bounds for [`Store::deposit_many`].
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    /// Most deposits per mailbox.
    pub mailbox_deposits: i64,
    /// Most bytes per mailbox.
    pub mailbox_bytes: i64,
    /// Most deposits per token.
    pub sender_deposits: i64,
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub async fn open(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let sqlite = matches!(url, DatabaseUrl::Sqlite(_));
        let pool =
            service_kit::database::open_pool(url, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await?;
        Ok(Self { pool, sqlite })
    }

    /// Whether this is SQLite (one writer at a time).
    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// Closes the pool (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the mailbox if it is new; `true` if it was.
    pub async fn register(&self, mailbox: &[u8], now_ms: i64) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO mailboxes (id, created_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(mailbox)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the mailbox exists.
    pub async fn exists(&self, mailbox: &[u8]) -> sqlx::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM mailboxes WHERE id = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Removes the mailbox and everything in it.
    pub async fn remove(&self, mailbox: &[u8]) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "DELETE FROM deposits WHERE mailbox = $1",
            "DELETE FROM tokens WHERE mailbox = $1",
            "DELETE FROM prekeys WHERE mailbox = $1",
            "DELETE FROM challenges WHERE mailbox = $1",
            "DELETE FROM mailboxes WHERE id = $1",
        ] {
            sqlx::query(table).bind(mailbox).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Records a challenge issued for `mailbox`.
    pub async fn add_challenge(
        &self,
        mailbox: &[u8],
        nonce: &[u8],
        expires_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO challenges (nonce, mailbox, expires_ms) VALUES ($1, $2, $3)")
            .bind(nonce)
            .bind(mailbox)
            .bind(expires_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Uses up a challenge; `false` if it was never issued for this mailbox,
    /// was used already or has expired.
    pub async fn take_challenge(
        &self,
        mailbox: &[u8],
        nonce: &[u8],
        now_ms: i64,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "DELETE FROM challenges WHERE nonce = $1 AND mailbox = $2 AND expires_ms > $3",
        )
        .bind(nonce)
        .bind(mailbox)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds and removes token hashes (with `replace`, every token not in
    /// `add` is removed); returns how many the mailbox then has, or `None`
    /// (and changes nothing) if that would be over `max`. A removed token's
    /// deposits go with it, so its counter can never come back wrong.
    pub async fn update_tokens(
        &self,
        mailbox: &[u8],
        add: &[[u8; 32]],
        remove: &[[u8; 32]],
        replace: bool,
        max: i64,
    ) -> sqlx::Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        // Lock order everywhere: the mailbox row, then its token rows.
        lock_mailbox(&mut tx, mailbox).await?;
        let mut gone_tokens: Vec<Vec<u8>> = remove.iter().map(|h| h.to_vec()).collect();
        if replace {
            let rows = sqlx::query("SELECT token_hash FROM tokens WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let hash: Vec<u8> = row.try_get(0)?;
                if !add.iter().any(|a| a[..] == hash[..]) {
                    gone_tokens.push(hash);
                }
            }
        }
        gone_tokens.sort();
        gone_tokens.dedup();
        let mut gone = Vec::new();
        for hash in &gone_tokens {
            let rows = sqlx::query(
                "DELETE FROM deposits WHERE mailbox = $1 AND token_hash = $2 \
                 RETURNING mailbox, token_hash, size",
            )
            .bind(mailbox)
            .bind(&hash[..])
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                gone.push(gone_row(row)?);
            }
            sqlx::query("DELETE FROM tokens WHERE mailbox = $1 AND token_hash = $2")
                .bind(mailbox)
                .bind(&hash[..])
                .execute(&mut *tx)
                .await?;
        }
        release(&mut tx, &gone).await?;
        let mut add = add.to_vec();
        add.sort();
        for hash in &add {
            sqlx::query(
                "INSERT INTO tokens (mailbox, token_hash) VALUES ($1, $2) \
                 ON CONFLICT (mailbox, token_hash) DO NOTHING",
            )
            .bind(mailbox)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM tokens WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if count > max {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(count))
    }

    /// Whether `token_hash` was issued by `mailbox`.
    pub async fn token_known(&self, mailbox: &[u8], token_hash: &[u8]) -> sqlx::Result<bool> {
        let row = sqlx::query("SELECT 1 FROM tokens WHERE mailbox = $1 AND token_hash = $2")
            .bind(mailbox)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Sets one device's prekey bundle; `false` (and nothing changed) if the
    /// mailbox already has `max_slots` other slots.
    pub async fn put_prekeys(
        &self,
        mailbox: &[u8],
        slot: &str,
        bundle: &[u8],
        now_ms: i64,
        max_slots: i64,
    ) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO prekeys (mailbox, slot, bundle, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox, slot) DO UPDATE SET bundle = excluded.bundle, \
             updated_ms = excluded.updated_ms",
        )
        .bind(mailbox)
        .bind(slot)
        .bind(bundle)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM prekeys WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if count > max_slots {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every prekey bundle of the mailbox.
    pub async fn prekeys(&self, mailbox: &[u8]) -> sqlx::Result<Vec<Vec<u8>>> {
        let rows = sqlx::query("SELECT bundle FROM prekeys WHERE mailbox = $1 ORDER BY slot")
            .bind(mailbox)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| row.try_get(0)).collect()
    }

    /// Stores a deposit if the token is known and no quota is exceeded.
    #[cfg(test)]
    pub async fn deposit(
        &self,
        new: &NewDeposit<'_>,
        quotas: Quotas,
    ) -> sqlx::Result<DepositOutcome> {
        let mut outcomes = self.deposit_many(std::slice::from_ref(new), quotas).await?;
        Ok(outcomes.pop().unwrap_or(DepositOutcome::UnknownToken))
    }

    /// Stores several deposits in one transaction (group commit), each
    /// checked as if alone, in order: the outcome of each.
    pub async fn deposit_many(
        &self,
        deposits: &[NewDeposit<'_>],
        quotas: Quotas,
    ) -> sqlx::Result<Vec<DepositOutcome>> {
        // In (mailbox, token) order, so concurrent batches (several
        // instances on one PostgreSQL) lock rows in the same order.
        let mut order: Vec<usize> = (0..deposits.len()).collect();
        order.sort_by_key(|i| (deposits[*i].mailbox, deposits[*i].token_hash));
        let mut tx = self.pool.begin().await?;
        let mut outcomes = vec![DepositOutcome::UnknownToken; deposits.len()];
        for i in order {
            outcomes[i] = deposit_one(&mut tx, &deposits[i], quotas).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The oldest unexpired deposits after `after` (a deposit's
    /// `(created_ms, id)`, the cursor of the previous page), at most
    /// `max_count` and, past the first, at most `max_bytes` in all; and
    /// whether more remain.
    pub async fn fetch(
        &self,
        mailbox: &[u8],
        now_ms: i64,
        after: Option<(i64, &[u8])>,
        max_count: i64,
        max_bytes: usize,
    ) -> sqlx::Result<(Vec<StoredDeposit>, bool)> {
        let (after_ms, after_id) = after.unwrap_or((i64::MIN, &[]));
        let rows = sqlx::query(
            "SELECT id, body, expires_ms, created_ms FROM deposits \
             WHERE mailbox = $1 AND expires_ms > $2 \
             AND (created_ms > $3 OR (created_ms = $3 AND id > $4)) \
             ORDER BY created_ms, id LIMIT $5",
        )
        .bind(mailbox)
        .bind(now_ms)
        .bind(after_ms)
        .bind(after_id)
        .bind(max_count + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        for row in &rows {
            let deposit = stored_deposit(row)?;
            bytes += deposit.body.len();
            if out.len() as i64 == max_count || (!out.is_empty() && bytes > max_bytes) {
                more = true;
                break;
            }
            out.push(deposit);
        }
        Ok((out, more))
    }

    /// Deletes the mailbox's unexpired deposits with these ids; returns how
    /// many there were. (Expired ones are left to the purge.)
    pub async fn delete_deposits(
        &self,
        mailbox: &[u8],
        ids: &[Vec<u8>],
        now_ms: i64,
    ) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin().await?;
        lock_mailbox(&mut tx, mailbox).await?;
        let mut gone = Vec::new();
        for id in ids {
            let row = sqlx::query(
                "DELETE FROM deposits WHERE mailbox = $1 AND id = $2 AND expires_ms > $3 \
                 RETURNING mailbox, token_hash, size",
            )
            .bind(mailbox)
            .bind(&id[..])
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                gone.push(gone_row(&row)?);
            }
        }
        release(&mut tx, &gone).await?;
        tx.commit().await?;
        Ok(gone.len() as u64)
    }

    /// Deletes every expired deposit and challenge; returns how many deposits.
    pub async fn purge(&self, now_ms: i64) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "DELETE FROM deposits WHERE expires_ms <= $1 RETURNING mailbox, token_hash, size",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let gone = rows
            .iter()
            .map(gone_row)
            .collect::<sqlx::Result<Vec<_>>>()?;
        release(&mut tx, &gone).await?;
        sqlx::query("DELETE FROM challenges WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone.len() as u64)
    }
}

/// One deposit inside a transaction: the sender's counter, the mailbox's
/// counters, the row; a refusal changes nothing (the counter updates are
/// conditional, and the sender's is undone if the mailbox is full).
async fn deposit_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    new: &NewDeposit<'_>,
    quotas: Quotas,
) -> sqlx::Result<DepositOutcome> {
    let size = i64::try_from(new.body.len()).unwrap_or(i64::MAX);
    // Lock order everywhere: the mailbox row, then its token rows.
    let room = sqlx::query(
        "UPDATE mailboxes SET stored_count = stored_count + 1, stored_bytes = stored_bytes + $2 \
         WHERE id = $1 AND stored_count < $3 AND stored_bytes + $2 <= $4",
    )
    .bind(new.mailbox)
    .bind(size)
    .bind(quotas.mailbox_deposits)
    .bind(quotas.mailbox_bytes)
    .execute(&mut **tx)
    .await?;
    let counted = sqlx::query(
        "UPDATE tokens SET stored_count = stored_count + 1 \
         WHERE mailbox = $1 AND token_hash = $2 AND stored_count < $3",
    )
    .bind(new.mailbox)
    .bind(new.token_hash)
    .bind(quotas.sender_deposits)
    .execute(&mut **tx)
    .await?;
    let outcome = if counted.rows_affected() == 0 {
        let known = sqlx::query("SELECT 1 FROM tokens WHERE mailbox = $1 AND token_hash = $2")
            .bind(new.mailbox)
            .bind(new.token_hash)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if known {
            DepositOutcome::SenderQuota
        } else {
            DepositOutcome::UnknownToken
        }
    } else if room.rows_affected() == 0 {
        DepositOutcome::MailboxQuota
    } else {
        DepositOutcome::Stored
    };
    if outcome != DepositOutcome::Stored {
        // Undo whichever counter moved.
        if room.rows_affected() == 1 {
            sqlx::query(
                "UPDATE mailboxes SET stored_count = stored_count - 1, \
                 stored_bytes = stored_bytes - $2 WHERE id = $1",
            )
            .bind(new.mailbox)
            .bind(size)
            .execute(&mut **tx)
            .await?;
        }
        if counted.rows_affected() == 1 {
            sqlx::query(
                "UPDATE tokens SET stored_count = stored_count - 1 \
                 WHERE mailbox = $1 AND token_hash = $2",
            )
            .bind(new.mailbox)
            .bind(new.token_hash)
            .execute(&mut **tx)
            .await?;
        }
        return Ok(outcome);
    }
    sqlx::query(
        "INSERT INTO deposits (id, mailbox, token_hash, body, size, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new.id)
    .bind(new.mailbox)
    .bind(new.token_hash)
    .bind(new.body)
    .bind(size)
    .bind(new.now_ms)
    .bind(new.expires_ms)
    .execute(&mut **tx)
    .await?;
    Ok(DepositOutcome::Stored)
}

/// Takes the mailbox row's lock first (a no-op update), so every
/// transaction touching a mailbox locks in the same order.
async fn lock_mailbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    mailbox: &[u8],
) -> sqlx::Result<()> {
    sqlx::query("UPDATE mailboxes SET stored_count = stored_count WHERE id = $1")
        .bind(mailbox)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `(mailbox, token hash, size)` of a deleted deposit.
type Gone = (Vec<u8>, Vec<u8>, i64);

fn gone_row(row: &AnyRow) -> sqlx::Result<Gone> {
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

fn stored_deposit(row: &AnyRow) -> sqlx::Result<StoredDeposit> {
    Ok(StoredDeposit {
        id: row.try_get(0)?,
        body: row.try_get(1)?,
        expires_ms: row.try_get(2)?,
        created_ms: row.try_get(3)?,
    })
}

/// Gives deleted deposits' space back to their mailboxes and senders, in
/// lock order (each mailbox, then its tokens).
async fn release(tx: &mut sqlx::Transaction<'_, sqlx::Any>, gone: &[Gone]) -> sqlx::Result<()> {
    use std::collections::BTreeMap;
    /// Per mailbox: deposits, bytes, and deposits per token.
    type Freed<'a> = (i64, i64, BTreeMap<&'a [u8], i64>);
    let mut per_mailbox: BTreeMap<&[u8], Freed<'_>> = BTreeMap::new();
    for (mailbox, token, size) in gone {
        let entry = per_mailbox.entry(mailbox).or_default();
        entry.0 += 1;
        entry.1 += size;
        *entry.2.entry(token).or_default() += 1;
    }
    for (mailbox, (count, bytes, tokens)) in per_mailbox {
        sqlx::query(
            "UPDATE mailboxes SET stored_count = stored_count - $2, stored_bytes = stored_bytes - $3 \
             WHERE id = $1",
        )
        .bind(mailbox)
        .bind(count)
        .bind(bytes)
        .execute(&mut **tx)
        .await?;
        for (token, n) in tokens {
            sqlx::query(
                "UPDATE tokens SET stored_count = stored_count - $3 \
                 WHERE mailbox = $1 AND token_hash = $2",
            )
            .bind(mailbox)
            .bind(token)
            .bind(n)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTAS: Quotas = Quotas {
        mailbox_deposits: 10,
        mailbox_bytes: 1000,
        sender_deposits: 2,
    };

    #[tokio::test]
    async fn purge_deletes_expired_deposits_and_frees_their_quota() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&DatabaseUrl::Sqlite(dir.path().join("m.db")))
            .await
            .expect("open");
        let (mailbox, token) = ([1u8; 32], [2u8; 32]);
        assert!(store.register(&mailbox, 0).await.expect("register"));
        store
            .update_tokens(&mailbox, &[token], &[], false, 10)
            .await
            .expect("tokens");
        let ids = [[1u8], [2], [3]];
        let deposit = |i: usize, expires_ms| NewDeposit {
            mailbox: &mailbox,
            token_hash: &token,
            id: &ids[i - 1],
            body: b"sealed",
            now_ms: 0,
            expires_ms,
        };
        assert_eq!(
            store
                .deposit(&deposit(1, 100), QUOTAS)
                .await
                .expect("deposit"),
            DepositOutcome::Stored
        );
        assert_eq!(
            store
                .deposit(&deposit(2, 5000), QUOTAS)
                .await
                .expect("deposit"),
            DepositOutcome::Stored
        );
        assert_eq!(
            store
                .deposit(&deposit(3, 5000), QUOTAS)
                .await
                .expect("deposit"),
            DepositOutcome::SenderQuota
        );
        assert_eq!(store.purge(200).await.expect("purge"), 1);
        assert_eq!(store.purge(200).await.expect("purge"), 0);
        assert_eq!(
            store
                .deposit(&deposit(3, 5000), QUOTAS)
                .await
                .expect("deposit"),
            DepositOutcome::Stored
        );
        let (held, more) = store
            .fetch(&mailbox, 200, None, 10, 1 << 20)
            .await
            .expect("fetch");
        assert!(!more);
        let ids: Vec<_> = held.iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids, vec![vec![2], vec![3]]);
        // Counters went back to what the table holds.
        let row = sqlx::query("SELECT stored_count, stored_bytes FROM mailboxes")
            .fetch_one(&store.pool)
            .await
            .expect("counters");
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!((count, bytes), (2, 12));
    }
}
