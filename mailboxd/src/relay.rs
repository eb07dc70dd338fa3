//! The iroh relay `kith-mailboxd` can run beside the mailbox: who may use
//! it, and its QUIC address discovery.
//!
//! - **Access.** A relay on loopback is open. Beyond loopback it admits
//!   only devices that present a listed token (the `token=` of the relay
//!   URL users give `kith relay use`, which their devices pass on to
//!   their contacts) or whose device id is listed; `--relay-open` opens it
//!   to everyone, explicitly. Without one of the three it refuses to start.
//!   The lists are files, read again when they change.
//! - **Address discovery (QAD).** On `--relay-quic-listen` (UDP) the relay
//!   tells each device the address its packets come from, which is what a
//!   device behind a NAT needs to punch a hole. It is QUIC, so TLS 1.3:
//!   the operator's certificate (`--relay-cert`, `--relay-key`), or one
//!   made here once and kept in the data folder, which devices trust by its
//!   pin (`pin=` in the relay URL; printed at start and written to
//!   `DATA/relay-tls/pin`). Address discovery answers anyone: it only
//!   reflects an address back, and QUIC's handshake bounds how much it
//!   sends to an unproven address.
//!
//! Not here: flags and the config file (`config.rs`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use iroh_relay::server::{Access, AccessControl, ClientRequest};
use node_core::crypto::ct_eq;
use node_core::id::DeviceId;
use node_core::relay_tls::token_ok;

/// Most tokens or device ids a list file may hold.
const MAX_LIST: usize = 100_000;
/// Largest list file read.
const MAX_LIST_BYTES: u64 = 16 << 20;

/// The relay's settings, all sources merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelaySettings {
    /// HTTP (WebSocket) address of the relay.
    pub listen: Option<SocketAddr>,
    /// UDP address of QUIC address discovery, if run.
    pub quic_listen: Option<SocketAddr>,
    /// The operator's certificate chain (PEM), for address discovery.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// A file of access tokens, one per line.
    pub tokens: Option<PathBuf>,
    /// A file of device ids allowed, one per line.
    pub devices: Option<PathBuf>,
    /// Open to every device, explicitly.
    pub open: bool,
}

impl RelaySettings {
    /// Refuses combinations that make no sense or an open relay nobody
    /// asked for.
    pub fn check(&self) -> anyhow::Result<()> {
        let Some(listen) = self.listen else {
            if self.quic_listen.is_some() || self.tokens.is_some() || self.devices.is_some() {
                bail!("relay options given without relay_listen");
            }
            return Ok(());
        };
        if self.cert.is_some() != self.key.is_some() {
            bail!("relay_cert and relay_key go together");
        }
        if self.open && (self.tokens.is_some() || self.devices.is_some()) {
            bail!("relay_open admits everyone: drop relay_tokens and relay_devices, or relay_open");
        }
        let restricted = self.tokens.is_some() || self.devices.is_some();
        if !listen.ip().is_loopback() && !restricted && !self.open {
            bail!(
                "the relay on {listen} would be open to anyone: give relay_tokens or \
                 relay_devices to restrict it, or relay_open to open it on purpose"
            );
        }
        Ok(())
    }
}

/// Who may use the relay. The lists live in memory: a connection costs a
/// lookup, never a file read; [`Gate::reload`] (every [`RELOAD_EVERY`],
/// off the async threads) reads the files again when they changed.
#[derive(Debug)]
pub struct Gate {
    open: bool,
    tokens: Option<PathBuf>,
    devices: Option<PathBuf>,
    lists: RwLock<Arc<Lists>>,
    /// What the files looked like when last read.
    stamps: Mutex<[Option<Stamp>; 2]>,
}

/// How often the list files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// A file's modification time, size and inode: a change in any means read
/// it again.
type Stamp = (Option<SystemTime>, u64, u64);

/// The lists as last read.
#[derive(Debug, Default)]
struct Lists {
    tokens: Vec<String>,
    devices: HashSet<[u8; 32]>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0;
    Ok((meta.modified().ok(), meta.len(), ino))
}

/// One entry per line; blank lines and `#` comments skipped.
fn read_list(path: &Path) -> anyhow::Result<Vec<String>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_LIST_BYTES {
        bail!("{} is larger than {MAX_LIST_BYTES} bytes", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let entries: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if entries.len() > MAX_LIST {
        bail!("{} lists more than {MAX_LIST} entries", path.display());
    }
    Ok(entries)
}

fn read_tokens(path: &Path) -> anyhow::Result<Vec<String>> {
    let tokens = read_list(path)?;
    if let Some(bad) = tokens.iter().position(|t| !token_ok(t)) {
        bail!(
            "{}: entry {} is not a token (8-128 of A-Za-z0-9-_.)",
            path.display(),
            bad + 1
        );
    }
    Ok(tokens)
}

fn read_devices(path: &Path) -> anyhow::Result<HashSet<[u8; 32]>> {
    let mut out = HashSet::new();
    for (i, line) in read_list(path)?.iter().enumerate() {
        let Ok(device) = line.parse::<DeviceId>() else {
            bail!("{}: entry {} is not a device id", path.display(), i + 1);
        };
        out.insert(*device.as_bytes());
    }
    Ok(out)
}

/// One list file's turn in [`Gate::reload`]: its new entries if it
/// changed (`stamp` is what it looked like when last read). A file with a
/// bad entry gives what `salvage` keeps of its lines (the entries both
/// listed before and still listed); a file that is gone, nothing; one that
/// cannot be read, no change.
fn reload_list<T: Default>(
    path: &Path,
    stamp_slot: &mut Option<Stamp>,
    what: &str,
    read: impl Fn(&Path) -> anyhow::Result<T>,
    salvage: impl FnOnce(Vec<String>) -> T,
) -> Option<T> {
    match stamp(path) {
        Ok(now) if *stamp_slot == Some(now) => None,
        Ok(now) => {
            *stamp_slot = Some(now);
            match read(path) {
                Ok(entries) => Some(entries),
                Err(e) => {
                    tracing::warn!(
                        "relay: {e:#}; only {what}s both listed before and still listed are admitted"
                    );
                    Some(salvage(read_list(path).unwrap_or_default()))
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if stamp_slot.take().is_some() {
                tracing::warn!("relay: {} is gone: no {what} is listed now", path.display());
            }
            Some(T::default())
        }
        Err(e) => {
            tracing::warn!("relay: reading {}: {e}", path.display());
            None
        }
    }
}

impl Gate {
    /// The gate the settings describe; list files must be readable, tokens
    /// well formed (8-128 of `A-Za-z0-9-_.`) and device ids device ids.
    pub fn new(settings: &RelaySettings) -> anyhow::Result<Self> {
        let mut lists = Lists::default();
        let mut stamps = [None, None];
        if let Some(path) = &settings.tokens {
            stamps[0] = stamp(path).ok();
            lists.tokens = read_tokens(path)?;
        }
        if let Some(path) = &settings.devices {
            stamps[1] = stamp(path).ok();
            lists.devices = read_devices(path)?;
        }
        Ok(Self {
            open: settings.open || (settings.tokens.is_none() && settings.devices.is_none()),
            tokens: settings.tokens.clone(),
            devices: settings.devices.clone(),
            lists: RwLock::new(Arc::new(lists)),
            stamps: Mutex::new(stamps),
        })
    }

    /// Reads the list files again if they changed (blocking file reads).
    /// A file that is gone empties its list (deleting it revokes); one
    /// with a bad entry admits only entries both listed before and still
    /// listed (a removal counts, an addition waits for a good file), with a
    /// warning; one that cannot be read keeps the last list.
    pub fn reload(&self) {
        let Ok(mut stamps) = self.stamps.lock() else {
            return;
        };
        let current = self.lists.read().map(|l| l.clone()).unwrap_or_default();
        let tokens = self.tokens.as_deref().and_then(|path| {
            reload_list(path, &mut stamps[0], "token", read_tokens, |lines| {
                lines
                    .into_iter()
                    .filter(|t| current.tokens.contains(t))
                    .collect()
            })
        });
        let devices = self.devices.as_deref().and_then(|path| {
            reload_list(path, &mut stamps[1], "device", read_devices, |lines| {
                lines
                    .iter()
                    .filter_map(|l| l.parse::<DeviceId>().ok())
                    .map(|d| *d.as_bytes())
                    .filter(|d| current.devices.contains(d))
                    .collect()
            })
        });
        if tokens.is_none() && devices.is_none() {
            return;
        }
        let fresh = Lists {
            tokens: tokens.unwrap_or_else(|| current.tokens.clone()),
            devices: devices.unwrap_or_else(|| current.devices.clone()),
        };
        if let Ok(mut lists) = self.lists.write() {
            *lists = Arc::new(fresh);
        }
    }

    /// Whether a device with this id, presenting this token, may use the
    /// relay.
    pub fn admits(&self, device: &[u8; 32], token: Option<&str>) -> bool {
        if self.open {
            return true;
        }
        let Ok(lists) = self.lists.read().map(|l| l.clone()) else {
            return false;
        };
        if let Some(token) = token {
            // Every entry compared, in constant time each.
            let mut found = false;
            for t in &lists.tokens {
                found |= ct_eq(t.as_bytes(), token.as_bytes());
            }
            if found {
                return true;
            }
        }
        lists.devices.contains(device)
    }
}

impl AccessControl for Gate {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let device = *request.endpoint_id().as_bytes();
        if self.admits(&device, request.auth_token().as_deref()) {
            Access::Allow
        } else {
            tracing::debug!("relay: refused a device without a listed token or id");
            Access::Deny {
                reason: Some("this relay admits listed devices only".into()),
            }
        }
    }
}

/// Starts the relay the settings describe (`None` if none).
pub async fn start(
    settings: &RelaySettings,
    data: &Path,
) -> anyhow::Result<Option<iroh_relay::server::Server>> {
    let Some(listen) = settings.listen else {
        return Ok(None);
    };
    let mut config = iroh_relay::server::ServerConfig::default();
    let mut relay = iroh_relay::server::RelayConfig::new(listen);
    let gate = Arc::new(Gate::new(settings)?);
    if gate.open && listen.ip().is_loopback() && !settings.open {
        tracing::warn!(
            "the relay on {listen} admits every device that reaches it: with a proxy in front \
             it is open to the world (give --relay-tokens or --relay-devices)"
        );
    }
    let reloading = gate.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RELOAD_EVERY).await;
            let gate = reloading.clone();
            let _ = tokio::task::spawn_blocking(move || gate.reload()).await;
        }
    });
    relay.access = gate;
    config.relay = Some(relay);
    if let Some(quic_listen) = settings.quic_listen {
        let (tls, pin) = tls_config(settings, data, listen)?;
        let mut quic = iroh_relay::server::QuicConfig::new(quic_listen);
        quic.server_config = Some(tls);
        config.quic = Some(quic);
        tracing::info!("relay certificate pin: {pin} (relay URLs carry it as pin={pin})");
    }
    let server = iroh_relay::server::Server::spawn(config)
        .await
        .with_context(|| format!("starting the relay on {listen}"))?;
    if let Some(bound) = server.http_addr() {
        tracing::info!("relay listening on http://{bound}");
    }
    if let Some(bound) = server.quic_addr() {
        tracing::info!("relay address discovery on udp {bound}");
    }
    Ok(Some(server))
}

/// The TLS configuration of address discovery and its certificate's pin.
fn tls_config(
    settings: &RelaySettings,
    data: &Path,
    listen: SocketAddr,
) -> anyhow::Result<(rustls::ServerConfig, String)> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert_path, key_path) = match (&settings.cert, &settings.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => self_signed(data, listen)?,
    };
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", cert_path.display()))?;
    let Some(leaf) = chain.first() else {
        bail!("{} holds no certificate", cert_path.display());
    };
    let pin = pin_of(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the relay certificate and key do not go together")?;
    Ok((tls, pin))
}

/// The certificate made here for address discovery, made once and kept
/// (`DATA/relay-tls/`), so its pin stays the same across restarts.
fn self_signed(data: &Path, listen: SocketAddr) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data.join("relay-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec!["localhost".to_owned()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    let made = rcgen::generate_simple_self_signed(names).context("making a certificate")?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    std::fs::write(dir.join("pin"), format!("{}\n", pin_of(made.cert.der())))
        .context("writing the pin")?;
    Ok((cert, key))
}

/// A certificate's pin: its SHA-256, 64 hex digits.
fn pin_of(cert_der: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&node_core::crypto::sha256(cert_der))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(listen: &str) -> RelaySettings {
        RelaySettings {
            listen: Some(listen.parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn an_open_relay_beyond_loopback_must_be_asked_for() {
        assert!(settings("127.0.0.1:3340").check().is_ok());
        let err = settings("0.0.0.0:3340").check().unwrap_err();
        assert!(err.to_string().contains("open to anyone"), "{err}");
        let mut open = settings("0.0.0.0:3340");
        open.open = true;
        assert!(open.check().is_ok());
        let mut both = open.clone();
        both.tokens = Some("t".into());
        assert!(both.check().is_err());
        let lonely = RelaySettings {
            quic_listen: Some("0.0.0.0:7842".parse().unwrap()),
            ..Default::default()
        };
        assert!(lonely.check().is_err());
    }

    #[test]
    fn only_listed_tokens_and_devices_are_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "# friends\nfriends-token-1\n\nsecond.token_2\n").unwrap();
        let devices = dir.path().join("devices");
        let listed = [7u8; 32];
        std::fs::write(&devices, format!("{}\n", DeviceId::from_bytes(listed))).unwrap();
        let mut s = settings("0.0.0.0:3340");
        s.tokens = Some(tokens.clone());
        s.devices = Some(devices);
        let gate = Gate::new(&s).unwrap();
        assert!(gate.admits(&[1; 32], Some("friends-token-1")));
        assert!(gate.admits(&[1; 32], Some("second.token_2")));
        assert!(gate.admits(&listed, None));
        assert!(!gate.admits(&[1; 32], None));
        assert!(!gate.admits(&[1; 32], Some("friends-token")));
        assert!(!gate.admits(&[1; 32], Some("friends-token-10")));
        // The file is read again when it changes; a bad one keeps the
        // last good list; a deleted one revokes.
        std::fs::write(&tokens, "third-token\n").unwrap();
        gate.reload();
        assert!(!gate.admits(&[1; 32], Some("friends-token-1")));
        assert!(gate.admits(&[1; 32], Some("third-token")));
        std::fs::write(&tokens, "third-token\nfourth-token\nbad\n").unwrap();
        gate.reload();
        assert!(gate.admits(&[1; 32], Some("third-token")));
        assert!(
            !gate.admits(&[1; 32], Some("fourth-token")),
            "added by a bad file"
        );
        std::fs::write(&tokens, "bad\n").unwrap();
        gate.reload();
        assert!(
            !gate.admits(&[1; 32], Some("third-token")),
            "removed by a bad file"
        );
        std::fs::write(&tokens, "third-token\n").unwrap();
        gate.reload();
        std::fs::remove_file(&tokens).unwrap();
        gate.reload();
        assert!(!gate.admits(&[1; 32], Some("third-token")));
        assert!(gate.admits(&listed, None), "the device list stays");
        std::fs::write(&tokens, "friends-token-1\n").unwrap();
        // Bad entries are refused at start.
        std::fs::write(&tokens, "short\n").unwrap();
        assert!(Gate::new(&s).is_err());
    }
}
