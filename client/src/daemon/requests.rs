//! Contact requests over the wire ([`ALPN_REQUEST`]): three frames on
//! one stream — the request (without messages), the answer (with this
//! account's log when kept), and the requester's first messages, sent only
//! if that log proves the answering device (`node_core::requests`).
//!
//! Receiving: a request costs its sender little (a fresh account is one
//! key pair), so it is cheap to refuse. At most [`AT_ONCE`] request
//! connections run at once (the rest are closed at once), each has
//! [`READ_WAIT`] from its handshake to its request, and a token bucket
//! bounds how many are looked at per second across all peers (`busy`
//! beyond it). Whose request it is (the card's one signature) is checked
//! first; `contact` is answered only to a device the held account log
//! proves, everything else gets the same `kept` answer before any further
//! check (so the answer tells a stranger nothing about contacts or
//! refusals). The account log is then checked off the node: against the
//! held log if this device has one, else the carried one (at most 64
//! signatures, two requests at a time, off the async threads). What is
//! kept is bounded by the node (one per account and per device, 1,000 in
//! all, the oldest evicted).
//!
//! Sending: a contact this device has not seen sync their conversation
//! (the other side has not added it) gets a request, right away when it
//! was just added, a second after a message is queued for it, and later
//! with backoff (a minute, growing to an hour), until the other side
//! answers that it is a contact.
//!
//! [`ALPN_REQUEST`]: node_core::transport::ALPN_REQUEST

use super::Daemon;
use anyhow::{Context, Result, bail};
use node_core::node::requests::Standing;
use node_core::requests::{
    ANSWER_BUSY as BUSY, ANSWER_CONTACT as CONTACT, ANSWER_KEPT as KEPT, ContactRequest, How,
    MAX_MESSAGES_FRAME, MAX_REQUEST, RequestAnswer,
};
use node_core::transport::{FrameWriter, Link};
use node_core::{AccountId, DeviceId};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How long a requester has from its handshake to its request, and again
/// from the answer to its messages.
const READ_WAIT: Duration = Duration::from_secs(5);
/// How long the answering side waits for the requester to read a final
/// answer before it closes.
const LINGER: Duration = Duration::from_secs(2);
/// How long a dial for a request may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// Request connections served at once (of the router's 512 incoming).
pub(super) const AT_ONCE: usize = 32;
/// Requests looked at in a burst, and per second after it.
const BURST: f64 = 100.0;
const PER_SECOND: f64 = 20.0;
/// Account logs checked at once.
const VERIFYING: usize = 2;
/// How often the sender looks for contacts to ask.
const TICK: Duration = Duration::from_secs(2);
/// After the daemon starts, how long contacts have to sync before a
/// request goes to them.
const FIRST_WAIT: Duration = Duration::from_secs(30);
/// The first wait after a request was sent, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(60);
const RETRY_MAX: Duration = Duration::from_secs(3600);
/// The first wait after a `busy` answer, and the longest.
const BUSY_FIRST: Duration = Duration::from_secs(5);
const BUSY_MAX: Duration = Duration::from_secs(300);
/// The wait after a message was queued for a contact being asked (the
/// messages of a burst go in one request).
const RETRY_WROTE: Duration = Duration::from_secs(1);

/// The daemon's state for requests.
#[derive(Debug)]
pub(super) struct Requests {
    /// Tokens left, and when they were last counted.
    bucket: Mutex<(f64, Instant)>,
    verifying: Arc<tokio::sync::Semaphore>,
    /// Request connections being served.
    pub(super) serving: Arc<tokio::sync::Semaphore>,
    /// Per contact not synced yet: when to ask next, and how.
    out: Mutex<HashMap<AccountId, Asking>>,
    /// Contacts whose conversation synced, or who answered that this
    /// account is their contact: never asked again by this run.
    synced: Mutex<HashSet<AccountId>>,
    /// How each contact added by this run was found (`contact add` by
    /// handle); others say "introduction" or "card" from the contact.
    how: Mutex<HashMap<AccountId, How>>,
    /// Wakes the sender (a contact added).
    wake: tokio::sync::Notify,
}

/// Asking one contact.
#[derive(Debug, Clone, Copy)]
struct Asking {
    /// When to ask next.
    next: Instant,
    /// The wait after that.
    wait: Duration,
    /// The wait after the next `busy` answer.
    busy: Duration,
    /// How many messages the last request delivered carried.
    carried: usize,
    /// An attempt is under way.
    asking: bool,
    /// A message was queued during that attempt: ask again soon after.
    wrote: bool,
    /// The contact was added again during that attempt: ask again at once.
    again: bool,
}

impl Asking {
    fn at(next: Instant) -> Self {
        Self {
            next,
            wait: RETRY_FIRST,
            busy: BUSY_FIRST,
            carried: 0,
            asking: false,
            wrote: false,
            again: false,
        }
    }
}

/// `d` give or take a quarter, so askers turned away together do not
/// come back together.
fn jitter(d: Duration) -> Duration {
    let b: [u8; 2] = node_core::crypto::random_bytes();
    let f = 0.75 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    d.mul_f64(f)
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            bucket: Mutex::new((BURST, Instant::now())),
            verifying: Arc::new(tokio::sync::Semaphore::new(VERIFYING)),
            serving: Arc::new(tokio::sync::Semaphore::new(AT_ONCE)),
            out: Mutex::default(),
            synced: Mutex::default(),
            how: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Requests {
    /// Takes a token from the bucket; false when it is empty.
    fn take_token(&self) -> bool {
        let mut b = lock(&self.bucket);
        let now = Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * PER_SECOND).min(BURST);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// `account`'s conversation synced (or it said it has us as a contact).
    pub(super) fn synced(&self, account: AccountId) {
        if lock(&self.synced).insert(account) {
            lock(&self.out).remove(&account);
        }
    }

    /// A contact was just added (found `how`, if by handle): ask it now.
    pub(super) fn added(&self, account: AccountId, how: Option<How>) {
        if let Some(how) = how {
            lock(&self.how).insert(account, how);
        }
        lock(&self.synced).remove(&account);
        let mut out = lock(&self.out);
        match out.get_mut(&account) {
            // One attempt at a time: the next starts as soon as this ends
            // (with the card just added).
            Some(a) if a.asking => {
                a.again = true;
                a.wait = RETRY_FIRST;
            }
            _ => {
                out.insert(account, Asking::at(Instant::now()));
            }
        }
        drop(out);
        self.wake.notify_one();
    }

    /// A message was queued for `account`: if it is still being asked and
    /// the last request carried fewer messages than a request can, ask
    /// again soon (the first message is what the other side sees).
    pub(super) fn wrote_to(&self, account: AccountId) {
        let mut out = lock(&self.out);
        if let Some(a) = out.get_mut(&account)
            && a.carried < node_core::requests::MAX_MESSAGES
        {
            if a.asking {
                a.wrote = true;
            } else {
                a.next = a.next.min(Instant::now() + RETRY_WROTE);
            }
            drop(out);
            self.wake.notify_one();
        }
    }
}

/// Serves one incoming request connection (the caller holds one of
/// [`AT_ONCE`] places).
pub(super) async fn serve(d: Arc<Daemon>, link: Link) {
    let peer = link.peer();
    match take(&d, &link).await {
        Ok(Some(kept)) => {
            info!(device = %peer.short(8), account = %kept.short(8), "contact request kept")
        }
        Ok(None) => debug!(device = %peer.short(8), "contact request answered, not kept"),
        Err(e) => {
            debug!(device = %peer.short(8), error = %format!("{e:#}"), "contact request refused")
        }
    }
    link.close("done");
}

/// Sends a final answer and waits (briefly) for the requester to read it.
async fn answer_and_linger(link: &Link, writer: &mut FrameWriter, answer: &RequestAnswer) {
    if writer.send(&answer.encode()).await.is_ok() {
        writer.finish();
        let _ = tokio::time::timeout(LINGER, link.closed()).await;
    }
}

/// Reads, answers and checks one request; the account whose request was
/// kept, if one was.
async fn take(d: &Daemon, link: &Link) -> Result<Option<AccountId>> {
    let from = link.peer();
    let (mut writer, mut reader) = tokio::time::timeout(READ_WAIT, async {
        let (writer, mut reader) = link.accept().await?;
        let frame = reader
            .recv_max(MAX_REQUEST)
            .await?
            .context("the link closed")?;
        anyhow::Ok((writer, (reader, frame)))
    })
    .await
    .context("no request in time")??;
    let (reader, frame) = (&mut reader.0, reader.1);
    if !d.requests.take_token() {
        let busy = RequestAnswer {
            code: BUSY,
            account_log: vec![],
        };
        answer_and_linger(link, &mut writer, &busy).await;
        return Ok(None);
    }
    let request = ContactRequest::decode(&frame)?;
    if !request.messages.is_empty() {
        bail!("messages come after the answer, not in the request");
    }
    // One signature: whose request it is, before any lookup.
    let card = request.check_claims(from, d.account)?;
    let account = card.account;
    let (standing, held, own_log) = {
        let node = d.node.lock().await;
        (
            node.request_standing(account),
            node.account_log_state(account).ok(),
            node.held_account_events(d.account),
        )
    };
    // Only a device the held log proves learns that it is a contact.
    if standing == Standing::Contact && held.as_ref().is_some_and(|s| s.is_active(&from)) {
        let contact = RequestAnswer {
            code: CONTACT,
            account_log: vec![],
        };
        answer_and_linger(link, &mut writer, &contact).await;
        return Ok(None);
    }
    // Everyone else hears the same, before any further check.
    writer.send(&RequestAnswer::kept(own_log).encode()).await?;
    writer.finish();
    let messages = match tokio::time::timeout(READ_WAIT, reader.recv_max(MAX_MESSAGES_FRAME)).await
    {
        Ok(Ok(Some(frame))) => node_core::requests::decode_messages(&frame)?,
        // No messages (the requester could not prove this device, or had none).
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Vec::new(),
    };
    // The requester has all it will get: what follows (dropped as
    // refused, checked, kept) must not show in when the link closes.
    link.close("done");
    if standing == Standing::Refused {
        return Ok(None);
    }
    // The account log: the held one if this device has it (checked when it
    // came: no signature to check now), else the one carried.
    match held {
        Some(state) => ContactRequest::check_active(&state, from, &card)?,
        None => {
            let permit = Arc::clone(&d.requests.verifying).acquire_owned().await?;
            let (request, me) = (request.clone(), d.account);
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                request.verify(from, me, &[]).map(|_| ())
            })
            .await??;
        }
    }
    let shown = ContactRequest {
        messages,
        ..request
    };
    let Some(evicted) = d
        .node
        .lock()
        .await
        .keep_request((account, from), &shown, crate::now_ms())
        .await?
    else {
        return Ok(None);
    };
    if evicted > 0 {
        debug!(evicted, "older contact requests evicted");
    }
    let _ = d.notices.send(crate::rpc::Notice::Request {
        account: account.to_string(),
    });
    Ok(Some(account))
}

/// Sends requests to contacts that have not synced, forever.
pub(super) async fn send_loop(d: Arc<Daemon>) {
    let started = Instant::now();
    loop {
        let _ = tokio::time::timeout(TICK, d.requests.wake.notified()).await;
        let now = Instant::now();
        let contacts: Vec<AccountId> = {
            let node = d.node.lock().await;
            // Not one declined or blocked (a contact that came by
            // introduction only).
            node.contact_accounts()
                .into_iter()
                .filter(|a| node.request_standing(*a) == Standing::Contact)
                .collect()
        };
        let due: Vec<AccountId> = {
            let synced = lock(&d.requests.synced);
            let mut out = lock(&d.requests.out);
            out.retain(|a, _| contacts.contains(a));
            contacts
                .iter()
                .filter(|a| !synced.contains(a))
                .filter(|a| {
                    let asking = out
                        .entry(**a)
                        .or_insert_with(|| Asking::at(started + FIRST_WAIT));
                    let due = !asking.asking && asking.next <= now;
                    if due {
                        asking.asking = true;
                        asking.wrote = false;
                        asking.again = false;
                    }
                    due
                })
                .copied()
                .collect()
        };
        for account in due {
            let d2 = Arc::clone(&d);
            d.spawn(async move {
                let answer = match ask(&d2, account).await {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(account = %account.short(8), error = %format!("{e:#}"), "no contact request sent");
                        (None, 0)
                    }
                };
                after(&d2, account, answer);
            });
        }
    }
}

/// Records an attempt's answer (and how many messages it carried): when
/// to ask next.
fn after(d: &Daemon, account: AccountId, (answer, carried): (Option<u8>, usize)) {
    if answer == Some(CONTACT) {
        d.requests.synced(account);
        return;
    }
    let mut out = lock(&d.requests.out);
    // Gone: synced meanwhile, or no longer a contact.
    let Some(a) = out.get_mut(&account) else {
        return;
    };
    let now = Instant::now();
    a.asking = false;
    if answer == Some(BUSY) {
        a.next = now + jitter(a.busy);
        a.busy = (a.busy * 2).min(BUSY_MAX);
        return;
    }
    a.busy = BUSY_FIRST;
    if answer == Some(KEPT) {
        a.carried = carried;
    }
    a.next = if a.again {
        now
    } else if a.wrote && a.carried < node_core::requests::MAX_MESSAGES {
        now + RETRY_WROTE
    } else {
        now + jitter(a.wait)
    };
    if !a.again {
        a.wait = (a.wait * 4).min(RETRY_MAX);
    }
    a.again = false;
    drop(out);
    d.requests.wake.notify_one();
}

/// Sends `account` a request, to each of its devices: the best answer,
/// and how many messages went with it (to a device its account log
/// proved).
async fn ask(d: &Arc<Daemon>, account: AccountId) -> Result<(Option<u8>, usize)> {
    let how = lock(&d.requests.how).get(&account).cloned();
    let (request, targets, known) = {
        let node = d.node.lock().await;
        let how =
            how.unwrap_or_else(
                || match node.contact(&account).and_then(|c| c.introduced_by) {
                    Some(by) => How::Introduction(by),
                    None => How::Card,
                },
            );
        let request = node
            .request_to(account, how, d.own_hints(), crate::now_ms())
            .await?;
        let targets = super::devices_to_dial(&node, account);
        // What this device holds of the contact's log (so a revoked device
        // cannot prove itself with an old log of the account).
        (
            request,
            targets,
            Arc::new(node.held_account_events(account)),
        )
    };
    let messages = Arc::new(node_core::requests::encode_messages(&request.messages));
    let bytes = Arc::new(
        ContactRequest {
            messages: vec![],
            ..request.clone()
        }
        .encode(),
    );
    let mut tries = tokio::task::JoinSet::new();
    for (device, addrs, relay) in targets {
        let (d, bytes, messages) = (Arc::clone(d), Arc::clone(&bytes), Arc::clone(&messages));
        let known = Arc::clone(&known);
        tries.spawn(async move {
            let to = (account, device);
            let frames = (&bytes[..], &messages[..]);
            send_to(&d, to, (&addrs, relay.as_deref()), frames, &known).await
        });
    }
    let (mut best, mut carried) = (None, 0);
    while let Some(done) = tries.join_next().await {
        match done {
            Ok(Ok((answer, sent))) => {
                if sent {
                    carried = request.messages.len();
                }
                best = Some(match (best, answer) {
                    (_, CONTACT) | (Some(CONTACT), _) => CONTACT,
                    (_, KEPT) | (Some(KEPT), _) => KEPT,
                    _ => BUSY,
                });
            }
            Ok(Err(e)) => {
                debug!(account = %account.short(8), error = %format!("{e:#}"), "contact request not delivered")
            }
            Err(_) => {}
        }
    }
    if best == Some(KEPT) {
        info!(account = %account.short(8), carried, "contact request delivered");
    }
    Ok((best, carried))
}

/// Dials `device` for a request at each address in turn (IPv6 ones
/// first), then through
/// the relay: addresses come from cards and hints that do not say which
/// device they belong to, and a handshake that reaches the wrong device
/// fails the whole dial.
async fn connect(
    d: &Daemon,
    device: DeviceId,
    addrs: &[SocketAddr],
    relay: Option<&str>,
) -> Result<Link> {
    let mut last = anyhow::anyhow!("no address to dial");
    // IPv6 first (a path, once chosen, stays: iroh switches only for a
    // clearly lower round trip).
    let mut ordered = addrs.to_vec();
    ordered.sort_by_key(|a| !a.is_ipv6());
    let tries = ordered
        .iter()
        .map(|a| (std::slice::from_ref(a), None))
        .chain(relay.map(|r| (&[][..], Some(r))));
    for (addrs, relay) in tries {
        match tokio::time::timeout(
            CONNECT_WAIT,
            d.transport.connect_request(device, addrs, relay),
        )
        .await
        {
            Ok(Ok(link)) => return Ok(link),
            Ok(Err(e)) => last = e.into(),
            Err(_) => last = anyhow::anyhow!("dial timed out"),
        }
    }
    Err(last)
}

/// One device's round: the request, its answer, and — if the answer's
/// account log proves that device to be `account`'s — the messages. The
/// answer, and whether the messages went.
async fn send_to(
    d: &Daemon,
    (account, device): (AccountId, DeviceId),
    (addrs, relay): (&[SocketAddr], Option<&str>),
    (request, messages): (&[u8], &[u8]),
    known: &[node_core::log::Event],
) -> Result<(u8, bool)> {
    let link = connect(d, device, addrs, relay).await?;
    let round = async {
        let (mut writer, mut reader) = link.open().await?;
        writer.send(request).await?;
        let reply = reader.recv_max(MAX_REQUEST).await?.context("no answer")?;
        let answer = RequestAnswer::decode(&reply).context("a malformed answer")?;
        let send = answer.proves(account, device, known);
        if send {
            writer.send(messages).await?;
        }
        writer.finish();
        if answer.code == KEPT {
            // The other side closes once it has read the rest.
            let _ = tokio::time::timeout(READ_WAIT, link.closed()).await;
        }
        anyhow::Ok((answer.code, send))
    };
    let result = tokio::time::timeout(READ_WAIT * 2, round)
        .await
        .context("no answer in time")?;
    link.close("done");
    result
}
