//! The daemon: owns the [`Node`], serves the local socket, stops cleanly on
//! SIGINT/SIGTERM.

use crate::rpc::{self, CardReply, Request, Response, Status};
use anyhow::{Context, Result};
use node_core::node::Node;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Mutex;
use tracing::{info, warn};

/// What the daemon serves from.
#[derive(Debug)]
pub struct Daemon {
    node: Mutex<Node>,
    listen: Vec<SocketAddr>,
}

impl Daemon {
    /// A daemon for an opened node.
    pub fn new(node: Node, listen: Vec<SocketAddr>) -> Arc<Self> {
        Arc::new(Self {
            node: Mutex::new(node),
            listen,
        })
    }

    /// Serves the socket until SIGINT or SIGTERM, then closes the store.
    pub async fn serve(self: Arc<Self>) -> Result<()> {
        let socket = self.node.lock().await.profile().socket();
        // We hold the profile lock, so a socket file left here is stale.
        let _ = std::fs::remove_file(&socket);
        let listener =
            UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", socket.display()))?;
        {
            let node = self.node.lock().await;
            info!(account = %node.account().short(8), device = %node.device().short(8), "daemon ready");
            if !node.is_protected() {
                warn!("this profile has no passphrase: anyone with the files can read it");
            }
        }
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let me = Arc::clone(&self);
                        tokio::spawn(async move { me.handle(stream).await });
                    }
                    Err(e) => warn!(error = %e, "accepting a client failed"),
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("shutting down");
        drop(listener);
        let _ = std::fs::remove_file(&socket);
        Ok(())
    }

    async fn handle(&self, stream: UnixStream) {
        let (read, write) = stream.into_split();
        let resp = match rpc::read_request(read).await {
            Ok(req) => match self.answer(req).await {
                Ok(v) => Response::Ok(v),
                Err(e) => Response::Error(format!("{e:#}")),
            },
            Err(e) => Response::Error(format!("{e:#}")),
        };
        if let Err(e) = rpc::write_response(write, &resp).await {
            warn!(error = %e, "answering a client failed");
        }
    }

    async fn answer(&self, req: Request) -> Result<serde_json::Value> {
        let node = self.node.lock().await;
        let value = match req {
            Request::Status => serde_json::to_value(self.status(&node))?,
            Request::Card => {
                let uri = node.card(self.hints(), crate::now_ms())?;
                serde_json::to_value(CardReply { uri })?
            }
        };
        Ok(value)
    }

    fn status(&self, node: &Node) -> Status {
        let mut warnings = Vec::new();
        if !node.is_protected() {
            warnings.push(
                "profile is unprotected: it has no passphrase, so anyone who can read its files can read your messages"
                    .to_owned(),
            );
        }
        if !self.listen.is_empty() {
            warnings.push(
                "device links are not built yet: --listen addresses are not bound".to_owned(),
            );
        }
        Status {
            account: node.account().to_string(),
            device: node.device().to_string(),
            name: node.name().to_owned(),
            listening: vec![],
            peers: vec![],
            outbox: 0,
            protected: node.is_protected(),
            warnings,
        }
    }

    fn hints(&self) -> Vec<String> {
        vec![]
    }

    /// Closes the node's store.
    pub async fn close(self: Arc<Self>) {
        if let Ok(me) = Arc::try_unwrap(self) {
            me.node.into_inner().close().await;
        }
    }
}
