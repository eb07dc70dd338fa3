//! The long crash soak: `cargo build --release -p kith && cargo run
//! --release -p kith-tests --bin crash-soak -- --rounds 100 --messages
//! 10000 [--seed N] [--kill-every-ms MS]`. Prints one line per round and
//! the totals (rounds, messages, lost, duplicated, order mismatches);
//! exits non-zero if anything was lost, duplicated or reordered.

use kith_tests::crash::{Plan, run};

fn main() {
    let mut plan = Plan {
        rounds: 100,
        messages: 10_000,
        seed: 1,
        kill_every_ms: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let parsed = value.parse::<u64>();
        let Ok(n) = parsed else {
            eprintln!(
                "usage: crash-soak [--rounds N] [--messages N] [--seed N] [--kill-every-ms MS]"
            );
            std::process::exit(2);
        };
        match flag.as_str() {
            "--rounds" => plan.rounds = u32::try_from(n).unwrap_or(u32::MAX),
            "--messages" => plan.messages = u32::try_from(n).unwrap_or(u32::MAX),
            "--seed" => plan.seed = n,
            "--kill-every-ms" => plan.kill_every_ms = n,
            _ => {
                eprintln!("unknown flag {flag}");
                std::process::exit(2);
            }
        }
    }
    let report = run(plan);
    println!("{}", report.line());
    if report.lost + report.duplicated + report.order_mismatches > 0 {
        std::process::exit(1);
    }
}
