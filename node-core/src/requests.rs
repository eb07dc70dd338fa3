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
        let cut = |s: &str, max: usize| {
            let mut end = s.len().min(max);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        };
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
        let n = r.count(MAX_ACCOUNT_EVENTS, "request account log")?;
        let mut account_log = Vec::with_capacity(n);
        for _ in 0..n {
            let raw = r.bytes(MAX_EVENT, "request account event")?;
            let event = Event::decode(raw).map_err(|_| WireError::Invalid {
                what: "request account event",
                why: "not an event",
            })?;
            // One order: by depth, then id, each event once.
            if account_log
                .last()
                .is_some_and(|last: &Event| order_key(last) >= order_key(&event))
            {
                return Err(WireError::Invalid {
                    what: "request account log",
                    why: "not in order (depth, then id) or repeated",
                });
            }
            account_log.push(event);
        }
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
        let state =
            crate::names::resolve_account(card.account, self.account_log.iter().chain(known))
                .map_err(|e| RequestError::NotInAccount(e.to_string()))?;
        if !state.is_active(&from) || !state.is_active(&card.signer) {
            return Err(RequestError::NotInAccount(
                "the device is not active in the account".into(),
            ));
        }
        Ok(card)
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
