//! Room state resolution (`node_core::rooms`): the adversarial branches the
//! issue names, resolved the same way whatever order the events come in,
//! and a property test over random room DAGs.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};

use node_core::crypto::{HashDomain, hash};
use node_core::rooms::{ADMIN, Membership, RoomContent, RoomEvent, resolve};
use node_core::{AccountId, EventId};
use proptest::prelude::*;

fn account(n: u8) -> AccountId {
    AccountId::from_bytes([n; 32])
}

/// Builds a room DAG by hand.
#[derive(Default)]
struct Room {
    events: Vec<RoomEvent>,
    depth: HashMap<EventId, u64>,
}

impl Room {
    fn add(&mut self, sender: AccountId, parents: &[EventId], content: RoomContent) -> EventId {
        let mut bytes = content.encode();
        bytes.extend_from_slice(sender.as_bytes());
        for p in parents {
            bytes.extend_from_slice(p.as_bytes());
        }
        bytes.extend_from_slice(&(self.events.len() as u64).to_le_bytes());
        let id = EventId::from_bytes(hash(HashDomain::EVENT_ID, &bytes));
        let depth = parents.iter().map(|p| self.depth[p] + 1).max().unwrap_or(0);
        self.depth.insert(id, depth);
        self.events.push(RoomEvent {
            id,
            parents: parents.to_vec(),
            depth,
            sender,
            content,
            inert: false,
        });
        id
    }

    fn create(&mut self, creator: AccountId) -> EventId {
        self.add(
            creator,
            &[],
            RoomContent::Create {
                name: "room".into(),
                public: false,
            },
        )
    }

    fn member(
        &mut self,
        sender: AccountId,
        parents: &[EventId],
        target: AccountId,
        m: Membership,
    ) -> EventId {
        self.add(
            sender,
            parents,
            RoomContent::Member {
                target,
                membership: m,
            },
        )
    }

    fn say(&mut self, sender: AccountId, parents: &[EventId], text: &str) -> EventId {
        self.add(sender, parents, RoomContent::Message(text.into()))
    }

    fn power(
        &mut self,
        sender: AccountId,
        parents: &[EventId],
        users: &[(AccountId, i64)],
    ) -> EventId {
        self.add(
            sender,
            parents,
            RoomContent::Power {
                users: users.iter().copied().collect(),
            },
        )
    }

    /// Invites and joins `who` after `at`.
    fn join(&mut self, inviter: AccountId, at: EventId, who: AccountId) -> EventId {
        let invite = self.member(inviter, &[at], who, Membership::Invite);
        self.member(who, &[invite], who, Membership::Join)
    }

    /// Resolves in the given order and in reverse and a rotation; all must agree.
    fn resolved(&self) -> node_core::rooms::Resolved {
        let forward = resolve(&self.events);
        let mut reversed = self.events.clone();
        reversed.reverse();
        assert_eq!(resolve(&reversed), forward);
        let mut rotated = self.events.clone();
        rotated.rotate_left(self.events.len() / 2);
        assert_eq!(resolve(&rotated), forward);
        forward
    }
}

#[test]
fn private_rooms_need_an_invitation() {
    let (a, b, c) = (account(1), account(2), account(3));
    let mut room = Room::default();
    let create = room.create(a);
    let b_in = room.join(a, create, b);
    let hello = room.say(b, &[b_in], "hello");
    let c_join = room.member(c, &[hello], c, Membership::Join);
    let c_says = room.say(c, &[c_join], "let me in");
    let r = room.resolved();
    assert_eq!(r.shown, vec![hello]);
    assert!(r.refused.contains(&c_join) && r.refused.contains(&c_says));
    assert!(r.state.is_joined(&b) && !r.state.is_joined(&c));
}

#[test]
fn a_ban_beats_the_banned_members_concurrent_messages() {
    let (a, b, x) = (account(1), account(2), account(9));
    let mut room = Room::default();
    let create = room.create(a);
    let b_in = room.join(a, create, b);
    let x_in = room.join(a, b_in, x);
    let before = room.say(x, &[x_in], "before the fork");
    // Branch 1: B chats, then A bans X.
    let b1 = room.say(b, &[before], "b talks");
    let ban = room.member(a, &[b1], x, Membership::Ban);
    // Branch 2: X keeps writing, unaware.
    let x1 = room.say(x, &[before], "concurrent 1");
    let x2 = room.say(x, &[x1], "concurrent 2");
    // X writes after seeing the ban too (a client that ignores it).
    let after = room.say(x, &[ban, x2], "after the ban");
    let merge = room.say(b, &[after], "merged");
    let r = room.resolved();
    assert_eq!(r.state.membership(&x), Some(Membership::Ban));
    assert!(r.shown.contains(&before));
    for hidden in [x1, x2, after] {
        assert!(
            !r.shown.contains(&hidden),
            "a removed member's message was shown"
        );
    }
    assert!(r.shown.contains(&b1) && r.shown.contains(&merge));
}

#[test]
fn self_promotion_on_an_old_branch_loses() {
    let (a, x, y) = (account(1), account(2), account(3));
    let mut room = Room::default();
    let create = room.create(a);
    let x_in = room.join(a, create, x);
    let y_in = room.join(a, x_in, y);
    let promote = room.power(a, &[y_in], &[(x, ADMIN)]);
    let chat = room.say(y, &[promote], "x is admin now");
    // A demotes X.
    let demote = room.power(a, &[chat], &[]);
    // X, on a branch from before the demotion, makes Y admin and demotes... A cannot be.
    let sneaky = room.power(x, &[promote], &[(x, ADMIN), (y, ADMIN)]);
    // ... and, still on that branch, kicks Y.
    let kick = room.member(x, &[sneaky], y, Membership::Leave);
    let merge = room.say(y, &[demote, kick], "merge");
    let r = room.resolved();
    assert!(r.refused.contains(&sneaky) && r.refused.contains(&kick));
    assert_eq!(r.state.power_of(&x), 0);
    assert_eq!(r.state.power_of(&y), 0);
    assert!(r.state.is_joined(&y));
    assert!(r.shown.contains(&merge));
}

#[test]
fn mutual_kicks_between_admins_resolve_the_same_everywhere() {
    let (a, b, c) = (account(1), account(2), account(3));
    let mut room = Room::default();
    let create = room.create(a);
    let b_in = room.join(a, create, b);
    let c_in = room.join(a, b_in, c);
    let admins = room.power(a, &[c_in], &[(b, ADMIN), (c, ADMIN)]);
    let b_kicks = room.member(b, &[admins], c, Membership::Leave);
    let c_kicks = room.member(c, &[admins], b, Membership::Leave);
    let b_says = room.say(b, &[b_kicks], "b was here");
    let c_says = room.say(c, &[c_kicks], "c was here");
    let r = room.resolved();
    // Equal power cannot remove equal power: both kicks fail, everywhere.
    assert!(r.refused.contains(&b_kicks) && r.refused.contains(&c_kicks));
    assert!(r.state.is_joined(&b) && r.state.is_joined(&c));
    assert!(r.shown.contains(&b_says) && r.shown.contains(&c_says));
    // The creator can remove either; concurrent with a mutual kick it wins.
    let a_kicks = room.member(a, &[admins], b, Membership::Leave);
    let b_late = room.say(b, &[b_kicks, c_kicks], "still here?");
    let r = room.resolved();
    assert_eq!(r.state.membership(&b), Some(Membership::Leave));
    assert!(!r.shown.contains(&b_late) && !r.refused.contains(&a_kicks));
}

#[test]
fn members_without_power_cannot_change_roles() {
    let (a, b) = (account(1), account(2));
    let mut room = Room::default();
    let create = room.create(a);
    let b_in = room.join(a, create, b);
    let grab = room.power(b, &[b_in], &[(b, ADMIN)]);
    let r = room.resolved();
    assert!(r.refused.contains(&grab));
    assert_eq!(r.state.power_of(&b), 0);
    let err = r
        .state
        .authorize(
            b,
            &RoomContent::Power {
                users: BTreeMap::from([(b, ADMIN)]),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("need power 100"), "{err}");
}

/// One step of a random room's history.
#[derive(Debug, Clone)]
enum Step {
    Say(u8),
    Invite(u8, u8),
    Join(u8),
    Leave(u8),
    Kick(u8, u8),
    Ban(u8, u8),
    Promote(u8, u8, i64),
    History(u8, u8),
}

fn step() -> impl Strategy<Value = (Step, prop::sample::Index, prop::sample::Index)> {
    let who = 1u8..=5;
    let s = prop_oneof![
        4 => who.clone().prop_map(Step::Say),
        2 => (who.clone(), who.clone()).prop_map(|(a, b)| Step::Invite(a, b)),
        2 => who.clone().prop_map(Step::Join),
        1 => who.clone().prop_map(Step::Leave),
        1 => (who.clone(), who.clone()).prop_map(|(a, b)| Step::Kick(a, b)),
        1 => (who.clone(), who.clone()).prop_map(|(a, b)| Step::Ban(a, b)),
        1 => (who.clone(), who.clone(), prop_oneof![Just(0i64), Just(50), Just(100)])
            .prop_map(|(a, b, l)| Step::Promote(a, b, l)),
        1 => (who, 1u8..=4).prop_map(|(a, n)| Step::History(a, n)),
    ];
    (
        s,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
}

fn build(steps: &[(Step, prop::sample::Index, prop::sample::Index)]) -> Room {
    let mut room = Room::default();
    let create = room.create(account(1));
    let mut ids = vec![create];
    for (s, p1, p2) in steps {
        // One or two random earlier events as parents: branches and merges.
        let mut parents = vec![*p1.get(&ids)];
        let other = *p2.get(&ids);
        if other != parents[0] {
            parents.push(other);
        }
        let id = match *s {
            Step::Say(a) => room.say(account(a), &parents, "m"),
            Step::Invite(a, b) => room.member(account(a), &parents, account(b), Membership::Invite),
            Step::Join(a) => room.member(account(a), &parents, account(a), Membership::Join),
            Step::Leave(a) => room.member(account(a), &parents, account(a), Membership::Leave),
            Step::Kick(a, b) => room.member(account(a), &parents, account(b), Membership::Leave),
            Step::Ban(a, b) => room.member(account(a), &parents, account(b), Membership::Ban),
            Step::Promote(a, b, l) => room.power(account(a), &parents, &[(account(b), l)]),
            Step::History(a, n) => room.add(
                account(a),
                &parents,
                RoomContent::History(node_core::rooms::History {
                    confirmations: n,
                    trust: node_core::rooms::Trust::Members,
                }),
            ),
        };
        ids.push(id);
    }
    room
}

fn ancestors(room: &Room, id: EventId) -> HashSet<EventId> {
    let by_id: HashMap<EventId, &RoomEvent> = room.events.iter().map(|e| (e.id, e)).collect();
    let mut seen = HashSet::new();
    let mut stack = vec![id];
    while let Some(e) = stack.pop() {
        for p in &by_id[&e].parents {
            if seen.insert(*p) {
                stack.push(*p);
            }
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any delivery order gives the same state and the same shown messages
    /// in the same order; and no message is shown from an account after a
    /// kick or ban of it that the message's author had seen (an ancestor of
    /// the message), unless the account was let in again after it.
    #[test]
    fn any_order_same_room_and_removed_members_stay_out(
        steps in prop::collection::vec(step(), 1..60),
        seed in any::<u64>(),
    ) {
        let room = build(&steps);
        let expected = resolve(&room.events);
        let mut shuffled = room.events.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(&resolve(&shuffled), &expected);

        let refused: HashSet<EventId> = expected.refused.iter().copied().collect();
        // Removals by someone else (a member who leaves may come back).
        let applied_removals: Vec<&RoomEvent> = room.events.iter().filter(|e| {
            !refused.contains(&e.id)
                && matches!(e.content, RoomContent::Member { target, membership: Membership::Ban | Membership::Leave } if target != e.sender)
        }).collect();
        let applied_joins: Vec<&RoomEvent> = room.events.iter().filter(|e| {
            !refused.contains(&e.id)
                && matches!(e.content, RoomContent::Member { membership: Membership::Join, .. })
        }).collect();
        for m in room.events.iter().filter(|e| expected.shown.contains(&e.id)) {
            let before = ancestors(&room, m.id);
            for r in &applied_removals {
                let RoomContent::Member { target, .. } = r.content else { continue };
                if target != m.sender || !before.contains(&r.id) {
                    continue;
                }
                // Let in again by a join that is not from before the
                // removal (a later one, or a concurrent one that the
                // resolution took after it).
                let before_removal = ancestors(&room, r.id);
                let rejoined = applied_joins
                    .iter()
                    .any(|j| j.sender == m.sender && !before_removal.contains(&j.id));
                prop_assert!(rejoined, "message shown after its author's removal");
            }
        }
    }
}

mod dag {
    //! `RoomLog` as the rules of a real room DAG of signed events.

    use super::*;
    use node_core::DeviceId;
    use node_core::LogId;
    use node_core::crypto::SigningKey;
    use node_core::log::{Dag, DagConfig, Draft, Event, LogKind, Offer};
    use node_core::rooms::RoomLog;

    struct Author {
        key: SigningKey,
        account: AccountId,
        seq: u64,
        prev: Option<EventId>,
    }

    impl Author {
        fn new(n: u8) -> Self {
            Self {
                key: SigningKey::generate(),
                account: account(n),
                seq: 0,
                prev: None,
            }
        }

        /// Forgets the last event written (it was refused, so the next
        /// one must not name it as the author's previous).
        fn forget_last(&mut self, prev: Option<EventId>) {
            self.seq -= 1;
            self.prev = prev;
        }

        fn device(&self) -> DeviceId {
            DeviceId::from(self.key.verifying_key())
        }

        fn write(
            &mut self,
            room: Option<LogId>,
            parents: &[&Event],
            content: &RoomContent,
        ) -> Event {
            self.seq += 1;
            let event = Event::sign(
                &self.key,
                Draft {
                    log: room,
                    log_kind: LogKind::Room,
                    seq: self.seq,
                    prev: self.prev,
                    parents: parents.iter().map(|p| (p.id(), p.header().depth)).collect(),
                    time: 1_000 + self.seq as i64,
                    kind: content.kind(),
                    body: content.encode(),
                },
            );
            self.prev = Some(event.id());
            event
        }
    }

    struct Replica {
        dag: Dag,
        log: RoomLog,
    }

    impl Replica {
        fn new(room: LogId, authors: &[&Author]) -> Self {
            let mut log = RoomLog::new();
            for a in authors {
                log.set_device(a.device(), a.account);
            }
            Self {
                dag: Dag::new(room, LogKind::Room, DagConfig::default()),
                log,
            }
        }

        fn offer(&mut self, event: &Event) -> Result<Offer, String> {
            self.dag
                .offer(event.clone(), 0, &mut self.log)
                .map_err(|e| e.to_string())
        }

        fn store(&mut self, event: &Event) {
            let offer = self.offer(event).unwrap();
            assert!(matches!(offer, Offer::Stored(_)), "held: {offer:?}");
        }
    }

    #[test]
    fn a_room_dag_admits_only_what_its_state_allows_and_converges() {
        let (mut a, mut b, mut c) = (Author::new(1), Author::new(2), Author::new(3));
        let create = a.write(
            None,
            &[],
            &RoomContent::Create {
                name: "r".into(),
                public: false,
            },
        );
        let room = create.log_id();
        let mut one = Replica::new(room, &[&a, &b, &c]);
        let mut accepted = vec![create.clone()];
        one.offer(&create).unwrap();
        let invite = a.write(
            Some(room),
            &[&create],
            &RoomContent::Member {
                target: b.account,
                membership: Membership::Invite,
            },
        );
        let join = b.write(
            Some(room),
            &[&invite],
            &RoomContent::Member {
                target: b.account,
                membership: Membership::Join,
            },
        );
        let hello = b.write(Some(room), &[&join], &RoomContent::Message("hello".into()));
        for e in [&invite, &join, &hello] {
            one.store(e);
            accepted.push(e.clone());
        }
        // Refused at their parents: a member's power grab, a stranger's message.
        let grab = b.write(
            Some(room),
            &[&hello],
            &RoomContent::Power {
                users: BTreeMap::from([(b.account, ADMIN)]),
            },
        );
        let err = one.offer(&grab).unwrap_err();
        assert!(err.contains("need power 100"), "{err}");
        b.forget_last(Some(hello.id()));
        let stranger = c.write(Some(room), &[&hello], &RoomContent::Message("hi".into()));
        assert!(one.offer(&stranger).unwrap_err().contains("not a member"));
        // Concurrent branches: A renames and promotes B; B keeps talking.
        let rename = a.write(Some(room), &[&hello], &RoomContent::Name("renamed".into()));
        let promote = a.write(
            Some(room),
            &[&rename],
            &RoomContent::Power {
                users: BTreeMap::from([(b.account, MODERATOR_LEVEL)]),
            },
        );
        let b2 = b.write(
            Some(room),
            &[&hello],
            &RoomContent::Message("still here".into()),
        );
        let topic = b.write(
            Some(room),
            &[&promote, &b2],
            &RoomContent::Topic("b's topic".into()),
        );
        for e in [&rename, &promote, &b2, &topic] {
            one.store(e);
            accepted.push(e.clone());
        }
        let expected = one.log.resolved().clone();
        assert_eq!(expected.state.name, "renamed");
        assert_eq!(expected.state.topic, "b's topic");
        assert_eq!(expected.shown, vec![hello.id(), b2.id()]);
        // Incremental upkeep equals resolving from scratch.
        let scratch: Vec<RoomEvent> = accepted
            .iter()
            .map(|e| one.log.decode(e).unwrap())
            .collect();
        assert_eq!(resolve(&scratch), expected);

        // Other replicas, other delivery orders (held until parents come).
        for seed in 0..8u64 {
            let mut order = accepted.clone();
            let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
            for i in (1..order.len()).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                order.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let mut other = Replica::new(room, &[&a, &b, &c]);
            for e in &order {
                other.offer(e).unwrap();
            }
            assert_eq!(other.log.resolved(), &expected, "order {seed}");
        }
    }

    #[test]
    fn a_backdated_event_is_held_as_late_until_confirmed() {
        use node_core::rooms::LateRule;
        let (mut a, mut b, mut x) = (Author::new(1), Author::new(2), Author::new(9));
        let create = a.write(
            None,
            &[],
            &RoomContent::Create {
                name: "r".into(),
                public: true,
            },
        );
        let room = create.log_id();
        let mut one = Replica::new(room, &[&a, &b, &x]);
        one.log = RoomLog::with_rule(LateRule {
            depth_gap: 10,
            confirmations: 2,
            ..LateRule::default()
        });
        for author in [&a, &b, &x] {
            one.log.set_device(author.device(), author.account);
        }
        one.store(&create);
        let b_in = b.write(
            Some(room),
            &[&create],
            &RoomContent::Member {
                target: b.account,
                membership: Membership::Join,
            },
        );
        one.store(&b_in);
        let x_in = x.write(
            Some(room),
            &[&b_in],
            &RoomContent::Member {
                target: x.account,
                membership: Membership::Join,
            },
        );
        one.store(&x_in);
        let mut head = x_in.clone();
        let mut main = Vec::new();
        for i in 0..30 {
            head = b.write(
                Some(room),
                &[&head],
                &RoomContent::Message(format!("b {i}")),
            );
            one.store(&head);
            main.push(head.id());
        }
        // X crafts a message on an old parent, as if written long ago.
        let backdated = x.write(
            Some(room),
            &[&x_in],
            &RoomContent::Message("I said this first".into()),
        );
        one.store(&backdated);
        let late: Vec<EventId> = one.log.late().copied().collect();
        assert_eq!(late, vec![backdated.id()]);
        assert!(
            !one.log.resolved().shown.contains(&backdated.id()),
            "not shown in the past"
        );
        // Something at the heads is not late.
        head = b.write(
            Some(room),
            &[&head],
            &RoomContent::Message("b again".into()),
        );
        one.store(&head);
        assert_eq!(one.log.late().count(), 1);
        // One member citing it is not enough (two are needed)...
        let b_cites = b.write(
            Some(room),
            &[&head, &backdated],
            &RoomContent::Message("b saw it".into()),
        );
        one.store(&b_cites);
        assert_eq!(one.log.late().count(), 1);
        assert!(
            !one.log.resolved().shown.contains(&b_cites.id()),
            "built on a late event: held too"
        );
        // ... the creator's citation is.
        let a_cites = a.write(
            Some(room),
            &[&b_cites],
            &RoomContent::Message("confirmed".into()),
        );
        one.store(&a_cites);
        assert_eq!(one.log.late().count(), 0);
        let shown = &one.log.resolved().shown;
        let at = |id: EventId| shown.iter().position(|s| *s == id).unwrap();
        assert!(
            at(backdated.id()) < at(main[20]),
            "shown where it was placed, now confirmed"
        );
        assert!(at(a_cites.id()) == shown.len() - 1);
    }

    /// A room of the creator A, members B, C and X, with 30 messages by B
    /// after X joined; returns the replica, X's join and the head.
    fn busy_room(
        public: bool,
        a: &mut Author,
        b: &mut Author,
        c: &mut Author,
        x: &mut Author,
    ) -> (Replica, Event, Event) {
        use node_core::rooms::LateRule;
        let create = a.write(
            None,
            &[],
            &RoomContent::Create {
                name: "r".into(),
                public,
            },
        );
        let room = create.log_id();
        let mut one = Replica::new(room, &[&*a, &*b, &*c, &*x]);
        one.log = RoomLog::with_rule(LateRule {
            depth_gap: 10,
            ..LateRule::default()
        });
        for author in [&*a, &*b, &*c, &*x] {
            one.log.set_device(author.device(), author.account);
        }
        one.store(&create);
        let mut head = create;
        for m in [&mut *b, &mut *c, &mut *x] {
            let invite = a.write(
                Some(room),
                &[&head],
                &RoomContent::Member {
                    target: m.account,
                    membership: Membership::Invite,
                },
            );
            one.store(&invite);
            head = m.write(
                Some(room),
                &[&invite],
                &RoomContent::Member {
                    target: m.account,
                    membership: Membership::Join,
                },
            );
            one.store(&head);
        }
        let x_in = head.clone();
        for i in 0..30 {
            head = b.write(
                Some(room),
                &[&head],
                &RoomContent::Message(format!("b {i}")),
            );
            one.store(&head);
        }
        (one, x_in, head)
    }

    /// [`busy_room`] with its authors: A (creator), B, C and X.
    fn busy(public: bool) -> (Replica, Event, Event, [Author; 4]) {
        let mut authors = [
            Author::new(1),
            Author::new(2),
            Author::new(3),
            Author::new(9),
        ];
        let [a, b, c, x] = &mut authors;
        let (one, x_in, head) = busy_room(public, a, b, c, x);
        (one, x_in, head, authors)
    }

    /// B cites `late` beside `head`, then C cites B's event: two members'
    /// citations. Returns C's event.
    fn two_members_cite(
        one: &mut Replica,
        b: &mut Author,
        c: &mut Author,
        head: &Event,
        late: &Event,
    ) -> Event {
        let room = head.log_id();
        let b_cites = b.write(
            Some(room),
            &[head, late],
            &RoomContent::Message("b saw it".into()),
        );
        one.store(&b_cites);
        let c_cites = c.write(
            Some(room),
            &[&b_cites],
            &RoomContent::Message("c too".into()),
        );
        one.store(&c_cites);
        c_cites
    }

    #[test]
    fn a_private_room_releases_a_late_event_cited_by_two_members() {
        let (mut one, x_in, head, [_, mut b, mut c, mut x]) = busy(false);
        let room = head.log_id();
        let backdated = x.write(Some(room), &[&x_in], &RoomContent::Message("old".into()));
        one.store(&backdated);
        assert_eq!(one.log.late().count(), 1);
        let b_cites = b.write(
            Some(room),
            &[&head, &backdated],
            &RoomContent::Message("b saw it".into()),
        );
        one.store(&b_cites);
        assert_eq!(one.log.late().count(), 1, "one member is not enough");
        let c_cites = c.write(
            Some(room),
            &[&b_cites],
            &RoomContent::Message("c too".into()),
        );
        one.store(&c_cites);
        assert_eq!(one.log.late().count(), 0, "two members release it");
        assert!(one.log.resolved().shown.contains(&backdated.id()));
    }

    #[test]
    fn a_public_room_trusts_only_staff_with_old_history() {
        let (mut one, x_in, head, [mut a, mut b, mut c, mut x]) = busy(true);
        let room = head.log_id();
        assert!(one.log.admin_trusted());
        let backdated = x.write(Some(room), &[&x_in], &RoomContent::Message("old".into()));
        one.store(&backdated);
        let c_cites = two_members_cite(&mut one, &mut b, &mut c, &head, &backdated);
        assert_eq!(
            one.log.late().count(),
            1,
            "members' citations do not release old history in a public room"
        );
        // Old history from the creator is accepted at once.
        let from_admin = a.write(Some(room), &[&x_in], &RoomContent::Message("admin".into()));
        one.store(&from_admin);
        assert!(!one.log.late().any(|l| *l == from_admin.id()));
        // And the creator's citation releases X's event.
        let a_cites = a.write(
            Some(room),
            &[&c_cites, &from_admin],
            &RoomContent::Message("confirmed".into()),
        );
        one.store(&a_cites);
        assert_eq!(one.log.late().count(), 0);
        assert!(one.log.resolved().shown.contains(&backdated.id()));
    }

    #[test]
    fn the_rooms_history_setting_and_a_moderators_confirmation_release_late_events() {
        use node_core::rooms::{History, Trust};
        let (mut one, x_in, head, [mut a, mut b, mut c, mut x]) = busy(false);
        let room = head.log_id();
        // Only admins change it.
        let one_is_enough = RoomContent::History(History {
            confirmations: 1,
            trust: Trust::Members,
        });
        let prev = b.prev;
        let by_member = b.write(Some(room), &[&head], &one_is_enough);
        assert!(
            one.offer(&by_member).is_err(),
            "a member set the history rule"
        );
        b.forget_last(prev);
        let setting = a.write(Some(room), &[&head], &one_is_enough);
        one.store(&setting);
        assert_eq!(one.log.confirmations(), 1);
        // One member's citation now releases a late event.
        let backdated = x.write(Some(room), &[&x_in], &RoomContent::Message("old".into()));
        one.store(&backdated);
        assert!(one.log.is_late(&backdated.id()));
        let b_cites = b.write(
            Some(room),
            &[&setting, &backdated],
            &RoomContent::Message("b saw it".into()),
        );
        one.store(&b_cites);
        assert_eq!(one.log.late().count(), 0);

        // Admin-trusted by setting, in a small private room.
        let admins_only = a.write(
            Some(room),
            &[&b_cites],
            &RoomContent::History(History {
                confirmations: 1,
                trust: Trust::Admins,
            }),
        );
        one.store(&admins_only);
        assert!(one.log.admin_trusted());
        let mut head = admins_only;
        for i in 0..12 {
            head = b.write(
                Some(room),
                &[&head],
                &RoomContent::Message(format!("more {i}")),
            );
            one.store(&head);
        }
        let again = x.write(
            Some(room),
            &[&b_cites],
            &RoomContent::Message("old 2".into()),
        );
        one.store(&again);
        let c_cites = two_members_cite(&mut one, &mut b, &mut c, &head, &again);
        assert!(one.log.is_late(&again.id()), "members released it");

        // A member cannot confirm; a confirmation must cite its event.
        let prev = c.prev;
        let by_member = c.write(
            Some(room),
            &[&c_cites, &again],
            &RoomContent::Confirm(again.id()),
        );
        assert!(one.offer(&by_member).is_err(), "a member confirmed");
        c.forget_last(prev);
        let prev = a.prev;
        let uncited = a.write(Some(room), &[&c_cites], &RoomContent::Confirm(again.id()));
        assert!(
            one.offer(&uncited).is_err(),
            "a confirmation without citing"
        );
        a.forget_last(prev);
        // The parents a device gives a confirmation cite the late event.
        let parents = one.log.parents_for(
            &one.dag,
            node_core::rooms::kind::CONFIRM,
            &RoomContent::Confirm(again.id()).encode(),
        );
        assert!(parents.iter().any(|(id, _)| *id == again.id()));
        let confirm = a.write(
            Some(room),
            &[&c_cites, &again],
            &RoomContent::Confirm(again.id()),
        );
        one.store(&confirm);
        assert_eq!(one.log.late().count(), 0);
        let shown = &one.log.resolved().shown;
        assert!(shown.contains(&again.id()));
        assert!(
            !shown.contains(&confirm.id()),
            "a confirmation is not shown"
        );
    }

    const MODERATOR_LEVEL: i64 = node_core::rooms::MODERATOR;
}
