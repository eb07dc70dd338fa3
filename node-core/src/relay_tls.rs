//! Relay URLs as kith writes them, and how their TLS certificates are
//! trusted.
//!
//! A relay URL is `http(s)://HOST[:PORT][/?PARAMS]`. Three parameters mean
//! something here; the whole URL (parameters included) is what devices set,
//! report as their home relay and pass on in hints, so a contact who dials
//! through a device's relay carries the same parameters:
//!
//! - `token=T`: the relay's access token (the relay reads it from the
//!   query of the connection request; see `deploy/relay`).
//! - `pin=HEX`: the SHA-256 of the relay's certificate (64 hex digits). A
//!   certificate with that digest is trusted for that host whatever signed
//!   it and whatever its dates (as SSH trusts a known host key): this is
//!   how a self-signed relay certificate is used. Without a pin, or for a
//!   different certificate, the certificate must chain to the Mozilla roots
//!   and name the host.
//! - `quic=PORT`: the UDP port of the relay's QUIC address discovery
//!   (default 7842, iroh's). Address discovery tells a device behind a NAT
//!   its public address, which hole punching needs.
//!
//! Not here: dialling (`transport`), or the server (`kith-mailboxd`).

/// The UDP port of a relay's QUIC address discovery unless its URL names
/// another (iroh's default).
pub const DEFAULT_QUIC_PORT: u16 = 7842;

/// What a relay URL says beyond where the relay is.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayParams {
    /// The host (a name, or an IP address without brackets), lowercase.
    pub host: String,
    /// The certificate digest to trust for `host`, if the URL pins one.
    pub pin: Option<[u8; 32]>,
    /// The UDP port of the relay's address discovery.
    pub quic_port: u16,
    /// Whether the URL carries an access token.
    pub has_token: bool,
}

impl std::fmt::Debug for RelayParams {
    // The token is a capability: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayParams")
            .field("host", &self.host)
            .field("pin", &self.pin.map(|p| data_encoding::HEXLOWER.encode(&p)))
            .field("quic_port", &self.quic_port)
            .field("has_token", &self.has_token)
            .finish()
    }
}

/// Why a relay URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayUrlError {
    /// Not `http(s)://HOST…`.
    #[error("a relay URL is http(s)://HOST[:PORT][/?token=T&pin=SHA256&quic=PORT]")]
    Shape,
    /// A `pin` that is not 64 hex digits.
    #[error("pin= takes the certificate's SHA-256 as 64 hex digits")]
    Pin,
    /// A `quic` that is not a port.
    #[error("quic= takes a UDP port (1-65535)")]
    QuicPort,
    /// A token with characters a URL query cannot carry plainly.
    #[error("token= takes letters, digits, '-', '_' and '.' only (8-128 of them)")]
    Token,
    /// A parameter given twice.
    #[error("the relay URL names {0}= twice")]
    Repeated(&'static str),
}

/// Reads a relay URL (see the module documentation). Unknown parameters
/// are refused too: a typo must not silently drop a pin.
pub fn parse_params(url: &str) -> Result<RelayParams, RelayUrlError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(RelayUrlError::Shape)?;
    if rest.contains(['#', ' ', '\t', '\n', '\r', '@']) {
        return Err(RelayUrlError::Shape);
    }
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = host_of(authority).ok_or(RelayUrlError::Shape)?;
    let query = match tail.split_once('?') {
        Some((path, q)) if path.is_empty() || path == "/" => q,
        None if tail.is_empty() || tail == "/" => "",
        _ => return Err(RelayUrlError::Shape),
    };
    let mut params = RelayParams {
        host,
        pin: None,
        quic_port: DEFAULT_QUIC_PORT,
        has_token: false,
    };
    let mut quic_seen = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or(RelayUrlError::Shape)?;
        match name {
            "pin" => {
                if params.pin.is_some() {
                    return Err(RelayUrlError::Repeated("pin"));
                }
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(value.as_bytes())
                    .map_err(|_| RelayUrlError::Pin)?;
                params.pin = Some(bytes.try_into().map_err(|_| RelayUrlError::Pin)?);
            }
            "quic" => {
                if quic_seen {
                    return Err(RelayUrlError::Repeated("quic"));
                }
                quic_seen = true;
                params.quic_port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(RelayUrlError::QuicPort)?;
            }
            "token" => {
                if params.has_token {
                    return Err(RelayUrlError::Repeated("token"));
                }
                if !token_ok(value) {
                    return Err(RelayUrlError::Token);
                }
                params.has_token = true;
            }
            _ => return Err(RelayUrlError::Shape),
        }
    }
    Ok(params)
}

/// Whether `token` is a usable relay token: 8 to 128 of `A-Za-z0-9-_.`.
pub fn token_ok(token: &str) -> bool {
    (8..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The text with every `token=…` value replaced by `…` (for logs and
/// messages that may quote a relay URL).
pub fn redacted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("token=") {
        out.push_str(&rest[..i + "token=".len()]);
        out.push('…');
        let after = &rest[i + "token=".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The host of `HOST[:PORT]` or `[V6][:PORT]`, lowercase, without brackets.
fn host_of(authority: &str) -> Option<String> {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6.split_once(']')?;
        if !(after.is_empty() || port_ok(after.strip_prefix(':')?)) {
            return None;
        }
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        ip
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port_ok(port) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    ok.then(|| host.to_ascii_lowercase())
}

fn port_ok(port: &str) -> bool {
    port.parse::<u16>().is_ok_and(|p| p != 0)
}

#[cfg(feature = "node")]
pub use verify::Pins;

/// The certificate check (device builds only: the servers read relay
/// URLs, they do not dial relays).
#[cfg(feature = "node")]
mod verify {
    use super::parse_params;
    use crate::crypto::ct_eq;
    use std::net::IpAddr;
    use std::sync::{Arc, RwLock};

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// The certificate digests this device trusts for relay hosts: those of
    /// the relays the account set, nothing else. Shared by the endpoint's
    /// verifier and whoever sets relays. Cheap to clone.
    #[derive(Debug, Clone, Default)]
    pub struct Pins(Arc<RwLock<Vec<Pin>>>);

    /// A host and the certificate digest trusted for it.
    type Pin = (String, [u8; 32]);

    impl Pins {
        /// Trusts exactly the pins these relay URLs name (the account's own
        /// relays: pins never come from peers, who could otherwise pin a
        /// certificate of theirs for any host, our relay's included).
        pub fn set_from_urls<'a>(&self, urls: impl IntoIterator<Item = &'a str>) {
            let pins: Vec<Pin> = urls
                .into_iter()
                .filter_map(|u| parse_params(u).ok())
                .filter_map(|p| Some((p.host, p.pin?)))
                .collect();
            if let Ok(mut current) = self.0.write() {
                *current = pins;
            }
        }

        pub(super) fn trusts(&self, host: &str, cert: &[u8]) -> bool {
            let digest = crate::crypto::sha256(cert);
            self.0.read().is_ok_and(|pins| {
                pins.iter()
                    .any(|(h, d)| h.eq_ignore_ascii_case(host) && ct_eq(d, &digest))
            })
        }

        /// The certificate verifier for the endpoint's TLS to relays: a pinned
        /// certificate for its host, else the Mozilla roots.
        pub fn verifier(
            &self,
            provider: Arc<CryptoProvider>,
        ) -> std::io::Result<Arc<dyn ServerCertVerifier>> {
            let roots = Arc::new(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(std::io::Error::other)?;
            Ok(Arc::new(PinningVerifier {
                pins: self.clone(),
                webpki,
                provider,
            }))
        }
    }

    #[derive(Debug)]
    struct PinningVerifier {
        pins: Pins,
        webpki: Arc<WebPkiServerVerifier>,
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for PinningVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let host = match server_name {
                ServerName::DnsName(name) => name.as_ref().to_ascii_lowercase(),
                ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
                _ => String::new(),
            };
            if !host.is_empty() && self.pins.trusts(&host, end_entity.as_ref()) {
                return Ok(ServerCertVerified::assertion());
            }
            self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_are_read_with_their_parameters() {
        let pin = "ab".repeat(32);
        let p = parse_params(&format!(
            "http://203.0.113.1:3340/?token=abcdefgh12&pin={pin}&quic=7000"
        ))
        .unwrap();
        assert_eq!(p.host, "203.0.113.1");
        assert_eq!(p.pin, Some([0xab; 32]));
        assert_eq!(p.quic_port, 7000);
        assert!(p.has_token);
        let p = parse_params("https://Relay.Example.org").unwrap();
        assert_eq!(p.host, "relay.example.org");
        assert_eq!((p.pin, p.quic_port, p.has_token), (None, 7842, false));
        assert_eq!(parse_params("http://[::1]:3340/").unwrap().host, "::1");
        for bad in [
            "ftp://x",
            "http://",
            "http://h/path",
            "http://h:0",
            "http://h:x",
            "http://u@h",
            "http://h/?pin=12",
            "http://h/?quic=0",
            "http://h/?token=short",
            "http://h/?token=has%20space",
            "http://h/?quic=1&quic=2",
            "http://h/?unknown=1",
            "http://h/?token",
            "http://h/#frag",
        ] {
            assert!(parse_params(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_never_show() {
        assert_eq!(
            redacted("http://h:1/?token=secret123&quic=5"),
            "http://h:1/?token=…&quic=5"
        );
        assert_eq!(
            redacted("http://h:1/?token=secret123"),
            "http://h:1/?token=…"
        );
        assert!(
            !format!("{:?}", parse_params("http://h/?token=secret123").unwrap()).contains("secret")
        );
    }

    #[cfg(feature = "node")]
    #[test]
    fn a_pin_is_trusted_for_its_host_only() {
        let pins = Pins::default();
        let cert = b"not really a certificate";
        let digest = crate::crypto::sha256(cert);
        let url = format!(
            "http://Relay.Example:1/?pin={}",
            data_encoding::HEXLOWER.encode(&digest)
        );
        pins.set_from_urls([url.as_str(), "https://other.example"]);
        assert!(pins.trusts("relay.example", cert));
        assert!(pins.trusts("RELAY.example", cert));
        assert!(!pins.trusts("other.example", cert));
        assert!(!pins.trusts("relay.example", b"another certificate"));
        // A relay no longer set is no longer pinned.
        pins.set_from_urls(["https://other.example"]);
        assert!(!pins.trusts("relay.example", cert));
    }
}
