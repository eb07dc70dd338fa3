//! The device's side of the mailbox: the account's mailbox setting, the
//! delivery tokens it grants contacts, this device's prekeys, and turning
//! outbox events into deposits and deposits back into events.
//!
//! - **Setting** (self log, name `mailbox`): the server URL and the mailbox
//!   key's seed, so every own device can collect. Empty: off.
//! - **Grants** (1:1 conversation, kind [`conversation_kind::MAILBOX_GRANT`]):
//!   the URL, mailbox id and the delivery token for that contact. Tokens are
//!   derived from the mailbox seed (through its own derived key) and the
//!   contact's account, so every own
//!   device grants the same token without coordinating. A grant with an
//!   empty URL withdraws. The newest grant (by depth, author, id) counts.
//! - **Prekeys** (store metadata, encrypted with the rest of the store):
//!   made every [`PREKEY_ROTATE_MS`]; a replaced one's private half is kept
//!   [`PREKEY_KEEP_MS`] longer (a sender may still seal to it until its
//!   bundle is 14 days old, and the deposit may then wait on a server for
//!   [`MAX_RETENTION_MS`]), then deleted. With the mailbox off the current
//!   one is retired too.
//!
//! Not here: HTTP (the daemon's `mailbox.rs`) and the sealing format
//! (`crate::mailbox`).

use std::collections::BTreeMap;

use super::contacts::RegisterKey;
use super::messages::conversation_kind;
use super::{Node, NodeError};
use crate::crypto::{self, BoxPublicKey, BoxSecretKey, SecretBytes};
use crate::id::{AccountId, DeviceId, LogId};
use crate::log::Event;
use crate::mailbox::{
    DeliveryToken, MAX_RETENTION_MS, MailboxId, MailboxKey, PREKEY_ROTATE_MS, SignedPrekey,
};
use crate::wire::{Reader, Writer};

/// The self-log setting holding the mailbox URL and key.
pub const SETTING_MAILBOX: &str = "mailbox";
/// Store metadata: this device's prekeys.
const META_PREKEYS: &str = "mailbox_prekeys";
/// Longest mailbox URL.
pub const MAX_URL: usize = 512;
/// Most prekeys a device keeps (rotation every 2 days, kept 21 days after).
const MAX_PREKEYS: usize = 16;
/// How long a replaced prekey's private half is kept: a sender may still
/// seal to it while its bundle is at most [`crate::mailbox::PREKEY_MAX_AGE_MS`]
/// old (it was made up to a rotation before it was replaced, so it can be
/// used until 12 days after), and the deposit may then wait
/// [`MAX_RETENTION_MS`] on the server.
pub const PREKEY_KEEP_MS: i64 =
    crate::mailbox::PREKEY_MAX_AGE_MS - PREKEY_ROTATE_MS + MAX_RETENTION_MS;

/// The account's mailbox, as the setting holds it.
pub struct MailboxSetting {
    /// The server.
    pub url: String,
    /// The mailbox key (shared by own devices).
    pub key: MailboxKey,
}

impl MailboxSetting {
    /// The delivery token `contact` gets: `BLAKE2b(key = K, contact
    /// account)`, where K is the mailbox seed's key for tokens (derived
    /// with `crypto_kdf`, so the Ed25519 seed itself is never a MAC key);
    /// the same on every own device.
    pub fn token_for(&self, contact: AccountId) -> DeliveryToken {
        let key = crypto::derive_key(&self.key.seed(), crypto::KdfPurpose::MAILBOX_TOKENS);
        let mut bytes = crypto::blake2b(contact.as_bytes(), Some(key.as_bytes()), 32);
        let mut token = SecretBytes::new([0u8; 32]);
        token.expose_mut().copy_from_slice(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        DeliveryToken::from_bytes(token)
    }

    /// The grant `contact` gets for this mailbox.
    fn grant_for(&self, contact: AccountId) -> Vec<u8> {
        encode_grant(&self.url, &self.key.id(), &self.token_for(contact))
    }
}

impl std::fmt::Debug for MailboxSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxSetting")
            .field("url", &self.url)
            .field("mailbox", &self.key.id())
            .finish_non_exhaustive()
    }
}

/// Where a contact lets us deposit.
#[derive(Debug)]
pub struct Grant {
    /// The server.
    pub url: String,
    /// The contact's mailbox.
    pub mailbox: MailboxId,
    /// Our token for it.
    pub token: DeliveryToken,
}

/// Grants seen in conversations: (contact, whether we wrote it) → newest.
pub(super) type Grants = BTreeMap<(AccountId, bool), (RegisterKey, Vec<u8>)>;

/// One of this device's prekeys.
struct Prekey {
    created_ms: i64,
    /// When a newer one replaced it (`None`: current).
    retired_ms: Option<i64>,
    secret: BoxSecretKey,
}

/// Keeps `body` as the grant of `side` if it is newer than the one kept.
pub(super) fn keep_newest(
    grants: &mut Grants,
    side: (AccountId, bool),
    by: RegisterKey,
    body: &[u8],
) {
    match grants.get(&side) {
        Some((old, _)) if *old >= by => {}
        _ => {
            grants.insert(side, (by, body.to_vec()));
        }
    }
}

fn encode_grant(url: &str, mailbox: &MailboxId, token: &DeliveryToken) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(url).fixed(mailbox.as_bytes()).fixed(token.as_bytes());
    w.finish()
}

fn decode_grant(body: &[u8]) -> Option<Grant> {
    let mut r = Reader::new(body);
    let url = r.str(MAX_URL, "url").ok()?;
    if url.is_empty() {
        return None;
    }
    let mailbox = MailboxId::from_bytes(r.array("mailbox").ok()?);
    let token = DeliveryToken::from_bytes(SecretBytes::new(r.array("token").ok()?));
    r.finish("grant").ok()?;
    Some(Grant {
        url: url.to_owned(),
        mailbox,
        token,
    })
}

/// Checks a mailbox URL: http(s), a host, no spaces, bounded.
pub fn check_url(url: &str) -> Result<(), NodeError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| NodeError::Invalid(format!("not an http(s) URL: {url:?}")))?;
    if url.len() > MAX_URL || rest.is_empty() || rest.starts_with('/') {
        return Err(NodeError::Invalid(format!("not a server URL: {url:?}")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NodeError::Invalid(format!("not a server URL: {url:?}")));
    }
    Ok(())
}

impl Node {
    /// Turns the account's mailbox on at `url` (a new mailbox key unless the
    /// same URL is already in use), or off with `None`. Returns the mailbox.
    pub async fn set_mailbox(
        &mut self,
        url: Option<&str>,
        now: i64,
    ) -> Result<Option<MailboxId>, NodeError> {
        let Some(url) = url else {
            self.set_setting(SETTING_MAILBOX, &[], now).await?;
            return Ok(None);
        };
        let url = url.trim_end_matches('/');
        check_url(url)?;
        if let Some(current) = self.mailbox()
            && current.url == url
        {
            return Ok(Some(current.key.id()));
        }
        self.new_mailbox_key(url, now).await.map(Some)
    }

    /// After a revocation: a new mailbox key at the same server, so the
    /// revoked device's copy of the old seed (and every delivery token
    /// derived from it) is worth nothing. Contacts get new grants through
    /// the usual grant loop; the daemon registers the new mailbox.
    pub async fn rotate_mailbox(&mut self, now: i64) -> Result<Option<MailboxId>, NodeError> {
        let Some(current) = self.mailbox() else {
            return Ok(None);
        };
        self.new_mailbox_key(&current.url, now).await.map(Some)
    }

    async fn new_mailbox_key(&mut self, url: &str, now: i64) -> Result<MailboxId, NodeError> {
        let key = MailboxKey::generate();
        let mut w = Writer::new();
        w.str(url).fixed(key.seed().as_bytes());
        let mut value = w.finish();
        let set = self.set_setting(SETTING_MAILBOX, &value, now).await;
        zeroize::Zeroize::zeroize(&mut value);
        set?;
        Ok(key.id())
    }

    /// The account's mailbox, if on.
    pub fn mailbox(&self) -> Option<MailboxSetting> {
        let value = self.setting(SETTING_MAILBOX)?;
        let mut r = Reader::new(value);
        let url = r.str(MAX_URL, "url").ok()?.to_owned();
        let seed = SecretBytes::new(r.array("seed").ok()?);
        r.finish("mailbox setting").ok()?;
        Some(MailboxSetting {
            url,
            key: MailboxKey::from_seed(&seed),
        })
    }

    /// The delivery token `contact` gets for the current mailbox: derived
    /// from the mailbox seed, the same on every own device.
    pub fn delivery_token(&self, contact: AccountId) -> Option<DeliveryToken> {
        Some(self.mailbox()?.token_for(contact))
    }

    /// Contacts not marked compromised: those that get a delivery token
    /// and that this device deposits for.
    pub fn uncompromised_contacts(&self) -> Vec<AccountId> {
        self.contacts
            .iter()
            .filter(|(_, c)| c.trust != super::trust::Trust::Compromised)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Contacts whose newest grant from us does not match the current
    /// mailbox (missing, stale, or still open after the mailbox went off).
    pub fn grants_due(&self) -> Vec<AccountId> {
        let current = self.mailbox();
        self.contacts
            .keys()
            .filter(|c| {
                let ours = self.grants.get(&(**c, true)).map(|(_, b)| b.as_slice());
                let wanted = current.as_ref().map(|m| m.grant_for(**c));
                match (ours, wanted) {
                    (None, None) => false,
                    (Some(ours), None) => !ours.is_empty() && decode_grant(ours).is_some(),
                    (ours, Some(wanted)) => ours != Some(wanted.as_slice()),
                }
            })
            .copied()
            .collect()
    }

    /// Writes our current grant (or its withdrawal) into the conversation
    /// with `contact`.
    pub async fn write_grant(&mut self, contact: AccountId, now: i64) -> Result<(), NodeError> {
        self.require_contact(contact)?;
        let body = match self.mailbox() {
            Some(m) => m.grant_for(contact),
            None => Writer::new().str("").finish(),
        };
        let log = LogId::conversation(self.account, contact);
        self.append_for(log, conversation_kind::MAILBOX_GRANT, body, now, &[contact])
            .await?;
        Ok(())
    }

    /// Where `contact` lets us deposit, if it does.
    pub fn grant_from(&self, contact: AccountId) -> Option<Grant> {
        let (_, body) = self.grants.get(&(contact, false))?;
        decode_grant(body)
    }

    /// Records a stored grant event of the conversation `log`.
    pub(super) fn apply_grant_entry(&mut self, log: LogId, event: &Event) {
        if let Some((side, by, body)) = self.grant_origin(log, event) {
            keep_newest(&mut self.grants, side, by, body);
        }
    }

    /// Whose a grant event of the conversation `log` is (the contact, and
    /// whether this account wrote it), its register key and its body; `None`
    /// unless a device of either side wrote it and it has a body.
    pub(super) fn grant_origin<'e>(
        &self,
        log: LogId,
        event: &'e Event,
    ) -> Option<((AccountId, bool), RegisterKey, &'e [u8])> {
        let contact = self.contact_of_conversation(log)?;
        let body = event.body()?;
        let h = event.header();
        let ours = match self.account_of_device(&h.author) {
            Some(a) if a == self.account => true,
            Some(a) if a == contact => false,
            _ => return None,
        };
        Some(((contact, ours), (h.depth, h.author, event.id()), body))
    }

    async fn load_prekeys(&self) -> Result<Vec<Prekey>, NodeError> {
        let Some(mut bytes) = self.store.meta(META_PREKEYS).await? else {
            return Ok(vec![]);
        };
        let parsed = (|| {
            let mut r = Reader::new(&bytes);
            let n = r.count(MAX_PREKEYS, "prekeys")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let created_ms = r.i64("created")?;
                let retired_ms = r.option("retired", |r| r.i64("retired"))?;
                let secret = BoxSecretKey::from_bytes(SecretBytes::new(r.array("prekey")?));
                out.push(Prekey {
                    created_ms,
                    retired_ms,
                    secret,
                });
            }
            r.finish("prekeys")?;
            Ok::<_, crate::wire::WireError>(out)
        })();
        zeroize::Zeroize::zeroize(&mut bytes);
        parsed.map_err(|e| NodeError::Invalid(format!("stored prekeys are damaged: {e}")))
    }

    async fn save_prekeys(&self, prekeys: &[Prekey]) -> Result<(), NodeError> {
        let mut w = Writer::new();
        w.u16(prekeys.len() as u16);
        for p in prekeys {
            w.i64(p.created_ms)
                .option(p.retired_ms, |w, t| {
                    w.i64(t);
                })
                .fixed(p.secret.to_bytes().as_bytes());
        }
        let mut bytes = w.finish();
        let saved = self.store.set_meta(&[(META_PREKEYS, &bytes)]).await;
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(saved?)
    }

    /// With the mailbox off: retires the current prekey (nobody should seal
    /// to it any more) and deletes retired ones no deposit can still need.
    pub async fn retire_prekeys(&self, now: i64) -> Result<(), NodeError> {
        let mut prekeys = self.load_prekeys().await?;
        if prekeys.is_empty() {
            return Ok(());
        }
        let before = prekeys.len();
        let mut changed = false;
        for p in prekeys.iter_mut().filter(|p| p.retired_ms.is_none()) {
            p.retired_ms = Some(now);
            changed = true;
        }
        prekeys.retain(|p| p.retired_ms.is_none_or(|t| now - t <= PREKEY_KEEP_MS));
        if changed || prekeys.len() != before {
            self.save_prekeys(&prekeys).await?;
        }
        Ok(())
    }

    /// Makes a new prekey if the current one is due, and deletes retired
    /// ones no deposit can still need. Returns whether anything changed.
    pub async fn rotate_prekeys(&self, now: i64) -> Result<bool, NodeError> {
        let mut prekeys = self.load_prekeys().await?;
        let before = prekeys.len();
        prekeys.retain(|p| p.retired_ms.is_none_or(|t| now - t <= PREKEY_KEEP_MS));
        let due = prekeys
            .iter()
            .filter(|p| p.retired_ms.is_none())
            .all(|p| now - p.created_ms >= PREKEY_ROTATE_MS || now < p.created_ms);
        if due {
            for p in prekeys.iter_mut().filter(|p| p.retired_ms.is_none()) {
                p.retired_ms = Some(now);
            }
            prekeys.push(Prekey {
                created_ms: now,
                retired_ms: None,
                secret: BoxSecretKey::generate(),
            });
            // Bounded: the oldest retired ones go first.
            while prekeys.len() > MAX_PREKEYS {
                prekeys.remove(0);
            }
        }
        if due || prekeys.len() != before {
            self.save_prekeys(&prekeys).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// This device's current prekey, signed, for its mailbox slot.
    pub async fn prekey_bundle(&self) -> Result<Option<Vec<u8>>, NodeError> {
        let prekeys = self.load_prekeys().await?;
        Ok(prekeys
            .iter()
            .filter(|p| p.retired_ms.is_none())
            .max_by_key(|p| p.created_ms)
            .map(|p| SignedPrekey::sign(&self.key, p.secret.public_key(), p.created_ms).encode()))
    }

    /// Opens a deposit with any prekey this device still holds.
    /// `Ok(Ok(None))`: sealed for other devices only; `Ok(Err(_))`: the
    /// deposit itself is damaged; `Err(_)`: this device could not try
    /// (its store failed).
    pub async fn open_deposit(
        &self,
        deposit: &[u8],
    ) -> Result<Result<Option<Vec<u8>>, crate::mailbox::MailboxError>, NodeError> {
        let prekeys = self.load_prekeys().await?;
        let keys: Vec<&BoxSecretKey> = prekeys.iter().map(|p| &p.secret).collect();
        Ok(crate::mailbox::open_deposit(&keys, deposit))
    }

    /// From the prekey bundles a contact's mailbox serves, the newest usable
    /// prekey of each of its active devices (a bundle signed by any other
    /// key, stale or malformed, is skipped).
    pub fn recipient_prekeys(
        &self,
        contact: AccountId,
        bundles: &[Vec<u8>],
        now: i64,
    ) -> Vec<(DeviceId, BoxPublicKey)> {
        let active = self.contact_devices(&contact);
        let mut best: BTreeMap<DeviceId, SignedPrekey> = BTreeMap::new();
        for bundle in bundles {
            let Ok(prekey) = SignedPrekey::decode(bundle) else {
                continue;
            };
            let device = DeviceId::from_bytes(*prekey.device.as_bytes());
            if !active.contains(&device) || !prekey.usable_at(now) {
                continue;
            }
            if best
                .get(&device)
                .is_none_or(|b| b.created_ms < prekey.created_ms)
            {
                best.insert(device, prekey);
            }
        }
        best.into_iter().map(|(d, p)| (d, p.public)).collect()
    }

    /// Events waiting for delivery to `account` and not in `skip`, in wire
    /// form, parents first within each log, at most `limit`.
    pub async fn undelivered_events(
        &self,
        account: AccountId,
        skip: &std::collections::HashSet<crate::id::EventId>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, NodeError> {
        let ids: Vec<_> = self
            .store
            .undelivered_to(account)
            .await?
            .into_iter()
            .filter(|id| !skip.contains(id))
            .take(limit)
            .collect();
        let mut events = self.store.events_by_id(&ids).await?;
        events.sort_by_key(|e| (e.event.log_id(), e.info.depth));
        // Account-log events first: the others may need what they say.
        events.sort_by_key(|e| e.event.header().log_kind != crate::log::LogKind::Account);
        Ok(events.into_iter().map(|e| e.event.encode()).collect())
    }

    /// Stores the events of an opened deposit, log by log, as if they came
    /// from a peer (each is verified and validated). Returns how many were
    /// stored; events of logs this device does not hold are dropped.
    pub async fn ingest_deposit(
        &mut self,
        payload: &[u8],
        now: i64,
        threads: usize,
    ) -> Result<usize, NodeError> {
        let payload = crate::mailbox::decode_events(self.account.as_bytes(), payload)
            .map_err(|e| NodeError::Invalid(format!("bad deposit payload: {e}")))?;
        let depositor = DeviceId::from_bytes(*payload.from.as_bytes());
        let mut by_log: BTreeMap<(bool, LogId), Vec<Vec<u8>>> = BTreeMap::new();
        for bytes in payload.events {
            let Ok(event) = Event::decode(bytes) else {
                continue;
            };
            let account = event.header().log_kind == crate::log::LogKind::Account;
            by_log
                .entry((!account, event.log_id()))
                .or_default()
                .push(bytes.to_vec());
        }
        let mut stored = 0;
        let count = |outcomes: &[Result<super::Ingested, NodeError>]| {
            outcomes
                .iter()
                .filter_map(|o| match o {
                    Ok(super::Ingested::Stored(ids)) => Some(ids.len()),
                    _ => None,
                })
                .sum::<usize>()
        };
        // Account logs we follow first: they check themselves (every entry
        // against the log's own devices), and may be what proves the
        // depositor (a contact's new device). Nothing is held for it.
        for ((_, log), batch) in by_log.iter().filter(|((other, _), _)| !other) {
            if self.account_of_log(*log).is_some() {
                let outcomes = self
                    .ingest_batch(*log, batch, now, threads, Some(depositor))
                    .await?;
                stored += count(&outcomes);
            }
        }
        // Then the depositor is heard like a peer on a link: an active
        // device of an account we share the logs with (a leaked delivery
        // token, or a revoked device that still knows one, gets nothing
        // in).
        let Some(account) = self.active_account_of(&depositor) else {
            return Err(NodeError::Invalid(
                "a deposit signed by a device no account we follow lists as active".into(),
            ));
        };
        for ((_, log), batch) in by_log.iter().filter(|((other, _), _)| *other) {
            if self.log(log).is_none()
                || !crate::sync::View::entitled(self, account, depositor, log)
            {
                continue;
            }
            let outcomes = self
                .ingest_batch(*log, batch, now, threads, Some(depositor))
                .await?;
            stored += count(&outcomes);
        }
        Ok(stored)
    }

    /// A deposit payload of `events` for the account `to`, signed by this
    /// device.
    pub fn deposit_payload(&self, to: AccountId, events: &[Vec<u8>]) -> Vec<u8> {
        crate::mailbox::encode_events(&self.key, to.as_bytes(), events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        for good in ["http://127.0.0.1:8480", "https://box.example.org/kith"] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http:///x",
            "https://a b",
            "box.example.org",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_not_keyed_by_the_mailbox_seed_itself() {
        let setting = MailboxSetting {
            url: "https://box.example.org".into(),
            key: MailboxKey::generate(),
        };
        let contact = AccountId::from_bytes([3; 32]);
        let raw = crypto::blake2b(contact.as_bytes(), Some(setting.key.seed().as_bytes()), 32);
        let token = setting.token_for(contact);
        assert_ne!(
            &token.as_bytes()[..],
            &raw[..],
            "the Ed25519 seed keyed the MAC"
        );
        assert_eq!(
            token.as_bytes(),
            setting.token_for(contact).as_bytes(),
            "the same on every own device"
        );
    }

    #[test]
    fn grants_round_trip_and_empty_is_withdrawn() {
        let token = DeliveryToken::generate();
        let id = MailboxKey::generate().id();
        let body = encode_grant("http://x", &id, &token);
        let grant = decode_grant(&body).expect("grant");
        assert_eq!((grant.url.as_str(), grant.mailbox), ("http://x", id));
        assert_eq!(grant.token.hash(), token.hash());
        assert!(decode_grant(&Writer::new().str("").finish()).is_none());
    }
}
