//! Relay URLs (`node_core::relay_tls::parse_params` through
//! `transport::parse_relay`), as a contact's hints name them: read within
//! bounds, never a panic; what is accepted has a host and a port that can
//! be used, and its token never survives redaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::relay_tls::{parse_params, redacted};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shown = redacted(text);
    if let Some(i) = shown.find("token=") {
        let after = &shown[i + "token=".len()..];
        assert!(after.starts_with('…'), "{shown}");
    }
    let Ok(params) = parse_params(text) else {
        return;
    };
    assert!(!params.host.is_empty() && params.host.len() <= 253);
    assert_ne!(params.quic_port, 0);
    let _ = node_core::transport::parse_relay(text);
});
