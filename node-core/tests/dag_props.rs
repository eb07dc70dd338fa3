//! The DAG machinery: any arrival order of the same events gives the same
//! stored DAG and the same display order; held events wait, then enter.

#![allow(clippy::unwrap_used)]

mod common;

use common::Dev;
use node_core::LogId;
use node_core::log::{AllowAll, Dag, DagConfig, Event, LogKind, Offer, Rejection};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// A random DAG: each event cites one to three earlier events.
fn build(shape: &[(u8, u8, u8, i64)]) -> Vec<Event> {
    let log = LogId::from_bytes([9; 32]);
    let mut devs: Vec<Dev> = (0..3).map(|_| Dev::new()).collect();
    let mut events: Vec<Event> = Vec::new();
    for (i, (author, p1, p2, time)) in shape.iter().enumerate() {
        let mut parents: Vec<&Event> = Vec::new();
        if i > 0 {
            parents.push(&events[*p1 as usize % i]);
            parents.push(&events[*p2 as usize % i]);
            parents.push(&events[i - 1]);
        }
        parents.sort_by_key(|e| e.id());
        parents.dedup_by_key(|e| e.id());
        let dev = &mut devs[*author as usize % 3];
        let e = dev.event(
            Some(log),
            LogKind::Conversation,
            &parents,
            1,
            format!("m{i}").into_bytes(),
            *time,
        );
        events.push(e);
    }
    events
}

fn replay(events: &[&Event]) -> (BTreeSet<node_core::EventId>, Vec<node_core::EventId>) {
    let mut dag = Dag::new(
        LogId::from_bytes([9; 32]),
        LogKind::Conversation,
        DagConfig::default(),
    );
    for e in events {
        dag.offer((*e).clone(), 1_000_000, &mut AllowAll).unwrap();
    }
    assert_eq!(dag.pending_len(), 0);
    (dag.ids().copied().collect(), dag.display_order())
}

fn shuffle<T>(v: &mut [T], mut s: u64) {
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (s >> 33) as usize % (i + 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_arrival_order_gives_the_same_dag_and_order(
        shape in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), 0i64..2_000_000), 1..40),
        seed in any::<u64>(),
    ) {
        let events = build(&shape);
        let in_order: Vec<&Event> = events.iter().collect();
        let (want_ids, want_order) = replay(&in_order);
        prop_assert_eq!(want_ids.len(), events.len());
        let mut shuffled = in_order.clone();
        shuffle(&mut shuffled, seed);
        let (ids, order) = replay(&shuffled);
        prop_assert_eq!(ids, want_ids);
        prop_assert_eq!(order, want_order);
    }

    #[test]
    fn not_below_is_what_lies_outside_the_known_events_ancestry(
        shape in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), 0i64..2_000_000), 1..40),
        pick in proptest::collection::vec(any::<u8>(), 0..5),
    ) {
        // A branchy DAG: each event cites one or two random earlier ones
        // (one author per event, so no author's sequence constrains it).
        let log = LogId::from_bytes([9; 32]);
        let mut events: Vec<Event> = Vec::new();
        for (i, (_, p1, p2, time)) in shape.iter().enumerate() {
            let mut parents: Vec<&Event> = Vec::new();
            if i > 0 {
                parents.push(&events[*p1 as usize % i]);
                if p2 % 2 == 0 {
                    parents.push(&events[*p2 as usize % i]);
                }
            }
            parents.sort_by_key(|e| e.id());
            parents.dedup_by_key(|e| e.id());
            let e = Dev::new().event(
                Some(log), LogKind::Conversation, &parents, 1, vec![i as u8], *time,
            );
            events.push(e);
        }
        let mut dag = Dag::new(log, LogKind::Conversation, DagConfig::default());
        for e in &events {
            dag.offer(e.clone(), 1_000_000, &mut AllowAll).unwrap();
        }
        let mut known: Vec<node_core::EventId> =
            pick.iter().map(|p| events[*p as usize % events.len()].id()).collect();
        known.push(node_core::EventId::from_bytes([7; 32])); // not stored: ignored
        // Brute force: the ancestry of `known`, then everything else.
        let mut below = BTreeSet::new();
        let mut stack: Vec<node_core::EventId> =
            known.iter().filter(|id| dag.node(id).is_some()).copied().collect();
        while let Some(id) = stack.pop() {
            if below.insert(id) {
                stack.extend(dag.node(&id).unwrap().parents.iter().copied());
            }
        }
        let mut want: Vec<node_core::EventId> =
            dag.ids().filter(|id| !below.contains(*id)).copied().collect();
        want.sort_by_key(|id| (dag.node(id).unwrap().depth, *id));
        prop_assert_eq!(dag.not_below(&known), want);
    }
}

#[test]
fn display_order_is_topological_even_against_claimed_time() {
    let log = LogId::from_bytes([9; 32]);
    let mut a = Dev::new();
    let first = a.event(
        Some(log),
        LogKind::Conversation,
        &[],
        1,
        b"1".to_vec(),
        5_000,
    );
    // Claims to be older than its parent: clamped up to the parent's time.
    let second = a.event(
        Some(log),
        LogKind::Conversation,
        &[&first],
        1,
        b"2".to_vec(),
        1_000,
    );
    let mut dag = Dag::new(log, LogKind::Conversation, DagConfig::default());
    dag.offer(second.clone(), 10_000, &mut AllowAll).unwrap();
    dag.offer(first.clone(), 10_000, &mut AllowAll).unwrap();
    assert_eq!(dag.display_order(), vec![first.id(), second.id()]);
    assert_eq!(dag.node(&second.id()).unwrap().effective_time, 5_000);
}

#[test]
fn future_claims_are_clamped_to_first_sight_plus_margin() {
    let log = LogId::from_bytes([9; 32]);
    let mut a = Dev::new();
    let far = a.event(
        Some(log),
        LogKind::Conversation,
        &[],
        1,
        b"x".to_vec(),
        i64::MAX,
    );
    let mut dag = Dag::new(log, LogKind::Conversation, DagConfig::default());
    dag.offer(far.clone(), 1_000, &mut AllowAll).unwrap();
    let eff = dag.node(&far.id()).unwrap().effective_time;
    assert_eq!(eff, 1_000 + DagConfig::default().time_margin_ms);
}

#[test]
fn held_events_wait_for_parents_and_the_buffer_is_bounded() {
    let log = LogId::from_bytes([9; 32]);
    let mut a = Dev::new();
    let root = a.event(Some(log), LogKind::Conversation, &[], 1, b"r".to_vec(), 1);
    let kids: Vec<Event> = (0..3)
        .map(|i| {
            let mut d = Dev::new();
            d.event(Some(log), LogKind::Conversation, &[&root], 1, vec![i], 2)
        })
        .collect();
    let config = DagConfig {
        max_pending: 2,
        ..DagConfig::default()
    };
    let mut dag = Dag::new(log, LogKind::Conversation, config);
    assert!(matches!(
        dag.offer(kids[0].clone(), 5, &mut AllowAll).unwrap(),
        Offer::Held { missing } if missing == vec![root.id()]
    ));
    dag.offer(kids[1].clone(), 5, &mut AllowAll).unwrap();
    assert_eq!(
        dag.offer(kids[2].clone(), 5, &mut AllowAll).unwrap_err(),
        Rejection::PendingFull { max: 2 }
    );
    assert!(dag.display_order().is_empty(), "held events are not shown");
    match dag.offer(root.clone(), 5, &mut AllowAll).unwrap() {
        Offer::Stored(acc) => assert_eq!(acc.len(), 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(dag.pending_len(), 0);
    assert_eq!(dag.display_order()[0], root.id());
}

#[test]
fn a_full_buffer_makes_room_for_ancestors() {
    let log = LogId::from_bytes([9; 32]);
    let mut a = Dev::new();
    let mut chain = vec![a.event(Some(log), LogKind::Conversation, &[], 1, b"0".to_vec(), 1)];
    for i in 1..6u8 {
        let e = a.event(
            Some(log),
            LogKind::Conversation,
            &[&chain[i as usize - 1]],
            1,
            vec![i],
            1,
        );
        chain.push(e);
    }
    let config = DagConfig {
        max_pending: 2,
        ..DagConfig::default()
    };
    let mut dag = Dag::new(log, LogKind::Conversation, config);
    // The newest events arrive first and fill the buffer...
    dag.offer(chain[5].clone(), 5, &mut AllowAll).unwrap();
    dag.offer(chain[4].clone(), 5, &mut AllowAll).unwrap();
    // ...older ones still get in, pushing out the deepest.
    for i in (1..4).rev() {
        dag.offer(chain[i].clone(), 5, &mut AllowAll).unwrap();
    }
    assert_eq!(dag.pending_len(), 2);
    dag.offer(chain[0].clone(), 5, &mut AllowAll).unwrap();
    assert_eq!(dag.len(), 3, "root and the two held ancestors are in");
    // The evicted descendants come again (as a reconciliation would send them).
    dag.offer(chain[3].clone(), 5, &mut AllowAll).unwrap();
    dag.offer(chain[4].clone(), 5, &mut AllowAll).unwrap();
    dag.offer(chain[5].clone(), 5, &mut AllowAll).unwrap();
    assert_eq!(dag.len(), 6);
}
