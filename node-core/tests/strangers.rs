//! What accounts outside one's contacts can make a node keep (hardening
//! points 5 and 6): strangers who dial in for a public room are followed
//! only while linked and forgotten after, room events naming unknown
//! accounts follow a bounded number of them, and a room peer can only fill
//! in where another member's device is, never replace it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Dev, genesis};
use node_core::log::{Event, LogKind};
use node_core::node::Node;
use node_core::rooms::{Membership, RoomContent, kind as room_kind};
use node_core::store::Profile;
use node_core::{AccountId, LogId};
use std::net::SocketAddr;

fn profile(dir: &tempfile::TempDir) -> Profile {
    Profile::new(dir.path().join("p"))
}

fn some_account(i: u32) -> AccountId {
    AccountId::from_bytes(node_core::crypto::hash(
        node_core::crypto::HashDomain::EVENT_ID,
        &i.to_be_bytes(),
    ))
}

fn follows(node: &Node, account: AccountId) -> bool {
    node.log(&LogId::account(account)).is_some()
}

/// A node with a public room: the node, the room, its create event.
async fn lobby(dir: &tempfile::TempDir) -> (Node, LogId, Vec<Event>) {
    let (mut node, _) = Node::create(profile(dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let room = node.create_room("lobby", true, 1_000).await.unwrap();
    let create = events_of(&node, room).await;
    (node, room, create)
}

/// The stored events of `log`, decoded (to build on them by hand).
async fn events_of(node: &Node, log: LogId) -> Vec<Event> {
    let ids: Vec<_> = node.log(&log).unwrap().ids().copied().collect();
    node.serve(log, &ids)
        .await
        .unwrap()
        .iter()
        .map(|b| Event::decode(b).unwrap())
        .collect()
}

/// The texts a room shows.
async fn texts(node: &Node, room: LogId) -> Vec<String> {
    node.room_log(room, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

/// Brings accounts into `room`: their joins name them (so the node follows
/// them), their account logs then prove the joins' authors, and the joins
/// are taken. Returns what taking the joins gave.
async fn admit(
    node: &mut Node,
    room: LogId,
    joins: &[&Event],
    account_logs: &[(AccountId, &[&Event])],
) -> Vec<Result<node_core::node::Ingested, node_core::node::NodeError>> {
    let joins: Vec<Vec<u8>> = joins.iter().map(|e| e.encode()).collect();
    node.ingest_batch(room, &joins, 2_000, 1, None)
        .await
        .unwrap();
    for (account, events) in account_logs {
        let events: Vec<Vec<u8>> = events.iter().map(|e| e.encode()).collect();
        node.ingest_batch(LogId::account(*account), &events, 2_000, 1, None)
            .await
            .unwrap();
    }
    node.ingest_batch(room, &joins, 2_000, 1, None)
        .await
        .unwrap()
}

/// A room message by `dev` in `room`, on `parents`.
fn say(dev: &mut Dev, room: LogId, parents: &[&Event], text: &str, time: i64) -> Event {
    dev.event(
        Some(room),
        LogKind::Room,
        parents,
        room_kind::MESSAGE,
        RoomContent::Message(text.into()).encode(),
        time,
    )
}

/// A member event by `dev` in `room`, on `parents`.
fn member(dev: &mut Dev, room: LogId, parents: &[&Event], target: AccountId) -> Event {
    dev.event(
        Some(room),
        LogKind::Room,
        parents,
        room_kind::MEMBER,
        RoomContent::Member {
            target,
            membership: Membership::Join,
        }
        .encode(),
        2_000,
    )
}

/// 1,100 strangers dial in one after another (more than the 1,024 that
/// may be followed at once): each is followed while linked and forgotten,
/// in memory and at rest, when its link ends, so the last is let in like
/// the first. At most 1,024 are followed at the same time; when one
/// leaves, a newcomer is let in.
#[tokio::test]
async fn strangers_are_forgotten_when_their_links_end_and_never_lock_newcomers_out() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _, _) = lobby(&dir).await;
    for i in 0..1_100 {
        let a = some_account(i);
        assert!(node.follow_stranger(a), "stranger {i} locked out");
        assert!(follows(&node, a));
        node.leave_stranger(a).await.unwrap();
        assert!(!follows(&node, a), "stranger {i} kept after its link ended");
    }
    let linked: Vec<AccountId> = (10_000..11_024).map(some_account).collect();
    for a in &linked {
        assert!(node.follow_stranger(*a));
    }
    let newcomer = some_account(20_000);
    assert!(!node.follow_stranger(newcomer), "no bound on strangers");
    // A second link of a stranger already followed still counts as one.
    assert!(node.follow_stranger(linked[0]));
    node.leave_stranger(linked[0]).await.unwrap();
    assert!(follows(&node, linked[0]), "its other link is still up");
    node.leave_stranger(linked[0]).await.unwrap();
    assert!(node.follow_stranger(newcomer), "a newcomer after one left");
    node.close().await;
    let node = Node::open(profile(&dir), None).await.unwrap();
    assert!(!follows(&node, some_account(0)), "forgotten at rest too");
    node.close().await;
}

/// Room events naming accounts nobody has proven yet (a member event is
/// only signature-checked before its account log is followed) make the
/// node follow at most 256 such accounts.
#[tokio::test]
async fn room_events_naming_unknown_accounts_follow_a_bounded_number() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, room, create) = lobby(&dir).await;
    let parents: Vec<&Event> = create.iter().collect();
    let mut junk = Dev::new();
    let named: Vec<AccountId> = (0..400).map(some_account).collect();
    let batch: Vec<Vec<u8>> = named
        .iter()
        .map(|a| member(&mut junk, room, &parents, *a).encode())
        .collect();
    node.ingest_batch(room, &batch, 2_000, 1, None)
        .await
        .unwrap();
    let followed = named.iter().filter(|a| follows(&node, **a)).count();
    assert!(
        followed <= node_core::node::rooms::MAX_UNPROVEN_FOLLOWS,
        "{followed} followed"
    );
    node.close().await;
}

/// Two accounts joined to a public room with this node. A member may fill
/// in the address and relay of the other member's device while nothing is
/// known of it, but not replace them; the device's own account may.
#[tokio::test]
async fn a_room_peer_fills_in_hints_but_never_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, room, create) = lobby(&dir).await;
    let (mut x, mut y) = (Dev::new(), Dev::new());
    let (ax, gx) = genesis(&mut x, None);
    let (ay, gy) = genesis(&mut y, None);
    let join_x = member(&mut x, room, &[&create[0]], ax);
    let join_y = member(&mut y, room, &[&join_x], ay);
    admit(
        &mut node,
        room,
        &[&join_x, &join_y],
        &[(ax, &[&gx]), (ay, &[&gy])],
    )
    .await;
    let state = node.room_state(&room).unwrap();
    assert!(state.is_joined(&ax) && state.is_joined(&ay), "both joined");

    let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
    let yd = y.id();
    node.take_hints(
        ax,
        yd,
        vec![addr("127.0.0.1:4001")],
        Some("https://relay.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(
        node.hints_of(&yd),
        vec![addr("127.0.0.1:4001")],
        "filled in"
    );
    node.take_hints(
        ax,
        yd,
        vec![addr("127.0.0.1:6666")],
        Some("https://evil.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(
        node.hints_of(&yd),
        vec![addr("127.0.0.1:4001")],
        "replaced by a peer"
    );
    assert_eq!(node.relay_of(&yd).as_deref(), Some("https://relay.example"));
    node.take_hints(
        ay,
        yd,
        vec![addr("127.0.0.1:5002")],
        Some("https://own.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(
        node.hints_of(&yd),
        vec![addr("127.0.0.1:5002")],
        "the owner replaces"
    );
    assert_eq!(node.relay_of(&yd).as_deref(), Some("https://own.example"));
    node.close().await;
}

/// A device key that a second account also adds (a thief joining a stolen
/// key to its own account) speaks for neither: its new room events are
/// refused, so they are never shown, or given power, under either
/// account's name. (Found by an attacker's reading: the first account in
/// id order was believed for authorship, the last for the room.)
#[tokio::test]
async fn a_device_two_accounts_claim_speaks_for_neither() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, room, create) = lobby(&dir).await;
    let (mut x1, mut x2, mut m1) = (Dev::new(), Dev::new(), Dev::new());
    let (ax, gx) = genesis(&mut x1, None);
    let x_adds = common::add_device(&mut x1, ax, &[&gx], &x2);
    let (am, gm) = genesis(&mut m1, None);
    let m_adds = common::add_device(&mut m1, am, &[&gm], &x2);
    let join_x = member(&mut x1, room, &[&create[0]], ax);
    let join_m = member(&mut m1, room, &[&join_x], am);
    admit(
        &mut node,
        room,
        &[&join_x, &join_m],
        &[(ax, &[&gx, &x_adds]), (am, &[&gm, &m_adds])],
    )
    .await;
    let said = say(&mut x2, room, &[&join_m], "whose is this?", 3_000);
    let out = node
        .ingest_batch(room, &[said.encode()], 3_000, 1, None)
        .await
        .unwrap();
    assert!(
        format!("{out:?}").contains("more than one member account"),
        "{out:?}"
    );
    assert!(!texts(&node, room).await.iter().any(|t| t.contains("whose")));
    node.close().await;
}

/// A member writes into a room's past: a message whose parents lie far
/// below the heads (history rewritten after the fact). It is held as
/// arrived late — not shown, listed by `room held` — and the room and this
/// device's messages go on; a restart keeps it held. (Before, a restart
/// read the room in depth order, where nothing looked late, and showed it.)
#[tokio::test]
async fn a_backdated_room_message_is_held_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, room, create) = lobby(&dir).await;
    let mut x = Dev::new();
    let (ax, gx) = genesis(&mut x, None);
    let join_x = member(&mut x, room, &[&create[0]], ax);
    let out = admit(&mut node, room, &[&join_x], &[(ax, &[&gx])]).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    for i in 0..30 {
        node.room_send(room, &format!("message {i}"), 2_100 + i)
            .await
            .unwrap();
    }
    let backdated = say(&mut x, room, &[&join_x], "I said this long ago", 2_050);
    let out = node
        .ingest_batch(room, &[backdated.encode()], 3_000, 1, None)
        .await
        .unwrap();
    assert!(
        matches!(out.as_slice(), [Ok(node_core::node::Ingested::Stored(_))]),
        "{out:?}"
    );
    assert!(
        !texts(&node, room)
            .await
            .iter()
            .any(|t| t.contains("long ago")),
        "a backdated message is shown"
    );
    let held = node.room_held(room).await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].id, backdated.id());
    node.room_send(room, "still talking", 4_000).await.unwrap();
    assert!(
        texts(&node, room)
            .await
            .contains(&"still talking".to_string())
    );
    node.close().await;
    let node = Node::open(profile(&dir), None).await.unwrap();
    assert_eq!(node.room_held(room).await.unwrap().len(), 1);
    assert!(
        !texts(&node, room)
            .await
            .iter()
            .any(|t| t.contains("long ago"))
    );
    node.close().await;
}

/// Contact requests are kept one per account, one per device and at most
/// N in all: ten thousand strangers asking leave the newest N, each asking
/// again replaces its own, a device asking for another account replaces
/// its first, and nothing else grows.
#[tokio::test]
async fn a_flood_of_requests_keeps_the_newest_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = node_core::store::Store::create(&profile(&dir), None)
        .await
        .unwrap();
    const MAX: usize = 1000;
    let device_of =
        |i: u32| node_core::DeviceId::from_bytes(*some_account(i + 1_000_000).as_bytes());
    let mut evicted = 0;
    for i in 0..10_000u32 {
        evicted += store
            .put_request((some_account(i), device_of(i)), &[1; 64], i64::from(i), MAX)
            .await
            .unwrap();
    }
    assert_eq!(evicted, 9_000);
    let kept = store.requests().await.unwrap();
    assert_eq!(kept.len(), MAX);
    assert_eq!(kept[0].account, some_account(9_999), "newest first");
    assert!(kept.iter().all(|r| r.received >= 9_000), "the oldest went");
    // Asking again replaces one's own request: still MAX, the newest —
    // even with this device's clock set back (arrival order counts).
    let device = device_of(9_500);
    store
        .put_request((some_account(9_500), device), &[2; 64], 5, MAX)
        .await
        .unwrap();
    let kept = store.requests().await.unwrap();
    assert_eq!(kept.len(), MAX);
    assert_eq!(
        (kept[0].account, kept[0].device, kept[0].request.as_slice()),
        (some_account(9_500), device, [2u8; 64].as_slice())
    );
    // The same device for another account it made: it replaces the first.
    store
        .put_request((some_account(20_000), device), &[3; 64], 1, MAX)
        .await
        .unwrap();
    let kept = store.requests().await.unwrap();
    assert_eq!(kept.len(), MAX);
    assert_eq!(kept[0].account, some_account(20_000), "kept, as the newest");
    assert!(!kept.iter().any(|r| r.account == some_account(9_500)));
    // An answered one goes.
    assert!(store.remove_request(some_account(20_000)).await.unwrap());
    assert!(!store.remove_request(some_account(20_000)).await.unwrap());
    assert_eq!(store.requests().await.unwrap().len(), MAX - 1);
}

/// A member cannot put another device in a room's call (or take one out,
/// or speak for its links): a join, leave or standing must name its
/// author's own device, or the room refuses
/// the event — the victim's own join then goes through. (Before, a member
/// could claim a victim's device id first, and the victim's join was
/// refused as "another account's".)
#[tokio::test]
async fn a_call_join_names_its_authors_own_device() {
    use node_core::call::CallId;
    use node_core::call::conf::RoomCall;
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let room = node.create_room("band", false, 1_000).await.unwrap();
    let call = CallId([5; 16]);
    node.room_call(room, RoomCall::Start(call), 1_001)
        .await
        .unwrap();
    let other = node_core::DeviceId::from_bytes([9; 32]);
    assert!(
        node.room_call(
            room,
            RoomCall::Join {
                call,
                device: other
            },
            1_002
        )
        .await
        .is_err(),
        "joined another device"
    );
    let me = node.device();
    node.room_call(room, RoomCall::Join { call, device: me }, 1_003)
        .await
        .unwrap();
    let conf = node.room_conference(&room).unwrap();
    assert_eq!(
        conf.participants.keys().copied().collect::<Vec<_>>(),
        vec![me]
    );
    assert!(
        node.room_call(
            room,
            RoomCall::Leave {
                call,
                device: other
            },
            1_004
        )
        .await
        .is_err()
    );
    // Nor can it say what another device's links are (to make it a
    // forwarder, or to keep it from being one); of its own, it can.
    let standing = node_core::call::conf::Standing {
        uplink_kbps: 5,
        always_on: true,
        direct: false,
    };
    assert!(
        node.room_call(
            room,
            RoomCall::Standing {
                call,
                device: other,
                standing
            },
            1_005
        )
        .await
        .is_err(),
        "said another device's standing"
    );
    node.room_call(
        room,
        RoomCall::Standing {
            call,
            device: me,
            standing,
        },
        1_006,
    )
    .await
    .unwrap();
    let conf = node.room_conference(&room).unwrap();
    assert_eq!(
        conf.standing.into_iter().collect::<Vec<_>>(),
        vec![(me, standing)]
    );
    node.close().await;
}
