//! Calls between two people's devices, in virtual time: one caller device
//! and two callee devices exchange the control messages their machines
//! emit; what each shows and sends is checked at every step.

#![allow(clippy::unwrap_used)]
// The test is the driver: it reads the clock once for the start of virtual time.
#![allow(clippy::disallowed_methods)]

use node_core::DeviceId;
use node_core::call::machine::{Call, CallState, Command, Effect, EndReason, RESUME_FOR, RING_FOR};
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
    assert!(fx.contains(&Effect::StartMedia(b2)));
    for m in sent(&fx, b2) {
        let out = r2.on_msg(a1, m, back);
        assert!(out.contains(&Effect::StartMedia(a1)));
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
