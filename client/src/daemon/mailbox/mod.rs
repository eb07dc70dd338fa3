//! The daemon's mailbox work, in one loop:
//!
//! - **Own mailbox** (when the account has one): register it, keep a
//!   delivery token for every contact that is not compromised (and none for
//!   those that are), keep this device's prekey fresh and published, grant
//!   contacts their tokens in the 1:1 conversations, and collect: fetch
//!   deposits, open those sealed to this device, store their events (which
//!   then sync on to the other own devices), delete what was opened.
//! - **Contacts' mailboxes**: when no device of a contact is linked and
//!   events wait for it, seal them to its devices' prekeys and deposit them.
//! - **Relay**: the account's relay setting (self log) is applied to the
//!   transport when it changes, so all own devices follow `kith relay use`.
//!
//! Every step is retried on the next round when a server is unreachable;
//! nothing here blocks links or the local socket (the node is locked only
//! for short steps, never across HTTP).
//!
//! The files: `plan` (what the loop remembers between rounds and its
//! backoff, pure, with the time passed in), `server` (the HTTP client of
//! mailbox servers), `relay` (the relay setting applied to the
//! transport).
//!
//! Not here: the sealing format and prekey rules (`node_core::mailbox`,
//! `node_core::node::mailbox`), the server (`kith-mailboxd`).

mod plan;
mod relay;
mod server;

use plan::{State, batches};
use relay::apply_relay;
use server::{Server, check, client, prekeys};
pub(super) use server::{probe, remove_mailbox};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use data_encoding::BASE64;
use node_core::crypto::BoxPublicKey;
use node_core::mailbox::{self, MailboxId, MailboxKey};
use node_core::node::mailbox::Grant;
use node_core::wire;
use node_core::{AccountId, EventId};
use tracing::{debug, info, warn};

use super::Daemon;
/// How often links are checked for contacts that need a deposit.
const DEPOSIT_CHECK: Duration = Duration::from_secs(1);
/// A deposit's payload stays under this (servers accept 256 KiB by default).
const DEPOSIT_PAYLOAD: usize = 200 * 1024;
/// HTTP timeout per request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The smallest deposit payload tried after a server refused a larger one.
const MIN_PAYLOAD: usize = 8 * 1024;
/// Backoff after a failure, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Largest answer read from a mailbox server (a fetch page is at most 8 MiB
/// of deposits, base64).
const MAX_ANSWER: usize = 12 * 1024 * 1024;
/// Most pages fetched in one collection round.
const MAX_PAGES: usize = 64;
/// Most token changes per request (the server's limit).
const TOKEN_CHANGES: usize = 1024;
/// Most events considered per contact per round.
const EVENTS_PER_ROUND: usize = 4 * mailbox::MAX_EVENTS;

/// Runs the mailbox work until the daemon stops.
pub(super) async fn mailbox_loop(daemon: Arc<Daemon>) {
    let http = match client() {
        Ok(http) => http,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "mailbox: no HTTP client; mailboxes are not used");
            return;
        }
    };
    let mut state = State::default();
    let mut relay: Option<String> = None;
    loop {
        apply_relay(&daemon, &mut relay).await;
        if !state.waiting(None, Instant::now()) {
            let result = own_mailbox(&daemon, &http, &mut state).await;
            if let Err(e) = &result {
                warn!(error = %format!("{e:#}"), "mailbox: upkeep failed (backing off)");
            }
            state.outcome(None, result.is_ok(), Instant::now());
        }
        if let Err(e) = deposit_all(&daemon, &http, &mut state).await {
            warn!(error = %format!("{e:#}"), "mailbox: depositing failed (retrying)");
        }
        tokio::select! {
            _ = tokio::time::sleep(DEPOSIT_CHECK) => {}
            _ = daemon.mailbox_notify.notified() => {}
        }
    }
}

/// Register, tokens, prekeys, grants, collection.
async fn own_mailbox(daemon: &Daemon, http: &reqwest::Client, state: &mut State) -> Result<()> {
    let now = crate::now_ms();
    let (setting, due, tokens, rotated) = {
        let node = daemon.node.lock().await;
        let setting = node.mailbox();
        let due = node.grants_due();
        let tokens: HashSet<[u8; 32]> = match &setting {
            Some(m) => node
                .uncompromised_contacts()
                .into_iter()
                .map(|c| *m.token_for(c).hash().as_bytes())
                .collect(),
            None => HashSet::new(),
        };
        let rotated = if setting.is_some() {
            node.rotate_prekeys(now).await?
        } else {
            node.retire_prekeys(now).await?;
            false
        };
        (setting, due, tokens, rotated)
    };
    let Some(setting) = setting else {
        state.registered = None;
        write_grants(daemon, &due).await;
        return Ok(());
    };
    let server = Server::new(http, &setting.url, &setting.key);
    let here = (setting.url.clone(), setting.key.id());
    if state.registered.as_ref() != Some(&here) {
        server.register().await?;
        // The server's token list becomes exactly ours (other own devices,
        // or this one before a restart, may have left others there).
        let all: Vec<&[u8; 32]> = tokens.iter().collect();
        let mut chunks = all.chunks(TOKEN_CHANGES);
        server
            .update_tokens(chunks.next().unwrap_or(&[]), &[], true)
            .await?;
        for chunk in chunks {
            server.update_tokens(chunk, &[], false).await?;
        }
        info!(mailbox = %setting.url, "mailbox registered");
        state.registered = Some(here);
        state.tokens = tokens.clone();
        state.published = None;
        state.collected = None;
    }
    if tokens != state.tokens {
        let add: Vec<&[u8; 32]> = tokens.difference(&state.tokens).collect();
        let remove: Vec<&[u8; 32]> = state.tokens.difference(&tokens).collect();
        for chunk in add.chunks(TOKEN_CHANGES) {
            server.update_tokens(chunk, &[], false).await?;
        }
        for chunk in remove.chunks(TOKEN_CHANGES) {
            server.update_tokens(&[], chunk, false).await?;
        }
        state.tokens = tokens;
    }
    // The prekey is signed and published only when new or not yet there.
    if rotated || state.published.is_none() {
        let (bundle, slot) = {
            let node = daemon.node.lock().await;
            (node.prekey_bundle().await?, node.device().short(16))
        };
        if let Some(bundle) = bundle
            && state.published.as_ref() != Some(&bundle)
        {
            // Its secret half must be on the disk before anyone seals to it.
            daemon.durable_now().await?;
            server.put_prekeys(&slot, &bundle).await?;
            state.published = Some(bundle);
        }
    }
    // Grants go out only once the server knows the tokens they carry.
    write_grants(daemon, &due).await;
    let poll = daemon.mailbox_poll();
    if state.collected.is_none_or(|t| t.elapsed() >= poll) {
        collect(daemon, &server).await?;
        state.collected = Some(Instant::now());
    }
    Ok(())
}

async fn write_grants(daemon: &Daemon, due: &[AccountId]) {
    if due.is_empty() {
        return;
    }
    let mut node = daemon.node.lock().await;
    for contact in due {
        if let Err(e) = node.write_grant(*contact, crate::now_ms()).await {
            warn!(contact = %contact.short(8), error = %e, "mailbox: granting failed");
        }
    }
}

/// Fetches, opens, stores and deletes deposits, page by page (at most
/// [`MAX_PAGES`] a round). Deposits sealed only to other own devices are
/// skipped, not refetched: the cursor moves past them.
async fn collect(daemon: &Daemon, server: &Server<'_>) -> Result<()> {
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = server.fetch(after.as_deref()).await?;
        let mut opened = Vec::new();
        let mut stored = 0;
        for (id, body) in &page.deposits {
            let payload = daemon.node.lock().await.open_deposit(body).await?;
            match payload {
                Ok(Some(payload)) => {
                    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                    let mut node = daemon.node.lock().await;
                    match node
                        .ingest_deposit(&payload, crate::now_ms(), threads)
                        .await
                    {
                        Ok(n) => stored += n,
                        Err(e) => warn!(error = %e, "mailbox: a deposit's events were refused"),
                    }
                    opened.push(id.clone());
                }
                // Sealed only to other own devices: left for them.
                Ok(None) => {}
                Err(e) => {
                    // Malformed: no device can ever open it.
                    warn!(error = %e, "mailbox: dropping a damaged deposit");
                    opened.push(id.clone());
                }
            }
        }
        if !opened.is_empty() {
            // Deleted from the mailbox only once stored for good here.
            daemon.durable_now().await?;
            server.delete(&opened).await?;
            info!(
                deposits = opened.len(),
                events = stored,
                "mailbox: collected"
            );
        }
        if stored > 0 {
            daemon.files_wake();
        }
        match (page.more, page.cursor) {
            (true, Some(cursor)) => after = Some(cursor),
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Deposits for every contact that has a mailbox, is not linked, and has
/// events waiting.
async fn deposit_all(daemon: &Daemon, http: &reqwest::Client, state: &mut State) -> Result<()> {
    let connected: HashSet<_> = daemon.connected().into_iter().collect();
    let targets: Vec<(AccountId, Grant)> = {
        let node = daemon.node.lock().await;
        node.uncompromised_contacts()
            .into_iter()
            .filter(|c| {
                !node
                    .contact_devices(c)
                    .iter()
                    .any(|d| connected.contains(d))
            })
            .filter_map(|c| node.grant_from(c).map(|g| (c, g)))
            .collect()
    };
    for (contact, grant) in targets {
        if state.waiting(Some(contact), Instant::now()) {
            continue;
        }
        let result = deposit_for(daemon, http, state, contact, &grant).await;
        if let Err(e) = &result {
            warn!(contact = %contact.short(8), error = %format!("{e:#}"), "mailbox: deposit failed (backing off)");
        }
        state.outcome(Some(contact), result.is_ok(), Instant::now());
    }
    Ok(())
}

async fn deposit_for(
    daemon: &Daemon,
    http: &reqwest::Client,
    state: &mut State,
    contact: AccountId,
    grant: &Grant,
) -> Result<()> {
    let now = Instant::now();
    let done = state.deposited.entry(contact).or_default();
    done.retain(|_, until| *until > now);
    let skip: HashSet<EventId> = done.keys().copied().collect();
    let waiting = daemon
        .node
        .lock()
        .await
        .undelivered_events(contact, &skip, EVENTS_PER_ROUND)
        .await?;
    let fresh: Vec<(EventId, Vec<u8>)> = waiting
        .into_iter()
        .filter_map(|bytes| Some((node_core::log::Event::decode(&bytes).ok()?.id(), bytes)))
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let bundles = prekeys(http, grant).await?;
    let recipients: Vec<BoxPublicKey> = daemon
        .node
        .lock()
        .await
        .recipient_prekeys(contact, &bundles, crate::now_ms())
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    if recipients.is_empty() {
        bail!("the contact's mailbox has no usable prekey for any of its devices");
    }
    let limit = *state.payload.get(&contact).unwrap_or(&DEPOSIT_PAYLOAD);
    // Own events leave the device only once they are on its disk.
    daemon.durable_now().await?;
    for batch in batches(&fresh, limit) {
        let events: Vec<Vec<u8>> = batch.iter().map(|(_, b)| b.clone()).collect();
        let payload = daemon.node.lock().await.deposit_payload(contact, &events);
        let sealed = mailbox::seal_deposit(&recipients, &payload)?;
        let url = format!("{}/v1/mailboxes/{}/deposits", grant.url, grant.mailbox);
        let answer = http
            .post(&url)
            .header("authorization", grant.token.bearer())
            .body(sealed)
            .send()
            .await
            .with_context(|| format!("depositing at {}", grant.url))?;
        if answer.status() == reqwest::StatusCode::PAYLOAD_TOO_LARGE && limit > MIN_PAYLOAD {
            // Try smaller deposits next time.
            state.payload.insert(contact, (limit / 2).max(MIN_PAYLOAD));
        }
        let receipt = check(answer).await?;
        // Not deposited again until this deposit has expired.
        let left_ms = receipt["expires_ms"]
            .as_i64()
            .map_or(0, |e| e.saturating_sub(crate::now_ms()).max(0));
        let until = Instant::now() + Duration::from_millis(left_ms as u64);
        let done = state.deposited.entry(contact).or_default();
        for (id, _) in batch {
            done.insert(*id, until);
        }
        debug!(contact = %contact.short(8), events = batch.len(), "mailbox: deposited");
    }
    info!(contact = %contact.short(8), events = fresh.len(), "mailbox: deposited for an unreachable contact");
    Ok(())
}
