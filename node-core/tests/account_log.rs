//! The account log's rules: both signatures to add, cut-offs, seniority,
//! the recovery key, order independence.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use node_core::LogId;
use node_core::crypto::SigningKey;
use node_core::identity::AccountEntry;
use node_core::identity::Members;
use node_core::log::{Dag, DagConfig, LogKind, Rejection, Rules};
use proptest::prelude::*;

#[test]
fn genesis_gives_one_active_device() {
    let mut d1 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let mut r = Replica::new(account);
    r.offer(&g).unwrap();
    let state = r.log.state().unwrap();
    assert_eq!(state.account, account);
    assert!(state.is_active(&d1.id()));
    assert_eq!(state.devices.len(), 1);
}

#[test]
fn device_added_with_both_signatures_is_active() {
    let mut d1 = Dev::new();
    let d2 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let add = add_device(&mut d1, account, &[&g], &d2);
    let mut r = Replica::new(account);
    r.offer_all(&[&g, &add]);
    assert!(r.log.state().unwrap().is_active(&d2.id()));
}

#[test]
fn device_added_with_only_one_signature_is_rejected() {
    let mut d1 = Dev::new();
    let d2 = Dev::new();
    let imposter = SigningKey::generate();
    let (account, g) = genesis(&mut d1, None);
    // The join signature is made by another key than the device added.
    let entry = AccountEntry::AddDevice {
        device: d2.id(),
        name: "phone".into(),
        join: node_core::identity::sign_join(&imposter, account, "phone"),
    };
    let add = d1.entry(account, &[&g], &entry);
    let mut r = Replica::new(account);
    r.offer(&g).unwrap();
    let err = r.offer(&add).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unauthorized { why, .. } if why.contains("join signature")),
        "{err}"
    );
    // A new device signing its own addition, without an active device.
    let mut d3 = Dev::new();
    let self_add = add_device(&mut d3, account, &[&g], &Dev::new());
    let err = r.offer(&self_add).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unauthorized { why, .. } if why.contains("not a device")),
        "{err}"
    );
    assert!(!r.log.state().unwrap().devices.contains_key(&d2.id()));
    assert_eq!(r.dag.len(), 1, "rejected entries leave the log unchanged");
}

#[test]
fn revoked_device_is_cut_off_everywhere() {
    let mut d1 = Dev::new();
    let mut d2 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let add = add_device(&mut d1, account, &[&g], &d2);
    // d2 writes in the self log: seq 1 (before the cut-off).
    let self_log = LogId::self_log(account);
    let before = d2.event(
        Some(self_log),
        LogKind::SelfLog,
        &[],
        1,
        b"ok".to_vec(),
        2000,
    );
    let rev = revoke(&mut d1, account, &[&add], &d2, d2.seq);
    let after = d2.event(
        Some(self_log),
        LogKind::SelfLog,
        &[&before],
        1,
        b"stolen".to_vec(),
        3000,
    );
    // In the account log, d2 can no longer act.
    let late_add = add_device(&mut d2, account, &[&rev], &Dev::new());

    let mut r = Replica::new(account);
    r.offer_all(&[&g, &add, &rev]);
    let state = r.log.state().unwrap();
    assert!(!state.is_active(&d2.id()));
    let err = r.offer(&late_add).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unauthorized { why, .. } if why.contains("revoked")),
        "{err}"
    );

    let mut members = Members::new(vec![state]);
    let mut dag = Dag::new(self_log, LogKind::SelfLog, DagConfig::default());
    dag.offer(before, 2000, &mut members).unwrap();
    let err = dag.offer(after, 3000, &mut members).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unauthorized { why, .. } if why.contains("revoked")),
        "{err}"
    );
    let _ = members.authorize(&g, &dag);
}

/// Two devices revoke each other concurrently: the senior one wins, in any
/// arrival order.
#[test]
fn mutual_concurrent_revocation_resolves_by_seniority() {
    let mut d1 = Dev::new();
    let mut d2 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let add = add_device(&mut d1, account, &[&g], &d2);
    let r1 = revoke(&mut d1, account, &[&add], &d2, 0);
    let r2 = revoke(&mut d2, account, &[&add], &d1, 1);
    for order in [
        [&g, &add, &r1, &r2],
        [&g, &add, &r2, &r1],
        [&r2, &r1, &add, &g],
    ] {
        let mut r = Replica::new(account);
        r.offer_all(&order);
        let s = r.log.state().unwrap();
        assert!(s.is_active(&d1.id()), "senior device survives");
        assert!(!s.is_active(&d2.id()), "junior device is revoked");
        assert!(s.discarded.contains(&r2.id()));
    }
}

#[test]
fn the_recovery_key_wins() {
    let mut d1 = Dev::new();
    let d2 = Dev::new();
    let mut rec = Dev::new();
    let (account, g) = genesis(&mut d1, Some(&rec));
    let add = add_device(&mut d1, account, &[&g], &d2);
    // The thief on d1 revokes d2 while the owner, with the recovery key,
    // revokes d1 concurrently.
    let mut thief = Dev {
        key: SigningKey::from_seed(&d1.key.seed()),
        seq: d1.seq,
        last: d1.last.clone(),
    };
    let by_thief = revoke(&mut thief, account, &[&add], &d2, 0);
    let by_recovery = revoke(&mut rec, account, &[&add], &d1, d1.seq);
    for order in [
        [&g, &add, &by_thief, &by_recovery],
        [&g, &add, &by_recovery, &by_thief],
    ] {
        let mut r = Replica::new(account);
        r.offer_all(&order);
        let s = r.log.state().unwrap();
        assert!(!s.is_active(&d1.id()));
        assert!(s.is_active(&d2.id()), "the thief's revocation is discarded");
    }
}

#[test]
fn what_a_device_signs_concurrently_with_its_revocation_is_discarded() {
    let mut d1 = Dev::new();
    let mut d2 = Dev::new();
    let d3 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let add2 = add_device(&mut d1, account, &[&g], &d2);
    let rev2 = revoke(&mut d1, account, &[&add2], &d2, 1);
    let add3 = add_device(&mut d2, account, &[&add2], &d3);
    let mut r = Replica::new(account);
    r.offer_all(&[&g, &add2, &add3, &rev2]);
    let s = r.log.state().unwrap();
    assert!(!s.devices.contains_key(&d3.id()));
    assert!(s.discarded.contains(&add3.id()));
}

/// The senior device A revokes a stolen device C while, concurrently, a
/// second stolen device B revokes A and C revokes B. Resolution used to
/// cycle (each round's exclusions undid the last round's) and stop at
/// whatever round its bound fell on; now a revocation taken before its
/// author's own revocation stands, so it settles: A's revocation of C and
/// B's of A both count (only the recovery key undoes a thief's revocation
/// of a senior device), in every arrival order.
#[test]
fn three_way_revocations_settle() {
    let mut a = Dev::new();
    let mut c = Dev::new();
    let mut b = Dev::new();
    let (account, g) = genesis(&mut a, None);
    let add_c = add_device(&mut a, account, &[&g], &c);
    let add_b = add_device(&mut a, account, &[&add_c], &b);
    let r = revoke(&mut a, account, &[&add_b], &c, 0);
    let r_a = revoke(&mut b, account, &[&add_b], &a, 0);
    let s = revoke(&mut c, account, &[&add_b], &b, 0);
    for order in [
        [&g, &add_c, &add_b, &r, &r_a, &s],
        [&g, &add_c, &add_b, &s, &r_a, &r],
        [&s, &r_a, &r, &add_b, &add_c, &g],
    ] {
        let mut replica = Replica::new(account);
        replica.offer_all(&order);
        assert!(replica.log.settles(), "resolution does not settle");
        let state = replica.log.state().unwrap();
        assert!(!state.is_active(&c.id()));
        assert!(!state.is_active(&a.id()));
        assert!(state.is_active(&b.id()));
        assert!(state.discarded.contains(&s.id()));
    }
}

#[test]
fn a_second_genesis_is_rejected() {
    let mut d1 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let entry = AccountEntry::Genesis {
        account_name: "x".into(),
        device_name: "y".into(),
        recovery: None,
    };
    let again = d1.entry(account, &[&g], &entry);
    let mut r = Replica::new(account);
    r.offer(&g).unwrap();
    assert!(matches!(
        r.offer(&again),
        Err(Rejection::Unauthorized { .. })
    ));
}

/// A scenario with several devices, additions and conflicting revocations.
fn scenario() -> (node_core::AccountId, Vec<node_core::log::Event>) {
    let (mut d0, mut d1, mut d2, d3) = (Dev::new(), Dev::new(), Dev::new(), Dev::new());
    let mut rec = Dev::new();
    let (account, g) = genesis(&mut d0, Some(&rec));
    let a1 = add_device(&mut d0, account, &[&g], &d1);
    let a2 = add_device(&mut d1, account, &[&a1], &d2);
    let a3 = add_device(&mut d0, account, &[&a1], &d3);
    let r1 = revoke(&mut d0, account, &[&a2, &a3], &d2, 0);
    let r2 = revoke(&mut d2, account, &[&a2, &a3], &d0, 0);
    let r3 = revoke(&mut d1, account, &[&a2], &d3, 0);
    let r4 = revoke(&mut rec, account, &[&a3], &d1, 0);
    (account, vec![g, a1, a2, a3, r1, r2, r3, r4])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any arrival order of the same entries gives the same account state.
    #[test]
    fn any_order_gives_the_same_state(seed in any::<u64>()) {
        let (account, events) = scenario();
        let mut reference = Replica::new(account);
        reference.offer_all(&events.iter().collect::<Vec<_>>());
        let want = reference.log.state().unwrap();
        let mut shuffled: Vec<_> = events.iter().collect();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut r = Replica::new(account);
        r.offer_all(&shuffled);
        prop_assert_eq!(r.log.state().unwrap(), want);
    }
}

/// A device cannot revoke itself: the key may be a thief's, and a
/// revocation of its own making would pick its own cut-off before the
/// owner's came (found by an attacker's reading of the cuts change).
#[test]
fn a_device_cannot_revoke_itself() {
    let mut d1 = Dev::new();
    let mut d2 = Dev::new();
    let (account, g) = genesis(&mut d1, None);
    let add = add_device(&mut d1, account, &[&g], &d2);
    let own = node_core::identity::AccountEntry::RevokeDevice {
        device: d2.id(),
        cutoff_seq: u64::MAX,
        cuts: true,
    };
    let selfish = d2.entry(account, &[&add], &own);
    let mut r = Replica::new(account);
    r.offer_all(&[&g, &add]);
    let err = r.offer(&selfish).unwrap_err();
    assert!(
        matches!(&err, Rejection::Unauthorized { why, .. } if why.contains("cannot revoke itself")),
        "{err}"
    );
    assert!(r.log.state().unwrap().is_active(&d2.id()));
}
