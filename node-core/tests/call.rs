//! Calls between two people's devices, in virtual time: one caller device
//! and two callee devices exchange the control messages their machines
//! emit; what each shows and sends is checked at every step.

#![allow(clippy::unwrap_used)]
// The test is the driver: it reads the clock once for the start of virtual time.
#![allow(clippy::disallowed_methods)]

use node_core::DeviceId;
use node_core::call::machine::Side;
use node_core::call::machine::{
    Call, CallState, Command, Effect, EndReason, MOVE_FOR, RESUME_FOR, RING_FOR,
};
use node_core::call::msg::{CallId, CallMsg, Ended};
use std::time::{Duration, Instant};

fn device(n: u8) -> DeviceId {
    DeviceId::from_bytes([n; 32])
}

/// The messages in `effects` for `to`.
fn sent(effects: &[Effect], to: DeviceId) -> Vec<CallMsg> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to: t, msg } if *t == to => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

/// A1 calls B1 and B2; both ring. Returns the three machines.
fn ringing(t0: Instant) -> (Call, Call, Call) {
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let id = CallId([7; 16]);
    let (mut caller, fx) = Call::dial(id, &[b1, b2], false, t0).unwrap();
    assert_eq!(caller.state(), CallState::Calling);
    let offer = sent(&fx, b1);
    assert_eq!(
        offer,
        vec![CallMsg::Offer {
            call: id,
            video: false
        }]
    );
    assert_eq!(sent(&fx, b2), offer);
    let (r1, fx1) = Call::incoming(id, a1, false, false, t0);
    let (r2, fx2) = Call::incoming(id, a1, false, false, t0);
    assert_eq!(r1.state(), CallState::Ringing);
    for m in sent(&fx1, a1) {
        assert!(caller.on_msg(b1, m, t0).is_empty());
    }
    for m in sent(&fx2, a1) {
        assert!(caller.on_msg(b2, m, t0).is_empty());
    }
    assert_eq!(caller.state(), CallState::Ringing);
    (caller, r1, r2)
}

#[test]
fn the_first_device_to_answer_takes_the_call_and_the_other_stops_ringing() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let (mut caller, mut r1, mut r2) = ringing(t0);
    let t1 = t0 + Duration::from_secs(3);
    let fx = r2.command(Command::Answer { video: false }, t1).unwrap();
    assert_eq!(r2.state(), CallState::Answering);
    let answer = sent(&fx, a1);
    let fx = caller.on_msg(b2, answer[0].clone(), t1);
    assert_eq!(
        caller.state(),
        CallState::Active {
            peer: b2,
            since: t1
        }
    );
    assert!(fx.contains(&Effect::StartMedia(b2)));
    assert!(fx.contains(&Effect::Close(b1)));
    // B2 hears it won; B1 hears who took it.
    for m in sent(&fx, b2) {
        let out = r2.on_msg(a1, m, t1);
        assert!(out.contains(&Effect::StartMedia(a1)));
    }
    assert!(matches!(r2.state(), CallState::Active { peer, .. } if peer == a1));
    for m in sent(&fx, b1) {
        r1.on_msg(a1, m, t1);
    }
    assert_eq!(
        r1.state(),
        CallState::Ended(EndReason::AnsweredElsewhere(b2))
    );
    // Too late: B1's answer now is refused by its own machine.
    assert!(r1.command(Command::Answer { video: false }, t1).is_err());

    // Hang up from the callee: both sides end, media stops.
    let t2 = t1 + Duration::from_secs(60);
    let fx = r2.command(Command::Hangup, t2).unwrap();
    assert!(fx.contains(&Effect::StopMedia));
    for m in sent(&fx, a1) {
        let out = caller.on_msg(b2, m, t2);
        assert!(out.contains(&Effect::StopMedia));
    }
    assert_eq!(caller.state(), CallState::Ended(EndReason::TheyHungUp));
    assert_eq!(r2.state(), CallState::Ended(EndReason::HungUp));
}

#[test]
fn two_answers_at_once_leave_one_call() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let (mut caller, mut r1, mut r2) = ringing(t0);
    let m1 = sent(
        &r1.command(Command::Answer { video: false }, t0).unwrap(),
        a1,
    );
    let m2 = sent(
        &r2.command(Command::Answer { video: false }, t0).unwrap(),
        a1,
    );
    let fx1 = caller.on_msg(b1, m1[0].clone(), t0);
    let fx2 = caller.on_msg(b2, m2[0].clone(), t0);
    assert!(matches!(caller.state(), CallState::Active { peer, .. } if peer == b1));
    assert_eq!(
        fx2.iter()
            .filter(|e| matches!(e, Effect::StartMedia(_)))
            .count(),
        0
    );
    for m in sent(&fx1, b1) {
        r1.on_msg(a1, m, t0);
    }
    for m in sent(&fx1, b2).into_iter().chain(sent(&fx2, b2)) {
        r2.on_msg(a1, m, t0);
    }
    assert!(matches!(r1.state(), CallState::Active { .. }));
    assert_eq!(
        r2.state(),
        CallState::Ended(EndReason::AnsweredElsewhere(b1))
    );
}

#[test]
fn a_decline_on_one_device_declines_the_call_everywhere() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let (mut caller, mut r1, mut r2) = ringing(t0);
    let fx = r1.command(Command::Decline, t0).unwrap();
    assert_eq!(r1.state(), CallState::Ended(EndReason::Declined));
    let fx = caller.on_msg(b1, sent(&fx, a1)[0].clone(), t0);
    assert_eq!(caller.state(), CallState::Ended(EndReason::Declined));
    for m in sent(&fx, b2) {
        r2.on_msg(a1, m, t0);
    }
    assert_eq!(r2.state(), CallState::Ended(EndReason::Declined));
}

#[test]
fn no_answer_in_time_is_a_missed_call_on_every_device() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let (mut caller, mut r1, mut r2) = ringing(t0);
    assert_eq!(caller.deadline(), Some(t0 + RING_FOR));
    assert!(
        caller
            .tick(t0 + RING_FOR - Duration::from_millis(1))
            .is_empty()
    );
    let fx = caller.tick(t0 + RING_FOR);
    assert_eq!(caller.state(), CallState::Ended(EndReason::NoAnswer));
    for (dev, r) in [(b1, &mut r1), (b2, &mut r2)] {
        let msgs = sent(&fx, dev);
        assert_eq!(
            msgs,
            vec![CallMsg::End {
                call: caller.id(),
                why: Ended::NoAnswer
            }]
        );
        r.on_msg(a1, msgs[0].clone(), t0 + RING_FOR);
        assert_eq!(r.state(), CallState::Ended(EndReason::NoAnswer));
    }
    // A callee whose caller went silent gives up by itself.
    let (_, _, mut lone) = ringing(t0);
    assert!(lone.tick(t0 + RING_FOR).is_empty());
    let _ = lone.tick(t0 + RING_FOR + Duration::from_secs(10));
    assert_eq!(lone.state(), CallState::Ended(EndReason::NoAnswer));
}

#[test]
fn busy_everywhere_ends_the_call_as_busy() {
    let t0 = Instant::now();
    let (a1, b1) = (device(1), device(2));
    let id = CallId([9; 16]);
    let (mut caller, _) = Call::dial(id, &[b1], true, t0).unwrap();
    let (callee, fx) = Call::incoming(id, a1, true, true, t0);
    assert_eq!(callee.state(), CallState::Ended(EndReason::Busy));
    for m in sent(&fx, a1) {
        let _ = caller.on_msg(b1, m, t0);
    }
    assert_eq!(caller.state(), CallState::Ended(EndReason::Busy));
}

#[test]
fn a_lost_link_resumes_within_the_window_and_ends_after_it() {
    let t0 = Instant::now();
    let (a1, b2) = (device(1), device(3));
    let (mut caller, _r1, mut r2) = ringing(t0);
    let answer = sent(
        &r2.command(Command::Answer { video: false }, t0).unwrap(),
        a1,
    );
    let fx = caller.on_msg(b2, answer[0].clone(), t0);
    for m in sent(&fx, b2) {
        let _ = r2.on_msg(a1, m, t0);
    }
    // Cut for 3 s: both wait; the caller redials; the call resumes.
    let cut = t0 + Duration::from_secs(30);
    let fx = caller.link_lost(b2, cut);
    assert!(fx.contains(&Effect::Redial(b2)) && fx.contains(&Effect::StopMedia));
    let _ = r2.link_lost(a1, cut);
    assert!(matches!(r2.state(), CallState::Reconnecting { .. }));
    let back = cut + Duration::from_secs(3);
    assert!(caller.tick(back).is_empty());
    let fx = caller.link_back(b2, back);
    // Media waits until the callee accepts the resumption.
    assert!(!fx.contains(&Effect::StartMedia(b2)));
    assert!(matches!(caller.state(), CallState::Reconnecting { .. }));
    for m in sent(&fx, b2) {
        let out = r2.on_msg(a1, m, back);
        assert!(out.contains(&Effect::StartMedia(a1)));
        for m in sent(&out, a1) {
            let fx = caller.on_msg(b2, m, back);
            assert!(fx.contains(&Effect::StartMedia(b2)));
        }
    }
    assert!(matches!(caller.state(), CallState::Active { since, .. } if since == t0));
    assert!(matches!(r2.state(), CallState::Active { .. }));
    // Cut for 15 s: both end it as lost.
    let cut = back + Duration::from_secs(60);
    let _ = caller.link_lost(b2, cut);
    let _ = r2.link_lost(a1, cut);
    let late = cut + RESUME_FOR;
    let _ = caller.tick(late);
    let _ = r2.tick(late);
    assert_eq!(caller.state(), CallState::Ended(EndReason::LinkLost));
    assert_eq!(r2.state(), CallState::Ended(EndReason::LinkLost));
}

#[test]
fn strangers_and_bad_commands_change_nothing() {
    let t0 = Instant::now();
    let (a1, b1) = (device(1), device(2));
    let (mut caller, mut r1, _r2) = ringing(t0);
    let id = caller.id();
    // A device that was not offered the call cannot answer or end it.
    let intruder = device(66);
    assert!(
        caller
            .on_msg(
                intruder,
                CallMsg::Answer {
                    call: id,
                    video: false
                },
                t0
            )
            .is_empty()
    );
    assert!(
        caller
            .on_msg(
                intruder,
                CallMsg::End {
                    call: id,
                    why: Ended::Declined
                },
                t0
            )
            .is_empty()
    );
    assert_eq!(caller.state(), CallState::Ringing);
    // Another call's id is ignored.
    let other = CallId([1; 16]);
    assert!(
        caller
            .on_msg(
                b1,
                CallMsg::Answer {
                    call: other,
                    video: false
                },
                t0
            )
            .is_empty()
    );
    // A callee takes orders only from its caller.
    assert!(
        r1.on_msg(
            intruder,
            CallMsg::End {
                call: id,
                why: Ended::Hangup
            },
            t0
        )
        .is_empty()
    );
    assert_eq!(r1.state(), CallState::Ringing);
    assert!(
        r1.on_msg(a1, CallMsg::Accepted(id), t0).is_empty(),
        "accepted before answering"
    );
    // The caller cannot answer its own call.
    assert!(
        caller
            .command(Command::Answer { video: false }, t0)
            .is_err()
    );
    assert!(caller.command(Command::Decline, t0).is_err());
    // No devices: no call.
    assert!(Call::dial(id, &[], false, t0).is_err());
}

#[test]
fn messages_round_trip_and_garbage_is_refused() {
    let id = CallId([5; 16]);
    let all = [
        CallMsg::Offer {
            call: id,
            video: true,
        },
        CallMsg::Ringing(id),
        CallMsg::Busy(id),
        CallMsg::Answer {
            call: id,
            video: false,
        },
        CallMsg::Accepted(id),
        CallMsg::End {
            call: id,
            why: Ended::Hangup,
        },
        CallMsg::End {
            call: id,
            why: Ended::Taken(device(4)),
        },
        CallMsg::End {
            call: id,
            why: Ended::NoAnswer,
        },
        CallMsg::End {
            call: id,
            why: Ended::Declined,
        },
        CallMsg::End {
            call: id,
            why: Ended::Cancelled,
        },
        CallMsg::Resume(id),
        CallMsg::End {
            call: id,
            why: Ended::Moved(device(6)),
        },
        CallMsg::Move {
            call: id,
            to: device(6),
        },
        CallMsg::Handover(node_core::call::Handover {
            call: id,
            peer: device(1),
            caller: false,
            video: true,
            elapsed_ms: 12_345,
            answered_by: device(3),
        }),
        CallMsg::Elsewhere {
            call: id,
            contact: node_core::AccountId::from_bytes([8; 32]),
        },
    ];
    for m in all {
        assert_eq!(CallMsg::decode(&m.encode()), Ok(m));
    }
    assert!(CallMsg::decode(&[]).is_err());
    assert!(CallMsg::decode(&[99; 17]).is_err());
    let mut video2 = CallMsg::Offer {
        call: id,
        video: true,
    }
    .encode();
    *video2.last_mut().unwrap() = 2;
    assert!(CallMsg::decode(&video2).is_err());
    let mut trailing = CallMsg::Ringing(id).encode();
    trailing.push(0);
    assert!(CallMsg::decode(&trailing).is_err());
    assert_eq!(id.to_string().parse::<CallId>(), Ok(id));
    assert!("xyz".parse::<CallId>().is_err());
}

/// Regressions from an attacker's reading: a device that said busy cannot
/// then answer (its queued answer is ignored), and the device in the call
/// cannot end it by saying busy (only by hanging up, which stops media).
#[test]
fn busy_is_final_and_cannot_end_a_call() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let (mut caller, _r1, _r2) = ringing(t0);
    let id = caller.id();
    let _ = caller.on_msg(b1, CallMsg::Busy(id), t0);
    let fx = caller.on_msg(
        b1,
        CallMsg::Answer {
            call: id,
            video: false,
        },
        t0,
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(caller.state(), CallState::Ringing);
    // B2 answers for real; then says busy: the call goes on.
    let _ = caller.on_msg(
        b2,
        CallMsg::Answer {
            call: id,
            video: false,
        },
        t0,
    );
    assert!(matches!(caller.state(), CallState::Active { peer, .. } if peer == b2));
    assert!(caller.on_msg(b2, CallMsg::Busy(id), t0).is_empty());
    assert!(matches!(caller.state(), CallState::Active { .. }));
    let fx = caller.on_msg(
        b2,
        CallMsg::End {
            call: id,
            why: Ended::Hangup,
        },
        t0,
    );
    assert!(fx.contains(&Effect::StopMedia));
    let _ = a1;
}

mod common;

/// A contact's device writes call records into the conversation: a
/// damaged one is shown as damaged (and breaks nothing), a well-formed one
/// as that contact's, whatever it claims.
#[tokio::test]
async fn a_contacts_call_records_are_shown_as_theirs_and_damage_is_contained() {
    use common::{NOW, deliver, events_of, new_node};
    use node_core::LogId;
    use node_core::call::record::{CallRecord, Outcome};
    use node_core::node::messages::conversation_kind;
    let dir = tempfile::tempdir().unwrap();
    let mut a = new_node(&dir, "a").await;
    let mut b = new_node(&dir, "b").await;
    let (ca, cb) = (a.card(vec![], NOW).unwrap(), b.card(vec![], NOW).unwrap());
    a.add_contact(&cb, None, NOW).await.unwrap();
    b.add_contact(&ca, None, NOW).await.unwrap();
    let (ia, ib) = (a.account(), b.account());
    let conversation = LogId::conversation(ib, ia);
    b.append_for(
        conversation,
        conversation_kind::CALL,
        vec![0xff; 7],
        NOW,
        &[ia],
    )
    .await
    .unwrap();
    let forged = CallRecord {
        call: CallId([8; 16]),
        video: false,
        outcome: Outcome::Answered,
        answered_by: Some(a.device()),
        duration_ms: 3_600_000,
    };
    b.append_for(
        conversation,
        conversation_kind::CALL,
        forged.encode(),
        NOW + 1,
        &[ia],
    )
    .await
    .unwrap();
    deliver(
        &mut a,
        LogId::account(ib),
        events_of(&b, LogId::account(ib)).await,
        3,
    )
    .await;
    deliver(&mut a, conversation, events_of(&b, conversation).await, 5).await;
    let log = a.conversation(ib, None).await.unwrap();
    let calls: Vec<_> = log.iter().filter(|m| m.kind == "call").collect();
    assert_eq!(calls.len(), 2, "{log:?}");
    assert!(calls.iter().any(|m| m.text == "(a damaged call record)"));
    assert!(
        calls.iter().all(|m| m.author == ib),
        "shown as the contact's"
    );
}

/// A1 and B2 in a call (B2 answered); returns the machines.
fn on_call(t0: Instant) -> (Call, Call) {
    let (a1, b2) = (device(1), device(3));
    let (mut caller, _r1, mut r2) = ringing(t0);
    let fx = r2.command(Command::Answer { video: false }, t0).unwrap();
    let fx = caller.on_msg(b2, sent(&fx, a1)[0].clone(), t0);
    for m in sent(&fx, b2) {
        let _ = r2.on_msg(a1, m, t0);
    }
    assert!(matches!(caller.state(), CallState::Active { peer, .. } if peer == b2));
    assert!(matches!(r2.state(), CallState::Active { peer, .. } if peer == a1));
    (caller, r2)
}

/// B2 moves its side to B1: B1 takes the handover and dials A1; A1
/// switches its media to B1 when B1 resumes, and tells B2 the move is
/// done; B2 ends as moved. The call goes on between A1 and B1, and either
/// can hang up.
#[test]
fn a_call_moves_to_another_own_device_without_ending() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let id = CallId([7; 16]);
    let (mut caller, mut r2) = on_call(t0);
    let t1 = t0 + Duration::from_secs(20);
    // Not to the other side itself, nor twice at once.
    assert!(r2.command(Command::Move { to: a1 }, t1).is_err());
    let fx = r2.command(Command::Move { to: b1 }, t1).unwrap();
    assert_eq!(sent(&fx, a1), vec![CallMsg::Move { call: id, to: b1 }]);
    assert!(r2.command(Command::Move { to: b1 }, t1).is_err());
    // A1 hears of it and keeps B2's media meanwhile.
    assert!(
        caller
            .on_msg(b2, CallMsg::Move { call: id, to: b1 }, t1)
            .is_empty()
    );
    assert!(caller.expects_link(b1));
    assert!(!caller.expects_link(device(9)));
    // B1 takes over: it dials A1 and, linked, resumes there.
    let (mut taker, fx) = Call::taken_over(id, a1, Side::Callee, false, t0, t1);
    assert_eq!(fx, vec![Effect::Redial(a1)]);
    let fx = taker.link_back(a1, t1);
    assert_eq!(sent(&fx, a1), vec![CallMsg::Resume(id)]);
    assert!(!fx.contains(&Effect::StartMedia(a1)));
    // A1 switches to B1, accepts, and tells B2.
    assert!(caller.link_back(b1, t1).is_empty());
    let fx = caller.on_msg(b1, CallMsg::Resume(id), t1);
    assert_eq!(sent(&fx, b1), vec![CallMsg::Accepted(id)]);
    let started = taker.on_msg(a1, CallMsg::Accepted(id), t1);
    assert_eq!(started, vec![Effect::StartMedia(a1)]);
    assert_eq!(
        taker.state(),
        CallState::Active {
            peer: a1,
            since: t0
        }
    );
    assert_eq!(
        caller.state(),
        CallState::Active {
            peer: b1,
            since: t0
        }
    );
    assert!(fx.contains(&Effect::StopMedia));
    assert!(fx.contains(&Effect::StartMedia(b1)));
    assert!(fx.contains(&Effect::Close(b2)));
    let done = sent(&fx, b2);
    assert_eq!(
        done,
        vec![CallMsg::End {
            call: id,
            why: Ended::Moved(b1)
        }]
    );
    let fx = r2.on_msg(a1, done[0].clone(), t1);
    assert_eq!(r2.state(), CallState::Ended(EndReason::Moved(b1)));
    assert!(fx.contains(&Effect::StopMedia));
    // B2 has no more say; B1 hangs up and A1 hears it.
    let stale = CallMsg::End {
        call: id,
        why: Ended::Hangup,
    };
    assert!(caller.on_msg(b2, stale, t1).is_empty());
    let fx = taker.command(Command::Hangup, t1).unwrap();
    for m in sent(&fx, a1) {
        let _ = caller.on_msg(b1, m, t1);
    }
    assert_eq!(caller.state(), CallState::Ended(EndReason::TheyHungUp));
}

/// The caller's side moves too (A1 to A2): the callee switches, and the
/// caller's new device redials after a lost link like any caller.
#[test]
fn the_callers_side_moves_and_redials_after_a_loss() {
    let t0 = Instant::now();
    let (a1, a2, b2) = (device(1), device(4), device(3));
    let id = CallId([7; 16]);
    let (mut caller, mut r2) = on_call(t0);
    let fx = caller.command(Command::Move { to: a2 }, t0).unwrap();
    for m in sent(&fx, b2) {
        assert!(r2.on_msg(a1, m, t0).is_empty());
    }
    let (mut a2m, _) = Call::taken_over(id, b2, Side::Caller, false, t0, t0);
    let fx = a2m.link_back(b2, t0);
    for m in sent(&fx, b2) {
        let fx = r2.on_msg(a2, m, t0);
        assert!(fx.contains(&Effect::StartMedia(a2)));
        for m in sent(&fx, a2) {
            let _ = a2m.on_msg(b2, m, t0);
        }
        for m in sent(&fx, a1) {
            let _ = caller.on_msg(b2, m, t0);
        }
    }
    assert!(matches!(a2m.state(), CallState::Active { .. }));
    assert_eq!(caller.state(), CallState::Ended(EndReason::Moved(a2)));
    let fx = a2m.link_lost(b2, t0);
    assert!(fx.contains(&Effect::Redial(b2)));
    let fx = r2.link_lost(a2, t0);
    assert!(!fx.iter().any(|e| matches!(e, Effect::Redial(_))));
}

/// A move that never completes lapses: the call goes on with the old
/// device; a device taking over that never reaches the other side ends
/// as lost; a `Move` from anyone but the peer, and an `End(Moved)` nobody
/// asked for, move nothing (the latter ends the call like a hang-up).
#[test]
fn moves_that_do_not_complete_change_nothing() {
    let t0 = Instant::now();
    let (a1, b1, b2) = (device(1), device(2), device(3));
    let id = CallId([7; 16]);
    let (mut caller, mut r2) = on_call(t0);
    assert!(
        caller
            .on_msg(
                device(9),
                CallMsg::Move {
                    call: id,
                    to: device(9)
                },
                t0
            )
            .is_empty()
    );
    assert!(!caller.expects_link(device(9)));
    let _ = r2.command(Command::Move { to: b1 }, t0).unwrap();
    let _ = caller.on_msg(b2, CallMsg::Move { call: id, to: b1 }, t0);
    // A move's window covers the handover (up to 7 s) and the taker's
    // own window, on both sides.
    assert!(MOVE_FOR >= RESUME_FOR + Duration::from_secs(7));
    let later = t0 + MOVE_FOR + Duration::from_millis(1);
    assert_eq!(caller.deadline(), Some(t0 + MOVE_FOR));
    assert!(caller.tick(later).is_empty());
    assert!(r2.tick(later).is_empty());
    assert!(!caller.expects_link(b1));
    assert!(matches!(caller.state(), CallState::Active { peer, .. } if peer == b2));
    assert!(matches!(r2.state(), CallState::Active { .. }));
    // A Resume from B1 now is nobody's.
    assert!(caller.on_msg(b1, CallMsg::Resume(id), later).is_empty());
    let (mut taker, _) = Call::taken_over(id, a1, Side::Callee, false, t0, t0);
    let fx = taker.tick(later);
    assert_eq!(taker.state(), CallState::Ended(EndReason::LinkLost));
    assert!(fx.contains(&Effect::Close(a1)));
    // An unasked-for "moved" ends the call as a hang-up would.
    let fx = r2.on_msg(
        a1,
        CallMsg::End {
            call: id,
            why: Ended::Moved(device(9)),
        },
        later,
    );
    assert!(fx.contains(&Effect::StopMedia));
    assert_eq!(r2.state(), CallState::Ended(EndReason::TheyHungUp));
}

/// Regressions from an attacker's reading of moves: a resumption the
/// other side refuses is dialled again within the same window (it does
/// not restart it, so a refusing peer cannot keep a call alive forever);
/// the own device taking over ends the moving device's side even when
/// the other side never says the move is done; a move cancelled after a
/// failed handover lets the call go on; the peer cannot move while this
/// side moves.
#[test]
fn refused_resumptions_end_in_time_and_moves_finish_without_the_peer() {
    let t0 = Instant::now();
    let (a1, a2, b2) = (device(1), device(4), device(3));
    let id = CallId([7; 16]);
    let (mut caller, mut r2) = on_call(t0);
    let cut = t0 + Duration::from_secs(5);
    let _ = caller.link_lost(b2, cut);
    for i in 1..20u64 {
        let at = cut + Duration::from_millis(400 * i);
        if caller.is_over() {
            break;
        }
        // Linked again, Resume sent, refused (the connection closes).
        let fx = caller.link_back(b2, at);
        assert_eq!(sent(&fx, b2), vec![CallMsg::Resume(id)]);
        let fx = caller.link_lost(b2, at);
        assert_eq!(fx, vec![Effect::Redial(b2)]);
        let _ = caller.tick(at);
    }
    assert_eq!(caller.deadline(), Some(cut + RESUME_FOR));
    let _ = caller.tick(cut + RESUME_FOR);
    assert_eq!(caller.state(), CallState::Ended(EndReason::LinkLost));

    // B2 moves to B1; A never says it is done; B1 says it has the call.
    let (mut caller, mut r2b) = on_call(t0);
    let b1 = device(2);
    let _ = r2b.command(Command::Move { to: b1 }, t0).unwrap();
    // While B2 moves, A cannot move (no split call).
    assert!(
        r2b.on_msg(a1, CallMsg::Move { call: id, to: a2 }, t0)
            .is_empty()
    );
    assert!(!r2b.expects_link(a2));
    assert!(r2b.moved(device(9)).is_empty());
    let fx = r2b.moved(b1);
    assert!(fx.contains(&Effect::StopMedia) && fx.contains(&Effect::Close(a1)));
    assert_eq!(r2b.state(), CallState::Ended(EndReason::Moved(b1)));
    // A move whose handover failed is cancelled: the call goes on.
    let _ = caller.command(Command::Move { to: a2 }, t0).unwrap();
    let _ = caller.command(Command::CancelMove, t0).unwrap();
    assert!(caller.command(Command::Move { to: a2 }, t0).is_ok());
    let _ = r2.command(Command::Hangup, t0);
}
