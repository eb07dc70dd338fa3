//! Handles (`name@domain`) and domain names, typed by people and read from
//! name records and lookups: normalisation must be stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::names::{DomainName, Handle, MAX_DOMAIN, MAX_LOCAL_CHARS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(domain) = text.parse::<DomainName>() {
        assert!(domain.as_str().len() <= MAX_DOMAIN);
        assert_eq!(domain.as_str().parse::<DomainName>().ok(), Some(domain));
    }
    let Ok(handle) = text.parse::<Handle>() else {
        return;
    };
    assert!(handle.local().chars().count() <= MAX_LOCAL_CHARS);
    // Normal form is a fixed point: parsing it again gives the same handle.
    let shown = handle.to_string();
    assert_eq!(
        shown.parse::<Handle>().ok().as_ref(),
        Some(&handle),
        "{shown:?}"
    );
    let _ = handle.skeleton();
});
