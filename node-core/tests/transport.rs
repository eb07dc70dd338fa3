//! Device links over real QUIC on loopback: each connection names its
//! protocol by ALPN, and datagrams (for call media) pass, bounded.

#![allow(clippy::unwrap_used)]

use node_core::DeviceId;
use node_core::crypto::SigningKey;
use node_core::transport::{Link, MAX_DATAGRAM_BUFFER, Protocol, Transport};
use std::time::Duration;

async fn endpoint() -> (Transport, DeviceId) {
    let key = SigningKey::generate();
    let device = DeviceId::from(key.verifying_key());
    let t = Transport::bind(&key, &["127.0.0.1:0".parse().unwrap()])
        .await
        .unwrap();
    (t, device)
}

/// A link from `a` to `b` of `protocol`, both ends.
async fn linked(protocol: Protocol) -> (Link, Link, Transport, Transport) {
    let (a, _) = endpoint().await;
    let (b, b_id) = endpoint().await;
    let addrs = b.local_addrs();
    let dial = async {
        match protocol {
            Protocol::Join => a.connect_join(b_id, &addrs).await.unwrap(),
            _ => a.connect(b_id, &addrs).await.unwrap(),
        }
    };
    let (out, inc) = tokio::join!(dial, async { b.accept().await.unwrap().unwrap() });
    (out, inc, a, b)
}

#[tokio::test]
async fn each_connection_names_its_protocol() {
    for protocol in [Protocol::Sync, Protocol::Join] {
        let (out, inc, _a, _b) = linked(protocol).await;
        assert_eq!(out.protocol(), protocol);
        assert_eq!(inc.protocol(), protocol, "the listener sees the ALPN");
        assert_eq!(inc.is_join(), protocol == Protocol::Join);
        assert_eq!(Protocol::from_alpn(protocol.alpn()), Some(protocol));
    }
    assert_eq!(Protocol::from_alpn(b"kith/0"), None);
}

#[tokio::test]
async fn datagrams_pass_and_unread_ones_are_bounded() {
    let (out, inc, _a, _b) = linked(Protocol::Sync).await;
    let max = out.max_datagram_size().expect("datagrams are on");
    assert!(max >= 1000, "room for a media packet: {max}");
    out.send_datagram(b"frame 1".to_vec()).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), inc.read_datagram())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"frame 1");
    assert!(
        out.send_datagram(vec![0; 70_000]).is_err(),
        "a datagram larger than any packet is refused"
    );

    // 512 KiB of datagrams nobody reads: the receiver keeps at most its
    // buffer's worth (the oldest are dropped).
    let size = 1000;
    for i in 0..512u32 {
        let mut d = vec![0u8; size];
        d[..4].copy_from_slice(&i.to_be_bytes());
        out.send_datagram(d).unwrap();
        if i % 32 == 31 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut held = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(200), inc.read_datagram()).await
    {
        held += 1;
    }
    assert!(held > 0, "some datagrams arrived");
    assert!(
        held * size <= MAX_DATAGRAM_BUFFER,
        "{held} datagrams of {size} bytes were kept unread"
    );
}
