//! The node over a real encrypted store: init, reopen, the ingest pipeline's
//! precise rejections with the store unchanged, and no plaintext on disk.

#![allow(clippy::unwrap_used)]

mod common;

use common::Dev;
use node_core::LogId;
use node_core::log::{Event, EventError, LogKind, Rejection};
use node_core::node::{Ingested, Node, NodeError};
use node_core::store::{KeyFileError, Passphrase, Profile, ProfileError, StoreError};
use node_core::wire::WireError;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const MARKER: &str = "KITH-MARKER-9d1c7e0b-plaintext";

fn profile(dir: &tempfile::TempDir) -> Profile {
    Profile::new(dir.path().join("p"))
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "kith.lock" {
            out.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
    out
}

/// A second device joined to `node`'s account, through the real pipeline.
async fn join_second_device(node: &mut Node) -> Dev {
    common::hand_joined_device(node, 2_000).await
}

fn self_event(node: &Node, dev: &mut Dev, body: &[u8]) -> Event {
    let log = LogId::self_log(node.account());
    let dag = node.log(&log).unwrap();
    let parents: Vec<(node_core::EventId, u64)> = dag.heads().collect();
    dev.seq += 1;
    let prev = dev.last.get(&log).copied();
    let e = Event::sign(
        &dev.key,
        node_core::log::Draft {
            log: Some(log),
            log_kind: LogKind::SelfLog,
            seq: dev.seq,
            prev,
            parents,
            time: 3_000,
            kind: 7,
            body: body.to_vec(),
        },
    );
    dev.last.insert(log, e.id());
    e
}

#[tokio::test]
async fn create_reopen_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, recovery) = Node::create(profile(&dir), "alice", None, true, 1_000)
        .await
        .unwrap();
    assert!(recovery.is_some());
    let (account, device) = (node.account(), node.device());
    let mut phone = join_second_device(&mut node).await;
    let e = self_event(&node, &mut phone, b"setting");
    node.ingest(&e.encode(), 3_000).await.unwrap();
    node.close().await;

    let node = Node::open(profile(&dir), None).await.unwrap();
    assert_eq!((node.account(), node.device()), (account, device));
    let state = node.account_state().unwrap();
    assert!(state.is_active(&phone.id()));
    assert_eq!(node.log(&LogId::self_log(account)).unwrap().len(), 1);
    assert_eq!(node.event_count().await.unwrap(), 3);
    node.close().await;
}

#[tokio::test]
async fn init_twice_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    node.close().await;
    let before = snapshot(&dir.path().join("p"));
    let err = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Store(StoreError::Profile(ProfileError::Exists(_)))
        ),
        "{err}"
    );
    assert_eq!(snapshot(&dir.path().join("p")), before);
}

#[tokio::test]
async fn wrong_passphrase_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let right = Passphrase::new("correct horse".into());
    let (node, _) = Node::create(profile(&dir), "alice", Some(&right), false, 1_000)
        .await
        .unwrap();
    node.close().await;
    let before = snapshot(&dir.path().join("p"));
    let wrong = Passphrase::new("battery staple".into());
    let err = Node::open(profile(&dir), Some(&wrong)).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Store(StoreError::Key(KeyFileError::WrongPassphrase))
        ),
        "{err}"
    );
    let err = Node::open(profile(&dir), None).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Store(StoreError::Key(KeyFileError::PassphraseNeeded))
        ),
        "{err}"
    );
    assert_eq!(snapshot(&dir.path().join("p")), before);
    let node = Node::open(profile(&dir), Some(&right)).await.unwrap();
    assert!(node.is_protected());
    node.close().await;
}

#[tokio::test]
async fn a_second_opener_is_refused_while_the_first_holds_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let err = Node::open(profile(&dir), None).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Store(StoreError::Profile(ProfileError::Locked(_)))
        ),
        "{err}"
    );
    node.close().await;
}

#[tokio::test]
async fn loose_permissions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    node.close().await;
    let p = dir.path().join("p");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Node::open(profile(&dir), None).await.unwrap_err();
    assert!(err.to_string().contains("chmod 700"), "{err}");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(p.join("kith.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Node::open(profile(&dir), None).await.unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

/// Forged, truncated, oversized, replayed and misdirected events are
/// refused with a precise error, and the store is unchanged after each.
#[tokio::test]
async fn bad_events_are_rejected_precisely_and_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let mut phone = join_second_device(&mut node).await;
    let good = self_event(&node, &mut phone, b"good");
    assert!(matches!(
        node.ingest(&good.encode(), 3_000).await.unwrap(),
        Ingested::Stored(_)
    ));
    let count = node.event_count().await.unwrap();

    // Replayed.
    let err = node.ingest(&good.encode(), 3_000).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Rejected(Rejection::Duplicate(id)) if id == good.id()),
        "{err}"
    );

    // Forged: signed by a stranger's key but naming the phone as author.
    let mut thief = Dev::new();
    let forged = self_event(&node, &mut thief, b"forged");
    let mut bytes = forged.encode();
    let author_at = 1 + 4 + 1 + 1 + 32 + 1;
    bytes[author_at..author_at + 32].copy_from_slice(phone.id().as_bytes());
    let err = node.ingest(&bytes, 3_000).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Rejected(Rejection::Event(EventError::BadSignature { .. }))
        ),
        "{err}"
    );

    // A stranger signing as itself.
    let err = node.ingest(&forged.encode(), 3_000).await.unwrap_err();
    assert!(
        matches!(&err, NodeError::Rejected(Rejection::Unauthorized { why, .. }) if why.contains("not a device")),
        "{err}"
    );

    // Truncated.
    let next = self_event(&node, &mut phone, b"next");
    let full = next.encode();
    let err = node
        .ingest(&full[..full.len() - 3], 3_000)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Rejected(Rejection::Event(EventError::Format(
                WireError::Truncated { .. }
            )))
        ),
        "{err}"
    );

    // Body swapped for another.
    let swapped = Event::from_parts(
        next.header_bytes().to_vec(),
        *next.signature(),
        Some(b"evil".to_vec()),
    )
    .unwrap();
    let err = node.ingest(&swapped.encode(), 3_000).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Rejected(Rejection::Event(EventError::BodyMismatch { .. }))
        ),
        "{err}"
    );

    // Oversized: more bytes than any event may have.
    let err = node.ingest(&vec![1u8; 200_000], 3_000).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Rejected(Rejection::Event(EventError::Format(
                WireError::TooLarge { .. }
            )))
        ),
        "{err}"
    );
    // A body over the limit.
    let big = self_event(&node, &mut phone, &vec![0u8; 70 * 1024]);
    let err = node.ingest(&big.encode(), 3_000).await.unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::Rejected(Rejection::Event(EventError::Format(
                WireError::TooLarge { .. }
            )))
        ),
        "{err}"
    );

    // Another log this device does not hold.
    let mut other = Dev::new();
    let elsewhere = other.event(
        Some(LogId::from_bytes([5; 32])),
        LogKind::Conversation,
        &[],
        1,
        b"x".to_vec(),
        1,
    );
    let err = node.ingest(&elsewhere.encode(), 3_000).await.unwrap_err();
    assert!(matches!(err, NodeError::UnknownLog(_)), "{err}");

    assert_eq!(node.event_count().await.unwrap(), count);
    assert!(matches!(
        node.ingest(&next.encode(), 3_000).await.unwrap(),
        Ingested::Stored(_)
    ));
}

async fn no_plaintext_on_disk(passphrase: Option<&Passphrase>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", passphrase, false, 1_000)
        .await
        .unwrap();
    let mut phone = join_second_device(&mut node).await;
    for _ in 0..50 {
        let e = self_event(&node, &mut phone, MARKER.as_bytes());
        node.ingest(&e.encode(), 3_000).await.unwrap();
    }
    // Read the files while the store is open (WAL not yet checkpointed)...
    let open_files = snapshot(&dir.path().join("p"));
    node.close().await;
    let closed_files = snapshot(&dir.path().join("p"));
    for (name, bytes) in open_files.iter().chain(closed_files.iter()) {
        let hay = bytes.as_slice();
        assert!(
            !contains(hay, MARKER.as_bytes()),
            "{name} holds the plaintext marker"
        );
        assert!(!contains(hay, b"alice"), "{name} holds the account name");
        assert!(
            !contains(hay, b"correct horse"),
            "{name} holds the passphrase"
        );
        assert!(
            !contains(hay, b"SQLite format 3"),
            "{name} is a plaintext SQLite file"
        );
    }
    assert!(open_files.contains_key("kith.db"));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_profile_holds_no_plaintext_with_a_passphrase() {
    no_plaintext_on_disk(Some(&Passphrase::new("correct horse".into()))).await;
}

#[tokio::test]
async fn the_profile_holds_no_plaintext_without_a_passphrase() {
    no_plaintext_on_disk(None).await;
}

#[tokio::test]
async fn bad_names_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
        let err = Node::create(profile(&dir), bad, None, false, 1_000)
            .await
            .unwrap_err();
        assert!(matches!(err, NodeError::BadName(_)), "{err}");
    }
    assert!(!dir.path().join("p").exists());
}

#[tokio::test]
async fn held_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let mut phone = join_second_device(&mut node).await;
    let first = self_event(&node, &mut phone, b"first");
    // The second builds on the first, which the node has not seen.
    let log = LogId::self_log(node.account());
    phone.seq += 1;
    let second = Event::sign(
        &phone.key,
        node_core::log::Draft {
            log: Some(log),
            log_kind: LogKind::SelfLog,
            seq: phone.seq,
            prev: Some(first.id()),
            parents: vec![(first.id(), first.header().depth)],
            time: 3_000,
            kind: 7,
            body: b"second".to_vec(),
        },
    );
    let held = node.ingest(&second.encode(), 3_000).await.unwrap();
    assert_eq!(held, Ingested::Held(vec![first.id()]));
    node.close().await;

    let mut node = Node::open(profile(&dir), None).await.unwrap();
    assert_eq!(node.log(&log).unwrap().pending_len(), 1);
    let stored = node.ingest(&first.encode(), 4_000).await.unwrap();
    assert_eq!(stored, Ingested::Stored(vec![first.id(), second.id()]));
    assert_eq!(
        node.log(&log).unwrap().display_order(),
        vec![first.id(), second.id()]
    );
    node.close().await;
    let node = Node::open(profile(&dir), None).await.unwrap();
    assert_eq!(node.log(&log).unwrap().pending_len(), 0);
    assert_eq!(node.log(&log).unwrap().len(), 2);
    node.close().await;
}

/// A thief holding a revoked device's key mints a self-log entry with a
/// sequence number below the cut-off (one the device never used there)
/// and deposits it through the mailbox (it knows the mailbox seed, so it
/// can derive a delivery token): the deposit is refused, because its
/// signer is no active device. (Without the depositor check it was stored:
/// a stolen device could delete history or add contacts everywhere.)
#[tokio::test]
async fn a_revoked_device_cannot_write_through_a_deposit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let mut phone = join_second_device(&mut node).await;
    let first = self_event(&node, &mut phone, b"first");
    node.ingest(&first.encode(), 3_000).await.unwrap();
    phone.seq = 9;
    let tenth = self_event(&node, &mut phone, b"tenth");
    node.ingest(&tenth.encode(), 3_000).await.unwrap();
    node.revoke_device(&phone.id().to_string(), 4_000)
        .await
        .unwrap();
    // The thief: seq 5 lies below the cut-off (10) and was never used.
    let log = LogId::self_log(node.account());
    let minted = Event::sign(
        &phone.key,
        node_core::log::Draft {
            log: Some(log),
            log_kind: LogKind::SelfLog,
            seq: 5,
            prev: Some(first.id()),
            parents: vec![(first.id(), first.header().depth)],
            time: 3_500,
            kind: 7,
            body: b"minted".to_vec(),
        },
    );
    let before = node.log(&log).unwrap().len();
    let payload = node_core::mailbox::encode_events(
        &phone.key,
        node.account().as_bytes(),
        &[minted.encode()],
    );
    assert!(node.ingest_deposit(&payload, 5_000, 1).await.is_err());
    assert_eq!(node.log(&log).unwrap().len(), before, "nothing stored");
    assert!(!node.log(&log).unwrap().knows(&minted.id()));
    node.close().await;
}

/// Held events are bounded on disk as in memory: a flood of events whose
/// parents never come leaves at most the buffer's bound at rest, and a
/// restart reads no more than that.
#[tokio::test]
async fn a_flood_of_held_events_stays_bounded_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let mut phone = join_second_device(&mut node).await;
    let log = LogId::self_log(node.account());
    let bound = node_core::log::dag::DEFAULT_MAX_PENDING;
    let mut events = Vec::new();
    for i in 0..(bound + 500) as u64 {
        // Each names a parent that does not exist, at a depth the sender
        // picks (shallower ones used to push out deeper ones forever).
        phone.seq += 1;
        let ghost = node_core::EventId::from_bytes(node_core::crypto::hash(
            node_core::crypto::HashDomain::EVENT_ID,
            &i.to_be_bytes(),
        ));
        events.push(
            Event::sign(
                &phone.key,
                node_core::log::Draft {
                    log: Some(log),
                    log_kind: LogKind::SelfLog,
                    seq: phone.seq,
                    prev: None,
                    parents: vec![(ghost, 1_000_000 - i)],
                    time: 3_000,
                    kind: 7,
                    body: vec![0; 64],
                },
            )
            .encode(),
        );
    }
    for chunk in events.chunks(256) {
        node.ingest_batch(log, chunk, 3_000, 1, None).await.unwrap();
    }
    assert!(node.log(&log).unwrap().pending_len() <= bound);
    let at_rest = node.held_count().await.unwrap();
    assert!(at_rest <= bound as u64, "{at_rest} held rows at rest");
    node.close().await;
    let node = Node::open(profile(&dir), None).await.unwrap();
    assert!(node.log(&log).unwrap().pending_len() <= bound);
    node.close().await;
}

/// Regression: the store read events by id one id at a time, so a peer's
/// `Want` naming one large event 4,096 times was served 4,096 copies.
#[tokio::test]
async fn an_event_named_many_times_is_served_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let log = LogId::self_log(node.account());
    let id = node.append(log, 7, vec![b'x'; 1000], 2_000).await.unwrap();
    let served = node
        .event_reader()
        .serve(log, &vec![id; 4096])
        .await
        .unwrap();
    assert_eq!(served.len(), 1);
    node.close().await;
}

/// Regression: an own event whose body peers refuse (over `MAX_BODY`, as a
/// room message of the largest text plus its length prefix was) was
/// stored, and the log no longer loaded after a restart.
#[tokio::test]
async fn an_own_event_peers_would_refuse_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, _) = Node::create(profile(&dir), "alice", None, false, 1_000)
        .await
        .unwrap();
    let log = LogId::self_log(node.account());
    let max = node_core::log::event::MAX_BODY;
    node.append(log, 7, vec![b'x'; max], 2_000).await.unwrap();
    let err = node
        .append(log, 7, vec![b'x'; max + 4], 3_000)
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::Invalid(_)), "{err}");
    assert_eq!(node.log(&log).unwrap().len(), 1);
    node.close().await;
    let node = Node::open(profile(&dir), None).await.unwrap();
    assert_eq!(node.log(&log).unwrap().len(), 1);
    node.close().await;
}
