//! The event: a signed header and a body that travels beside it.
//!
//! The header commits to the body by its hash, so a body can be deleted while
//! the DAG stays whole and verifiable. The event id is the hash of the header
//! bytes exactly as signed; bytes are stored and forwarded unchanged. The
//! exact layout is written down in `docs/protocol.md`.

use crate::crypto::{HashDomain, SignDomain, Signature, SigningKey, hash};
use crate::id::{DeviceId, EventId, LogId};
use crate::wire::{Reader, WireError, Writer};

/// The only header version this code writes and accepts.
pub const HEADER_VERSION: u8 = 1;
/// Most parents an event may cite.
pub const MAX_PARENTS: usize = 32;
/// Largest body, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest encoded header, in bytes (32 parents fit easily).
pub const MAX_HEADER: usize = 2048;
/// Largest encoded event on the wire.
pub const MAX_EVENT: usize = 1 + 4 + MAX_HEADER + 64 + 1 + 4 + MAX_BODY;

/// Which kind of log an event belongs to; fixes how its body is read and who
/// may write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogKind {
    /// Device additions and revocations; shared with contacts.
    Account,
    /// Own devices only: contacts, trust, deletions, settings.
    SelfLog,
    /// A 1:1 conversation between two accounts.
    Conversation,
    /// A room: state and messages.
    Room,
    /// A conversation on another network through an own device's bridge;
    /// own devices only (see `node::bridged`).
    Bridged,
}

impl LogKind {
    fn code(self) -> u8 {
        match self {
            LogKind::Account => 1,
            LogKind::SelfLog => 2,
            LogKind::Conversation => 3,
            LogKind::Room => 4,
            LogKind::Bridged => 5,
        }
    }
    /// From the wire code.
    pub fn from_code(code: u8) -> Result<Self, WireError> {
        Ok(match code {
            1 => LogKind::Account,
            2 => LogKind::SelfLog,
            3 => LogKind::Conversation,
            4 => LogKind::Room,
            5 => LogKind::Bridged,
            _ => {
                return Err(WireError::Invalid {
                    what: "log kind",
                    why: "unknown code",
                });
            }
        })
    }
}

/// The signed part of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The log this event belongs to; `None` for a genesis event, which
    /// starts a new log whose id is the genesis event's id.
    pub log: Option<LogId>,
    /// The kind of that log.
    pub log_kind: LogKind,
    /// The signing key: a device (or, in an account log, its recovery key).
    pub author: DeviceId,
    /// The author's sequence number, increasing across all its events.
    pub seq: u64,
    /// The author's previous event in this log.
    pub prev: Option<EventId>,
    /// The heads this event was written on: strictly ascending.
    pub parents: Vec<EventId>,
    /// 0 without parents, else one more than the deepest parent.
    pub depth: u64,
    /// Claimed creation time, milliseconds since the Unix epoch.
    pub time: i64,
    /// What the body is, within the log kind.
    pub kind: u16,
    /// Length of the body in bytes.
    pub body_len: u32,
    /// BLAKE2b-256 of the body (domain `kith/v1/event-body`).
    pub body_hash: [u8; 32],
}

impl Header {
    /// The canonical bytes of this header.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(HEADER_VERSION)
            .option(self.log, |w, l| {
                w.fixed(l.as_bytes());
            })
            .u8(self.log_kind.code())
            .fixed(self.author.as_bytes())
            .u64(self.seq)
            .option(self.prev, |w, p| {
                w.fixed(p.as_bytes());
            });
        w.u16(self.parents.len() as u16);
        for p in &self.parents {
            w.fixed(p.as_bytes());
        }
        w.u64(self.depth)
            .i64(self.time)
            .u16(self.kind)
            .u32(self.body_len)
            .fixed(&self.body_hash);
        w.finish()
    }

    /// Reads a header, refusing anything that is not its canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_HEADER {
            return Err(WireError::TooLarge {
                what: "header",
                got: bytes.len() as u64,
                max: MAX_HEADER as u64,
            });
        }
        let mut r = Reader::new(bytes);
        if r.u8("header version")? != HEADER_VERSION {
            return Err(WireError::Invalid {
                what: "header version",
                why: "unsupported",
            });
        }
        let log = r.option("log id", |r| Ok(LogId::from_bytes(r.array("log id")?)))?;
        let log_kind = LogKind::from_code(r.u8("log kind")?)?;
        let author = DeviceId::from_bytes(r.array("author")?);
        let seq = r.u64("seq")?;
        let prev = r.option("prev", |r| Ok(EventId::from_bytes(r.array("prev")?)))?;
        let n = r.count(MAX_PARENTS, "parents")?;
        let mut parents = Vec::with_capacity(n);
        for _ in 0..n {
            parents.push(EventId::from_bytes(r.array("parent")?));
        }
        if parents.windows(2).any(|w| w[0] >= w[1]) {
            return Err(WireError::Invalid {
                what: "parents",
                why: "not strictly ascending",
            });
        }
        let header = Header {
            log,
            log_kind,
            author,
            seq,
            prev,
            parents,
            depth: r.u64("depth")?,
            time: r.i64("time")?,
            kind: r.u16("kind")?,
            body_len: r.u32("body length")?,
            body_hash: r.array("body hash")?,
        };
        r.finish("header")?;
        header.check_shape()?;
        Ok(header)
    }

    /// Rules that need nothing but the header itself.
    fn check_shape(&self) -> Result<(), WireError> {
        let invalid = |why| {
            Err(WireError::Invalid {
                what: "header",
                why,
            })
        };
        if self.body_len as usize > MAX_BODY {
            return Err(WireError::TooLarge {
                what: "body",
                got: u64::from(self.body_len),
                max: MAX_BODY as u64,
            });
        }
        if self.log.is_none() && !self.parents.is_empty() {
            return invalid("a genesis event has no parents");
        }
        if self.parents.is_empty() != (self.depth == 0) {
            return invalid("depth 0 exactly when there are no parents");
        }
        if self.prev.is_some() && self.seq == 0 {
            return invalid("seq 0 cannot follow a previous event");
        }
        if self.prev.is_some() && self.depth == 0 {
            return invalid("a depth-0 event has no previous event");
        }
        Ok(())
    }
}

/// A complete event: header bytes as signed, the signature, and the body if
/// this device holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    id: EventId,
    header: Header,
    header_bytes: Vec<u8>,
    signature: Signature,
    body: Option<Vec<u8>>,
}

/// Why an event's own bytes are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The encoding is wrong.
    #[error("malformed event: {0}")]
    Format(#[from] WireError),
    /// The signature does not verify for the author.
    #[error("signature does not verify for author {author}")]
    BadSignature {
        /// The claimed author.
        author: DeviceId,
    },
    /// The body does not match the header's length and hash.
    #[error("body does not match the hash in header {id}")]
    BodyMismatch {
        /// The event.
        id: EventId,
    },
}

/// What a new event is written on.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The log (`None` starts a new log).
    pub log: Option<LogId>,
    /// The log's kind.
    pub log_kind: LogKind,
    /// The author's sequence number.
    pub seq: u64,
    /// The author's previous event in this log.
    pub prev: Option<EventId>,
    /// Parents with their depths (at most [`MAX_PARENTS`] are cited).
    pub parents: Vec<(EventId, u64)>,
    /// Claimed time (ms since the epoch).
    pub time: i64,
    /// Body kind.
    pub kind: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Keeps at most `max` of a new event's parents: the deepest (then by id,
/// so every device would pick the same). The heads left out stay heads and
/// are cited by a later event; an event that cites more than
/// [`MAX_PARENTS`] would be refused by every peer.
pub fn cap_parents(parents: &mut Vec<(EventId, u64)>, max: usize) {
    if parents.len() <= max {
        return;
    }
    parents.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    parents.truncate(max);
}

impl Event {
    /// Signs a new event.
    /// It cites at most [`MAX_PARENTS`] of the draft's parents, the deepest
    /// (see [`cap_parents`]).
    pub fn sign(key: &SigningKey, draft: Draft) -> Self {
        let mut cited = draft.parents;
        cap_parents(&mut cited, MAX_PARENTS);
        let mut parents: Vec<EventId> = cited.iter().map(|(id, _)| *id).collect();
        parents.sort();
        parents.dedup();
        let depth = cited.iter().map(|(_, d)| d + 1).max().unwrap_or(0);
        let header = Header {
            log: draft.log,
            log_kind: draft.log_kind,
            author: key.verifying_key().into(),
            seq: draft.seq,
            prev: draft.prev,
            parents,
            depth,
            time: draft.time,
            kind: draft.kind,
            body_len: draft.body.len() as u32,
            body_hash: body_hash(&draft.body),
        };
        let header_bytes = header.encode();
        let signature = key.sign(SignDomain::EVENT, &header_bytes);
        Self {
            id: event_id(&header_bytes),
            header,
            header_bytes,
            signature,
            body: Some(draft.body),
        }
    }

    /// Reads an event from its wire form (format and bounds only; call
    /// [`Event::verify`] before trusting it).
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT {
            return Err(WireError::TooLarge {
                what: "event",
                got: bytes.len() as u64,
                max: MAX_EVENT as u64,
            }
            .into());
        }
        let mut r = Reader::new(bytes);
        if r.u8("event version")? != HEADER_VERSION {
            return Err(WireError::Invalid {
                what: "event version",
                why: "unsupported",
            }
            .into());
        }
        let header_bytes = r.bytes(MAX_HEADER, "header")?.to_vec();
        let signature = Signature::from_bytes(r.array("signature")?);
        let body = r.option("body", |r| Ok(r.bytes(MAX_BODY, "body")?.to_vec()))?;
        r.finish("event")?;
        Self::from_parts(header_bytes, signature, body)
    }

    /// Rebuilds an event from stored parts (format only).
    pub fn from_parts(
        header_bytes: Vec<u8>,
        signature: Signature,
        body: Option<Vec<u8>>,
    ) -> Result<Self, EventError> {
        let header = Header::decode(&header_bytes)?;
        Ok(Self {
            id: event_id(&header_bytes),
            header,
            header_bytes,
            signature,
            body,
        })
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(HEADER_VERSION)
            .bytes(&self.header_bytes)
            .fixed(self.signature.as_bytes())
            .option(self.body.as_deref(), |w, b| {
                w.bytes(b);
            });
        w.finish()
    }

    /// Checks the signature and, if present, the body against the header.
    pub fn verify(&self) -> Result<(), EventError> {
        self.header
            .author
            .verifying_key()
            .verify(SignDomain::EVENT, &self.header_bytes, &self.signature)
            .map_err(|_| EventError::BadSignature {
                author: self.header.author,
            })?;
        match &self.body {
            Some(body) => self.check_body(body),
            None => Ok(()),
        }
    }

    /// Whether `body` is the one this header commits to.
    pub fn check_body(&self, body: &[u8]) -> Result<(), EventError> {
        if body.len() != self.header.body_len as usize || body_hash(body) != self.header.body_hash {
            return Err(EventError::BodyMismatch { id: self.id });
        }
        Ok(())
    }

    /// The event id.
    pub fn id(&self) -> EventId {
        self.id
    }
    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The header bytes exactly as signed.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }
    /// The author's signature over the header bytes.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
    /// The body, unless deleted or not yet fetched.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }
    /// Drops the body, keeping the header as a tombstone.
    pub fn without_body(mut self) -> Self {
        self.body = None;
        self
    }
    /// The log this event belongs to (a genesis event's own id).
    pub fn log_id(&self) -> LogId {
        self.header
            .log
            .unwrap_or(LogId::from_bytes(*self.id.as_bytes()))
    }
}

/// An event whose signature (and body, if present) has been checked.
#[derive(Clone, Debug)]
pub struct Verified(Event);

impl Verified {
    /// Checks `event`.
    pub fn new(event: Event) -> Result<Self, EventError> {
        event.verify()?;
        Ok(Self(event))
    }
    /// Signs a new event ([`Event::sign`]): the signature is this
    /// device's own, made just now, so it is not checked again (a check
    /// costs more than the signing). Its header is read back as a peer
    /// reads it, so an event peers would refuse is refused here too.
    pub(crate) fn signed(key: &SigningKey, draft: Draft) -> Result<Self, EventError> {
        if draft.body.len() > MAX_BODY {
            return Err(WireError::TooLarge {
                what: "body",
                got: draft.body.len() as u64,
                max: MAX_BODY as u64,
            }
            .into());
        }
        let event = Event::sign(key, draft);
        Header::decode(event.header_bytes())?;
        Ok(Self(event))
    }
    /// The event.
    pub fn event(&self) -> &Event {
        &self.0
    }
    /// Gives the event back.
    pub fn into_inner(self) -> Event {
        self.0
    }
}

/// The id of a header: BLAKE2b-256 of its bytes (domain `kith/v1/event-id`).
pub fn event_id(header_bytes: &[u8]) -> EventId {
    EventId::from_bytes(hash(HashDomain::EVENT_ID, header_bytes))
}

/// The hash a header carries for its body.
pub fn body_hash(body: &[u8]) -> [u8; 32] {
    hash(HashDomain::BODY, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A room where many joined at once has more heads than an event may
    /// cite: a signed event cites the deepest `MAX_PARENTS`, and peers can
    /// read it (uncapped, its header would be refused).
    #[test]
    fn capped_parents_fit_an_event_peers_accept() {
        let key = SigningKey::generate();
        let heads: Vec<(EventId, u64)> = (0..60u8)
            .map(|i| (EventId::from_bytes([i; 32]), 5 + u64::from(i % 7)))
            .collect();
        let draft = |parents| Draft {
            log: Some(LogId::from_bytes([9; 32])),
            log_kind: LogKind::Room,
            seq: 1,
            prev: None,
            parents,
            time: 0,
            kind: 16,
            body: b"hi".to_vec(),
        };
        let wire = |e: &Event| e.encode();
        let mut capped = heads.clone();
        cap_parents(&mut capped, MAX_PARENTS);
        assert_eq!(capped.len(), MAX_PARENTS);
        let deepest = heads.iter().map(|(_, d)| *d).max().unwrap_or(0);
        assert!(capped.iter().any(|(_, d)| *d == deepest), "depth kept");
        let event = Event::sign(&key, draft(heads.clone()));
        assert_eq!(event.header().parents.len(), MAX_PARENTS);
        assert_eq!(event.header().depth, deepest + 1);
        let back = Event::decode(&wire(&event)).expect("a capped event decodes");
        assert_eq!(back.id(), event.id());

        // Every head cited: a header peers refuse.
        let mut too_many = event.header().clone();
        too_many.parents = heads.iter().map(|(id, _)| *id).collect();
        too_many.parents.sort();
        assert!(Header::decode(&too_many.encode()).is_err());
    }
}
