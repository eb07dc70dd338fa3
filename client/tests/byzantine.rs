//! The Byzantine suite: a scripted hostile peer over real QUIC against a
//! real daemon. Each case: the peer is refused or ignored (or
//! disconnected), the daemon stays up, and the victim's store is unchanged
//! (a digest of its logs, contacts, devices and counts before and after).
//!
//! What each case closes is named in ARCHITECTURE.md's threat model.

#![allow(clippy::unwrap_used)]

mod support;

use node_core::crypto::SigningKey;
use node_core::log::{Draft, Event, LogKind};
use node_core::node::Node;
use node_core::store::Profile;
use node_core::sync::{Msg, SYNC_VERSION};
use node_core::transport::{FrameReader, FrameWriter, Link, Transport};
use node_core::{AccountId, DeviceId, EventId, LogId};
use std::net::SocketAddr;
use std::time::Duration;
use support::{Running, kith, ok};

fn target(d: &Running) -> (DeviceId, SocketAddr, AccountId) {
    let s = d.status();
    let device: DeviceId = s["device"].as_str().unwrap().parse().unwrap();
    let addr: SocketAddr = s["listening"][0].as_str().unwrap().parse().unwrap();
    let account: AccountId = s["account"].as_str().unwrap().parse().unwrap();
    (device, addr, account)
}

/// What the victim holds, as its CLI shows it: every contact's log, the
/// contact and device lists, and how many events it stores and holds.
fn digest(d: &Running) -> String {
    let s = d.status();
    let contacts = ok(kith(&d.home, &["contact", "list", "--json"]));
    let mut out = format!(
        "events={} held={} outbox={}\ncontacts={contacts}\ndevices={}\n",
        s["events"],
        s["held"],
        s["outbox"],
        ok(kith(&d.home, &["device", "list", "--json"])),
    );
    let list: serde_json::Value = serde_json::from_str(&contacts).unwrap();
    for c in list.as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        out.push_str(&ok(kith(&d.home, &["log", id, "--json"])));
        out.push('\n');
    }
    out
}

/// A node of its own account in `dir`, made a contact of `d` (the daemon
/// adds its card): the hostile contact's side, driven by hand.
async fn contact_of(d: &Running, dir: &tempfile::TempDir, name: &str) -> Node {
    let (node, _) = Node::create(Profile::new(dir.path().join(name)), name, None, false, 1)
        .await
        .unwrap();
    ok(kith(
        &d.home,
        &["contact", "add", &node.card(vec![], 1).unwrap()],
    ));
    node
}

async fn dial(t: &Transport, d: &Running) -> Link {
    let (device, addr, _) = target(d);
    t.connect(device, &[addr]).await.unwrap()
}

async fn hello(w: &mut FrameWriter, account: AccountId) {
    let msg = Msg::Hello {
        version: SYNC_VERSION,
        account,
    };
    w.send(&msg.encode()).await.unwrap();
}

/// Every message the daemon sends within `wait` (or until the link ends).
async fn read_for(r: &mut FrameReader, wait: Duration) -> Vec<Msg> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok(Some(frame))) = tokio::time::timeout_at(deadline, r.recv()).await {
        out.push(Msg::decode(&frame).unwrap());
    }
    out
}

fn no_hints(msgs: &[Msg]) -> bool {
    !msgs
        .iter()
        .any(|m| matches!(m, Msg::Hints { .. } | Msg::DeviceHints { .. }))
}

/// `n` events of `log` by `key`, each citing a parent that does not exist
/// at a depth the sender picks (they would wait for parents forever).
fn ghost_children(key: &SigningKey, log: LogId, kind: LogKind, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let ghost = EventId::from_bytes(node_core::crypto::hash(
                node_core::crypto::HashDomain::EVENT_ID,
                &i.to_be_bytes(),
            ));
            Event::sign(
                key,
                Draft {
                    log: Some(log),
                    log_kind: kind,
                    seq: i + 1,
                    prev: None,
                    parents: vec![(ghost, 1_000_000 - i)],
                    time: 1,
                    kind: 7,
                    body: vec![0; 512],
                },
            )
            .encode()
        })
        .collect()
}

/// A stranger's key claims the victim's own account (its id is public).
/// It learns no address, gets none of the victim's private logs or its
/// contacts' account logs, and its events with unknown parents are not
/// held (they used to fill memory and the `pending` table without bound,
/// and a restart read them all back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_claiming_the_victims_account_gets_and_leaves_nothing() {
    let bob = Running::start("Bob");
    let (_, _, account) = target(&bob);
    // Bob has a contact, whose account log must not be told to strangers
    // (the list of account logs a device follows is its contact list).
    let dir = tempfile::tempdir().unwrap();
    let carol = contact_of(&bob, &dir, "Carol").await;
    let before = digest(&bob);
    let key = SigningKey::generate();
    let t = Transport::bind(&key, &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t, &bob).await;
    let (mut w, mut r) = link.open().await.unwrap();
    hello(&mut w, account).await;
    let first = read_for(&mut r, Duration::from_secs(3)).await;
    assert!(
        matches!(first.first(), Some(Msg::Hello { .. })),
        "{first:?}"
    );
    assert!(no_hints(&first), "addresses told to a stranger: {first:?}");

    // Neither the self log nor a contact's account log is shared with it.
    for log in [LogId::self_log(account), LogId::account(carol.account())] {
        let begin = Msg::Begin { log, heads: vec![] };
        w.send(&begin.encode()).await.unwrap();
        let answer = read_for(&mut r, Duration::from_secs(2)).await;
        assert!(
            answer
                .iter()
                .all(|m| matches!(m, Msg::Refuse { log: l } if *l == log)),
            "{log} offered to a stranger: {answer:?}"
        );
    }

    // A flood of events waiting for parents that never come.
    let log = LogId::account(account);
    for chunk in ghost_children(&key, log, LogKind::Account, 6000).chunks(500) {
        let msg = Msg::Events {
            log,
            events: chunk.to_vec(),
        };
        if w.send(&msg.encode()).await.is_err() {
            break;
        }
    }
    let _ = read_for(&mut r, Duration::from_secs(3)).await;
    assert_eq!(bob.status()["held"], 0, "held for a stranger");
    assert_eq!(digest(&bob), before);
    t.close().await;
    carol.close().await;
}

/// A key that connects and never says hello is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_link_is_closed() {
    let mut bob = Running::start("Bob");
    let t = Transport::bind(&SigningKey::generate(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t, &bob).await;
    let (_w, mut r) = link.open().await.unwrap();
    let msgs = read_for(&mut r, Duration::from_secs(20)).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), link.closed())
            .await
            .is_ok(),
        "a link without hello stayed open"
    );
    assert!(no_hints(&msgs), "addresses told before hello: {msgs:?}");
    assert!(bob.is_running());
    t.close().await;
}

/// A contact outside a room hears nothing of it: no `Have` offers, no
/// events (they used to go to every link, before hello too, leaking room
/// and event ids and timing, and made the contact drop the link). Once its
/// account log proves its device, it does get the victim's addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_outside_a_room_hears_nothing_of_it() {
    let bob = Running::start("Bob");
    let (_, _, bob_account) = target(&bob);
    // A room of Bob and Carol, linked (Carol is Bob's ring neighbour).
    let carol = Running::start("Carol");
    let (_, _, carol_account) = target(&carol);
    ok(kith(&bob.home, &["contact", "add", &carol.card()]));
    ok(kith(&carol.home, &["contact", "add", &bob.card()]));
    let room = ok(kith(&bob.home, &["room", "create", "secret plans"]));
    let room: LogId = room.trim().parse().unwrap();
    let joined = || {
        let out = ok(kith(&bob.home, &["room", "list", "--json"]));
        let rooms: serde_json::Value = serde_json::from_str(&out).unwrap();
        rooms[0]["members"] == 2
    };
    let invited = || {
        kith(
            &bob.home,
            &[
                "room",
                "invite",
                &room.to_string(),
                &carol_account.to_string(),
            ],
        )
        .status
        .success()
    };
    assert!(support::wait_until(Duration::from_secs(60), invited));
    assert!(
        support::wait_until(Duration::from_secs(60), joined),
        "Carol did not join\n{}\n{}",
        bob.log(),
        carol.log()
    );
    let dir = tempfile::tempdir().unwrap();
    let mallory = contact_of(&bob, &dir, "Mallory").await;
    let t = mallory
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t, &bob).await;
    let (mut w, mut r) = link.open().await.unwrap();
    hello(&mut w, mallory.account()).await;
    let unproven = read_for(&mut r, Duration::from_secs(2)).await;
    assert!(no_hints(&unproven), "hints before proof: {unproven:?}");
    // Mallory proves her device: her account log.
    let log = LogId::account(mallory.account());
    let ids: Vec<EventId> = mallory.log(&log).unwrap().ids().copied().collect();
    let events = mallory.serve(log, &ids).await.unwrap();
    w.send(&Msg::Events { log, events }.encode()).await.unwrap();
    let proven = read_for(&mut r, Duration::from_secs(4)).await;
    assert!(
        proven.iter().any(|m| matches!(m, Msg::Hints { .. })),
        "no hints once proven: {proven:?}"
    );

    for i in 0..5 {
        ok(kith(
            &bob.home,
            &["send", &room.to_string(), &format!("meet at {i}")],
        ));
    }
    let after = read_for(&mut r, Duration::from_secs(3)).await;
    let leaked: Vec<&Msg> = after
        .iter()
        .filter(|m| match m {
            Msg::Have { log, .. } | Msg::Events { log, .. } | Msg::Begin { log, .. } => {
                *log == room
            }
            _ => false,
        })
        .collect();
    assert!(leaked.is_empty(), "room told to a non-member: {leaked:?}");
    assert_eq!(
        bob_account,
        target(&bob).2,
        "the victim is still up and the same"
    );
    t.close().await;
    mallory.close().await;
}

/// A proven contact that breaks the rules inside logs it may write: an
/// event with a forged signature, a replay of frames it already sent, a
/// request for a room it is not in, and a frame cut short. Each is refused
/// or ignored; the daemon stays up and its store is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_contact_cannot_forge_replay_or_reach_a_room() {
    let mut bob = Running::start("Bob");
    let dir = tempfile::tempdir().unwrap();
    let mut mallory = contact_of(&bob, &dir, "Mallory").await;
    mallory.add_contact(&bob.card(), None, 2).await.unwrap();
    let room = ok(kith(&bob.home, &["room", "create", "private"]));
    let room: LogId = room.trim().parse().unwrap();
    let t = mallory
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t, &bob).await;
    let (mut w, mut r) = link.open().await.unwrap();
    hello(&mut w, mallory.account()).await;
    let own = LogId::account(mallory.account());
    let ids: Vec<EventId> = mallory.log(&own).unwrap().ids().copied().collect();
    let proof = Msg::Events {
        log: own,
        events: mallory.serve(own, &ids).await.unwrap(),
    };
    w.send(&proof.encode()).await.unwrap();
    let _ = read_for(&mut r, Duration::from_secs(3)).await;
    let before = digest(&bob);

    // A forged signature on a message in the conversation.
    let (_, _, bob_account) = target(&bob);
    let conv = LogId::conversation(mallory.account(), bob_account);
    mallory.send_message(bob_account, "real", 3).await.unwrap();
    let ids: Vec<EventId> = mallory.log(&conv).unwrap().ids().copied().collect();
    let mut events = mallory.serve(conv, &ids).await.unwrap();
    for e in &mut events {
        let last = e.len() - 1;
        e[last] ^= 1;
    }
    let forged = Msg::Events { log: conv, events };
    w.send(&forged.encode()).await.unwrap();
    // Replays of what was sent already.
    for _ in 0..20 {
        w.send(&proof.encode()).await.unwrap();
        w.send(&forged.encode()).await.unwrap();
    }
    // The room, which Bob never shared with Mallory.
    let begin = Msg::Begin {
        log: room,
        heads: vec![],
    };
    w.send(&begin.encode()).await.unwrap();
    let want = Msg::Want {
        log: room,
        ids: vec![EventId::from_bytes(*room.as_bytes())],
    };
    w.send(&want.encode()).await.unwrap();
    let answer = read_for(&mut r, Duration::from_secs(3)).await;
    let leaked: Vec<&Msg> = answer
        .iter()
        .filter(|m| matches!(m, Msg::Events { log, .. } | Msg::Same { log } | Msg::Heads { log, .. } if *log == room))
        .collect();
    assert!(leaked.is_empty(), "room served to a non-member: {leaked:?}");
    assert_eq!(
        digest(&bob),
        before,
        "forged or replayed events changed the store"
    );
    assert!(bob.is_running());

    // A frame cut short: the header announces more than ever comes.
    let link = dial(&t, &bob).await;
    let (mut w, _r) = link.open().await.unwrap();
    let mut raw = 1000u32.to_be_bytes().to_vec();
    raw.extend_from_slice(&[0u8; 10]);
    w.danger_write_raw(&raw).await.unwrap();
    drop(w);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(bob.is_running(), "daemon died:\n{}", bob.log());
    assert_eq!(digest(&bob), before);
    t.close().await;
    mallory.close().await;
}

/// Mallory, a contact of `d`'s with two devices: m1, and m2 joined through
/// the real code path (the seed of m2's key is kept: a thief's copy).
async fn mallory(
    d: &Running,
    dir: &tempfile::TempDir,
) -> (Node, Node, node_core::crypto::SecretBytes<32>) {
    let (mut m1, _) = Node::create(Profile::new(dir.path().join("m1")), "m1", None, false, 1)
        .await
        .unwrap();
    let code = m1.invite(vec![], 1).unwrap();
    let invite = node_core::sync::join::Invite::parse(&code).unwrap();
    let seed = node_core::crypto::SecretBytes::<32>::random();
    let key = SigningKey::from_seed(&seed);
    let device = DeviceId::from(key.verifying_key());
    let proof = node_core::identity::entry::sign_join(&key, invite.account, "m2");
    let snapshot = m1
        .accept_join(device, &invite.secret, "m2", proof, 1)
        .await
        .unwrap();
    let m2 = Node::create_joined(
        Profile::new(dir.path().join("m2")),
        "m2",
        None,
        key,
        &invite,
        snapshot,
        1,
    )
    .await
    .unwrap();
    ok(kith(
        &d.home,
        &["contact", "add", &m1.card(vec![], 2).unwrap()],
    ));
    (m1, m2, seed)
}

/// Links `node` to `d`, says hello and sends its account log; the link
/// stays open.
async fn tell_account_log(node: &Node, d: &Running) -> (Transport, Link, FrameWriter, FrameReader) {
    let own = LogId::account(node.account());
    let ids: Vec<EventId> = node.log(&own).unwrap().ids().copied().collect();
    let account_log = node.serve(own, &ids).await.unwrap();
    let t = node
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t, d).await;
    let (mut w, mut r) = link.open().await.unwrap();
    hello(&mut w, node.account()).await;
    w.send(
        &Msg::Events {
            log: own,
            events: account_log,
        }
        .encode(),
    )
    .await
    .unwrap();
    let _ = read_for(&mut r, Duration::from_secs(3)).await;
    (t, link, w, r)
}

/// A device of a contact that the contact revoked: its receipts do not
/// clear the victim's outbox (an `Ack` on an account log, which any device
/// of the account may still sync, used to count), and nothing it writes
/// below or above its cut-off is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_clears_no_outbox_and_writes_nothing() {
    let bob = Running::start("Bob");
    let (_, _, bob_account) = target(&bob);
    let dir = tempfile::tempdir().unwrap();
    let (mut m1, m2, _) = mallory(&bob, &dir).await;
    let waiting = ok(kith(
        &bob.home,
        &["send", &m1.account().to_string(), "for Mallory"],
    ));
    let msg: EventId = waiting.trim().parse().unwrap();
    assert_eq!(bob.status()["outbox"], 1);

    // m1 revokes m2 and tells Bob.
    m1.revoke_device("m2", 3).await.unwrap();
    let own = LogId::account(m1.account());
    let (t1, link, _, _) = tell_account_log(&m1, &bob).await;
    link.close("done");
    t1.close().await;
    let before = digest(&bob);

    // The thief with m2's key.
    let t2 = m2
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t2, &bob).await;
    let (mut w, mut r) = link.open().await.unwrap();
    hello(&mut w, m2.account()).await;
    let conv = LogId::conversation(m2.account(), bob_account);
    for log in [own, conv] {
        let ack = Msg::Ack {
            log,
            ids: vec![msg],
        };
        let _ = w.send(&ack.encode()).await;
    }
    let _ = w.send(&Msg::Synced { log: own }.encode()).await;
    let got = read_for(&mut r, Duration::from_secs(3)).await;
    assert!(
        no_hints(&got),
        "a revoked device learned addresses: {got:?}"
    );
    assert_eq!(
        bob.status()["outbox"],
        1,
        "a revoked device's receipt counted"
    );
    assert_eq!(digest(&bob), before);
    t2.close().await;
    m1.close().await;
    m2.close().await;
}

/// A thief who holds a revoked device's key signs a message with a
/// sequence number below the cut-off (one the device used in another log,
/// so the cut-off covers it), and a proven device of the same account
/// relays it (as one that had not heard of the revocation would). The
/// daemon keeps it only as structure: stored, never shown. (Before cuts,
/// only the sequence number was checked and the message was shown.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thief_below_the_cut_off_is_never_shown() {
    let bob = Running::start("Bob");
    let (_, _, bob_account) = target(&bob);
    let dir = tempfile::tempdir().unwrap();
    let (mut m1, mut m2, seed) = mallory(&bob, &dir).await;
    // m2 writes in its self log; m1 hears of it, so the cut-off covers
    // those sequence numbers.
    for i in 0..3 {
        m2.set_setting(&format!("s{i}"), b"x", 2).await.unwrap();
    }
    let self_log = LogId::self_log(m1.account());
    let ids: Vec<EventId> = m2.log(&self_log).unwrap().ids().copied().collect();
    let events = m2.serve(self_log, &ids).await.unwrap();
    m1.ingest_batch(self_log, &events, 2, 1, None)
        .await
        .unwrap();
    let used = m2.log(&self_log).unwrap().ids().count() as u64;
    m1.revoke_device("m2", 3).await.unwrap();

    // The thief reuses a number m2 used in the self log, in the
    // conversation with Bob.
    let thief = SigningKey::from_seed(&seed);
    let conv = LogId::conversation(m1.account(), bob_account);
    let minted = Event::sign(
        &thief,
        Draft {
            log: Some(conv),
            log_kind: LogKind::Conversation,
            seq: used.min(2),
            prev: None,
            parents: vec![],
            time: 3,
            kind: 1,
            body: b"send me money".to_vec(),
        },
    );
    let (t1, link, mut w, mut r) = tell_account_log(&m1, &bob).await;
    let shown_before = ok(kith(
        &bob.home,
        &["log", &m1.account().to_string(), "--json"],
    ));
    let events_before = bob.status()["events"].as_u64().unwrap();
    w.send(
        &Msg::Events {
            log: conv,
            events: vec![minted.encode()],
        }
        .encode(),
    )
    .await
    .unwrap();
    let _ = read_for(&mut r, Duration::from_secs(3)).await;
    let shown = ok(kith(
        &bob.home,
        &["log", &m1.account().to_string(), "--json"],
    ));
    assert!(
        !shown.contains("send me money"),
        "the thief's message is shown: {shown}"
    );
    assert_eq!(shown, shown_before);
    // Kept as structure (what others build on it stays whole).
    assert_eq!(bob.status()["events"].as_u64().unwrap(), events_before + 1);
    link.close("done");
    t1.close().await;
    m1.close().await;
    m2.close().await;
}

/// Waits until `d`'s `kith call status --json` has a call for which
/// `pred` holds; that call.
async fn wait_call(d: &Running, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..200 {
        let calls: serde_json::Value =
            serde_json::from_str(&ok(kith(&d.home, &["call", "status", "--json"]))).unwrap();
        if let Some(c) = calls.as_array().unwrap().iter().find(|c| pred(c)) {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no such call: {}\n{}",
        ok(kith(&d.home, &["call", "status", "--json"])),
        d.log()
    );
}

/// A contact's device in a call with the victim sends media datagrams
/// that are malformed (short, wrong version or kind, unknown flags,
/// reserved bits, video flags on audio), oversized for the format, or
/// well-formed around a payload that is not one Opus frame, between
/// good ones: each is dropped and counted, the call stays up and keeps
/// playing, the daemon stays up and its store is unchanged. Then its
/// account revokes another of its devices, whose call is refused before
/// a frame is read and rings nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_bad_media_is_dropped_and_a_revoked_device_cannot_ring() {
    use kith_media::packet::{Kind, Packet};
    use node_core::call::{CallId, CallMsg};
    let mut bob = Running::start("Bob");
    let (device, addr, _) = target(&bob);
    let dir = tempfile::tempdir().unwrap();
    let (mut m1, m2, _) = mallory(&bob, &dir).await;
    let (t1, sync, _w, _r) = tell_account_log(&m1, &bob).await;
    let before = digest(&bob);

    // m1 calls Bob; Bob answers.
    let call = t1.connect_call(device, &[addr], None).await.unwrap();
    let (mut w, mut r) = call.open().await.unwrap();
    let id = CallId([7; 16]);
    w.send(
        &CallMsg::Offer {
            call: id,
            // A video call: Bob's assembler and decoder meet what follows.
            video: true,
        }
        .encode(),
    )
    .await
    .unwrap();
    let ringing = r.recv_max(256).await.unwrap().unwrap();
    assert_eq!(CallMsg::decode(&ringing).unwrap(), CallMsg::Ringing(id));
    wait_call(&bob, |c| c["state"] == "incoming").await;
    ok(kith(&bob.home, &["call", "answer"]));
    let answer = r.recv_max(256).await.unwrap().unwrap();
    assert!(matches!(
        CallMsg::decode(&answer).unwrap(),
        CallMsg::Answer { call, .. } if call == id
    ));
    w.send(&CallMsg::Accepted(id).encode()).await.unwrap();
    wait_call(&bob, |c| c["state"] == "active" && c["media"] == true).await;

    // Good frames every 20 ms, and between them every kind of bad one.
    let mut encoder = kith_media::codec::VoiceEncoder::new(32_000, 10).unwrap();
    let tone: Vec<i16> = (0..960)
        .map(|i| ((i as f64 * 0.05).sin() * 8_000.0) as i16)
        .collect();
    let good = |seq: u32, payload: Vec<u8>| {
        Packet {
            kind: Kind::Audio,
            flags: 0,
            layer: 0,
            seq,
            ts: seq * 960,
            payload,
        }
        .encode()
        .unwrap()
    };
    let frame = encoder.encode(&tone).unwrap().to_vec();
    let mut bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x10; 5],
        {
            let mut p = good(1, frame.clone());
            p[0] = 0x20; // version 2
            p
        },
        {
            let mut p = good(1, frame.clone());
            p[0] = 0x1f; // kind 15
            p
        },
        {
            let mut p = good(1, frame.clone());
            p[1] = 0x80; // an unknown flag
            p
        },
        {
            let mut p = good(1, frame.clone());
            p[3] = 1; // the reserved byte
            p
        },
        {
            let mut p = good(1, frame.clone());
            p[1] = kith_media::packet::FLAG_KEY; // a video flag on audio
            p
        },
        // A receiver report claiming more than everything lost.
        {
            let mut p = kith_media::packet::Report {
                loss_permille: 0,
                target_ms: 40,
                video_loss_permille: 0,
            }
            .packet(1)
            .encode()
            .unwrap();
            p[12] = 0xff;
            p
        },
    ];
    // Longer than the format allows, as far as the path carries.
    let max = call.max_datagram_size().unwrap_or(1200);
    bad.push({
        let mut p = good(4, frame.clone());
        p.resize(max.min(1200), 0x55);
        p
    });
    // Well-formed, in sequence, but the payload is not one 20 ms Opus
    // frame (refused by the decoder when its turn to play comes).
    let not_opus = [vec![0xff; 200], vec![0x00]];
    let n_bad = (bad.len() + not_opus.len()) as u64;
    let mut seq = 10u32;
    for b in bad {
        call.send_datagram(good(seq, encoder.encode(&tone).unwrap().to_vec()))
            .unwrap();
        seq += 1;
        let _ = call.send_datagram(b);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for payload in not_opus {
        call.send_datagram(good(seq, payload)).unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..50 {
        call.send_datagram(good(seq, encoder.encode(&tone).unwrap().to_vec()))
            .unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = wait_call(&bob, |c| c["bad_datagrams"].as_u64() >= Some(n_bad)).await;
    assert_eq!(c["bad_datagrams"].as_u64(), Some(n_bad), "{c}");
    assert_eq!(c["state"], "active", "{c}");

    // Video Bob never asked for, most of it bad: pieces that contradict
    // themselves, a flood of frames that never finish, a "key frame" of
    // junk for the decoder, key requests without end. Refused or
    // bounded; the call and its audio go on.
    let video = |seq: u32, flags: u8, payload: Vec<u8>| {
        Packet {
            kind: Kind::Video,
            flags,
            layer: 0,
            seq,
            ts: seq * 3000,
            payload,
        }
        .encode()
        .unwrap()
    };
    use kith_media::packet::{FLAG_END, FLAG_KEY};
    let contradictory = vec![
        video(1, 0, vec![0, 0, 1]),        // zero pieces
        video(2, 0, vec![3, 2, 1]),        // piece 3 of 2
        video(3, FLAG_END, vec![0, 2, 1]), // the end, but not the last
        video(4, 0, vec![1, 2, 1]),        // the last, but no end
        video(5, FLAG_END, vec![0, 1]),    // no bytes of the frame
    ];
    let n_video_bad = contradictory.len() as u64;
    for b in contradictory {
        call.send_datagram(b).unwrap();
    }
    for i in 0..2_000u32 {
        let _ = call.send_datagram(video(100_000 + i * 200, FLAG_KEY, {
            let mut v = vec![0, 200];
            v.extend(std::iter::repeat_n(0x41, 1000));
            v
        }));
        if i % 100 == 0 {
            call.send_datagram(good(seq, encoder.encode(&tone).unwrap().to_vec()))
                .unwrap();
            seq += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for i in 0..20u32 {
        let mut junk = vec![0, 1, 0, 0, 0, 1, 0x65];
        junk.extend(std::iter::repeat_n(0xa5u8, 800));
        call.send_datagram(video(1_000_000 + i, FLAG_KEY | FLAG_END, junk))
            .unwrap();
        call.send_datagram(kith_media::packet::key_request(0, i).encode().unwrap())
            .unwrap();
        call.send_datagram(good(seq, encoder.encode(&tone).unwrap().to_vec()))
            .unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = wait_call(&bob, |c| {
        c["bad_datagrams"].as_u64() >= Some(n_bad + n_video_bad)
    })
    .await;
    assert_eq!(c["state"], "active", "{c}");
    assert_eq!(c["video_frames_sent"], 0, "Bob sends no video: {c}");
    assert!(bob.is_running(), "daemon died:\n{}", bob.log());

    // Control frames out of place: a move to a device that is not the
    // contact's (the victim's own, a stranger's), a resumption, a
    // handover: the call stays with m1.
    let (bob_device, _, _) = target(&bob);
    for msg in [
        CallMsg::Move {
            call: id,
            to: bob_device,
        },
        CallMsg::Move {
            call: id,
            to: DeviceId::from_bytes([9; 32]),
        },
        CallMsg::Resume(id),
        CallMsg::Handover(node_core::call::Handover {
            call: id,
            peer: bob_device,
            caller: true,
            video: false,
            elapsed_ms: u64::MAX,
            answered_by: bob_device,
        }),
    ] {
        w.send(&msg.encode()).await.unwrap();
    }
    for _ in 0..25 {
        call.send_datagram(good(seq, encoder.encode(&tone).unwrap().to_vec()))
            .unwrap();
        seq += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = wait_call(&bob, |c| c["state"] == "active").await;
    assert_eq!(c["device"], m1.device().to_string(), "{c}");
    assert!(bob.is_running(), "daemon died:\n{}", bob.log());

    // Bob hangs up; the caller (m1) would write the record, so Bob's
    // store is as it was.
    ok(kith(&bob.home, &["call", "hangup"]));
    let end = r.recv_max(256).await.unwrap().unwrap();
    assert!(matches!(
        CallMsg::decode(&end).unwrap(),
        CallMsg::End { .. }
    ));
    call.close("done");
    sync.close("done");
    t1.close().await;
    assert_eq!(digest(&bob), before);

    // m1 revokes m2 and tells Bob; m2 rings: refused, nothing rings.
    m1.revoke_device("m2", 3).await.unwrap();
    let (t1, sync, _, _) = tell_account_log(&m1, &bob).await;
    sync.close("done");
    t1.close().await;
    let t2 = m2
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = t2.connect_call(device, &[addr], None).await.unwrap();
    if let Ok((mut w, _r)) = link.open().await {
        let offer = CallMsg::Offer {
            call: CallId([8; 16]),
            video: false,
        };
        let _ = w.send(&offer.encode()).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(10), link.closed()).await;
    assert!(closed.is_ok(), "a revoked device's call was not refused");
    let calls = ok(kith(&bob.home, &["call", "status", "--json"]));
    assert!(
        !calls.contains("08080808"),
        "a revoked device's call rang: {calls}"
    );
    assert!(bob.is_running(), "daemon died:\n{}", bob.log());
    t2.close().await;
    m1.close().await;
    m2.close().await;
}

/// Contact requests that lie: bytes that are no request, one larger than
/// the bound, messages before the answer, a contact's real card sent from
/// another device, a self-made card in a contact's name (which must not
/// learn that it names a contact), a card in the victim's own account's
/// name, a request whose account log does not show its device, and one
/// device asking in the names of 50 accounts it made. Each is refused, or
/// answered like any request and kept at most once; nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_contact_requests_are_refused_or_kept_once() {
    use node_core::identity::Card;
    let bob = Running::start("Bob");
    let (device, addr, account) = target(&bob);
    let dir = tempfile::tempdir().unwrap();
    let carol = contact_of(&bob, &dir, "Carol").await;
    let before = digest(&bob);
    let now = 1_800_000_000_000;
    let key = SigningKey::generate();
    let t = Transport::bind(&key, &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let me: DeviceId = key.verifying_key().into();
    let ask = |bytes: Vec<u8>| {
        let t = &t;
        async move { support::ask_request(t, &bytes, &[], device, addr).await }
    };
    let self_made = |account: AccountId, name: &str| {
        let card = Card {
            account,
            name: name.into(),
            signer: me,
            devices: vec![me],
            hints: vec![],
            issued: now,
        };
        let mut r = support::request_from(&key, name, now);
        r.card = Card::sign(&key, &card);
        r.encode()
    };

    assert_eq!(ask(vec![1, 0xff, 0xff, 3]).await, None, "garbage answered");
    assert_eq!(
        ask(vec![0u8; node_core::requests::MAX_REQUEST + 1]).await,
        None
    );
    let mut early = support::request_from(&key, "mallory", now);
    early.messages = vec!["too soon".into()];
    assert_eq!(
        ask(early.encode()).await,
        None,
        "messages before the answer"
    );

    // Carol's real card, sent by a device it does not list.
    let mut stolen = support::request_from(&key, "mallory", now);
    stolen.card = carol.card(vec![], now).unwrap();
    assert_eq!(ask(stolen.encode()).await, None);
    // A self-made card naming Carol's account: the same answer as anyone's.
    assert_eq!(ask(self_made(carol.account(), "carol")).await, Some(0));
    // A card in Bob's own account's name.
    assert_eq!(ask(self_made(account, "bob")).await, None);

    // An account log that does not show the device: another's genesis.
    let other = SigningKey::generate();
    let mut unproven = support::request_from(&key, "mallory", now);
    unproven.account_log = vec![support::genesis_of(&other, "mallory", now).1];
    assert_eq!(ask(unproven.encode()).await, Some(0));

    // One device, 50 accounts: at most one request is kept for it.
    for n in 0..50 {
        let r = support::request_from(&key, &format!("mallory {n}"), now);
        assert_eq!(ask(r.encode()).await, Some(0), "request {n} not answered");
    }
    let kept: serde_json::Value =
        serde_json::from_str(&ok(kith(&bob.home, &["contact", "requests", "--json"]))).unwrap();
    let kept = kept.as_array().unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["device"], me.to_string());
    assert_eq!(kept[0]["name"], "mallory 49");
    assert_eq!(digest(&bob), before);
    let mut bob = bob;
    assert!(bob.is_running(), "daemon died:\n{}", bob.log());
    t.close().await;
    carol.close().await;
}

/// A contact of the victim's who is not a member of its private room dials
/// the room's call: refused before anything is read (no welcome, not
/// linked), with or without naming the call; so is a dial when the victim
/// is in no call. The daemon stays up and its store is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_cannot_join_a_private_rooms_call() {
    use node_core::call::CallId;
    use node_core::call::conf::{ConfMsg, MAX_CONF_FRAME};
    let bob = Running::start("Bob");
    let (device, addr, _) = target(&bob);
    let dir = tempfile::tempdir().unwrap();
    let mallory = contact_of(&bob, &dir, "Mallory").await;
    let t = mallory
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let room: LogId = ok(kith(&bob.home, &["room", "create", "private"]))
        .trim()
        .parse()
        .unwrap();
    // Bob is in no call yet.
    let refused = |link: Link| async move {
        let Ok((mut w, mut r)) = link.open().await else {
            return true;
        };
        let hello = ConfMsg::Hello {
            room,
            call: CallId([1; 16]),
        };
        let _ = w.send(&hello.encode()).await;
        !matches!(
            tokio::time::timeout(Duration::from_secs(10), r.recv_max(MAX_CONF_FRAME)).await,
            Ok(Ok(Some(_)))
        )
    };
    let link = t.connect_conf(device, &[addr], None).await.unwrap();
    assert!(refused(link).await, "welcomed with no call on");
    let id: CallId = ok(kith(&bob.home, &["call", &room.to_string()]))
        .trim()
        .parse()
        .unwrap();
    let before = digest(&bob);
    // Naming the real call, and naming another.
    for call in [id, CallId([2; 16])] {
        let link = t.connect_conf(device, &[addr], None).await.unwrap();
        let (mut w, mut r) = match link.open().await {
            Ok(s) => s,
            Err(_) => continue,
        };
        let _ = w.send(&ConfMsg::Hello { room, call }.encode()).await;
        let answer =
            tokio::time::timeout(Duration::from_secs(10), r.recv_max(MAX_CONF_FRAME)).await;
        assert!(
            !matches!(answer, Ok(Ok(Some(_)))),
            "a non-member was answered"
        );
    }
    let calls: serde_json::Value =
        serde_json::from_str(&ok(kith(&bob.home, &["call", "status", "--json"]))).unwrap();
    assert_eq!(
        calls[0]["participants"].as_array().unwrap().len(),
        0,
        "{calls}"
    );
    assert_eq!(calls[0]["state"], "active");
    assert_eq!(digest(&bob), before, "the store changed");
    ok(kith(&bob.home, &["call", "hangup"]));
    t.close().await;
    mallory.close().await;
}
