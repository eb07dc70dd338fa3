//! `node_core`: everything a kith device does.
//!
//! The pure protocol parts (crypto, identity, event logs, wire encoding) build
//! without the `node` feature so the helper servers can check identities and
//! signatures without pulling in the store or the runtime.
//!
//! Not in this crate: the command line, the terminal UI and the daemon's local
//! socket protocol (those live in the `kith` client), and the helper servers.
#![warn(missing_docs)]

pub mod call;
pub mod crypto;
pub mod dht;
pub mod file_offer;
pub mod id;
pub mod identity;
pub mod lan;
pub mod log;
pub mod mailbox;
pub mod names;
pub mod push;
pub mod requests;
pub mod rooms;
pub mod sync;
pub mod wire;

#[cfg(feature = "node")]
pub mod files;
#[cfg(feature = "node")]
pub mod node;
pub mod relay_tls;
#[cfg(feature = "node")]
pub mod store;
#[cfg(feature = "node")]
pub mod transport;

pub use id::{AccountId, DeviceId, EventId, LogId};
