//! The daemon: owns the [`Node`] and the transport, keeps links with
//! contacts' devices, runs a sync session on each, serves the local socket,
//! and stops cleanly on SIGINT/SIGTERM.

mod dial;
mod link;
mod rpc_server;

use anyhow::{Context, Result};
use node_core::DeviceId;
use node_core::node::Node;
use node_core::transport::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Mutex;
use tracing::{info, warn};

/// What the daemon serves from.
#[derive(Debug)]
pub struct Daemon {
    node: Mutex<Node>,
    transport: Transport,
    /// Live links per peer device.
    links: std::sync::Mutex<HashMap<DeviceId, usize>>,
    /// Addresses peers told us about (peer exchange), per device.
    hints: std::sync::Mutex<HashMap<DeviceId, Vec<SocketAddr>>>,
    /// Answer every received message automatically (benchmarks).
    echo: bool,
    /// Asks `serve` to stop (as SIGTERM does).
    stop: tokio::sync::Notify,
    /// UDP bytes (sent, received) of links already closed.
    wire_closed: std::sync::Mutex<(u64, u64)>,
    /// Links now open, for traffic figures.
    open_links: std::sync::Mutex<Vec<node_core::transport::Link>>,
}

/// Binds the transport; where the port is 0, first tries the port bound
/// last time, so contacts' cards and hints keep working after a restart.
async fn bind(node: &Node, listen: Vec<SocketAddr>) -> Result<Transport> {
    if let Some(port) = node.saved_listen_port().await {
        let again: Vec<SocketAddr> = listen
            .iter()
            .map(|a| {
                if a.port() == 0 {
                    SocketAddr::new(a.ip(), port)
                } else {
                    *a
                }
            })
            .collect();
        if !listen.is_empty()
            && again != listen
            && let Ok(t) = node.bind_transport(&again).await
        {
            return Ok(t);
        }
    }
    let t = node
        .bind_transport(&listen)
        .await
        .context("starting device links")?;
    if let Some(port) = t.local_addrs().first().map(SocketAddr::port) {
        node.save_listen_port(port).await?;
    }
    Ok(t)
}

impl Daemon {
    /// Binds the transport and wraps an opened node.
    pub async fn start(node: Node, listen: Vec<SocketAddr>, echo: bool) -> Result<Arc<Self>> {
        let transport = bind(&node, listen).await?;
        Ok(Arc::new(Self {
            node: Mutex::new(node),
            transport,
            links: Default::default(),
            hints: Default::default(),
            echo,
            stop: tokio::sync::Notify::new(),
            wire_closed: Default::default(),
            open_links: Default::default(),
        }))
    }

    /// Serves until SIGINT or SIGTERM, then closes links and the store.
    pub async fn serve(self: Arc<Self>) -> Result<()> {
        let socket = self.node.lock().await.profile().socket();
        // We hold the profile lock, so a socket file left here is stale.
        let _ = std::fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", socket.display()))?;
        self.log_ready().await;
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        let accept = tokio::spawn(link::accept_loop(Arc::clone(&self)));
        let dial = tokio::spawn(dial::dial_loop(Arc::clone(&self)));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let me = Arc::clone(&self);
                        tokio::spawn(async move { me.handle_client(stream).await });
                    }
                    Err(e) => warn!(error = %e, "accepting a client failed"),
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = self.stop.notified() => break,
            }
        }
        info!("shutting down");
        accept.abort();
        dial.abort();
        drop(listener);
        let _ = std::fs::remove_file(&socket);
        self.transport.close().await;
        Ok(())
    }

    async fn log_ready(&self) {
        let node = self.node.lock().await;
        let addrs: Vec<String> = self
            .transport
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        info!(
            account = %node.account().short(8),
            device = %node.device().short(8),
            listening = %addrs.join(","),
            "daemon ready"
        );
        if !node.is_protected() {
            warn!("this profile has no passphrase: anyone with the files can read it");
        }
    }

    /// Devices with at least one live link.
    fn connected(&self) -> Vec<DeviceId> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(d, _)| *d)
            .collect()
    }

    fn link_up(&self, peer: DeviceId) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        *links.entry(peer).or_default() += 1;
    }

    fn link_down(&self, peer: DeviceId) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = links.get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
    }

    /// Makes [`Daemon::serve`] return, as SIGTERM does.
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }

    /// The node (for in-process benchmarks and tests).
    pub fn node(&self) -> &Mutex<Node> {
        &self.node
    }

    /// The transport's bound addresses.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.transport.local_addrs()
    }

    /// UDP bytes (sent, received) over all links so far.
    pub fn wire_bytes(&self) -> (u64, u64) {
        let closed = *self.wire_closed.lock().unwrap_or_else(|p| p.into_inner());
        let open = self.open_links.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .map(|l| l.wire_bytes())
            .fold(closed, |(a, b), (x, y)| (a + x, b + y))
    }

    /// Closes the node's store.
    pub async fn close(self: Arc<Self>) {
        if let Ok(me) = Arc::try_unwrap(self) {
            me.node.into_inner().close().await;
        }
    }
}
