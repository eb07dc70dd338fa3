//! What clients send to `kith-named`, decoded: the `POST /v1/names` body
//! into the record's bytes. Called by the handler in `http.rs` and by the
//! fuzz target `named_request` (`fuzz/`).
//!
//! The body's JSON is read by axum's `Json` extractor, which checks the
//! content type and then runs `Json::<Submit>::from_bytes` (the fuzz
//! target runs that too). Not here: the record itself
//! (`node_core::names::NameRecord::verify`) and the lookup's handle
//! ([`lookup_handle`](crate::service::lookup_handle)), both checked by the
//! service.

use data_encoding::BASE64;
use serde::Deserialize;
use service_kit::ApiError;

/// A `POST /v1/names` body: `{"record": base64}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Submit {
    record: String,
}

impl Submit {
    /// The signed record, as bytes.
    pub fn record(&self) -> Result<Vec<u8>, ApiError> {
        BASE64
            .decode(self.record.as_bytes())
            .map_err(|_| ApiError::BadRequest("record: not base64".into()))
    }
}
