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
