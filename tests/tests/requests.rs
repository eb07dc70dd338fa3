//! Contact requests through the CLI (CLI.md "Identity, contacts and
//! trust"): adding someone sends them a request carrying the first
//! message; nothing from the requester is a conversation until it is
//! accepted; decline and block follow the user to every own device, and a
//! blocked account's requests and links are refused there; a flood of
//! fresh strangers' requests stays bounded and real requests still arrive.

#![allow(clippy::unwrap_used)]

use kith_tests::{Profile, assert_fails_cleanly, assert_ok, wait_until};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The request from `account` on `p`, if there is one.
fn request_from(p: &Profile, account: &str) -> Option<serde_json::Value> {
    p.requests_json().into_iter().find(|r| r["id"] == account)
}

fn is_contact(p: &Profile, account: &str) -> bool {
    p.contacts_json()
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == account)
}

/// How many requests `p`'s daemons delivered (an answer came back).
fn delivered(p: &Profile) -> usize {
    p.daemon_logs().matches("contact request delivered").count()
}

/// Alice adds Bob's card and writes to him; Bob sees who asks, how and the
/// first message, and no conversation; he accepts, and messages flow both
/// ways, the first one included.
#[test]
fn a_request_accepted_becomes_a_conversation_both_ways() {
    let mut alice = Profile::new();
    let ia = alice.init("alice");
    let _da = alice.spawn_daemon();
    let mut bob = Profile::new();
    let ib = bob.init("bob");
    let _db = bob.spawn_daemon();

    alice.add_contact(&bob.card());
    alice.send(&ib.account, "hello Bob, it's Alice from the climbing club");
    assert!(
        wait_until(WAIT, || request_from(&bob, &ia.account).is_some_and(|r| r
            ["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "hello Bob, it's Alice from the climbing club"))),
        "no request with the first message: {:?}\nalice:\n{}\nbob:\n{}",
        bob.requests_json(),
        alice.daemon_logs(),
        bob.daemon_logs()
    );
    let r = request_from(&bob, &ia.account).unwrap();
    assert_eq!(r["name"], "alice");
    assert_eq!(r["how"], "card");
    assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
    // Not a conversation yet.
    assert!(!is_contact(&bob, &ia.account));
    assert_fails_cleanly(&bob.kith(["log", &ia.account]));
    let text = assert_ok(&bob.kith(["contact", "requests"]));
    assert!(
        text.contains("alice") && text.contains("climbing club"),
        "{text}"
    );

    // A name or a short prefix does not answer (the requester chose the
    // name; a short prefix is cheap to match); 12 characters do.
    assert_fails_cleanly(&bob.kith(["contact", "accept", "alice"]));
    assert_fails_cleanly(&bob.kith(["contact", "accept", &ia.account[..8]]));
    assert_ok(&bob.kith(["contact", "accept", &ia.account[..12]]));
    assert!(bob.requests_json().is_empty());
    assert!(is_contact(&bob, &ia.account));
    assert!(
        wait_until(WAIT, || bob.try_log_json(&ia.account).is_ok_and(|log| log
            .iter()
            .any(|m| m.text.contains("climbing club")))),
        "the first message did not arrive after accepting\nalice:\n{}\nbob:\n{}",
        alice.daemon_logs(),
        bob.daemon_logs()
    );
    bob.send(&ia.account, "hi Alice!");
    assert!(
        wait_until(WAIT, || alice
            .log_json(&ib.account)
            .iter()
            .any(|m| m.text == "hi Alice!")),
        "Bob's answer did not arrive"
    );
    // An answered request is gone; answering it again is a clear error.
    assert_fails_cleanly(&bob.kith(["contact", "accept", &ia.account]));
}

/// A declined request is gone, and asking again does not bring it back.
#[test]
fn a_declined_request_does_not_come_back() {
    let mut alice = Profile::new();
    let ia = alice.init("alice");
    let _da = alice.spawn_daemon();
    let mut bob = Profile::new();
    bob.init("bob");
    let _db = bob.spawn_daemon();

    let card = bob.card();
    alice.add_contact(&card);
    assert!(wait_until(WAIT, || request_from(&bob, &ia.account).is_some()));
    assert_ok(&bob.kith(["contact", "decline", &ia.account]));
    assert!(bob.requests_json().is_empty());
    // Adding again asks again at once; the request is delivered (the
    // requester is not told it was declined) and not kept.
    let before = delivered(&alice);
    alice.add_contact(&card);
    assert!(
        wait_until(WAIT, || delivered(&alice) > before),
        "the second request was not delivered: {}",
        alice.daemon_logs()
    );
    assert!(bob.requests_json().is_empty(), "{:?}", bob.requests_json());
    assert!(!is_contact(&bob, &ia.account));
}

/// Bob blocks Alice on his laptop: her request goes from his phone too,
/// and her later requests and links are refused on the phone.
#[test]
fn a_block_on_one_device_holds_on_the_other() {
    let mut alice = Profile::new();
    let ia = alice.init("alice");
    let _da = alice.spawn_daemon();
    let mut laptop = Profile::new();
    laptop.init("bob");
    let _dl = laptop.spawn_daemon();
    let phone = Profile::new();
    phone.join(&laptop, "bob-phone");
    let _dp = phone.spawn_daemon_shared();

    // A card carries the addresses of the device that made it: Alice adds
    // Bob from his laptop's card, then from his phone's (as if he had
    // handed her both), so her requests reach both.
    assert!(wait_until(WAIT, || laptop.devices().len() == 2));
    alice.add_contact(&laptop.card());
    assert!(
        wait_until(WAIT, || request_from(&laptop, &ia.account).is_some()),
        "no request on the laptop\nalice:\n{}",
        alice.daemon_logs()
    );
    let card = phone.card();
    alice.add_contact(&card);
    assert!(
        wait_until(WAIT, || request_from(&phone, &ia.account).is_some()),
        "no request on the phone\nalice:\n{}\nphone:\n{}\nlaptop:\n{}",
        alice.daemon_logs(),
        phone.daemon_logs(),
        laptop.daemon_logs()
    );
    assert_ok(&laptop.kith(["contact", "block", &ia.account]));
    assert!(
        wait_until(WAIT, || phone.requests_json().is_empty()),
        "the block did not reach the phone"
    );
    let before = delivered(&alice);
    alice.add_contact(&card);
    assert!(wait_until(WAIT, || delivered(&alice) > before));
    assert!(phone.requests_json().is_empty() && laptop.requests_json().is_empty());
    // Her device keeps dialling; the phone refuses the link as blocked.
    assert!(
        wait_until(WAIT, || phone.daemon_logs().contains("is blocked")),
        "the phone did not refuse a link as blocked:\n{}",
        phone.daemon_logs()
    );
}
