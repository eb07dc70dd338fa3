//! Room state resolution time (`node_core::rooms::resolve`): a room with
//! 10,000 state events (joins, name and topic changes, role changes by the
//! creator) and a conflicting branch of 100 state events by an admin that
//! forks 100 events before the heads, resolved from scratch (both passes).
//! Run: `cargo bench -p node-core --bench rooms`.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::Instant;

use node_core::crypto::{HashDomain, hash};
use node_core::rooms::{ADMIN, MODERATOR, Membership, RoomContent, RoomEvent, resolve};
use node_core::{AccountId, EventId};

fn account(n: u32) -> AccountId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    bytes[31] = 1;
    AccountId::from_bytes(bytes)
}

fn event(
    events: &mut Vec<RoomEvent>,
    sender: AccountId,
    parent: Option<(EventId, u64)>,
    content: RoomContent,
) -> (EventId, u64) {
    let mut bytes = content.encode();
    bytes.extend_from_slice(&(events.len() as u64).to_le_bytes());
    let id = EventId::from_bytes(hash(HashDomain::EVENT_ID, &bytes));
    let depth = parent.map_or(0, |(_, d)| d + 1);
    events.push(RoomEvent {
        id,
        parents: parent.map(|(p, _)| vec![p]).into_iter().flatten().collect(),
        depth,
        sender,
        content,
        inert: false,
    });
    (id, depth)
}

fn main() {
    let creator = account(0);
    let admin = account(1);
    let mut events = Vec::new();
    let mut head = event(
        &mut events,
        creator,
        None,
        RoomContent::Create {
            name: "bench".into(),
            public: true,
        },
    );
    let mut fork = None;
    let mut n = 1u32;
    while events.len() < 10_000 {
        if events.len() == 10_000 - 100 {
            fork = Some(head);
        }
        let content = match events.len() % 4 {
            0 => RoomContent::Member {
                target: account(n),
                membership: Membership::Join,
            },
            1 => RoomContent::Name(format!("name {n}")),
            2 => RoomContent::Topic(format!("topic {n}")),
            _ => RoomContent::Power {
                users: BTreeMap::from([(admin, ADMIN), (account(n), MODERATOR)]),
            },
        };
        let sender = match content {
            RoomContent::Member { target, .. } => target,
            _ => creator,
        };
        n += 1;
        head = event(&mut events, sender, Some(head), content);
    }
    // The admin joined early; its branch of 100 name changes and kicks.
    events.insert(
        1,
        RoomEvent {
            id: EventId::from_bytes([0xad; 32]),
            parents: vec![events[0].id],
            depth: 1,
            sender: admin,
            content: RoomContent::Member {
                target: admin,
                membership: Membership::Join,
            },
            inert: false,
        },
    );
    // The branch starts from the fork and the admin's own join (an author's
    // events are a chain).
    let (fork_id, fork_depth) = fork.unwrap();
    let mut branch = (fork_id, fork_depth);
    for i in 0..100u32 {
        let content = if i % 2 == 0 {
            RoomContent::Name(format!("admin's name {i}"))
        } else {
            RoomContent::Member {
                target: account(i + 2),
                membership: Membership::Leave,
            }
        };
        branch = event(&mut events, admin, Some(branch), content);
        if i == 0 {
            let first = events.last_mut().unwrap();
            first.parents.push(EventId::from_bytes([0xad; 32]));
        }
    }
    let state_events = events.len();
    let runs = 10;
    let started = Instant::now();
    let mut resolved = None;
    for _ in 0..runs {
        resolved = Some(resolve(&events));
    }
    let each = started.elapsed() / runs;
    let r = resolved.unwrap();
    let refused: std::collections::HashSet<EventId> = r.refused.iter().copied().collect();
    let mut kinds = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| refused.contains(&e.id)) {
        *kinds
            .entry((e.content.kind(), e.sender == admin))
            .or_insert(0) += 1;
    }
    println!("refused (kind, by the admin): {kinds:?}");
    println!(
        "resolve: {state_events} state events (10,000 on the main line, a 100-event conflicting branch): {:.1} ms each ({} refused, {} members)",
        each.as_secs_f64() * 1e3,
        r.refused.len(),
        r.state.joined().count()
    );
}
