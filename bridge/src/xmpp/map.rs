//! What arrived on the XMPP stream, as [`Incoming`]: pure functions of the
//! stanza and what the session knows (its own address, its nickname, the
//! group chats it is in), so they are tested and fuzzed without a server.
//! Everything a stanza carries is bounded here ([`crate::MAX_TEXT`],
//! [`crate::MAX_FIELD`], [`crate::MAX_CONTACTS`]); a stanza that does not fit
//! what kith shows (no body, a private message through a group, a group we
//! are not in, our own account's other clients) gives nothing.

use crate::{Contact, Incoming, MAX_CONTACTS, MAX_FIELD, MAX_TEXT, Received, cut};
use std::collections::{HashMap, HashSet};
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::delay::Delay;
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::muc::MucUser;
use tokio_xmpp::parsers::muc::user::Status as MucStatus;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::receipts;
use tokio_xmpp::parsers::roster::{Roster, Subscription};

/// Marks text cut at [`MAX_TEXT`].
pub(crate) const CUT_MARK: &str = " […]";

/// What the session knows that decides what a stanza means.
#[derive(Debug)]
pub(crate) struct View<'a> {
    /// Our account.
    pub own: &'a BareJid,
    /// Our nickname in group chats.
    pub nick: &'a str,
    /// The group chats we are in or joining.
    pub groups: &'a HashSet<BareJid>,
    /// Our messages not yet delivered or failed: id → (recipient, group).
    /// Receipts and errors count only from the recipient (or our server).
    pub sent: &'a HashMap<String, (BareJid, bool)>,
    /// Now, in Unix milliseconds: no message is dated later.
    pub now_ms: i64,
}

/// Whether `from` may speak about our message `id`: its recipient, or our
/// own server.
fn answers_for(view: &View<'_>, from: &BareJid, id: &str, group_ok: bool) -> bool {
    match view.sent.get(id) {
        Some((to, group)) => {
            (to == from && (group_ok || !group))
                || (from.node().is_none() && from.domain() == view.own.domain())
        }
        None => false,
    }
}

/// A message stanza.
pub(crate) fn message(view: &View<'_>, mut m: Message) -> Option<Incoming> {
    let from = m.from.clone()?;
    let bare = from.to_bare();
    let id =
        m.id.as_ref()
            .map(|i| i.0.clone())
            .filter(|i| i.len() <= MAX_FIELD);
    if m.type_ == MessageType::Error {
        // A message of ours the network refused, said by its recipient or
        // our server only.
        let id = id?;
        if !answers_for(view, &bare, &id, true) {
            return None;
        }
        return Some(Incoming::Failed {
            id,
            why: format!("{bare} answered with an error"),
        });
    }
    let muc_user = m
        .payloads
        .iter()
        .any(|p| p.is("x", tokio_xmpp::parsers::ns::MUC_USER));
    let group = m.type_ == MessageType::Groupchat;
    if group && !view.groups.contains(&bare) {
        return None;
    }
    if !group && (muc_user || view.groups.contains(&bare)) {
        // A private message through a group chat: its sender is a nickname
        // the group vouches for, not an account; not taken.
        return None;
    }
    if !group && (&bare == view.own || bare.node().is_none()) {
        // Our own other clients, or a server (announcements, not a person).
        return None;
    }
    if let Some(r) = m.extract_valid_payload::<receipts::Received>() {
        if group || r.id.len() > MAX_FIELD || !answers_for(view, &bare, &r.id, false) {
            return None;
        }
        return Some(Incoming::Delivered {
            chat: bare.to_string(),
            id: r.id,
        });
    }
    let wants_receipt = !group && m.extract_valid_payload::<receipts::Request>().is_some();
    let time_ms = m
        .extract_valid_payload::<Delay>()
        .map(|d| d.stamp.0.timestamp_millis().min(view.now_ms));
    let (_, mut text) = m.get_best_body_cloned(vec![])?;
    if cut(&mut text, MAX_TEXT - CUT_MARK.len()) {
        text.push_str(CUT_MARK);
    }
    let (sender, own) = if group {
        let nick = from.resource()?.as_str().to_owned();
        let own = nick == view.nick;
        (nick, own)
    } else {
        (bare.to_string(), false)
    };
    if sender.len() > MAX_FIELD {
        return None;
    }
    Some(Incoming::Message(Received {
        chat: bare.to_string(),
        group,
        sender,
        own,
        wants_receipt: wants_receipt && id.is_some(),
        id,
        text,
        time_ms,
    }))
}

/// A presence stanza: only a group chat confirming our join matters.
pub(crate) fn presence(view: &View<'_>, p: &Presence) -> Option<Incoming> {
    let from = p.from.as_ref()?;
    let bare = from.to_bare();
    if !view.groups.contains(&bare) || p.type_ != PresenceType::None {
        return None;
    }
    let ours = p
        .payloads
        .iter()
        .filter_map(|e| MucUser::try_from(e.clone()).ok())
        .any(|u| u.status.contains(&MucStatus::SelfPresence));
    ours.then(|| Incoming::Joined {
        group: bare.to_string(),
    })
}

/// A roster (a whole one, or a push of changed items): the items, at most
/// [`MAX_CONTACTS`], and which of them were removed.
pub(crate) fn roster(payload: Element) -> Option<(Vec<Contact>, Vec<String>)> {
    let roster = Roster::try_from(payload).ok()?;
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for item in roster.items.into_iter().take(MAX_CONTACTS) {
        let address = item.jid.to_string();
        if address.len() > MAX_FIELD {
            continue;
        }
        if item.subscription == Subscription::Remove {
            removed.push(address);
            continue;
        }
        let name = item.name.filter(|n| !n.is_empty()).map(|mut n| {
            cut(&mut n, MAX_FIELD);
            n
        });
        kept.push(Contact { address, name });
    }
    Some((kept, removed))
}

/// Folds a roster push into the list kept, still at most [`MAX_CONTACTS`].
pub(crate) fn apply_push(list: &mut Vec<Contact>, changed: Vec<Contact>, removed: &[String]) {
    list.retain(|c| !removed.contains(&c.address));
    for c in changed {
        if let Some(old) = list.iter_mut().find(|o| o.address == c.address) {
            *old = c;
        } else if list.len() < MAX_CONTACTS {
            list.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::jid::Jid;
    use tokio_xmpp::parsers::message::{Id, Lang};

    fn view_parts() -> (BareJid, HashSet<BareJid>) {
        let own = BareJid::new("me@example.org").unwrap();
        let groups = [BareJid::new("room@muc.example.org").unwrap()]
            .into_iter()
            .collect();
        (own, groups)
    }

    fn sent() -> HashMap<String, (BareJid, bool)> {
        [
            (
                "x7".to_string(),
                (BareJid::new("bob@example.org").unwrap(), false),
            ),
            (
                "m1".to_string(),
                (BareJid::new("bob@example.org").unwrap(), false),
            ),
        ]
        .into_iter()
        .collect()
    }

    const NOW: i64 = 1_800_000_000_000;

    fn chat(from: &str, body: &str) -> Message {
        let mut m = Message::chat(None::<Jid>).with_body(Lang::new(), body.into());
        m.from = Some(Jid::new(from).unwrap());
        m.id = Some(Id("m1".into()));
        m
    }

    #[test]
    fn a_chat_message_with_a_receipt_request() {
        let (own, groups) = view_parts();
        let sent = sent();
        let view = View {
            own: &own,
            nick: "me",
            groups: &groups,
            sent: &sent,
            now_ms: NOW,
        };
        let m = chat("bob@example.org/phone", "hi").with_payload(receipts::Request);
        let Some(Incoming::Message(r)) = message(&view, m) else {
            panic!("no message")
        };
        assert_eq!(
            (r.chat.as_str(), r.sender.as_str(), r.text.as_str()),
            ("bob@example.org", "bob@example.org", "hi")
        );
        assert!(r.wants_receipt && !r.group && !r.own);
        assert_eq!(r.id.as_deref(), Some("m1"));
    }

    #[test]
    fn group_messages_only_from_joined_groups_and_never_private_ones() {
        let (own, groups) = view_parts();
        let sent = sent();
        let view = View {
            own: &own,
            nick: "me",
            groups: &groups,
            sent: &sent,
            now_ms: NOW,
        };
        let mut g = Message::groupchat(None::<Jid>).with_body(Lang::new(), "all".into());
        g.from = Some(Jid::new("room@muc.example.org/alice").unwrap());
        let Some(Incoming::Message(r)) = message(&view, g.clone()) else {
            panic!("no group message")
        };
        assert!(r.group && !r.own && r.sender == "alice" && !r.wants_receipt);
        g.from = Some(Jid::new("room@muc.example.org/me").unwrap());
        let Some(Incoming::Message(r)) = message(&view, g.clone()) else {
            panic!("no echo")
        };
        assert!(r.own);
        g.from = Some(Jid::new("other@muc.example.org/alice").unwrap());
        assert_eq!(message(&view, g), None);
        let private = chat("room@muc.example.org/alice", "psst");
        assert_eq!(message(&view, private), None);
        let mine = chat("me@example.org/laptop", "from my laptop");
        assert_eq!(message(&view, mine), None);
    }

    #[test]
    fn receipts_and_errors_name_our_id() {
        let (own, groups) = view_parts();
        let sent = sent();
        let view = View {
            own: &own,
            nick: "me",
            groups: &groups,
            sent: &sent,
            now_ms: NOW,
        };
        let mut r = Message::chat(None::<Jid>).with_payload(receipts::Received { id: "x7".into() });
        r.from = Some(Jid::new("bob@example.org/phone").unwrap());
        assert_eq!(
            message(&view, r),
            Some(Incoming::Delivered {
                chat: "bob@example.org".into(),
                id: "x7".into()
            })
        );
        let mut e = chat("bob@example.org", "");
        e.type_ = MessageType::Error;
        assert!(
            matches!(message(&view, e.clone()), Some(Incoming::Failed { id, .. }) if id == "m1")
        );
        // Nobody else speaks for our message: not a stranger's receipt or
        // error, nor one for an id we never sent.
        let mut forged =
            Message::chat(None::<Jid>).with_payload(receipts::Received { id: "x7".into() });
        forged.from = Some(Jid::new("mallory@example.org/x").unwrap());
        assert_eq!(message(&view, forged), None);
        e.from = Some(Jid::new("mallory@example.org").unwrap());
        assert_eq!(message(&view, e.clone()), None);
        e.from = Some(Jid::new("bob@example.org").unwrap());
        e.id = Some(Id("never-sent".into()));
        assert_eq!(message(&view, e.clone()), None);
        // Our server may say it failed.
        e.from = Some(Jid::new("example.org").unwrap());
        e.id = Some(Id("m1".into()));
        assert!(matches!(message(&view, e), Some(Incoming::Failed { .. })));
    }

    #[test]
    fn a_private_message_through_any_group_and_a_future_date_are_not_taken() {
        let (own, groups) = view_parts();
        let sent = sent();
        let view = View {
            own: &own,
            nick: "me",
            groups: &groups,
            sent: &sent,
            now_ms: NOW,
        };
        let mut p = chat("alice@rooms.elsewhere.org/mallory", "psst");
        p.payloads.push(
            tokio_xmpp::minidom::Element::builder("x", tokio_xmpp::parsers::ns::MUC_USER).build(),
        );
        assert_eq!(message(&view, p), None);
        let dated = chat("bob@example.org", "from the future").with_payload(Delay {
            from: None,
            stamp: "2099-01-01T00:00:00Z".parse().unwrap(),
            data: None,
        });
        let Some(Incoming::Message(r)) = message(&view, dated) else {
            panic!("no message")
        };
        assert_eq!(r.time_ms, Some(NOW));
    }

    #[test]
    fn long_text_is_cut_and_marked() {
        let (own, groups) = view_parts();
        let sent = sent();
        let view = View {
            own: &own,
            nick: "me",
            groups: &groups,
            sent: &sent,
            now_ms: NOW,
        };
        let m = chat("bob@example.org", &"é".repeat(MAX_TEXT));
        let Some(Incoming::Message(r)) = message(&view, m) else {
            panic!("no message")
        };
        assert!(r.text.len() <= MAX_TEXT && r.text.ends_with(CUT_MARK));
    }

    #[test]
    fn roster_pushes_fold_in_bounded() {
        let mut list = vec![Contact {
            address: "a@x".into(),
            name: None,
        }];
        apply_push(
            &mut list,
            vec![
                Contact {
                    address: "a@x".into(),
                    name: Some("Ann".into()),
                },
                Contact {
                    address: "b@x".into(),
                    name: None,
                },
            ],
            &[],
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name.as_deref(), Some("Ann"));
        apply_push(&mut list, vec![], &["a@x".into()]);
        assert_eq!(list.len(), 1);
        let many: Vec<Contact> = (0..MAX_CONTACTS + 5)
            .map(|i| Contact {
                address: format!("{i}@x"),
                name: None,
            })
            .collect();
        apply_push(&mut list, many, &[]);
        assert_eq!(list.len(), MAX_CONTACTS);
    }
}
