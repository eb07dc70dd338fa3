//! Identity: devices, accounts and contact cards.
//!
//! A device is an Ed25519 key made on the device and never copied; an
//! account is the account log that its devices sign (genesis, additions
//! signed by both sides, revocations). Contact cards carry an account's
//! devices and address hints.
//!
//! Not here: trust states and safety numbers (the self log's business, a
//! later part), and transport keys.

pub mod account;
pub mod card;
pub mod entry;
pub mod members;

pub use account::{
    AccountError, AccountLog, AccountState, DeviceRecord, MAX_ACCOUNT_EVENTS,
    RECOVERY_ACCOUNT_EVENTS, RESERVED_ACCOUNT_EVENTS, Revocation,
};
pub use card::{Card, CardError};
pub use entry::{AccountEntry, join_message, sign_join, verify_join};
pub use members::Members;
