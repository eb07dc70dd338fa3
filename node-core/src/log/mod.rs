//! Signed, hash-linked event logs: the event format, one log's DAG with its
//! validation pipeline and display order, and the hooks through which each
//! log kind (account, self, conversation, room) adds its own rules.
//!
//! Not here: storage (see `store`), what travels between devices (`sync`),
//! and the account log's own rules (`identity::account`).

pub mod cut;
pub mod dag;
pub mod event;

pub use cut::{CUT_KIND, Cut};
pub use dag::{Accepted, AllowAll, Dag, DagConfig, NodeInfo, Offer, Rejection, Rules, Status};
pub use event::{Draft, Event, EventError, Header, LogKind, MAX_PARENTS, Verified, cap_parents};
