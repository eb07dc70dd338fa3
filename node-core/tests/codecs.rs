//! Every wire type: decode(encode(x)) == x, and arbitrary bytes give an
//! error, never a panic.

#![allow(clippy::unwrap_used)]

mod common;

use common::Dev;
use node_core::crypto::SigningKey;
use node_core::identity::entry::kind;
use node_core::identity::{AccountEntry, Card};
use node_core::log::{Event, Header, LogKind};
use node_core::{AccountId, DeviceId, EventId, LogId};
use proptest::prelude::*;

fn id32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 äöü]{1,20}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn header() -> impl Strategy<Value = Header> {
    (
        proptest::option::of(id32()),
        0u8..4,
        id32(),
        1u64..u64::MAX,
        proptest::option::of(id32()),
        proptest::collection::btree_set(id32(), 0..5),
        any::<i64>(),
        any::<u16>(),
        0u32..65536,
        id32(),
    )
        .prop_map(
            |(log, k, author, seq, prev, parents, time, kind, body_len, body_hash)| {
                let parents: Vec<EventId> = parents.into_iter().map(EventId::from_bytes).collect();
                let genesis = log.is_none();
                let parents = if genesis { vec![] } else { parents };
                let depth = if parents.is_empty() { 0 } else { 7 };
                Header {
                    log: log.map(LogId::from_bytes),
                    log_kind: [
                        LogKind::Account,
                        LogKind::SelfLog,
                        LogKind::Conversation,
                        LogKind::Room,
                    ][k as usize],
                    author: DeviceId::from_bytes(author),
                    seq,
                    prev: if depth == 0 {
                        None
                    } else {
                        prev.map(EventId::from_bytes)
                    },
                    parents,
                    depth,
                    time,
                    kind,
                    body_len,
                    body_hash,
                }
            },
        )
}

fn entry() -> impl Strategy<Value = AccountEntry> {
    prop_oneof![
        (name(), name(), proptest::option::of(Just(()))).prop_map(|(a, d, r)| {
            AccountEntry::Genesis {
                account_name: a,
                device_name: d,
                recovery: r.map(|_| SigningKey::generate().verifying_key()),
            }
        }),
        (id32(), name()).prop_map(|(d, n)| {
            let k = SigningKey::generate();
            AccountEntry::AddDevice {
                device: DeviceId::from_bytes(d),
                name: n.clone(),
                join: node_core::identity::sign_join(&k, AccountId::from_bytes(d), &n),
            }
        }),
        (id32(), any::<u64>(), any::<bool>()).prop_map(|(d, c, cuts)| {
            AccountEntry::RevokeDevice {
                device: DeviceId::from_bytes(d),
                cutoff_seq: c,
                cuts,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn header_round_trips(h in header()) {
        prop_assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn event_round_trips(body in proptest::collection::vec(any::<u8>(), 0..300), t in any::<i64>(), keep_body in any::<bool>()) {
        let mut d = Dev::new();
        let e = d.event(Some(LogId::from_bytes([1; 32])), LogKind::SelfLog, &[], 3, body, t);
        let e = if keep_body { e } else { e.without_body() };
        let back = Event::decode(&e.encode()).unwrap();
        back.verify().unwrap();
        prop_assert_eq!(back, e);
    }

    #[test]
    fn account_entry_round_trips(e in entry()) {
        prop_assert_eq!(AccountEntry::decode(e.kind(), &e.encode()).unwrap(), e);
    }

    #[test]
    fn card_round_trips(n in name(), hints in proptest::collection::vec("[a-z0-9.:]{1,40}", 0..5), issued in any::<i64>()) {
        let k = SigningKey::generate();
        let me = DeviceId::from(k.verifying_key());
        let card = Card { account: AccountId::from_bytes([4; 32]), name: n, signer: me, devices: vec![me], hints, issued };
        let uri = Card::sign(&k, &card);
        prop_assert_eq!(Card::parse(&uri).unwrap(), card.clone());
        prop_assert_eq!(Card::parse(&uri.to_ascii_uppercase()).unwrap(), card);
    }

    #[test]
    fn ids_round_trip(b in id32()) {
        let id = EventId::from_bytes(b);
        prop_assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), k in any::<u16>()) {
        let _ = Header::decode(&bytes);
        let _ = Event::decode(&bytes).map(|e| e.verify());
        let _ = AccountEntry::decode(k % 5, &bytes);
        for kd in [kind::GENESIS, kind::ADD_DEVICE, kind::REVOKE_DEVICE] {
            let _ = AccountEntry::decode(kd, &bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = Card::parse(&text);
        let _ = Card::parse(&format!("kith:card/{}", node_core::wire::to_base32(&bytes)));
        let _ = text.parse::<EventId>();
    }

    /// Mutating any byte of a valid event gives an error, never a panic or
    /// a different valid event under the same signature.
    #[test]
    fn mutated_events_are_refused(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut d = Dev::new();
        let e = d.event(Some(LogId::from_bytes([1; 32])), LogKind::SelfLog, &[], 3, b"hello".to_vec(), 5);
        let mut bytes = e.encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let accepted = Event::decode(&bytes).and_then(|x| x.verify().map(|_| x));
        prop_assert!(accepted.is_err());
    }
}

#[test]
fn non_canonical_encodings_are_refused() {
    let mut d = Dev::new();
    let e = d.event(
        Some(LogId::from_bytes([1; 32])),
        LogKind::SelfLog,
        &[],
        3,
        b"x".to_vec(),
        5,
    );
    let mut bytes = e.encode();
    bytes.push(0);
    assert!(Event::decode(&bytes).is_err(), "trailing bytes");
    // Unsorted parents.
    let h = Header {
        parents: vec![EventId::from_bytes([2; 32]), EventId::from_bytes([1; 32])],
        depth: 1,
        ..e.header().clone()
    };
    assert!(Header::decode(&h.encode()).is_err());
}

/// A request from a fresh account of one device (`dev`), with its genesis
/// as the account log.
fn request_from(
    dev: &mut Dev,
    how: node_core::requests::How,
) -> node_core::requests::ContactRequest {
    let (account, genesis) = common::genesis(dev, None);
    let card = Card {
        account,
        name: "alice".into(),
        signer: dev.id(),
        devices: vec![dev.id()],
        hints: vec![],
        issued: 1000,
    };
    node_core::requests::ContactRequest::bounded(
        Card::sign(&dev.key, &card),
        how,
        &["hello, it's Alice".to_owned()],
        2000,
        vec![genesis],
    )
}

#[test]
fn contact_requests_round_trip_and_are_checked() {
    use node_core::requests::{ContactRequest, How, RequestError};
    let me = AccountId::from_bytes([9; 32]);
    for how in [
        How::Card,
        How::Introduction(AccountId::from_bytes([3; 32])),
        How::Nameserver("alice@example.org".into()),
    ] {
        let mut dev = Dev::new();
        let req = request_from(&mut dev, how);
        let bytes = req.encode();
        assert!(bytes.len() <= node_core::requests::MAX_REQUEST);
        let back = ContactRequest::decode(&bytes).unwrap();
        assert_eq!(back, req);
        assert_eq!(back.encode(), bytes, "one encoding per value");
        let card = back.verify(dev.id(), me, &[]).unwrap();
        assert_eq!(card.devices, vec![dev.id()]);
        // Sent by another device than the card's: refused.
        assert_eq!(
            back.verify(Dev::new().id(), me, &[]),
            Err(RequestError::NotOnCard)
        );
        // To the requester's own account: refused.
        assert_eq!(
            back.verify(dev.id(), card.account, &[]),
            Err(RequestError::FromSelf)
        );
    }
}

#[test]
fn a_request_in_another_accounts_name_is_refused() {
    use node_core::requests::{ContactRequest, How, RequestError};
    let me = AccountId::from_bytes([9; 32]);
    // Mallory signs a card claiming Alice's account with his own device
    // and carries Alice's genesis: the log does not show his device.
    let mut alice = Dev::new();
    let real = request_from(&mut alice, How::Card);
    let alice_card = Card::parse(&real.card).unwrap();
    let mallory = Dev::new();
    let forged = Card {
        devices: vec![mallory.id()],
        signer: mallory.id(),
        ..alice_card
    };
    let req = ContactRequest {
        card: Card::sign(&mallory.key, &forged),
        ..real.clone()
    };
    assert!(matches!(
        req.verify(mallory.id(), me, &[]),
        Err(RequestError::NotInAccount(_))
    ));
    // Without any account log: refused too.
    let bare = ContactRequest {
        account_log: vec![],
        ..real
    };
    assert!(matches!(
        bare.verify(alice.id(), me, &[]),
        Err(RequestError::NotInAccount(_))
    ));
}

#[test]
fn contact_requests_are_bounded() {
    use node_core::requests::{ContactRequest, How, MAX_HANDLE, MAX_MESSAGE, MAX_MESSAGES};
    let mut dev = Dev::new();
    let req = request_from(&mut dev, How::Card);
    // The sender cuts what it has to the bounds (at a character boundary);
    // a handle too long to be one is not claimed at all.
    let long = "é".repeat(MAX_MESSAGE);
    let cut = ContactRequest::bounded(
        req.card.clone(),
        How::Nameserver(format!("{}@example.org", "n".repeat(1000))),
        &vec![long; 9],
        1,
        req.account_log.clone(),
    );
    assert_eq!(cut.messages.len(), MAX_MESSAGES);
    assert!(
        cut.messages
            .iter()
            .all(|m| m.len() <= MAX_MESSAGE && m.len() >= MAX_MESSAGE - 1)
    );
    assert_eq!(cut.how, How::Card);
    let _ = MAX_HANDLE;
    ContactRequest::decode(&cut.encode()).unwrap();
    // Past a bound, a trailing byte, an unknown version or kind: refused.
    let too_many = ContactRequest {
        messages: vec!["x".into(); MAX_MESSAGES + 1],
        ..req.clone()
    };
    assert!(ContactRequest::decode(&too_many.encode()).is_err());
    let too_long = ContactRequest {
        messages: vec!["x".repeat(MAX_MESSAGE + 1)],
        ..req.clone()
    };
    assert!(ContactRequest::decode(&too_long.encode()).is_err());
    let mut trailing = req.encode();
    trailing.push(0);
    assert!(ContactRequest::decode(&trailing).is_err());
    let mut version = req.encode();
    version[0] = 2;
    assert!(ContactRequest::decode(&version).is_err());
    assert!(ContactRequest::decode(&vec![0u8; node_core::requests::MAX_REQUEST + 1]).is_err());
    for n in 0..req.encode().len() {
        assert!(
            ContactRequest::decode(&req.encode()[..n]).is_err(),
            "cut at {n}"
        );
    }
}

#[test]
fn a_request_has_one_encoding_and_claims_within_reason() {
    use node_core::requests::{ContactRequest, How, RequestError};
    let me = AccountId::from_bytes([9; 32]);
    let mut dev = Dev::new();
    let req = request_from(&mut dev, How::Card);
    let card = Card::parse(&req.card).unwrap();
    // The card as written (lower case, no space), a handle in normal
    // form, the account log in order: anything else is refused.
    for bad in [
        ContactRequest {
            card: req.card.to_uppercase(),
            ..req.clone()
        },
        ContactRequest {
            card: format!(" {}", req.card),
            ..req.clone()
        },
        ContactRequest {
            how: How::Nameserver("Alice@Example.org".into()),
            ..req.clone()
        },
        ContactRequest {
            how: How::Nameserver("not a handle".into()),
            ..req.clone()
        },
        ContactRequest {
            account_log: vec![req.account_log[0].clone(), req.account_log[0].clone()],
            ..req.clone()
        },
    ] {
        assert!(ContactRequest::decode(&bad.encode()).is_err(), "{bad:?}");
    }
    // An introduction by the account asked, or by the requester: refused.
    for by in [me, card.account] {
        let claim = ContactRequest {
            how: How::Introduction(by),
            ..req.clone()
        };
        assert_eq!(
            claim.verify(dev.id(), me, &[]),
            Err(RequestError::SelfIntroduced)
        );
    }
}

#[test]
fn a_revoked_device_cannot_ask_by_leaving_its_revocation_out() {
    use node_core::requests::{ContactRequest, How, RequestError};
    let me = AccountId::from_bytes([9; 32]);
    let mut laptop = Dev::new();
    let (account, genesis) = common::genesis(&mut laptop, None);
    let phone = Dev::new();
    let added = common::add_device(&mut laptop, account, &[&genesis], &phone);
    let revoked = common::revoke(&mut laptop, account, &[&added], &phone, 0);
    let card = Card {
        account,
        name: "alice".into(),
        signer: phone.id(),
        devices: vec![phone.id()],
        hints: vec![],
        issued: 1000,
    };
    // The stolen phone carries the log up to its own addition only.
    let req = ContactRequest::bounded(
        Card::sign(&phone.key, &card),
        How::Card,
        &[],
        2000,
        vec![genesis.clone(), added.clone()],
    );
    let req = ContactRequest::decode(&req.encode()).unwrap();
    assert!(
        req.verify(phone.id(), me, &[]).is_ok(),
        "on its own, it passes"
    );
    // A device that holds the account's log (with the revocation) refuses it.
    assert!(matches!(
        req.verify(phone.id(), me, &[genesis, added, revoked]),
        Err(RequestError::NotInAccount(_))
    ));
}
