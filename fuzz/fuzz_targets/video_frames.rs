//! Video datagrams as a call's peer sends them: a run of datagrams
//! (each a u16 length, big-endian, then its bytes) decoded, put together
//! by `kith_media::frames::Assembler` and the whole frames handed to the
//! H.264 decoder, with time passing between them.
#![no_main]

use kith_media::frames::{Assembler, MAX_PENDING};
use kith_media::packet::{Kind, Packet};
use kith_media::video::{MAX_FRAME_BYTES, VideoDecoder};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let mut a = Assembler::new();
    let Ok(mut decoder) = VideoDecoder::new() else {
        return;
    };
    let start = Instant::now();
    let (mut rest, mut i) = (data, 0u64);
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        i += 1;
        let now = start + Duration::from_millis(i * 7);
        let out = match Packet::decode(datagram) {
            Ok(p) if p.kind == Kind::Video => a.push(&p, now),
            _ => a.tick(now),
        };
        for f in out.frames {
            assert!(f.data.len() <= MAX_FRAME_BYTES * MAX_PENDING);
            if let Ok(Some(p)) = decoder.decode(&f.data) {
                assert_eq!(p.data.len(), p.width * p.height * 3 / 2);
            }
        }
    }
});
