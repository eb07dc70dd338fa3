//! LAN discovery's secret and grants between two accounts: a contact
//! recognises our devices' beacons once our grant arrives, a hostile
//! contact's malformed grants change nothing, and a contact marked
//! compromised stops recognising us (new secret, withdrawal).

#![allow(clippy::unwrap_used)]

mod common;

use common::{NOW, befriend_synced as befriend, deliver, events_of, new_node, rt};
use node_core::LogId;
use node_core::lan::{epoch, tag};
use node_core::node::Node;
use node_core::node::messages::conversation_kind;
use node_core::node::trust::Trust;

/// Gives `to` every event of the conversation `from` holds.
async fn sync_conversation(from: &Node, to: &mut Node) {
    let log = LogId::conversation(from.account(), to.account());
    deliver(to, log, events_of(from, log).await, 7).await;
}

/// Closes both nodes' stores before the test returns. Regression: these
/// tests are over in a tenth of a second, and a store merely dropped is
/// closed by sqlx's worker thread after the process may have begun to
/// exit; SQLCipher's exit handler frees its state meanwhile, and the
/// worker's `sqlite3_close` then crashed the binary (SIGSEGV in
/// `sqlite3FreeCodecArg`, one run in ten, once in CI).
async fn close(a: Node, b: Node) {
    a.close().await;
    b.close().await;
}

/// Whether `node` would recognise `other`'s device from its beacon now.
fn recognises(node: &Node, other: &Node) -> bool {
    let Some(t) = other.lan_tag_now(NOW) else {
        return false;
    };
    node.lan_tags(NOW).get(&t).map(|o| o.device) == Some(other.device())
}

#[test]
fn a_grant_lets_a_contact_recognise_our_beacons_and_junk_grants_do_not() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "alice").await;
        let mut b = new_node(&dir, "bob").await;
        befriend(&mut a, &mut b).await;
        assert!(a.ensure_lan_secret(NOW).await.unwrap());
        assert!(!a.ensure_lan_secret(NOW).await.unwrap(), "made once");
        assert!(!recognises(&b, &a), "no grant yet");
        assert_eq!(a.lan_grants_due(), vec![b.account()]);
        a.write_lan_grant(b.account(), NOW).await.unwrap();
        assert!(a.lan_grants_due().is_empty());
        sync_conversation(&a, &mut b).await;
        assert!(recognises(&b, &a), "the grant arrived");
        // Tags of the neighbouring epochs count too (clocks differ), and
        // they are the keyed tag of the device, not anything readable.
        let secret = a.lan_secret().unwrap();
        let next = tag(&secret, epoch(NOW) + 1, &a.device());
        assert!(b.lan_tags(NOW).contains_key(&next));
        assert!(
            !b.lan_tags(NOW)
                .contains_key(&tag(&secret, epoch(NOW) + 2, &a.device()))
        );

        // Bob has no secret yet: Alice knows nothing of his devices. Bob
        // then writes grants of the wrong size (a hostile contact), and a
        // good one between them: only the good one counts.
        assert!(!recognises(&a, &b));
        let log = LogId::conversation(a.account(), b.account());
        b.ensure_lan_secret(NOW).await.unwrap();
        for body in [vec![1; 31], vec![2; 33], vec![3; 10_000]] {
            b.append(log, conversation_kind::LAN_GRANT, body, NOW)
                .await
                .unwrap();
        }
        sync_conversation(&b, &mut a).await;
        assert!(!recognises(&a, &b), "a malformed grant was taken");
        b.write_lan_grant(a.account(), NOW).await.unwrap();
        b.append(log, conversation_kind::LAN_GRANT, vec![4; 7], NOW)
            .await
            .unwrap();
        sync_conversation(&b, &mut a).await;
        assert!(
            recognises(&a, &b),
            "a junk grant after a good one displaced it"
        );
        // Nothing of this is shown as a message.
        let shown = a.conversation(b.account(), None).await.unwrap();
        assert!(shown.is_empty(), "{shown:?}");
        close(a, b).await;
    });
}

#[test]
fn a_contact_marked_compromised_stops_recognising_us() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "alice").await;
        let mut b = new_node(&dir, "bob").await;
        befriend(&mut a, &mut b).await;
        a.ensure_lan_secret(NOW).await.unwrap();
        a.write_lan_grant(b.account(), NOW).await.unwrap();
        sync_conversation(&a, &mut b).await;
        assert!(recognises(&b, &a));
        let old = a.lan_secret().unwrap();
        a.set_trust(b.account(), Trust::Compromised, "lost phone", NOW + 1)
            .await
            .unwrap();
        assert_ne!(*a.lan_secret().unwrap(), *old, "the secret was made anew");
        assert!(!recognises(&b, &a), "old secret, new tag");
        assert_eq!(a.lan_grants_due(), vec![b.account()], "a withdrawal is due");
        a.write_lan_grant(b.account(), NOW + 2).await.unwrap();
        assert!(a.lan_grants_due().is_empty());
        sync_conversation(&a, &mut b).await;
        assert!(!recognises(&b, &a), "the withdrawal carries no secret");
        // And Alice no longer looks for Bob's devices.
        b.ensure_lan_secret(NOW).await.unwrap();
        b.write_lan_grant(a.account(), NOW + 3).await.unwrap();
        sync_conversation(&b, &mut a).await;
        assert!(!recognises(&a, &b));
        close(a, b).await;
    });
}
