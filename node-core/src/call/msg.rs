//! Control messages on a call connection: one frame each, on the
//! connection's first stream (the media goes in datagrams beside it).

use crate::id::DeviceId;
use crate::wire::{Reader, WireError, Writer};
use std::fmt;

/// A call's id: random, made by the caller, the same on every device the
/// call reaches.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub [u8; 16]);

impl CallId {
    /// A new random id.
    pub fn random() -> Self {
        CallId(crate::crypto::random_bytes())
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({self})")
    }
}

impl std::str::FromStr for CallId {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        let bad = WireError::Invalid {
            what: "call id",
            why: "not 32 hex digits",
        };
        let s = s.trim();
        if s.len() != 32 || !s.is_ascii() {
            return Err(bad);
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad.clone())?;
        }
        Ok(CallId(out))
    }
}

/// Why a call ended, as the device that ends it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Hung up.
    Hangup,
    /// No one answered in time.
    NoAnswer,
    /// A device of the callee declined.
    Declined,
    /// Another device of the callee took the call.
    Taken(DeviceId),
    /// The caller gave up before anyone answered.
    Cancelled,
    /// The other side's call moved to its device named here (to the
    /// device that asked to move its side away: the move is done).
    Moved(DeviceId),
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallMsg {
    /// Caller → callee device: a call, with video or not.
    Offer {
        /// The call.
        call: CallId,
        /// Whether the caller sends video.
        video: bool,
    },
    /// Callee device → caller: it rings.
    Ringing(CallId),
    /// Callee device → caller: already in a call.
    Busy(CallId),
    /// Callee device → caller: the user answered here.
    Answer {
        /// The call.
        call: CallId,
        /// Whether this device sends video.
        video: bool,
    },
    /// Caller → the callee device whose answer won: the call is on.
    Accepted(CallId),
    /// Either way: the call is over (or, to a callee device, over for it).
    End {
        /// The call.
        call: CallId,
        /// Why.
        why: Ended,
    },
    /// Caller → callee device after the connection was lost and made
    /// again (or a device a call moved to → the other side): carry on with
    /// this call.
    Resume(CallId),
    /// A device in the call → the other side: this side of the call goes
    /// to my own device `to` (which will dial and resume).
    Move {
        /// The call.
        call: CallId,
        /// The device taking this side over (of the sender's account).
        to: DeviceId,
    },
    /// A device in a call → another device of its own account, the first
    /// frame of a call connection between them: take over my side of
    /// this call (answered `Accepted` or `Busy`).
    Handover(Handover),
    /// A device in a call → another device of its own account, the only
    /// frame of a call connection between them: this call with `contact`
    /// is on at the sending device (so the others can say so).
    Elsewhere {
        /// The call.
        call: CallId,
        /// The contact at the other end.
        contact: crate::id::AccountId,
    },
}

/// What a device taking over a call needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    /// The call.
    pub call: CallId,
    /// The device at the other end.
    pub peer: DeviceId,
    /// Whether this side is the caller (who writes the call's record).
    pub caller: bool,
    /// Whether the call has video.
    pub video: bool,
    /// How long the call has been on, in milliseconds.
    pub elapsed_ms: u64,
    /// The callee's device that answered (for the record).
    pub answered_by: DeviceId,
}

mod tag {
    pub const OFFER: u8 = 1;
    pub const RINGING: u8 = 2;
    pub const BUSY: u8 = 3;
    pub const ANSWER: u8 = 4;
    pub const ACCEPTED: u8 = 5;
    pub const END: u8 = 6;
    pub const RESUME: u8 = 7;
    pub const MOVE: u8 = 8;
    pub const HANDOVER: u8 = 9;
    pub const ELSEWHERE: u8 = 10;
}

mod why {
    pub const HANGUP: u8 = 1;
    pub const NO_ANSWER: u8 = 2;
    pub const DECLINED: u8 = 3;
    pub const TAKEN: u8 = 4;
    pub const CANCELLED: u8 = 5;
    pub const MOVED: u8 = 6;
}

fn flag(r: &mut Reader<'_>, what: &'static str) -> Result<bool, WireError> {
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Invalid {
            what,
            why: "not 0 or 1",
        }),
    }
}

impl CallMsg {
    /// The call the message is about.
    pub fn call(&self) -> CallId {
        match self {
            CallMsg::Offer { call, .. }
            | CallMsg::Answer { call, .. }
            | CallMsg::End { call, .. }
            | CallMsg::Ringing(call)
            | CallMsg::Busy(call)
            | CallMsg::Accepted(call)
            | CallMsg::Resume(call)
            | CallMsg::Move { call, .. }
            | CallMsg::Handover(Handover { call, .. })
            | CallMsg::Elsewhere { call, .. } => *call,
        }
    }

    /// The frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            CallMsg::Offer { call, video } => {
                w.u8(tag::OFFER).fixed(&call.0).u8(u8::from(*video));
            }
            CallMsg::Ringing(call) => {
                w.u8(tag::RINGING).fixed(&call.0);
            }
            CallMsg::Busy(call) => {
                w.u8(tag::BUSY).fixed(&call.0);
            }
            CallMsg::Answer { call, video } => {
                w.u8(tag::ANSWER).fixed(&call.0).u8(u8::from(*video));
            }
            CallMsg::Accepted(call) => {
                w.u8(tag::ACCEPTED).fixed(&call.0);
            }
            CallMsg::End { call, why: reason } => {
                w.u8(tag::END).fixed(&call.0);
                match reason {
                    Ended::Hangup => w.u8(why::HANGUP),
                    Ended::NoAnswer => w.u8(why::NO_ANSWER),
                    Ended::Declined => w.u8(why::DECLINED),
                    Ended::Taken(device) => w.u8(why::TAKEN).fixed(device.as_bytes()),
                    Ended::Cancelled => w.u8(why::CANCELLED),
                    Ended::Moved(device) => w.u8(why::MOVED).fixed(device.as_bytes()),
                };
            }
            CallMsg::Resume(call) => {
                w.u8(tag::RESUME).fixed(&call.0);
            }
            CallMsg::Move { call, to } => {
                w.u8(tag::MOVE).fixed(&call.0).fixed(to.as_bytes());
            }
            CallMsg::Handover(h) => {
                w.u8(tag::HANDOVER)
                    .fixed(&h.call.0)
                    .fixed(h.peer.as_bytes())
                    .u8(u8::from(h.caller))
                    .u8(u8::from(h.video))
                    .u64(h.elapsed_ms)
                    .fixed(h.answered_by.as_bytes());
            }
            CallMsg::Elsewhere { call, contact } => {
                w.u8(tag::ELSEWHERE)
                    .fixed(&call.0)
                    .fixed(contact.as_bytes());
            }
        }
        w.finish()
    }

    /// Reads a frame: every byte accounted for, nothing unknown accepted.
    pub fn decode(frame: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(frame);
        let t = r.u8("call message")?;
        let call = CallId(r.array("call id")?);
        let msg = match t {
            tag::OFFER => CallMsg::Offer {
                call,
                video: flag(&mut r, "video")?,
            },
            tag::RINGING => CallMsg::Ringing(call),
            tag::BUSY => CallMsg::Busy(call),
            tag::ANSWER => CallMsg::Answer {
                call,
                video: flag(&mut r, "video")?,
            },
            tag::ACCEPTED => CallMsg::Accepted(call),
            tag::END => {
                let reason = match r.u8("end reason")? {
                    why::HANGUP => Ended::Hangup,
                    why::NO_ANSWER => Ended::NoAnswer,
                    why::DECLINED => Ended::Declined,
                    why::TAKEN => Ended::Taken(DeviceId::from_bytes(r.array("device")?)),
                    why::CANCELLED => Ended::Cancelled,
                    why::MOVED => Ended::Moved(DeviceId::from_bytes(r.array("device")?)),
                    _ => {
                        return Err(WireError::Invalid {
                            what: "end reason",
                            why: "unknown",
                        });
                    }
                };
                CallMsg::End { call, why: reason }
            }
            tag::RESUME => CallMsg::Resume(call),
            tag::MOVE => CallMsg::Move {
                call,
                to: DeviceId::from_bytes(r.array("device")?),
            },
            tag::HANDOVER => CallMsg::Handover(Handover {
                call,
                peer: DeviceId::from_bytes(r.array("device")?),
                caller: flag(&mut r, "caller")?,
                video: flag(&mut r, "video")?,
                elapsed_ms: r.u64("elapsed")?,
                answered_by: DeviceId::from_bytes(r.array("device")?),
            }),
            tag::ELSEWHERE => CallMsg::Elsewhere {
                call,
                contact: crate::id::AccountId::from_bytes(r.array("account")?),
            },
            _ => {
                return Err(WireError::Invalid {
                    what: "call message",
                    why: "unknown tag",
                });
            }
        };
        r.finish("call message")?;
        Ok(msg)
    }
}
