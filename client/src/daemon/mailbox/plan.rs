//! What the mailbox loop remembers between rounds, its backoff per
//! server, and how events are cut into deposits: pure, with the time
//! passed in (tested without waiting).

use super::*;

/// What the loop remembers between rounds (all of it may be lost: a restart
/// only repeats idempotent requests).
#[derive(Default)]
pub(super) struct State {
    /// Mailbox registered at this URL (this run).
    pub(super) registered: Option<(String, MailboxId)>,
    /// Token hashes last sent to the server.
    pub(super) tokens: HashSet<[u8; 32]>,
    /// The prekey bundle last published.
    pub(super) published: Option<Vec<u8>>,
    /// Events already deposited, per contact, until their deposit expires.
    pub(super) deposited: HashMap<AccountId, HashMap<EventId, Instant>>,
    /// Largest payload each contact's server took (halved on 413).
    pub(super) payload: HashMap<AccountId, usize>,
    /// Failing targets (`None`: the own mailbox) wait before the next try.
    backoff: HashMap<Option<AccountId>, (Instant, Duration)>,
    /// Last collection.
    pub(super) collected: Option<Instant>,
}

impl State {
    /// Whether `target` is still waiting at `now` after a failure.
    pub(super) fn waiting(&self, target: Option<AccountId>, now: Instant) -> bool {
        self.backoff
            .get(&target)
            .is_some_and(|(next, _)| now < *next)
    }

    /// Records the outcome of a try at `target` that ended at `now`: a
    /// success clears its backoff, a failure doubles it (from
    /// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]).
    pub(super) fn outcome(&mut self, target: Option<AccountId>, ok: bool, now: Instant) {
        if ok {
            self.backoff.remove(&target);
            return;
        }
        let wait = self
            .backoff
            .get(&target)
            .map_or(FIRST_BACKOFF, |(_, w)| (*w * 2).min(MAX_BACKOFF));
        self.backoff.insert(target, (now + wait, wait));
    }
}

/// Splits events into deposits of at most `limit` payload bytes (one
/// event more if a single event is larger) and [`mailbox::MAX_EVENTS`].
pub(super) fn batches(events: &[(EventId, Vec<u8>)], limit: usize) -> Vec<&[(EventId, Vec<u8>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, (_, bytes)) in events.iter().enumerate() {
        let len = bytes.len() + 4;
        if i > start && (size + len > limit || i - start == mailbox::MAX_EVENTS) {
            out.push(&events[start..i]);
            start = i;
            size = 0;
        }
        size += len;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_server_backs_off_doubling_and_a_success_clears_it() {
        let t = Instant::now();
        let mut state = State::default();
        let contact = Some(AccountId::from_bytes([7; 32]));
        assert!(!state.waiting(contact, t));
        let mut now = t;
        let mut waits = Vec::new();
        for _ in 0..12 {
            state.outcome(contact, false, now);
            let mut wait = Duration::ZERO;
            while state.waiting(contact, now + wait) {
                wait += Duration::from_secs(1);
            }
            waits.push(wait);
            now += wait;
        }
        assert_eq!(waits[0], FIRST_BACKOFF);
        assert_eq!(waits[1], FIRST_BACKOFF * 2);
        assert_eq!(waits.last().copied(), Some(MAX_BACKOFF));
        // Other targets are not held back.
        assert!(!state.waiting(None, now));
        state.outcome(contact, true, now);
        assert!(!state.waiting(contact, now));
        state.outcome(contact, false, now);
        assert!(state.waiting(contact, now + FIRST_BACKOFF - Duration::from_millis(1)));
        assert!(!state.waiting(contact, now + FIRST_BACKOFF));
    }

    #[test]
    fn deposits_are_cut_by_size_and_count() {
        let id = |i: u8| EventId::from_bytes([i; 32]);
        let events: Vec<(EventId, Vec<u8>)> = (0..5).map(|i| (id(i), vec![0; 100])).collect();
        let cut = batches(&events, 250);
        assert_eq!(
            cut.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        // An event larger than the limit still goes, alone.
        let big = vec![(id(9), vec![0; 1000]), (id(8), vec![0; 10])];
        assert_eq!(batches(&big, 250).len(), 2);
        let many: Vec<(EventId, Vec<u8>)> = (0..=mailbox::MAX_EVENTS)
            .map(|i| (id((i % 250) as u8), vec![]))
            .collect();
        let cut = batches(&many, usize::MAX);
        assert_eq!(cut[0].len(), mailbox::MAX_EVENTS);
        assert_eq!(cut.len(), 2);
        assert!(batches(&[], 10).is_empty());
    }
}
