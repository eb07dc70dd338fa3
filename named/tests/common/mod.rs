//! An account with one device, as the client would have it, for signing
//! name records in the API tests and the lookup benchmark.

#![allow(dead_code, clippy::unwrap_used)]

use node_core::crypto::SigningKey;
use node_core::identity::{AccountEntry, Card};
use node_core::log::{Draft, Event, LogKind};
use node_core::names::{Handle, NameAction, NameRecord};
use node_core::{AccountId, DeviceId};

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An account with one device, as the client would have it.
pub struct Account {
    pub key: SigningKey,
    pub id: AccountId,
    pub log: Vec<Event>,
}

impl Account {
    pub fn new(name: &str) -> Self {
        let key = SigningKey::generate();
        let genesis = Event::sign(
            &key,
            Draft {
                log: None,
                log_kind: LogKind::Account,
                seq: 1,
                prev: None,
                parents: vec![],
                time: now(),
                kind: node_core::identity::entry::kind::GENESIS,
                body: AccountEntry::Genesis {
                    account_name: name.into(),
                    device_name: name.into(),
                    recovery: None,
                }
                .encode(),
            },
        );
        Self {
            key,
            id: AccountId::from_bytes(*genesis.id().as_bytes()),
            log: vec![genesis],
        }
    }

    pub fn card(&self) -> String {
        let device = DeviceId::from(self.key.verifying_key());
        Card::sign(
            &self.key,
            &Card {
                account: self.id,
                name: "someone".into(),
                signer: device,
                devices: vec![device],
                hints: vec![],
                issued: now(),
            },
        )
    }

    pub fn bind(&self, handle: &str, issued: i64) -> Vec<u8> {
        let handle: Handle = handle.parse().unwrap();
        let action = NameAction::Bind { card: self.card() };
        NameRecord::sign(&self.key, &handle, self.id, &action, issued, &self.log)
    }

    pub fn release(&self, handle: &str, issued: i64) -> Vec<u8> {
        let handle: Handle = handle.parse().unwrap();
        NameRecord::sign(
            &self.key,
            &handle,
            self.id,
            &NameAction::Release,
            issued,
            &self.log,
        )
    }
}
