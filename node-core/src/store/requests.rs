//! The `contact_requests` table: at most one request per account (the
//! newest replaces the last), and at most a given number in all — a
//! flood of strangers' requests evicts the oldest, never grows the store.

use super::{Store, StoreError, db};
use crate::id::{AccountId, DeviceId};
use sqlx::Row;

/// A request as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// The requesting account.
    pub account: AccountId,
    /// The device that sent it (its link proved it).
    pub device: DeviceId,
    /// The request's bytes (`requests::ContactRequest::encode`).
    pub request: Vec<u8>,
    /// When it came (ms since the epoch, this device's clock).
    pub received: i64,
}

impl Store {
    /// Keeps `request` from `account`'s `device` (replacing one the
    /// account or the device sent before — one device cannot keep
    /// requests for many accounts it made; it counts as the newest), then
    /// drops the
    /// oldest requests beyond `max_total`, in one transaction. Gives how
    /// many were dropped.
    pub async fn put_request(
        &self,
        (account, device): (AccountId, DeviceId),
        request: &[u8],
        received: i64,
        max_total: usize,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db("keeping a request"))?;
        sqlx::query("DELETE FROM contact_requests WHERE account = ? OR device = ?")
            .bind(account.as_bytes().as_slice())
            .bind(device.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db("keeping a request"))?;
        sqlx::query(
            "INSERT INTO contact_requests (account, device, request, received) VALUES (?, ?, ?, ?)",
        )
        .bind(account.as_bytes().as_slice())
        .bind(device.as_bytes().as_slice())
        .bind(request)
        .bind(received)
        .execute(&mut *tx)
        .await
        .map_err(db("keeping a request"))?;
        // The oldest beyond the bound, by arrival (the rowid: no sort).
        let evicted = sqlx::query(
            "DELETE FROM contact_requests WHERE seq IN (
                 SELECT seq FROM contact_requests ORDER BY seq
                 LIMIT max(0, (SELECT count(*) FROM contact_requests) - ?))",
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

    /// How many requests are kept.
    pub async fn request_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_requests")
            .fetch_one(&self.pool)
            .await
            .map_err(db("counting the requests"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The requests kept, newest first.
    pub async fn requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, device, request, received FROM contact_requests ORDER BY seq DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the requests"))?;
        rows.iter()
            .map(|r| {
                let damaged = |what: &str| StoreError::Db {
                    what: "reading the requests",
                    source: sqlx::Error::Decode(format!("bad {what}").into()),
                };
                let account: Vec<u8> = r.get("account");
                let device: Vec<u8> = r.get("device");
                Ok(RequestRow {
                    account: AccountId::from_bytes(
                        account.try_into().map_err(|_| damaged("account"))?,
                    ),
                    device: DeviceId::from_bytes(device.try_into().map_err(|_| damaged("device"))?),
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
