//! One call on one device, as a state machine: given messages from the
//! other side's devices, the user's commands, lost and restored links and
//! the time, it says what to send and what the call now is. It never
//! reads a clock or a socket (tested in virtual time).

use super::msg::{CallId, CallMsg, Ended};
use crate::id::DeviceId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a call rings before it counts as missed.
pub const RING_FOR: Duration = Duration::from_secs(45);
/// How long a callee waits past [`RING_FOR`] for a caller that went
/// silent, and for the caller to confirm an answer.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long a call whose link was lost waits for it to come back.
pub const RESUME_FOR: Duration = Duration::from_secs(10);
/// How long a move may take on either side before it lapses: the
/// handover (dialling the own device, up to 7 s) and then the device
/// taking over dialling the other side ([`RESUME_FOR`]), with room to
/// spare, so the two sides' windows always cover the taker's.
pub const MOVE_FOR: Duration = Duration::from_secs(20);

/// Which end of the call this device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// It rang the others.
    Caller,
    /// It was rung.
    Callee,
}

/// Why a call ended here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// This device hung up (or, before an answer, gave up).
    HungUp,
    /// The other side hung up.
    TheyHungUp,
    /// No device answered in time (the caller), or no answer here (a
    /// callee): a missed call.
    NoAnswer,
    /// A callee device declined.
    Declined,
    /// Every callee device is in another call.
    Busy,
    /// The caller gave up before an answer.
    Cancelled,
    /// Another own device took the call.
    AnsweredElsewhere(DeviceId),
    /// The link was lost and did not come back within [`RESUME_FOR`].
    LinkLost,
    /// This device's side of the call moved to another own device.
    Moved(DeviceId),
}

/// What the call is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Caller: offered, no device rings yet.
    Calling,
    /// Caller: a device rings. Callee: it rings here.
    Ringing,
    /// Callee: answered here; the caller has not confirmed yet.
    Answering,
    /// On, with `peer`, since `since`.
    Active {
        /// The device at the other end.
        peer: DeviceId,
        /// When it was answered.
        since: Instant,
    },
    /// The link to `peer` was lost at `lost`; the call waits for it.
    Reconnecting {
        /// The device at the other end.
        peer: DeviceId,
        /// When it was answered.
        since: Instant,
        /// When the link was lost.
        lost: Instant,
    },
    /// Over.
    Ended(EndReason),
}

/// What the user asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Answer a ringing call here.
    Answer {
        /// Send video too.
        video: bool,
    },
    /// Decline a ringing call.
    Decline,
    /// Leave the call (or stop ringing the others).
    Hangup,
    /// Hand this device's side of the call to own device `to` (sent
    /// before the handover, so the other side knows the device first):
    /// tell the other side, and keep the media going until the move is
    /// done.
    Move {
        /// The own device taking over.
        to: DeviceId,
    },
    /// The move just asked for cannot happen (the own device did not
    /// take the call): the call goes on here.
    CancelMove,
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Effect {
    /// Send `msg` on the call connection to `to`.
    Send {
        /// The device.
        to: DeviceId,
        /// The message.
        msg: CallMsg,
    },
    /// Close the call connection to `to` (after what was sent).
    Close(DeviceId),
    /// Connect to `peer` again and resume (the caller, after a lost link).
    Redial(DeviceId),
    /// Start sending and playing media with `peer`.
    StartMedia(DeviceId),
    /// Stop media.
    StopMedia,
}

/// A command that does not fit the call's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CallError(pub &'static str);

/// What one callee device said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Pending,
    Ringing,
    Busy,
    Gone,
}

/// One call on this device.
#[derive(Debug, Clone)]
pub struct Call {
    id: CallId,
    side: Side,
    video: bool,
    started: Instant,
    state: CallState,
    /// Caller: the callee's devices offered the call, and what each said.
    offered: BTreeMap<DeviceId, Reply>,
    /// Callee: the caller's device.
    caller: Option<DeviceId>,
    /// Callee: when it answered.
    answered: Option<Instant>,
    /// The other side moves its end to this device (until the instant).
    moving_in: Option<(DeviceId, Instant)>,
    /// This side moves its end to this own device (until the instant).
    moving_out: Option<(DeviceId, Instant)>,
    /// This device took the call over from an own device and dials the
    /// other side to resume it.
    taking_over: bool,
    /// This device sent `Resume` on a new connection and waits for the
    /// other side to accept it before media starts.
    resuming: bool,
}

impl Call {
    /// Starts a call to `devices` (every online device of the callee).
    pub fn dial(
        id: CallId,
        devices: &[DeviceId],
        video: bool,
        now: Instant,
    ) -> Result<(Call, Vec<Effect>), CallError> {
        if devices.is_empty() {
            return Err(CallError("no device of the contact can be reached"));
        }
        let call = Call {
            id,
            side: Side::Caller,
            video,
            started: now,
            state: CallState::Calling,
            offered: devices.iter().map(|d| (*d, Reply::Pending)).collect(),
            caller: None,
            answered: None,
            moving_in: None,
            moving_out: None,
            taking_over: false,
            resuming: false,
        };
        let effects = devices
            .iter()
            .map(|d| Effect::Send {
                to: *d,
                msg: CallMsg::Offer { call: id, video },
            })
            .collect();
        Ok((call, effects))
    }

    /// A call offered by `caller`; `busy` if this device is in another.
    pub fn incoming(
        id: CallId,
        caller: DeviceId,
        video: bool,
        busy: bool,
        now: Instant,
    ) -> (Call, Vec<Effect>) {
        let mut call = Call {
            id,
            side: Side::Callee,
            video,
            started: now,
            state: CallState::Ringing,
            offered: BTreeMap::new(),
            caller: Some(caller),
            answered: None,
            moving_in: None,
            moving_out: None,
            taking_over: false,
            resuming: false,
        };
        if busy {
            call.state = CallState::Ended(EndReason::Busy);
            return (
                call,
                vec![
                    Effect::Send {
                        to: caller,
                        msg: CallMsg::Busy(id),
                    },
                    Effect::Close(caller),
                ],
            );
        }
        (
            call,
            vec![Effect::Send {
                to: caller,
                msg: CallMsg::Ringing(id),
            }],
        )
    }

    /// A call an own device hands over to this one: on with `peer` since
    /// `since`; this device dials `peer` and resumes it there (or, if that
    /// does not happen within [`RESUME_FOR`], the call ends here as lost).
    pub fn taken_over(
        id: CallId,
        peer: DeviceId,
        side: Side,
        video: bool,
        since: Instant,
        now: Instant,
    ) -> (Call, Vec<Effect>) {
        let call = Call {
            id,
            side,
            video,
            started: since,
            state: CallState::Reconnecting {
                peer,
                since,
                lost: now,
            },
            offered: match side {
                Side::Caller => [(peer, Reply::Ringing)].into(),
                Side::Callee => BTreeMap::new(),
            },
            caller: (side == Side::Callee).then_some(peer),
            answered: None,
            moving_in: None,
            moving_out: None,
            taking_over: true,
            resuming: false,
        };
        (call, vec![Effect::Redial(peer)])
    }

    /// Whether a new call connection from `device` belongs to this call:
    /// the peer it waits for, or the device the other side moves to.
    pub fn expects_link(&self, device: DeviceId) -> bool {
        match self.state {
            CallState::Reconnecting { peer, .. } if peer == device => true,
            CallState::Active { .. } | CallState::Reconnecting { .. } => {
                self.moving_in.is_some_and(|(to, _)| to == device)
            }
            _ => false,
        }
    }

    /// The call's id.
    pub fn id(&self) -> CallId {
        self.id
    }

    /// Which end this device is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether the caller offered video.
    pub fn video(&self) -> bool {
        self.video
    }

    /// What the call is now.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// Whether it is over.
    pub fn is_over(&self) -> bool {
        matches!(self.state, CallState::Ended(_))
    }

    /// When the call started ringing.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The next time [`Call::tick`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        if self.is_over() {
            return None;
        }
        let moves = [self.moving_in, self.moving_out]
            .into_iter()
            .flatten()
            .map(|(_, until)| until)
            .min();
        match (self.state_deadline(), moves) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the state itself times out (ringing, answering, reconnecting).
    fn state_deadline(&self) -> Option<Instant> {
        match (self.side, self.state) {
            (_, CallState::Ended(_) | CallState::Active { .. }) => None,
            (Side::Caller, CallState::Calling | CallState::Ringing) => {
                Some(self.started + RING_FOR)
            }
            (Side::Callee, CallState::Ringing) => Some(self.started + RING_FOR + GRACE),
            (_, CallState::Answering) => self.answered.map(|t| t + GRACE),
            (_, CallState::Reconnecting { lost, .. }) => Some(lost + RESUME_FOR),
            (Side::Callee, CallState::Calling) => None,
        }
    }

    /// A message from `from` on its call connection.
    pub fn on_msg(&mut self, from: DeviceId, msg: CallMsg, now: Instant) -> Vec<Effect> {
        if msg.call() != self.id || self.is_over() {
            return vec![];
        }
        if let Some(out) = self.moving_msg(from, &msg, now) {
            return out;
        }
        match self.side {
            Side::Caller => self.caller_msg(from, msg, now),
            Side::Callee if self.caller == Some(from) => self.callee_msg(msg, now),
            Side::Callee => vec![],
        }
    }

    /// Messages that move a call on either side: `Move` from the peer,
    /// `Resume` from the device it moves to, `End(Moved)` when this side's
    /// move is done. `None`: not one of them.
    fn moving_msg(&mut self, from: DeviceId, msg: &CallMsg, now: Instant) -> Option<Vec<Effect>> {
        let (peer, since) = match self.state {
            CallState::Active { peer, since } | CallState::Reconnecting { peer, since, .. } => {
                (peer, since)
            }
            _ => return None,
        };
        match *msg {
            // Not while this side is moving (two moves at once could split
            // the call in two).
            CallMsg::Move { to, .. } if from == peer && to != peer && self.moving_out.is_none() => {
                self.moving_in = Some((to, now + MOVE_FOR));
                Some(vec![])
            }
            // The device this side resumed with accepts: media starts.
            CallMsg::Accepted(_)
                if self.resuming
                    && from == peer
                    && matches!(self.state, CallState::Reconnecting { .. }) =>
            {
                self.resuming = false;
                self.taking_over = false;
                self.state = CallState::Active { peer, since };
                Some(vec![Effect::StartMedia(peer)])
            }
            CallMsg::Resume(_) if self.moving_in.is_some_and(|(to, _)| to == from) => {
                self.moving_in = None;
                // Whatever this side was doing to resume is moot now.
                self.resuming = false;
                self.taking_over = false;
                self.state = CallState::Active { peer: from, since };
                match self.side {
                    Side::Caller => {
                        self.offered.insert(peer, Reply::Gone);
                        self.offered.insert(from, Reply::Ringing);
                    }
                    Side::Callee => self.caller = Some(from),
                }
                Some(vec![
                    Effect::StopMedia,
                    Effect::Send {
                        to: peer,
                        msg: CallMsg::End {
                            call: self.id,
                            why: Ended::Moved(from),
                        },
                    },
                    Effect::Close(peer),
                    Effect::Send {
                        to: from,
                        msg: CallMsg::Accepted(self.id),
                    },
                    Effect::StartMedia(from),
                ])
            }
            CallMsg::End {
                why: Ended::Moved(to),
                ..
            } if from == peer && self.moving_out.is_some_and(|(want, _)| want == to) => {
                self.moving_out = None;
                self.state = CallState::Ended(EndReason::Moved(to));
                Some(vec![Effect::StopMedia, Effect::Close(peer)])
            }
            _ => None,
        }
    }

    fn caller_msg(&mut self, from: DeviceId, msg: CallMsg, now: Instant) -> Vec<Effect> {
        let Some(reply) = self.offered.get(&from).copied() else {
            return vec![];
        };
        // A device that said busy, or whose connection was closed, has no
        // more say (a message it queued before cannot answer the call).
        if matches!(reply, Reply::Busy | Reply::Gone) {
            return vec![];
        }
        let ringing = matches!(self.state, CallState::Calling | CallState::Ringing);
        match msg {
            CallMsg::Ringing(_) if reply == Reply::Pending => {
                self.offered.insert(from, Reply::Ringing);
                if self.state == CallState::Calling {
                    self.state = CallState::Ringing;
                }
                vec![]
            }
            // Busy is an answer to an offer, not a way to end a call.
            CallMsg::Busy(_) if ringing => {
                self.offered.insert(from, Reply::Busy);
                let mut out = vec![Effect::Close(from)];
                if self.no_one_left() {
                    self.state = CallState::Ended(EndReason::Busy);
                }
                out.extend(self.if_over_close_all());
                out
            }
            CallMsg::Answer { .. } => match self.state {
                CallState::Calling | CallState::Ringing => {
                    self.state = CallState::Active {
                        peer: from,
                        since: now,
                    };
                    let mut out = vec![Effect::Send {
                        to: from,
                        msg: CallMsg::Accepted(self.id),
                    }];
                    out.extend(self.end_others(from, Ended::Taken(from)));
                    out.push(Effect::StartMedia(from));
                    out
                }
                // Answered at once on two devices: the first won.
                CallState::Active { peer, .. } | CallState::Reconnecting { peer, .. }
                    if peer != from =>
                {
                    vec![
                        Effect::Send {
                            to: from,
                            msg: CallMsg::End {
                                call: self.id,
                                why: Ended::Taken(peer),
                            },
                        },
                        Effect::Close(from),
                    ]
                }
                _ => vec![],
            },
            CallMsg::End { why, .. } => match self.state {
                CallState::Calling | CallState::Ringing if why == Ended::Declined => {
                    self.state = CallState::Ended(EndReason::Declined);
                    let mut out = self.end_others(from, Ended::Declined);
                    out.push(Effect::Close(from));
                    out
                }
                CallState::Calling | CallState::Ringing => {
                    self.offered.insert(from, Reply::Gone);
                    let mut out = vec![Effect::Close(from)];
                    if self.no_one_left() {
                        self.state = CallState::Ended(EndReason::NoAnswer);
                    }
                    out.extend(self.if_over_close_all());
                    out
                }
                CallState::Active { peer, .. } | CallState::Reconnecting { peer, .. }
                    if peer == from =>
                {
                    self.state = CallState::Ended(EndReason::TheyHungUp);
                    vec![Effect::StopMedia, Effect::Close(from)]
                }
                _ => vec![],
            },
            _ => vec![],
        }
    }

    fn callee_msg(&mut self, msg: CallMsg, now: Instant) -> Vec<Effect> {
        let Some(caller) = self.caller else {
            return vec![];
        };
        match (msg, self.state) {
            (CallMsg::Accepted(_), CallState::Answering) => {
                self.state = CallState::Active {
                    peer: caller,
                    since: now,
                };
                vec![Effect::StartMedia(caller)]
            }
            (CallMsg::Resume(_), CallState::Reconnecting { peer, since, .. }) => {
                self.state = CallState::Active { peer, since };
                vec![
                    Effect::Send {
                        to: peer,
                        msg: CallMsg::Accepted(self.id),
                    },
                    Effect::StartMedia(peer),
                ]
            }
            (CallMsg::End { why, .. }, state) => {
                let reason = match why {
                    Ended::Taken(device) => EndReason::AnsweredElsewhere(device),
                    Ended::Declined => EndReason::Declined,
                    Ended::NoAnswer => EndReason::NoAnswer,
                    Ended::Cancelled => EndReason::Cancelled,
                    Ended::Hangup | Ended::Moved(_) => EndReason::TheyHungUp,
                };
                self.state = CallState::Ended(reason);
                let mut out = Vec::new();
                if matches!(
                    state,
                    CallState::Active { .. } | CallState::Reconnecting { .. }
                ) {
                    out.push(Effect::StopMedia);
                }
                out.push(Effect::Close(caller));
                out
            }
            _ => vec![],
        }
    }

    /// What the user asks of this call.
    pub fn command(&mut self, cmd: Command, now: Instant) -> Result<Vec<Effect>, CallError> {
        let id = self.id;
        match (self.side, cmd, self.state) {
            (_, _, CallState::Ended(_)) => Err(CallError("the call is over")),
            (Side::Callee, Command::Answer { .. }, CallState::Ringing) => {
                self.state = CallState::Answering;
                self.answered = Some(now);
                let to = self.caller.ok_or(CallError("no caller"))?;
                Ok(vec![Effect::Send {
                    to,
                    msg: CallMsg::Answer {
                        call: id,
                        video: matches!(cmd, Command::Answer { video: true }),
                    },
                }])
            }
            (_, Command::Answer { .. }, _) => Err(CallError("the call is not ringing here")),
            (Side::Callee, Command::Decline, CallState::Ringing) => {
                self.state = CallState::Ended(EndReason::Declined);
                let to = self.caller.ok_or(CallError("no caller"))?;
                Ok(vec![
                    Effect::Send {
                        to,
                        msg: CallMsg::End {
                            call: id,
                            why: Ended::Declined,
                        },
                    },
                    Effect::Close(to),
                ])
            }
            (_, Command::Decline, _) => Err(CallError("the call is not ringing here")),
            (Side::Caller, Command::Hangup, CallState::Calling | CallState::Ringing) => {
                self.state = CallState::Ended(EndReason::HungUp);
                Ok(self.end_all(Ended::Cancelled))
            }
            (Side::Callee, Command::Hangup, CallState::Ringing) => {
                self.command(Command::Decline, now)
            }
            (_, Command::CancelMove, _) => {
                self.moving_out = None;
                Ok(vec![])
            }
            (_, Command::Move { to }, CallState::Active { peer, .. }) => {
                if self.moving_out.is_some() || self.moving_in.is_some() {
                    return Err(CallError("the call is already moving"));
                }
                if to == peer {
                    return Err(CallError("that device is the other side of the call"));
                }
                self.moving_out = Some((to, now + MOVE_FOR));
                Ok(vec![Effect::Send {
                    to: peer,
                    msg: CallMsg::Move { call: id, to },
                }])
            }
            (_, Command::Move { .. }, _) => Err(CallError("the call is not on here")),
            (_, Command::Hangup, _) => {
                let peer = match self.state {
                    CallState::Active { peer, .. } | CallState::Reconnecting { peer, .. } => {
                        Some(peer)
                    }
                    _ => self.caller,
                };
                let was_on = matches!(
                    self.state,
                    CallState::Active { .. } | CallState::Reconnecting { .. }
                );
                self.state = CallState::Ended(EndReason::HungUp);
                let mut out = Vec::new();
                if was_on {
                    out.push(Effect::StopMedia);
                }
                if let Some(peer) = peer {
                    out.push(Effect::Send {
                        to: peer,
                        msg: CallMsg::End {
                            call: id,
                            why: Ended::Hangup,
                        },
                    });
                    out.push(Effect::Close(peer));
                }
                Ok(out)
            }
        }
    }

    /// The call connection to `device` was lost.
    pub fn link_lost(&mut self, device: DeviceId, now: Instant) -> Vec<Effect> {
        match self.state {
            CallState::Active { peer, since } if peer == device => {
                self.state = CallState::Reconnecting {
                    peer,
                    since,
                    lost: now,
                };
                let mut out = vec![Effect::StopMedia];
                if self.side == Side::Caller {
                    out.push(Effect::Redial(peer));
                }
                out
            }
            // The connection a dialer resumed on was lost (or refused)
            // before the other side accepted: dial again, within the same
            // window (it does not restart).
            CallState::Reconnecting { peer, .. }
                if peer == device && (self.side == Side::Caller || self.taking_over) =>
            {
                self.resuming = false;
                vec![Effect::Redial(peer)]
            }
            CallState::Calling | CallState::Ringing if self.side == Side::Caller => {
                if self.offered.contains_key(&device) {
                    self.offered.insert(device, Reply::Gone);
                }
                if self.no_one_left() {
                    self.state = CallState::Ended(EndReason::LinkLost);
                }
                vec![]
            }
            CallState::Ringing | CallState::Answering if self.caller == Some(device) => {
                self.state = CallState::Ended(EndReason::LinkLost);
                vec![]
            }
            _ => vec![],
        }
    }

    /// A new call connection to `device` is up (the caller redialled, or
    /// the callee was dialled again): the call carries on.
    pub fn link_back(&mut self, device: DeviceId, _now: Instant) -> Vec<Effect> {
        match self.state {
            CallState::Reconnecting { peer, .. } if peer == device => {
                if self.side == Side::Caller || self.taking_over {
                    // Media starts once the other side accepts.
                    self.resuming = true;
                    vec![Effect::Send {
                        to: peer,
                        msg: CallMsg::Resume(self.id),
                    }]
                } else {
                    // The callee resumes on the caller's `Resume`.
                    vec![]
                }
            }
            _ => vec![],
        }
    }

    /// The own device this side moves to says it has the call now (the
    /// other side accepted it there): this side is done, whatever the
    /// other side says or fails to say.
    pub fn moved(&mut self, to: DeviceId) -> Vec<Effect> {
        if self.moving_out.is_none_or(|(want, _)| want != to) {
            return vec![];
        }
        let peer = match self.state {
            CallState::Active { peer, .. } | CallState::Reconnecting { peer, .. } => peer,
            _ => return vec![],
        };
        self.moving_out = None;
        self.state = CallState::Ended(EndReason::Moved(to));
        vec![Effect::StopMedia, Effect::Close(peer)]
    }

    /// Timeouts due at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        // A move that did not happen in time is off; the call goes on.
        if self.moving_in.is_some_and(|(_, until)| until <= now) {
            self.moving_in = None;
        }
        if self.moving_out.is_some_and(|(_, until)| until <= now) {
            self.moving_out = None;
        }
        let Some(due) = self.state_deadline() else {
            return vec![];
        };
        if now < due {
            return vec![];
        }
        match self.state {
            CallState::Calling | CallState::Ringing if self.side == Side::Caller => {
                self.state = CallState::Ended(EndReason::NoAnswer);
                self.end_all(Ended::NoAnswer)
            }
            CallState::Ringing | CallState::Answering => {
                self.state = CallState::Ended(EndReason::NoAnswer);
                self.caller.map(Effect::Close).into_iter().collect()
            }
            CallState::Reconnecting { peer, .. } => {
                self.state = CallState::Ended(EndReason::LinkLost);
                vec![Effect::Close(peer)]
            }
            _ => vec![],
        }
    }

    /// Whether every offered device is busy or gone.
    fn no_one_left(&self) -> bool {
        self.offered
            .values()
            .all(|r| matches!(r, Reply::Busy | Reply::Gone))
    }

    /// Once over, every offered connection still open is closed.
    fn if_over_close_all(&mut self) -> Vec<Effect> {
        if !self.is_over() {
            return vec![];
        }
        let reason = match self.state {
            CallState::Ended(EndReason::Busy) => Ended::Cancelled,
            _ => Ended::NoAnswer,
        };
        self.end_all(reason)
    }

    /// Ends the call for every offered device but `except`.
    fn end_others(&mut self, except: DeviceId, why: Ended) -> Vec<Effect> {
        self.end_except(Some(except), why)
    }

    fn end_all(&mut self, why: Ended) -> Vec<Effect> {
        self.end_except(None, why)
    }

    fn end_except(&mut self, except: Option<DeviceId>, why: Ended) -> Vec<Effect> {
        let mut out = Vec::new();
        for (device, reply) in self.offered.iter_mut() {
            if Some(*device) == except || matches!(reply, Reply::Busy | Reply::Gone) {
                continue;
            }
            out.push(Effect::Send {
                to: *device,
                msg: CallMsg::End { call: self.id, why },
            });
            out.push(Effect::Close(*device));
            *reply = Reply::Gone;
        }
        out
    }
}
