//! Trust through the CLI (CLI.md "Identity, contacts and trust"): the
//! safety number is the same on both sides and on every device, `verify`
//! validates only on an exact match, trust follows the user to their other
//! devices, and an introduction arrives unvalidated naming the introducer.

#![allow(clippy::unwrap_used)]

use kith_tests::{Profile, assert_fails_cleanly, assert_ok, pair, wait_until};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The contact `account` as `p`'s `contact list --json` shows it.
fn contact(p: &Profile, account: &str) -> Option<serde_json::Value> {
    p.contacts_json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == account)
        .cloned()
}

fn trust(p: &Profile, account: &str) -> String {
    contact(p, account).unwrap()["trust"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn safety_number(p: &Profile, contact: &str) -> String {
    let out = p.kith(["contact", "safety-number", contact, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    v["digits"].as_str().unwrap().to_owned()
}

/// The number is the same on both sides and on a second device; a wrong
/// length or a wrong number fails cleanly and leaves the contact
/// unvalidated; the right one (grouped as people read it) validates, and
/// the second device follows.
#[test]
fn verify_validates_only_the_exact_number_on_every_device() {
    let mut a1 = Profile::new();
    let ia = a1.init("alice");
    let _da1 = a1.spawn_daemon();
    let mut b = Profile::new();
    let ib = b.init("bob");
    let _db = b.spawn_daemon();
    pair(&a1, &b);
    let a2 = Profile::new();
    a2.join(&a1, "alice-phone");
    let _da2 = a2.spawn_daemon_shared();

    let number = safety_number(&a1, &ib.account);
    assert_eq!(number.len(), 60);
    assert_eq!(safety_number(&b, &ia.account), number);
    assert!(wait_until(WAIT, || contact(&a2, &ib.account).is_some()));
    assert_eq!(safety_number(&a2, &ib.account), number);

    let mut wrong = number.clone().into_bytes();
    wrong[0] = if wrong[0] == b'9' { b'1' } else { b'9' };
    let wrong = String::from_utf8(wrong).unwrap();
    for bad in [&number[..30], "1234 5678", wrong.as_str()] {
        let out = a1.kith(["contact", "verify", ib.account.as_str(), bad]);
        assert_fails_cleanly(&out);
    }
    assert_eq!(trust(&a1, &ib.account), "unvalidated");

    let grouped: Vec<String> = number
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let mut args = vec!["contact", "verify", ib.account.as_str()];
    args.extend(grouped.iter().map(String::as_str));
    assert_ok(&a1.kith(&args));
    assert_eq!(trust(&a1, &ib.account), "validated");
    assert!(
        wait_until(WAIT, || trust(&a2, &ib.account) == "validated"),
        "A2 did not follow\n{}",
        a2.daemon_logs()
    );
    // B's trust in A is its own business.
    assert_eq!(trust(&b, &ia.account), "unvalidated");

    // By hand, and refused for a bad state.
    assert_fails_cleanly(&a1.kith(["contact", "trust", ib.account.as_str(), "maybe"]));
    assert_ok(&a1.kith(["contact", "trust", ib.account.as_str(), "compromised"]));
    assert!(wait_until(WAIT, || trust(&a2, &ib.account) == "compromised"));
}

/// A introduces C to B: B's contact list gains C as unvalidated, naming A;
/// A's own trust in C shows in the introduction but is not inherited.
/// Sharing with or about someone who is not a contact fails cleanly.
#[test]
fn an_introduction_arrives_unvalidated_and_names_the_introducer() {
    let mut a = Profile::new();
    let ia = a.init("alice");
    let _da = a.spawn_daemon();
    let mut b = Profile::new();
    let _ib = b.init("bob");
    let _db = b.spawn_daemon();
    let mut c = Profile::new();
    let ic = c.init("carol");
    let _dc = c.spawn_daemon();
    let (bid, _) = pair(&a, &b);
    let (cid, _) = pair(&a, &c);
    let number = safety_number(&a, &cid);
    assert_ok(&a.kith(["contact", "verify", cid.as_str(), number.as_str()]));

    let stranger = "a".repeat(52);
    assert_fails_cleanly(&a.kith([
        "contact",
        "share",
        stranger.as_str(),
        "--with",
        bid.as_str(),
    ]));
    assert_fails_cleanly(&a.kith([
        "contact",
        "share",
        cid.as_str(),
        "--with",
        stranger.as_str(),
    ]));

    assert_ok(&a.kith(["contact", "share", cid.as_str(), "--with", bid.as_str()]));
    assert!(
        wait_until(WAIT, || contact(&b, &ic.account).is_some()),
        "B never got the introduction\n{}",
        b.daemon_logs()
    );
    let carol = contact(&b, &ic.account).unwrap();
    assert_eq!(carol["trust"], "unvalidated");
    assert_eq!(carol["introduced_by"], ia.account.as_str());
    let log = b.log_json(&ia.account);
    assert!(
        log.iter()
            .any(|m| m.text.contains("carol") && m.text.contains("validated")),
        "{log:?}"
    );
}
