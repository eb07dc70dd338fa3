//! Binding, announcing and serving, until a shutdown signal.
//!
//! [`Server::bind`] binds first, so the real address (port 0 picks one) is
//! known before anything is served; [`Server::announce`] logs it and writes
//! it to the ready file that tests and supervisors wait for;
//! [`Server::serve`] runs until the shutdown future completes, then lets
//! requests in flight finish.
//!
//! Serving is HTTP/1.1 with the limits of [`HttpSettings`]: at most
//! `max_connections` connections at once and `max_connections_per_address`
//! from one client address (a trusted proxy is not counted per address);
//! a connection over either cap is answered 503 and closed. Each
//! connection has deadlines for headers, bodies and keep-alive idleness
//! (`conn.rs`), and each request carries the client's address as
//! [`crate::proxy::ClientAddr`] (from a trusted proxy's header, else the TCP peer).
//!
//! Not here: TLS (put a reverse proxy in front) and the routes themselves.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::conn::{self, Deadlines};
use crate::proxy::TrustedProxies;

/// How the HTTP server treats connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Header, body and keep-alive deadlines.
    pub deadlines: Deadlines,
    /// Most connections open at once.
    pub max_connections: u32,
    /// Most connections open at once from one client address (IPv6: one
    /// /64); trusted proxies are not limited by it.
    pub max_connections_per_address: u32,
    /// Proxies whose `X-Forwarded-For`/`Forwarded` headers are believed.
    pub trusted_proxies: TrustedProxies,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            deadlines: Deadlines {
                header: Duration::from_secs(10),
                body: Duration::from_secs(60),
                idle: Duration::from_secs(60),
            },
            max_connections: 1024,
            max_connections_per_address: 64,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// What a connection over a cap is told before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n\
{\"error\":\"too many connections\"}\n";

/// A bound, not yet serving, HTTP server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, not ours, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The bound socket did not tell its address.
    #[error("cannot read the bound address")]
    LocalAddr(#[source] io::Error),
    /// The ready file could not be written.
    #[error("cannot write the ready file {}", path.display())]
    ReadyFile {
        /// The file we tried to write.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Serving failed (accepting connections broke down).
    #[error("serving HTTP on {addr} failed")]
    Serve {
        /// The address we were serving on.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

impl Server {
    /// Binds `addr`; port 0 lets the system choose.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Self::from_listener(listener)
    }

    /// Wraps a listener bound elsewhere.
    pub fn from_listener(listener: TcpListener) -> Result<Self, ServeError> {
        let local_addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
        Ok(Self {
            listener,
            local_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Logs `listening on ADDR` at info and, if `ready_file` is given, writes
    /// `ADDR:PORT` to it (atomically: a reader never sees half an address).
    pub fn announce(&self, ready_file: Option<&Path>) -> Result<(), ServeError> {
        tracing::info!("listening on {}", self.local_addr);
        match ready_file {
            Some(path) => write_ready_file(path, self.local_addr),
            None => Ok(()),
        }
    }

    /// Serves `router` with `http`'s limits until `shutdown` completes,
    /// then waits for requests in flight to finish. Handlers may extract
    /// `ConnectInfo<SocketAddr>` (the TCP peer) and read the
    /// [`crate::proxy::ClientAddr`] extension (the client, e.g. for rate
    /// limits).
    pub async fn serve<F>(
        self,
        router: Router,
        http: HttpSettings,
        shutdown: F,
    ) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = self.local_addr;
        let (stop, stopped) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(http.max_connections as usize));
        let per_address = Arc::new(AddressCounts::new(http.max_connections_per_address));
        let trusted = Arc::new(http.trusted_proxies.clone());
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        accept_failed(&err).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                refuse(&stream, peer, "max_connections");
                continue;
            };
            let address_slot = if trusted.contains(peer.ip()) {
                None
            } else {
                match AddressCounts::take(&per_address, peer.ip()) {
                    Some(taken) => Some(taken),
                    None => {
                        refuse(&stream, peer, "max_connections_per_address");
                        continue;
                    }
                }
            };
            let served = conn::serve(
                stream,
                peer,
                router.clone(),
                http.deadlines,
                Arc::clone(&trusted),
                stopped.clone(),
            );
            tokio::spawn(async move {
                served.await;
                drop((slot, address_slot));
            });
        }
        stop.send_replace(true);
        // Every connection holds a slot until it is done.
        let _all = slots.acquire_many(http.max_connections).await;
        tracing::info!("stopped serving on {addr}");
        Ok(())
    }
}

/// Answers 503 to a connection over a cap and closes it. One non-blocking
/// write: a fresh socket's send buffer has room, and a client that is not
/// reading does not hold up the accept loop.
fn refuse(stream: &TcpStream, peer: SocketAddr, cap: &str) {
    tracing::debug!(%peer, "refusing a connection: {cap} reached");
    let _ = stream.try_write(OVER_CAPACITY);
}

/// After a failed `accept`: errors of one connection are skipped; others
/// (such as running out of file descriptors) are logged and slowed down,
/// so the loop does not spin.
async fn accept_failed(err: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection failed: {err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Open connections per client address.
#[derive(Debug)]
struct AddressCounts {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One open connection of an address; counted until dropped.
#[derive(Debug)]
struct AddressSlot {
    counts: Arc<AddressCounts>,
    key: IpAddr,
}

impl AddressCounts {
    fn new(max: u32) -> Self {
        Self {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for `ip`, or `None` if it has `max` connections open.
    fn take(this: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = crate::rate::client_key(ip);
        let mut open = this.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= this.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: Arc::clone(this),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Installs SIGINT and SIGTERM handlers now and returns a future that
/// completes when either arrives.
///
/// Call it before announcing the server: a signal sent as soon as the ready
/// file appears must not find the default handler (which kills the process).
/// Must be called inside a tokio runtime.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    imp::install()
}

fn write_ready_file(path: &Path, addr: SocketAddr) -> Result<(), ServeError> {
    let error = |source| ServeError::ReadyFile {
        path: path.to_owned(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, addr.to_string()).map_err(error)?;
    std::fs::rename(&partial, path).map_err(error)
}

#[cfg(unix)]
mod imp {
    use std::future::Future;
    use std::io;

    use tokio::signal::unix::{SignalKind, signal};

    pub(super) fn install() -> io::Result<impl Future<Output = ()> + Send + 'static> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
                _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            }
        })
    }
}

#[cfg(not(unix))]
mod imp {
    use std::future::Future;
    use std::io;

    pub(super) fn install() -> io::Result<impl Future<Output = ()> + Send + 'static> {
        Ok(async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
                Err(err) => tracing::error!("cannot wait for Ctrl-C: {err}"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_zero_gets_a_real_port_and_a_ready_file() {
        let server = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind loopback");
        assert_ne!(server.local_addr().port(), 0);
        let dir = tempfile::tempdir().expect("temp dir");
        let ready = dir.path().join("ready");
        server.announce(Some(&ready)).expect("announce");
        let written = std::fs::read_to_string(&ready).expect("ready file");
        assert_eq!(written, server.local_addr().to_string());
    }

    #[tokio::test]
    async fn serve_returns_when_shutdown_completes() {
        let server = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind loopback");
        let result = server
            .serve(Router::new(), HttpSettings::default(), async {})
            .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn bind_error_names_the_address() {
        let first = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind loopback");
        let err = Server::bind(first.local_addr()).await.expect_err("in use");
        assert!(
            err.to_string().contains(&first.local_addr().to_string()),
            "{err}"
        );
    }
}
