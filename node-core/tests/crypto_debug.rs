//! Snapshot of `Debug` for every secret type: exactly `TypeName(..)`, and no
//! rendering of the key bytes (hex or decimal) anywhere in it, so a stray
//! `{:?}` in a log line cannot leak a key.

use node_core::crypto::{AeadKey, BoxSecretKey, SecretBytes, SigningKey, StreamKey};

/// A key whose bytes are easy to spot in any rendering.
const MARKER: [u8; 32] = [0xa7; 32];

/// Ways the key bytes could show up in formatted output.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let lower: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let decimal_list = format!("{bytes:?}");
    vec![
        lower[..8].to_string(),
        lower[..8].to_uppercase(),
        decimal_list[1..20].to_string(),
        bytes[0].to_string(),
    ]
}

fn assert_redacted(debug: &str, type_name: &str, secret: &[u8]) {
    assert_eq!(debug, format!("{type_name}(..)"));
    for leak in renderings(secret) {
        assert!(
            !debug.contains(&leak),
            "{type_name} Debug contains {leak:?}"
        );
    }
}

#[test]
fn secret_bytes_debug_is_redacted() {
    let secret = SecretBytes::new(MARKER);
    assert_redacted(&format!("{secret:?}"), "SecretBytes", &MARKER);
    assert_eq!(format!("{secret:#?}"), "SecretBytes(..)");
}

#[test]
fn signing_key_debug_is_redacted() {
    let key = SigningKey::from_seed(&SecretBytes::new(MARKER));
    let seed = key.seed();
    assert_redacted(&format!("{key:?}"), "SigningKey", seed.as_bytes());
    assert_eq!(format!("{key:#?}"), "SigningKey(..)");
}

#[test]
fn box_secret_key_debug_is_redacted() {
    let key = BoxSecretKey::from_bytes(SecretBytes::new(MARKER));
    assert_redacted(&format!("{key:?}"), "BoxSecretKey", &MARKER);
    assert_eq!(format!("{key:#?}"), "BoxSecretKey(..)");
    // Also redacted when converted from an identity key.
    let converted = SigningKey::generate().to_box_secret();
    let bytes = converted.to_bytes();
    assert_redacted(&format!("{converted:?}"), "BoxSecretKey", bytes.as_bytes());
}

#[test]
fn aead_key_debug_is_redacted() {
    let key = AeadKey::from_bytes(SecretBytes::new(MARKER));
    assert_redacted(&format!("{key:?}"), "AeadKey", &MARKER);
    assert_eq!(format!("{key:#?}"), "AeadKey(..)");
}

#[test]
fn stream_key_debug_is_redacted() {
    let key = StreamKey::from_bytes(SecretBytes::new(MARKER));
    assert_redacted(&format!("{key:?}"), "StreamKey", &MARKER);
    assert_eq!(format!("{key:#?}"), "StreamKey(..)");
}

#[test]
fn random_keys_debug_is_redacted() {
    let seed = SecretBytes::<32>::random();
    assert_redacted(&format!("{seed:?}"), "SecretBytes", seed.as_bytes());
    let key = AeadKey::generate();
    assert_redacted(&format!("{key:?}"), "AeadKey", key.as_secret().as_bytes());
    let key = StreamKey::generate();
    assert_redacted(&format!("{key:?}"), "StreamKey", key.as_secret().as_bytes());
}
