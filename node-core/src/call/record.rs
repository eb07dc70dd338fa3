//! A call as the conversation remembers it: one event of kind
//! `conversation_kind::CALL`, written by the caller's device when the call
//! ends, so the history is the same on every device of both people. It
//! says how the call went and for how long; never anything of its media.

use super::msg::CallId;
use crate::id::DeviceId;
use crate::wire::{Reader, WireError, Writer};

/// How a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (on `answered_by`), then ended.
    Answered,
    /// No one answered in time.
    Missed,
    /// A callee device declined.
    Declined,
    /// Every callee device was in another call.
    Busy,
    /// The caller gave up before an answer.
    Cancelled,
    /// No callee device could be reached, or the link was lost before an
    /// answer.
    Failed,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Outcome::Answered => 1,
            Outcome::Missed => 2,
            Outcome::Declined => 3,
            Outcome::Busy => 4,
            Outcome::Cancelled => 5,
            Outcome::Failed => 6,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Outcome::Answered,
            2 => Outcome::Missed,
            3 => Outcome::Declined,
            4 => Outcome::Busy,
            5 => Outcome::Cancelled,
            6 => Outcome::Failed,
            _ => return None,
        })
    }

    /// The word `kith log` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Missed => "missed",
            Outcome::Declined => "declined",
            Outcome::Busy => "busy",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed => "failed",
        }
    }
}

/// The longest call a record may claim (a peer's record is shown, so its
/// numbers are bounded): 30 days.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3600 * 1000;

/// One call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call.
    pub call: CallId,
    /// Whether the caller offered video.
    pub video: bool,
    /// How it went.
    pub outcome: Outcome,
    /// The callee device that answered (with [`Outcome::Answered`] only).
    pub answered_by: Option<DeviceId>,
    /// From the answer to the end, in milliseconds (0 unless answered).
    pub duration_ms: u64,
}

impl CallRecord {
    /// The event body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&self.call.0)
            .u8(u8::from(self.video))
            .u8(self.outcome.code());
        match self.answered_by {
            Some(d) => w.u8(1).fixed(d.as_bytes()),
            None => w.u8(0),
        };
        w.u64(self.duration_ms);
        w.finish()
    }

    /// Reads a body (a peer's: strict, bounded).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let call = CallId(r.array("call id")?);
        let video = match r.u8("video")? {
            0 => false,
            1 => true,
            _ => {
                return Err(WireError::Invalid {
                    what: "video",
                    why: "not 0 or 1",
                });
            }
        };
        let outcome = Outcome::from_code(r.u8("outcome")?).ok_or(WireError::Invalid {
            what: "outcome",
            why: "unknown",
        })?;
        let answered_by = match r.u8("answered by")? {
            0 => None,
            1 => Some(DeviceId::from_bytes(r.array("device")?)),
            _ => {
                return Err(WireError::Invalid {
                    what: "answered by",
                    why: "not 0 or 1",
                });
            }
        };
        let duration_ms = r.u64("duration")?;
        r.finish("call record")?;
        if duration_ms > MAX_DURATION_MS {
            return Err(WireError::TooLarge {
                what: "call duration",
                got: duration_ms,
                max: MAX_DURATION_MS,
            });
        }
        if (outcome == Outcome::Answered) != answered_by.is_some()
            || (outcome != Outcome::Answered && duration_ms != 0)
        {
            return Err(WireError::Invalid {
                what: "call record",
                why: "an answering device and a duration belong to answered calls only",
            });
        }
        Ok(Self {
            call,
            video,
            outcome,
            answered_by,
            duration_ms,
        })
    }

    /// One line for `kith log`.
    pub fn describe(&self) -> String {
        let what = if self.video { "video call" } else { "call" };
        match (self.outcome, self.answered_by) {
            (Outcome::Answered, Some(device)) => {
                let secs = self.duration_ms / 1000;
                format!(
                    "[{what}] answered on {}, {}:{:02}",
                    device.short(8),
                    secs / 60,
                    secs % 60
                )
            }
            (outcome, _) => format!("[{what}] {}", outcome.as_str()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_lies_are_refused() {
        let answered = CallRecord {
            call: CallId([1; 16]),
            video: true,
            outcome: Outcome::Answered,
            answered_by: Some(DeviceId::from_bytes([2; 32])),
            duration_ms: 65_000,
        };
        assert_eq!(CallRecord::decode(&answered.encode()), Ok(answered.clone()));
        assert!(
            answered.describe().ends_with("1:05"),
            "{}",
            answered.describe()
        );
        let missed = CallRecord {
            call: CallId([1; 16]),
            video: false,
            outcome: Outcome::Missed,
            answered_by: None,
            duration_ms: 0,
        };
        assert_eq!(CallRecord::decode(&missed.encode()), Ok(missed.clone()));
        assert_eq!(missed.describe(), "[call] missed");
        // A missed call with a duration, an answered one with no device, a
        // duration past the bound, trailing bytes: refused.
        let lie = CallRecord {
            duration_ms: 5,
            ..missed.clone()
        };
        assert!(CallRecord::decode(&lie.encode()).is_err());
        let lie = CallRecord {
            answered_by: None,
            ..answered.clone()
        };
        assert!(CallRecord::decode(&lie.encode()).is_err());
        let lie = CallRecord {
            duration_ms: MAX_DURATION_MS + 1,
            ..answered.clone()
        };
        assert!(CallRecord::decode(&lie.encode()).is_err());
        let mut long = missed.encode();
        long.push(0);
        assert!(CallRecord::decode(&long).is_err());
        assert!(CallRecord::decode(&[]).is_err());
    }
}
