//! `kith-mailboxd` as a library: every module of the server, for its
//! binary (`main.rs`, which only reads the settings and runs
//! [`server::run`]) and for code outside the crate that must reach its
//! request decoders directly: the fuzz targets (`fuzz/`, see
//! `docs/fuzzing.md`).

#![warn(missing_docs)]

pub mod config;
pub mod http;
pub mod relay;
pub mod request;
pub mod server;
pub mod service;
pub mod store;
