//! The mailbox protocol, shared by `kith-mailboxd` and the client.
//!
//! A mailbox belongs to an account. Its key ([`MailboxKey`]) is made by the
//! device that turns the mailbox on and shared with the account's own devices
//! through the self log; the mailbox id is the key's public half. The server
//! learns nothing else about the account.
//!
//! - **Owner requests** (register, issue tokens, publish prekeys, fetch and
//!   delete deposits) are signed with the mailbox key over a fresh
//!   server-issued challenge, the method, the path and a hash of the body
//!   ([`sign_request`], [`verify_request`]). A challenge is good for one
//!   request, so a captured request cannot be replayed.
//! - **Depositors** show a [`DeliveryToken`] the owner gave them privately
//!   (in their 1:1 conversation). The server stores only its hash
//!   ([`TokenHash`]), so a copy of its database cannot deposit.
//! - **Deposits** ([`seal_deposit`], [`open_deposit`]): a random content key
//!   sealed to each recipient device's current X25519 prekey, and the payload
//!   under that key (XChaCha20-Poly1305). Nothing in the envelope names the
//!   recipient or the sender; a device finds its slot by trying its prekeys.
//! - **Prekeys** ([`SignedPrekey`]): signed by the device key, so a sender
//!   checks them against the recipient's account log and the server cannot
//!   substitute its own. Devices rotate them every [`PREKEY_ROTATE_MS`];
//!   senders refuse any older than [`PREKEY_MAX_AGE_MS`]; devices delete the
//!   private half once no deposit sealed to it can still be on a server, so a
//!   captured deposit cannot be opened later.
//!
//! Not here: HTTP (the server's routes and the client's calls), storage, and
//! what the payload means (it is the ordinary signed events, see
//! [`encode_events`]).

use std::fmt;
use std::str::FromStr;

use crate::crypto::{
    self, AeadKey, BoxPublicKey, BoxSecretKey, HashDomain, SEAL_OVERHEAD, SecretBytes, SignDomain,
    Signature, SigningKey, VerifyingKey,
};
use crate::wire::{self, Reader, WireError, Writer};

/// How often a device makes a new prekey (2 days).
pub const PREKEY_ROTATE_MS: i64 = 2 * 24 * 3600 * 1000;
/// Senders never seal to a prekey older than this (14 days).
pub const PREKEY_MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// The longest a server keeps a deposit (7 days); also bounds how long a
/// device keeps a retired prekey's private half.
pub const MAX_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// The shortest retention a server may be configured with (1 hour).
pub const MIN_RETENTION_MS: i64 = 3600 * 1000;
/// Most recipient devices one deposit may be sealed to.
pub const MAX_RECIPIENTS: usize = 64;
/// Most events in one deposit.
pub const MAX_EVENTS: usize = 1024;
/// Largest deposit a client makes (the server's own limit may be lower).
pub const MAX_DEPOSIT: usize = 1024 * 1024;
/// Length of a server challenge.
pub const CHALLENGE_LEN: usize = 32;
/// The HTTP authorisation scheme of owner requests.
pub const AUTH_SCHEME: &str = "Kith-Mailbox";

const DEPOSIT_VERSION: u8 = 1;
const PREKEY_VERSION: u8 = 1;
const DEPOSIT_AD: &[u8] = b"kith/v1/mailbox-deposit";
const SLOT_LEN: usize = 32 + SEAL_OVERHEAD;

/// A mailbox protocol failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// Malformed bytes or text.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A signature did not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// Outside the protocol's bounds.
    #[error("{0}")]
    Invalid(&'static str),
}

/// The id of a mailbox: the public half of its key, base32 in URLs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId([u8; 32]);

impl MailboxId {
    /// From the 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&wire::to_base32(&self.0))
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({self})")
    }
}

impl FromStr for MailboxId {
    type Err = MailboxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(fixed(s, "mailbox id")?))
    }
}

/// Decodes base32 text of exactly `N` bytes.
fn fixed<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], WireError> {
    let bytes = wire::from_base32(s, what)?;
    bytes.try_into().map_err(|_| WireError::Invalid {
        what,
        why: "wrong length",
    })
}

/// The mailbox's signing key. Shared among the account's own devices only.
pub struct MailboxKey(SigningKey);

impl MailboxKey {
    /// A fresh key.
    pub fn generate() -> Self {
        Self(SigningKey::generate())
    }
    /// The key with this seed.
    pub fn from_seed(seed: &SecretBytes<32>) -> Self {
        Self(SigningKey::from_seed(seed))
    }
    /// The seed, for the self log and the store.
    pub fn seed(&self) -> SecretBytes<32> {
        self.0.seed()
    }
    /// The mailbox this key owns.
    pub fn id(&self) -> MailboxId {
        MailboxId(*self.0.verifying_key().as_bytes())
    }
}

impl fmt::Debug for MailboxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailboxKey(..)")
    }
}

/// What an owner request's signature covers.
fn request_message(
    id: &MailboxId,
    challenge: &[u8; CHALLENGE_LEN],
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<u8> {
    Writer::new()
        .fixed(&id.0)
        .fixed(challenge)
        .str(method)
        .str(path)
        .fixed(&crypto::hash(HashDomain::MAILBOX_REQUEST, body))
        .finish()
}

/// The `Authorization` header value for an owner request:
/// `Kith-Mailbox CHALLENGE.SIGNATURE` (both base32).
pub fn sign_request(
    key: &MailboxKey,
    challenge: &[u8; CHALLENGE_LEN],
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    let msg = request_message(&key.id(), challenge, method, path, body);
    let sig = key.0.sign(SignDomain::MAILBOX, &msg);
    format!(
        "{AUTH_SCHEME} {}.{}",
        wire::to_base32(challenge),
        wire::to_base32(sig.as_bytes())
    )
}

/// Checks an owner request's `Authorization` header; returns the challenge it
/// answers, which the server must then consume (it is good once).
pub fn verify_request(
    id: &MailboxId,
    header: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<[u8; CHALLENGE_LEN], MailboxError> {
    let rest = header
        .strip_prefix(AUTH_SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(MailboxError::Invalid(
            "expected `Kith-Mailbox CHALLENGE.SIGNATURE`",
        ))?;
    let (challenge, sig) = rest.split_once('.').ok_or(MailboxError::Invalid(
        "expected `Kith-Mailbox CHALLENGE.SIGNATURE`",
    ))?;
    let challenge: [u8; CHALLENGE_LEN] = fixed(challenge, "challenge")?;
    let sig = Signature::from_bytes(fixed(sig, "signature")?);
    let msg = request_message(id, &challenge, method, path, body);
    VerifyingKey::from_bytes(id.0)
        .verify(SignDomain::MAILBOX, &msg, &sig)
        .map_err(|_| MailboxError::BadSignature("mailbox request"))?;
    Ok(challenge)
}

/// A secret a mailbox owner gives one contact, letting it deposit.
pub struct DeliveryToken(SecretBytes<32>);

impl DeliveryToken {
    /// A fresh token.
    pub fn generate() -> Self {
        Self(SecretBytes::random())
    }
    /// From its 32 bytes (as carried in a conversation event).
    pub fn from_bytes(bytes: SecretBytes<32>) -> Self {
        Self(bytes)
    }
    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
    /// What the server stores and compares.
    pub fn hash(&self) -> TokenHash {
        TokenHash(crypto::hash(HashDomain::MAILBOX_TOKEN, self.0.as_bytes()))
    }
    /// The `Authorization` header value of a deposit: `Bearer TOKEN`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", wire::to_base32(self.0.as_bytes()))
    }
    /// Parses a `Bearer TOKEN` header value.
    pub fn from_bearer(header: &str) -> Result<Self, MailboxError> {
        let text = header
            .strip_prefix("Bearer ")
            .ok_or(MailboxError::Invalid("expected `Bearer TOKEN`"))?;
        let mut bytes: [u8; 32] = fixed(text, "delivery token")?;
        let token = Self(SecretBytes::new(bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(token)
    }
}

impl fmt::Debug for DeliveryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeliveryToken(..)")
    }
}

/// The hash of a [`DeliveryToken`]: all the server ever stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// From 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&wire::to_base32(&self.0))
    }
}

impl FromStr for TokenHash {
    type Err = MailboxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(fixed(s, "token hash")?))
    }
}

/// A device's prekey, signed by the device.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedPrekey {
    /// The device that made it.
    pub device: VerifyingKey,
    /// The key deposits are sealed to.
    pub public: BoxPublicKey,
    /// When it was made (ms since the epoch); it ages from here.
    pub created_ms: i64,
    signature: Signature,
}

impl SignedPrekey {
    /// Signs `public` as `device_key`'s prekey made at `created_ms`.
    pub fn sign(device_key: &SigningKey, public: BoxPublicKey, created_ms: i64) -> Self {
        let device = device_key.verifying_key();
        let signature = device_key.sign(
            SignDomain::PREKEY,
            &Self::signed_part(&device, &public, created_ms),
        );
        Self {
            device,
            public,
            created_ms,
            signature,
        }
    }

    fn signed_part(device: &VerifyingKey, public: &BoxPublicKey, created_ms: i64) -> Vec<u8> {
        Writer::new()
            .u8(PREKEY_VERSION)
            .fixed(device.as_bytes())
            .fixed(public.as_bytes())
            .i64(created_ms)
            .finish()
    }

    /// Checks the device's signature.
    pub fn verify(&self) -> Result<(), MailboxError> {
        let msg = Self::signed_part(&self.device, &self.public, self.created_ms);
        self.device
            .verify(SignDomain::PREKEY, &msg, &self.signature)
            .map_err(|_| MailboxError::BadSignature("prekey"))
    }

    /// Whether a sender may seal to it at `now_ms`: not older than
    /// [`PREKEY_MAX_AGE_MS`] and not from the future (beyond a minute of skew).
    pub fn usable_at(&self, now_ms: i64) -> bool {
        let age = now_ms.saturating_sub(self.created_ms);
        (-60_000..=PREKEY_MAX_AGE_MS).contains(&age)
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&Self::signed_part(
            &self.device,
            &self.public,
            self.created_ms,
        ))
        .fixed(self.signature.as_bytes());
        w.finish()
    }

    /// Parses and verifies the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, MailboxError> {
        let mut r = Reader::new(bytes);
        if r.u8("prekey version")? != PREKEY_VERSION {
            return Err(MailboxError::Invalid("unknown prekey version"));
        }
        let device = VerifyingKey::from_bytes(r.array("prekey device")?);
        let public = BoxPublicKey::from_bytes(r.array("prekey")?)
            .map_err(|_| MailboxError::Invalid("prekey is not a usable X25519 key"))?;
        let created_ms = r.i64("prekey time")?;
        let signature = Signature::from_bytes(r.array("prekey signature")?);
        r.finish("prekey")?;
        let prekey = Self {
            device,
            public,
            created_ms,
            signature,
        };
        prekey.verify()?;
        Ok(prekey)
    }
}

/// Seals `payload` for each of `recipients` (their prekeys).
pub fn seal_deposit(recipients: &[BoxPublicKey], payload: &[u8]) -> Result<Vec<u8>, MailboxError> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(MailboxError::Invalid("a deposit needs 1 to 64 recipients"));
    }
    let key = AeadKey::generate();
    let mut w = Writer::new();
    w.u8(DEPOSIT_VERSION).u8(recipients.len() as u8);
    for to in recipients {
        w.fixed(&crypto::seal(to, key.as_secret().as_bytes()));
    }
    w.fixed(&crypto::aead_seal(&key, DEPOSIT_AD, payload));
    let out = w.finish();
    if out.len() > MAX_DEPOSIT {
        return Err(MailboxError::Invalid("deposit over 1 MiB"));
    }
    Ok(out)
}

/// Opens a deposit with whichever of `prekeys` it was sealed to.
/// `Ok(None)`: it is well-formed but for none of them (another device's).
pub fn open_deposit(
    prekeys: &[&BoxSecretKey],
    deposit: &[u8],
) -> Result<Option<Vec<u8>>, MailboxError> {
    let mut r = Reader::new(deposit);
    if r.u8("deposit version")? != DEPOSIT_VERSION {
        return Err(MailboxError::Invalid("unknown deposit version"));
    }
    let count = usize::from(r.u8("deposit recipients")?);
    if count == 0 || count > MAX_RECIPIENTS {
        return Err(MailboxError::Invalid("a deposit needs 1 to 64 recipients"));
    }
    let mut slots = Vec::with_capacity(count);
    for _ in 0..count {
        slots.push(r.take(SLOT_LEN, "deposit slot")?);
    }
    let sealed = r.take(deposit.len() - (2 + count * SLOT_LEN), "deposit body")?;
    for slot in slots {
        for prekey in prekeys {
            let Ok(opened) = crypto::open_sealed(prekey, slot) else {
                continue;
            };
            let key = AeadKey::from_bytes(
                SecretBytes::from_slice("deposit key", &opened)
                    .map_err(|_| MailboxError::Invalid("deposit key has the wrong length"))?,
            );
            let mut opened = opened;
            zeroize::Zeroize::zeroize(&mut opened);
            return crypto::aead_open(&key, DEPOSIT_AD, sealed)
                .map(Some)
                .map_err(|_| MailboxError::Invalid("deposit body does not open"));
        }
    }
    Ok(None)
}

/// Version byte of a deposit payload.
const PAYLOAD_VERSION: u8 = 2;

/// The payload of a deposit: signed events, each in its wire form (at most
/// [`MAX_EVENTS`]; callers split longer lists), for the account `to`,
/// signed by the depositing device. The recipient treats the events as if
/// that device had sent them over a link: only an active device of an
/// account entitled to their logs is heard, so a deposit made with a
/// leaked delivery token or by a revoked device is refused.
pub fn encode_events(key: &SigningKey, to: &[u8; 32], events: &[Vec<u8>]) -> Vec<u8> {
    let events = &events[..events.len().min(MAX_EVENTS)];
    let mut w = Writer::new();
    w.u8(PAYLOAD_VERSION)
        .fixed(key.verifying_key().as_bytes())
        .u16(events.len() as u16);
    for event in events {
        w.bytes(event);
    }
    let mut body = w.finish();
    let sig = key.sign(SignDomain::DEPOSIT, &signed_payload(to, &body));
    body.extend_from_slice(sig.as_bytes());
    body
}

fn signed_payload(to: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + body.len());
    m.extend_from_slice(to);
    m.extend_from_slice(body);
    m
}

/// An opened deposit payload: the device that signed it and the events'
/// wire forms (each still to be decoded and verified like any event from
/// a peer).
#[derive(Debug)]
pub struct Payload<'a> {
    /// The depositing device (its signature is checked).
    pub from: VerifyingKey,
    /// The events.
    pub events: Vec<&'a [u8]>,
}

/// Reads a deposit payload made for the account `to` and checks its
/// signature.
pub fn decode_events<'a>(to: &[u8; 32], payload: &'a [u8]) -> Result<Payload<'a>, MailboxError> {
    let split = payload
        .len()
        .checked_sub(64)
        .ok_or(MailboxError::Invalid("deposit payload too short"))?;
    let (body, sig) = payload.split_at(split);
    let mut r = Reader::new(body);
    if r.u8("payload version")? != PAYLOAD_VERSION {
        return Err(MailboxError::Invalid("unknown deposit payload version"));
    }
    let from = VerifyingKey::from_bytes(r.array("depositor")?);
    let count = r.count(MAX_EVENTS, "deposit events")?;
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(r.bytes(crate::log::event::MAX_EVENT, "deposited event")?);
    }
    r.finish("deposit payload")?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| MailboxError::Invalid("deposit signature"))?;
    from.verify(
        SignDomain::DEPOSIT,
        &signed_payload(to, body),
        &Signature::from_bytes(sig),
    )
    .map_err(|_| MailboxError::Invalid("deposit payload signature does not verify"))?;
    Ok(Payload { from, events })
}

/// A random challenge, as the server issues it.
pub fn new_challenge() -> [u8; CHALLENGE_LEN] {
    crypto::random_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_requests_verify_only_as_signed() {
        let key = MailboxKey::generate();
        let id = key.id();
        let challenge = new_challenge();
        let header = sign_request(&key, &challenge, "GET", "/v1/x", b"body");
        assert_eq!(
            verify_request(&id, &header, "GET", "/v1/x", b"body"),
            Ok(challenge)
        );
        for (method, path, body) in [
            ("POST", "/v1/x", &b"body"[..]),
            ("GET", "/v1/y", b"body"),
            ("GET", "/v1/x", b"bodz"),
        ] {
            assert_eq!(
                verify_request(&id, &header, method, path, body),
                Err(MailboxError::BadSignature("mailbox request"))
            );
        }
        let other = MailboxKey::generate().id();
        assert!(verify_request(&other, &header, "GET", "/v1/x", b"body").is_err());
        for bad in [
            "",
            "Bearer x",
            "Kith-Mailbox ",
            "Kith-Mailbox abc",
            "Kith-Mailbox a.b",
        ] {
            assert!(
                verify_request(&id, bad, "GET", "/v1/x", b"body").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_and_tokens_round_trip_as_text() {
        let id = MailboxKey::generate().id();
        assert_eq!(id.to_string().parse::<MailboxId>(), Ok(id));
        let token = DeliveryToken::generate();
        let back = DeliveryToken::from_bearer(&token.bearer()).expect("bearer");
        assert_eq!(back.hash(), token.hash());
        assert_eq!(
            token.hash().to_string().parse::<TokenHash>(),
            Ok(token.hash())
        );
        assert!(DeliveryToken::from_bearer("Basic abc").is_err());
        assert!(!format!("{token:?}").contains(&wire::to_base32(token.as_bytes())));
    }

    #[test]
    fn prekeys_are_signed_and_age() {
        let device = SigningKey::generate();
        let secret = BoxSecretKey::generate();
        let prekey = SignedPrekey::sign(&device, secret.public_key(), 1_000_000);
        let bytes = prekey.encode();
        assert_eq!(SignedPrekey::decode(&bytes), Ok(prekey.clone()));
        let mut tampered = bytes.clone();
        tampered[40] ^= 1;
        assert!(SignedPrekey::decode(&tampered).is_err());
        assert!(prekey.usable_at(1_000_000 + PREKEY_MAX_AGE_MS));
        assert!(!prekey.usable_at(1_000_001 + PREKEY_MAX_AGE_MS));
        assert!(!prekey.usable_at(1_000_000 - 61_000));
    }

    #[test]
    fn deposits_open_only_with_a_recipient_prekey() {
        let a = BoxSecretKey::generate();
        let b = BoxSecretKey::generate();
        let stranger = BoxSecretKey::generate();
        let key = SigningKey::generate();
        let payload = encode_events(&key, &[7; 32], &[b"one".to_vec(), b"two".to_vec()]);
        let deposit = seal_deposit(&[a.public_key(), b.public_key()], &payload).expect("seal");
        for key in [&a, &b] {
            let opened = open_deposit(&[&stranger, key], &deposit).expect("well-formed");
            assert_eq!(opened.as_deref(), Some(&payload[..]));
        }
        assert_eq!(open_deposit(&[&stranger], &deposit), Ok(None));
        let opened = decode_events(&[7; 32], &payload).expect("payload");
        assert_eq!(opened.events, vec![&b"one"[..], b"two"]);
        assert_eq!(opened.from.as_bytes(), key.verifying_key().as_bytes());
        // For another account, or altered: refused.
        assert!(decode_events(&[8; 32], &payload).is_err());
        let mut altered = payload.clone();
        altered[40] ^= 1;
        assert!(decode_events(&[7; 32], &altered).is_err());
        assert!(decode_events(&[7; 32], &payload[..20]).is_err());
        let mut tampered = deposit.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open_deposit(&[&a], &tampered).is_err());
        assert!(open_deposit(&[&a], &deposit[..10]).is_err());
        assert!(seal_deposit(&[], &payload).is_err());
    }
}
