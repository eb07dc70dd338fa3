//! A stanza from the XMPP network, as the bridge reads it
//! (`kith_bridge::xmpp::read_stanza`): anyone on that network can send one.
//! Whatever the bytes, the reading gives bounded text, names and ids and
//! never panics.
#![no_main]

use kith_bridge::{Incoming, MAX_CONTACTS, MAX_FIELD, MAX_TEXT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let groups = ["room@muc.example.org"];
    for event in kith_bridge::xmpp::read_stanza("me@example.org", "me", &groups, data) {
        match event {
            Incoming::Message(m) => {
                assert!(m.text.len() <= MAX_TEXT);
                assert!(m.sender.len() <= MAX_FIELD);
                assert!(m.id.is_none_or(|i| i.len() <= MAX_FIELD));
                assert!(!m.group || m.chat == "room@muc.example.org");
            }
            Incoming::Contacts(list) => {
                assert!(list.len() <= MAX_CONTACTS);
                assert!(list.iter().all(|c| c.address.len() <= MAX_FIELD
                    && c.name.as_ref().is_none_or(|n| n.len() <= MAX_FIELD)));
            }
            Incoming::Delivered { id, .. } | Incoming::Failed { id, .. } => {
                assert!(id.len() <= MAX_FIELD)
            }
            _ => {}
        }
    }
});
