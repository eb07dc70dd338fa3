//! Room call datagrams (`node_core::call::conf::Datagram::parse`: a frame,
//! a frame relayed by a forwarder, a beat) and the sealed frames in them
//! (`SenderKeys::open_stream`, audio or video): what a participant, a
//! forwarder (or anyone on the path) can put in a media datagram. The input is cut into datagrams at
//! 0xff bytes and each frame is opened in turn under held keys (a current
//! and a previous one), so the replay window and key retirement see
//! sequences, not one frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::DeviceId;
use node_core::call::conf::{Datagram, SenderKey, SenderKeys, Stream, tag_of};
use node_core::crypto::SecretBytes;

fuzz_target!(|data: &[u8]| {
    let mut keys = SenderKeys::default();
    keys.add(1, SecretBytes::new([1; 32]));
    keys.add(2, SecretBytes::new([2; 32]));
    // A real frame first, so opening succeeds at least once.
    let mut real = SenderKey::generate(3);
    if let node_core::call::conf::ConfMsg::Key { kid, key } = real.announce() {
        keys.add(kid, key);
    }
    let header = [0x10u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
    let good = real.seal(&header, b"frame");
    assert!(keys.open(&header, &good).is_ok());
    let dev = DeviceId::from_bytes([7; 32]);
    for piece in data.split(|b| *b == 0xff) {
        let frame = match Datagram::parse(piece) {
            Ok(Datagram::Own(f)) => f,
            Ok(Datagram::Relayed { frame, .. }) => frame,
            Ok(Datagram::Beat) | Err(_) => piece,
        };
        let (h, sealed) = frame.split_at(frame.len().min(12));
        // Audio, or a piece of video (its own counters and nonces).
        let stream = if h.first().is_some_and(|b| b & 0x0f == 1) {
            Stream::Video
        } else {
            Stream::Audio
        };
        let _ = keys.open_stream(stream, h, sealed);
        // What a forwarder passes on reads back as it was.
        if !piece.is_empty() {
            let relayed = Datagram::relay(&dev, piece);
            assert_eq!(
                Datagram::parse(&relayed),
                Ok(Datagram::Relayed {
                    origin: tag_of(&dev),
                    frame: piece
                })
            );
        }
    }
    // The good frame never opens twice.
    assert!(keys.open(&header, &good).is_err());
});
