//! Contact requests: what a device sends to a device of an account its
//! own account added, while that account has not added it back (one
//! message per connection on the request link), and how the receiving
//! side checks it.
//!
//! A request carries the requester's card (so it can be added back with
//! one answer), the requester's account log (so the device that sent it
//! is shown to be an active device of the account the card names: nobody
//! can ask in another account's name), how the requester found the account (a card, an
//! introduction, a nameserver handle — the requester's own claim, shown as
//! such) and the first few messages it queued. Every field is bounded; a
//! request is at most [`MAX_REQUEST`] bytes, and a device keeps at most
//! one per account (the newest), so a stranger cannot grow what is kept
//! by asking again.
//!
//! On the wire it is three frames: the request without messages, the
//! receiver's [`RequestAnswer`] (with its own account log when the request
//! is kept), and — only if that account log shows the device answering
//! to be an active device of the account asked — the messages
//! ([`encode_messages`]). So a forged card never gets a message: the
//! requester sends text only to a device the account's own log proves.
//!
//! Not here: the link that carries requests, where they are kept and the
//! user's answers (`store`, `node`).

use crate::id::{AccountId, DeviceId};
use crate::identity::card::{Card, CardError, MAX_CARD_URI};
use crate::log::Event;
use crate::log::event::MAX_EVENT;
use crate::wire::{Reader, WireError, Writer};

/// Format version of a request.
pub const REQUEST_VERSION: u8 = 1;
/// Most messages a request carries.
pub const MAX_MESSAGES: usize = 5;
/// Longest message carried, in bytes (longer ones are cut at a character
/// boundary by the sender).
pub const MAX_MESSAGE: usize = 2048;
/// Longest nameserver handle (`name@domain`).
pub const MAX_HANDLE: usize = 255;
/// Most events of the requester's account log a request carries (each
/// is a signature to check: a young account has a handful).
pub const MAX_ACCOUNT_EVENTS: usize = 64;
/// Largest encoded request.
pub const MAX_REQUEST: usize = 256 * 1024;

/// The answer: the request is kept (or dropped without telling: a
/// declined or blocked requester is not told, nor is one that failed the
/// checks after the answer went).
pub const ANSWER_KEPT: u8 = 0;
/// The answer: the requester is already a contact here (stop asking).
pub const ANSWER_CONTACT: u8 = 1;
/// The answer: too many requests just now; ask again later.
pub const ANSWER_BUSY: u8 = 2;
/// The largest messages frame: [`MAX_MESSAGES`] messages of
/// [`MAX_MESSAGE`] bytes with their lengths.
pub const MAX_MESSAGES_FRAME: usize = 2 + MAX_MESSAGES * (4 + MAX_MESSAGE);

/// The receiver's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAnswer {
    /// [`ANSWER_KEPT`], [`ANSWER_CONTACT`] or [`ANSWER_BUSY`].
    pub code: u8,
    /// With [`ANSWER_KEPT`]: the receiver's account log (at most
    /// [`MAX_ACCOUNT_EVENTS`], in order), so the requester can check the
    /// device before it sends messages. Empty otherwise.
    pub account_log: Vec<Event>,
}

impl RequestAnswer {
    /// The answer's bytes: `u8 code ‖ u16 n ‖ n × bytes event`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.code)
            .u16(u16::try_from(self.account_log.len()).unwrap_or(u16::MAX));
        for e in &self.account_log {
            w.bytes(&e.encode());
        }
        w.finish()
    }

    /// An answer with `account_log` cut to the bound and put in order
    /// (none at all if it is longer: the requester then sends no
    /// messages).
    pub fn kept(account_log: Vec<Event>) -> Self {
        let account_log = if account_log.len() > MAX_ACCOUNT_EVENTS {
            Vec::new()
        } else {
            in_order(account_log)
        };
        Self {
            code: ANSWER_KEPT,
            account_log,
        }
    }

    /// Reads an answer, checking every bound.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_REQUEST {
            return Err(WireError::TooLarge {
                what: "request answer",
                got: bytes.len() as u64,
                max: MAX_REQUEST as u64,
            });
        }
        let mut r = Reader::new(bytes);
        let code = r.u8("answer code")?;
        if !matches!(code, ANSWER_KEPT | ANSWER_CONTACT | ANSWER_BUSY) {
            return Err(WireError::Invalid {
                what: "answer code",
                why: "unknown",
            });
        }
        let max = if code == ANSWER_KEPT {
            MAX_ACCOUNT_EVENTS
        } else {
            0
        };
        let account_log = read_account_log(&mut r, max, "answer account log")?;
        r.finish("request answer")?;
        Ok(Self { code, account_log })
    }

    /// Whether the answer's account log, with `known` (the events of that
    /// account's log the requester holds: a revoked device cannot leave
    /// its revocation out), shows `device` active in `account` (resolved
    /// from the account id: a log of another account proves nothing).
    pub fn proves(&self, account: AccountId, device: DeviceId, known: &[Event]) -> bool {
        self.code == ANSWER_KEPT
            && crate::names::resolve_account(account, self.account_log.iter().chain(known))
                .is_ok_and(|state| state.is_active(&device))
    }
}

/// The messages frame: `u16 n ‖ n × str` (n ≤ [`MAX_MESSAGES`], each at
/// most [`MAX_MESSAGE`] bytes; longer ones are cut at a character
/// boundary, more are left out).
pub fn encode_messages(messages: &[String]) -> Vec<u8> {
    let messages: Vec<String> = messages
        .iter()
        .take(MAX_MESSAGES)
        .map(|m| cut(m, MAX_MESSAGE))
        .collect();
    let mut w = Writer::new();
    w.u16(u16::try_from(messages.len()).unwrap_or(u16::MAX));
    for m in &messages {
        w.str(m);
    }
    w.finish()
}

/// Reads a messages frame.
pub fn decode_messages(bytes: &[u8]) -> Result<Vec<String>, WireError> {
    if bytes.len() > MAX_MESSAGES_FRAME {
        return Err(WireError::TooLarge {
            what: "request messages",
            got: bytes.len() as u64,
            max: MAX_MESSAGES_FRAME as u64,
        });
    }
    let mut r = Reader::new(bytes);
    let n = r.count(MAX_MESSAGES, "request messages")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.str(MAX_MESSAGE, "request message")?.to_owned());
    }
    r.finish("request messages")?;
    Ok(out)
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Reads `u16 n ‖ n × bytes event` (n ≤ `max`), in order (depth, then
/// id), each event once.
fn read_account_log(
    r: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<Vec<Event>, WireError> {
    let n = r.count(max, what)?;
    let mut account_log: Vec<Event> = Vec::with_capacity(n);
    for _ in 0..n {
        let raw = r.bytes(MAX_EVENT, "account event")?;
        let event = Event::decode(raw).map_err(|_| WireError::Invalid {
            what: "account event",
            why: "not an event",
        })?;
        if account_log
            .last()
            .is_some_and(|last| order_key(last) >= order_key(&event))
        {
            return Err(WireError::Invalid {
                what,
                why: "not in order (depth, then id) or repeated",
            });
        }
        account_log.push(event);
    }
    Ok(account_log)
}

/// How the requester says it found this account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// From this account's card (pasted, scanned).
    Card,
    /// A contact of both introduced them (`kith contact share`).
    Introduction(AccountId),
    /// By a `name@domain` handle on a nameserver.
    Nameserver(String),
}

/// One contact request, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    /// The requester's card URI.
    pub card: String,
    /// How the requester found this account.
    pub how: How,
    /// The first messages the requester queued for this account, oldest
    /// first.
    pub messages: Vec<String>,
    /// When it was sent (ms since the epoch, the requester's clock).
    pub sent: i64,
    /// The requester's account log (at most [`MAX_ACCOUNT_EVENTS`]).
    pub account_log: Vec<Event>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The bytes are not a request.
    #[error("malformed contact request: {0}")]
    Format(#[from] WireError),
    /// The card in it does not verify.
    #[error("contact request with a bad card: {0}")]
    Card(#[from] CardError),
    /// The device that sent it is not on its card.
    #[error("contact request from a device its card does not list")]
    NotOnCard,
    /// The account log it carries does not show the sender (or the
    /// card's signer) active in the card's account.
    #[error("contact request whose account log does not show its device active: {0}")]
    NotInAccount(String),
    /// It claims to come from this very account.
    #[error("contact request from this account")]
    FromSelf,
    /// It claims an introduction by the account asked, or by itself.
    #[error("contact request claiming an introduction by one of its own two sides")]
    SelfIntroduced,
}

impl ContactRequest {
    /// The request's bytes (at most [`MAX_REQUEST`] when every field is
    /// within its bound; [`ContactRequest::bounded`] makes sure of that).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(REQUEST_VERSION).str(&self.card);
        match &self.how {
            How::Card => {
                w.u8(0);
            }
            How::Introduction(by) => {
                w.u8(1).fixed(by.as_bytes());
            }
            How::Nameserver(handle) => {
                w.u8(2).str(handle);
            }
        }
        w.u16(u16::try_from(self.messages.len()).unwrap_or(u16::MAX));
        for m in &self.messages {
            w.str(m);
        }
        w.i64(self.sent);
        w.u16(u16::try_from(self.account_log.len()).unwrap_or(u16::MAX));
        for e in &self.account_log {
            w.bytes(&e.encode());
        }
        w.finish()
    }

    /// A request from what the sender has, cut to the bounds: at most
    /// [`MAX_MESSAGES`] messages of at most [`MAX_MESSAGE`] bytes each (cut
    /// at a character boundary); a handle that is not one in normal form
    /// of at most [`MAX_HANDLE`] bytes is left out; the account log in
    /// order (depth, then id), each event once.
    pub fn bounded(
        card: String,
        how: How,
        messages: &[String],
        sent: i64,
        account_log: Vec<Event>,
    ) -> Self {
        // A handle is not cut (a cut one could be another valid handle):
        // one too long, or not in normal form, is not claimed.
        let how = match how {
            How::Nameserver(h) if !is_normal_handle(&h) => How::Card,
            other => other,
        };
        Self {
            card,
            how,
            messages: messages
                .iter()
                .take(MAX_MESSAGES)
                .map(|m| cut(m, MAX_MESSAGE))
                .collect(),
            sent,
            account_log: in_order(account_log),
        }
    }

    /// Reads a request, checking every bound (not the card: see
    /// [`ContactRequest::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_REQUEST {
            return Err(WireError::TooLarge {
                what: "contact request",
                got: bytes.len() as u64,
                max: MAX_REQUEST as u64,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("request version")?;
        if version != REQUEST_VERSION {
            return Err(WireError::Invalid {
                what: "request version",
                why: "unknown version",
            });
        }
        let card = r.str(MAX_CARD_URI, "request card")?.to_owned();
        // One text per card: as `Card::sign` writes it (lower case, no
        // space around).
        if card.trim() != card || card.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(WireError::Invalid {
                what: "request card",
                why: "not as the card is written",
            });
        }
        let how = match r.u8("request how")? {
            0 => How::Card,
            1 => How::Introduction(AccountId::from_bytes(r.array("request introducer")?)),
            2 => {
                let handle = r.str(MAX_HANDLE, "request handle")?;
                if !is_normal_handle(handle) {
                    return Err(WireError::Invalid {
                        what: "request handle",
                        why: "not a handle in normal form",
                    });
                }
                How::Nameserver(handle.to_owned())
            }
            _ => {
                return Err(WireError::Invalid {
                    what: "request how",
                    why: "unknown kind",
                });
            }
        };
        let n = r.count(MAX_MESSAGES, "request messages")?;
        let mut messages = Vec::with_capacity(n);
        for _ in 0..n {
            messages.push(r.str(MAX_MESSAGE, "request message")?.to_owned());
        }
        let sent = r.i64("request time")?;
        let account_log = read_account_log(&mut r, MAX_ACCOUNT_EVENTS, "request account log")?;
        r.finish("contact request")?;
        Ok(Self {
            card,
            how,
            messages,
            sent,
            account_log,
        })
    }

    /// Checks a request that device `from` (proven by its link) sent to a
    /// device of account `me`: the card verifies, lists `from`, is not
    /// `me`'s own, an introduction names neither side, and the account
    /// log carried — with `known`, the events of that account's log this
    /// device already holds, so a revoked device cannot leave its
    /// revocation out — shows `from` and the card's signer active in the
    /// card's account. Gives the card.
    ///
    /// `sent` is the requester's claim: keep and order requests by this
    /// device's own clock.
    pub fn verify(
        &self,
        from: DeviceId,
        me: AccountId,
        known: &[Event],
    ) -> Result<Card, RequestError> {
        let card = self.check_claims(from, me)?;
        let state =
            crate::names::resolve_account(card.account, self.account_log.iter().chain(known))
                .map_err(|e| RequestError::NotInAccount(e.to_string()))?;
        Self::check_active(&state, from, &card)?;
        Ok(card)
    }

    /// The checks that need no account log: the card verifies, lists
    /// `from`, is not `me`'s own, and an introduction names neither side.
    /// Gives the card.
    pub fn check_claims(&self, from: DeviceId, me: AccountId) -> Result<Card, RequestError> {
        let card = Card::parse(&self.card)?;
        if !card.devices.contains(&from) {
            return Err(RequestError::NotOnCard);
        }
        if card.account == me {
            return Err(RequestError::FromSelf);
        }
        if let How::Introduction(by) = self.how
            && (by == me || by == card.account)
        {
            return Err(RequestError::SelfIntroduced);
        }
        Ok(card)
    }

    /// Whether `state` (the card's account, resolved) shows `from` and the
    /// card's signer active: for a receiver that already holds the
    /// account's log (checked when it came), instead of the carried one.
    pub fn check_active(
        state: &crate::identity::AccountState,
        from: DeviceId,
        card: &Card,
    ) -> Result<(), RequestError> {
        if !state.is_active(&from) || !state.is_active(&card.signer) {
            return Err(RequestError::NotInAccount(
                "the device is not active in the account".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `h` is a `name@domain` handle as [`crate::names::Handle`]
/// writes it, within [`MAX_HANDLE`] bytes.
fn is_normal_handle(h: &str) -> bool {
    h.len() <= MAX_HANDLE
        && h.parse::<crate::names::Handle>()
            .is_ok_and(|p| p.to_string() == h)
}

/// Where an event of the account log goes in a request.
fn order_key(e: &Event) -> (u64, crate::id::EventId) {
    (e.header().depth, e.id())
}

/// `events` by depth, then id, each once.
fn in_order(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by_key(order_key);
    events.dedup_by_key(|e| e.id());
    events
}
