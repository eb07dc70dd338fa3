//! What a thief holding a revoked device's key can still make others take
//! (hardening point 2). The revoking device writes a cut in each log where
//! it holds the device's events; anything else the device signed at or
//! below its cut-off is kept only as structure: stored (what others built
//! on it stays whole), never shown, never applied. Every device that holds
//! the same events shows the same, in whatever order they came.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Dev, NOW, events_of, join, new_node, rt};
use node_core::identity::AccountEntry;
use node_core::identity::entry::{kind, sign_join};
use node_core::log::{Event, LogKind, Status};
use node_core::node::Node;
use node_core::rooms::{RoomContent, kind as room_kind};
use node_core::{AccountId, EventId, LogId};

/// Adds each node as the other's contact.
async fn befriend(a: &mut Node, b: &mut Node) {
    let (ca, cb) = (a.card(vec![], NOW).unwrap(), b.card(vec![], NOW).unwrap());
    a.add_contact(&cb, None, NOW).await.unwrap();
    b.add_contact(&ca, None, NOW).await.unwrap();
}

/// A device joined to `node`'s account by hand (its key stays here: the
/// thief's copy).
async fn add_phone(node: &mut Node) -> Dev {
    common::hand_joined_device(node, NOW).await
}

/// An event by `dev` in `log` on `parents`, with sequence number `seq` and
/// previous event `prev` (a thief picks both).
#[allow(clippy::too_many_arguments)]
fn signed(
    dev: &Dev,
    log: LogId,
    log_kind: LogKind,
    seq: u64,
    prev: Option<EventId>,
    parents: &[&Event],
    body_kind: u16,
    body: Vec<u8>,
) -> Event {
    Event::sign(
        &dev.key,
        node_core::log::Draft {
            log: Some(log),
            log_kind,
            seq,
            prev,
            parents: parents.iter().map(|p| (p.id(), p.header().depth)).collect(),
            time: NOW,
            kind: body_kind,
            body,
        },
    )
}

/// A conversation message by `dev` (see [`signed`]).
fn message(
    dev: &Dev,
    log: LogId,
    seq: u64,
    prev: Option<EventId>,
    parents: &[&Event],
    text: &str,
) -> Event {
    signed(
        dev,
        log,
        LogKind::Conversation,
        seq,
        prev,
        parents,
        1,
        text.as_bytes().to_vec(),
    )
}

/// The heads of `log` at `node`, as events.
async fn heads(node: &Node, log: LogId) -> Vec<Event> {
    let ids: Vec<EventId> = node.log(&log).unwrap().heads().map(|(id, _)| id).collect();
    node.serve(log, &ids)
        .await
        .unwrap()
        .iter()
        .map(|b| Event::decode(b).unwrap())
        .collect()
}

async fn shown(node: &Node, with: AccountId) -> Vec<String> {
    node.conversation(with, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

async fn room_texts(node: &Node, room: LogId) -> Vec<String> {
    node.room_log(room, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

fn status(node: &Node, log: LogId, id: &EventId) -> Option<Status> {
    node.log(&log).unwrap().node(id).map(|n| n.status)
}

async fn ingest(node: &mut Node, log: LogId, events: &[&Event]) {
    let bytes: Vec<Vec<u8>> = events.iter().map(|e| e.encode()).collect();
    for out in node.ingest_batch(log, &bytes, NOW, 1, None).await.unwrap() {
        out.unwrap();
    }
}

fn setting_body(name: &str, value: &[u8]) -> Vec<u8> {
    let mut w = node_core::wire::Writer::new();
    w.str(name).bytes(value);
    w.finish()
}

/// A self-log setting by `dev` with sequence number `seq` on the heads of
/// `node`'s self log, ingested there (the device's cut-off is then at
/// least `seq`).
async fn wrote_setting(node: &mut Node, dev: &Dev, seq: u64) -> Event {
    let self_log = LogId::self_log(node.account());
    let sh = heads(node, self_log).await;
    let sh: Vec<&Event> = sh.iter().collect();
    let e = signed(
        dev,
        self_log,
        LogKind::SelfLog,
        seq,
        None,
        &sh,
        5,
        setting_body("a", b"b"),
    );
    ingest(node, self_log, &[&e]).await;
    e
}

/// Alice's phone is stolen. Before, it wrote two messages to Bob and a
/// self-log entry with sequence number 10, so numbers 3 to 9 were never
/// used in the conversation. Alice revokes it from her laptop. The thief
/// then signs a message with number 5 and a self-log entry pointing the
/// account at its own relay, and gets them to devices through an
/// uninformed one. Devices that hold the revocation keep both as
/// structure only: the message is never shown, the setting never applied,
/// and a reply an uninformed device built on the thief's message still
/// arrives and is shown. The phone's genuine messages stay, on a device
/// that heard of the revocation before the cut and on one that heard of
/// the cut first, and after a restart.
#[test]
fn a_thief_below_the_cut_off_is_kept_as_structure_only() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut bob = new_node(&dir, "bob").await;
        befriend(&mut laptop, &mut bob).await;
        let alice = laptop.account();
        let mut phone = add_phone(&mut laptop).await;
        // A second Alice device that hears of the cuts before the
        // revocation.
        let mut tablet = join(&mut laptop, &dir, "tablet").await;
        let account_log = LogId::account(alice);
        in_order(&mut bob, account_log, &laptop).await;
        let conv = LogId::conversation(alice, bob.account());
        let self_log = LogId::self_log(alice);

        // Before the theft.
        let base = heads(&laptop, conv).await;
        let base: Vec<&Event> = base.iter().collect();
        let m1 = message(&phone, conv, 1, None, &base, "one");
        let m2 = message(&phone, conv, 2, Some(m1.id()), &[&m1], "two");
        let sh = heads(&laptop, self_log).await;
        let sh: Vec<&Event> = sh.iter().collect();
        let s10 = signed(
            &phone,
            self_log,
            LogKind::SelfLog,
            10,
            None,
            &sh,
            5,
            setting_body("name-shown", b"phone"),
        );
        phone.seq = 10;
        ingest(&mut laptop, conv, &[&m1, &m2]).await;
        ingest(&mut laptop, self_log, &[&s10]).await;
        in_order(&mut tablet, self_log, &laptop).await;

        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();

        // The thief, with unused numbers below the cut-off.
        let minted = message(&phone, conv, 5, Some(m2.id()), &[&m2], "send me money");
        let relay = signed(
            &phone,
            self_log,
            LogKind::SelfLog,
            6,
            None,
            &[&s10],
            5,
            setting_body("relay", b"https://thief.example"),
        );

        // An uninformed device of Bob's replies to the thief's message.
        let mut bob_phone = Dev::new();
        let entry = AccountEntry::AddDevice {
            device: bob_phone.id(),
            name: "bob-phone".into(),
            join: sign_join(&bob_phone.key, bob.account(), "bob-phone"),
        };
        bob.append(
            LogId::account(bob.account()),
            kind::ADD_DEVICE,
            entry.encode(),
            NOW,
        )
        .await
        .unwrap();
        bob_phone.seq = 1;
        let reply = message(&bob_phone, conv, 1, None, &[&minted], "who is this?");
        in_order(&mut laptop, LogId::account(bob.account()), &bob).await;

        // Bob hears of the revocation first, then the conversation (the
        // phone's own messages arrive after the revocation, before the cut).
        in_order(&mut bob, account_log, &laptop).await;
        in_order(&mut bob, conv, &laptop).await;
        // The tablet hears of the cut first, then the revocation.
        in_order(&mut tablet, conv, &laptop).await;
        in_order(&mut tablet, self_log, &laptop).await;
        in_order(&mut tablet, LogId::account(bob.account()), &bob).await;
        // (The thief's message reached the tablet while it did not know.)
        ingest(&mut tablet, conv, &[&minted]).await;
        assert_eq!(status(&tablet, conv, &minted.id()), Some(Status::Accepted));
        in_order(&mut tablet, account_log, &laptop).await;

        for node in [&mut laptop, &mut bob, &mut tablet] {
            ingest_new(node, conv, &[&minted, &reply]).await;
        }
        for node in [&mut laptop, &mut tablet] {
            ingest_new(node, self_log, &[&relay]).await;
        }
        for (name, node, with) in [
            ("laptop", &laptop, bob.account()),
            ("bob", &bob, alice),
            ("tablet", &tablet, bob.account()),
        ] {
            assert_eq!(
                shown(node, with).await,
                vec!["one", "two", "who is this?"],
                "{name}"
            );
            assert_eq!(
                status(node, conv, &minted.id()),
                Some(Status::SoftFailed),
                "{name}"
            );
            assert_eq!(
                status(node, conv, &m2.id()),
                Some(Status::Accepted),
                "{name}"
            );
        }
        for (name, node) in [("laptop", &laptop), ("tablet", &tablet)] {
            assert_eq!(node.setting("relay"), None, "{name} took the thief's relay");
            assert_eq!(
                status(node, self_log, &relay.id()),
                Some(Status::SoftFailed),
                "{name}"
            );
        }
        // New messages do not build on the thief's.
        laptop
            .send_messages(bob.account(), &["hi bob".into()], NOW)
            .await
            .unwrap();
        let h = heads(&laptop, conv).await;
        assert!(h.iter().all(|e| !e.header().parents.contains(&minted.id())));

        let bob_account = bob.account();
        let bob = reopen(bob, &dir, "bob").await;
        assert_eq!(shown(&bob, alice).await, vec!["one", "two", "who is this?"]);
        assert_eq!(status(&bob, conv, &minted.id()), Some(Status::SoftFailed));
        let _ = bob_account;
        for n in [laptop, bob, tablet] {
            n.close().await;
        }
    });
}

/// Alice's laptop, made with a recovery key: the node and the code.
async fn laptop_with_recovery(dir: &tempfile::TempDir) -> (Node, node_core::node::RecoveryCode) {
    let (laptop, code) = Node::create(
        node_core::store::Profile::new(dir.path().join("laptop")),
        "laptop",
        None,
        true,
        NOW,
    )
    .await
    .unwrap();
    (laptop, code.unwrap())
}

/// Closes `node` and opens its profile `name` in `dir` again (a restart).
async fn reopen(node: Node, dir: &tempfile::TempDir, name: &str) -> Node {
    node.close().await;
    Node::open(node_core::store::Profile::new(dir.path().join(name)), None)
        .await
        .unwrap()
}

/// Delivers `from`'s events of `log` that `node` lacks, parents first (as
/// a sync does: a revoked device's events are never held for parents).
async fn in_order(node: &mut Node, log: LogId, from: &Node) {
    let mut events: Vec<Event> = events_of(from, log)
        .await
        .iter()
        .map(|b| Event::decode(b).unwrap())
        .collect();
    events.sort_by_key(|e| (e.header().depth, e.id()));
    let events: Vec<&Event> = events.iter().collect();
    ingest_new(node, log, &events).await;
}

/// Ingests what `node` does not hold yet.
async fn ingest_new(node: &mut Node, log: LogId, events: &[&Event]) {
    let new: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| !node.log(&log).unwrap().knows(&e.id()))
        .collect();
    ingest(node, log, &new).await;
}

/// A laptop's room where its phone said something before it was stolen
/// and revoked, and the thief then renamed the room (sequence number 2,
/// below the cut-off of 3), offered to the laptop.
struct Stolen {
    laptop: Node,
    phone: Dev,
    room: LogId,
    said: Event,
    rename: Event,
}

async fn stolen_in_a_room(dir: &tempfile::TempDir, name: &str, public: bool) -> Stolen {
    let mut laptop = new_node(dir, "laptop").await;
    let phone = add_phone(&mut laptop).await;
    let room = laptop.create_room(name, public, NOW).await.unwrap();
    let h = heads(&laptop, room).await;
    let h: Vec<&Event> = h.iter().collect();
    let said = signed(
        &phone,
        room,
        LogKind::Room,
        3,
        None,
        &h,
        room_kind::MESSAGE,
        RoomContent::Message("from the phone".into()).encode(),
    );
    ingest(&mut laptop, room, &[&said]).await;
    laptop
        .revoke_device(&phone.id().to_string(), NOW)
        .await
        .unwrap();
    let rename = signed(
        &phone,
        room,
        LogKind::Room,
        2,
        None,
        &[&said],
        room_kind::NAME,
        RoomContent::Name("pwned".into()).encode(),
    );
    ingest(&mut laptop, room, &[&rename]).await;
    Stolen {
        laptop,
        phone,
        room,
        said,
        rename,
    }
}

/// In a room: the stolen phone's genuine message stays shown (on a device
/// that hears of the revocation before the room's cut too), and the
/// thief's renaming of the room below the cut-off changes nothing.
#[test]
fn a_thief_cannot_change_a_room_below_the_cut_off() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let Stolen {
            mut laptop,
            room,
            said,
            rename,
            ..
        } = stolen_in_a_room(&dir, "plans", false).await;
        let alice = laptop.account();
        laptop.room_send(room, "hello", NOW).await.unwrap();
        assert_eq!(laptop.room_state(&room).unwrap().name, "plans");
        assert_eq!(
            room_texts(&laptop, room).await,
            vec!["from the phone", "hello"]
        );

        // A device that joins now holds the revocation before the room.
        let mut tablet = join(&mut laptop, &dir, "tablet").await;
        let self_log = LogId::self_log(alice);
        in_order(&mut tablet, self_log, &laptop).await;
        in_order(&mut tablet, room, &laptop).await;
        assert_eq!(tablet.room_state(&room).unwrap().name, "plans");
        assert_eq!(
            room_texts(&tablet, room).await,
            vec!["from the phone", "hello"]
        );
        assert_eq!(
            status(&tablet, room, &rename.id()),
            Some(Status::SoftFailed)
        );
        assert_eq!(status(&tablet, room, &said.id()), Some(Status::Accepted));
        for n in [laptop, tablet] {
            n.close().await;
        }
    });
}

/// A revocation written before cuts existed keeps the old meaning (the
/// sequence number only): the revoked device's history is not hidden.
#[test]
fn a_revocation_without_cuts_hides_no_history() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut bob = new_node(&dir, "bob").await;
        befriend(&mut laptop, &mut bob).await;
        let alice = laptop.account();
        let phone = add_phone(&mut laptop).await;
        let conv = LogId::conversation(alice, bob.account());
        let base = heads(&laptop, conv).await;
        let base: Vec<&Event> = base.iter().collect();
        let m1 = message(&phone, conv, 1, None, &base, "old");
        ingest(&mut laptop, conv, &[&m1]).await;
        let entry = AccountEntry::RevokeDevice {
            device: phone.id(),
            cutoff_seq: 1,
            cuts: false,
        };
        laptop
            .append(LogId::account(alice), entry.kind(), entry.encode(), NOW)
            .await
            .unwrap();
        assert_eq!(shown(&laptop, bob.account()).await, vec!["old"]);
        let laptop = reopen(laptop, &dir, "laptop").await;
        assert_eq!(shown(&laptop, bob.account()).await, vec!["old"]);
        for n in [laptop, bob] {
            n.close().await;
        }
    });
}

/// A revocation of `device` by `by` with sequence number `seq` on
/// `parents` (an account-log entry; see [`entry`]).
fn revocation(
    by: &Dev,
    account: AccountId,
    seq: u64,
    parents: &[&Event],
    device: node_core::DeviceId,
    cutoff_seq: u64,
    cuts: bool,
) -> Event {
    entry(
        by,
        account,
        seq,
        parents,
        &AccountEntry::RevokeDevice {
            device,
            cutoff_seq,
            cuts,
        },
    )
}

/// An account log entry by `by` (a device of `account`) on `parents`.
fn entry(by: &Dev, account: AccountId, seq: u64, parents: &[&Event], e: &AccountEntry) -> Event {
    signed(
        by,
        LogId::account(account),
        LogKind::Account,
        seq,
        None,
        parents,
        e.kind(),
        e.encode(),
    )
}

/// The thief joins the stolen key to an account of its own, in a public
/// room, and writes a cut from that account naming the key and the event
/// it minted: the cut counts for nothing, and the minted event stays
/// structure (before and after a restart).
#[test]
fn a_second_account_cannot_vouch_for_the_stolen_key() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let Stolen {
            mut laptop,
            phone,
            room,
            said,
            rename,
        } = stolen_in_a_room(&dir, "lobby", true).await;

        // The thief's own account lists the stolen key too.
        let mut t = Dev::new();
        let (a2, g2) = common::genesis(&mut t, None);
        let add = common::add_device(&mut t, a2, &[&g2], &phone);
        let h = heads(&laptop, room).await;
        let h: Vec<&Event> = h.iter().collect();
        let join = t.event(
            Some(room),
            LogKind::Room,
            &h,
            room_kind::MEMBER,
            RoomContent::Member {
                target: a2,
                membership: node_core::rooms::Membership::Join,
            }
            .encode(),
            NOW,
        );
        let joins = vec![join.encode()];
        laptop
            .ingest_batch(room, &joins, NOW, 1, None)
            .await
            .unwrap();
        let account2: Vec<Vec<u8>> = [&g2, &add].iter().map(|e| e.encode()).collect();
        laptop
            .ingest_batch(LogId::account(a2), &account2, NOW, 1, None)
            .await
            .unwrap();
        laptop
            .ingest_batch(room, &joins, NOW, 1, None)
            .await
            .unwrap();
        assert!(laptop.log(&room).unwrap().knows(&join.id()));
        let cut = t.event(
            Some(room),
            LogKind::Room,
            &[&rename, &join],
            node_core::log::CUT_KIND,
            node_core::log::Cut {
                device: phone.id(),
                head: rename.id(),
            }
            .encode(),
            NOW,
        );
        let _ = laptop
            .ingest_batch(room, &[cut.encode()], NOW, 1, None)
            .await
            .unwrap();
        assert_eq!(
            status(&laptop, room, &rename.id()),
            Some(Status::SoftFailed)
        );
        assert_eq!(laptop.room_state(&room).unwrap().name, "lobby");
        // A key two accounts claim speaks for neither: the owner's cut no
        // longer counts either.
        assert_eq!(status(&laptop, room, &said.id()), Some(Status::SoftFailed));
        let laptop = reopen(laptop, &dir, "laptop").await;
        assert_eq!(
            status(&laptop, room, &rename.id()),
            Some(Status::SoftFailed)
        );
        assert_eq!(status(&laptop, room, &said.id()), Some(Status::SoftFailed));
        assert_eq!(laptop.room_state(&room).unwrap().name, "lobby");
        laptop.close().await;
    });
}

/// The thief revoked the laptop first; the owner revokes the phone with
/// the recovery key from the laptop. The laptop can no longer write cuts
/// (the thief's revocation counts: it came first), but the recovery
/// revocation is written all the same.
#[test]
fn the_recovery_key_revokes_even_where_no_cut_can_be_written() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (mut laptop, code) = laptop_with_recovery(&dir).await;
        let alice = laptop.account();
        let phone = add_phone(&mut laptop).await;
        wrote_setting(&mut laptop, &phone, 1).await;
        let ah = heads(&laptop, LogId::account(alice)).await;
        let ah: Vec<&Event> = ah.iter().collect();
        let by_thief = revocation(&phone, alice, 2, &ah, laptop.device(), 0, true);
        ingest(&mut laptop, LogId::account(alice), &[&by_thief]).await;
        assert!(laptop.is_revoked());
        laptop
            .revoke_device_with_recovery(&phone.id().to_string(), &code, NOW)
            .await
            .unwrap();
        let state = laptop.account_state().unwrap();
        assert!(!state.is_active(&phone.id()), "the phone is still active");
        // The thief's revocation still cuts the laptop off (it was made
        // before the phone was revoked), but hides none of its history:
        // the recovery key revoked its author.
        let rec = state.devices[&laptop.device()].revoked.unwrap();
        assert!(!rec.cuts, "a thief's revocation hides the laptop's history");
        assert!(state.devices[&phone.id()].revoked.unwrap().cuts);
        laptop.close().await;
    });
}

/// The thief's revocation of an honest device hides that device's events
/// where it is heard first; once the owner's concurrent, senior
/// revocation of the thief's device arrives, the thief's is discarded and
/// the honest device's messages are shown again (and after a restart).
#[test]
fn a_discarded_revocation_hides_nothing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut carol = new_node(&dir, "carol").await;
        befriend(&mut laptop, &mut carol).await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let phone = add_phone(&mut laptop).await;
        let honest = add_phone(&mut laptop).await;
        let conv = LogId::conversation(alice, carol.account());
        let base = heads(&laptop, conv).await;
        let base: Vec<&Event> = base.iter().collect();
        let m = message(&honest, conv, 1, None, &base, "hello carol");
        ingest(&mut laptop, conv, &[&m]).await;
        in_order(&mut carol, account_log, &laptop).await;
        in_order(&mut carol, conv, &laptop).await;
        assert_eq!(shown(&carol, alice).await, vec!["hello carol"]);
        // Concurrently: the thief revokes the honest device, the laptop
        // (the most senior device) revokes the phone.
        let ah = heads(&laptop, account_log).await;
        let ah: Vec<&Event> = ah.iter().collect();
        let by_thief = revocation(&phone, alice, 1, &ah, honest.id(), 0, true);
        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();
        // Carol hears the thief's revocation first ...
        ingest(&mut carol, account_log, &[&by_thief]).await;
        assert!(
            shown(&carol, alice).await.is_empty(),
            "shown while the thief's revocation counts"
        );
        // ... then the laptop's, which wins.
        in_order(&mut carol, account_log, &laptop).await;
        assert_eq!(shown(&carol, alice).await, vec!["hello carol"]);
        let carol = reopen(carol, &dir, "carol").await;
        assert_eq!(shown(&carol, alice).await, vec!["hello carol"]);
        for n in [laptop, carol] {
            n.close().await;
        }
    });
}

/// The phone promoted a member before it was stolen, and the laptop never
/// received that promotion before revoking it (so no cut covers it): the
/// member's moderator action built on it is kept as structure where the
/// revocation is known (it changes nothing), and the room goes on: the
/// member's next message is shown. (It used to be refused, and everything
/// built on it waited for it forever.)
#[test]
fn a_room_goes_on_past_what_no_cut_covers() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let alice = laptop.account();
        let phone = add_phone(&mut laptop).await;
        let self_log = LogId::self_log(alice);
        wrote_setting(&mut laptop, &phone, 5).await;
        let room = laptop.create_room("lobby", true, NOW).await.unwrap();
        // Mia joins the public room.
        let mut mia = Dev::new();
        let (m_account, mg) = common::genesis(&mut mia, None);
        let h = heads(&laptop, room).await;
        let h: Vec<&Event> = h.iter().collect();
        let joined = mia.event(
            Some(room),
            LogKind::Room,
            &h,
            room_kind::MEMBER,
            RoomContent::Member {
                target: m_account,
                membership: node_core::rooms::Membership::Join,
            }
            .encode(),
            NOW,
        );
        laptop
            .ingest_batch(room, &[joined.encode()], NOW, 1, None)
            .await
            .unwrap();
        laptop
            .ingest_batch(LogId::account(m_account), &[mg.encode()], NOW, 1, None)
            .await
            .unwrap();
        laptop
            .ingest_batch(room, &[joined.encode()], NOW, 1, None)
            .await
            .unwrap();
        assert!(laptop.log(&room).unwrap().knows(&joined.id()));
        // The phone makes Mia a moderator; the laptop does not hear of it.
        let promote = signed(
            &phone,
            room,
            LogKind::Room,
            2,
            None,
            &[&joined],
            room_kind::POWER,
            RoomContent::Power {
                users: [(alice, 100), (m_account, 50)].into_iter().collect(),
            }
            .encode(),
        );
        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();
        let topic = mia.event(
            Some(room),
            LogKind::Room,
            &[&promote],
            room_kind::TOPIC,
            RoomContent::Topic("moderated".into()).encode(),
            NOW,
        );
        let later = mia.event(
            Some(room),
            LogKind::Room,
            &[&topic],
            room_kind::MESSAGE,
            RoomContent::Message("still here".into()).encode(),
            NOW,
        );
        let mut tablet = join(&mut laptop, &dir, "tablet").await;
        in_order(&mut tablet, self_log, &laptop).await;
        // The room names Mia (followed then), her account log proves her.
        let named = events_of(&laptop, room).await;
        let _ = tablet
            .ingest_batch(room, &named, NOW, 1, None)
            .await
            .unwrap();
        in_order(&mut tablet, LogId::account(m_account), &laptop).await;
        in_order(&mut tablet, room, &laptop).await;
        for node in [&mut laptop, &mut tablet] {
            ingest(node, room, &[&promote, &topic, &later]).await;
            assert_eq!(status(node, room, &promote.id()), Some(Status::SoftFailed));
            assert_eq!(node.room_state(&room).unwrap().topic, "");
            assert_eq!(room_texts(node, room).await, vec!["still here"]);
        }
        for n in [laptop, tablet] {
            n.close().await;
        }
    });
}

/// Before the revocation, the thief posts an event of the phone with a
/// high sequence number and no previous event, and the laptop takes it
/// (it cannot tell yet). The laptop's cut cites every event of the phone
/// that nothing cites, so the phone's genuine messages stay vouched for
/// on a device that hears of the revocation first. (A cut that vouched
/// only for the author chain down from the newest event left them hidden.)
#[test]
fn a_branch_the_thief_made_does_not_hide_the_genuine_ones() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut bob = new_node(&dir, "bob").await;
        befriend(&mut laptop, &mut bob).await;
        let alice = laptop.account();
        let phone = add_phone(&mut laptop).await;
        let conv = LogId::conversation(alice, bob.account());
        let base = heads(&laptop, conv).await;
        let base: Vec<&Event> = base.iter().collect();
        let m1 = message(&phone, conv, 1, None, &base, "one");
        let m2 = message(&phone, conv, 2, Some(m1.id()), &[&m1], "two");
        let branch = message(&phone, conv, 9, None, &base, "branch");
        ingest(&mut laptop, conv, &[&m1, &m2, &branch]).await;
        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();
        in_order(&mut bob, LogId::account(alice), &laptop).await;
        in_order(&mut bob, conv, &laptop).await;
        let mut seen = shown(&bob, alice).await;
        seen.sort();
        assert_eq!(seen, vec!["branch", "one", "two"]);
        for n in [laptop, bob] {
            n.close().await;
        }
    });
}

/// A device retired later by another device keeps its revocations' cuts:
/// the laptop revoked the stolen phone, then the tablet retires the
/// laptop; the phone stays distrusted (else the thief's events below the
/// cut-off would be shown again).
#[test]
fn retiring_the_revoking_device_keeps_the_thief_out() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let phone = add_phone(&mut laptop).await;
        let mut tablet = join(&mut laptop, &dir, "tablet").await;
        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();
        let account_log = LogId::account(laptop.account());
        in_order(&mut tablet, account_log, &laptop).await;
        tablet.revoke_device("laptop", NOW).await.unwrap();
        let state = tablet.account_state().unwrap();
        assert!(state.devices[&laptop.device()].revoked.is_some());
        assert!(state.devices[&phone.id()].revoked.unwrap().cuts);
        for n in [laptop, tablet] {
            n.close().await;
        }
    });
}

/// With the stolen phone, the thief adds a device of its own and revokes
/// it at once with the highest cut-off (so the owner could not revoke it
/// again, and that key could write anything). When the owner revokes the
/// phone, what the phone revoked is revoked again with the owner's
/// cut-offs: the thief's device writes nothing.
#[test]
fn what_a_stolen_device_revoked_is_revoked_again() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let phone = add_phone(&mut laptop).await;
        let extra = Dev::new();
        let ah = heads(&laptop, account_log).await;
        let ah: Vec<&Event> = ah.iter().collect();
        let add = entry(
            &phone,
            alice,
            1,
            &ah,
            &AccountEntry::AddDevice {
                device: extra.id(),
                name: "extra".into(),
                join: sign_join(&extra.key, alice, "extra"),
            },
        );
        let wide_open = revocation(&phone, alice, 2, &[&add], extra.id(), u64::MAX, false);
        ingest(&mut laptop, account_log, &[&add, &wide_open]).await;
        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();
        let state = laptop.account_state().unwrap();
        let rec = state.devices[&extra.id()].revoked.unwrap();
        assert_eq!(rec.cutoff_seq, 0);
        assert!(rec.cuts);
        let self_log = LogId::self_log(alice);
        let sh = heads(&laptop, self_log).await;
        let sh: Vec<&Event> = sh.iter().collect();
        let written = signed(
            &extra,
            self_log,
            LogKind::SelfLog,
            7,
            None,
            &sh,
            5,
            setting_body("relay", b"https://thief.example"),
        );
        let out = laptop
            .ingest_batch(self_log, &[written.encode()], NOW, 1, None)
            .await
            .unwrap();
        assert!(out[0].is_err(), "{out:?}");
        assert_eq!(laptop.setting("relay"), None);
        laptop.close().await;
    });
}

/// The thief holds two devices of the account and has each vouch for the
/// other's cuts, in a chain ending at a message of one of them, delivered
/// to Bob before the revocations. When both revocations arrive, nothing
/// of it counts: statuses are settled from nothing vouched for, not from
/// what they were (which left the message shown).
#[test]
fn cuts_that_vouch_for_each_other_vouch_for_nothing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut bob = new_node(&dir, "bob").await;
        befriend(&mut laptop, &mut bob).await;
        let alice = laptop.account();
        let d = add_phone(&mut laptop).await;
        let e = add_phone(&mut laptop).await;
        // Each wrote in the self log, so the cut-offs are high.
        let self_log = LogId::self_log(alice);
        for dev in [&d, &e] {
            let sh = heads(&laptop, self_log).await;
            let sh: Vec<&Event> = sh.iter().collect();
            let s = signed(
                dev,
                self_log,
                LogKind::SelfLog,
                20,
                None,
                &sh,
                5,
                setting_body("x", b"y"),
            );
            ingest(&mut laptop, self_log, &[&s]).await;
        }
        in_order(&mut bob, LogId::account(alice), &laptop).await;
        let conv = LogId::conversation(alice, bob.account());
        let base = heads(&laptop, conv).await;
        let base: Vec<&Event> = base.iter().collect();
        let t = message(&d, conv, 1, None, &base, "send me money");
        let cut = |by: &Dev, seq: u64, named: &Dev, head: &Event| {
            signed(
                by,
                conv,
                LogKind::Conversation,
                seq,
                None,
                &[head],
                node_core::log::CUT_KIND,
                node_core::log::Cut {
                    device: named.id(),
                    head: head.id(),
                }
                .encode(),
            )
        };
        let c1 = cut(&e, 1, &d, &t);
        let c2 = cut(&d, 2, &e, &c1);
        let c3 = cut(&e, 2, &d, &c2);
        let c4 = cut(&d, 3, &e, &c3);
        ingest(&mut bob, conv, &[&t, &c1, &c2, &c3, &c4]).await;
        assert_eq!(shown(&bob, alice).await, vec!["send me money"]);
        laptop
            .revoke_device(&d.id().to_string(), NOW)
            .await
            .unwrap();
        laptop
            .revoke_device(&e.id().to_string(), NOW)
            .await
            .unwrap();
        in_order(&mut bob, LogId::account(alice), &laptop).await;
        assert!(
            shown(&bob, alice).await.is_empty(),
            "{:?}",
            shown(&bob, alice).await
        );
        assert_eq!(status(&bob, conv, &t.id()), Some(Status::SoftFailed));
        for n in [laptop, bob] {
            n.close().await;
        }
    });
}

/// The thief adds a device of its own from the stolen phone (and, from
/// that one, another) while Alice, who has not seen those additions,
/// revokes the phone: conflict resolution discards them, so the new keys
/// were never Alice's. Carol heard of the additions first and took a
/// message from each new key; once the revocation arrives neither is
/// shown, not when the thief's own account, which Carol then follows,
/// lists the first key too, and not after a restart. They used to stay
/// shown: only revoked devices were distrusted, and a device whose
/// addition was discarded is not revoked, just gone.
#[test]
fn a_device_the_thief_added_behind_the_owners_back_is_never_shown() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut carol = new_node(&dir, "carol").await;
        let mut mallory = new_node(&dir, "mallory").await;
        befriend(&mut laptop, &mut carol).await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let mut phone = add_phone(&mut laptop).await;
        in_order(&mut carol, account_log, &laptop).await;
        // The thief's additions, which the laptop never receives: a key
        // that is also a device of the thief's own account, then a key
        // that the first one adds.
        let mut extra = add_phone(&mut mallory).await;
        let further = Dev::new();
        let ah = heads(&laptop, account_log).await;
        let ah: Vec<&Event> = ah.iter().collect();
        phone.seq = 100;
        let added = common::add_device(&mut phone, alice, &ah, &extra);
        let added_too = common::add_device(&mut extra, alice, &[&added], &further);
        ingest(&mut carol, account_log, &[&added, &added_too]).await;
        let conv = LogId::conversation(alice, carol.account());
        let base = heads(&carol, conv).await;
        let base: Vec<&Event> = base.iter().collect();
        let m = message(&extra, conv, 1, None, &base, "send money to this account");
        let m2 = message(&further, conv, 1, None, &[&m], "quickly");
        ingest(&mut carol, conv, &[&m, &m2]).await;
        assert_eq!(
            shown(&carol, alice).await,
            vec!["send money to this account", "quickly"]
        );
        // Alice revokes the phone; Carol hears of it.
        laptop
            .revoke_device(&phone.id().to_string(), NOW)
            .await
            .unwrap();
        in_order(&mut carol, account_log, &laptop).await;
        let state = carol.account_log_state(alice).unwrap();
        assert!(
            !state.devices.contains_key(&extra.id()),
            "the thief's addition still counts"
        );
        assert!(
            shown(&carol, alice).await.is_empty(),
            "the thief's keys are still shown"
        );
        assert_eq!(status(&carol, conv, &m.id()), Some(Status::SoftFailed));
        assert_eq!(status(&carol, conv, &m2.id()), Some(Status::SoftFailed));
        // Carol now follows the thief's own account, which lists the
        // first key validly: that speaks for nothing in Alice's name.
        befriend(&mut carol, &mut mallory).await;
        in_order(&mut carol, LogId::account(mallory.account()), &mallory).await;
        assert!(
            carol
                .account_log_state(mallory.account())
                .unwrap()
                .is_active(&extra.id())
        );
        assert!(
            shown(&carol, alice).await.is_empty(),
            "a second account listing the key vouched for it"
        );
        let carol = reopen(carol, &dir, "carol").await;
        assert!(
            shown(&carol, alice).await.is_empty(),
            "shown after a restart"
        );
        for n in [laptop, carol, mallory] {
            n.close().await;
        }
    });
}

/// The phone (which wrote up to sequence number 10) adds a new key with
/// number 4 on the account log's heads; the laptop, not having seen that,
/// revokes the phone, then receives the addition (stored, and discarded).
/// Returns the addition and the new key.
async fn added_behind_the_revocation(laptop: &mut Node, phone: &mut Dev) -> (Event, Dev) {
    let account_log = LogId::account(laptop.account());
    wrote_setting(laptop, phone, 10).await;
    let before = heads(laptop, account_log).await;
    let before: Vec<&Event> = before.iter().collect();
    let new = Dev::new();
    phone.seq = 4;
    let added = common::add_device(phone, laptop.account(), &before, &new);
    laptop
        .revoke_device(&phone.id().to_string(), NOW)
        .await
        .unwrap();
    ingest(laptop, account_log, &[&added]).await;
    assert!(laptop.log(&account_log).unwrap().knows(&added.id()));
    (added, new)
}

/// After Alice revoked her stolen phone, the thief signs account-log
/// entries with unused sequence numbers below the cut-off, on the heads
/// from before the revocation: one adding a key of its own, from that key
/// one adding another, and one revoking the laptop. All are stored (valid
/// at their parents) and none counts; they are heads the laptop's next
/// entries build on, and those must still count: a device added and a
/// second stolen device revoked afterwards. (Every entry built on a
/// discarded one, or on an entry invalid because of one, used to be
/// invalid, and the laptop's own entries on the thief's revocation of it
/// were refused as by a revoked device: the thief froze the account.)
#[test]
fn a_discarded_entry_does_not_freeze_the_account() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut phone = add_phone(&mut laptop).await;
        let tablet = add_phone(&mut laptop).await;
        let (late, mut thiefs) = added_behind_the_revocation(&mut laptop, &mut phone).await;
        let another = Dev::new();
        let later = common::add_device(&mut thiefs, laptop.account(), &[&late], &another);
        let account_log = LogId::account(laptop.account());
        let revokes_laptop = revocation(
            &phone,
            laptop.account(),
            5,
            &[&late],
            laptop.device(),
            0,
            true,
        );
        ingest(&mut laptop, account_log, &[&later, &revokes_laptop]).await;
        let state = laptop.account_state().unwrap();
        assert!(state.is_active(&laptop.device()));
        assert!(!state.devices.contains_key(&thiefs.id()));
        assert!(!state.devices.contains_key(&another.id()));
        // The laptop's next entries cite the discarded one (a head).
        let new = add_phone(&mut laptop).await;
        laptop
            .revoke_device(&tablet.id().to_string(), NOW)
            .await
            .unwrap();
        let state = laptop.account_state().unwrap();
        assert!(
            state.is_active(&new.id()),
            "the device added later is not in the account"
        );
        assert!(
            !state.is_active(&tablet.id()),
            "the tablet revoked later is still active"
        );
        laptop.close().await;
    });
}

/// The phone added a tablet just before it was lost, and the laptop, which
/// had not yet seen that addition, revoked the phone: the addition is
/// discarded (it cannot be told from a thief's). Alice adds the tablet
/// again from the laptop, and it counts, on the laptop and on a contact
/// who receives the entries. (The discarded addition, an
/// ancestor of the new one, used to make it "already in the account".)
#[test]
fn a_device_whose_addition_was_discarded_can_be_added_again() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let mut carol = new_node(&dir, "carol").await;
        befriend(&mut laptop, &mut carol).await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let mut phone = add_phone(&mut laptop).await;
        let (_, tablet) = added_behind_the_revocation(&mut laptop, &mut phone).await;
        assert!(!laptop.account_state().unwrap().is_active(&tablet.id()));
        let again = AccountEntry::AddDevice {
            device: tablet.id(),
            name: "tablet".into(),
            join: sign_join(&tablet.key, alice, "tablet"),
        };
        laptop
            .append(account_log, kind::ADD_DEVICE, again.encode(), NOW)
            .await
            .unwrap();
        assert!(
            laptop.account_state().unwrap().is_active(&tablet.id()),
            "the tablet added again is not in the account"
        );
        in_order(&mut carol, account_log, &laptop).await;
        assert!(
            carol
                .account_log_state(alice)
                .unwrap()
                .is_active(&tablet.id())
        );
        for n in [laptop, carol] {
            n.close().await;
        }
    });
}

/// After its revocation, the thief fills Alice's account log to its bound
/// with entries signed on old heads (each is stored, then discarded). The
/// laptop, an active device, can still add and revoke devices in the
/// entries kept for active devices and the recovery key; the thief's next
/// entry is refused. (A full log used to refuse everyone, so the thief
/// froze the account, even for the recovery key.)
#[test]
fn a_thief_cannot_fill_the_account_log() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut laptop = new_node(&dir, "laptop").await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let mut phone = add_phone(&mut laptop).await;
        let tablet = add_phone(&mut laptop).await;
        let (late, _) = added_behind_the_revocation(&mut laptop, &mut phone).await;
        let target = laptop.device();
        let flood = |k: u64| revocation(&phone, alice, 5, &[&late], target, k, false);
        let held = laptop.log(&account_log).unwrap().len();
        let room = node_core::identity::MAX_ACCOUNT_EVENTS - held;
        let events: Vec<Event> = (0..room as u64).map(flood).collect();
        for chunk in events.chunks(128) {
            let chunk: Vec<&Event> = chunk.iter().collect();
            ingest(&mut laptop, account_log, &chunk).await;
        }
        assert_eq!(
            laptop.log(&account_log).unwrap().len(),
            node_core::identity::MAX_ACCOUNT_EVENTS
        );
        let more = flood(room as u64);
        let out = laptop
            .ingest_batch(account_log, &[more.encode()], NOW, 1, None)
            .await
            .unwrap();
        assert!(
            out.iter().all(|o| o.is_err()),
            "the thief wrote past the bound"
        );
        let new = add_phone(&mut laptop).await;
        laptop
            .revoke_device(&tablet.id().to_string(), NOW)
            .await
            .unwrap();
        let state = laptop.account_state().unwrap();
        assert!(state.is_active(&laptop.device()));
        assert!(state.is_active(&new.id()));
        assert!(!state.is_active(&tablet.id()));
        laptop.close().await;
    });
}

/// After the laptop revoked the stolen phone, the thief signs on old heads
/// a revocation of the laptop and one of the tablet; both are discarded.
/// Alice then revokes the phone again with the recovery key: that must
/// not bring the thief's revocations back. (The recovery revocation cited
/// every head, so the thief's revocation of the laptop became its
/// ancestor and counted; and revoking again what the phone revoked read
/// discarded entries too, so the laptop revoked its own tablet.)
#[test]
fn the_recovery_key_does_not_revive_a_discarded_revocation() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (mut laptop, code) = laptop_with_recovery(&dir).await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let mut phone = add_phone(&mut laptop).await;
        let tablet = add_phone(&mut laptop).await;
        let (late, _) = added_behind_the_revocation(&mut laptop, &mut phone).await;
        let revokes = |seq: u64, device| revocation(&phone, alice, seq, &[&late], device, 0, true);
        let (x1, x2) = (revokes(5, laptop.device()), revokes(6, tablet.id()));
        ingest(&mut laptop, account_log, &[&x1, &x2]).await;
        let state = laptop.account_state().unwrap();
        assert!(state.is_active(&laptop.device()) && state.is_active(&tablet.id()));
        laptop
            .revoke_device_with_recovery(&phone.id().to_string(), &code, NOW)
            .await
            .unwrap();
        let state = laptop.account_state().unwrap();
        assert!(!state.is_active(&phone.id()));
        assert!(
            state.is_active(&laptop.device()),
            "the thief's revocation of the laptop counts"
        );
        assert!(state.is_active(&tablet.id()), "the tablet was revoked");
        laptop.close().await;
    });
}

/// The phone is stolen and still active: the thief adds a key and revokes
/// it at once with the highest cut-off (so it keeps writing), then fills
/// the account log past its bound, into the entries kept for active
/// devices. The laptop can write no more, but the recovery key still
/// revokes the phone, and the key the phone revoked again with the
/// laptop's cut-off. (The recovery key had no room; then the laptop's
/// revoking again did not fit.)
#[test]
fn the_recovery_key_has_room_when_a_thief_fills_the_log() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (mut laptop, code) = laptop_with_recovery(&dir).await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let mut phone = add_phone(&mut laptop).await;
        let tablet = add_phone(&mut laptop).await;
        let extra = Dev::new();
        let h = heads(&laptop, account_log).await;
        let h: Vec<&Event> = h.iter().collect();
        let add_extra = common::add_device(&mut phone, alice, &h, &extra);
        let wide_open = revocation(
            &phone,
            alice,
            phone.seq + 1,
            &[&add_extra],
            extra.id(),
            u64::MAX,
            false,
        );
        ingest(&mut laptop, account_log, &[&add_extra, &wide_open]).await;
        let base = heads(&laptop, account_log).await;
        let base: Vec<&Event> = base.iter().collect();
        let bound =
            node_core::identity::MAX_ACCOUNT_EVENTS + node_core::identity::RESERVED_ACCOUNT_EVENTS;
        let room = bound - laptop.log(&account_log).unwrap().len();
        let events: Vec<Event> = (0..room as u64)
            .map(|k| revocation(&phone, alice, k + 1, &base, tablet.id(), k, false))
            .collect();
        for chunk in events.chunks(128) {
            let chunk: Vec<&Event> = chunk.iter().collect();
            ingest(&mut laptop, account_log, &chunk).await;
        }
        assert_eq!(laptop.log(&account_log).unwrap().len(), bound);
        assert!(
            laptop
                .revoke_device(&phone.id().to_string(), NOW)
                .await
                .is_err()
        );
        laptop
            .revoke_device_with_recovery(&phone.id().to_string(), &code, NOW)
            .await
            .unwrap();
        let state = laptop.account_state().unwrap();
        assert!(!state.is_active(&phone.id()));
        assert!(
            state.devices[&extra.id()].revoked.unwrap().cutoff_seq < u64::MAX,
            "the key the thief revoked wide open still writes"
        );
        laptop.close().await;
    });
}

/// The stolen phone, still active, revoked the tablet (an honest device);
/// the owner then revokes the phone with the recovery key from the
/// laptop. The recovery key signs no revocation of the tablet: that would
/// brand the tablet a thief's, so the cuts of its own revocations would
/// stop counting. (The recovery path used to revoke again, with the
/// recovery key, everything the phone had revoked.)
#[test]
fn the_recovery_key_does_not_brand_a_device_the_thief_revoked() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (mut laptop, code) = laptop_with_recovery(&dir).await;
        let alice = laptop.account();
        let account_log = LogId::account(alice);
        let phone = add_phone(&mut laptop).await;
        let tablet = add_phone(&mut laptop).await;
        let h = heads(&laptop, account_log).await;
        let h: Vec<&Event> = h.iter().collect();
        let by_thief = revocation(&phone, alice, 1, &h, tablet.id(), 0, false);
        ingest(&mut laptop, account_log, &[&by_thief]).await;
        laptop
            .revoke_device_with_recovery(&phone.id().to_string(), &code, NOW)
            .await
            .unwrap();
        let recovery = node_core::DeviceId::from(laptop.account_state().unwrap().recovery.unwrap());
        let branded = events_of(&laptop, account_log)
            .await
            .iter()
            .map(|b| Event::decode(b).unwrap())
            .filter(|e| e.header().author == recovery)
            .filter_map(|e| AccountEntry::decode(e.header().kind, e.body()?).ok())
            .any(
                |x| matches!(x, AccountEntry::RevokeDevice { device, .. } if device == tablet.id()),
            );
        assert!(!branded, "the recovery key revoked the tablet");
        let state = laptop.account_state().unwrap();
        assert!(!state.is_active(&phone.id()));
        assert!(
            !state.is_active(&tablet.id()),
            "the thief's revocation still cuts the tablet off"
        );
        laptop.close().await;
    });
}
