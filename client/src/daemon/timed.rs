//! The node's lock, timed: how long each holder waited for it and how long
//! it kept it, as histograms the link bench prints (where the daemon's
//! time goes, for the work that replaces the lock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Histogram buckets: below 2^i × 10 µs, the last open.
const BUCKETS: usize = 16;

/// Counts of durations per bucket.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    total_us: AtomicU64,
}

impl Histogram {
    fn record(&self, since: Instant) {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        let bucket = (0..BUCKETS - 1)
            .find(|i| us < 10u64 << i)
            .unwrap_or(BUCKETS - 1);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
    }

    /// (upper bound in µs or `None` for the open bucket, count) per
    /// non-empty bucket.
    pub fn buckets(&self) -> Vec<(Option<u64>, u64)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    (i + 1 < BUCKETS).then(|| 10u64 << i),
                    n.load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// Their sum, in microseconds.
    pub fn total_us(&self) -> u64 {
        self.total_us.load(Ordering::Relaxed)
    }

    /// The bucket bound at or below which a fraction `q` of durations lie
    /// (`None`: in the open bucket).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        let want = ((n as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= want.max(1) {
                return (i + 1 < BUCKETS).then(|| 10u64 << i);
            }
        }
        None
    }

    /// One line: count, total, p50/p99 bounds and the buckets.
    pub fn summary(&self) -> String {
        let bound = |b: Option<u64>| b.map_or("more".to_owned(), |b| format!("<{b}"));
        let buckets: Vec<String> = self
            .buckets()
            .into_iter()
            .map(|(b, n)| format!("{}:{n}", bound(b)))
            .collect();
        format!(
            "{} holds, {} ms in all, p50 {} µs, p99 {} µs [{}]",
            self.count(),
            self.total_us() / 1000,
            bound(self.quantile(0.5)),
            bound(self.quantile(0.99)),
            buckets.join(" ")
        )
    }
}

/// A `tokio::sync::Mutex` that records waits and holds, and runs a
/// function on the value whenever a holder that changed it lets it go
/// (the node publishes its snapshots there).
#[derive(Debug)]
pub struct TimedMutex<T> {
    inner: tokio::sync::Mutex<T>,
    /// Time from asking for the lock to getting it.
    pub waits: Histogram,
    /// Time from getting the lock to letting it go.
    pub holds: Histogram,
    released: Option<fn(&T)>,
}

impl<T> TimedMutex<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self {
            inner: tokio::sync::Mutex::new(value),
            waits: Histogram::default(),
            holds: Histogram::default(),
            released: None,
        }
    }

    /// Wraps `value`; `released` runs after each holder that changed it.
    pub fn with_release(value: T, released: fn(&T)) -> Self {
        Self {
            released: Some(released),
            ..Self::new(value)
        }
    }

    /// The value, once no one else holds the mutex.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    /// Takes the lock.
    pub async fn lock(&self) -> TimedGuard<'_, T> {
        let asked = Instant::now();
        let guard = self.inner.lock().await;
        self.waits.record(asked);
        TimedGuard {
            guard,
            since: Instant::now(),
            holds: &self.holds,
            changed: false,
            released: self.released,
        }
    }
}

/// The lock, held; records how long when dropped.
#[derive(Debug)]
pub struct TimedGuard<'a, T> {
    guard: tokio::sync::MutexGuard<'a, T>,
    since: Instant,
    holds: &'a Histogram,
    /// Lent out mutably.
    changed: bool,
    released: Option<fn(&T)>,
}

impl<T> std::ops::Deref for TimedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for TimedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        &mut self.guard
    }
}

impl<T> Drop for TimedGuard<'_, T> {
    fn drop(&mut self) {
        if self.changed
            && let Some(released) = self.released
        {
            released(&self.guard);
        }
        self.holds.record(self.since);
    }
}
