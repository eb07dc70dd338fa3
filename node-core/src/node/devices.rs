//! The account's devices: invite codes, joining, the device list,
//! revocation, and the addresses devices were last seen at.

use super::{Node, NodeError};
use crate::crypto::{SecretBytes, SigningKey, ct_eq};
use crate::id::{AccountId, DeviceId, EventId, LogId};
use crate::identity::AccountEntry;
use crate::identity::entry::{check_name, kind, verify_join};
use crate::store::{Passphrase, Profile};
use crate::sync::join::{INVITE_LIFETIME_MS, Invite};
use crate::wire::{Reader, Writer};
use std::net::SocketAddr;

/// Metadata key of the device address book.
pub(super) const META_DEVICE_HINTS: &str = "device_hints";
/// Store metadata: the relay each device was last reachable through.
pub(super) const META_DEVICE_RELAYS: &str = "device_relays";
/// Longest relay URL kept.
const MAX_RELAY_URL: usize = 256;
/// Most invite codes open at once.
const MAX_OPEN_INVITES: usize = 16;
/// Most addresses kept per device.
const MAX_HINTS_PER_DEVICE: usize = 8;

/// A device as `kith device list --json` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// Device id.
    pub id: DeviceId,
    /// Its name.
    pub name: String,
    /// `active` or `revoked`.
    pub state: String,
    /// Whether it is this device.
    pub current: bool,
}

/// What a joining device receives: the account log and the self log, in
/// wire form, parents first.
#[derive(Debug)]
pub struct JoinSnapshot {
    /// Account-log events.
    pub account: Vec<Vec<u8>>,
    /// Self-log events.
    pub self_log: Vec<Vec<u8>>,
}

/// Recovery-key entries the recovery path leaves unused when it revokes
/// again what a revoked device revoked: room to revoke a second stolen
/// device afterwards.
const RECOVERY_KEPT: usize = 8;

impl Node {
    /// Makes a one-time invite code for a new device of this account, valid
    /// for ten minutes; `hints` are where this device listens.
    pub fn invite(&mut self, hints: Vec<SocketAddr>, now: i64) -> Result<String, NodeError> {
        if !self.account_state()?.is_active(&self.device()) {
            return Err(NodeError::Revoked);
        }
        self.invites.retain(|(_, expires)| *expires > now);
        if self.invites.len() >= MAX_OPEN_INVITES {
            return Err(NodeError::Invalid(format!(
                "{MAX_OPEN_INVITES} invite codes are already open; use one or wait until they expire"
            )));
        }
        let invite = Invite {
            account: self.account,
            device: self.device(),
            hints: hints.into_iter().take(8).collect(),
            secret: SecretBytes::random(),
            expires: now + INVITE_LIFETIME_MS,
        };
        self.invites
            .push((SecretBytes::new(*invite.secret.as_bytes()), invite.expires));
        Ok(invite.to_code())
    }

    /// Adds `device` (authenticated by the join connection) to the account
    /// if `secret` is an open, unexpired invite and `join` proves it holds
    /// its key. The invite is used up; the add-device entry is written.
    /// Returns the account log and the self log for the new device.
    pub async fn accept_join(
        &mut self,
        device: DeviceId,
        secret: &SecretBytes<16>,
        name: &str,
        join: crate::crypto::Signature,
        now: i64,
    ) -> Result<JoinSnapshot, NodeError> {
        self.invites.retain(|(_, expires)| *expires > now);
        // Every open invite is compared, each in constant time.
        let mut found = None;
        for (i, (open, _)) in self.invites.iter().enumerate() {
            if ct_eq(open.as_bytes(), secret.as_bytes()) {
                found = Some(i);
            }
        }
        let Some(index) = found else {
            return Err(NodeError::Invalid(
                "the invite code is wrong, expired or already used".into(),
            ));
        };
        check_name(name).map_err(NodeError::BadName)?;
        if !verify_join(self.account, device, name, &join) {
            return Err(NodeError::Invalid(
                "the joining device did not prove it holds its key".into(),
            ));
        }
        let state = self.account_state()?;
        if state.devices.contains_key(&device) {
            return Err(NodeError::Invalid(
                "that device is already in this account".into(),
            ));
        }
        self.invites.remove(index);
        let body = AccountEntry::AddDevice {
            device,
            name: name.to_owned(),
            join,
        }
        .encode();
        self.append(LogId::account(self.account), kind::ADD_DEVICE, body, now)
            .await?;
        self.snapshot_for_join().await
    }

    async fn snapshot_for_join(&self) -> Result<JoinSnapshot, NodeError> {
        let all = |log: LogId| -> Vec<EventId> {
            self.logs
                .get(&log)
                .map(|d| d.ids().copied().collect())
                .unwrap_or_default()
        };
        let account_log = LogId::account(self.account);
        let self_log = LogId::self_log(self.account);
        Ok(JoinSnapshot {
            account: self.serve(account_log, &all(account_log)).await?,
            self_log: self.serve(self_log, &all(self_log)).await?,
        })
    }

    /// Makes the profile of a device that joined an account: `key` is the
    /// device key it proved, `snapshot` what the inviting device sent. The
    /// account log must list this device as active.
    pub async fn create_joined(
        profile: Profile,
        name: &str,
        passphrase: Option<&Passphrase>,
        key: SigningKey,
        invite: &Invite,
        snapshot: JoinSnapshot,
        now: i64,
    ) -> Result<Node, NodeError> {
        check_name(name).map_err(NodeError::BadName)?;
        let account = invite.account;
        let mut node = Node::new_profile(profile, name, passphrase, key, account, 1).await?;
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        node.ingest_batch(
            LogId::account(account),
            &snapshot.account,
            now,
            threads,
            None,
        )
        .await?;
        if !node
            .account_state()
            .is_ok_and(|s| s.is_active(&node.device()))
        {
            node.close().await;
            return Err(NodeError::Invalid(
                "the inviting device did not add this device to its account".into(),
            ));
        }
        node.ingest_batch(
            LogId::self_log(account),
            &snapshot.self_log,
            now,
            threads,
            None,
        )
        .await?;
        node.set_hints(invite.device, invite.hints.clone()).await?;
        Ok(node)
    }

    /// This account's devices, for `kith device list`.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, NodeError> {
        let state = self.account_state()?;
        let me = self.device();
        let mut out: Vec<DeviceInfo> = state
            .devices
            .iter()
            .map(|(id, d)| DeviceInfo {
                id: *id,
                name: d.name.clone(),
                state: if d.revoked.is_some() {
                    "revoked"
                } else {
                    "active"
                }
                .into(),
                current: *id == me,
            })
            .collect();
        out.sort_by_key(|d| state.devices.get(&d.id).map(|r| r.seniority));
        Ok(out)
    }

    /// Revokes one of this account's devices (by id, unique prefix of at
    /// least four characters, or name): its events after the last one we
    /// hold are rejected everywhere, and it receives nothing new.
    pub async fn revoke_device(&mut self, target: &str, now: i64) -> Result<DeviceId, NodeError> {
        let (device, entry) = self.revocation_of(target)?;
        let planned = self.planned_cuts(device);
        self.append(
            LogId::account(self.account),
            kind::REVOKE_DEVICE_CUT,
            entry,
            now,
        )
        .await?;
        self.write_cuts(device, planned, now).await;
        self.revoke_what_it_revoked(device, None, now).await;
        self.rotate_mailbox(now).await?;
        Ok(device)
    }

    /// After revoking `device`: what it revoked is revoked again, with this
    /// device's cut-offs and cuts (a thief who added a device and revoked
    /// it with the highest cut-off would otherwise keep that key writing).
    /// Where this device may not write (the thief revoked it too), it is
    /// left to another. A device already revoked with cuts at or below
    /// this device's cut-off is left alone. With `recovery` (the recovery
    /// path), the recovery key signs the revocations of the devices
    /// `device` itself added (its entries fit where this device's may not,
    /// in a log a thief filled), while a few of its entries are left; the
    /// others, the owner's own devices it revoked, are revoked again by
    /// this device (the recovery key's revocation would brand them a
    /// thief's and void their own revocations' cuts).
    async fn revoke_what_it_revoked(
        &mut self,
        device: DeviceId,
        recovery: Option<&SigningKey>,
        now: i64,
    ) {
        let log = LogId::account(self.account);
        for other in self.revoked_by(device) {
            let ours = self.cutoff_for(other);
            let Some(account) = self.accounts.get(&self.account) else {
                return;
            };
            let Ok(state) = account.state_ref() else {
                return;
            };
            let record = state.devices.get(&other);
            if record
                .and_then(|r| r.revoked)
                .is_some_and(|r| r.cuts && r.cutoff_seq <= ours)
            {
                continue;
            }
            let added_by_it = record.is_some_and(|r| {
                account
                    .events()
                    .any(|e| e.id() == r.added_in && e.header().author == device)
            });
            let room = account.events().count()
                < crate::identity::MAX_ACCOUNT_EVENTS
                    + crate::identity::RESERVED_ACCOUNT_EVENTS
                    + crate::identity::RECOVERY_ACCOUNT_EVENTS
                    - RECOVERY_KEPT;
            let planned = self.planned_cuts(other);
            let body = self.revocation_body(other);
            let done = match recovery {
                Some(key) if added_by_it && room => self.append_as_recovery(key, body, now).await,
                _ => self
                    .append(log, kind::REVOKE_DEVICE_CUT, body, now)
                    .await
                    .map(|_| ()),
            };
            match done {
                Ok(()) => self.write_cuts(other, planned, now).await,
                Err(e) => {
                    tracing::warn!(device = %other.short(12), error = %e, "could not revoke again what a revoked device revoked");
                }
            }
        }
    }

    /// [`Node::revoke_device`] signed by the account's offline recovery key
    /// instead of this device: it beats any concurrent revocation by a
    /// device (a thief's included).
    pub async fn revoke_device_with_recovery(
        &mut self,
        target: &str,
        code: &super::RecoveryCode,
        now: i64,
    ) -> Result<DeviceId, NodeError> {
        let key = SigningKey::from_seed(&code.0);
        let recovery = DeviceId::from(key.verifying_key());
        let state = self.account_state()?;
        if state.recovery.map(DeviceId::from) != Some(recovery) {
            return Err(NodeError::Invalid(
                "that is not this account's recovery code".into(),
            ));
        }
        let (device, body) = self.revocation_of(target)?;
        let planned = self.planned_cuts(device);
        self.append_as_recovery(&key, body, now).await?;
        self.write_cuts(device, planned, now).await;
        self.revoke_what_it_revoked(device, Some(&key), now).await;
        self.rotate_mailbox(now).await?;
        Ok(device)
    }

    /// Signs a revocation (`body`) with the recovery key and takes it in.
    /// Only valid entries are built on (see `AccountLog::frontier`): a
    /// discarded revocation by the thief, once an ancestor of this one,
    /// would count again.
    async fn append_as_recovery(
        &mut self,
        key: &SigningKey,
        body: Vec<u8>,
        now: i64,
    ) -> Result<(), NodeError> {
        let recovery = DeviceId::from(key.verifying_key());
        let log = LogId::account(self.account);
        let parents = self.account_parents(log);
        let dag = self.logs.get(&log).ok_or(NodeError::UnknownLog(log))?;
        let prev = dag.latest_by(&recovery);
        let seq = prev.and_then(|p| dag.node(&p)).map_or(1, |n| n.seq + 1);
        let parents = parents.unwrap_or_else(|| dag.heads().collect());
        let event = crate::log::Event::sign(
            key,
            crate::log::Draft {
                log: Some(log),
                log_kind: crate::log::LogKind::Account,
                seq,
                prev,
                parents,
                time: now,
                kind: kind::REVOKE_DEVICE_CUT,
                body,
            },
        );
        self.ingest_event(event, now, None).await?;
        Ok(())
    }

    /// The device `target` names and the revocation entry's body for it.
    fn revocation_of(&self, target: &str) -> Result<(DeviceId, Vec<u8>), NodeError> {
        let state = self.account_state()?;
        let t = target.trim();
        let lower = t.to_lowercase();
        let named = |(id, d): &(&DeviceId, &crate::identity::DeviceRecord)| {
            d.name == t || id.matches_prefix(&lower)
        };
        let mut matches: Vec<DeviceId> = state
            .active_devices()
            .filter(named)
            .map(|(id, _)| *id)
            .collect();
        // A revoked device may be revoked again (with this device's
        // cut-off and cuts): one a thief revoked itself, with a cut-off of
        // its choosing, is then cut off where the owner says.
        if matches.is_empty() {
            matches = state
                .devices
                .iter()
                .filter(|(_, d)| d.revoked.is_some())
                .filter(named)
                .map(|(id, _)| *id)
                .collect();
        }
        let device = match matches.as_slice() {
            [one] => *one,
            [] => {
                return Err(NodeError::Invalid(format!(
                    "no device of this account matches {t:?}"
                )));
            }
            many => {
                return Err(NodeError::Invalid(format!(
                    "{t:?} is ambiguous: {}",
                    many.iter()
                        .map(|d| d.short(12))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        if device == self.device() {
            return Err(NodeError::Invalid(
                "this is the current device; revoke it from another one".into(),
            ));
        }
        Ok((device, self.revocation_body(device)))
    }

    /// A revocation entry's body for `device`: its cut-off is the newest
    /// event by that device that we hold.
    fn revocation_body(&self, device: DeviceId) -> Vec<u8> {
        AccountEntry::RevokeDevice {
            device,
            cutoff_seq: self.cutoff_for(device),
            cuts: true,
        }
        .encode()
    }

    /// The cut-off this device gives `device`: its highest sequence
    /// number held here.
    fn cutoff_for(&self, device: DeviceId) -> u64 {
        self.logs
            .values()
            .filter_map(|dag| dag.latest_by(&device).and_then(|id| dag.node(&id)))
            .map(|n| n.seq)
            .max()
            .unwrap_or(0)
    }

    /// The devices `device` revoked (by the account log as held here, in
    /// entries conflict resolution kept), other than this one: their
    /// cut-offs were its choice. (A discarded revocation, such as a
    /// thief's of one of the owner's devices, revoked nothing.)
    fn revoked_by(&self, device: DeviceId) -> Vec<DeviceId> {
        let Some(log) = self.accounts.get(&self.account) else {
            return vec![];
        };
        let Ok(state) = log.state_ref() else {
            return vec![];
        };
        let mut out: Vec<DeviceId> = log
            .events()
            .filter(|e| e.header().author == device && !state.discarded.contains(&e.id()))
            .filter_map(|e| AccountEntry::decode(e.header().kind, e.body()?).ok())
            .filter_map(|entry| match entry {
                AccountEntry::RevokeDevice { device: d, .. } => Some(d),
                _ => None,
            })
            .filter(|d| *d != self.device() && *d != device)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The cuts to write when revoking `device` (see `crate::log::cut`):
    /// in every log where this device holds events of it, sent to whoever
    /// shares the log, citing every event of it that nothing cites yet (so
    /// all of them are the cut's ancestors, whichever branch a thief made).
    /// Chosen before the revocation: once it is in, that device's events
    /// count for nothing here (its room joins included) until the cut.
    fn planned_cuts(&self, device: DeviceId) -> Vec<PlannedCut> {
        let mut planned: Vec<PlannedCut> = self
            .logs
            .iter()
            .filter(|(_, dag)| dag.kind() != crate::log::LogKind::Account)
            .filter_map(|(log, dag)| {
                let head = dag.latest_by(&device)?;
                let mut cite: Vec<EventId> = dag
                    .leaves_by(&device)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                cite.sort();
                cite.retain(|id| *id != head);
                cite.insert(0, head);
                cite.truncate(crate::log::MAX_PARENTS / 2);
                let recipients: Vec<AccountId> = match self.rooms.get(log) {
                    Some(room) => {
                        let state = &room.resolved().state;
                        let mut to: Vec<AccountId> = state
                            .members
                            .iter()
                            .filter(|(a, m)| {
                                **a != self.account
                                    && matches!(
                                        m,
                                        crate::rooms::Membership::Join
                                            | crate::rooms::Membership::Invite
                                    )
                            })
                            .map(|(a, _)| *a)
                            .collect();
                        to.sort();
                        to
                    }
                    None => self.contact_of_conversation(*log).into_iter().collect(),
                };
                Some(PlannedCut {
                    log: *log,
                    head,
                    cite,
                    recipients,
                })
            })
            .collect();
        planned.sort_by_key(|p| p.log);
        planned
    }

    /// After revoking `device`: writes the planned cuts. A log where the cut
    /// cannot be written (this device may have been revoked by the thief,
    /// when the recovery key revokes) is skipped, never the revocation.
    async fn write_cuts(&mut self, device: DeviceId, planned: Vec<PlannedCut>, now: i64) {
        for p in planned {
            let body = crate::log::Cut {
                device,
                head: p.head,
            }
            .encode();
            if let Err(e) = self
                .append_citing(
                    p.log,
                    crate::log::CUT_KIND,
                    vec![body],
                    now,
                    &p.recipients,
                    &p.cite,
                )
                .await
            {
                tracing::warn!(log = %p.log.short(12), error = %e, "could not write a revocation's cut");
            }
        }
    }

    /// Whether this device has been revoked from its account.
    pub fn is_revoked(&self) -> bool {
        self.account_state()
            .is_ok_and(|s| s.devices.contains_key(&self.device()) && !s.is_active(&self.device()))
    }

    /// Remembers where `device` can be reached (its latest own report, or
    /// what a code or card said).
    pub async fn set_hints(
        &mut self,
        device: DeviceId,
        mut addrs: Vec<SocketAddr>,
    ) -> Result<(), NodeError> {
        addrs.sort();
        addrs.dedup();
        addrs.truncate(MAX_HINTS_PER_DEVICE);
        if device == self.device() || self.device_hints.get(&device) == Some(&addrs) {
            return Ok(());
        }
        if addrs.is_empty() {
            self.device_hints.remove(&device);
        } else {
            self.device_hints.insert(device, addrs);
        }
        let bytes = encode_hints(&self.device_hints);
        Ok(self.store.set_meta(&[(META_DEVICE_HINTS, &bytes)]).await?)
    }

    /// Remembers the relay `device` is reachable through (`None`: none).
    pub async fn set_relay_hint(
        &mut self,
        device: DeviceId,
        relay: Option<String>,
    ) -> Result<(), NodeError> {
        // The account's own relay (its `relay` setting) is trusted as set,
        // plain HTTP or not.
        let own = self.setting("relay").map(<[u8]>::to_vec);
        let relay = relay.filter(|r| {
            r.len() <= MAX_RELAY_URL && (relay_hint_ok(r) || own.as_deref() == Some(r.as_bytes()))
        });
        if device == self.device() || self.device_relays.get(&device) == relay.as_ref() {
            return Ok(());
        }
        match relay {
            Some(r) => self.device_relays.insert(device, r),
            None => self.device_relays.remove(&device),
        };
        let mut w = Writer::new();
        w.u16(self.device_relays.len().min(u16::MAX as usize) as u16);
        for (d, r) in self.device_relays.iter().take(u16::MAX as usize) {
            w.fixed(d.as_bytes()).str(r);
        }
        Ok(self
            .store
            .set_meta(&[(META_DEVICE_RELAYS, &w.finish())])
            .await?)
    }

    /// The relay to try for `device`: its own latest report, else (for a
    /// contact's device) a relay URL its account's card gave.
    pub fn relay_of(&self, device: &DeviceId) -> Option<String> {
        if let Some(r) = self.device_relays.get(device) {
            return Some(r.clone());
        }
        // Before the contact's account log arrives, its card is all there is.
        let contact = match self.account_of_device(device) {
            Some(account) => self.contacts.get(&account)?,
            None => self
                .contacts
                .values()
                .find(|c| c.card.devices.contains(device))?,
        };
        contact
            .card
            .hints
            .iter()
            .find(|h| h.starts_with("http://") || h.starts_with("https://"))
            .cloned()
    }

    /// Known relays of this account's other active devices.
    pub fn own_device_relays(&self) -> Vec<(DeviceId, String)> {
        let Ok(state) = self.account_state() else {
            return vec![];
        };
        state
            .active_devices()
            .filter(|(d, _)| **d != self.device())
            .filter_map(|(d, _)| self.device_relays.get(d).map(|r| (*d, r.clone())))
            .collect()
    }

    /// Known addresses of this account's other active devices.
    pub fn own_device_hints(&self) -> Vec<(DeviceId, Vec<SocketAddr>)> {
        let Ok(state) = self.account_state() else {
            return vec![];
        };
        state
            .active_devices()
            .filter(|(d, _)| **d != self.device())
            .filter_map(|(d, _)| self.device_hints.get(d).map(|h| (*d, h.clone())))
            .collect()
    }

    /// Where `device` was last known to listen.
    pub fn hints_of(&self, device: &DeviceId) -> Vec<SocketAddr> {
        self.device_hints.get(device).cloned().unwrap_or_default()
    }
}

fn encode_hints(hints: &std::collections::BTreeMap<DeviceId, Vec<SocketAddr>>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(hints.len().min(u16::MAX as usize) as u16);
    for (d, addrs) in hints.iter().take(u16::MAX as usize) {
        w.fixed(d.as_bytes()).u16(addrs.len() as u16);
        for a in addrs {
            w.str(&a.to_string());
        }
    }
    w.finish()
}

/// Reads the stored relay book (what does not parse is dropped).
pub(super) fn decode_relays(bytes: &[u8]) -> std::collections::BTreeMap<DeviceId, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut r = Reader::new(bytes);
    let Ok(n) = r.u16("devices") else {
        return out;
    };
    for _ in 0..n {
        let (Ok(d), Ok(url)) = (r.array::<32>("device"), r.str(MAX_RELAY_URL, "relay")) else {
            break;
        };
        out.insert(DeviceId::from_bytes(d), url.to_owned());
    }
    out
}

/// Reads the stored address book (what does not parse is dropped).
pub(super) fn decode_hints(bytes: &[u8]) -> std::collections::BTreeMap<DeviceId, Vec<SocketAddr>> {
    let mut out = std::collections::BTreeMap::new();
    let mut r = Reader::new(bytes);
    let Ok(n) = r.u16("devices") else {
        return out;
    };
    for _ in 0..n {
        let Ok(d) = r.array::<32>("device") else {
            break;
        };
        let Ok(k) = r.count(MAX_HINTS_PER_DEVICE, "addresses") else {
            break;
        };
        let mut addrs = Vec::new();
        for _ in 0..k {
            match r.str(128, "address").map(str::parse::<SocketAddr>) {
                Ok(Ok(a)) => addrs.push(a),
                Ok(Err(_)) => {}
                Err(_) => return out,
            }
        }
        out.insert(DeviceId::from_bytes(d), addrs);
    }
    out
}

/// Whether a relay URL a peer gave may be dialled: `https://`, or plain
/// `http://` only to this machine (a test or a relay beside the daemon).
/// A plain-HTTP relay elsewhere would let anyone on the path see and
/// steer the relay traffic.
pub fn relay_hint_ok(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A cut to write after a revocation (see [`Node::planned_cuts`]).
struct PlannedCut {
    log: LogId,
    head: EventId,
    cite: Vec<EventId>,
    recipients: Vec<AccountId>,
}

#[cfg(test)]
mod relay_tests {
    use super::relay_hint_ok;

    #[test]
    fn plain_http_relays_only_on_this_machine() {
        for ok in [
            "https://relay.example.org",
            "http://127.0.0.1:3340",
            "http://[::1]:3340/",
            "http://localhost:80",
        ] {
            assert!(relay_hint_ok(ok), "{ok}");
        }
        for bad in [
            "http://relay.example.org",
            "http://10.0.0.1:3340",
            "http://127.0.0.1.evil.org/",
            "http://localhost.evil.org",
            "ftp://x",
            "",
        ] {
            assert!(!relay_hint_ok(bad), "{bad}");
        }
    }
}
