//! A peer that breaks the protocol — garbage, oversized frames, a stranger,
//! a contact writing to logs it is not entitled to, floods — is
//! disconnected; the daemon stays up and its store is unchanged.

#![allow(clippy::unwrap_used)]

mod support;

use node_core::crypto::SigningKey;
use node_core::node::Node;
use node_core::store::Profile;
use node_core::sync::{Msg, SYNC_VERSION};
use node_core::transport::{Link, Transport};
use node_core::{AccountId, DeviceId, EventId, LogId};
use std::net::SocketAddr;
use std::time::Duration;
use support::{Running, kith, ok};

fn target(d: &Running) -> (DeviceId, SocketAddr) {
    let s = d.status();
    let device: DeviceId = s["device"].as_str().unwrap().parse().unwrap();
    let addr: SocketAddr = s["listening"][0].as_str().unwrap().parse().unwrap();
    (device, addr)
}

/// Whether the daemon closes the link within a few seconds.
async fn closed_by_daemon(link: &Link) -> bool {
    tokio::time::timeout(Duration::from_secs(10), link.closed())
        .await
        .is_ok()
}

async fn dial(t: &Transport, d: &Running) -> Link {
    let (device, addr) = target(d);
    t.connect(device, &[addr]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_disconnected_and_change_nothing() {
    let mut bob = Running::start("Bob");
    let stranger = Transport::bind(&SigningKey::generate(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();

    // Garbage frame.
    let link = dial(&stranger, &bob).await;
    let (mut w, _r) = link.open().await.unwrap();
    w.send(&[0xff, 0, 1, 2, 3]).await.unwrap();
    assert!(closed_by_daemon(&link).await, "garbage frame not refused");

    // A frame header announcing more than the limit.
    let link = dial(&stranger, &bob).await;
    let (mut w, _r) = link.open().await.unwrap();
    let mut raw = (64u32 << 20).to_be_bytes().to_vec();
    raw.extend_from_slice(&[0u8; 1024]);
    w.danger_write_raw(&raw).await.unwrap();
    assert!(closed_by_daemon(&link).await, "oversized frame not refused");

    // A stranger's hello: not a contact.
    let link = dial(&stranger, &bob).await;
    let (mut w, _r) = link.open().await.unwrap();
    let hello = Msg::Hello {
        version: SYNC_VERSION,
        account: AccountId::from_bytes([7; 32]),
    };
    w.send(&hello.encode()).await.unwrap();
    assert!(closed_by_daemon(&link).await, "stranger not refused");

    // A contact that writes to a log it is not entitled to, after a flood of wants.
    let dir = tempfile::tempdir().unwrap();
    let (mallory, _) = Node::create(
        Profile::new(dir.path().join("m")),
        "Mallory",
        None,
        false,
        1,
    )
    .await
    .unwrap();
    let card = mallory.card(vec![], 1).unwrap();
    ok(kith(&bob.home, &["contact", "add", &card]));
    let before = ok(kith(&bob.home, &["contact", "list", "--json"]));
    let outbox_before = bob.status()["outbox"].clone();
    let t = mallory
        .bind_transport(&["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&t, &bob).await;
    let (mut w, _r) = link.open().await.unwrap();
    w.send(
        &Msg::Hello {
            version: SYNC_VERSION,
            account: mallory.account(),
        }
        .encode(),
    )
    .await
    .unwrap();
    let want = Msg::Want {
        log: LogId::account(mallory.account()),
        ids: (0..4096u32)
            .map(|i| EventId::from_bytes([(i % 251) as u8; 32]))
            .collect(),
    };
    for _ in 0..50 {
        w.send(&want.encode()).await.unwrap();
    }
    let foreign = Msg::Events {
        log: LogId::from_bytes([9; 32]),
        events: vec![vec![1, 2, 3]],
    };
    w.send(&foreign.encode()).await.unwrap();
    assert!(
        closed_by_daemon(&link).await,
        "events for a foreign log not refused"
    );

    // A stranger that floods the link with datagrams (nothing on a sync
    // link reads them; they are dropped past the per-link bound).
    let link = dial(&stranger, &bob).await;
    let junk = vec![0xa5u8; link.max_datagram_size().unwrap_or(1000).min(1200)];
    for _ in 0..4096 {
        if link.send_datagram(junk.clone()).is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    link.close("done");

    assert!(bob.is_running(), "daemon died:\n{}", bob.log());
    assert_eq!(ok(kith(&bob.home, &["contact", "list", "--json"])), before);
    assert_eq!(bob.status()["outbox"], outbox_before);
    t.close().await;
    stranger.close().await;
    mallory.close().await;
}

/// A device that is not an active device of an entitled account asks for
/// a file's chunks on a file stream: it gets none (the stream ends with no
/// chunk), a garbage request ends only its own stream, and the daemon
/// keeps serving its link and its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_no_file_chunk() {
    use node_core::sync::file_msg::{ChunkHead, FileRequest};
    let mut bob = Running::start("Bob");
    let dir = tempfile::tempdir().unwrap();
    let (carol, _) = Node::create(Profile::new(dir.path().join("c")), "Carol", None, false, 1)
        .await
        .unwrap();
    let carol_id = ok(kith(
        &bob.home,
        &["contact", "add", &carol.card(vec![], 1).unwrap()],
    ));
    let path = dir.path().join("secret.txt");
    std::fs::write(&path, vec![b's'; 100_000]).unwrap();
    let offer = ok(kith(
        &bob.home,
        &["file", "send", carol_id.trim(), path.to_str().unwrap()],
    ));
    let file: EventId = offer.trim().parse().unwrap();

    let stranger = Transport::bind(&SigningKey::generate(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    let link = dial(&stranger, &bob).await;
    // The sync stream, opened with half a frame header (no hello yet):
    // the daemon now serves further streams on this link as file requests.
    let (mut sync, _sync_r) = link.open().await.unwrap();
    sync.danger_write_raw(&[0, 0]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut w, mut r) = link.open().await.unwrap();
    let ask = FileRequest {
        file,
        chunks: vec![0],
    };
    w.send(&ask.encode()).await.unwrap();
    w.finish();
    let answer = tokio::time::timeout(Duration::from_secs(10), r.recv())
        .await
        .expect("the daemon neither answered nor ended the stream");
    if let Ok(Some(frame)) = &answer {
        assert!(
            !matches!(ChunkHead::decode(frame), Ok(ChunkHead::Chunk { .. })),
            "a stranger was served a chunk"
        );
    }

    // Garbage on another stream ends that stream only.
    let (mut w, mut r) = link.open().await.unwrap();
    w.send(&[0xff, 1, 2, 3]).await.unwrap();
    w.finish();
    let answer = tokio::time::timeout(Duration::from_secs(10), r.recv())
        .await
        .expect("a garbage request was neither answered nor ended");
    assert!(!matches!(answer, Ok(Some(_))), "garbage was answered");

    assert!(bob.is_running(), "daemon died:\n{}", bob.log());
    let files = ok(kith(
        &bob.home,
        &["file", "list", carol_id.trim(), "--json"],
    ));
    assert!(files.contains("complete"), "{files}");
    link.close("done");
    stranger.close().await;
    carol.close().await;
}

/// A device that is not an active device of a contact dials the call
/// protocol: it is closed before it can offer anything, whatever it
/// sends (an offer, garbage, an oversized frame), and nothing rings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_ring() {
    use node_core::call::{CallId, CallMsg};
    let mut bob = Running::start("Bob");
    let (device, addr) = target(&bob);
    let stranger = Transport::bind(&SigningKey::generate(), &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    for frame in [
        CallMsg::Offer {
            call: CallId([1; 16]),
            video: false,
        }
        .encode(),
        vec![0xff; 40],
        vec![0; 100_000],
    ] {
        let link = stranger.connect_call(device, &[addr], None).await.unwrap();
        if let Ok((mut w, _r)) = link.open().await {
            let _ = w.send(&frame).await;
        }
        assert!(
            closed_by_daemon(&link).await,
            "a stranger's call was not refused"
        );
    }
    let calls = ok(kith(&bob.home, &["call", "status", "--json"]));
    assert_eq!(calls.trim(), "[]", "a stranger's call rang");
    assert!(bob.is_running(), "daemon died:\n{}", bob.log());
    stranger.close().await;
}
