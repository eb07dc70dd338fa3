//! The sharing snapshot: the same answers as the node, built once per
//! change (not per query), and published to readers that never take the
//! node.

#![allow(clippy::unwrap_used)]

mod common;

use common::{NOW, hand_joined_device, new_node};
use node_core::LogId;
use node_core::sync::View;
use std::sync::Arc;

#[tokio::test]
async fn the_snapshot_follows_devices_and_contacts_and_is_built_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = new_node(&dir, "a").await;
    let mut b = new_node(&dir, "b").await;
    let (me, them) = (a.account(), b.account());
    let watch = a.watch_sharing();

    // Nothing changed: every query reads the same snapshot.
    let first = a.sharing();
    assert!(Arc::ptr_eq(&first, &a.sharing()));
    assert!(first.device_active(me, a.device()));

    // A new own device: a new snapshot, shared the self log.
    let phone = hand_joined_device(&mut a, NOW).await;
    let second = a.sharing();
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(second.device_active(me, phone.id()));
    assert!(second.entitled(me, phone.id(), &LogId::self_log(me)));
    // The old one is unchanged (readers holding it see a consistent past).
    assert!(!first.device_active(me, phone.id()));
    // Readers see it once published.
    assert!(!watch.borrow().device_active(me, phone.id()));
    a.publish_sharing();
    assert!(watch.borrow().device_active(me, phone.id()));

    // A contact: its conversation is shared with its devices.
    let conversation = LogId::conversation(me, them);
    let b_card = b.card(vec![], NOW).unwrap();
    b.add_contact(&a.card(vec![], NOW).unwrap(), None, NOW)
        .await
        .unwrap();
    assert!(!a.entitled(them, b.device(), &conversation));
    a.add_contact(&b_card, None, NOW).await.unwrap();
    // Its devices count once its account log arrives.
    assert!(!a.sharing().device_active(them, b.device()));
    let account_log = common::events_of(&b, LogId::account(them)).await;
    common::deliver(&mut a, LogId::account(them), account_log, 7).await;
    let third = a.sharing();
    assert!(third.device_active(them, b.device()));
    assert!(third.entitled(them, b.device(), &conversation));
    assert!(!third.entitled(them, b.device(), &LogId::self_log(me)));
    assert_eq!(
        View::shared_logs(&a, them, b.device()),
        third.shared_logs(them, b.device())
    );

    // Revoked: nothing but the proof logs, at once.
    a.revoke_device(&phone.id().to_string(), NOW + 1)
        .await
        .unwrap();
    let fourth = a.sharing();
    assert!(!fourth.device_active(me, phone.id()));
    assert!(!fourth.entitled(me, phone.id(), &LogId::self_log(me)));
    assert_eq!(fourth.shared_logs(me, phone.id()), vec![LogId::account(me)]);
    a.publish_sharing();
    assert!(!watch.borrow().device_active(me, phone.id()));
    a.close().await;
    b.close().await;
}
