//! The account logs a node follows, and the device index derived from
//! them. Every mutable access moves a generation, so the index (which
//! account lists a device, and as active) is rebuilt when, and only when,
//! the logs may have changed: lookups that scanned every followed account
//! for every event are one hash lookup, and never stale.

use crate::id::{AccountId, DeviceId};
use crate::identity::AccountLog;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Followed account logs, by account.
#[derive(Debug)]
pub(crate) struct Accounts {
    map: BTreeMap<AccountId, AccountLog>,
    /// Moves on every mutable access to `map`.
    generation: u64,
    /// The index for `generation`, once asked for.
    index: Mutex<Option<Arc<DeviceIndex>>>,
}

/// Which followed account lists each device (the first in account order,
/// as a scan in that order would find it).
#[derive(Debug, Default)]
pub(crate) struct DeviceIndex {
    generation: u64,
    /// The first account whose log lists the device, revoked or not.
    listed: HashMap<DeviceId, AccountId>,
    /// The first account whose log lists the device as active.
    active: HashMap<DeviceId, AccountId>,
}

impl DeviceIndex {
    /// The account whose log lists `device`, revoked or not.
    pub(crate) fn listing(&self, device: &DeviceId) -> Option<AccountId> {
        self.listed.get(device).copied()
    }

    /// The account whose log lists `device` as active.
    pub(crate) fn active(&self, device: &DeviceId) -> Option<AccountId> {
        self.active.get(device).copied()
    }
}

impl Accounts {
    /// The account logs in `map`.
    pub(crate) fn new(map: BTreeMap<AccountId, AccountLog>) -> Self {
        Self {
            map,
            generation: 0,
            index: Mutex::new(None),
        }
    }

    /// The logs, to change: the device index is rebuilt before it is next
    /// read.
    pub(crate) fn map_mut(&mut self) -> &mut BTreeMap<AccountId, AccountLog> {
        self.generation += 1;
        &mut self.map
    }

    /// Moves whenever the logs may have changed.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The device index for the logs as they are now.
    pub(crate) fn index(&self) -> Arc<DeviceIndex> {
        let mut cached = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(index) = cached.as_ref().filter(|i| i.generation == self.generation) {
            return Arc::clone(index);
        }
        let mut index = DeviceIndex {
            generation: self.generation,
            ..Default::default()
        };
        for (account, log) in &self.map {
            let Ok(state) = log.state_ref() else {
                continue;
            };
            for device in state.devices.keys() {
                index.listed.entry(*device).or_insert(*account);
                if state.is_active(device) {
                    index.active.entry(*device).or_insert(*account);
                }
            }
        }
        let index = Arc::new(index);
        *cached = Some(Arc::clone(&index));
        index
    }
}

impl std::ops::Deref for Accounts {
    type Target = BTreeMap<AccountId, AccountLog>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}
