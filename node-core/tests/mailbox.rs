//! The mailbox at the node level: prekeys that rotate and are deleted so a
//! captured deposit stops opening (forward secrecy), grants that carry the
//! same token from every own device and can be withdrawn, senders that seal
//! only to fresh prekeys of the contact's active devices, and deposited
//! events that are checked like events from any peer.

#![allow(clippy::unwrap_used)]

mod common;

use common::{NOW, befriend_synced as befriend, deliver, events_of, join, new_node, rt};
use node_core::LogId;
use node_core::crypto::{BoxSecretKey, SigningKey};
use node_core::mailbox::{
    self, MAX_RETENTION_MS, PREKEY_MAX_AGE_MS, PREKEY_ROTATE_MS, SignedPrekey,
};
use node_core::node::Node;
use node_core::node::mailbox::PREKEY_KEEP_MS;

const DAY: i64 = 24 * 3600 * 1000;

#[test]
fn a_captured_deposit_stops_opening_once_its_prekey_is_deleted() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let b = new_node(&dir, "b").await;
        assert!(b.rotate_prekeys(NOW).await.unwrap(), "first prekey");
        assert!(!b.rotate_prekeys(NOW + DAY).await.unwrap(), "not due yet");
        let first = SignedPrekey::decode(&b.prekey_bundle().await.unwrap().unwrap()).unwrap();
        let payload =
            mailbox::encode_events(&SigningKey::generate(), &[0; 32], &[b"an event".to_vec()]);
        let captured = mailbox::seal_deposit(&[first.public], &payload).unwrap();
        assert_eq!(
            b.open_deposit(&captured).await.unwrap().unwrap(),
            Some(payload.clone())
        );

        // Rotated: a new prekey is published, the old one still opens
        // deposits made before (they may still be on the server).
        let replaced = NOW + PREKEY_ROTATE_MS;
        assert!(b.rotate_prekeys(replaced).await.unwrap());
        let second = SignedPrekey::decode(&b.prekey_bundle().await.unwrap().unwrap()).unwrap();
        assert_ne!(second.public, first.public);
        assert_eq!(
            b.open_deposit(&captured).await.unwrap().unwrap(),
            Some(payload.clone())
        );

        // Kept while a sender may still seal to it and the deposit wait on
        // a server; then gone.
        b.rotate_prekeys(replaced + MAX_RETENTION_MS + 1)
            .await
            .unwrap();
        assert_eq!(
            b.open_deposit(&captured).await.unwrap().unwrap(),
            Some(payload.clone())
        );
        b.rotate_prekeys(replaced + PREKEY_KEEP_MS + 1)
            .await
            .unwrap();
        assert_eq!(
            b.open_deposit(&captured).await.unwrap().unwrap(),
            None,
            "nothing the device holds opens the captured deposit"
        );
        // Nor does anything in the store folder (the prekeys lived only in
        // the encrypted store): reopening the profile changes nothing.
        let profile = b.profile().clone();
        b.close().await;
        let b = Node::open(profile, None).await.unwrap();
        assert_eq!(b.open_deposit(&captured).await.unwrap().unwrap(), None);
        b.close().await;
    });
}

#[test]
fn turning_the_mailbox_off_retires_prekeys_and_later_deletes_them() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let b = new_node(&dir, "b").await;
        b.rotate_prekeys(NOW).await.unwrap();
        let key = SignedPrekey::decode(&b.prekey_bundle().await.unwrap().unwrap()).unwrap();
        let payload = mailbox::encode_events(&SigningKey::generate(), &[0; 32], &[b"x".to_vec()]);
        let captured = mailbox::seal_deposit(&[key.public], &payload).unwrap();
        b.retire_prekeys(NOW + DAY).await.unwrap();
        assert!(
            b.prekey_bundle().await.unwrap().is_none(),
            "nothing to publish"
        );
        assert!(b.open_deposit(&captured).await.unwrap().unwrap().is_some());
        b.retire_prekeys(NOW + DAY + PREKEY_KEEP_MS + 1)
            .await
            .unwrap();
        assert_eq!(b.open_deposit(&captured).await.unwrap().unwrap(), None);
        b.close().await;
    });
}

#[test]
fn grants_carry_one_token_per_contact_from_every_own_device() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let mut a2 = join(&mut a, &dir, "a2").await;
        assert!(a.grants_due().is_empty(), "no mailbox, nothing to grant");
        assert!(a.set_mailbox(Some("ftp://x"), NOW).await.is_err());
        let id = a
            .set_mailbox(Some("http://127.0.0.1:8480/"), NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            a.set_mailbox(Some("http://127.0.0.1:8480"), NOW)
                .await
                .unwrap(),
            Some(id),
            "the same URL keeps the mailbox"
        );
        let own = LogId::self_log(a.account());
        deliver(&mut a2, own, events_of(&a, own).await, 3).await;
        assert_eq!(a2.mailbox().unwrap().key.id(), id);
        assert_eq!(
            a2.delivery_token(b.account()).unwrap().hash(),
            a.delivery_token(b.account()).unwrap().hash(),
            "own devices derive the same token"
        );
        assert_ne!(
            a.delivery_token(b.account()).unwrap().hash(),
            a.delivery_token(a.account()).unwrap().hash()
        );

        assert_eq!(a.grants_due(), vec![b.account()]);
        a.write_grant(b.account(), NOW).await.unwrap();
        assert!(a.grants_due().is_empty());
        let conv = LogId::conversation(a.account(), b.account());
        deliver(&mut b, conv, events_of(&a, conv).await, 4).await;
        let grant = b.grant_from(a.account()).unwrap();
        assert_eq!(grant.url, "http://127.0.0.1:8480");
        assert_eq!(grant.mailbox, id);
        assert_eq!(
            grant.token.hash(),
            a.delivery_token(b.account()).unwrap().hash()
        );
        assert!(
            b.conversation(a.account(), None).await.unwrap().is_empty(),
            "a grant is not shown as a message"
        );

        // Off: the grant is withdrawn.
        a.set_mailbox(None, NOW + 1).await.unwrap();
        assert_eq!(a.grants_due(), vec![b.account()]);
        a.write_grant(b.account(), NOW + 1).await.unwrap();
        deliver(&mut b, conv, events_of(&a, conv).await, 5).await;
        assert!(b.grant_from(a.account()).is_none());
        for n in [a, a2, b] {
            n.close().await;
        }
    });
}

#[test]
fn senders_seal_only_to_fresh_prekeys_of_active_devices() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        b.rotate_prekeys(NOW - 15 * DAY).await.unwrap();
        let stale = b.prekey_bundle().await.unwrap().unwrap();
        b.rotate_prekeys(NOW).await.unwrap();
        let fresh = b.prekey_bundle().await.unwrap().unwrap();
        let stranger = SignedPrekey::sign(
            &SigningKey::generate(),
            BoxSecretKey::generate().public_key(),
            NOW,
        )
        .encode();
        let bundles = vec![stale.clone(), b"garbage".to_vec(), stranger, fresh.clone()];
        let picked = a.recipient_prekeys(b.account(), &bundles, NOW);
        let fresh = SignedPrekey::decode(&fresh).unwrap();
        assert_eq!(picked, vec![(b.device(), fresh.public)]);
        assert!(a.recipient_prekeys(b.account(), &[stale], NOW).is_empty());
        assert!(
            a.recipient_prekeys(b.account(), &bundles, NOW + PREKEY_MAX_AGE_MS + 1)
                .is_empty(),
            "past the hard limit nothing is usable"
        );
        for n in [a, b] {
            n.close().await;
        }
    });
}

#[test]
fn deposited_events_are_checked_like_any_peer_event() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let id = a
            .send_message(b.account(), "hello via mailbox", NOW)
            .await
            .unwrap();
        let mut events = a
            .undelivered_events(b.account(), &Default::default(), 100)
            .await
            .unwrap();
        assert!(!events.is_empty());
        // A forged event rides along: dropped, the rest stored.
        let mut forged = events[0].clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        events.push(forged);
        events.push(b"not an event".to_vec());
        let stored = b
            .ingest_deposit(&a.deposit_payload(b.account(), &events), NOW, 1)
            .await
            .unwrap();
        assert!(stored >= 1);
        let log = b.conversation(a.account(), None).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].id, log[0].text.as_str()), (id, "hello via mailbox"));
        assert!(b.ingest_deposit(b"\xff", NOW, 1).await.is_err());
        for n in [a, b] {
            n.close().await;
        }
    });
}

/// Revoking a device rotates the mailbox key (the revoked device knew the
/// seed and with it every contact's delivery token): new tokens, and every
/// contact is due a new grant, without the user doing anything.
#[test]
fn revoking_a_device_rotates_the_mailbox_and_its_tokens() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let a2 = join(&mut a, &dir, "a2").await;
        let old = a
            .set_mailbox(Some("http://127.0.0.1:8480"), NOW)
            .await
            .unwrap()
            .unwrap();
        let old_token = a.delivery_token(b.account()).unwrap().hash();
        a.write_grant(b.account(), NOW).await.unwrap();
        assert!(a.grants_due().is_empty());
        a.revoke_device("a2", NOW + 1).await.unwrap();
        let new = a.mailbox().unwrap();
        assert_eq!(new.url, "http://127.0.0.1:8480", "same server");
        assert_ne!(new.key.id(), old, "a new mailbox key");
        assert_ne!(a.delivery_token(b.account()).unwrap().hash(), old_token);
        assert_eq!(a.grants_due(), vec![b.account()], "a new grant is due");
        for n in [a, a2, b] {
            n.close().await;
        }
    });
}

/// A contact's new device deposits before we have heard of it: the
/// deposit carries the account log that lists it, which is stored first,
/// so the device is proven and its message is kept (the deposit used to be
/// refused, and deleted from the server, for an unknown depositor).
#[test]
fn a_new_device_of_a_contact_is_proven_by_its_own_deposit() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let mut a2 = join(&mut a, &dir, "a2").await;
        let own = LogId::self_log(a.account());
        deliver(&mut a2, own, events_of(&a, own).await, 5).await;
        let id = a2
            .send_message(b.account(), "from the new device", NOW)
            .await
            .unwrap();
        let mut events = events_of(&a2, LogId::account(a.account())).await;
        events.extend(
            a2.undelivered_events(b.account(), &Default::default(), 100)
                .await
                .unwrap(),
        );
        let stored = b
            .ingest_deposit(&a2.deposit_payload(b.account(), &events), NOW, 1)
            .await
            .unwrap();
        assert!(stored >= 1);
        let log = b.conversation(a.account(), None).await.unwrap();
        assert!(log.iter().any(|m| m.id == id), "{log:?}");
        for n in [a, a2, b] {
            n.close().await;
        }
    });
}

/// A deposit replayed (by the mailbox server, or by anyone who captured
/// it) changes nothing: its events are stored once, and a message deleted
/// in between does not come back.
#[test]
fn a_replayed_deposit_changes_nothing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut a = new_node(&dir, "a").await;
        let mut b = new_node(&dir, "b").await;
        befriend(&mut a, &mut b).await;
        let id = a.send_message(b.account(), "said once", NOW).await.unwrap();
        let events = a
            .undelivered_events(b.account(), &Default::default(), 100)
            .await
            .unwrap();
        let payload = a.deposit_payload(b.account(), &events);
        b.ingest_deposit(&payload, NOW, 1).await.unwrap();
        let stored = b.event_count().await.unwrap();
        assert_eq!(b.ingest_deposit(&payload, NOW + 1, 1).await.unwrap(), 0);
        assert_eq!(b.event_count().await.unwrap(), stored);
        let conv = LogId::conversation(b.account(), a.account());
        b.delete(conv, &[id.to_string()], NOW + 2).await.unwrap();
        assert!(b.conversation(a.account(), None).await.unwrap().is_empty());
        b.ingest_deposit(&payload, NOW + 3, 1).await.unwrap();
        assert!(
            b.conversation(a.account(), None).await.unwrap().is_empty(),
            "a deleted message came back with a replayed deposit"
        );
        for n in [a, b] {
            n.close().await;
        }
    });
}
