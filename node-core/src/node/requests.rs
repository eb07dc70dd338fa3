//! Contact requests as the node keeps and answers them: a request from
//! someone who added this account (and is not a contact) is checked, kept
//! in a bounded table (`store::requests`) and listed; accepting adds the
//! requester as a contact, declining or blocking records a refusal in the
//! self log so every own device drops the request, and blocking also
//! refuses that account's links and introductions.
//!
//! The sending side builds a request for a contact it has never synced
//! with (`Node::request_to`): its own card, how it found the other side,
//! the first messages it queued, and its account log.

use super::contacts::{RegisterKey, only_match, self_kind};
use super::{Node, NodeError};
use crate::id::{AccountId, DeviceId, LogId};
use crate::identity::Card;
use crate::log::Event;
use crate::node::messages::conversation_kind;
use crate::requests::{ContactRequest, How};
use crate::wire::{Reader, WireError, Writer};

/// Most requests kept (from as many accounts): beyond it the oldest go.
pub const MAX_REQUESTS: usize = 1000;

/// The shortest id prefix that answers a request.
const MIN_PREFIX: usize = 12;

/// How many of the first events of a conversation are looked at for the
/// messages a request carries.
const FIRST_EVENTS: usize = 64;

/// A request as `kith contact requests --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RequestInfo {
    /// The requesting account: answer with it (or a prefix).
    pub id: AccountId,
    /// The name its card gives (the requester's claim; unvalidated).
    pub name: String,
    /// How the requester says it found this account: `card`,
    /// `introduction` or `nameserver`.
    pub how: String,
    /// For an introduction: the account it names as introducer (a claim).
    #[serde(default)]
    pub introduced_by: Option<AccountId>,
    /// That introducer's name, if it is a contact here.
    #[serde(default)]
    pub introducer_name: Option<String>,
    /// For a nameserver: the handle it looked up.
    #[serde(default)]
    pub handle: Option<String>,
    /// When it arrived (this device's clock), RFC 3339.
    pub time: String,
    /// The first messages the requester queued, oldest first.
    pub messages: Vec<String>,
    /// The device that sent it.
    pub device: DeviceId,
    /// A contact whose name (or alias) is the same as this requester's
    /// name: a different account, maybe posing as it.
    #[serde(default)]
    pub resembles: Option<AccountId>,
}

/// Where a requesting account stands here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Already a contact: no request is kept.
    Contact,
    /// Declined or blocked: requests are dropped, silently.
    Refused,
    /// Neither: a request is kept.
    Open,
}

/// How the user answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Add the requester as a contact.
    Accept,
    /// Drop the request (and later ones from that account).
    Decline,
    /// Drop it, and refuse that account's links, requests and
    /// introductions, on all own devices.
    Block,
}

impl std::str::FromStr for Answer {
    type Err = NodeError;
    fn from_str(s: &str) -> Result<Self, NodeError> {
        match s {
            "accept" => Ok(Self::Accept),
            "decline" => Ok(Self::Decline),
            "block" => Ok(Self::Block),
            other => Err(NodeError::Invalid(format!(
                "{other:?} is not an answer to a request (accept, decline or block)"
            ))),
        }
    }
}

/// A refusal in the self log: the account, and whether it is a block.
pub(super) fn encode_refusal(account: AccountId, block: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(account.as_bytes()).u8(u8::from(block));
    w.finish()
}

fn decode_refusal(body: &[u8]) -> Result<(AccountId, bool), WireError> {
    let mut r = Reader::new(body);
    let account = AccountId::from_bytes(r.array("refused account")?);
    let block = match r.u8("refusal kind")? {
        0 => false,
        1 => true,
        _ => {
            return Err(WireError::Invalid {
                what: "refusal kind",
                why: "unknown",
            });
        }
    };
    r.finish("refusal")?;
    Ok((account, block))
}

/// Refusals from the self log: account → (whether blocked, the entry
/// that set it). A block wins over a decline, whatever the order.
pub(super) type Refusals = std::collections::HashMap<AccountId, (bool, RegisterKey)>;

impl Node {
    /// Records a stored self-log refusal.
    pub(super) fn apply_refusal_entry(&mut self, event: &Event) {
        let Some(Ok((account, block))) = event.body().map(decode_refusal) else {
            return;
        };
        if account == self.account {
            return;
        }
        let h = event.header();
        let by = (h.depth, h.author, event.id());
        let entry = self.refused.entry(account).or_insert((block, by));
        if (block, by) > *entry {
            *entry = (block, by);
        }
    }

    /// Where `account` stands for requests. A decline or a block holds
    /// against a contact that only came by introduction; a contact an own
    /// device added itself overrides it (the user chose it).
    pub fn request_standing(&self, account: AccountId) -> Standing {
        let contact = self.contacts.get(&account);
        if contact.is_some_and(|c| c.added_directly)
            || (contact.is_some() && !self.refused.contains_key(&account))
        {
            Standing::Contact
        } else if account == self.account || self.refused.contains_key(&account) {
            Standing::Refused
        } else {
            Standing::Open
        }
    }

    /// Whether `account` is blocked (and not added directly since): its
    /// links, requests and introductions are refused.
    pub fn is_blocked(&self, account: AccountId) -> bool {
        self.refused.get(&account).is_some_and(|(block, _)| *block)
            && !self
                .contacts
                .get(&account)
                .is_some_and(|c| c.added_directly)
    }

    /// The events of `account`'s log this device holds (for
    /// [`ContactRequest::verify`]).
    pub fn held_account_events(&self, account: AccountId) -> Vec<Event> {
        self.accounts
            .get(&account)
            .map(|log| log.events().cloned().collect())
            .unwrap_or_default()
    }

    /// A request to contact `to`: this account's card (with `hints`),
    /// `how` it was found, the first messages queued for it, and the
    /// account log.
    pub async fn request_to(
        &self,
        to: AccountId,
        how: How,
        hints: Vec<String>,
        now: i64,
    ) -> Result<ContactRequest, NodeError> {
        self.require_contact(to)?;
        let card = self.card(hints, now)?;
        let account_log = self.held_account_events(self.account);
        if account_log.len() > crate::requests::MAX_ACCOUNT_EVENTS {
            return Err(NodeError::Invalid(format!(
                "the account log has {} entries; a contact request carries at most {}",
                account_log.len(),
                crate::requests::MAX_ACCOUNT_EVENTS
            )));
        }
        let log = LogId::conversation(self.account, to);
        let first: Vec<crate::id::EventId> = self
            .logs
            .get(&log)
            .map(|dag| dag.display_order().into_iter().take(FIRST_EVENTS).collect())
            .unwrap_or_default();
        let own = self.account_state()?;
        let mut events = self.store.events_by_id(&first).await?;
        let pos: std::collections::HashMap<_, _> =
            first.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        events.sort_by_key(|e| pos.get(&e.event.id()).copied().unwrap_or(usize::MAX));
        let messages: Vec<String> = events
            .iter()
            .filter(|e| {
                e.event.header().kind == conversation_kind::MESSAGE
                    && own.devices.contains_key(&e.event.header().author)
            })
            .filter_map(|e| e.event.body())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .take(crate::requests::MAX_MESSAGES)
            .collect();
        Ok(ContactRequest::bounded(
            card,
            how,
            &messages,
            now,
            account_log,
        ))
    }

    /// Keeps a checked request from `account`'s device `from` (see
    /// [`ContactRequest::verify`]), unless the account became a contact or
    /// was refused meanwhile. Only what is shown is kept (not the account
    /// log it carried): at most about 15 KiB per request. Gives how many
    /// older requests went to make room, or `None` if it was not kept.
    pub async fn keep_request(
        &mut self,
        (account, from): (AccountId, DeviceId),
        request: &ContactRequest,
        now: i64,
    ) -> Result<Option<u64>, NodeError> {
        if self.request_standing(account) != Standing::Open {
            return Ok(None);
        }
        let shown = ContactRequest {
            account_log: Vec::new(),
            ..request.clone()
        };
        Ok(Some(
            self.store
                .put_request((account, from), &shown.encode(), now, MAX_REQUESTS)
                .await?,
        ))
    }

    /// How many requests are kept (some may be from accounts answered
    /// since: [`Node::contact_requests`] drops those).
    pub async fn request_count(&self) -> Result<u64, NodeError> {
        Ok(self.store.request_count().await?)
    }

    /// The requests waiting for an answer, newest first. Requests from
    /// accounts that became contacts or were refused (on any own device)
    /// are dropped here.
    pub async fn contact_requests(&self) -> Result<Vec<RequestInfo>, NodeError> {
        let mut out = Vec::new();
        for row in self.store.requests().await? {
            let kept = ContactRequest::decode(&row.request)
                .ok()
                .and_then(|r| Card::parse(&r.card).ok().map(|c| (r, c)))
                .filter(|(_, c)| c.account == row.account);
            let Some((request, card)) = kept else {
                self.store.remove_request(row.account).await?;
                continue;
            };
            if self.request_standing(row.account) != Standing::Open {
                self.store.remove_request(row.account).await?;
                continue;
            }
            let (how, introduced_by, handle) = match request.how {
                How::Card => ("card", None, None),
                How::Introduction(by) => ("introduction", Some(by), None),
                How::Nameserver(h) => ("nameserver", None, Some(h)),
            };
            let lower = card.name.to_lowercase();
            let resembles = self
                .contacts
                .iter()
                .find(|(_, c)| {
                    c.card.name.to_lowercase() == lower
                        || c.alias
                            .as_deref()
                            .is_some_and(|a| a.to_lowercase() == lower)
                })
                .map(|(id, _)| *id);
            out.push(RequestInfo {
                resembles,
                id: row.account,
                name: card.name,
                how: how.into(),
                introducer_name: introduced_by
                    .and_then(|by| self.contacts.get(&by))
                    .map(|c| c.alias.clone().unwrap_or_else(|| c.card.name.clone())),
                introduced_by,
                handle,
                time: crate::wire::rfc3339(row.received),
                messages: request.messages,
                device: row.device,
            });
        }
        Ok(out)
    }

    /// Answers the request `id` (an account id or a unique prefix of at
    /// least 12 characters; never the name, which the requester chose):
    /// accept adds it as a contact; decline and block record a refusal in
    /// the self log.
    pub async fn answer_request(
        &mut self,
        id: &str,
        answer: Answer,
        now: i64,
    ) -> Result<AccountId, NodeError> {
        let rows = self.contact_requests().await?;
        let t = id.trim();
        let lower = t.to_lowercase();
        // The full id or a prefix of at least 12 characters: a name, or a
        // short prefix, is the stranger's to choose or cheap to grind.
        if lower.len() < MIN_PREFIX {
            return Err(NodeError::Invalid(format!(
                "give the request's id (at least {MIN_PREFIX} characters, as `contact requests` shows it)"
            )));
        }
        let candidates: Vec<AccountId> = rows
            .iter()
            .filter(|r| r.id.matches_prefix(&lower))
            .map(|r| r.id)
            .collect();
        let account = only_match(&candidates, t, "no contact request", |a| a.short(12))?;
        match answer {
            Answer::Accept => {
                let request = self
                    .store
                    .requests()
                    .await?
                    .into_iter()
                    .find(|r| r.account == account)
                    .and_then(|r| ContactRequest::decode(&r.request).ok())
                    .ok_or_else(|| NodeError::Invalid("the request is gone".into()))?;
                self.add_contact(&request.card, None, now).await?;
            }
            Answer::Decline | Answer::Block => {
                let body = encode_refusal(account, answer == Answer::Block);
                self.append(LogId::self_log(self.account), self_kind::REFUSE, body, now)
                    .await?;
                // A blocked account that had our LAN secret must stop
                // recognising our devices: a new one, never granted to it.
                if answer == Answer::Block
                    && self.lan_grants.contains_key(&(account, true))
                    && self.lan_secret().is_some()
                {
                    self.rotate_lan_secret(now).await?;
                }
            }
        }
        self.store.remove_request(account).await?;
        Ok(account)
    }
}
