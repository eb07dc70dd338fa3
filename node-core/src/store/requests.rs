//! The `contact_requests` table: at most one request per account (the
//! newest replaces the last), and at most a given number in all — a
//! flood of strangers' requests evicts the oldest, never grows the store.

use super::{Store, StoreError, db};
use crate::id::AccountId;
use sqlx::Row;

/// A request as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// The requesting account.
    pub account: AccountId,
    /// The request's bytes (`requests::ContactRequest::encode`).
    pub request: Vec<u8>,
    /// When it came (ms since the epoch).
    pub received: i64,
}

impl Store {
    /// Keeps `request` from `account` (replacing one it sent before),
    /// then drops the oldest requests beyond `max_total`, in one
    /// transaction. Gives how many were dropped.
    pub async fn put_request(
        &self,
        account: AccountId,
        request: &[u8],
        received: i64,
        max_total: usize,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db("keeping a request"))?;
        sqlx::query(
            "INSERT INTO contact_requests (account, request, received) VALUES (?, ?, ?)
             ON CONFLICT(account) DO UPDATE SET request = excluded.request, received = excluded.received",
        )
        .bind(account.as_bytes().as_slice())
        .bind(request)
        .bind(received)
        .execute(&mut *tx)
        .await
        .map_err(db("keeping a request"))?;
        let evicted = sqlx::query(
            "DELETE FROM contact_requests WHERE account IN (
                 SELECT account FROM contact_requests ORDER BY received DESC, account
                 LIMIT -1 OFFSET ?)",
        )
        .bind(i64::try_from(max_total).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(db("dropping the oldest requests"))?
        .rows_affected();
        tx.commit().await.map_err(db("keeping a request"))?;
        self.durable.wrote();
        Ok(evicted)
    }

    /// The requests kept, newest first.
    pub async fn requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, request, received FROM contact_requests ORDER BY received DESC, account",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the requests"))?;
        rows.iter()
            .map(|r| {
                let account: Vec<u8> = r.get("account");
                Ok(RequestRow {
                    account: AccountId::from_bytes(account.try_into().map_err(|_| {
                        StoreError::Db {
                            what: "reading the requests",
                            source: sqlx::Error::Decode("bad account".into()),
                        }
                    })?),
                    request: r.get("request"),
                    received: r.get("received"),
                })
            })
            .collect()
    }

    /// Forgets `account`'s request; whether there was one.
    pub async fn remove_request(&self, account: AccountId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM contact_requests WHERE account = ?")
            .bind(account.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(db("forgetting a request"))?;
        self.durable.wrote();
        Ok(done.rows_affected() > 0)
    }
}
