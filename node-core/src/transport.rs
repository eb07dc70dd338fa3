//! Device links: QUIC with TLS 1.3 through iroh, dialled by device key.
//!
//! The iroh endpoint's key is the device key (the same Ed25519 seed), so the
//! handshake proves which device answered. The endpoint is configured
//! silent: no address lookup (no n0 DNS, pkarr, mDNS or DHT), no port
//! mapping, no relay but those the user names ([`Transport::set_relays`])
//! or a peer's hint points at, and it binds only the addresses it is given,
//! so a daemon on loopback with no relay sends nothing beyond loopback.
//! With a relay, the endpoint keeps a connection to it (its "home relay"),
//! peers can reach it through the relay, and iroh moves a connection to a
//! direct path when hole punching succeeds. Frames are a u32 big-endian
//! length and a payload of at most [`MAX_FRAME`] bytes.
//!
//! Not here: what the frames say (`sync`), or whom to dial (the daemon).

use crate::crypto::SigningKey;
use crate::id::DeviceId;
use crate::relay_tls::{Pins, parse_params};
use crate::sync::MAX_FRAME;
use iroh::endpoint::{
    Connection, IdleTimeout, NetReportConfig, PortmapperConfig, QuicTransportConfig, RecvStream,
    SendStream, presets,
};
use iroh::{Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayMode, RelayUrl, SecretKey};
use iroh_relay::RelayQuicConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// The ALPN: protocol name and version.
pub const ALPN: &[u8] = b"kith/1";
/// The ALPN of a device joining an account with an invite code.
pub const ALPN_JOIN: &[u8] = b"kith-join/1";
/// The ALPN of a call between two devices: control frames on the first
/// stream, media in datagrams (its own connection, so a sync link's
/// renewal never cuts a call).
pub const ALPN_CALL: &[u8] = b"kith/call/1";
/// The ALPN of a room's conference between two participants: control
/// frames (sender keys) on the first stream, sealed media in datagrams.
pub const ALPN_CONF: &[u8] = b"kith/conf/1";
/// The ALPN of a contact request: one stream, the request, the answer and
/// the first messages (`requests`), from a device not yet a contact.
pub const ALPN_REQUEST: &[u8] = b"kith/request/1";

/// What a connection is for, named by its ALPN: the daemon's router hands
/// each accepted connection to the handler of its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Syncing logs, with file streams beside it ([`ALPN`]).
    Sync,
    /// A new device joining the account with an invite code ([`ALPN_JOIN`]).
    Join,
    /// A call ([`ALPN_CALL`]).
    Call,
    /// A contact request ([`ALPN_REQUEST`]).
    Request,
    /// A room's conference ([`ALPN_CONF`]).
    Conf,
}

impl Protocol {
    /// Every protocol this build speaks (what the endpoint accepts).
    pub const ALL: [Protocol; 5] = [
        Protocol::Sync,
        Protocol::Join,
        Protocol::Call,
        Protocol::Request,
        Protocol::Conf,
    ];

    /// Its ALPN.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Sync => ALPN,
            Protocol::Join => ALPN_JOIN,
            Protocol::Call => ALPN_CALL,
            Protocol::Request => ALPN_REQUEST,
            Protocol::Conf => ALPN_CONF,
        }
    }

    /// The protocol of an ALPN, if this build speaks it.
    pub fn from_alpn(alpn: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.alpn() == alpn)
    }
}

/// Most bytes of unread incoming datagrams kept per connection (older ones
/// are dropped beyond it): a peer cannot make a link hold more.
pub const MAX_DATAGRAM_BUFFER: usize = 256 << 10;
/// Bytes of datagrams a call connection queues to send before it drops
/// the oldest: about a second of 1 Mbit/s video. The video sender leaves
/// frames out well before (at 48 kB queued), so what this drops is never
/// audio in a healthy call; the default is a megabyte.
pub const CALL_SEND_BUFFER: usize = 128 << 10;

/// The QUIC configuration of the connections this device dials for calls
/// (the side that accepts uses the endpoint's: QUIC's acceptor cannot
/// tell a call from a sync link before the handshake has chosen its
/// configuration).
///
/// Congestion control is QUIC's default (Cubic), paced by its window.
/// BBR was used here and is not: it paces at the rate it measured, and
/// an audio flow measures a few kB/s, so one full-size packet (a control
/// frame, or iroh's NAT traversal round re-checking the path with
/// 1,200-byte padded challenges) left a pacing debt that held the next
/// audio frames back 98–124 ms
/// (`a_big_packet_on_a_call_connection_does_not_hold_audio_back`).
fn call_config() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .max_idle_timeout(IdleTimeout::try_from(IDLE_TIMEOUT).ok())
        .keep_alive_interval(KEEP_ALIVE)
        .datagram_receive_buffer_size(Some(MAX_DATAGRAM_BUFFER))
        .datagram_send_buffer_size(CALL_SEND_BUFFER)
        .max_concurrent_bidi_streams(4u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .build()
}

/// How long a dial tries a device's IPv6 addresses alone before its
/// IPv4 ones and its relay join in.
pub const IPV6_HEAD_START: Duration = Duration::from_millis(250);

/// How much longer an IPv6 path's round trip may be than the best IPv4
/// path's for IPv6 to be chosen (twice this to keep it once chosen).
pub const IPV6_SLACK: Duration = Duration::from_millis(20);
/// Within one family, how much lower another path's round trip must be to
/// switch to it (against flapping; iroh's figure).
const SWITCH_MIN: Duration = Duration::from_millis(5);

/// Which path a connection uses: a direct IPv6 path when there is one not
/// much slower than the best direct IPv4 path, else the best direct IPv4
/// path, else the relay. iroh's own selector prefers IPv6 by 3 ms but
/// switches only for 5 ms, so an IPv4 path that came up first (or whose
/// first round trip measured lower) kept the link on IPv4 for good.
#[derive(Debug)]
struct Ipv6First;

impl iroh::endpoint::transports::PathSelector for Ipv6First {
    fn select(
        &self,
        ctx: &iroh::endpoint::transports::PathSelectionContext<'_>,
    ) -> iroh::endpoint::transports::PathSelection {
        use iroh::endpoint::transports::{AddrKind, PathSelection};
        let current = ctx.current().cloned();
        let paths: Vec<_> = ctx
            .paths()
            .filter_map(|p| {
                let rtt = p.stats()?.rtt;
                Some((p, rtt))
            })
            .collect();
        // The fastest path of each kind (custom kinds count as IPv4).
        let best = |kind: fn(&AddrKind) -> bool| {
            paths
                .iter()
                .filter(|(p, _)| kind(&p.network_path().addr_kind()))
                .min_by_key(|(_, rtt)| *rtt)
        };
        let v6 = best(|k| matches!(k, AddrKind::IpV6));
        let v4 = best(|k| !matches!(k, AddrKind::IpV6 | AddrKind::Relay));
        let relay = best(|k| matches!(k, AddrKind::Relay));
        let on_v6 = current
            .as_ref()
            .is_some_and(|c| matches!(c.addr_kind(), AddrKind::IpV6));
        let slack = if on_v6 { 2 * IPV6_SLACK } else { IPV6_SLACK };
        let wanted = match (v6, v4) {
            (Some(v6), Some(v4)) if v6.1 <= v4.1 + slack => Some(v6),
            (_, Some(v4)) => Some(v4),
            (Some(v6), None) => Some(v6),
            (None, None) => relay,
        };
        let mut selection = PathSelection::none();
        let Some((wanted, rtt)) = wanted else {
            return selection;
        };
        // Within the kind already in use, switch only for a clear gain.
        let current_rtt = paths
            .iter()
            .filter(|(p, _)| Some(p.network_path()) == current.as_ref())
            .map(|(_, rtt)| *rtt)
            .min();
        let same_kind = current
            .as_ref()
            .is_some_and(|c| c.addr_kind() == wanted.network_path().addr_kind());
        if let (true, Some(current_rtt)) = (same_kind, current_rtt)
            && *rtt + SWITCH_MIN > current_rtt
        {
            return selection;
        }
        selection.set(wanted);
        selection
    }
}

/// Connections idle this long are closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive interval on idle connections.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Why a link operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Binding the endpoint failed.
    #[error("cannot listen on {addrs:?}: {why}")]
    Bind {
        /// The addresses.
        addrs: Vec<SocketAddr>,
        /// The cause.
        why: String,
    },
    /// Dialling a device failed.
    #[error("cannot reach device {device}: {why}")]
    Connect {
        /// The device.
        device: DeviceId,
        /// The cause.
        why: String,
    },
    /// The peer sent a frame over the limit.
    #[error("peer sent a frame of {0} bytes (limit {MAX_FRAME})")]
    FrameTooLarge(usize),
    /// The link failed.
    #[error("link error: {0}")]
    Link(String),
    /// A relay URL that cannot be used.
    #[error("not a relay URL: {0}")]
    BadRelay(String),
}

/// How a link's packets travel now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPath {
    /// Straight between the two devices' addresses.
    Direct,
    /// Through a relay server.
    Relay,
    /// Not known (no path selected yet).
    Unknown,
}

impl LinkPath {
    /// `direct`, `relay` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPath::Direct => "direct",
            LinkPath::Relay => "relay",
            LinkPath::Unknown => "unknown",
        }
    }
}

/// Net reports probe only the relays the user set (none: no probes): an
/// HTTP(S) request to each finds the home relay even where the relay runs
/// no QUIC address discovery. No captive-portal checks.
fn net_report() -> NetReportConfig {
    let mut config = NetReportConfig::minimal();
    config.https_probes = true;
    config
}

/// Parses a relay URL (`http(s)://HOST[:PORT][/?token=T&pin=SHA256&quic=PORT]`,
/// see [`crate::relay_tls`]).
pub fn parse_relay(url: &str) -> Result<RelayUrl, TransportError> {
    let bad = |why: String| {
        TransportError::BadRelay(format!("{}: {why}", crate::relay_tls::redacted(url)))
    };
    parse_params(url).map_err(|e| bad(e.to_string()))?;
    url.parse::<RelayUrl>().map_err(|e| bad(e.to_string()))
}

fn link(e: impl std::fmt::Display) -> TransportError {
    TransportError::Link(e.to_string())
}

/// This device's endpoint.
#[derive(Clone)]
pub struct Transport {
    endpoint: Endpoint,
    /// The relays set by [`Transport::set_relays`].
    relays: std::sync::Arc<std::sync::Mutex<Vec<RelayUrl>>>,
    /// Relay certificates trusted by their pins (from relay URLs).
    pins: Pins,
}

impl std::fmt::Debug for Transport {
    // Relay URLs carry access tokens: only their count is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.endpoint.id())
            .field(
                "relays",
                &self.relays.lock().map(|r| r.len()).unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

/// An authenticated connection to a peer device.
#[derive(Debug, Clone)]
pub struct Link {
    conn: Connection,
    peer: DeviceId,
    protocol: Protocol,
}

impl Transport {
    /// Binds the endpoint for `key` on `listen` (all interfaces, any port,
    /// if empty).
    pub async fn bind(key: &SigningKey, listen: &[SocketAddr]) -> Result<Self, TransportError> {
        let seed = key.seed();
        let secret = SecretKey::from_bytes(seed.as_bytes());
        let config = QuicTransportConfig::builder()
            .max_idle_timeout(IdleTimeout::try_from(IDLE_TIMEOUT).ok())
            .keep_alive_interval(KEEP_ALIVE)
            .datagram_receive_buffer_size(Some(MAX_DATAGRAM_BUFFER))
            .build();
        let defaults: Vec<SocketAddr> = vec![
            SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        ];
        let addrs = if listen.is_empty() {
            defaults
        } else {
            listen.to_vec()
        };
        let bind_err = |why: String| TransportError::Bind {
            addrs: addrs.clone(),
            why,
        };
        let pins = Pins::default();
        let verifier_pins = pins.clone();
        let tls = iroh::tls::CaTlsConfig::custom_server_cert_verifier(std::sync::Arc::new(
            move |provider| verifier_pins.verifier(provider),
        ));
        let mut builder = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .ca_tls_config(tls)
            .alpns(Protocol::ALL.iter().map(|p| p.alpn().to_vec()).collect())
            // A relay transport with no relay: silent until one is set,
            // and able to reach a peer through the relay its hint names.
            .relay_mode(RelayMode::Custom(RelayMap::empty()))
            .clear_address_lookup()
            .portmapper_config(PortmapperConfig::Disabled)
            .net_report_config(net_report())
            .clear_ip_transports()
            .path_selector(std::sync::Arc::new(Ipv6First))
            .transport_config(config);
        for a in &addrs {
            builder = builder.bind_addr(*a).map_err(|e| bind_err(e.to_string()))?;
        }
        let endpoint = builder.bind().await.map_err(|e| bind_err(e.to_string()))?;
        Ok(Self {
            endpoint,
            relays: Default::default(),
            pins,
        })
    }

    /// The addresses actually bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint.bound_sockets()
    }

    /// Addresses others can try to reach this endpoint at (the bound
    /// addresses, with wildcard binds expanded to the interfaces' addresses).
    pub fn hints(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = self
            .endpoint
            .addr()
            .ip_addrs()
            .copied()
            .filter(|a| !a.ip().is_unspecified())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Uses exactly these relays (as home relay and for peers that name
    /// none); an empty list turns relaying off.
    pub async fn set_relays(&self, urls: &[String]) -> Result<(), TransportError> {
        let wanted = urls
            .iter()
            .map(|u| parse_relay(u))
            .collect::<Result<Vec<_>, _>>()?;
        let current: Vec<RelayUrl> = self.relays.lock().map(|r| r.clone()).unwrap_or_default();
        for old in current.iter().filter(|u| !wanted.contains(u)) {
            self.endpoint.remove_relay(old).await;
        }
        for new in wanted.iter().filter(|u| !current.contains(u)) {
            // Checked by parse_relay above.
            let params = parse_params(new.as_str().trim_end_matches('/'))
                .map_err(|e| TransportError::BadRelay(e.to_string()))?;
            let config =
                RelayConfig::new(new.clone(), Some(RelayQuicConfig::new(params.quic_port)));
            self.endpoint
                .insert_relay(new.clone(), std::sync::Arc::new(config))
                .await;
        }
        self.pins.set_from_urls(wanted.iter().map(|u| u.as_str()));
        if let Ok(mut relays) = self.relays.lock() {
            *relays = wanted;
        }
        Ok(())
    }

    /// The relay this endpoint is reachable through, once connected to it.
    pub fn home_relay(&self) -> Option<String> {
        self.endpoint
            .addr()
            .relay_urls()
            .next()
            .map(|u| u.to_string().trim_end_matches('/').to_owned())
    }

    /// The home relay if this endpoint is connected to it now (the relay
    /// may have refused it, or be unreachable).
    pub fn connected_relay(&self) -> Option<String> {
        use iroh::Watcher as _;
        self.endpoint
            .home_relay_status()
            .get()
            .into_iter()
            .find(|s| s.is_connected())
            .map(|s| s.url().to_string().trim_end_matches('/').to_owned())
    }

    /// Why the home relay is not connected, if a try failed: the relay's
    /// refusal, else the last error (tokens redacted).
    pub fn relay_problem(&self) -> Option<String> {
        use iroh::Watcher as _;
        let statuses = self.endpoint.home_relay_status().get();
        let failed = statuses.iter().find(|s| !s.is_connected())?;
        let url = crate::relay_tls::redacted(failed.url().as_str());
        if let Some(reason) = failed.auth_denied_reason() {
            // The relay's words: printable ASCII only (no controls, no
            // reordering marks), bounded.
            let reason: String = reason
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(200)
                .collect();
            return Some(format!("the relay {url} refused this device: {reason}"));
        }
        let error = failed.last_error()?;
        Some(format!(
            "cannot reach the relay {url}: {}",
            crate::relay_tls::redacted(&error.to_string())
        ))
    }

    /// Dials `device` at the given addresses.
    pub async fn connect(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, None, Protocol::Sync).await
    }

    /// Dials `device` at the given addresses and through `relay` (the
    /// relay it was last seen at), whichever answers first.
    pub async fn connect_via(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        relay: Option<&str>,
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, relay, Protocol::Sync)
            .await
    }

    /// Dials `device` for a call (see [`ALPN_CALL`]).
    pub async fn connect_call(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        relay: Option<&str>,
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, relay, Protocol::Call)
            .await
    }

    /// Dials `device` for a room's conference (see [`ALPN_CONF`]).
    pub async fn connect_conf(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        relay: Option<&str>,
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, relay, Protocol::Conf)
            .await
    }

    /// Dials `device` to send it a contact request (see [`ALPN_REQUEST`]).
    pub async fn connect_request(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        relay: Option<&str>,
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, relay, Protocol::Request)
            .await
    }

    /// Dials `device` to join its account (see [`ALPN_JOIN`]).
    pub async fn connect_join(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, None, Protocol::Join).await
    }

    /// Dials with IPv6 first: where the device has addresses of both
    /// families, its IPv6 ones get [`IPV6_HEAD_START`] alone (RFC 8305's
    /// connection attempt delay), then every address and the relay race.
    /// iroh then keeps an IPv6 path unless IPv4 is clearly faster.
    async fn connect_alpn(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        relay: Option<&str>,
        protocol: Protocol,
    ) -> Result<Link, TransportError> {
        let v6: Vec<SocketAddr> = addrs.iter().filter(|a| a.is_ipv6()).copied().collect();
        if !v6.is_empty() && v6.len() < addrs.len() {
            let first = self.connect_once(device, &v6, None, protocol);
            if let Ok(Ok(link)) = tokio::time::timeout(IPV6_HEAD_START, first).await {
                return Ok(link);
            }
        }
        self.connect_once(device, addrs, relay, protocol).await
    }

    async fn connect_once(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        relay: Option<&str>,
        protocol: Protocol,
    ) -> Result<Link, TransportError> {
        let id = iroh::PublicKey::from_bytes(device.as_bytes()).map_err(|e| {
            TransportError::Connect {
                device,
                why: e.to_string(),
            }
        })?;
        let mut addr = EndpointAddr::new(id);
        for a in addrs {
            addr = addr.with_ip_addr(*a);
        }
        if let Some(relay) = relay.and_then(|r| parse_relay(r).ok()) {
            addr = addr.with_relay_url(relay);
        }
        let connected = match protocol {
            // A call's connection carries real-time media: a small
            // datagram queue, and no streams beyond the control one (see
            // `call_config` for why its congestion control is Cubic's).
            Protocol::Call | Protocol::Conf => {
                let options =
                    iroh::endpoint::ConnectOptions::new().with_transport_config(call_config());
                match self
                    .endpoint
                    .connect_with_opts(addr, protocol.alpn(), options)
                    .await
                {
                    Ok(connecting) => connecting.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => self
                .endpoint
                .connect(addr, protocol.alpn())
                .await
                .map_err(|e| e.to_string()),
        };
        let conn = connected.map_err(|why| TransportError::Connect { device, why })?;
        Ok(Link {
            peer: device,
            conn,
            protocol,
        })
    }

    /// Waits for the next incoming connection and its handshake; `None`
    /// once closed. (A daemon uses [`Transport::accept_incoming`], which
    /// does not wait for one handshake before the next.)
    pub async fn accept(&self) -> Option<Result<Link, TransportError>> {
        Some(self.accept_incoming().await?.link().await)
    }

    /// Waits for the next incoming connection attempt, before its
    /// handshake; `None` once closed.
    pub async fn accept_incoming(&self) -> Option<Accepting> {
        self.endpoint.accept().await.map(Accepting)
    }

    /// Closes every connection and the endpoint.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}

/// An incoming connection attempt whose handshake has not run yet.
#[derive(Debug)]
pub struct Accepting(iroh::endpoint::Incoming);

impl Accepting {
    /// Turns the attempt away at once (no handshake work).
    pub fn refuse(self) {
        self.0.refuse();
    }

    /// Runs the handshake: the link, authenticated by the peer's key.
    pub async fn link(self) -> Result<Link, TransportError> {
        let conn = self.0.await.map_err(link)?;
        let protocol = Protocol::from_alpn(conn.alpn())
            .ok_or_else(|| TransportError::Link("wrong protocol".into()))?;
        let peer = DeviceId::from_bytes(*conn.remote_id().as_bytes());
        Ok(Link {
            conn,
            peer,
            protocol,
        })
    }
}

impl Link {
    /// The authenticated peer device.
    pub fn peer(&self) -> DeviceId {
        self.peer
    }
    /// What the connection is for.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
    /// Whether the peer dialled to join our account (see [`ALPN_JOIN`]).
    pub fn is_join(&self) -> bool {
        self.protocol == Protocol::Join
    }
    /// The largest datagram [`Link::send_datagram`] takes now (`None`: the
    /// peer takes none). It follows the path's MTU.
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.conn.max_datagram_size()
    }
    /// Sends an unreliable, unordered datagram (real-time media): it may
    /// be lost, and when the send buffer is full older datagrams are
    /// dropped first. Never waits.
    pub fn send_datagram(&self, data: Vec<u8>) -> Result<(), TransportError> {
        self.conn
            .send_datagram(bytes::Bytes::from(data))
            .map_err(link)
    }
    /// The next datagram from the peer (at most [`MAX_DATAGRAM_BUFFER`]
    /// bytes of them wait unread).
    pub async fn read_datagram(&self) -> Result<Vec<u8>, TransportError> {
        self.conn
            .read_datagram()
            .await
            .map(|b| b.to_vec())
            .map_err(link)
    }
    /// Opens the sync stream (dialer).
    pub async fn open(&self) -> Result<(FrameWriter, FrameReader), TransportError> {
        let (s, r) = self.conn.open_bi().await.map_err(link)?;
        Ok((FrameWriter(s), FrameReader(r)))
    }
    /// Accepts the sync stream (listener).
    pub async fn accept(&self) -> Result<(FrameWriter, FrameReader), TransportError> {
        let (s, r) = self.conn.accept_bi().await.map_err(link)?;
        Ok((FrameWriter(s), FrameReader(r)))
    }
    /// How packets travel on this link now.
    pub fn path(&self) -> LinkPath {
        let paths = self.conn.paths();
        let selected = paths.iter().find(|p| p.is_selected());
        match selected {
            Some(p) if p.is_relay() => LinkPath::Relay,
            Some(p) if p.is_ip() => LinkPath::Direct,
            _ => LinkPath::Unknown,
        }
    }

    /// The peer's address on the path in use, if that path is direct.
    pub fn direct_addr(&self) -> Option<SocketAddr> {
        let paths = self.conn.paths();
        let selected = paths.iter().find(|p| p.is_selected())?;
        match selected.remote_addr() {
            iroh::TransportAddr::Ip(addr) => Some(*addr),
            _ => None,
        }
    }

    /// The round-trip time on the path in use, once known.
    pub fn rtt(&self) -> Option<Duration> {
        self.conn
            .paths()
            .iter()
            .find(|p| p.is_selected())
            .map(|p| p.rtt())
    }

    /// Bytes the outgoing datagram queue takes now without dropping older
    /// ones (it shrinks while the congestion window holds datagrams back).
    pub fn datagram_room(&self) -> usize {
        self.conn.datagram_send_buffer_space()
    }

    /// What the path in use carries now by its congestion window, bits
    /// per second (the window over the round trip), once known.
    pub fn window_rate(&self) -> Option<u64> {
        let paths = self.conn.paths();
        let p = paths.iter().find(|p| p.is_selected())?;
        let rtt = p.rtt().as_secs_f64().max(0.001);
        Some((p.stats().cwnd as f64 * 8.0 / rtt) as u64)
    }

    /// QUIC bytes sent on this connection's paths so far, and of them the
    /// bytes its loss detection declared lost (paths it dropped are no
    /// longer counted: a sum may fall).
    pub fn sent_and_lost(&self) -> (u64, u64) {
        self.conn.paths().iter().fold((0, 0), |(sent, lost), p| {
            let s = p.stats();
            (sent + s.sent_bytes, lost + s.lost_bytes)
        })
    }

    /// This connection's id, stable for its life (another connection to
    /// the same peer has another).
    pub fn id(&self) -> usize {
        self.conn.stable_id()
    }

    /// Whether both handles are the same connection.
    pub fn same_as(&self, other: &Link) -> bool {
        self.conn.stable_id() == other.conn.stable_id()
    }

    /// UDP bytes (sent, received) on this connection so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        let stats = self.conn.stats();
        (stats.udp_tx.bytes, stats.udp_rx.bytes)
    }

    /// Closes the connection with a reason.
    pub fn close(&self, reason: &str) {
        self.conn.close(0u32.into(), reason.as_bytes());
    }
    /// Whether the connection is closed (by either side, or lost).
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }
    /// Whether this side closed the connection ([`Link::close`]).
    pub fn closed_here(&self) -> bool {
        matches!(
            self.conn.close_reason(),
            Some(iroh::endpoint::ConnectionError::LocallyClosed)
        )
    }
    /// Waits until the connection is closed.
    pub async fn closed(&self) {
        let _ = self.conn.closed().await;
    }
}

/// Writes length-prefixed frames.
#[derive(Debug)]
pub struct FrameWriter(SendStream);

/// Reads length-prefixed frames.
#[derive(Debug)]
pub struct FrameReader(RecvStream);

impl FrameWriter {
    /// Sends one frame.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), TransportError> {
        if payload.len() > MAX_FRAME {
            return Err(TransportError::FrameTooLarge(payload.len()));
        }
        let mut buf = Vec::with_capacity(4 + payload.len());
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        self.0.write_all(&buf).await.map_err(link)
    }
    /// Sends several frames in one write.
    pub async fn send_many(&mut self, payloads: &[Vec<u8>]) -> Result<(), TransportError> {
        let mut buf = Vec::new();
        for p in payloads {
            if p.len() > MAX_FRAME {
                return Err(TransportError::FrameTooLarge(p.len()));
            }
            buf.extend_from_slice(&(p.len() as u32).to_be_bytes());
            buf.extend_from_slice(p);
        }
        self.0.write_all(&buf).await.map_err(link)
    }
    /// Writes raw bytes with no framing: only for tests that play a
    /// misbehaving peer.
    #[doc(hidden)]
    pub async fn danger_write_raw(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.0.write_all(bytes).await.map_err(link)
    }

    /// Ends the stream.
    pub fn finish(&mut self) {
        let _ = self.0.finish();
    }
}

impl FrameReader {
    /// Reads one frame; `None` at a clean end of stream.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        self.recv_max(MAX_FRAME).await
    }

    /// [`FrameReader::recv`] for a protocol whose frames are small: a
    /// frame announced over `max` bytes (itself at most [`MAX_FRAME`]) is
    /// refused before anything is read into memory.
    pub async fn recv_max(&mut self, max: usize) -> Result<Option<Vec<u8>>, TransportError> {
        let max = max.min(MAX_FRAME);
        let mut len = [0u8; 4];
        match self.0.read_exact(&mut len).await {
            Ok(()) => {}
            Err(iroh::endpoint::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(e) => return Err(link(e)),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > max {
            return Err(TransportError::FrameTooLarge(len));
        }
        let mut buf = vec![0u8; len];
        self.0.read_exact(&mut buf).await.map_err(link)?;
        Ok(Some(buf))
    }
}
