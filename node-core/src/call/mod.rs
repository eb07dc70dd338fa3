//! Calls between two people, device to device: the control messages on a
//! call connection ([`msg`]) and the pure state machine of one call on one
//! device ([`machine`]), fed messages, local commands and the time, giving
//! back what to send and what the call now is, and the record of a call
//! its conversation keeps ([`record`]). Media is not here
//! (`kith-media`); neither are sockets or logs (the daemon carries the
//! machine's effects out).
//!
//! The caller dials every online device of the callee with its own QUIC
//! connection (ALPN `kith/call/1`) and offers the call on each. Every
//! callee device rings; the first to answer takes the call (the caller
//! tells it so, and tells the others who took it, so they stop ringing
//! and say where it was answered); a decline on any device declines the
//! call. No answer within [`machine::RING_FOR`] ends it as missed. A link
//! lost mid-call may come back within [`machine::RESUME_FOR`]; after that
//! the call ends on both sides.
//!
//! Either side may move its end of the call to another of its own
//! devices: it hands the call over (`Handover`, on a call connection
//! between the two own devices), tells the other side (`Move`), and the
//! device taking over dials the other side and resumes the call there;
//! the other side then switches its media to the new device and tells the
//! old one the move is done (`End(Moved)`).
//!
//! Conferences in rooms ([`conf`]) are a mesh of such connections
//! (ALPN `kith/conf/1`) between the participants, announced by room events,
//! each participant's frames sealed under its own sender key.

pub mod conf;
pub mod machine;
pub mod msg;
pub mod record;

pub use machine::{Call, CallState, Command, Effect, EndReason};
pub use msg::{CallId, CallMsg, Handover};
pub use record::{CallRecord, Outcome};
