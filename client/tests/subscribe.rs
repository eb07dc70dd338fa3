//! A client subscribed to its daemon hears of new messages and deliveries
//! as they happen (what the terminal UI refreshes on instead of polling).

#![allow(clippy::unwrap_used)]

mod support;

use kith_app::rpc::{self, Notice};
use std::time::Duration;
use support::{Running, kith, ok};

/// The next notice matching `want` within 20 s.
async fn hear(sub: &mut rpc::Subscription, want: impl Fn(&Notice) -> bool) -> Notice {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = sub.next().await.unwrap().expect("subscription ended");
            if want(&n) {
                return n;
            }
        }
    })
    .await
    .expect("no such notice within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_messages_and_deliveries() {
    let alice = Running::start("Alice");
    let bob = Running::start("Bob");
    ok(kith(&alice.home, &["contact", "add", &bob.card()]));
    ok(kith(&bob.home, &["contact", "add", &alice.card()]));
    let mut sub = rpc::subscribe(&alice.home).await.unwrap();

    ok(kith(&bob.home, &["send", "Alice", "hello"]));
    let n = hear(&mut sub, |n| matches!(n, Notice::Stored { .. })).await;
    let Notice::Stored { count, .. } = n else {
        unreachable!()
    };
    assert!(count >= 1);

    ok(kith(&alice.home, &["send", "Bob", "hi back"]));
    hear(
        &mut sub,
        |n| matches!(n, Notice::Delivered { count } if *count >= 1),
    )
    .await;

    // A second subscriber at once; closing one leaves the other working.
    let second = rpc::subscribe(&alice.home).await.unwrap();
    drop(second);
    ok(kith(&bob.home, &["send", "Alice", "again"]));
    hear(&mut sub, |n| matches!(n, Notice::Stored { .. })).await;
    assert!(
        ok(kith(&alice.home, &["status", "--json"])).contains("\"device\""),
        "the daemon still answers"
    );
}
