//! The `contact_requests` table: at most one request per account (the
//! newest replaces the last), and at most a given number in all — a
//! flood of strangers' requests evicts the oldest, never grows the store.

use super::{Store, StoreError};
use crate::id::{AccountId, DeviceId};

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
        let evicted = self.write("keeping a request", 3, |tx| {
            tx.prepare_cached("DELETE FROM contact_requests WHERE account = ? OR device = ?")?
                .execute([account.as_bytes().as_slice(), device.as_bytes().as_slice()])?;
            tx.prepare_cached(
                "INSERT INTO contact_requests (account, device, request, received) VALUES (?, ?, ?, ?)",
            )?
            .execute(rusqlite::params![
                account.as_bytes().as_slice(),
                device.as_bytes().as_slice(),
                request,
                received
            ])?;
            tx.prepare_cached(
                "DELETE FROM contact_requests WHERE seq IN (
                     SELECT seq FROM contact_requests ORDER BY seq
                     LIMIT max(0, (SELECT count(*) FROM contact_requests) - ?))",
            )?
            .execute([i64::try_from(max_total).unwrap_or(i64::MAX)])
        })?;
        Ok(evicted as u64)
    }

    /// How many requests are kept.
    pub async fn request_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.read("counting the requests", |c| {
            c.prepare_cached("SELECT count(*) FROM contact_requests")?
                .query_row([], |r| r.get(0))
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The requests kept, newest first.
    pub async fn requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        self.read("reading the requests", |c| {
            c.prepare_cached(
                "SELECT account, device, request, received FROM contact_requests ORDER BY seq DESC",
            )?
            .query_map([], |r| {
                let account: Vec<u8> = r.get("account")?;
                let device: Vec<u8> = r.get("device")?;
                Ok(RequestRow {
                    account: AccountId::from_bytes(
                        account
                            .try_into()
                            .map_err(|_| super::bad_value("account"))?,
                    ),
                    device: DeviceId::from_bytes(
                        device.try_into().map_err(|_| super::bad_value("device"))?,
                    ),
                    request: r.get("request")?,
                    received: r.get("received")?,
                })
            })?
            .collect()
        })
    }

    /// Forgets `account`'s request; whether there was one.
    pub async fn remove_request(&self, account: AccountId) -> Result<bool, StoreError> {
        let n = self.write("forgetting a request", 1, |tx| {
            tx.prepare_cached("DELETE FROM contact_requests WHERE account = ?")?
                .execute([account.as_bytes().as_slice()])
        })?;
        Ok(n > 0)
    }
}
