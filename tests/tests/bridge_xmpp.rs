//! The XMPP bridge (kith-bridge) against a real Prosody on loopback: the
//! login's clear failures, messages both ways with receipts, a group chat,
//! and a server that goes away and comes back with messages queued.

use kith_bridge::xmpp::{self, Config};
use kith_bridge::{Bridge, BridgeError, Incoming, Outgoing, Password, Received, Status};
use kith_tests::prosody::{DOMAIN, MUC, Prosody};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

fn config(p: &Prosody, user: &str) -> Config {
    Config {
        jid: format!("{user}@{DOMAIN}"),
        server: Some(p.server()),
        extra_roots_pem: Some(std::fs::read(p.ca_file()).expect("the CA file")),
    }
}

async fn start(p: &Prosody, user: &str, password: &str) -> (xmpp::XmppBridge, Receiver<Incoming>) {
    xmpp::start(&config(p, user), Password::new(password.into()))
        .await
        .unwrap_or_else(|e| panic!("{user} logs in: {e}\n{}", p.log()))
}

/// The next event that `pick` takes, within 20 s; others are skipped.
async fn next<T>(rx: &mut Receiver<Incoming>, mut pick: impl FnMut(Incoming) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("an event within 20 s")
            .expect("the bridge runs");
        if let Some(t) = pick(event) {
            return t;
        }
    }
}

fn message(e: Incoming) -> Option<Received> {
    match e {
        Incoming::Message(m) => Some(m),
        _ => None,
    }
}

fn out(id: &str, to: &str, text: &str) -> Outgoing {
    Outgoing {
        id: id.into(),
        to: to.into(),
        group: false,
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_cannot_work_fails_clearly_and_nothing_runs() {
    if !Prosody::available() {
        return;
    }
    let p = Prosody::start();
    p.register("alice", "right-password");
    let wrong = xmpp::start(&config(&p, "alice"), Password::new("wrong".into()))
        .await
        .unwrap_err();
    assert!(matches!(wrong, BridgeError::Refused(_)), "{wrong}");
    assert!(wrong.to_string().contains("refused the login"), "{wrong}");

    // No CA given: the test server's certificate is not trusted.
    let mut untrusted = config(&p, "alice");
    untrusted.extra_roots_pem = None;
    let e = xmpp::start(&untrusted, Password::new("right-password".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, BridgeError::Certificate { .. }), "{e}");

    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut nowhere = config(&p, "alice");
    nowhere.server = Some(format!("127.0.0.1:{closed}"));
    let e = xmpp::start(&nowhere, Password::new("right-password".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, BridgeError::Unreachable { .. }), "{e}");

    for bad in ["no-user-part.example", "", "a@b@c"] {
        let mut c = config(&p, "alice");
        c.jid = bad.into();
        let e = xmpp::start(&c, Password::new("x".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, BridgeError::Invalid(_)), "{bad}: {e}");
    }
    let mut c = config(&p, "alice");
    c.extra_roots_pem = Some(b"not a certificate".to_vec());
    let e = xmpp::start(&c, Password::new("x".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, BridgeError::Invalid(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_both_ways_with_receipts_and_a_group_chat() {
    if !Prosody::available() {
        return;
    }
    let p = Prosody::start();
    p.register("alice", "alice-pass");
    p.register("bob", "bob-pass");
    let (alice, mut a) = start(&p, "alice", "alice-pass").await;
    let (bob, mut b) = start(&p, "bob", "bob-pass").await;
    next(&mut a, |e| {
        (e == Incoming::Status(Status::Online)).then_some(())
    })
    .await;
    next(&mut b, |e| {
        (e == Incoming::Status(Status::Online)).then_some(())
    })
    .await;
    assert_eq!(alice.status(), Status::Online);

    alice
        .send(out("m-1", &format!("bob@{DOMAIN}"), "hello Bob, ünïcode ✓"))
        .unwrap();
    let got = next(&mut b, message).await;
    assert_eq!(got.chat, format!("alice@{DOMAIN}"));
    assert_eq!(got.text, "hello Bob, ünïcode ✓");
    assert_eq!(got.id.as_deref(), Some("m-1"));
    assert!(got.wants_receipt && !got.group && !got.own);
    next(&mut a, |e| {
        matches!(e, Incoming::Sent { id } if id == "m-1").then_some(())
    })
    .await;
    // Bob's side keeps it, then says so: Alice learns it was delivered.
    bob.received(&got.chat, "m-1").unwrap();
    let (chat, id) = next(&mut a, |e| match e {
        Incoming::Delivered { chat, id } => Some((chat, id)),
        _ => None,
    })
    .await;
    assert_eq!(
        (chat.as_str(), id.as_str()),
        (format!("bob@{DOMAIN}").as_str(), "m-1")
    );

    bob.send(out("b-1", &format!("alice@{DOMAIN}"), "hi Alice"))
        .unwrap();
    let got = next(&mut a, message).await;
    assert_eq!(
        (got.chat.as_str(), got.text.as_str()),
        (format!("bob@{DOMAIN}").as_str(), "hi Alice")
    );

    // A group chat: both join; what one writes reaches the other, and
    // comes back to the writer marked as its own.
    let room = format!("kith-test@{MUC}");
    alice.join(&room, None).unwrap();
    next(&mut a, |e| {
        matches!(&e, Incoming::Joined { group } if *group == room).then_some(())
    })
    .await;
    bob.join(&room, None).unwrap();
    next(&mut b, |e| {
        matches!(&e, Incoming::Joined { group } if *group == room).then_some(())
    })
    .await;
    alice
        .send(Outgoing {
            id: "g-1".into(),
            to: room.clone(),
            group: true,
            text: "hello room".into(),
        })
        .unwrap();
    let got = next(&mut b, |e| message(e).filter(|m| m.group)).await;
    assert_eq!(
        (got.chat.as_str(), got.sender.as_str(), got.text.as_str()),
        (room.as_str(), "alice", "hello room")
    );
    assert!(!got.own && !got.wants_receipt);
    let echo = next(&mut a, |e| message(e).filter(|m| m.group)).await;
    assert!(echo.own && echo.text == "hello room");

    alice.close();
    bob.close();
    next(&mut a, |e| {
        (e == Incoming::Status(Status::Closed)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_goes_away_and_queued_messages_go_out_in_order_when_it_returns() {
    if !Prosody::available() {
        return;
    }
    let mut p = Prosody::start();
    p.register("alice", "alice-pass");
    p.register("bob", "bob-pass");
    let (alice, mut a) = start(&p, "alice", "alice-pass").await;
    next(&mut a, |e| {
        (e == Incoming::Status(Status::Online)).then_some(())
    })
    .await;

    p.stop();
    let (why, retry_in) = next(&mut a, |e| match e {
        Incoming::Status(Status::Offline { why, retry_in }) => Some((why, retry_in)),
        _ => None,
    })
    .await;
    assert!(
        !why.is_empty() && retry_in >= Duration::from_secs(1),
        "{why}"
    );
    assert!(
        alice.status().to_string().contains("next try in"),
        "{}",
        alice.status()
    );
    // Sent while the server is away: they wait, in order.
    for i in 0..20 {
        alice
            .send(out(
                &format!("q-{i}"),
                &format!("bob@{DOMAIN}"),
                &format!("queued {i}"),
            ))
            .unwrap();
    }
    // Backoff grows: a second failure waits longer than the first.
    let (_, later) = next(&mut a, |e| match e {
        Incoming::Status(Status::Offline { why, retry_in }) => Some((why, retry_in)),
        _ => None,
    })
    .await;
    assert!(later > retry_in, "{later:?} after {retry_in:?}");

    p.run();
    next(&mut a, |e| {
        (e == Incoming::Status(Status::Online)).then_some(())
    })
    .await;
    let (_bob, mut b) = start(&p, "bob", "bob-pass").await;
    // Bob was offline when they went out: the server kept them for him.
    let mut texts = Vec::new();
    while texts.len() < 20 {
        texts.push(next(&mut b, message).await.text);
    }
    let want: Vec<String> = (0..20).map(|i| format!("queued {i}")).collect();
    assert_eq!(texts, want);
}

/// Byzantine: another account on the network writes what a careful bridge
/// must not believe — a receipt and an error for a message it never
/// received, a private message dressed as from a group, a message dated in
/// the future, an oversized body. None of it counts; the genuine receipt
/// still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_stranger_forges_is_not_believed() {
    use raw::*;
    if !Prosody::available() {
        return;
    }
    let p = Prosody::start();
    for (u, pw) in [
        ("alice", "alice-pass"),
        ("bob", "bob-pass"),
        ("mallory", "mallory-pass"),
    ] {
        p.register(u, pw);
    }
    let (alice, mut a) = start(&p, "alice", "alice-pass").await;
    let (bob, mut b) = start(&p, "bob", "bob-pass").await;
    next(&mut a, |e| {
        (e == Incoming::Status(Status::Online)).then_some(())
    })
    .await;
    next(&mut b, |e| {
        (e == Incoming::Status(Status::Online)).then_some(())
    })
    .await;
    let mut mallory = xmpp::raw_stream(
        &config(&p, "mallory"),
        &Password::new("mallory-pass".into()),
    )
    .await
    .expect("mallory logs in");
    wait_reset(&mut mallory).await;

    let alice_jid = format!("alice@{DOMAIN}");
    alice
        .send(out("m-1", &format!("bob@{DOMAIN}"), "for Bob only"))
        .unwrap();
    next(&mut b, message).await;
    next(&mut a, |e| matches!(e, Incoming::Sent { .. }).then_some(())).await;

    let to_alice = || Jid::new(&alice_jid).unwrap();
    // A receipt and an error for Alice's message to Bob, from Mallory.
    let receipt = Message::chat(to_alice()).with_payload(receipts::Received { id: "m-1".into() });
    let mut error = Message::new(to_alice());
    error.type_ = MessageType::Error;
    error.id = Some(Id("m-1".into()));
    // A private message marked as coming through a group chat.
    let mut dressed =
        Message::chat(to_alice()).with_body(Lang::new(), "from the room, honest".into());
    dressed
        .payloads
        .push(Element::builder("x", ns::MUC_USER).build());
    // Dated in the future, and too long.
    let future = Message::chat(to_alice())
        .with_body(Lang::new(), "from the future".into())
        .with_payload(Delay {
            from: None,
            stamp: "2099-01-01T00:00:00Z".parse().unwrap(),
            data: None,
        });
    let long = Message::chat(to_alice()).with_body(Lang::new(), "x".repeat(100 * 1024));
    for m in [receipt, error, dressed, future, long] {
        mallory.send(Box::new(m.into())).await;
    }
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 60_000;
    // Everything Alice reports until the last of Mallory's messages.
    let mut seen = Vec::new();
    next(&mut a, |e| {
        let last = matches!(&e, Incoming::Message(m) if m.text.starts_with("xxx"));
        seen.push(e);
        last.then_some(())
    })
    .await;
    let texts: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Incoming::Message(m) => Some(m.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts.len(),
        2,
        "only the dated and the long message: {texts:?}"
    );
    assert_eq!(texts[0], "from the future");
    assert!(texts[1].len() <= kith_bridge::MAX_TEXT && texts[1].ends_with(" […]"));
    let dated = seen.iter().find_map(|e| match e {
        Incoming::Message(m) if m.text == "from the future" => m.time_ms,
        _ => None,
    });
    assert!(dated.is_some_and(|t| t <= later), "{dated:?}");
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Incoming::Failed { .. } | Incoming::Delivered { .. })),
        "a forged receipt or error was believed: {seen:?}"
    );
    // Bob's genuine receipt still counts.
    bob.received(&alice_jid, "m-1").unwrap();
    let chat = next(&mut a, |e| match e {
        Incoming::Delivered { chat, id } if id == "m-1" => Some(chat),
        _ => None,
    })
    .await;
    assert_eq!(chat, format!("bob@{DOMAIN}"));
}

mod raw {
    pub use kith_bridge::tokio_xmpp::jid::Jid;
    pub use kith_bridge::tokio_xmpp::minidom::Element;
    pub use kith_bridge::tokio_xmpp::parsers::delay::Delay;
    pub use kith_bridge::tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType};
    pub use kith_bridge::tokio_xmpp::parsers::{ns, receipts};
    use kith_bridge::tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};

    /// Waits (20 s at most) until a raw stream is bound.
    pub async fn wait_reset(s: &mut StanzaStream) {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, s.next()).await {
                Ok(Some(Event::Stream(StreamEvent::Reset { .. }))) => return,
                Ok(Some(_)) => {}
                other => panic!("no session: {other:?}"),
            }
        }
    }
}
