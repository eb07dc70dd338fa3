//! Sync messages and their encoding. Every count and size a peer sends is
//! bounded here, before anything is allocated for it.

use crate::id::{AccountId, EventId, LogId};
use crate::log::event::MAX_EVENT;
use crate::wire::{Reader, WireError, Writer};

/// The sync protocol version carried in `Hello` (and the ALPN).
pub const SYNC_VERSION: u16 = 1;
/// Largest frame on a link, in bytes.
pub const MAX_FRAME: usize = 1 << 20;
/// Most event ids in one `Want` or `Ack`.
pub const MAX_IDS: usize = 4096;
/// Most events in one `Events` message.
pub const MAX_EVENTS: usize = 1024;
/// Largest negentropy message.
pub const MAX_RECON: usize = 256 * 1024;
/// Most address hints in one `Hints` message.
pub const MAX_HINTS: usize = 32;

/// One message on a sync link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// First message each way: protocol version and account.
    Hello {
        /// Protocol version.
        version: u16,
        /// The sender's account.
        account: AccountId,
    },
    /// Dialer → listener: start reconciling a log.
    Begin {
        /// The log.
        log: LogId,
        /// Summary of the dialer's heads.
        digest: [u8; 32],
        /// The first negentropy message.
        recon: Vec<u8>,
    },
    /// Listener → dialer: same heads, nothing to do.
    Same {
        /// The log.
        log: LogId,
    },
    /// A negentropy round, either way.
    Recon {
        /// The log.
        log: LogId,
        /// The negentropy message.
        recon: Vec<u8>,
    },
    /// Listener → dialer: this log is not shared with you.
    Refuse {
        /// The log.
        log: LogId,
    },
    /// Events (wire form), parents before children.
    Events {
        /// The log.
        log: LogId,
        /// Encoded events.
        events: Vec<Vec<u8>>,
    },
    /// Please send these events.
    Want {
        /// The log.
        log: LogId,
        /// Event ids.
        ids: Vec<EventId>,
    },
    /// These events are stored (or were already held) here.
    Ack {
        /// The log.
        log: LogId,
        /// Event ids.
        ids: Vec<EventId>,
    },
    /// Dialer → listener: I now hold everything you held when we began.
    Synced {
        /// The log.
        log: LogId,
    },
    /// Listener → dialer: I fell behind on pushes; please reconcile again.
    Resync,
    /// Where devices can be reached (peer exchange).
    Hints {
        /// `ip:port` strings.
        addrs: Vec<String>,
    },
}

mod tag {
    pub const HELLO: u8 = 1;
    pub const BEGIN: u8 = 2;
    pub const SAME: u8 = 3;
    pub const RECON: u8 = 4;
    pub const REFUSE: u8 = 5;
    pub const EVENTS: u8 = 6;
    pub const WANT: u8 = 7;
    pub const ACK: u8 = 8;
    pub const SYNCED: u8 = 9;
    pub const HINTS: u8 = 10;
    pub const RESYNC: u8 = 11;
}

impl Msg {
    /// The frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Msg::Hello { version, account } => {
                w.u8(tag::HELLO).u16(*version).fixed(account.as_bytes());
            }
            Msg::Begin { log, digest, recon } => {
                w.u8(tag::BEGIN)
                    .fixed(log.as_bytes())
                    .fixed(digest)
                    .bytes(recon);
            }
            Msg::Same { log } => {
                w.u8(tag::SAME).fixed(log.as_bytes());
            }
            Msg::Recon { log, recon } => {
                w.u8(tag::RECON).fixed(log.as_bytes()).bytes(recon);
            }
            Msg::Refuse { log } => {
                w.u8(tag::REFUSE).fixed(log.as_bytes());
            }
            Msg::Events { log, events } => {
                w.u8(tag::EVENTS)
                    .fixed(log.as_bytes())
                    .u16(events.len() as u16);
                for e in events {
                    w.bytes(e);
                }
            }
            Msg::Want { log, ids } => encode_ids(w.u8(tag::WANT), log, ids),
            Msg::Ack { log, ids } => encode_ids(w.u8(tag::ACK), log, ids),
            Msg::Synced { log } => {
                w.u8(tag::SYNCED).fixed(log.as_bytes());
            }
            Msg::Resync => {
                w.u8(tag::RESYNC);
            }
            Msg::Hints { addrs } => {
                w.u8(tag::HINTS).u16(addrs.len() as u16);
                for a in addrs {
                    w.str(a);
                }
            }
        }
        w.finish()
    }

    /// Reads a frame payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_FRAME {
            return Err(WireError::TooLarge {
                what: "frame",
                got: bytes.len() as u64,
                max: MAX_FRAME as u64,
            });
        }
        let mut r = Reader::new(bytes);
        let log = |r: &mut Reader<'_>| Ok::<_, WireError>(LogId::from_bytes(r.array("log id")?));
        let msg = match r.u8("message tag")? {
            tag::HELLO => Msg::Hello {
                version: r.u16("version")?,
                account: AccountId::from_bytes(r.array("account")?),
            },
            tag::BEGIN => Msg::Begin {
                log: log(&mut r)?,
                digest: r.array("digest")?,
                recon: r.bytes(MAX_RECON, "reconciliation")?.to_vec(),
            },
            tag::SAME => Msg::Same { log: log(&mut r)? },
            tag::RECON => Msg::Recon {
                log: log(&mut r)?,
                recon: r.bytes(MAX_RECON, "reconciliation")?.to_vec(),
            },
            tag::REFUSE => Msg::Refuse { log: log(&mut r)? },
            tag::EVENTS => {
                let log = log(&mut r)?;
                let n = r.count(MAX_EVENTS, "events")?;
                let events = (0..n)
                    .map(|_| Ok(r.bytes(MAX_EVENT, "event")?.to_vec()))
                    .collect::<Result<_, WireError>>()?;
                Msg::Events { log, events }
            }
            t @ (tag::WANT | tag::ACK) => {
                let log = log(&mut r)?;
                let n = r.count(MAX_IDS, "ids")?;
                let ids = (0..n)
                    .map(|_| Ok(EventId::from_bytes(r.array("event id")?)))
                    .collect::<Result<_, WireError>>()?;
                if t == tag::WANT {
                    Msg::Want { log, ids }
                } else {
                    Msg::Ack { log, ids }
                }
            }
            tag::SYNCED => Msg::Synced { log: log(&mut r)? },
            tag::RESYNC => Msg::Resync,
            tag::HINTS => {
                let n = r.count(MAX_HINTS, "hints")?;
                let addrs = (0..n)
                    .map(|_| Ok(r.str(128, "hint")?.to_owned()))
                    .collect::<Result<_, WireError>>()?;
                Msg::Hints { addrs }
            }
            _ => {
                return Err(WireError::Invalid {
                    what: "message tag",
                    why: "unknown",
                });
            }
        };
        r.finish("message")?;
        Ok(msg)
    }
}

fn encode_ids(w: &mut Writer, log: &LogId, ids: &[EventId]) {
    w.fixed(log.as_bytes()).u16(ids.len() as u16);
    for id in ids {
        w.fixed(id.as_bytes());
    }
}
