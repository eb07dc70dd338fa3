//! Group commit over a real encrypted store: tickets, the durable
//! watermark, and that a commit is visible before it is durable.

#![allow(clippy::unwrap_used)]

use node_core::store::{Profile, Store};
use std::time::Duration;

async fn store(dir: &tempfile::TempDir) -> Store {
    Store::create(&Profile::new(dir.path().join("p")), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ticket_is_durable_once_its_round_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let durable = store.durability().clone();
    // Creating the store wrote (its migrations are not counted); sync.
    durable.sync().await.unwrap();
    assert!(durable.ticket().is_none(), "nothing written since the sync");

    let writes = durable.writes();
    store.set_meta(&[("k", b"v1")]).await.unwrap();
    assert_eq!(durable.writes(), writes + 1, "the commit was counted");
    let ticket = durable.ticket().expect("a write waits for the disk");
    let rounds = durable.rounds();
    durable.wait(ticket).await.unwrap();
    assert!(durable.passed(ticket));
    assert!(durable.rounds() > rounds, "a round ran for it");
    assert!(durable.ticket().is_none(), "the round covered the write");
    store.close().await;
}

#[tokio::test]
async fn a_commit_is_readable_before_it_is_durable_and_many_share_a_round() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let durable = store.durability().clone();
    durable.sync().await.unwrap();
    durable.set_delay_ms(300);
    let rounds = durable.rounds();
    let mut tickets = Vec::new();
    for i in 0..20u8 {
        store.set_meta(&[("k", &[i])]).await.unwrap();
        tickets.push(durable.ticket().unwrap());
    }
    // Committed: read back at once, while no round has finished.
    assert_eq!(store.meta("k").await.unwrap(), Some(vec![19]));
    assert!(!durable.passed(*tickets.last().unwrap()));
    for t in &tickets {
        durable.wait(*t).await.unwrap();
    }
    // Twenty commits, made while the first round waited: at most two
    // rounds (the one running, and one after it for all the rest).
    assert!(
        durable.rounds() - rounds <= 2,
        "{} rounds for 20 commits",
        durable.rounds() - rounds
    );
    durable.set_delay_ms(0);
    tokio::time::timeout(Duration::from_secs(10), store.close())
        .await
        .unwrap();
}
