//! Where `kith-pushd` keeps registrations: SQLite or PostgreSQL through
//! sqlx's `Any` driver, one set of queries for both. A registration is
//! replaced only by a newer one of the same device (one conditional
//! statement, so instances sharing PostgreSQL agree); its handle stays.
//!
//! Not here: who may do what (`service.rs`).

use node_core::DeviceId;
use node_core::push::PushHandle;
use service_kit::DatabaseUrl;
use sqlx::{AnyPool, Row as _};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Where a wake-up goes.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// An APNs device token (hex).
    Apns {
        /// The token.
        token: String,
    },
    /// An FCM registration token.
    Fcm {
        /// The token.
        token: String,
    },
    /// A WebPush / UnifiedPush subscription.
    WebPush {
        /// The push service URL.
        endpoint: String,
        /// The subscriber's P-256 key, base64url.
        p256dh: String,
        /// The subscriber's auth secret, base64url.
        auth: String,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and endpoints are capabilities: never in logs.
        f.write_str(match self {
            Target::Apns { .. } => "Target::Apns(..)",
            Target::Fcm { .. } => "Target::Fcm(..)",
            Target::WebPush { .. } => "Target::WebPush(..)",
        })
    }
}

impl Target {
    /// The platform's name in the API.
    pub fn platform(&self) -> &'static str {
        match self {
            Target::Apns { .. } => "apns",
            Target::Fcm { .. } => "fcm",
            Target::WebPush { .. } => "webpush",
        }
    }
}

/// A stored registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The registered device.
    pub device: DeviceId,
    /// Where to push.
    pub target: Target,
    /// Devices it knows (its contacts' devices).
    pub senders: Vec<DeviceId>,
}

/// What became of an unregistration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistered {
    /// Done.
    Done,
    /// There is no registration (or it was removed already).
    NotRegistered,
    /// The registration held is as new or newer than the request.
    Stale,
}

/// The database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
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

    /// Registers or updates `device` if `issued` is newer than what is
    /// stored; returns its handle, or `None` if a newer registration is held.
    pub async fn register(
        &self,
        registration: &Registration,
        issued: i64,
        now_ms: i64,
    ) -> sqlx::Result<Option<PushHandle>> {
        let (token, p256dh, auth) = match &registration.target {
            Target::Apns { token } | Target::Fcm { token } => (token.as_str(), "", ""),
            Target::WebPush {
                endpoint,
                p256dh,
                auth,
            } => (endpoint.as_str(), p256dh.as_str(), auth.as_str()),
        };
        let senders: Vec<u8> = registration
            .senders
            .iter()
            .flat_map(|d| d.as_bytes().iter().copied())
            .collect();
        let fresh = PushHandle::generate();
        let done = sqlx::query(
            "INSERT INTO registrations \
             (device, handle, platform, token, p256dh, auth, senders, issued, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (device) DO UPDATE SET platform = excluded.platform, \
               token = excluded.token, p256dh = excluded.p256dh, auth = excluded.auth, \
               senders = excluded.senders, issued = excluded.issued, \
               updated_ms = excluded.updated_ms \
             WHERE registrations.issued < excluded.issued",
        )
        .bind(registration.device.as_bytes().as_slice())
        .bind(fresh.as_bytes().as_slice())
        .bind(registration.target.platform())
        .bind(token)
        .bind(p256dh)
        .bind(auth)
        .bind(senders)
        .bind(issued)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT handle FROM registrations WHERE device = $1")
            .bind(registration.device.as_bytes().as_slice())
            .fetch_one(&self.pool)
            .await?;
        let handle: Vec<u8> = row.try_get(0)?;
        Ok(handle.try_into().ok().map(PushHandle::from_bytes))
    }

    /// Turns `device`'s registration into a tombstone (platform `off`,
    /// nothing to push to) if `issued` is newer, so neither the removal nor
    /// an older registration can be replayed afterwards.
    pub async fn unregister(
        &self,
        device: &DeviceId,
        issued: i64,
        now_ms: i64,
    ) -> sqlx::Result<Unregistered> {
        let done = sqlx::query(
            "UPDATE registrations SET platform = 'off', token = '', p256dh = '', auth = '', \
               senders = $1, issued = $2, updated_ms = $3 \
             WHERE device = $4 AND issued < $2 AND platform <> 'off'",
        )
        .bind(Vec::<u8>::new())
        .bind(issued)
        .bind(now_ms)
        .bind(device.as_bytes().as_slice())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Unregistered::Done);
        }
        let row = sqlx::query("SELECT platform FROM registrations WHERE device = $1")
            .bind(device.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) if row.try_get::<String, _>(0)? != "off" => Unregistered::Stale,
            _ => Unregistered::NotRegistered,
        })
    }

    /// Drops the registration behind `handle` if it still points at
    /// `target` (the platform said it is gone; a newer registration of the
    /// device with another token stays).
    pub async fn forget(&self, handle: &PushHandle, target: &Target) -> sqlx::Result<()> {
        let token = match target {
            Target::Apns { token } | Target::Fcm { token } => token,
            Target::WebPush { endpoint, .. } => endpoint,
        };
        sqlx::query(
            "UPDATE registrations SET platform = 'off', token = '', p256dh = '', auth = '' \
             WHERE handle = $1 AND token = $2",
        )
        .bind(handle.as_bytes().as_slice())
        .bind(token.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The registration behind `handle`.
    pub async fn by_handle(&self, handle: &PushHandle) -> sqlx::Result<Option<Registration>> {
        let row = sqlx::query(
            "SELECT device, platform, token, p256dh, auth, senders FROM registrations \
             WHERE handle = $1",
        )
        .bind(handle.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let device: Vec<u8> = row.try_get(0)?;
        let platform: String = row.try_get(1)?;
        let token: String = row.try_get(2)?;
        let p256dh: String = row.try_get(3)?;
        let auth: String = row.try_get(4)?;
        let senders: Vec<u8> = row.try_get(5)?;
        let bad = || sqlx::Error::Protocol("malformed registration row".into());
        let device = DeviceId::from_bytes(device.try_into().map_err(|_| bad())?);
        let target = match platform.as_str() {
            "apns" => Target::Apns { token },
            "fcm" => Target::Fcm { token },
            "webpush" => Target::WebPush {
                endpoint: token,
                p256dh,
                auth,
            },
            // Unregistered, or its token is gone.
            "off" => return Ok(None),
            _ => return Err(bad()),
        };
        let senders = senders
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok().map(DeviceId::from_bytes))
            .collect();
        Ok(Some(Registration {
            device,
            target,
            senders,
        }))
    }
}
