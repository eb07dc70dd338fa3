//! Contact requests (`requests::ContactRequest`), sent by any device that
//! reaches this one on the request link — strangers included. Decoded,
//! re-encoded (one encoding per value) and checked as a device would
//! check one from its sender.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_core::requests::{
    ContactRequest, How, MAX_ACCOUNT_EVENTS, MAX_HANDLE, MAX_MESSAGE, MAX_MESSAGES,
};
use node_core::{AccountId, DeviceId};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ContactRequest::decode(data) else {
        return;
    };
    assert!(req.messages.len() <= MAX_MESSAGES);
    assert!(req.messages.iter().all(|m| m.len() <= MAX_MESSAGE));
    assert!(req.account_log.len() <= MAX_ACCOUNT_EVENTS);
    if let How::Nameserver(h) = &req.how {
        assert!(h.len() <= MAX_HANDLE);
    }
    assert_eq!(req.encode(), data);
    // Checked against the card's signer (the device a link would prove).
    if let Ok(card) = node_core::identity::Card::parse(&req.card) {
        let _ = req.verify(card.signer, AccountId::from_bytes([0; 32]), &req.account_log);
    }
    let _ = req.verify(DeviceId::from_bytes([0; 32]), AccountId::from_bytes([0; 32]), &[]);
});
