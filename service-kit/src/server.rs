//! Binding, announcing and serving, until a shutdown signal.
//!
//! [`Server::bind`] binds first, so the real address (port 0 picks one) is
//! known before anything is served; [`Server::announce`] logs it and writes
//! it to the ready file that tests and supervisors wait for;
//! [`Server::serve`] runs until the shutdown future completes, then lets
//! requests in flight finish.
//!
//! Not here: TLS (put a reverse proxy in front) and the routes themselves.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use tokio::net::TcpListener;

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

    /// Serves `router` until `shutdown` completes, then waits for requests
    /// in flight to finish. Handlers may extract
    /// `ConnectInfo<SocketAddr>` (the client's address, e.g. for rate limits).
    pub async fn serve<F>(self, router: Router, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = self.local_addr;
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServeError::Serve { addr, source })?;
        tracing::info!("stopped serving on {addr}");
        Ok(())
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
        let result = server.serve(Router::new(), async {}).await;
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
