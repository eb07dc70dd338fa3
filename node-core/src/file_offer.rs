//! A file offer: what a conversation or room event says of a file (name,
//! size, content hash, and the hash of every chunk). Pure data and its
//! wire form, shared by the node (`crate::files`) and room rules.

use crate::wire::{Reader, WireError, Writer};

/// Smallest chunk.
pub const MIN_CHUNK: u32 = 256 * 1024;
/// Largest chunk (also bounds what a peer may send as one chunk).
pub const MAX_CHUNK: u32 = 16 * 1024 * 1024;
/// Most chunks in one offer (their hashes must fit in an event body).
pub const MAX_CHUNKS: usize = 1900;
/// Largest file name.
pub const MAX_NAME: usize = 255;

/// What a file offer event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOffer {
    /// The file's name (no path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Hash of the whole content.
    pub hash: [u8; 32],
    /// Chunk size (all chunks but the last are this long).
    pub chunk_size: u32,
    /// Hash of each chunk.
    pub chunks: Vec<[u8; 32]>,
}

impl FileOffer {
    /// The event body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(&self.name)
            .u64(self.size)
            .fixed(&self.hash)
            .u32(self.chunk_size)
            .u16(self.chunks.len() as u16);
        for c in &self.chunks {
            w.fixed(c);
        }
        w.finish()
    }

    /// Reads and checks an offer (sizes consistent and bounded).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let name = r.str(MAX_NAME, "file name")?.to_owned();
        let size = r.u64("size")?;
        let hash = r.array("hash")?;
        let chunk_size = r.u32("chunk size")?;
        let n = r.count(MAX_CHUNKS, "chunks")?;
        let chunks = (0..n)
            .map(|_| r.array("chunk hash"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish("file offer")?;
        let bad = |why| WireError::Invalid {
            what: "file offer",
            why,
        };
        // The chunk size is the one the size calls for: no offer makes
        // chunks larger than needed.
        if chunk_size_for(size) != Some(chunk_size) {
            return Err(bad("chunk size not the one for this size"));
        }
        if size.div_ceil(u64::from(chunk_size)) != n as u64 {
            return Err(bad("chunk count does not match the size"));
        }
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            return Err(bad("bad file name"));
        }
        Ok(Self {
            name,
            size,
            hash,
            chunk_size,
            chunks,
        })
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// Length of chunk `i`.
    pub fn chunk_len(&self, i: u32) -> usize {
        let start = u64::from(i) * u64::from(self.chunk_size);
        (self.size - start).min(u64::from(self.chunk_size)) as usize
    }
}

/// The chunk size for a file of `size` bytes: a power of two from
/// [`MIN_CHUNK`] up, so that the chunk hashes fit in one offer.
pub fn chunk_size_for(size: u64) -> Option<u32> {
    let mut c = MIN_CHUNK;
    while size.div_ceil(u64::from(c)) > MAX_CHUNKS as u64 {
        c = c.checked_mul(2).filter(|c| *c <= MAX_CHUNK)?;
    }
    Some(c)
}
