//! What `kith-named` decodes from a client before it touches its store:
//! the `POST /v1/names` body as its `Json` extractor reads it
//! (`Json::<Submit>::from_bytes`, then the base64 record), the record
//! (`NameRecord::verify`, also the `name_record` target) and what is
//! checked of it without the store (`service::check_record`: domain and
//! freshness); and the handle of a lookup (`service::lookup_handle`). The
//! first byte picks which.
#![no_main]

use axum::Json;
use kith_named::request::Submit;
use kith_named::service::{check_record, lookup_handle};
use libfuzzer_sys::fuzz_target;
use node_core::names::{DomainName, MAX_RECORD_SKEW_MS, NameRecord};
use std::sync::LazyLock;

/// The server's domain; the seed corpus holds records for it.
static DOMAIN: LazyLock<DomainName> =
    LazyLock::new(|| "example.org".parse().expect("a valid domain"));
/// "Now" for the freshness check: when the seed records were issued.
const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 2 {
        0 => submit(rest),
        _ => {
            if let Ok(handle) = lookup_handle(&String::from_utf8_lossy(rest)) {
                assert_eq!(lookup_handle(&handle.to_string()).ok(), Some(handle));
            }
        }
    }
});

fn submit(body: &[u8]) {
    let Ok(Json(submit)) = Json::<Submit>::from_bytes(body) else {
        return;
    };
    let Ok(bytes) = submit.record() else {
        return;
    };
    let Ok(record) = NameRecord::verify(&bytes, &[]) else {
        return;
    };
    assert_eq!(record.bytes, bytes);
    if check_record(&record, &DOMAIN, NOW_MS).is_ok() {
        assert_eq!(record.handle.domain(), &*DOMAIN);
        assert!(record.issued.abs_diff(NOW_MS) <= MAX_RECORD_SKEW_MS.unsigned_abs());
    }
}
