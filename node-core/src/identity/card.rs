//! Contact cards: `kith:card/<base32>` URIs (and the same as QR codes).
//!
//! A card names the account, its display name, the devices the signing
//! device knows, and address hints, signed by one of those devices. It is a
//! starting point, not proof of membership: the account log, fetched from
//! the devices on first contact, proves which devices belong to the account,
//! and a card from anywhere is `unvalidated` until the user compares safety
//! numbers.

use super::entry::check_name;
use crate::crypto::{SignDomain, Signature, SigningKey};
use crate::id::{AccountId, DeviceId};
use crate::wire::{Reader, WireError, Writer, from_base32, to_base32};

/// The URI prefix of a card.
pub const CARD_PREFIX: &str = "kith:card/";
/// The only card version this code writes and reads.
pub const CARD_VERSION: u8 = 1;
/// Most devices a card lists.
pub const MAX_CARD_DEVICES: usize = 32;
/// Most address hints a card carries.
pub const MAX_HINTS: usize = 16;
/// Longest address hint, in bytes.
pub const MAX_HINT_LEN: usize = 128;
/// Longest card URI accepted.
pub const MAX_CARD_URI: usize = 8192;

/// A decoded, signature-checked contact card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The account.
    pub account: AccountId,
    /// Its display name.
    pub name: String,
    /// The device that signed the card (one of `devices`).
    pub signer: DeviceId,
    /// Devices of the account as the signer knows them.
    pub devices: Vec<DeviceId>,
    /// Where to try reaching them (`ip:port` or relay URLs): hints only.
    pub hints: Vec<String>,
    /// When the card was made (ms since the epoch).
    pub issued: i64,
}

/// Why a card was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// Not a `kith:card/` URI.
    #[error("not a kith contact card (expected a URI starting with {CARD_PREFIX})")]
    NotACard,
    /// The encoding is wrong.
    #[error("malformed contact card: {0}")]
    Format(#[from] WireError),
    /// The signature does not verify.
    #[error("contact card signature does not verify")]
    BadSignature,
    /// The signer is not among the listed devices.
    #[error("contact card is signed by a device it does not list")]
    SignerNotListed,
}

impl Card {
    /// Signs a card with `key`, which must be one of `devices`.
    pub fn sign(key: &SigningKey, card: &Card) -> String {
        let mut body = card.encode_unsigned();
        let sig = key.sign(SignDomain::CARD, &body);
        body.extend_from_slice(sig.as_bytes());
        format!("{CARD_PREFIX}{}", to_base32(&body))
    }

    /// Parses and verifies a card URI (either case).
    pub fn parse(uri: &str) -> Result<Self, CardError> {
        let uri = uri.trim();
        if uri.len() > MAX_CARD_URI || uri.len() < CARD_PREFIX.len() {
            return Err(CardError::NotACard);
        }
        let (prefix, payload) = uri
            .split_at_checked(CARD_PREFIX.len())
            .ok_or(CardError::NotACard)?;
        if !prefix.eq_ignore_ascii_case(CARD_PREFIX) {
            return Err(CardError::NotACard);
        }
        let bytes = from_base32(payload, "card")?;
        let split = bytes.len().checked_sub(64).ok_or(WireError::Truncated {
            what: "card signature",
        })?;
        let (body, sig) = bytes.split_at(split);
        let card = Self::decode_unsigned(body)?;
        let mut sig_arr = [0u8; 64];
        sig_arr.copy_from_slice(sig);
        card.signer
            .verifying_key()
            .verify(SignDomain::CARD, body, &Signature::from_bytes(sig_arr))
            .map_err(|_| CardError::BadSignature)?;
        Ok(card)
    }

    pub(crate) fn encode_unsigned(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(CARD_VERSION)
            .fixed(self.account.as_bytes())
            .str(&self.name)
            .fixed(self.signer.as_bytes())
            .u16(self.devices.len() as u16);
        for d in &self.devices {
            w.fixed(d.as_bytes());
        }
        w.u16(self.hints.len() as u16);
        for h in &self.hints {
            w.str(h);
        }
        w.i64(self.issued);
        w.finish()
    }

    fn decode_unsigned(body: &[u8]) -> Result<Self, CardError> {
        let mut r = Reader::new(body);
        if r.u8("card version")? != CARD_VERSION {
            return Err(WireError::Invalid {
                what: "card version",
                why: "unsupported",
            }
            .into());
        }
        let account = AccountId::from_bytes(r.array("account")?);
        let name = r.str(64, "name")?.to_owned();
        check_name(&name).map_err(|why| WireError::Invalid { what: "name", why })?;
        let signer = DeviceId::from_bytes(r.array("signer")?);
        let n = r.count(MAX_CARD_DEVICES, "devices")?;
        let devices = (0..n)
            .map(|_| Ok(DeviceId::from_bytes(r.array("device")?)))
            .collect::<Result<Vec<_>, WireError>>()?;
        let n = r.count(MAX_HINTS, "hints")?;
        let hints = (0..n)
            .map(|_| Ok(r.str(MAX_HINT_LEN, "hint")?.to_owned()))
            .collect::<Result<Vec<_>, WireError>>()?;
        let issued = r.i64("issued")?;
        r.finish("card")?;
        if !devices.contains(&signer) {
            return Err(CardError::SignerNotListed);
        }
        Ok(Card {
            account,
            name,
            signer,
            devices,
            hints,
            issued,
        })
    }
}

#[cfg(feature = "node")]
pub use qr::{qr_png, qr_terminal};

#[cfg(feature = "node")]
mod qr {
    use qrcode::{Color, EcLevel, QrCode};

    /// Why a QR code could not be made or written.
    #[derive(Debug, thiserror::Error)]
    pub enum QrError {
        /// Too much data for a QR code.
        #[error("card too long for a QR code: {0}")]
        TooLong(String),
        /// Writing the PNG failed.
        #[error("writing QR PNG: {0}")]
        Png(String),
    }

    fn code(text: &str) -> Result<QrCode, QrError> {
        // Upper case packs into the denser alphanumeric mode; parsing accepts both.
        QrCode::with_error_correction_level(text.to_ascii_uppercase(), EcLevel::M)
            .map_err(|e| QrError::TooLong(e.to_string()))
    }

    /// The QR code drawn with half-block characters for a terminal.
    pub fn qr_terminal(text: &str) -> Result<String, QrError> {
        let code = code(text)?;
        Ok(code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build())
    }

    /// The QR code as a grayscale PNG, `scale` pixels per module.
    pub fn qr_png(text: &str, scale: u32) -> Result<Vec<u8>, QrError> {
        let code = code(text)?;
        let width = code.width() as u32;
        let quiet = 4;
        let side = (width + 2 * quiet) * scale;
        let colors = code.to_colors();
        let mut pixels = vec![255u8; (side * side) as usize];
        for (i, c) in colors.iter().enumerate() {
            if *c != Color::Dark {
                continue;
            }
            let (mx, my) = (i as u32 % width + quiet, i as u32 / width + quiet);
            for y in my * scale..(my + 1) * scale {
                let row = (y * side) as usize;
                pixels[row + (mx * scale) as usize..row + ((mx + 1) * scale) as usize].fill(0);
            }
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(feature = "node")]
pub use qr::QrError;
