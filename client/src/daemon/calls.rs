//! Calls on this device: one task per call owns its state machine
//! (`node_core::call::Call`) and carries out what it says — frames on the
//! call connections, connections closed or made again, the record written
//! to the conversation when the caller's call ends. Call connections are
//! their own QUIC connections (ALPN `kith/call/1`), one per device the
//! call reaches; each has a reader task that feeds the call task. Nothing
//! here waits for the node except resolving a target and writing the
//! record; incoming connections are checked against the published sharing
//! snapshot (an active device of a contact) before a byte is read.
//!
//! Media runs in tasks of its own (`media.rs`) started and stopped by the
//! machine's effects; media that stops coming for 1.5 s counts as a lost
//! connection (the call then waits 10 s for it to come back). See
//! `docs/calls.md`.

use super::Daemon;
use anyhow::{Context, Result, bail};
use node_core::call::machine::{Call, CallState, Command, Effect, EndReason, Side};
use node_core::call::{CallId, CallMsg, CallRecord, Outcome};
use node_core::transport::{FrameReader, FrameWriter, Link};
use node_core::{AccountId, DeviceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How long dialling one device for a call may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long an incoming call connection has to say what it is.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(10);
/// How long `kith call` waits for a device to ring.
const RING_WAIT: Duration = Duration::from_secs(10);
/// Longest control frame (the longest message, a handover, is 91 bytes).
const MAX_CONTROL_FRAME: usize = 256;
/// Most calls this device keeps at once, ended ones included (an offer
/// beyond it is answered busy; the oldest ended call is forgotten first).
const MAX_CALLS: usize = 16;
/// Inputs queued per call.
const INPUTS: usize = 64;
/// How long one control frame may take to leave (a peer that grants no
/// flow-control credit loses its connection, not the call task).
const SEND_WAIT: Duration = Duration::from_secs(2);
/// How long a user's command may take to be carried out.
const COMMAND_WAIT: Duration = Duration::from_secs(15);

/// What a call task is told.
enum Input {
    /// A control message from a device on its connection.
    Msg(DeviceId, CallMsg),
    /// A (new) connection to a device, with its control stream.
    Up(DeviceId, Link, FrameWriter, FrameReader),
    /// The connection to a device ended.
    Lost(DeviceId),
    /// The device's media stopped coming (a cut path): its connection
    /// counts as lost.
    Silent(DeviceId),
    /// The own device this call is moving to says it has it now.
    Moved(DeviceId),
    /// The user's command, answered once carried out.
    Command(Command, oneshot::Sender<Result<(), String>>),
    /// Where this device's audio comes from and goes (before answering).
    Audio(super::media::Audio),
}

/// A call as `kith call status` shows it.
#[derive(Debug, Clone)]
struct View {
    id: CallId,
    contact: AccountId,
    side: Side,
    state: CallState,
    video: bool,
    /// Whether media would flow now (started and not stopped).
    media: bool,
    /// How the connection to the peer travels, once known.
    path: Option<&'static str>,
    /// The callee's device that answered (for a moved call's record).
    answered_by: Option<DeviceId>,
    /// Woken whenever the state changes.
    changed: Arc<tokio::sync::Notify>,
    rtt_ms: Option<u64>,
    /// The call's media counts (read live).
    counts: Arc<super::media::Counts>,
    /// The contact was marked compromised when it rang: answering takes
    /// an explicit word.
    compromised: bool,
}

/// One call this device knows of.
struct Entry {
    tx: mpsc::Sender<Input>,
    view: Arc<Mutex<View>>,
    /// Whether this device's sound is muted (read by the send task).
    muted: Arc<std::sync::atomic::AtomicBool>,
    /// When it ended (for forgetting the oldest).
    ended: Option<Instant>,
}

/// Most times one contact may ring this device in [`RING_WINDOW`]
/// (beyond it the offer is refused and nothing rings).
const RINGS_PER_WINDOW: usize = 5;
/// The window [`RINGS_PER_WINDOW`] counts in.
const RING_WINDOW: Duration = Duration::from_secs(60);

/// The calls of a daemon.
#[derive(Default)]
pub(super) struct Calls {
    table: Mutex<HashMap<CallId, Entry>>,
    /// When each contact last rang this device (at most
    /// [`RINGS_PER_WINDOW`] kept per contact; contacts only).
    rings: Mutex<HashMap<AccountId, std::collections::VecDeque<Instant>>>,
    /// Benchmarks: rings allowed per window beyond [`RINGS_PER_WINDOW`].
    pub(super) extra_rings: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.table.lock().map(|t| t.len()).unwrap_or(0);
        write!(f, "Calls({n})")
    }
}

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a ring from `contact`; false (and not counted) if it rang
    /// [`RINGS_PER_WINDOW`] times in the last [`RING_WINDOW`].
    fn ring_allowed(&self, contact: AccountId, now: Instant) -> bool {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < RING_WINDOW);
            !times.is_empty()
        });
        let times = rings.entry(contact).or_default();
        let extra = self.extra_rings.load(std::sync::atomic::Ordering::Relaxed);
        if times.len() >= RINGS_PER_WINDOW.saturating_add(extra) {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Whether a call is ringing or on here.
    pub(super) fn busy(&self) -> bool {
        self.lock().values().any(|e| !view_of(e).state_is_over())
    }

    /// Keeps a new call, in one step with the checks: refused (given
    /// back) if its id is known (unless `over_ended` and that call ended
    /// here: a call answered on another own device and then moved here),
    /// if this device is ringing or in a call, or if the table is full of
    /// calls still going (the oldest ended one is forgotten to make room).
    fn insert_idle(&self, id: CallId, entry: Entry, over_ended: bool) -> Result<(), Entry> {
        let mut table = self.lock();
        let known = match table.get(&id) {
            Some(old) => !(over_ended && old.ended.is_some()),
            None => false,
        };
        if known || table.values().any(|e| !view_of(e).state_is_over()) {
            return Err(entry);
        }
        if !room_for_one(&mut table) {
            return Err(entry);
        }
        table.insert(id, entry);
        Ok(())
    }

    /// Another own device says call `id` with `contact` is on there: kept
    /// (for `call status`) as answered elsewhere, naming that device,
    /// unless the call is known here or `contact` is not a contact. Never
    /// makes this device busy; the oldest ended call makes room.
    fn elsewhere(&self, id: CallId, contact: AccountId, on: DeviceId, is_contact: bool) {
        if !is_contact {
            return;
        }
        let mut table = self.lock();
        if let Some(e) = table.get(&id) {
            // The call this device is moving there: the move is done
            // (waiting its turn: a full queue must not drop it).
            let tx = e.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(Input::Moved(on)).await;
            });
            return;
        }
        if !room_for_one(&mut table) {
            return;
        }
        let (tx, _) = mpsc::channel(1);
        let view = View {
            id,
            contact,
            side: Side::Caller,
            state: CallState::Ended(EndReason::AnsweredElsewhere(on)),
            video: false,
            media: false,
            path: None,
            answered_by: None,
            changed: Default::default(),
            compromised: false,
            rtt_ms: None,
            counts: Default::default(),
        };
        table.insert(
            id,
            Entry {
                tx,
                view: Arc::new(Mutex::new(view)),
                muted: Default::default(),
                ended: Some(Instant::now()),
            },
        );
    }

    /// The call a command names: `id` (a unique prefix), or the one call
    /// in a state the command fits when none is given.
    fn find(
        &self,
        id: Option<&str>,
        fits: impl Fn(&View) -> bool,
    ) -> Result<(CallId, mpsc::Sender<Input>)> {
        let table = self.lock();
        let found: Vec<(CallId, mpsc::Sender<Input>)> = table
            .iter()
            .filter(|(cid, e)| match id {
                Some(want) => cid.to_string().starts_with(&want.trim().to_lowercase()),
                None => fits(&view_of(e)),
            })
            .map(|(cid, e)| (*cid, e.tx.clone()))
            .collect();
        match (found.len(), id) {
            (1, _) => Ok(found.into_iter().next().context("one call")?),
            (0, Some(want)) => bail!("no call {want:?} on this device"),
            (0, None) => bail!("no call on this device fits (see `kith call status`)"),
            (_, Some(want)) => bail!("{want:?} matches several calls; give more of the id"),
            (_, None) => bail!("several calls fit; name one (see `kith call status`)"),
        }
    }
}

/// Makes room for one more call in a full table by forgetting the call
/// that ended first; false if none has ended.
fn room_for_one(table: &mut HashMap<CallId, Entry>) -> bool {
    if table.len() < MAX_CALLS {
        return true;
    }
    let oldest = table
        .iter()
        .filter_map(|(id, e)| e.ended.map(|t| (t, *id)))
        .min();
    match oldest {
        Some((_, old)) => {
            table.remove(&old);
            true
        }
        None => false,
    }
}

fn view_of(e: &Entry) -> View {
    e.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl View {
    fn state_is_over(&self) -> bool {
        matches!(self.state, CallState::Ended(_))
    }

    /// The state word of `kith call status`.
    fn state_word(&self) -> &'static str {
        match (self.side, self.state) {
            (_, CallState::Ended(EndReason::AnsweredElsewhere(_))) => "answered-elsewhere",
            (_, CallState::Ended(_)) => "ended",
            (_, CallState::Active { .. } | CallState::Reconnecting { .. }) => "active",
            (Side::Caller, _) => "ringing",
            (Side::Callee, _) => "incoming",
        }
    }
}

/// `kith call TARGET`: dials every active device of the contact, offers
/// the call on each, and returns once one rings (or says why none does).
pub(super) async fn start(
    d: &Arc<Daemon>,
    target: &str,
    video: bool,
    audio: super::media::Audio,
) -> Result<CallId> {
    let (contact, targets) = {
        let node = d.node.lock().await;
        if let node_core::node::rooms::Target::Room(room) = node.resolve_any(target)? {
            drop(node);
            return super::conf::start(d, room, video, audio).await;
        }
        let contact = node.resolve_target(target)?;
        (contact, super::devices_to_dial(&node, contact))
    };
    if d.calls.busy() || d.confs.busy() {
        bail!("this device is already in a call (see `kith call status`)");
    }
    let dials = targets.into_iter().map(|(dev, addrs, relay)| {
        let d = Arc::clone(d);
        async move {
            tokio::time::timeout(CONNECT_WAIT, async {
                let link = match d
                    .transport
                    .connect_call(dev, &addrs, relay.as_deref())
                    .await
                {
                    Ok(link) => link,
                    Err(e) => {
                        debug!(peer = %dev.short(8), error = %e, "dialling for a call failed");
                        return None;
                    }
                };
                match link.open().await {
                    Ok((writer, reader)) => Some((dev, link, writer, reader)),
                    Err(e) => {
                        debug!(peer = %dev.short(8), error = %e, "no call stream");
                        link.close("no stream");
                        None
                    }
                }
            })
            .await
            .ok()
            .flatten()
        }
    });
    let links: Vec<_> = futures_join_all(dials)
        .await
        .into_iter()
        .flatten()
        .collect();
    if links.is_empty() {
        bail!("no device of this contact can be reached now");
    }
    let devices: Vec<DeviceId> = links.iter().map(|(dev, ..)| *dev).collect();
    let id = CallId::random();
    let (call, effects) =
        Call::dial(id, &devices, video, Instant::now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let view = match spawn_call(d, call, contact, effects, links, audio, None) {
        Ok(view) => view,
        Err(links) => {
            for (_, link, ..) in links {
                link.close("busy here");
            }
            bail!("this device is already in a call (see `kith call status`)");
        }
    };
    // Until a device rings (or the call ends).
    let deadline = Instant::now() + RING_WAIT;
    loop {
        let v = view.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Registered before the state is read: no change is missed.
        let changed = v.changed.notified();
        match v.state {
            CallState::Calling if Instant::now() < deadline => {
                let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
            }
            CallState::Calling => {
                let _ = command(d, Some(&id.to_string()), Command::Hangup).await;
                bail!(
                    "no device of this contact rang within {} s",
                    RING_WAIT.as_secs()
                );
            }
            CallState::Ended(why) => bail!("the call ended: {}", reason_text(why)),
            _ => return Ok(id),
        }
    }
}

/// Serves an incoming call connection: only an active device of a contact
/// may ring this device; its first frame must offer or resume a call.
pub(super) async fn serve(d: Arc<Daemon>, link: Link) {
    let peer = link.peer();
    let own = {
        let s = d.sharing.borrow();
        s.is_own_device(&peer) && s.device_active(d.account, peer) && peer != d.device
    };
    if own {
        return take_over(d, link).await;
    }
    let account = {
        let s = d.sharing.borrow();
        s.account_of_device(&peer)
            .filter(|a| s.is_contact(a) && s.device_active(*a, peer))
    };
    let Some(account) = account else {
        debug!(peer = %peer.short(8), "call from a device that is not a contact's: refused");
        link.close("not a contact's device");
        return;
    };
    // A contact marked compromised rings, with a warning, and is answered
    // only on an explicit word (`--anyway`): whoever holds a stolen device
    // may be calling, but so may the person, to say so.
    let compromised = !d
        .node
        .lock()
        .await
        .uncompromised_contacts()
        .contains(&account);
    let opened = tokio::time::timeout(FIRST_FRAME_WAIT, async {
        let (writer, mut reader) = link.accept().await.ok()?;
        let frame = reader.recv_max(MAX_CONTROL_FRAME).await.ok()??;
        Some((writer, reader, frame))
    })
    .await;
    let Ok(Some((writer, reader, frame))) = opened else {
        link.close("no call offered");
        return;
    };
    let msg = match CallMsg::decode(&frame) {
        Ok(m) => m,
        Err(e) => {
            debug!(peer = %peer.short(8), error = %e, "bad call frame");
            link.close("bad call frame");
            return;
        }
    };
    match msg {
        CallMsg::Offer { call: id, video } => {
            // A contact ringing again and again is refused for a while.
            if !d.calls.ring_allowed(account, Instant::now()) {
                debug!(peer = %peer.short(8), "too many calls from this contact: refused");
                link.close("too many calls");
                return;
            }
            let (call, effects) = Call::incoming(id, peer, video, false, Instant::now());
            let links = vec![(peer, link.clone(), writer, reader)];
            let audio = d.default_audio();
            let mut links = match spawn_call(&d, call, account, effects, links, audio, None) {
                Ok(view) => {
                    view.lock().unwrap_or_else(|p| p.into_inner()).compromised = compromised;
                    info!(call = %id, peer = %peer.short(8), compromised, "call ringing");
                    return;
                }
                Err(links) => links,
            };
            // Busy (or the id is known): say so on the caller's stream and
            // keep nothing, from a task of its own with a bounded wait, so
            // the router's slot is free at once.
            let Some((_, link, mut writer, _reader)) = links.pop() else {
                return;
            };
            tokio::spawn(async move {
                let busy = CallMsg::Busy(id).encode();
                let _ = tokio::time::timeout(SEND_WAIT, writer.send(&busy)).await;
                writer.finish();
                tokio::time::sleep(Duration::from_millis(200)).await;
                link.close("busy");
            });
        }
        CallMsg::Resume(id) => {
            let tx = d.calls.lock().get(&id).map(|e| e.tx.clone());
            let Some(tx) = tx else {
                link.close("no such call");
                return;
            };
            // The call task checks that the device is its peer; a call
            // whose queue is full loses the resumption, not the router.
            if tx
                .try_send(Input::Up(peer, link.clone(), writer, reader))
                .is_err()
                || tx.try_send(Input::Msg(peer, CallMsg::Resume(id))).is_err()
            {
                link.close("call busy");
            }
        }
        _ => link.close("a call starts with an offer"),
    }
}

/// An own device hands this device its side of a call (`kith call move`
/// there): the first frame must be the handover, naming an active device
/// of an uncompromised contact; this device, if idle, takes the call,
/// says so, and dials the other side to resume the call here.
async fn take_over(d: Arc<Daemon>, link: Link) {
    let peer = link.peer();
    let opened = tokio::time::timeout(FIRST_FRAME_WAIT, async {
        let (writer, mut reader) = link.accept().await.ok()?;
        let frame = reader.recv_max(MAX_CONTROL_FRAME).await.ok()??;
        Some((writer, frame))
    })
    .await;
    let Ok(Some((mut writer, frame))) = opened else {
        link.close("no handover");
        return;
    };
    let h = match CallMsg::decode(&frame) {
        Ok(CallMsg::Handover(h)) => h,
        Ok(CallMsg::Elsewhere { call, contact }) => {
            let is_contact = d.sharing.borrow().is_contact(&contact);
            d.calls.elsewhere(call, contact, peer, is_contact);
            link.close("noted");
            return;
        }
        _ => {
            debug!(peer = %peer.short(8), "an own device's call connection without a handover");
            link.close("a handover was expected");
            return;
        }
    };
    let contact = {
        let s = d.sharing.borrow();
        s.account_of_device(&h.peer)
            .filter(|a| s.is_contact(a) && s.device_active(*a, h.peer))
    };
    let contact = match contact {
        Some(a) if d.node.lock().await.uncompromised_contacts().contains(&a) => Some(a),
        _ => None,
    };
    let now = Instant::now();
    let elapsed = Duration::from_millis(h.elapsed_ms.min(node_core::call::record::MAX_DURATION_MS));
    let since = now.checked_sub(elapsed).unwrap_or(now);
    let reply = match contact {
        None => CallMsg::End {
            call: h.call,
            why: node_core::call::msg::Ended::Hangup,
        },
        Some(contact) => {
            let side = if h.caller { Side::Caller } else { Side::Callee };
            let (call, effects) = Call::taken_over(h.call, h.peer, side, h.video, since, now);
            let answered = Some((h.answered_by, since));
            match spawn_call(
                &d,
                call,
                contact,
                effects,
                vec![],
                d.default_audio(),
                answered,
            ) {
                Ok(_) => {
                    info!(call = %h.call, from = %peer.short(8), "call taken over from an own device");
                    CallMsg::Accepted(h.call)
                }
                Err(_) => CallMsg::Busy(h.call),
            }
        }
    };
    let _ = tokio::time::timeout(SEND_WAIT, writer.send(&reply.encode())).await;
    writer.finish();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        link.close("handed over");
    });
}

/// `kith call move DEVICE [CALL]`: hands this device's side of the call
/// to another own device (which dials the other side and resumes the
/// call there); this device's media goes on until the other side has
/// switched.
pub(super) async fn move_call(d: &Arc<Daemon>, device: &str, id: Option<&str>) -> Result<()> {
    let (cid, tx) = d
        .calls
        .find(id, |v| matches!(v.state, CallState::Active { .. }))?;
    let view = {
        let table = d.calls.lock();
        view_of(table.get(&cid).context("the call is over")?)
    };
    let CallState::Active { peer, since } = view.state else {
        bail!("the call is not on here (see `kith call status`)");
    };
    let (to, addrs, relay) = {
        let node = d.node.lock().await;
        let want = device.trim().to_lowercase();
        let found: Vec<DeviceId> = node
            .devices()?
            .into_iter()
            .filter(|x| x.state == "active" && !x.current)
            .filter(|x| {
                (want.len() >= 4 && x.id.to_string().starts_with(&want))
                    || x.name.to_lowercase() == want
            })
            .map(|x| x.id)
            .collect();
        let to = match found.as_slice() {
            [one] => *one,
            [] => bail!(
                "no other active device of this account is called {device:?} (see `kith device list`)"
            ),
            _ => bail!("{device:?} matches several devices; give more of the id"),
        };
        let (addrs, relay) = dial_info(&node, to);
        (to, addrs, relay)
    };
    // The other side hears of the move first (so the device taking over
    // is expected when it dials); a handover that fails cancels it.
    ask(&tx, Command::Move { to }).await?;
    // The peer the Move went to (a move of the other side's that finished
    // just before would have changed it): the handover must name it.
    let now_peer = {
        let table = d.calls.lock();
        table.get(&cid).map(|e| view_of(e).state)
    };
    if !matches!(now_peer, Some(CallState::Active { peer: p, .. }) if p == peer) {
        let (reply, _) = oneshot::channel();
        let _ = tx.send(Input::Command(Command::CancelMove, reply)).await;
        bail!("the call changed while moving; try again");
    }
    let handover = node_core::call::Handover {
        call: cid,
        peer,
        caller: view.side == Side::Caller,
        video: view.video,
        elapsed_ms: u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
        answered_by: view.answered_by.unwrap_or(peer),
    };
    let reply = tokio::time::timeout(CONNECT_WAIT + SEND_WAIT, async {
        let link = d
            .transport
            .connect_call(to, &addrs, relay.as_deref())
            .await
            .ok()?;
        let (mut writer, mut reader) = link.open().await.ok()?;
        writer
            .send(&CallMsg::Handover(handover).encode())
            .await
            .ok()?;
        let reply = reader.recv_max(MAX_CONTROL_FRAME).await.ok()??;
        link.close("handed over");
        CallMsg::decode(&reply).ok()
    })
    .await
    .ok()
    .flatten();
    let refused = match reply {
        Some(CallMsg::Accepted(c)) if c == cid => return Ok(()),
        Some(CallMsg::Busy(_)) => "that device is in a call",
        Some(_) => "that device did not take the call",
        // No answer: the device may have taken the call all the same, so
        // the move is not cancelled; it completes if that device reaches
        // the other side, and lapses otherwise.
        None => bail!(
            "that device did not answer; if it took the call, the call moves there, otherwise it goes on here"
        ),
    };
    // A device that said no did not take the call: cancel the move.
    let (reply, _) = oneshot::channel();
    let _ = tx.send(Input::Command(Command::CancelMove, reply)).await;
    bail!("{refused}; the call goes on here")
}

/// Runs `kith call answer|decline|hangup` (answering with `audio`).
pub(super) async fn command_with(
    d: &Daemon,
    id: Option<&str>,
    cmd: Command,
    (audio, anyway): (Option<super::media::Audio>, bool),
) -> Result<()> {
    let fits = |v: &View| match cmd {
        Command::Answer { .. } | Command::Decline => {
            v.side == Side::Callee && v.state == CallState::Ringing
        }
        Command::Hangup => !v.state_is_over(),
        Command::Move { .. } | Command::CancelMove => {
            matches!(v.state, CallState::Active { .. })
        }
    };
    let (cid, tx) = d.calls.find(id, fits)?;
    if matches!(cmd, Command::Answer { .. }) && !anyway {
        let compromised = d
            .calls
            .lock()
            .get(&cid)
            .is_some_and(|e| view_of(e).compromised);
        if compromised {
            bail!(
                "this caller is marked compromised: whoever holds their device may be calling; answer with --anyway if you are sure"
            );
        }
    }
    if let Some(audio) = audio {
        tx.send(Input::Audio(audio))
            .await
            .map_err(|_| anyhow::anyhow!("the call is over"))?;
    }
    let ends = matches!(cmd, Command::Hangup | Command::Decline);
    ask(&tx, cmd).await?;
    // Hung up or declined: the command returns once the call is over on
    // this device (its sound written out, its record kept), so what a
    // script reads next (`--audio-out`, `call status`) is complete.
    if ends {
        let _ = tokio::time::timeout(COMMAND_WAIT, tx.closed()).await;
    }
    Ok(())
}

/// Gives a call's task `cmd` and waits (at most [`COMMAND_WAIT`]) until
/// it is carried out.
async fn ask(tx: &mpsc::Sender<Input>, cmd: Command) -> Result<()> {
    let (reply, answer) = oneshot::channel();
    tx.send(Input::Command(cmd, reply))
        .await
        .map_err(|_| anyhow::anyhow!("the call is over"))?;
    tokio::time::timeout(COMMAND_WAIT, answer)
        .await
        .map_err(|_| anyhow::anyhow!("the call did not respond"))?
        .map_err(|_| anyhow::anyhow!("the call is over"))?
        .map_err(|e| anyhow::anyhow!(e))
}

/// Where to dial `dev`: the addresses and relay the node last knew for it
/// (a contact's card's addresses too).
fn dial_info(
    node: &node_core::node::Node,
    dev: DeviceId,
) -> (Vec<std::net::SocketAddr>, Option<String>) {
    let addrs = node
        .dial_targets()
        .into_iter()
        .find(|(d, _)| *d == dev)
        .map(|(_, a)| a)
        .unwrap_or_default();
    (addrs, node.relay_of(&dev))
}

/// `kith call mute [--off]`: this device's sound is silenced (or not)
/// from the next frame on; the call goes on.
pub(super) fn mute(d: &Daemon, id: Option<&str>, on: bool) -> Result<()> {
    if super::conf::mute(d, id, on) {
        return Ok(());
    }
    let (cid, _) = d.calls.find(id, |v| !v.state_is_over())?;
    let table = d.calls.lock();
    let entry = table.get(&cid).context("the call is over")?;
    entry.muted.store(on, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Runs `kith call decline|hangup`.
pub(super) async fn command(d: &Daemon, id: Option<&str>, cmd: Command) -> Result<()> {
    if matches!(cmd, Command::Hangup) && super::conf::hangup(d, id).await? {
        return Ok(());
    }
    command_with(d, id, cmd, (None, false)).await
}

/// Every call this device knows, for `kith call status`.
pub(super) fn status(d: &Daemon) -> Vec<kith_client::answers::CallInfo> {
    let mut views: Vec<(View, bool)> = d
        .calls
        .lock()
        .values()
        .map(|e| {
            (
                view_of(e),
                e.muted.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
        .collect();
    let sharing = d.sharing.borrow().clone();
    views.sort_by_key(|(v, _)| (v.state_is_over(), v.id));
    views
        .into_iter()
        .map(|(v, muted)| kith_client::answers::CallInfo {
            id: v.id.to_string(),
            target: v.contact.to_string(),
            state: v.state_word().into(),
            device: match v.state {
                CallState::Active { peer, .. } | CallState::Reconnecting { peer, .. } => {
                    Some(peer.to_string())
                }
                // Only an own device is named: the caller's word for it is
                // not trusted beyond that.
                CallState::Ended(EndReason::AnsweredElsewhere(dev) | EndReason::Moved(dev))
                    if sharing.is_own_device(&dev) =>
                {
                    Some(dev.to_string())
                }
                _ => None,
            },
            participants: match v.state {
                CallState::Active { peer, .. } | CallState::Reconnecting { peer, .. } => {
                    vec![peer.to_string()]
                }
                _ => vec![],
            },
            path: v.path.map(str::to_owned),
            rtt_ms: v.rtt_ms,
            loss: v.counts.loss(),
            audio_kbps: v.media.then(|| {
                v.counts
                    .sent_bps
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .div_ceil(1000)
            }),
            video_kbps: (v.media
                && v.counts
                    .video
                    .frames_sent
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0)
            .then(|| {
                v.counts
                    .video
                    .sent_bps
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .div_ceil(1000)
            }),
            video: v.video,
            media: v.media,
            longest_gap_ms: v.counts.longest_gap_ms(),
            muted,
            resumed: v.counts.resumed.load(std::sync::atomic::Ordering::Relaxed),
            bad_datagrams: v.counts.bad.load(std::sync::atomic::Ordering::Relaxed)
                + v.counts
                    .video
                    .bad
                    .load(std::sync::atomic::Ordering::Relaxed),
            compromised: v.compromised,
            audio_device: v
                .counts
                .sound_device
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            video_frames_sent: v
                .counts
                .video
                .frames_sent
                .load(std::sync::atomic::Ordering::Relaxed),
            video_frames_shown: v
                .counts
                .video
                .frames_decoded
                .load(std::sync::atomic::Ordering::Relaxed),
            video_frames_lost: v
                .counts
                .video
                .frames_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            video_keys_asked: v
                .counts
                .video
                .keys_asked
                .load(std::sync::atomic::Ordering::Relaxed),
            ended: match v.state {
                CallState::Ended(why) => Some(reason_word(why).into()),
                _ => None,
            },
            room: None,
            keys_made: 0,
            frames_replayed: 0,
            frames_stale_key: 0,
            frames_forged: 0,
            speaking: None,
            participant_accounts: Vec::new(),
            forwarder: None,
            forwarding_for: 0,
            uplink_kbps: 0,
            always_on: false,
            video_from: Vec::new(),
        })
        .chain(super::conf::status(d))
        .collect()
}

/// Something of each call's media counts (benchmarks).
fn of_each_call<T>(d: &Daemon, f: impl Fn(&super::media::Counts) -> T) -> Vec<(String, T)> {
    d.calls
        .lock()
        .iter()
        .map(|(id, e)| (id.to_string(), f(&view_of(e).counts)))
        .collect()
}

/// Each call's media clocks (benchmarks).
pub(super) fn clocks(d: &Daemon) -> Vec<(String, super::media::Clocks)> {
    let mut out = of_each_call(d, |c| *c.clocks.lock().unwrap_or_else(|p| p.into_inner()));
    out.extend(super::conf::clocks(d));
    out
}

/// Each call's video clocks (benchmarks).
pub(super) fn video_clocks(d: &Daemon) -> Vec<(String, super::video::VideoClocks)> {
    of_each_call(d, |c| {
        *c.video.clocks.lock().unwrap_or_else(|p| p.into_inner())
    })
}

fn reason_word(why: EndReason) -> &'static str {
    match why {
        EndReason::HungUp => "hung-up",
        EndReason::TheyHungUp => "they-hung-up",
        EndReason::NoAnswer => "no-answer",
        EndReason::Declined => "declined",
        EndReason::Busy => "busy",
        EndReason::Cancelled => "cancelled",
        EndReason::AnsweredElsewhere(_) => "answered-elsewhere",
        EndReason::LinkLost => "link-lost",
        EndReason::Moved(_) => "moved",
    }
}

fn reason_text(why: EndReason) -> String {
    match why {
        EndReason::Busy => "every device of the contact is in another call".into(),
        EndReason::Declined => "declined".into(),
        EndReason::NoAnswer => "no answer".into(),
        EndReason::LinkLost => "the connection was lost".into(),
        other => reason_word(other).replace('-', " "),
    }
}

/// Joins futures without a dependency: each on its own task.
async fn futures_join_all<T: Send + 'static>(
    futs: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// Registers a call (if this device is idle and the id new) and starts
/// its task; its view, or the links given back if refused.
fn spawn_call(
    d: &Arc<Daemon>,
    call: Call,
    contact: AccountId,
    effects: Vec<Effect>,
    links: Vec<CallConn>,
    audio: super::media::Audio,
    answered: Option<(DeviceId, Instant)>,
) -> Result<Arc<Mutex<View>>, Vec<CallConn>> {
    let id = call.id();
    let counts: Arc<super::media::Counts> = Default::default();
    let view = Arc::new(Mutex::new(View {
        id,
        contact,
        side: call.side(),
        state: call.state(),
        video: call.video(),
        media: false,
        path: None,
        answered_by: answered.map(|(dev, _)| dev),
        changed: Default::default(),
        rtt_ms: None,
        counts: Arc::clone(&counts),
        compromised: false,
    }));
    let (tx, rx) = mpsc::channel(INPUTS);
    let muted: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let entry = Entry {
        tx: tx.clone(),
        view: Arc::clone(&view),
        muted: Arc::clone(&muted),
        ended: None,
    };
    if d.calls.insert_idle(id, entry, answered.is_some()).is_err() {
        return Err(links);
    }
    let task = CallTask {
        d: Arc::clone(d),
        call,
        contact,
        view: Arc::clone(&view),
        tx,
        conns: HashMap::new(),
        answered_at: answered.map(|(_, at)| at),
        answered_by: answered.map(|(dev, _)| dev),
        media_peer: None,
        taken_over: answered.is_some(),
        audio,
        flow: None,
        heard: Default::default(),
        from: Default::default(),
        counts,
        muted,
    };
    d.spawn(task.run(rx, effects, links));
    Ok(view)
}

/// A call connection as it comes up: the device, the link, and its
/// control stream.
type CallConn = (DeviceId, Link, FrameWriter, FrameReader);

/// One connection of a call.
struct Conn {
    link: Link,
    writer: FrameWriter,
    _reader: super::files::AbortOnDrop,
}

struct CallTask {
    d: Arc<Daemon>,
    call: Call,
    contact: AccountId,
    view: Arc<Mutex<View>>,
    tx: mpsc::Sender<Input>,
    conns: HashMap<DeviceId, Conn>,
    /// When media first started (or, taken over, when the call did).
    answered_at: Option<Instant>,
    /// The callee's device that answered (for the record).
    answered_by: Option<DeviceId>,
    /// The device media last ran with (a restart with it is a resumption).
    media_peer: Option<DeviceId>,
    /// This device took the call over from an own device.
    taken_over: bool,
    /// Where audio comes from and goes.
    audio: super::media::Audio,
    /// Media flowing now.
    flow: Option<super::media::Flow>,
    /// What was heard (all flows of the call).
    heard: Arc<super::media::Heard>,
    /// The next input sample to send.
    from: Arc<std::sync::atomic::AtomicU64>,
    counts: Arc<super::media::Counts>,
    muted: Arc<std::sync::atomic::AtomicBool>,
}

impl CallTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Input>,
        first: Vec<Effect>,
        links: Vec<(DeviceId, Link, FrameWriter, FrameReader)>,
    ) {
        for (dev, link, writer, reader) in links {
            self.attach(dev, link, writer, reader);
        }
        self.carry_out(first).await;
        while !self.call.is_over() {
            let deadline = self.call.deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let effects = tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.input(input),
                    None => break,
                },
                () = sleep => self.call.tick(Instant::now()),
            };
            self.carry_out(effects).await;
            // The end is shown once finished (the sound written out), so
            // whoever sees "ended" finds the file complete.
            if !self.call.is_over() {
                self.publish();
            }
        }
        self.finish().await;
        // Commands that arrive after the end are told so (the sender is
        // dropped with the receiver).
        drop(rx);
    }

    fn input(&mut self, input: Input) -> Vec<Effect> {
        let now = Instant::now();
        match input {
            // A device whose connection was closed has no more say (what
            // it queued before is dropped).
            Input::Msg(from, _) if !self.conns.contains_key(&from) => vec![],
            // The other side moves its end: only to an active device of
            // the same contact.
            Input::Msg(from, CallMsg::Move { to, .. })
                if !self.d.sharing.borrow().device_active(self.contact, to) =>
            {
                debug!(peer = %from.short(8), "a call moved to a device not the contact's: ignored");
                vec![]
            }
            Input::Msg(from, msg) => self.call.on_msg(from, msg, now),
            Input::Up(dev, link, writer, reader) => {
                // Only a device of this call may come back (or the device
                // the other side moves to).
                if !self.call.expects_link(dev) {
                    link.close("not this call's device");
                    return vec![];
                }
                self.attach(dev, link, writer, reader);
                self.call.link_back(dev, now)
            }
            Input::Lost(dev) => {
                if let Some(conn) = self.conns.remove(&dev) {
                    conn.link.close("lost");
                }
                self.call.link_lost(dev, now)
            }
            // Only the media of the device the call is with counts (a
            // flow stopped since may still report).
            Input::Silent(dev) => match self.call.state() {
                CallState::Active { peer, .. } if peer == dev && self.flow.is_some() => {
                    debug!(peer = %dev.short(8), "call media silent: the connection counts as lost");
                    if let Some(conn) = self.conns.remove(&dev) {
                        conn.link.close("no media");
                    }
                    self.call.link_lost(dev, now)
                }
                _ => vec![],
            },
            Input::Audio(audio) => {
                self.audio = audio;
                vec![]
            }
            Input::Moved(to) => self.call.moved(to),
            Input::Command(cmd, reply) => match self.call.command(cmd, now) {
                Ok(effects) => {
                    let _ = reply.send(Ok(()));
                    effects
                }
                Err(e) => {
                    let _ = reply.send(Err(e.to_string()));
                    vec![]
                }
            },
        }
    }

    /// Keeps a connection and starts reading it into this task.
    fn attach(&mut self, dev: DeviceId, link: Link, writer: FrameWriter, mut reader: FrameReader) {
        let tx = self.tx.clone();
        let reading = tokio::spawn(async move {
            while let Ok(Some(frame)) = reader.recv_max(MAX_CONTROL_FRAME).await {
                match CallMsg::decode(&frame) {
                    Ok(msg) => {
                        if tx.send(Input::Msg(dev, msg)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        debug!(peer = %dev.short(8), error = %e, "bad call frame: connection dropped");
                        break;
                    }
                }
            }
            let _ = tx.send(Input::Lost(dev)).await;
        });
        if let Some(old) = self.conns.insert(
            dev,
            Conn {
                link,
                writer,
                _reader: super::files::AbortOnDrop(reading),
            },
        ) {
            old.link.close("replaced");
        }
    }

    async fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Send { to, msg } => {
                    let Some(conn) = self.conns.get_mut(&to) else {
                        continue;
                    };
                    let sent =
                        tokio::time::timeout(SEND_WAIT, conn.writer.send(&msg.encode())).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        // A peer that takes no frames loses its connection.
                        debug!(peer = %to.short(8), "call frame not sent: connection dropped");
                        if let Some(conn) = self.conns.remove(&to) {
                            conn.link.close("not reading");
                        }
                        queue.extend(self.call.link_lost(to, Instant::now()));
                    }
                }
                Effect::Close(dev) => {
                    if let Some(mut conn) = self.conns.remove(&dev) {
                        conn.writer.finish();
                        // Let the last frame leave before the connection
                        // goes (closing at once may drop it).
                        let link = conn.link.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            link.close("call over");
                        });
                    }
                }
                Effect::Redial(dev) => self.redial(dev).await,
                Effect::StartMedia(dev) => {
                    if self.media_peer.is_none() {
                        self.tell_own_devices();
                    }
                    if self.media_peer == Some(dev) {
                        self.counts
                            .resumed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    self.media_peer = Some(dev);
                    self.answered_at.get_or_insert_with(Instant::now);
                    let me = self.d.device;
                    let by = *self.answered_by.get_or_insert(match self.call.side() {
                        Side::Caller => dev,
                        Side::Callee => me,
                    });
                    self.view
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .answered_by = Some(by);
                    if let Some(conn) = self.conns.get(&dev) {
                        let tx = self.tx.clone();
                        // Never dropped for a full queue: it waits its turn.
                        let silent = Box::new(move || {
                            tokio::spawn(async move {
                                let _ = tx.send(Input::Silent(dev)).await;
                            });
                        });
                        // The old flow (a resumed or moved call) stops
                        // before the new one starts.
                        self.flow = None;
                        match super::media::start(
                            &conn.link,
                            &self.audio,
                            Arc::clone(&self.from),
                            Arc::clone(&self.heard),
                            Arc::clone(&self.counts),
                            Arc::clone(&self.muted),
                            (
                                self.d.media_loss.load(std::sync::atomic::Ordering::Relaxed),
                                Duration::from_millis(u64::from(
                                    self.d
                                        .media_delay
                                        .load(std::sync::atomic::Ordering::Relaxed),
                                )),
                            ),
                            (
                                (self.audio.input.is_none() && self.audio.output.is_none())
                                    .then(|| self.d.sound_card()),
                                // The peer's video is taken when this side
                                // chose video: it sends video, or it was
                                // offered a video call and answered it.
                                self.audio.video.send
                                    || (self.call.side() == Side::Callee && self.call.video()),
                            ),
                            silent,
                        ) {
                            Ok(flow) => self.flow = Some(flow),
                            Err(e) => warn!(error = %e, "call media could not start"),
                        }
                    }
                    let mut v = self.view.lock().unwrap_or_else(|p| p.into_inner());
                    v.media = true;
                    if let Some(conn) = self.conns.get(&dev) {
                        v.path = Some(match conn.link.path() {
                            node_core::transport::LinkPath::Direct => "direct",
                            node_core::transport::LinkPath::Relay => "relay",
                            _ => "unknown",
                        });
                    }
                }
                Effect::StopMedia => {
                    self.flow = None;
                    self.view.lock().unwrap_or_else(|p| p.into_inner()).media = false;
                }
            }
        }
    }

    /// Tells this account's other devices, in the background, that the
    /// call is on here (each shows it as answered elsewhere, naming this
    /// device). Best effort: a device not reachable now is not told.
    fn tell_own_devices(&self) {
        let d = Arc::clone(&self.d);
        let msg = CallMsg::Elsewhere {
            call: self.call.id(),
            contact: self.contact,
        }
        .encode();
        tokio::spawn(async move {
            let targets: Vec<(DeviceId, Vec<std::net::SocketAddr>, Option<String>)> = {
                let node = d.node.lock().await;
                node.own_device_hints()
                    .into_iter()
                    .filter(|(dev, _)| *dev != d.device)
                    .map(|(dev, addrs)| (dev, addrs, node.relay_of(&dev)))
                    .collect()
            };
            for (dev, addrs, relay) in targets {
                if !d.sharing.borrow().device_active(d.account, dev) {
                    continue;
                }
                let d = Arc::clone(&d);
                let msg = msg.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(CONNECT_WAIT + SEND_WAIT, async {
                        let link = d
                            .transport
                            .connect_call(dev, &addrs, relay.as_deref())
                            .await
                            .ok()?;
                        let (mut writer, _reader) = link.open().await.ok()?;
                        writer.send(&msg).await.ok()?;
                        writer.finish();
                        // Until the other device has read it and closed.
                        let _ = tokio::time::timeout(SEND_WAIT, link.closed()).await;
                        link.close("told");
                        Some(())
                    })
                    .await;
                });
            }
        });
    }

    /// The caller dials the lost device again, in the background; the
    /// connection reaches this task as `Up`.
    async fn redial(&self, dev: DeviceId) {
        let (addrs, relay) = dial_info(&*self.d.node.lock().await, dev);
        let d = Arc::clone(&self.d);
        let tx = self.tx.clone();
        let id = self.call.id();
        tokio::spawn(async move {
            let until = Instant::now() + node_core::call::machine::RESUME_FOR;
            // A short pause first: a peer that refuses each resumption
            // does not get back-to-back handshakes.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while Instant::now() < until && !tx.is_closed() {
                let dial = tokio::time::timeout(CONNECT_WAIT, async {
                    let link = d
                        .transport
                        .connect_call(dev, &addrs, relay.as_deref())
                        .await
                        .ok()?;
                    let (writer, reader) = link.open().await.ok()?;
                    Some((link, writer, reader))
                })
                .await;
                if let Ok(Some((link, writer, reader))) = dial {
                    let _ = tx.send(Input::Up(dev, link, writer, reader)).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            debug!(call = %id, "redialling gave up");
        });
    }

    fn publish(&self) {
        let mut v = self.view.lock().unwrap_or_else(|p| p.into_inner());
        if v.state != self.call.state() {
            v.changed.notify_waiters();
        }
        v.state = self.call.state();
        if let CallState::Active { peer, .. } = v.state
            && let Some(conn) = self.conns.get(&peer)
        {
            v.rtt_ms = conn.link.rtt().map(|r| r.as_millis() as u64);
        }
    }

    /// The call is over: close what is open, note when, and (the caller)
    /// write the record every device of both people will show.
    async fn finish(&mut self) {
        self.flow = None;
        // Only a call that carried media writes its sound out (a ring that
        // was never answered must not wipe the last call's file).
        if let Some(path) = &self.audio.output
            && self.media_peer.is_some()
        {
            self.heard.write(path);
        }
        if let Some(shown) = &self.audio.video.output {
            shown.finish();
        }
        self.view.lock().unwrap_or_else(|p| p.into_inner()).media = false;
        self.publish();
        for (_, conn) in self.conns.drain() {
            let link = conn.link.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                link.close("call over");
            });
        }
        if let Some(e) = self.d.calls.lock().get_mut(&self.call.id())
            && e.tx.same_channel(&self.tx)
        {
            e.ended = Some(Instant::now());
        }
        let CallState::Ended(why) = self.call.state() else {
            return;
        };
        info!(call = %self.call.id(), why = reason_word(why), "call ended");
        if self.call.side() != Side::Caller {
            return;
        }
        // A call moved to another own device is recorded there; a device
        // that took a call over but never reached the other side records
        // nothing (the device it came from still has it).
        if matches!(why, EndReason::Moved(_)) || (self.taken_over && self.media_peer.is_none()) {
            return;
        }
        let answered_by = self.answered_by;
        let outcome = match (why, answered_by) {
            (_, Some(_)) => Outcome::Answered,
            (EndReason::NoAnswer, _) => Outcome::Missed,
            (EndReason::Declined, _) => Outcome::Declined,
            (EndReason::Busy, _) => Outcome::Busy,
            (EndReason::HungUp | EndReason::Cancelled, _) => Outcome::Cancelled,
            _ => Outcome::Failed,
        };
        let record = CallRecord {
            call: self.call.id(),
            video: self.call.video(),
            outcome,
            answered_by,
            duration_ms: match (answered_by, self.answered_at) {
                (Some(_), Some(t)) => u64::try_from(t.elapsed().as_millis())
                    .unwrap_or(u64::MAX)
                    .min(node_core::call::record::MAX_DURATION_MS),
                _ => 0,
            },
        };
        let written = self
            .d
            .node
            .lock()
            .await
            .record_call(self.contact, &record, crate::now_ms())
            .await;
        if let Err(e) = written {
            warn!(error = %e, "recording the call failed");
        }
    }
}
