//! Cuts: what a revocation vouches for, log by log.
//!
//! A thief who holds a revoked device's key can sign events with sequence
//! numbers the device never used at or below its cut-off. Nothing in such
//! an event tells it apart from one the device wrote before it was lost.
//! So the device that revokes writes, in each log where it holds events of
//! the revoked device, a *cut*: an event that names the revoked device's
//! last event there and cites it, and every other event of that device
//! that nothing cites, as parents. The revoked device's events that are
//! ancestors of a cut (one by a device of the account that revoked it) are
//! vouched for; every other event of that device at or below its cut-off
//! is kept only as structure: stored and passed on (what others built on
//! it stays whole), never shown, never applied, never built on. A cut is private to the
//! log's holders (the public account log names no logs).
//!
//! A genuine event the revoking device had not received is kept as
//! structure too: it cannot be told apart from a thief's.

use crate::id::{DeviceId, EventId};
use crate::wire::{Reader, WireError, Writer};

/// The body kind of a cut in self, conversation and room logs.
pub const CUT_KIND: u16 = 64;

/// A cut's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The revoked device (of the cut's author's account).
    pub device: DeviceId,
    /// Its last event in this log; one of the cut's parents (the cut
    /// vouches for all its ancestors by the device).
    pub head: EventId,
}

impl Cut {
    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(self.device.as_bytes()).fixed(self.head.as_bytes());
        w.finish()
    }

    /// Reads a body, refusing anything else.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let cut = Cut {
            device: DeviceId::from_bytes(r.array("cut device")?),
            head: EventId::from_bytes(r.array("cut head")?),
        };
        r.finish("cut")?;
        Ok(cut)
    }
}
