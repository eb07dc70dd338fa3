//! What `kith-mailboxd` decodes from a client before it touches its
//! store: the tokens and delete bodies (`request::token_changes`,
//! `deposit_ids`), the paging cursor, the mailbox id in the path, a prekey
//! slot and bundle (`service::check_prekeys`), the `Kith-Ttl` header and
//! the lifetime it gives (`request::ttl`, `service::deposit_ttl_ms`), and
//! the two `Authorization` headers (`service::verify_owner`,
//! `service::bearer`). The first byte picks which.
#![no_main]

use axum::http::HeaderValue;
use kith_mailboxd::request;
use kith_mailboxd::service::{
    MAX_PREKEY_BUNDLE, OwnerRequest, bearer, check_prekeys, deposit_ttl_ms, verify_owner,
};
use libfuzzer_sys::fuzz_target;
use node_core::crypto::SecretBytes;
use node_core::mailbox::{
    DeliveryToken, MAX_RETENTION_MS, MIN_RETENTION_MS, MailboxId, MailboxKey, TokenHash,
};
use node_core::wire;
use std::sync::LazyLock;

/// The mailbox whose owner requests are checked (the seed corpus holds a
/// request it signed).
static MAILBOX: LazyLock<MailboxId> =
    LazyLock::new(|| MailboxKey::from_seed(&SecretBytes::new([5; 32])).id());

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 8 {
        0 => {
            if let Ok(changes) = request::token_changes(rest) {
                assert_eq!(request::token_changes(rest).ok().as_ref(), Some(&changes));
                for hash in changes.add.iter().chain(&changes.remove) {
                    assert_eq!(hash.to_string().parse::<TokenHash>().ok(), Some(*hash));
                }
            }
        }
        1 => {
            if let Ok(ids) = request::deposit_ids(rest) {
                assert_eq!(request::deposit_ids(rest).ok().as_ref(), Some(&ids));
            }
        }
        2 => {
            if let Ok((ms, id)) = request::cursor(&text) {
                assert_eq!(id.len(), 16);
                // The form the server writes reads back the same.
                let written = format!("{ms}-{}", wire::to_base32(&id));
                assert_eq!(request::cursor(&written).ok(), Some((ms, id)));
            }
        }
        3 => {
            if let Ok(id) = request::mailbox_id(&text) {
                assert_eq!(request::mailbox_id(&id.to_string()).ok(), Some(id));
            }
        }
        4 => {
            if check_prekeys(&text, b"bundle").is_ok() {
                assert!((1..=64).contains(&text.len()));
            }
            if check_prekeys("slot-1", rest).is_ok() {
                assert!((1..=MAX_PREKEY_BUNDLE).contains(&rest.len()));
            }
        }
        5 => ttl(rest),
        6 => {
            let request = OwnerRequest {
                mailbox: &MAILBOX,
                authorization: Some(&text),
                method: "POST",
                path: "/v1/mailboxes/x",
                body: b"{}",
            };
            assert_eq!(verify_owner(&request).ok(), verify_owner(&request).ok());
        }
        _ => {
            if let Ok(hash) = bearer(Some(&text)) {
                let token = DeliveryToken::from_bearer(&text).map(|t| t.hash()).ok();
                assert_eq!(token, Some(hash));
            }
        }
    }
});

fn ttl(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let Ok(ttl) = request::ttl(Some(&value)) else {
        return;
    };
    for retention in [MIN_RETENTION_MS, MAX_RETENTION_MS] {
        let ms = deposit_ttl_ms(ttl, retention);
        assert!((1000..=retention).contains(&ms), "{ttl:?} → {ms}");
    }
}
