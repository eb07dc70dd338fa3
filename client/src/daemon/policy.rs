//! The daemon's decisions about links, as pure code: given what is open
//! and the time, what to do. The drivers carry the decisions out; tests
//! run them in virtual time (no clock is read here).

use node_core::DeviceId;
use node_core::sync::Role;
use std::time::{Duration, Instant};

/// Sync links are closed and dialled again at least this often (fresh
/// keys).
pub const MAX_LINK_AGE: Duration = Duration::from_secs(3600);

/// Two links to one peer that came up within this long of each other are
/// simultaneous dials; an older link is presumed dead (the peer restarted).
pub const SIMULTANEOUS: Duration = Duration::from_secs(2);

/// What to do with a new sync link to a peer that may have others.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Admission {
    /// Close the new link: both sides dialled at once, and this is the
    /// one both close (the one not dialled by the lower device id).
    Duplicate,
    /// Keep the new link and close these older ones (by index in the list
    /// given): a peer that restarted dials again before we can notice that
    /// its old link is dead.
    Keep {
        /// Older links to close.
        replace: Vec<usize>,
    },
}

/// Decides about a new sync link with `peer`, in role `role`, given when
/// the other sync links to that peer came up (`others`).
pub fn admit(
    me: DeviceId,
    peer: DeviceId,
    role: Role,
    others: &[Instant],
    now: Instant,
) -> Admission {
    let preferred = if me < peer {
        Role::Dialer
    } else {
        Role::Listener
    };
    let simultaneous = others
        .iter()
        .any(|up| now.saturating_duration_since(*up) < SIMULTANEOUS);
    if simultaneous && role != preferred {
        return Admission::Duplicate;
    }
    Admission::Keep {
        replace: (0..others.len()).collect(),
    }
}

/// Whether a sync link that came up at `up` is due for renewal.
pub fn renew_due(up: Instant, now: Instant) -> bool {
    now.saturating_duration_since(up) >= MAX_LINK_AGE
}

/// When the oldest of these links will be due (for the manager's timer).
pub fn next_renewal(ups: impl IntoIterator<Item = Instant>) -> Option<Instant> {
    ups.into_iter().min().map(|up| up + MAX_LINK_AGE)
}

/// Retry waits that double from `first` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// When the next attempt may start.
    pub next: Instant,
    /// The wait after that attempt.
    pub wait: Duration,
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff whose first attempt may start at `now`.
    pub fn new(now: Instant, first: Duration, max: Duration) -> Self {
        Self {
            next: now,
            wait: first,
            first,
            max,
        }
    }

    /// Whether an attempt may start at `now`; if so, it is counted and the
    /// next one pushed back (the wait doubles, up to the maximum).
    pub fn try_attempt(&mut self, now: Instant) -> bool {
        if self.next > now {
            return false;
        }
        self.next = now + self.wait;
        self.wait = (self.wait * 2).min(self.max);
        true
    }

    /// Something changed that may make the next attempt succeed: retry
    /// within the first wait, and start doubling again from it.
    pub fn reset(&mut self, now: Instant) {
        self.wait = self.first;
        self.next = self.next.min(now + self.first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node_core::crypto::SigningKey;

    fn two_devices() -> (DeviceId, DeviceId) {
        let a = DeviceId::from(SigningKey::generate().verifying_key());
        let b = DeviceId::from(SigningKey::generate().verifying_key());
        if a < b { (a, b) } else { (b, a) }
    }

    #[test]
    fn a_lone_link_is_kept() {
        let (lo, hi) = two_devices();
        let t = Instant::now();
        for role in [Role::Dialer, Role::Listener] {
            assert_eq!(
                admit(lo, hi, role, &[], t),
                Admission::Keep { replace: vec![] }
            );
        }
    }

    #[test]
    fn simultaneous_dials_keep_the_link_the_lower_device_dialled() {
        let (lo, hi) = two_devices();
        let t = Instant::now();
        let others = [t];
        let now = t + Duration::from_millis(300);
        // (me, peer, the role of the new link on `me`, kept?): on the lower
        // device its own dial stays and the incoming one goes; on the
        // higher device the mirror image, so both keep the same link.
        for (me, peer, role, kept) in [
            (lo, hi, Role::Listener, false),
            (lo, hi, Role::Dialer, true),
            (hi, lo, Role::Dialer, false),
            (hi, lo, Role::Listener, true),
        ] {
            let want = if kept {
                Admission::Keep { replace: vec![0] }
            } else {
                Admission::Duplicate
            };
            assert_eq!(admit(me, peer, role, &others, now), want, "{role:?}");
        }
    }

    #[test]
    fn an_old_link_is_replaced_by_a_new_one_whoever_dialled() {
        let (lo, hi) = two_devices();
        let t = Instant::now();
        let others = [t, t + Duration::from_secs(1)];
        let now = t + SIMULTANEOUS + Duration::from_secs(1);
        for (me, peer) in [(lo, hi), (hi, lo)] {
            for role in [Role::Dialer, Role::Listener] {
                assert_eq!(
                    admit(me, peer, role, &others, now),
                    Admission::Keep {
                        replace: vec![0, 1]
                    }
                );
            }
        }
    }

    #[test]
    fn links_are_renewed_after_an_hour() {
        let t = Instant::now();
        assert!(!renew_due(t, t + MAX_LINK_AGE - Duration::from_secs(1)));
        assert!(renew_due(t, t + MAX_LINK_AGE));
        let later = t + Duration::from_secs(10);
        assert_eq!(next_renewal([later, t]), Some(t + MAX_LINK_AGE));
        assert_eq!(next_renewal([]), None);
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let t = Instant::now();
        let first = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        let mut b = Backoff::new(t, first, max);
        let mut now = t;
        let mut waits = Vec::new();
        for _ in 0..10 {
            assert!(b.try_attempt(now), "due at {:?}", b.next - t);
            assert!(!b.try_attempt(now), "one attempt per wait");
            waits.push(b.next - now);
            now = b.next;
        }
        assert_eq!(waits[0], first);
        assert_eq!(waits[1], first * 2);
        assert_eq!(*waits.last().unwrap_or(&Duration::ZERO), max);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        // A change (a new address, say): retry soon, from the first wait.
        b.reset(now);
        assert!(b.next <= now + first);
        assert!(b.try_attempt(now + first));
        assert_eq!(b.next, now + first + first);
    }
}
