//! Names: `name@domain` handles and the records that bind them to accounts,
//! shared by `kith-named` and the client.
//!
//! - [`Handle`]: a handle normalised once (NFC, lower case; a domain of DNS
//!   labels). Local parts are letters and digits of **one** script plus `.`,
//!   `-` and `_` inside; anything a reader could mistake for something else
//!   (mixed scripts, invisible or symbol characters) is refused. Its
//!   [`Handle::skeleton`] (Unicode TS #39) lets a server refuse a name that
//!   looks like one another account holds (`paypal` against `pаypal`).
//! - [`NameRecord`]: "this handle now points at this contact card", or "this
//!   handle is released", signed by a device of the account, carrying the
//!   account log that proves the device belongs to the account. So a server
//!   cannot point a name at an account that did not ask for it, and a client
//!   checks every record itself without trusting the server.
//!
//! A record is good only near its `issued` time ([`MAX_RECORD_SKEW_MS`]) and
//! only if newer than what the server holds, so an old one cannot be replayed.
//!
//! Not here: HTTP, storage, DNS.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization as _;
use unicode_security::{GeneralSecurityProfile as _, MixedScript as _};

use crate::crypto::{SignDomain, Signature, SigningKey};
use crate::id::{AccountId, DeviceId, LogId};
use crate::identity::{AccountLog, AccountState, Card, CardError};
use crate::log::{Dag, DagConfig, Event, LogKind, Offer};
use crate::wire::{Reader, WireError, Writer};

/// Longest local part, in characters.
pub const MAX_LOCAL_CHARS: usize = 64;
/// Longest domain, in bytes.
pub const MAX_DOMAIN: usize = 253;
/// Largest encoded record accepted.
pub const MAX_RECORD: usize = 256 * 1024;
/// Most account-log events a record carries.
pub const MAX_RECORD_EVENTS: usize = 256;
/// How far from the server's clock a record's `issued` may be (10 minutes).
pub const MAX_RECORD_SKEW_MS: i64 = 10 * 60 * 1000;

const RECORD_VERSION: u8 = 1;

/// Why a handle or domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No `@`, or an empty side.
    #[error("`{0}` is not a handle: expected NAME@DOMAIN")]
    NotAHandle(String),
    /// The local part is empty or too long.
    #[error("the name must be 1 to {MAX_LOCAL_CHARS} characters")]
    Length,
    /// A character that is not allowed.
    #[error("the name may not contain {0:?}: use letters and digits, with . - _ inside")]
    Character(char),
    /// Punctuation at the start or end, or two in a row.
    #[error("the name may not start or end with . - _ or repeat them")]
    Punctuation,
    /// Letters from more than one script.
    #[error("the name mixes scripts (e.g. Latin with Cyrillic), which readers can confuse")]
    MixedScript,
    /// The domain is empty.
    #[error("the domain is empty")]
    EmptyDomain,
    /// The domain is too long.
    #[error("the domain is longer than {MAX_DOMAIN} characters")]
    LongDomain,
    /// A domain label is not a DNS label.
    #[error(
        "`{0}` is not a valid domain label (letters, digits and inner hyphens, 1-63 characters; give internationalised domains in their xn-- form)"
    )]
    BadLabel(String),
}

/// A syntactically valid, lower-case DNS domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct DomainName(String);

impl FromStr for DomainName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if name.is_empty() {
            return Err(NameError::EmptyDomain);
        }
        if name.len() > MAX_DOMAIN {
            return Err(NameError::LongDomain);
        }
        match name.split('.').find(|label| !is_label(label)) {
            Some(bad) => Err(NameError::BadLabel(bad.to_owned())),
            None => Ok(Self(name)),
        }
    }
}

impl TryFrom<String> for DomainName {
    type Error = NameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl DomainName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A normalised `name@domain` handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    local: String,
    domain: DomainName,
}

impl Handle {
    /// The name before the `@`, normalised.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain after the `@`.
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// What the name looks like (Unicode TS #39 skeleton of the local part,
    /// with the domain): two handles with the same skeleton can be mistaken
    /// for each other, so a server gives both to one account at most.
    pub fn skeleton(&self) -> String {
        let local: String = unicode_security::skeleton(&self.local).collect();
        format!("{}@{}", local.to_lowercase(), self.domain)
    }
}

impl FromStr for Handle {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (local, domain) = s
            .rsplit_once('@')
            .filter(|(l, d)| !l.is_empty() && !d.is_empty())
            .ok_or_else(|| NameError::NotAHandle(s.chars().take(80).collect()))?;
        let local: String = local.nfc().flat_map(char::to_lowercase).collect();
        let local: String = local.nfc().collect();
        let len = local.chars().count();
        if len == 0 || len > MAX_LOCAL_CHARS {
            return Err(NameError::Length);
        }
        let punct = |c: char| matches!(c, '.' | '-' | '_');
        if let Some(c) = local
            .chars()
            .find(|&c| !(punct(c) || (c.is_alphanumeric() && c.identifier_allowed())))
        {
            return Err(NameError::Character(c));
        }
        let chars: Vec<char> = local.chars().collect();
        if chars.first().copied().is_some_and(punct)
            || chars.last().copied().is_some_and(punct)
            || chars.windows(2).any(|w| punct(w[0]) && punct(w[1]))
        {
            return Err(NameError::Punctuation);
        }
        if !local.is_single_script() {
            return Err(NameError::MixedScript);
        }
        Ok(Self {
            local,
            domain: domain.parse()?,
        })
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// What a record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameAction {
    /// Point the handle at this contact card (a `kith:card/` URI of the account).
    Bind {
        /// The card URI.
        card: String,
    },
    /// Give the handle up.
    Release,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are malformed.
    #[error("malformed name record: {0}")]
    Format(#[from] WireError),
    /// The handle inside is not a valid handle.
    #[error("bad handle in name record: {0}")]
    Handle(#[from] NameError),
    /// The record's signature does not verify.
    #[error("the name record's signature does not verify")]
    BadSignature,
    /// The account log it carries does not prove the account.
    #[error("the name record's account log is not valid: {0}")]
    AccountLog(String),
    /// The signing device is not an active device of the account.
    #[error("the name record is signed by a device that is not an active device of the account")]
    NotAccountDevice,
    /// The card is bad or for another account.
    #[error("the name record's contact card is not valid: {0}")]
    Card(#[from] CardError),
    /// The card is for another account than the record.
    #[error("the name record's contact card belongs to another account")]
    CardAccount,
    /// Too large.
    #[error("name record larger than {MAX_RECORD} bytes")]
    TooLarge,
}

/// A signed name record, checked: what a server stores and a client trusts
/// (as far as "the account asked for this" goes; the contact stays
/// `unvalidated` until safety numbers are compared).
#[derive(Debug, Clone)]
pub struct NameRecord {
    /// The handle.
    pub handle: Handle,
    /// The account the record speaks for.
    pub account: AccountId,
    /// Bind or release.
    pub action: NameAction,
    /// When it was made (ms since the epoch).
    pub issued: i64,
    /// The device that signed it.
    pub signer: DeviceId,
    /// The account-log events it carries.
    pub account_log: Vec<Event>,
    /// The account as those events (and any the checker added) resolve.
    pub state: AccountState,
    /// The record exactly as signed and sent.
    pub bytes: Vec<u8>,
}

impl NameRecord {
    /// Makes and signs a record with this device's `key`. `account_log` is
    /// the account's log as the device holds it.
    pub fn sign(
        key: &SigningKey,
        handle: &Handle,
        account: AccountId,
        action: &NameAction,
        issued: i64,
        account_log: &[Event],
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(RECORD_VERSION)
            .str(&handle.to_string())
            .fixed(account.as_bytes());
        match action {
            NameAction::Bind { card } => w.u8(1).str(card),
            NameAction::Release => w.u8(2),
        };
        w.i64(issued)
            .fixed(key.verifying_key().as_bytes())
            .u16(account_log.len() as u16);
        for event in account_log {
            w.bytes(&event.encode());
        }
        let mut bytes = w.finish();
        let sig = key.sign(SignDomain::NAME, &bytes);
        bytes.extend_from_slice(sig.as_bytes());
        bytes
    }

    /// Decodes and checks a record: signature, the account log it carries
    /// (joined with `known`, events of the same account the checker holds
    /// already, so an old log cannot hide a revocation the checker has seen),
    /// that the signer is an active device, and the card. Time and
    /// replays are the caller's (it knows the clock and what it stored).
    pub fn verify(bytes: &[u8], known: &[Event]) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD {
            return Err(RecordError::TooLarge);
        }
        let split = bytes.len().checked_sub(64).ok_or(WireError::Truncated {
            what: "name record signature",
        })?;
        let (body, sig) = bytes.split_at(split);
        let mut r = Reader::new(body);
        if r.u8("name record version")? != RECORD_VERSION {
            return Err(WireError::Invalid {
                what: "name record version",
                why: "unsupported",
            }
            .into());
        }
        let handle_text = r.str(MAX_LOCAL_CHARS * 4 + 1 + MAX_DOMAIN, "handle")?;
        let handle: Handle = handle_text.parse()?;
        if handle.to_string() != handle_text {
            return Err(WireError::Invalid {
                what: "handle",
                why: "not in normal form",
            }
            .into());
        }
        let account = AccountId::from_bytes(r.array("account")?);
        let action = match r.u8("action")? {
            1 => NameAction::Bind {
                card: r
                    .str(crate::identity::card::MAX_CARD_URI, "card")?
                    .to_owned(),
            },
            2 => NameAction::Release,
            _ => {
                return Err(WireError::Invalid {
                    what: "action",
                    why: "unknown",
                }
                .into());
            }
        };
        let issued = r.i64("issued")?;
        let signer = DeviceId::from_bytes(r.array("signer")?);
        let n = r.count(MAX_RECORD_EVENTS, "account log")?;
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            let raw = r.bytes(crate::log::event::MAX_EVENT, "account event")?;
            events.push(Event::decode(raw).map_err(|e| RecordError::AccountLog(e.to_string()))?);
        }
        r.finish("name record")?;
        let mut sig_arr = [0u8; 64];
        sig_arr.copy_from_slice(sig);
        signer
            .verifying_key()
            .verify(SignDomain::NAME, body, &Signature::from_bytes(sig_arr))
            .map_err(|_| RecordError::BadSignature)?;
        let state = resolve_account(account, events.iter().chain(known))?;
        if !state.is_active(&signer) {
            return Err(RecordError::NotAccountDevice);
        }
        if let NameAction::Bind { card } = &action {
            let parsed = Card::parse(card)?;
            if parsed.account != account {
                return Err(RecordError::CardAccount);
            }
            if !state.is_active(&parsed.signer) {
                return Err(RecordError::NotAccountDevice);
            }
        }
        Ok(Self {
            handle,
            account,
            action,
            issued,
            signer,
            account_log: events,
            state,
            bytes: bytes.to_vec(),
        })
    }

    /// The card this record binds, if it binds one.
    pub fn card(&self) -> Option<&str> {
        match &self.action {
            NameAction::Bind { card } => Some(card),
            NameAction::Release => None,
        }
    }
}

/// Resolves an account from loose events: each must be a validly signed
/// event of the account's log whose parents are among the events, and the
/// genesis must be the account id. Duplicates are ignored.
pub fn resolve_account<'a>(
    account: AccountId,
    events: impl Iterator<Item = &'a Event>,
) -> Result<AccountState, RecordError> {
    let mut events: Vec<&Event> = events.collect();
    events.sort_by_key(|e| (e.header().depth, e.id()));
    events.dedup_by_key(|e| e.id());
    let mut dag = Dag::new(
        LogId::account(account),
        LogKind::Account,
        DagConfig::default(),
    );
    let mut log = AccountLog::new(account);
    for event in events {
        match dag.offer(event.clone(), 0, &mut log) {
            Ok(Offer::Stored(_)) => {}
            Ok(Offer::Held { .. }) => {
                return Err(RecordError::AccountLog(format!(
                    "event {} names parents the record does not carry",
                    event.id()
                )));
            }
            Err(err) => return Err(RecordError::AccountLog(err.to_string())),
        }
    }
    log.state()
        .map_err(|err| RecordError::AccountLog(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(s: &str) -> Result<Handle, NameError> {
        s.parse()
    }

    #[test]
    fn handles_are_normalised() {
        assert_eq!(
            handle("Alice@Example.ORG").unwrap().to_string(),
            "alice@example.org"
        );
        assert_eq!(handle(" bob.smith_2@a.b ").unwrap().local(), "bob.smith_2");
        // NFC: e + combining acute is é.
        assert_eq!(handle("Re\u{301}ne@x.org").unwrap().local(), "r\u{e9}ne");
        assert_eq!(handle("ÉLODIE@x.org").unwrap().local(), "élodie");
        assert!(
            handle("мария@x.org").is_ok(),
            "one non-Latin script is fine"
        );
    }

    #[test]
    fn bad_handles_are_refused() {
        assert!(matches!(handle("alice"), Err(NameError::NotAHandle(_))));
        assert!(matches!(handle("@x.org"), Err(NameError::NotAHandle(_))));
        assert!(matches!(handle("alice@"), Err(NameError::NotAHandle(_))));
        assert_eq!(handle("a b@x.org"), Err(NameError::Character(' ')));
        assert_eq!(
            handle("a\u{200b}b@x.org"),
            Err(NameError::Character('\u{200b}'))
        );
        assert_eq!(handle("a+b@x.org"), Err(NameError::Character('+')));
        assert_eq!(handle(".ab@x.org"), Err(NameError::Punctuation));
        assert_eq!(handle("a..b@x.org"), Err(NameError::Punctuation));
        assert_eq!(handle("ab-@x.org"), Err(NameError::Punctuation));
        // Latin "p", "y", "l" with Cyrillic "а".
        assert_eq!(handle("p\u{430}ypal@x.org"), Err(NameError::MixedScript));
        assert_eq!(
            handle(&format!("{}@x.org", "a".repeat(65))),
            Err(NameError::Length)
        );
        assert!(matches!(handle("a@x_y.org"), Err(NameError::BadLabel(_))));
        assert_eq!(handle("a@."), Err(NameError::EmptyDomain));
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        let a = handle("paypal@x.org").unwrap();
        // All-Cyrillic look-alike (single script, so allowed as a name).
        let b = handle("\u{440}\u{430}\u{443}\u{440}\u{430}\u{04cf}@x.org").unwrap();
        assert_eq!(a.skeleton(), b.skeleton());
        assert_ne!(a.skeleton(), handle("paypai@x.org").unwrap().skeleton());
        assert_eq!(
            handle("rn@x.org").unwrap().skeleton(),
            handle("m@x.org").unwrap().skeleton(),
            "rn looks like m"
        );
    }

    fn new_account(name: &str) -> (SigningKey, AccountId, Event) {
        let key = SigningKey::generate();
        let genesis = Event::sign(
            &key,
            crate::log::Draft {
                log: None,
                log_kind: LogKind::Account,
                seq: 1,
                prev: None,
                parents: vec![],
                time: 1,
                kind: crate::identity::entry::kind::GENESIS,
                body: crate::identity::AccountEntry::Genesis {
                    account_name: name.into(),
                    device_name: name.into(),
                    recovery: None,
                }
                .encode(),
            },
        );
        (
            key,
            AccountId::from_bytes(*genesis.id().as_bytes()),
            genesis,
        )
    }

    fn card(key: &SigningKey, account: AccountId) -> String {
        let device = DeviceId::from(key.verifying_key());
        Card::sign(
            key,
            &Card {
                account,
                name: "alice".into(),
                signer: device,
                devices: vec![device],
                hints: vec![],
                issued: 5,
            },
        )
    }

    #[test]
    fn records_verify_and_refuse_forgeries() {
        let (key, account, genesis) = new_account("alice");
        let h = handle("alice@x.org").unwrap();
        let bind = NameAction::Bind {
            card: card(&key, account),
        };
        let bytes = NameRecord::sign(&key, &h, account, &bind, 7, std::slice::from_ref(&genesis));
        let record = NameRecord::verify(&bytes, &[]).unwrap();
        assert_eq!(record.handle, h);
        assert_eq!(record.account, account);
        assert_eq!(record.issued, 7);
        assert!(record.card().is_some());

        // Any changed byte breaks it.
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        assert!(NameRecord::verify(&bad, &[]).is_err());

        // Mallory signs a record naming Alice's account: not her device.
        let (mallory, m_account, m_genesis) = new_account("mallory");
        let forged = NameRecord::sign(
            &mallory,
            &h,
            account,
            &NameAction::Bind {
                card: card(&key, account),
            },
            7,
            std::slice::from_ref(&genesis),
        );
        assert!(matches!(
            NameRecord::verify(&forged, &[]),
            Err(RecordError::NotAccountDevice)
        ));
        // Her own account with Alice's card: the card is for another account.
        let wrong_card = NameRecord::sign(
            &mallory,
            &h,
            m_account,
            &bind,
            7,
            std::slice::from_ref(&m_genesis),
        );
        assert!(matches!(
            NameRecord::verify(&wrong_card, &[]),
            Err(RecordError::CardAccount)
        ));
        // Her account log passed off as Alice's: the genesis is not the account.
        let wrong_log =
            NameRecord::sign(&mallory, &h, account, &NameAction::Release, 7, &[m_genesis]);
        assert!(matches!(
            NameRecord::verify(&wrong_log, &[]),
            Err(RecordError::AccountLog(_))
        ));
        // Without the account log it proves nothing.
        let bare = NameRecord::sign(&key, &h, account, &NameAction::Release, 7, &[]);
        assert!(NameRecord::verify(&bare, &[]).is_err());
        assert!(
            NameRecord::verify(&bare, &[genesis]).is_ok(),
            "the checker's own copy counts"
        );
    }

    #[test]
    fn domains_parse() {
        assert_eq!(
            "Example.ORG.".parse::<DomainName>().map(|d| d.to_string()),
            Ok("example.org".into())
        );
        assert!("xn--bcher-kva.example".parse::<DomainName>().is_ok());
        assert!("a..b".parse::<DomainName>().is_err());
        assert_eq!(
            ["a"; 128].join(".").parse::<DomainName>(),
            Err(NameError::LongDomain)
        );
    }
}
