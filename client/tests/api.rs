//! The client library's errors carry a kind a program can match on (the
//! message stays the one line the CLI prints).

#![allow(clippy::unwrap_used)]

mod support;

use kith_app::rpc::{self, ErrorKind, Request};
use support::Running;

fn kind(e: &anyhow::Error) -> ErrorKind {
    rpc::client_error(e)
        .unwrap_or_else(|| panic!("no ClientError in {e:#}"))
        .kind
}

#[tokio::test]
async fn no_daemon_is_its_own_kind() {
    let dir = tempfile::tempdir().unwrap();
    let e = rpc::call(dir.path(), &Request::Status).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::NoDaemon);
    assert!(
        kith_app::one_line(&e).starts_with("no kith daemon is running for"),
        "{e:#}"
    );
    let e = rpc::subscribe(dir.path()).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::NoDaemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_says_what_kind_of_failure() {
    let alice = Running::start("Alice");
    let send = Request::Send {
        target: "nobody-by-that-name".into(),
        text: "hi".into(),
    };
    let e = rpc::call(&alice.home, &send).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::Invalid, "{e:#}");
    let add = Request::ContactAdd {
        card: "kith:not-a-card".into(),
        alias: None,
        handle: None,
    };
    let e = rpc::call(&alice.home, &add).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::Invalid, "{e:#}");
    // Success still answers with the value.
    let status = rpc::call(&alice.home, &Request::Status).await.unwrap();
    assert!(status["device"].is_string());
}

/// Every typed answer is exactly what the socket carries (the daemon builds
/// its answers from the same types, so they cannot drift): a program gets
/// fields, not JSON to pick apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_answers_are_what_the_socket_carries() {
    use kith_app::rpc::Client;
    let alice = Running::start("Alice");
    let bob = Running::start("Bob");
    let a = Client::new(&alice.home);
    let b = Client::new(&bob.home);
    fn json(v: impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }
    let same = |typed: serde_json::Value, raw: serde_json::Value| assert_eq!(typed, raw);

    let status = a.status().await.unwrap();
    assert!(!status.device.is_empty());
    let card = b.card().await.unwrap();
    assert!(card.uri.starts_with("kith:"));
    let added = a.contact_add(&card.uri, Some("bobby")).await.unwrap();
    b.contact_add(&a.card().await.unwrap().uri, None)
        .await
        .unwrap();
    let contacts = a.contact_list().await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].id, added.id);
    same(
        json(&contacts),
        rpc::call(&alice.home, &Request::ContactList).await.unwrap(),
    );

    let sent = a.send("bobby", "typed hello").await.unwrap();
    // Bob's delivery receipt flips `delivered`; wait for it (bounded) so the
    // typed and raw answers below are read from the same state.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let log = loop {
        let log = a.log("bobby", None).await.unwrap();
        if log.last().is_some_and(|m| m.delivered) || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        log.last().is_some_and(|m| m.delivered),
        "Bob's receipt never came"
    );
    assert_eq!(
        log.last().map(|m| (m.id, m.text.as_str())),
        Some((sent.id, "typed hello"))
    );
    let raw_log = Request::Log {
        target: "bobby".into(),
        limit: None,
    };
    same(json(&log), rpc::call(&alice.home, &raw_log).await.unwrap());

    let number = a.safety_number("bobby").await.unwrap();
    assert_eq!(number.contact, added.id);
    assert_eq!(number.digits.len(), 60);
    let raw_number = Request::ContactSafetyNumber {
        contact: "bobby".into(),
    };
    same(
        json(&number),
        rpc::call(&alice.home, &raw_number).await.unwrap(),
    );

    let room = a.room_create("typed room", false).await.unwrap();
    let rooms = a.room_list().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].id, room.id);
    same(
        json(&rooms),
        rpc::call(&alice.home, &Request::RoomList).await.unwrap(),
    );
    let members = a.room_members("typed room").await.unwrap();
    assert_eq!(members.len(), 1);

    assert_eq!(a.mark_read("bobby").await.unwrap(), kith_app::rpc::Done {});
    assert_eq!(
        a.mark_read("typed room").await.unwrap(),
        kith_app::rpc::Done {}
    );
    let found = a.search("bobby", "TYPED").await.unwrap();
    assert_eq!(found.len(), 1);
    let raw_search = Request::Search {
        target: "bobby".into(),
        text: "TYPED".into(),
    };
    same(
        json(&found),
        rpc::call(&alice.home, &raw_search).await.unwrap(),
    );
    assert_eq!(
        a.mute("typed room", true).await.unwrap(),
        kith_app::rpc::Done {}
    );
    assert!(a.room_list().await.unwrap()[0].muted);
    let limit = a.file_sync_limit(None).await.unwrap();
    same(
        json(limit),
        rpc::call(&alice.home, &Request::FileSyncLimit { bytes: None })
            .await
            .unwrap(),
    );
    let devices = a.device_list().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].current);
    let mailbox = a.mailbox_status().await.unwrap();
    assert_eq!(mailbox.url, None);
    same(
        json(&mailbox),
        rpc::call(&alice.home, &Request::MailboxStatus)
            .await
            .unwrap(),
    );
    let push = a.push_status().await.unwrap();
    assert!(!push.registered);
    same(
        json(&push),
        rpc::call(&alice.home, &Request::PushStatus).await.unwrap(),
    );
    let off = a.mailbox_off().await.unwrap();
    assert_eq!((off.url, off.removed), (None, false));

    // Failures keep their kind through the typed methods.
    let e = a.send("nobody-by-that-name", "hi").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    let e = Client::new(tempfile::tempdir().unwrap().path())
        .status()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoDaemon);
}
