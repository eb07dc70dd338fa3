//! Trust in contacts at the node level: safety numbers (symmetric, stable
//! across device changes), verify with right and wrong numbers, trust that
//! follows the user to their other devices, automatic compromise on a
//! forked account log, and introductions.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Dev, NOW, add_device, deliver, events_of, genesis, join, new_node, rt};
use node_core::LogId;
use node_core::crypto::SigningKey;
use node_core::identity::Card;
use node_core::node::{Node, NodeError};

fn trust_of(node: &Node, contact: node_core::AccountId) -> (String, Option<String>) {
    let c = node
        .contacts()
        .into_iter()
        .find(|c| c.id == contact)
        .unwrap();
    (c.trust, c.trust_reason)
}

/// Adds each node as the other's contact.
async fn befriend(a: &mut Node, b: &mut Node) {
    let (ca, cb) = (a.card(vec![], NOW).unwrap(), b.card(vec![], NOW).unwrap());
    a.add_contact(&cb, None, NOW).await.unwrap();
    b.add_contact(&ca, None, NOW).await.unwrap();
}

#[test]
fn safety_numbers_match_on_both_sides_and_survive_new_devices() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let on_a = a.safety_number(b.account()).unwrap();
        let on_b = b.safety_number(a.account()).unwrap();
        assert_eq!(on_a, on_b);
        assert_eq!(on_a.len(), 60);
        assert!(on_a.bytes().all(|c| c.is_ascii_digit()));
        // A second device of A computes the same number.
        let a2 = join(&mut a, &dir, "a2").await;
        assert_eq!(a2.safety_number(b.account()).unwrap(), on_a);
        for n in [a, a2, b] {
            n.close().await;
        }
    });
}

#[test]
fn verify_validates_only_on_an_exact_match() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let bid = b.account();
        let number = a.safety_number(bid).unwrap();
        let self_log = LogId::self_log(a.account());
        let before = a.log(&self_log).unwrap().len();

        let mut wrong = number.clone().into_bytes();
        wrong[59] = if wrong[59] == b'0' { b'1' } else { b'0' };
        let wrong = String::from_utf8(wrong).unwrap();
        for bad in [wrong.as_str(), &number[..59], "12345", "abcde fghij", ""] {
            let e = a.verify_contact(bid, bad, NOW).await;
            assert!(matches!(e, Err(NodeError::Invalid(_))), "{bad:?}: {e:?}");
        }
        assert_eq!(trust_of(&a, bid).0, "unvalidated");
        assert_eq!(a.log(&self_log).unwrap().len(), before, "nothing written");

        // Grouped with spaces, as people read it out.
        let grouped = node_core::node::trust::group_digits(&number);
        a.verify_contact(bid, &grouped, NOW).await.unwrap();
        assert_eq!(trust_of(&a, bid).0, "validated");
        a.close().await;
        b.close().await;
    });
}

#[test]
fn trust_set_on_one_device_appears_on_the_others() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a1 = new_node(&dir, "a1").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a1, &mut b).await;
        let mut a2 = join(&mut a1, &dir, "a2").await;
        let bid = b.account();
        a1.set_trust(bid, "compromised".parse().unwrap(), "lost phone", NOW)
            .await
            .unwrap();
        let self_log = LogId::self_log(a1.account());
        let events = events_of(&a1, self_log).await;
        deliver(&mut a2, self_log, events, 7).await;
        assert_eq!(
            trust_of(&a2, bid),
            ("compromised".into(), Some("lost phone".into()))
        );
        for n in [a1, a2, b] {
            n.close().await;
        }
    });
}

#[test]
fn a_forked_account_log_makes_a_validated_contact_compromised() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        // The contact's account, built by hand so that its device can sign
        // two different entries in the same place.
        let mut c1 = Dev::new();
        let (cid, g) = genesis(&mut c1, None);
        let card = Card::sign(
            &c1.key,
            &Card {
                account: cid,
                name: "carol".into(),
                signer: c1.id(),
                devices: vec![c1.id()],
                hints: vec![],
                issued: NOW,
            },
        );
        a.add_contact(&card, None, NOW).await.unwrap();
        let log = LogId::account(cid);
        a.ingest_batch(log, &[g.encode()], NOW, 1, None)
            .await
            .unwrap();
        let number = a.safety_number(cid).unwrap();
        a.verify_contact(cid, &number, NOW).await.unwrap();

        // A device added the normal way: a notice at most, still validated.
        let mut twin = Dev {
            key: SigningKey::from_seed(&c1.key.seed()),
            seq: c1.seq,
            last: c1.last.clone(),
        };
        let add = add_device(&mut c1, cid, &[&g], &Dev::new());
        a.ingest_batch(log, &[add.encode()], NOW, 1, None)
            .await
            .unwrap();
        assert_eq!(trust_of(&a, cid).0, "validated");
        let info = a.contacts().into_iter().find(|x| x.id == cid).unwrap();
        assert_eq!(
            info.new_devices.len(),
            1,
            "the new device is shown as a notice"
        );

        // The same device signs another entry in the same place: a fork.
        let fork = add_device(&mut twin, cid, &[&g], &Dev::new());
        a.ingest_batch(log, &[fork.encode()], NOW, 1, None)
            .await
            .unwrap();
        let (trust, reason) = trust_of(&a, cid);
        assert_eq!(trust, "compromised");
        assert!(reason.unwrap().contains("forked"));
        // Verifying again cannot make it validated while the fork stands.
        let e = a.verify_contact(cid, &number, NOW).await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");
        a.close().await;
    });
}

#[test]
fn an_introduction_arrives_unvalidated_and_names_the_introducer() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        let mut c = new_node(&dir, "c").await;
        befriend(&mut a, &mut b).await;
        befriend(&mut a, &mut c).await;
        let (aid, bid, cid) = (a.account(), b.account(), c.account());
        // A trusts C; B must not inherit that.
        let number = a.safety_number(cid).unwrap();
        a.verify_contact(cid, &number, NOW).await.unwrap();

        // Bad shares change nothing.
        let conv = LogId::conversation(aid, bid);
        let before = a.log(&conv).unwrap().len();
        let stranger = node_core::AccountId::from_bytes([9; 32]);
        assert!(a.share_contact(stranger, bid, NOW).await.is_err());
        assert!(a.share_contact(cid, stranger, NOW).await.is_err());
        assert!(a.share_contact(bid, bid, NOW).await.is_err());
        assert_eq!(a.log(&conv).unwrap().len(), before);

        a.share_contact(cid, bid, NOW).await.unwrap();
        // B gets A's account log and the conversation.
        let account = events_of(&a, LogId::account(aid)).await;
        deliver(&mut b, LogId::account(aid), account, 1).await;
        let events = events_of(&a, conv).await;
        deliver(&mut b, conv, events, 2).await;

        let intro = b
            .contacts()
            .into_iter()
            .find(|x| x.id == cid)
            .expect("B added the introduced contact");
        assert_eq!(intro.trust, "unvalidated");
        assert_eq!(intro.introduced_by, Some(aid));
        let shown = b.conversation(aid, None).await.unwrap();
        let m = shown.iter().find(|m| m.kind == "introduction").unwrap();
        assert_eq!(m.introduces, Some(cid));
        assert!(m.text.contains("validated"), "{}", m.text);
        for n in [a, b, c] {
            n.close().await;
        }
    });
}
