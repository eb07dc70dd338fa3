//! The crash suite's short round (the long soak is the `crash-soak`
//! binary): daemons of two accounts with two devices each are killed with
//! SIGKILL at seeded moments while they exchange messages; every message
//! `kith send` returned for arrives once on every device, in one order.

use kith_tests::crash::{Plan, run};

#[test]
fn messages_survive_kill_9_of_sender_receiver_or_both() {
    let report = run(Plan {
        rounds: 1,
        messages: 400,
        seed: 7,
        kill_every_ms: 700,
    });
    println!("{}", report.line());
    assert!(report.messages > 0, "{}", report.line());
    assert!(report.kills > 0, "{}", report.line());
    assert_eq!(
        (report.lost, report.duplicated, report.order_mismatches),
        (0, 0, 0),
        "{}",
        report.line()
    );
}
