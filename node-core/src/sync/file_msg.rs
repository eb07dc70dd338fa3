//! File transfer frames: every stream on a link after the sync stream is
//! one file request. The requester sends one [`FileRequest`] (a file and
//! up to [`MAX_REQUEST`] chunk numbers) and finishes its side; the server
//! answers each chunk with a [`ChunkHead`] — the chunk follows in frames
//! of at most [`PIECE`] bytes — or says it is not here. Chunk contents are
//! checked against the file's offer by the receiver, never trusted here.

use crate::id::EventId;
use crate::wire::{Reader, WireError, Writer};

/// Most chunks one request names.
pub const MAX_REQUEST: usize = 32;
/// Chunk bytes per frame after a [`ChunkHead::Chunk`].
pub const PIECE: usize = 512 * 1024;

mod tag {
    pub const REQUEST: u8 = 0x50;
    pub const CHUNK: u8 = 0x51;
    pub const NOT_HERE: u8 = 0x52;
}

/// A request for chunks of a file (the file is named by its offer event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// The file's offer.
    pub file: EventId,
    /// The chunks wanted, at most [`MAX_REQUEST`].
    pub chunks: Vec<u32>,
}

impl FileRequest {
    /// The request frame. More than [`MAX_REQUEST`] chunks are cut to it.
    pub fn encode(&self) -> Vec<u8> {
        let chunks = &self.chunks[..self.chunks.len().min(MAX_REQUEST)];
        let mut w = Writer::new();
        w.u8(tag::REQUEST)
            .fixed(self.file.as_bytes())
            .u16(chunks.len() as u16);
        for c in chunks {
            w.u32(*c);
        }
        w.finish()
    }

    /// Reads a request frame (bounded: at most [`MAX_REQUEST`] chunks).
    pub fn decode(frame: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(frame);
        if r.u8("tag")? != tag::REQUEST {
            return Err(WireError::Invalid {
                what: "file request",
                why: "not a file request",
            });
        }
        let file = EventId::from_bytes(r.array("file")?);
        let n = r.count(MAX_REQUEST, "chunks")?;
        let chunks = (0..n)
            .map(|_| r.u32("chunk"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish("file request")?;
        Ok(Self { file, chunks })
    }
}

/// What the server says of one requested chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkHead {
    /// The chunk follows: `len` bytes in frames of at most [`PIECE`].
    Chunk {
        /// The chunk's number.
        index: u32,
        /// Its length.
        len: u32,
    },
    /// This device does not hold the chunk.
    NotHere(u32),
}

impl ChunkHead {
    /// The head frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            ChunkHead::Chunk { index, len } => w.u8(tag::CHUNK).u32(*index).u32(*len),
            ChunkHead::NotHere(index) => w.u8(tag::NOT_HERE).u32(*index),
        };
        w.finish()
    }

    /// Reads a head frame.
    pub fn decode(frame: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(frame);
        let head = match r.u8("tag")? {
            tag::CHUNK => ChunkHead::Chunk {
                index: r.u32("chunk")?,
                len: r.u32("length")?,
            },
            tag::NOT_HERE => ChunkHead::NotHere(r.u32("chunk")?),
            _ => {
                return Err(WireError::Invalid {
                    what: "chunk head",
                    why: "unknown tag",
                });
            }
        };
        r.finish("chunk head")?;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_hold() {
        let req = FileRequest {
            file: EventId::from_bytes([3; 32]),
            chunks: vec![0, 7, u32::MAX],
        };
        assert_eq!(FileRequest::decode(&req.encode()), Ok(req.clone()));
        let long = FileRequest {
            file: req.file,
            chunks: (0..100).collect(),
        };
        assert_eq!(
            FileRequest::decode(&long.encode()).map(|r| r.chunks.len()),
            Ok(MAX_REQUEST)
        );
        // A count over the bound is refused before anything is read.
        let mut over = vec![tag::REQUEST];
        over.extend_from_slice(&[3; 32]);
        over.extend_from_slice(&(MAX_REQUEST as u16 + 1).to_be_bytes());
        assert!(matches!(
            FileRequest::decode(&over),
            Err(WireError::TooLarge { .. })
        ));
        for head in [ChunkHead::Chunk { index: 4, len: 9 }, ChunkHead::NotHere(2)] {
            assert_eq!(ChunkHead::decode(&head.encode()), Ok(head));
        }
        assert!(ChunkHead::decode(&req.encode()).is_err());
        assert!(FileRequest::decode(&ChunkHead::NotHere(1).encode()).is_err());
        let mut trailing = ChunkHead::NotHere(1).encode();
        trailing.push(0);
        assert!(ChunkHead::decode(&trailing).is_err());
    }
}
