//! What `kith-pushd` decodes from a client before it touches its store:
//! the register, unregister and wake bodies (`request::register`,
//! `unregister`, `wake`: JSON, the platform → target mapping, sender device
//! ids, the handle, the nonce), what registering then checks of the target
//! (`service::check_registration`: tokens, the WebPush endpoint, key and
//! auth secret), the endpoint and key parsers on their own, and the
//! `Authorization` header (`request::signer`). The first byte picks which.
#![no_main]

use kith_pushd::push::{is_public, subscriber_auth, subscriber_key, webpush_endpoint};
use kith_pushd::request;
use kith_pushd::service::check_registration;
use kith_pushd::store::Target;
use libfuzzer_sys::fuzz_target;
use node_core::DeviceId;
use node_core::push::PushHandle;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => register(rest),
        1 => {
            if let Ok(issued) = request::unregister(rest) {
                assert_eq!(request::unregister(rest).ok(), Some(issued));
            }
        }
        2 => wake(rest),
        3 => endpoint(&String::from_utf8_lossy(rest)),
        _ => {
            let header = String::from_utf8_lossy(rest);
            let first = request::signer(&header, "POST", "/v1/wake", b"{}").ok();
            let again = request::signer(&header, "POST", "/v1/wake", b"{}").ok();
            assert_eq!(first, again);
        }
    }
});

fn register(body: &[u8]) {
    let Ok(req) = request::register(body) else {
        return;
    };
    assert_eq!(request::register(body).ok().as_ref(), Some(&req));
    for sender in &req.senders {
        assert_eq!(sender.to_string().parse::<DeviceId>().ok(), Some(*sender));
    }
    let public = check_registration(&req, false);
    let local = check_registration(&req, true);
    // Allowing local endpoints (tests only) never refuses more.
    if public.is_ok() {
        assert!(local.is_ok());
    }
    if local.is_err() {
        return;
    }
    match &req.target {
        Target::Apns { token } => assert!(token.bytes().all(|b| b.is_ascii_hexdigit())),
        Target::Fcm { token } => assert!(!token.is_empty()),
        Target::WebPush {
            endpoint,
            p256dh,
            auth,
        } => {
            // What was accepted is what each push reads again.
            assert!(webpush_endpoint(endpoint, true).is_ok());
            if public.is_ok() {
                assert!(webpush_endpoint(endpoint, false).is_ok());
            }
            assert!(subscriber_key(p256dh).is_some());
            assert!(subscriber_auth(auth).is_some());
        }
    }
}

fn wake(body: &[u8]) {
    let Ok(wake) = request::wake(body) else {
        return;
    };
    assert_eq!(request::wake(body).ok().as_ref(), Some(&wake));
    assert_eq!(
        wake.handle.to_string().parse::<PushHandle>().ok(),
        Some(wake.handle)
    );
}

fn endpoint(text: &str) {
    let strict = webpush_endpoint(text, false);
    let relaxed = webpush_endpoint(text, true);
    if let Ok(uri) = &strict {
        assert_eq!(relaxed.as_ref().ok(), Some(uri));
        assert_eq!(uri.scheme_str(), Some("https"));
        if let Some(Ok(ip)) = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').parse())
        {
            assert!(is_public(ip), "{text}");
        }
    }
    let _ = subscriber_key(text);
    let _ = subscriber_auth(text);
}
