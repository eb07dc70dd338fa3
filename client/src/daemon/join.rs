//! The inviting side of `kith init --join`: a device dials with the join
//! ALPN, shows an invite code's secret and proof of its key; if both hold,
//! the node adds it to the account and this sends it the account log and
//! the self log.

use super::Daemon;
use anyhow::{Context, Result};
use node_core::LogId;
use node_core::sync::join::JoinMsg;
use node_core::sync::{Msg, events_messages};
use node_core::transport::Link;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How long a joining device may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one join connection.
pub(super) async fn serve(d: Arc<Daemon>, link: Link) {
    let peer = link.peer();
    match tokio::time::timeout(REQUEST_TIMEOUT * 3, exchange(&d, &link)).await {
        Ok(Ok(())) => info!(device = %peer.short(8), "a new device joined this account"),
        Ok(Err(e)) => warn!(device = %peer.short(8), error = %format!("{e:#}"), "join refused"),
        Err(_) => warn!(device = %peer.short(8), "join timed out"),
    }
    // Let the joining device read everything before the link goes.
    let _ = tokio::time::timeout(Duration::from_secs(5), link.closed()).await;
    link.close("done");
}

async fn exchange(d: &Daemon, link: &Link) -> Result<()> {
    let (mut writer, mut reader) = link.accept().await?;
    let frame = tokio::time::timeout(REQUEST_TIMEOUT, reader.recv())
        .await
        .context("no join request")??
        .context("the link closed")?;
    let JoinMsg::Request { secret, name, join } =
        JoinMsg::decode(&frame).context("malformed join request")?
    else {
        anyhow::bail!("expected a join request");
    };
    let peer = link.peer();
    // The node is not held while talking to the (unauthenticated) peer.
    let (answer, account) = {
        let mut node = d.node.lock().await;
        let answer = node
            .accept_join(peer, &secret, &name, join, crate::now_ms())
            .await;
        (answer, node.account())
    };
    let snapshot = match answer {
        Ok(s) => s,
        Err(e) => {
            let why = e.to_string();
            let refusal = JoinMsg::Refused(why.clone()).encode();
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, writer.send(&refusal)).await;
            writer.finish();
            anyhow::bail!(why);
        }
    };
    // The new device's entry (and the spent invite) must be on the disk
    // before the device holds it: after a power cut this device would sign
    // another entry with the same sequence number.
    d.durable_now().await?;
    let (account_log, self_log) = (LogId::account(account), LogId::self_log(account));
    let mut frames = vec![JoinMsg::Accepted.encode()];
    frames.extend(
        events_messages(account_log, snapshot.account)
            .iter()
            .map(Msg::encode),
    );
    frames.extend(
        events_messages(self_log, snapshot.self_log)
            .iter()
            .map(Msg::encode),
    );
    frames.push(Msg::Synced { log: self_log }.encode());
    writer.send_many(&frames).await?;
    writer.finish();
    Ok(())
}
