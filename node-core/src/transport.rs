//! Device links: QUIC with TLS 1.3 through iroh, dialled by device key.
//!
//! The iroh endpoint's key is the device key (the same Ed25519 seed), so the
//! handshake proves which device answered. The endpoint is configured
//! silent: no relays, no address lookup (no n0 DNS, pkarr, mDNS or DHT), no
//! port mapping, and it binds only the addresses it is given, so a daemon
//! on loopback sends nothing beyond loopback. Frames are a u32 big-endian
//! length and a payload of at most [`MAX_FRAME`] bytes.
//!
//! Not here: what the frames say (`sync`), or whom to dial (the daemon).

use crate::crypto::SigningKey;
use crate::id::DeviceId;
use crate::sync::MAX_FRAME;
use iroh::endpoint::{
    Connection, IdleTimeout, NetReportConfig, PortmapperConfig, QuicTransportConfig, RecvStream,
    SendStream, presets,
};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey};
use std::net::SocketAddr;
use std::time::Duration;

/// The ALPN: protocol name and version.
pub const ALPN: &[u8] = b"kith/1";
/// The ALPN of a device joining an account with an invite code.
pub const ALPN_JOIN: &[u8] = b"kith-join/1";
/// Connections idle this long are closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive interval on idle connections.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Why a link operation failed.
#[derive(Debug, thiserror::Error)]
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
}

fn link(e: impl std::fmt::Display) -> TransportError {
    TransportError::Link(e.to_string())
}

/// This device's endpoint.
#[derive(Debug, Clone)]
pub struct Transport {
    endpoint: Endpoint,
}

/// An authenticated connection to a peer device.
#[derive(Debug, Clone)]
pub struct Link {
    conn: Connection,
    peer: DeviceId,
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
        let mut builder = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .alpns(vec![ALPN.to_vec(), ALPN_JOIN.to_vec()])
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .portmapper_config(PortmapperConfig::Disabled)
            .net_report_config(NetReportConfig::minimal())
            .clear_ip_transports()
            .transport_config(config);
        for a in &addrs {
            builder = builder.bind_addr(*a).map_err(|e| bind_err(e.to_string()))?;
        }
        let endpoint = builder.bind().await.map_err(|e| bind_err(e.to_string()))?;
        Ok(Self { endpoint })
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

    /// Dials `device` at the given addresses.
    pub async fn connect(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, ALPN).await
    }

    /// Dials `device` to join its account (see [`ALPN_JOIN`]).
    pub async fn connect_join(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
    ) -> Result<Link, TransportError> {
        self.connect_alpn(device, addrs, ALPN_JOIN).await
    }

    async fn connect_alpn(
        &self,
        device: DeviceId,
        addrs: &[SocketAddr],
        alpn: &[u8],
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
        let conn =
            self.endpoint
                .connect(addr, alpn)
                .await
                .map_err(|e| TransportError::Connect {
                    device,
                    why: e.to_string(),
                })?;
        Ok(Link { peer: device, conn })
    }

    /// Waits for the next incoming connection; `None` once closed.
    pub async fn accept(&self) -> Option<Result<Link, TransportError>> {
        let incoming = self.endpoint.accept().await?;
        Some(
            async move {
                let conn = incoming.await.map_err(link)?;
                if conn.alpn() != ALPN && conn.alpn() != ALPN_JOIN {
                    return Err(TransportError::Link("wrong protocol".into()));
                }
                let peer = DeviceId::from_bytes(*conn.remote_id().as_bytes());
                Ok(Link { conn, peer })
            }
            .await,
        )
    }

    /// Closes every connection and the endpoint.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}

impl Link {
    /// The authenticated peer device.
    pub fn peer(&self) -> DeviceId {
        self.peer
    }
    /// Whether the peer dialled to join our account (see [`ALPN_JOIN`]).
    pub fn is_join(&self) -> bool {
        self.conn.alpn() == ALPN_JOIN
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
        let mut len = [0u8; 4];
        match self.0.read_exact(&mut len).await {
            Ok(()) => {}
            Err(iroh::endpoint::ReadExactError::FinishedEarly(0)) => return Ok(None),
            Err(e) => return Err(link(e)),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(TransportError::FrameTooLarge(len));
        }
        let mut buf = vec![0u8; len];
        self.0.read_exact(&mut buf).await.map_err(link)?;
        Ok(Some(buf))
    }
}
