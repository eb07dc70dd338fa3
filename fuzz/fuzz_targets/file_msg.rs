//! File transfer frames (`sync::file_msg`): a request any peer on a link
//! can send on a stream after the sync stream, and the chunk heads a
//! device serving a file answers with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::sync::file_msg::{ChunkHead, FileRequest, MAX_REQUEST};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = FileRequest::decode(data) {
        // One encoding per value, and the bound holds.
        assert!(req.chunks.len() <= MAX_REQUEST);
        assert_eq!(req.encode(), data);
    }
    if let Ok(head) = ChunkHead::decode(data) {
        assert_eq!(head.encode(), data);
    }
});
