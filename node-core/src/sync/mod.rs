//! Log sync between two devices: messages (and the file transfer frames
//! that travel beside them, `file_msg`), and the session state machine
//! (pure: fed messages, it returns actions; the async driver in the client
//! daemon carries them out over a transport link).
//!
//! Not here: sockets (`transport`), the store, or deciding whom to dial.

pub mod file_msg;
pub mod join;
pub mod message;
pub mod session;

pub use message::{MAX_FRAME, MAX_IDS, Msg, SYNC_VERSION};
pub use session::{Action, Role, Session, SyncError, View, events_messages, msg_log};
