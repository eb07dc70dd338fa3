//! The account's relay setting (self log), applied to the transport when
//! it changes, so all own devices follow `kith relay use`.

use super::*;

/// Sets the transport's relay to the account's relay setting if it changed.
pub(in crate::daemon) async fn apply_relay(daemon: &Daemon, applied: &mut Option<String>) {
    let wanted = daemon
        .node
        .lock()
        .await
        .setting(crate::daemon::rpc_server::RELAY_SETTING)
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    if wanted == *applied {
        return;
    }
    let urls: Vec<String> = wanted.iter().cloned().collect();
    match daemon.transport.set_relays(&urls).await {
        Ok(()) => {
            let shown = wanted.as_deref().map(node_core::relay_tls::redacted);
            info!(relay = ?shown, "relay set");
            *applied = wanted;
        }
        Err(e) => warn!(error = %e, "relay: cannot use it"),
    }
}
