//! What the mailbox and push servers read from request headers and bodies
//! before anything else: owner request signatures, delivery tokens, token
//! hashes, mailbox ids, signed prekeys, and the push relay's device
//! signatures. The first byte picks which.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::crypto::SecretBytes;
use node_core::mailbox::{
    DeliveryToken, MailboxId, MailboxKey, SignedPrekey, TokenHash, verify_request,
};
use std::sync::LazyLock;

/// The mailbox whose owner requests are checked (the seed corpus holds
/// requests it signed, so the fuzzer starts from ones that verify).
static MAILBOX: LazyLock<MailboxId> =
    LazyLock::new(|| MailboxKey::from_seed(&SecretBytes::new([5; 32])).id());

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 6 {
        0 => {
            if let Ok(prekey) = SignedPrekey::decode(rest) {
                assert_eq!(prekey.encode(), rest);
                let _ = prekey.usable_at(i64::MIN);
                let _ = prekey.usable_at(i64::MAX);
            }
        }
        1 => {
            if let Ok(token) = DeliveryToken::from_bearer(&text) {
                let again = DeliveryToken::from_bearer(&token.bearer());
                assert_eq!(again.map(|t| *t.as_bytes()).ok(), Some(*token.as_bytes()));
            }
        }
        2 => {
            if let Ok(hash) = text.parse::<TokenHash>() {
                assert_eq!(hash.to_string().parse::<TokenHash>().ok(), Some(hash));
            }
        }
        3 => {
            if let Ok(id) = text.parse::<MailboxId>() {
                assert_eq!(id.to_string().parse::<MailboxId>().ok(), Some(id));
            }
        }
        4 => {
            let _ = verify_request(&MAILBOX, &text, "POST", "/v1/mailboxes/x", b"{}");
        }
        _ => {
            let _ = node_core::push::verify_request(&text, "POST", "/v1/wake", b"{}");
        }
    }
});
