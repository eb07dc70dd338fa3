//! Sync messages and their encoding. Every count and size a peer sends is
//! bounded here, before anything is allocated for it.

use crate::id::{AccountId, DeviceId, EventId, LogId};
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
/// Most heads in `Begin` or `Heads`; a log with more is reconciled with
/// negentropy straight away.
pub const MAX_HEADS: usize = 64;
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
    /// Dialer → listener: start syncing a log; these are my heads.
    Begin {
        /// The log.
        log: LogId,
        /// The dialer's heads (at most [`MAX_HEADS`]).
        heads: Vec<EventId>,
    },
    /// Listener → dialer: I do not hold all your heads; these are mine
    /// (`None`: too many to list, reconcile).
    Heads {
        /// The log.
        log: LogId,
        /// The listener's heads (at most [`MAX_HEADS`]).
        heads: Option<Vec<EventId>>,
    },
    /// Listener → dialer: you now hold everything I hold (the events you
    /// lacked came just before this).
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
    /// Where the sending device can be reached.
    Hints {
        /// `ip:port` strings.
        addrs: Vec<String>,
    },
    /// Where another device of the sender's account was last seen (peer
    /// exchange: contacts learn how to reach a newly linked device).
    DeviceHints {
        /// The device.
        device: DeviceId,
        /// `ip:port` strings.
        addrs: Vec<String>,
    },
    /// The sender holds these new events (a room's, offered rather than
    /// pushed): the receiver asks with `Want` for those it still lacks a
    /// moment later.
    Have {
        /// The log.
        log: LogId,
        /// Event ids.
        ids: Vec<EventId>,
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
    pub const HEADS: u8 = 12;
    pub const DEVICE_HINTS: u8 = 13;
    pub const HAVE: u8 = 14;
}

impl Msg {
    /// The frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Msg::Hello { version, account } => {
                w.u8(tag::HELLO).u16(*version).fixed(account.as_bytes());
            }
            Msg::Begin { log, heads } => encode_ids(w.u8(tag::BEGIN), log, heads),
            Msg::Heads { log, heads } => match heads {
                Some(heads) => encode_ids(w.u8(tag::HEADS).u8(1), log, heads),
                None => {
                    w.u8(tag::HEADS).u8(0).fixed(log.as_bytes());
                }
            },
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
                w.u8(tag::HINTS);
                encode_addrs(&mut w, addrs);
            }
            Msg::DeviceHints { device, addrs } => {
                w.u8(tag::DEVICE_HINTS).fixed(device.as_bytes());
                encode_addrs(&mut w, addrs);
            }
            Msg::Have { log, ids } => encode_ids(w.u8(tag::HAVE), log, ids),
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
            tag::BEGIN => {
                let (log, heads) = decode_ids(&mut r, MAX_HEADS, "heads")?;
                Msg::Begin { log, heads }
            }
            tag::HEADS => match r.u8("heads flag")? {
                0 => Msg::Heads {
                    log: log(&mut r)?,
                    heads: None,
                },
                1 => {
                    let (log, heads) = decode_ids(&mut r, MAX_HEADS, "heads")?;
                    Msg::Heads {
                        log,
                        heads: Some(heads),
                    }
                }
                _ => {
                    return Err(WireError::Invalid {
                        what: "heads flag",
                        why: "not 0 or 1",
                    });
                }
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
                let (log, ids) = decode_ids(&mut r, MAX_IDS, "ids")?;
                if t == tag::WANT {
                    Msg::Want { log, ids }
                } else {
                    Msg::Ack { log, ids }
                }
            }
            tag::SYNCED => Msg::Synced { log: log(&mut r)? },
            tag::RESYNC => Msg::Resync,
            tag::HINTS => Msg::Hints {
                addrs: decode_addrs(&mut r)?,
            },
            tag::DEVICE_HINTS => Msg::DeviceHints {
                device: DeviceId::from_bytes(r.array("device")?),
                addrs: decode_addrs(&mut r)?,
            },
            tag::HAVE => {
                let (log, ids) = decode_ids(&mut r, MAX_IDS, "ids")?;
                Msg::Have { log, ids }
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

fn encode_addrs(w: &mut Writer, addrs: &[String]) {
    w.u16(addrs.len() as u16);
    for a in addrs {
        w.str(a);
    }
}

fn decode_addrs(r: &mut Reader<'_>) -> Result<Vec<String>, WireError> {
    let n = r.count(MAX_HINTS, "hints")?;
    (0..n).map(|_| Ok(r.str(128, "hint")?.to_owned())).collect()
}

fn decode_ids(
    r: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<(LogId, Vec<EventId>), WireError> {
    let log = LogId::from_bytes(r.array("log id")?);
    let n = r.count(max, what)?;
    let ids = (0..n)
        .map(|_| Ok(EventId::from_bytes(r.array("event id")?)))
        .collect::<Result<_, WireError>>()?;
    Ok((log, ids))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ids(n: usize) -> Vec<EventId> {
        (0..n).map(|i| EventId::from_bytes([i as u8; 32])).collect()
    }

    #[test]
    fn every_message_round_trips() {
        let log = LogId::from_bytes([3; 32]);
        let all = [
            Msg::Hello {
                version: SYNC_VERSION,
                account: AccountId::from_bytes([1; 32]),
            },
            Msg::Begin { log, heads: ids(3) },
            Msg::Begin { log, heads: vec![] },
            Msg::Heads {
                log,
                heads: Some(ids(MAX_HEADS)),
            },
            Msg::Heads { log, heads: None },
            Msg::Same { log },
            Msg::Recon {
                log,
                recon: vec![1, 2, 3],
            },
            Msg::Refuse { log },
            Msg::Events {
                log,
                events: vec![vec![9; 10], vec![]],
            },
            Msg::Want { log, ids: ids(2) },
            Msg::Ack { log, ids: ids(1) },
            Msg::Synced { log },
            Msg::Resync,
            Msg::Hints {
                addrs: vec!["127.0.0.1:5".into()],
            },
            Msg::DeviceHints {
                device: DeviceId::from_bytes([8; 32]),
                addrs: vec!["[::1]:7".into()],
            },
            Msg::Have { log, ids: ids(3) },
        ];
        for m in all {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn counts_and_flags_are_bounded() {
        let log = LogId::from_bytes([3; 32]);
        let too_many = Msg::Begin {
            log,
            heads: ids(MAX_HEADS + 1),
        };
        assert!(matches!(
            Msg::decode(&too_many.encode()),
            Err(WireError::TooLarge { .. })
        ));
        let mut bad_flag = Msg::Heads { log, heads: None }.encode();
        bad_flag[1] = 2;
        assert!(Msg::decode(&bad_flag).is_err());
        let mut trailing = Msg::Same { log }.encode();
        trailing.push(0);
        assert!(Msg::decode(&trailing).is_err());
        assert!(Msg::decode(&[99]).is_err());
    }
}
