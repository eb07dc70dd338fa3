//! Devices of one account at the node level: joining with an invite code
//! (and every way it is refused with nothing added), and the self-log merge
//! — concurrent alias changes and deletions on two devices, delivered in any
//! order, give the same state on every device.

#![allow(clippy::unwrap_used)]

mod common;

use common::{NOW, deliver, events_of, join, new_node, rt};
use node_core::LogId;
use node_core::crypto::{SecretBytes, SigningKey};
use node_core::identity::entry::sign_join;
use node_core::node::{Node, NodeError};
use node_core::sync::join::Invite;
use proptest::prelude::*;

#[test]
fn a_joined_device_is_active_and_holds_the_account_and_contacts() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a1 = new_node(&dir, "a1").await;
        let c = new_node(&dir, "c").await;
        let card = c.card(vec![], NOW).unwrap();
        a1.add_contact(&card, Some("carol"), NOW).await.unwrap();
        let a2 = join(&mut a1, &dir, "a2").await;
        assert_eq!(a2.account(), a1.account());
        let devices = a1.devices().unwrap();
        assert_eq!(devices.len(), 2);
        assert!(devices.iter().all(|d| d.state == "active"));
        assert!(
            a2.devices()
                .unwrap()
                .iter()
                .any(|d| d.current && d.name == "a2")
        );
        let contacts = a2.contacts();
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].alias.as_deref(), Some("carol"));
        for n in [a1, a2, c] {
            n.close().await;
        }
    });
}

#[test]
fn wrong_reused_expired_or_unproven_joins_add_nothing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a1 = new_node(&dir, "a1").await;
        let account_log = LogId::account(a1.account());
        let count = |n: &Node| n.log(&account_log).unwrap().len();
        let before = count(&a1);
        let key = SigningKey::generate();
        let device = node_core::DeviceId::from(key.verifying_key());
        let account = a1.account();
        let proof = || sign_join(&key, account, "new");

        // No code open at all, then a wrong secret.
        let wrong = SecretBytes::new([7; 16]);
        let e = a1.accept_join(device, &wrong, "new", proof(), NOW).await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");
        let code = Invite::parse(&a1.invite(vec![], NOW).unwrap()).unwrap();
        let e = a1.accept_join(device, &wrong, "new", proof(), NOW).await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");

        // A proof made for another name (or by another key) is refused,
        // and does not use the code up.
        let other = sign_join(&SigningKey::generate(), account, "new");
        let e = a1
            .accept_join(device, &code.secret, "new", other, NOW)
            .await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");
        let renamed = sign_join(&key, account, "other");
        let e = a1
            .accept_join(device, &code.secret, "new", renamed, NOW)
            .await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");
        assert_eq!(count(&a1), before);

        // Used once, then never again.
        a1.accept_join(device, &code.secret, "new", proof(), NOW)
            .await
            .unwrap();
        assert_eq!(count(&a1), before + 1);
        let key2 = SigningKey::generate();
        let device2 = node_core::DeviceId::from(key2.verifying_key());
        let proof2 = sign_join(&key2, account, "third");
        let e = a1
            .accept_join(device2, &code.secret, "third", proof2, NOW)
            .await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");

        // Expired after ten minutes.
        let late = Invite::parse(&a1.invite(vec![], NOW).unwrap()).unwrap();
        let e = a1
            .accept_join(device2, &late.secret, "third", proof2, NOW + 10 * 60 * 1000)
            .await;
        assert!(matches!(e, Err(NodeError::Invalid(_))), "{e:?}");
        assert_eq!(count(&a1), before + 1);
        a1.close().await;
    });
}

#[test]
fn a_self_log_event_from_a_foreign_account_is_refused() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a1 = new_node(&dir, "a1").await;
        let mut b1 = new_node(&dir, "b1").await;
        // B writes into its own self log; that event offered to A as if it
        // were A's self log is another log; one forged for A's self log is
        // refused because B's device is not a member.
        let b_card = b1.card(vec![], NOW).unwrap();
        a1.add_contact(&b_card, None, NOW).await.unwrap();
        let a_card = a1.card(vec![], NOW).unwrap();
        b1.add_contact(&a_card, None, NOW).await.unwrap();
        let foreign = events_of(&b1, LogId::self_log(b1.account())).await;
        let log = LogId::self_log(a1.account());
        let before = a1.log(&log).unwrap().len();
        let out = a1.ingest_batch(log, &foreign, NOW, 1, None).await.unwrap();
        assert!(out.iter().all(Result::is_err), "{out:?}");
        assert_eq!(a1.log(&log).unwrap().len(), before);
        a1.close().await;
        b1.close().await;
    });
}

/// One change on one of the two devices.
#[derive(Debug, Clone)]
enum Op {
    Alias { on_second: bool, n: u8 },
    Delete { on_second: bool, message: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0u8..4).prop_map(|(on_second, n)| Op::Alias { on_second, n }),
        (any::<bool>(), 0u8..6).prop_map(|(on_second, message)| Op::Delete { on_second, message }),
    ]
}

/// The texts `node` shows in its conversation with `with`.
async fn shown(node: &Node, with: node_core::AccountId) -> Vec<String> {
    node.conversation(with, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn concurrent_self_log_changes_merge_identically_in_any_order(
        ops in proptest::collection::vec(op(), 1..8),
        seed1 in any::<u64>(),
        seed2 in any::<u64>(),
    ) {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut a1 = new_node(&dir, "a1").await;
            let c = new_node(&dir, "c").await;
            let carol = c.account();
            a1.add_contact(&c.card(vec![], NOW).unwrap(), None, NOW).await.unwrap();
            let texts: Vec<String> = (0..6).map(|i| format!("message {i}")).collect();
            let ids = a1.send_messages(carol, &texts, NOW).await.unwrap();
            let mut a2 = join(&mut a1, &dir, "a2").await;
            let conv = LogId::conversation(a1.account(), carol);
            let conv_events = events_of(&a1, conv).await;
            deliver(&mut a2, conv, conv_events, 1).await;

            // Both devices change things without hearing from each other.
            for op in &ops {
                match op {
                    Op::Alias { on_second, n } => {
                        let node = if *on_second { &mut a2 } else { &mut a1 };
                        let card = c.card(vec![], NOW).unwrap();
                        node.add_contact(&card, Some(&format!("alias{n}")), NOW).await.unwrap();
                    }
                    Op::Delete { on_second, message } => {
                        let node = if *on_second { &mut a2 } else { &mut a1 };
                        let id = ids[*message as usize].to_string();
                        node.delete(conv, &[id], NOW).await.unwrap();
                    }
                }
            }

            // Each hears the other's self log in some order; a third device
            // joins afterwards and hears everything in yet another order.
            let self_log = LogId::self_log(a1.account());
            let from1 = events_of(&a1, self_log).await;
            let from2 = events_of(&a2, self_log).await;
            deliver(&mut a2, self_log, from1.clone(), seed1).await;
            deliver(&mut a1, self_log, from2.clone(), seed2).await;
            let mut a3 = join(&mut a1, &dir, "a3").await;
            let mut all = from1;
            all.extend(from2);
            deliver(&mut a3, self_log, all, seed1 ^ seed2).await;
            let conv_events = events_of(&a2, conv).await;
            deliver(&mut a3, conv, conv_events, seed2).await;

            let state = |n: &Node| {
                n.contacts().into_iter().find(|x| x.id == carol).and_then(|x| x.alias)
            };
            let (s1, s2, s3) = (state(&a1), state(&a2), state(&a3));
            let (m1, m2, m3) = (
                shown(&a1, carol).await,
                shown(&a2, carol).await,
                shown(&a3, carol).await,
            );
            for n in [a1, a2, a3, c] {
                n.close().await;
            }
            prop_assert_eq!(&s1, &s2);
            prop_assert_eq!(&s1, &s3);
            prop_assert_eq!(&m1, &m2);
            prop_assert_eq!(&m1, &m3);
            let deleted: std::collections::BTreeSet<u8> = ops.iter().filter_map(|o| match o {
                Op::Delete { message, .. } => Some(*message),
                Op::Alias { .. } => None,
            }).collect();
            prop_assert_eq!(m1.len(), 6 - deleted.len());
            Ok(())
        })?;
    }
}
