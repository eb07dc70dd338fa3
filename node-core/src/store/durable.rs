//! Group commit: when committed writes are on the disk.
//!
//! The database commits with `synchronous=NORMAL` in WAL mode: a commit
//! writes its pages to the WAL file and returns without waiting for the
//! disk, so it survives the process being killed (the pages are in the
//! kernel) but not yet the machine stopping. One thread per store then
//! makes them durable: it `fdatasync`s the WAL file once for every commit
//! made since its last round, however many there were (group commit).
//! Checkpoints, which copy the WAL into the database file, sync both files
//! themselves in this mode.
//!
//! Rounds are numbered; the number of the last finished round is the
//! *durable watermark*. A caller that needs its writes on the disk (an
//! acknowledgement to a peer, a reply to `kith send`, deleting collected
//! mail from a mailbox, announcing an own event) takes a [`Ticket`] after
//! its commit returned and waits for the watermark to pass it. A round
//! that began before the commit may not cover it, so a ticket names the
//! next round to begin.

use super::StoreError;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// A round of syncing that covers writes committed before it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a ticket does nothing until it is waited for"]
pub struct Ticket(u64);

/// Where the durable watermark stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    /// The last round finished.
    done: u64,
    /// A sync failed: nothing written since is known to be on the disk,
    /// and the store takes no more promises (fsync errors are not retried:
    /// the kernel may have dropped the pages it could not write).
    failed: bool,
}

#[derive(Debug, Default)]
struct Rounds {
    /// The highest round a ticket asks for.
    requested: u64,
    /// The last round begun.
    started: u64,
}

#[derive(Debug)]
struct Shared {
    /// Writes committed so far (counted after each commit returned).
    writes: AtomicU64,
    /// Writes a finished round covers (those counted when it began).
    synced_writes: AtomicU64,
    rounds: Mutex<Rounds>,
    wake: Condvar,
    mark: watch::Sender<Mark>,
    /// The database file; its WAL is this path with `-wal`.
    database: PathBuf,
    /// Tests only: each round waits this long before syncing, to widen the
    /// window between a commit and its durability.
    delay_ms: AtomicU64,
    /// Round time histogram (see [`Durability::round_times`]).
    round_us: [AtomicU64; ROUND_BUCKETS],
}

/// Histogram buckets of round times: below 2^i * 50 µs, the last open.
const ROUND_BUCKETS: usize = 10;

/// How long a round that could not open its files waits before the next.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// How long the syncing thread waits for work before checking whether its
/// store is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The store's group-commit syncer: counts commits, hands out tickets and
/// reports the durable watermark. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Durability(Arc<Shared>);

impl Durability {
    /// Starts the syncing thread for the database at `database`.
    pub(super) fn start(database: PathBuf) -> Result<Self, StoreError> {
        let (mark, _) = watch::channel(Mark {
            done: 0,
            failed: false,
        });
        let shared = Arc::new(Shared {
            writes: AtomicU64::new(0),
            synced_writes: AtomicU64::new(0),
            rounds: Mutex::new(Rounds::default()),
            wake: Condvar::new(),
            mark,
            database,
            delay_ms: AtomicU64::new(0),
            round_us: Default::default(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("kith-store-sync".into())
            .spawn(move || run(weak))
            .map_err(|e| StoreError::Sync(format!("starting the sync thread: {e}")))?;
        Ok(Self(shared))
    }

    /// Counts a commit that returned (called by the store after each
    /// write).
    pub(super) fn wrote(&self) {
        self.0.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// Writes committed so far (compare two readings to learn whether
    /// anything was written in between).
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::SeqCst)
    }

    /// A ticket for every write committed so far, or `None` if a finished
    /// round covers them all already. Wakes the syncing thread.
    pub fn ticket(&self) -> Option<Ticket> {
        let writes = self.0.writes.load(Ordering::SeqCst);
        if writes == self.0.synced_writes.load(Ordering::SeqCst) {
            return None;
        }
        let mut rounds = lock(&self.0.rounds);
        let round = rounds.started + 1;
        rounds.requested = rounds.requested.max(round);
        drop(rounds);
        self.0.wake.notify_one();
        Some(Ticket(round))
    }

    /// Waits until the watermark passes `ticket`.
    pub async fn wait(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut rx = self.0.mark.subscribe();
        let mark = *rx
            .wait_for(|m| m.failed || m.done >= ticket.0)
            .await
            .map_err(|_| StoreError::Sync("the store is closed".into()))?;
        if mark.done >= ticket.0 {
            Ok(())
        } else {
            Err(StoreError::Sync(
                "the disk did not confirm a write; stop and check it".into(),
            ))
        }
    }

    /// Waits until every write committed so far is on the disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self.ticket() {
            Some(t) => self.wait(t).await,
            None => self.failed_check(),
        }
    }

    /// Whether `ticket` is durable already (never waits).
    pub fn passed(&self, ticket: Ticket) -> bool {
        self.0.mark.borrow().done >= ticket.0
    }

    fn failed_check(&self) -> Result<(), StoreError> {
        if self.0.mark.borrow().failed {
            return Err(StoreError::Sync(
                "the disk did not confirm a write; stop and check it".into(),
            ));
        }
        Ok(())
    }

    /// Tests only: delay every round by `ms` milliseconds.
    #[doc(hidden)]
    pub fn set_delay_ms(&self, ms: u64) {
        self.0.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// How long rounds took: (upper bound in µs, rounds) per bucket, the
    /// last bucket's bound `None` (open).
    pub fn round_times(&self) -> Vec<(Option<u64>, u64)> {
        self.0
            .round_us
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let bound = (i + 1 < ROUND_BUCKETS).then(|| 50u64 << i);
                (bound, n.load(Ordering::Relaxed))
            })
            .collect()
    }

    /// Rounds finished so far.
    pub fn rounds(&self) -> u64 {
        self.0.mark.borrow().done
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The syncing thread: ends within [`IDLE_CHECK`] of the last handle being
/// dropped.
fn run(weak: Weak<Shared>) {
    let mut wal = WalFile::default();
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let round = {
            let mut rounds = lock(&shared.rounds);
            if rounds.requested <= shared.mark.borrow().done {
                let (r, _) = shared
                    .wake
                    .wait_timeout(rounds, IDLE_CHECK)
                    .unwrap_or_else(|p| p.into_inner());
                rounds = r;
            }
            if rounds.requested <= shared.mark.borrow().done {
                continue;
            }
            rounds.started += 1;
            rounds.started
        };
        let delay = shared.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let writes = shared.writes.load(Ordering::SeqCst);
        // Measuring only: no protocol decision reads this clock.
        #[allow(clippy::disallowed_methods)]
        let began = std::time::Instant::now();
        let result = wal.sync(&shared.database);
        let us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        let bucket = (0..ROUND_BUCKETS - 1)
            .find(|i| us < 50u64 << i)
            .unwrap_or(ROUND_BUCKETS - 1);
        shared.round_us[bucket].fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                shared.synced_writes.fetch_max(writes, Ordering::SeqCst);
                shared.mark.send_modify(|m| m.done = m.done.max(round));
            }
            Err(SyncFailure::Retry(e)) => {
                // The round did not happen: its waiters wait for the next.
                tracing::warn!(error = %e, "syncing the store to disk: trying again");
                let mut rounds = lock(&shared.rounds);
                rounds.requested = rounds.requested.max(round + 1);
                drop(rounds);
                std::thread::sleep(RETRY_AFTER);
            }
            Err(SyncFailure::Fatal(e)) => {
                tracing::error!(error = %e, "syncing the store to disk failed");
                shared.mark.send_modify(|m| m.failed = true);
                return;
            }
        }
    }
}

/// Why a round could not make writes durable.
enum SyncFailure {
    /// Could not get at the file (e.g. out of file descriptors): try again.
    Retry(std::io::Error),
    /// `fdatasync` failed: the kernel may have dropped the pages it could
    /// not write, so nothing written since can be promised.
    Fatal(std::io::Error),
}

/// The WAL file, kept open across rounds so that a write-back error is
/// reported to this descriptor (a descriptor opened later would not see an
/// error someone else already saw), and opened again when the path names
/// a new file.
#[derive(Default)]
struct WalFile {
    open: Option<(std::fs::File, u64)>,
}

impl WalFile {
    /// Makes the WAL's committed pages durable: `fdatasync` on the WAL
    /// file, and on the folder too when the WAL file is new (its name must
    /// survive). No WAL file means the last connection checkpointed it into
    /// the database and synced that; the database is synced again.
    fn sync(&mut self, database: &std::path::Path) -> Result<(), SyncFailure> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let current = match std::fs::metadata(&wal) {
            Ok(m) => Some(m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(SyncFailure::Retry(e)),
        };
        let Some(inode) = current else {
            self.open = None;
            return match std::fs::File::open(database) {
                Ok(f) => f.sync_data().map_err(SyncFailure::Fatal),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(SyncFailure::Retry(e)),
            };
        };
        if self.open.as_ref().is_none_or(|(_, i)| *i != inode) {
            let f = std::fs::File::open(&wal).map_err(SyncFailure::Retry)?;
            let opened = f.metadata().map_err(SyncFailure::Retry)?.ino();
            sync_dir(database).map_err(SyncFailure::Fatal)?;
            self.open = Some((f, opened));
        }
        match &self.open {
            Some((f, _)) => f.sync_data().map_err(SyncFailure::Fatal),
            None => Ok(()),
        }
    }
}

/// Syncs the folder holding `database` (new file names in it). Folders
/// that cannot be synced (some network and FUSE file systems) are let be,
/// as SQLite does.
fn sync_dir(database: &std::path::Path) -> std::io::Result<()> {
    let dir = match database.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    // EINVAL and EOPNOTSUPP (Linux): the file system does not sync folders.
    const NO_DIR_SYNC: [i32; 2] = [22, 95];
    match std::fs::File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error().is_some_and(|c| NO_DIR_SYNC.contains(&c)) => Ok(()),
        other => other,
    }
}
