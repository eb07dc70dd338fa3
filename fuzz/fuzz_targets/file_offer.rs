//! File offers (`files::FileOffer`), the body of a file message from a
//! contact or room member, and the chunk arithmetic done on them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::files::{FileOffer, MAX_CHUNK, MAX_CHUNKS};

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = FileOffer::decode(data) else {
        return;
    };
    assert_eq!(offer.encode(), data);
    assert!(offer.chunks.len() <= MAX_CHUNKS);
    assert!(offer.chunk_size <= MAX_CHUNK);
    let total: u64 = (0..offer.chunk_count())
        .map(|i| offer.chunk_len(i) as u64)
        .sum();
    assert_eq!(total, offer.size);
});
