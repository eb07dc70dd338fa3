//! Trust in contacts: `unvalidated` (every card, from anywhere),
//! `validated` (safety number compared) or `compromised` (set by hand, or
//! on detecting a forked or contradictory account log). Kept as a register
//! in the self log, so every own device agrees; safety numbers follow
//! Signal's numeric fingerprint over the two account ids, so they do not
//! change when either side adds or removes devices.

use super::contacts::self_kind;
use super::{Node, NodeError};
use crate::crypto::{FINGERPRINT_DIGITS, FINGERPRINT_ITERATIONS, ct_eq, numeric_fingerprint};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::log::Event;
use crate::wire::{Reader, WireError, Writer};
use std::collections::HashMap;

/// How far a contact is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The default for every card.
    Unvalidated,
    /// The safety number was compared.
    Validated,
    /// Something is wrong with the contact's account.
    Compromised,
}

impl Trust {
    /// The name used in the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Unvalidated => "unvalidated",
            Trust::Validated => "validated",
            Trust::Compromised => "compromised",
        }
    }

    fn code(self) -> u8 {
        match self {
            Trust::Unvalidated => 0,
            Trust::Validated => 1,
            Trust::Compromised => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Trust::Unvalidated),
            1 => Some(Trust::Validated),
            2 => Some(Trust::Compromised),
            _ => None,
        }
    }
}

impl std::str::FromStr for Trust {
    type Err = NodeError;
    fn from_str(s: &str) -> Result<Self, NodeError> {
        match s.trim().to_lowercase().as_str() {
            "unvalidated" => Ok(Trust::Unvalidated),
            "validated" => Ok(Trust::Validated),
            "compromised" => Ok(Trust::Compromised),
            other => Err(NodeError::Invalid(format!(
                "unknown trust state {other:?}: use unvalidated, validated or compromised"
            ))),
        }
    }
}

/// Longest recorded reason.
const MAX_REASON: usize = 256;

/// Most account-log heads recorded with a validation.
const MAX_SEEN_HEADS: usize = 64;

/// A Trust entry: account, state, reason and (for `validated`) the heads
/// of the contact's account log as they were when it was validated.
fn encode_trust(account: AccountId, trust: Trust, reason: &str, seen: &[EventId]) -> Vec<u8> {
    let mut w = Writer::new();
    let reason: String = reason.chars().take(MAX_REASON / 4).collect();
    w.fixed(account.as_bytes()).u8(trust.code()).str(&reason);
    if !seen.is_empty() {
        let seen = &seen[..seen.len().min(MAX_SEEN_HEADS)];
        w.u16(seen.len() as u16);
        for id in seen {
            w.fixed(id.as_bytes());
        }
    }
    w.finish()
}

struct TrustEntry {
    account: AccountId,
    trust: Trust,
    reason: String,
    seen: Vec<EventId>,
}

fn decode_trust(body: &[u8]) -> Result<TrustEntry, WireError> {
    let mut r = Reader::new(body);
    let account = AccountId::from_bytes(r.array("account")?);
    let trust = Trust::from_code(r.u8("trust")?).ok_or(WireError::Invalid {
        what: "trust",
        why: "unknown state",
    })?;
    let reason = r.str(MAX_REASON, "reason")?.to_owned();
    let mut seen = Vec::new();
    if !r.is_empty() {
        let n = r.count(MAX_SEEN_HEADS, "heads")?;
        for _ in 0..n {
            seen.push(EventId::from_bytes(r.array("head")?));
        }
    }
    r.finish("trust entry")?;
    Ok(TrustEntry {
        account,
        trust,
        reason,
        seen,
    })
}

/// Groups the 60 digits in twelve groups of five.
pub fn group_digits(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Node {
    /// The safety number with `contact` (60 digits): the same on both
    /// sides and on every device of either account.
    pub fn safety_number(&self, contact: AccountId) -> Result<String, NodeError> {
        self.require_contact(contact)?;
        let mine = self.account.to_string();
        let theirs = contact.to_string();
        Ok(numeric_fingerprint(
            FINGERPRINT_ITERATIONS,
            (mine.as_bytes(), self.account.as_bytes()),
            (theirs.as_bytes(), contact.as_bytes()),
        ))
    }

    /// Validates `contact` if `number` (digits; spaces and dashes ignored)
    /// is the safety number; otherwise fails and changes nothing.
    pub async fn verify_contact(
        &mut self,
        contact: AccountId,
        number: &str,
        now: i64,
    ) -> Result<(), NodeError> {
        let digits: String = number
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.len() != FINGERPRINT_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NodeError::Invalid(format!(
                "a safety number is {FINGERPRINT_DIGITS} digits; got {:?}",
                number.trim()
            )));
        }
        let expected = self.safety_number(contact)?;
        if let Some(alarm) = self.account_alarm(contact) {
            return Err(NodeError::Invalid(format!("not validated: {alarm}")));
        }
        if !ct_eq(digits.as_bytes(), expected.as_bytes()) {
            return Err(NodeError::Invalid(
                "the safety numbers differ: the contact stays as it was. Compare again over a channel you trust".into(),
            ));
        }
        self.set_trust(contact, Trust::Validated, "safety number compared", now)
            .await
    }

    /// Sets a contact's trust state on every own device.
    pub async fn set_trust(
        &mut self,
        contact: AccountId,
        trust: Trust,
        reason: &str,
        now: i64,
    ) -> Result<(), NodeError> {
        self.require_contact(contact)?;
        let seen: Vec<EventId> = if trust == Trust::Validated {
            self.logs
                .get(&LogId::account(contact))
                .map(|d| d.heads().map(|(id, _)| id).collect())
                .unwrap_or_default()
        } else {
            vec![]
        };
        let body = encode_trust(contact, trust, reason, &seen);
        self.append(LogId::self_log(self.account), self_kind::TRUST, body, now)
            .await?;
        // A compromised contact must stop recognising our devices on a LAN:
        // a new secret, which it will not be granted.
        if trust == Trust::Compromised && self.lan_secret().is_some() {
            self.rotate_lan_secret(now).await?;
        }
        Ok(())
    }

    /// Records a stored self-log trust entry (a register: the entry with
    /// the highest (depth, author, id) wins).
    pub(super) fn apply_trust_entry(&mut self, event: &Event) {
        let Some(Ok(entry)) = event.body().map(decode_trust) else {
            return;
        };
        let h = event.header();
        let by = (h.depth, h.author, event.id());
        if let Some(c) = self.contacts.get_mut(&entry.account)
            && by > c.trust_by
        {
            c.trust = entry.trust;
            c.trust_reason = (!entry.reason.is_empty()).then_some(entry.reason);
            c.trust_by = by;
            c.validated_at = entry.seen;
        }
    }

    /// Devices a validated contact added (with both signatures) after it
    /// was validated: they do not reset validation, but are shown.
    pub fn devices_since_validation(&self, contact: AccountId) -> Vec<DeviceId> {
        let Some(c) = self.contacts.get(&contact) else {
            return vec![];
        };
        if c.trust != Trust::Validated || c.validated_at.is_empty() {
            return vec![];
        }
        let (Some(dag), Ok(state)) = (
            self.logs.get(&LogId::account(contact)),
            self.account_log_state(contact),
        ) else {
            return vec![];
        };
        let after: std::collections::HashSet<EventId> =
            dag.not_below(&c.validated_at).into_iter().collect();
        state
            .active_devices()
            .filter(|(_, d)| after.contains(&d.added_in))
            .map(|(id, _)| *id)
            .collect()
    }

    /// What, if anything, shows that `account`'s account log cannot be
    /// trusted: one device signing two different entries on the same
    /// previous one (a fork), or entries discarded by conflict resolution
    /// (devices of the account fighting, e.g. a thief and the owner).
    pub fn account_alarm(&self, account: AccountId) -> Option<String> {
        let log = self.accounts.get(&account)?;
        // Not fetched yet: nothing to judge.
        log.events().next()?;
        let mut seen: HashMap<(DeviceId, Option<EventId>), EventId> = HashMap::new();
        for e in log.events() {
            let h = e.header();
            if let Some(other) = seen.insert((h.author, h.prev), e.id())
                && other != e.id()
            {
                return Some(format!(
                    "its account log forked: device {} signed two different entries in one place",
                    h.author.short(12)
                ));
            }
        }
        match log.state() {
            Ok(state) if !state.discarded.is_empty() => Some(format!(
                "its account log has {} conflicting entries (its devices revoked each other)",
                state.discarded.len()
            )),
            Ok(_) => None,
            Err(e) => Some(format!("its account log does not resolve: {e}")),
        }
    }

    /// After a contact's account log changed: a validated contact whose
    /// log now raises an alarm becomes `compromised` on every own device,
    /// with the reason.
    pub(super) async fn check_compromise(
        &mut self,
        account: AccountId,
        now: i64,
    ) -> Result<(), NodeError> {
        let validated = self
            .contacts
            .get(&account)
            .is_some_and(|c| c.trust == Trust::Validated);
        if !validated {
            return Ok(());
        }
        if let Some(reason) = self.account_alarm(account) {
            tracing::warn!(contact = %account.short(12), %reason, "contact marked compromised");
            self.set_trust(account, Trust::Compromised, &reason, now)
                .await?;
        }
        Ok(())
    }
}
