//! The name API against the real `kith-named` binary on port 0: every
//! refusal the issue names (a binding signed by another account, a replayed
//! registration, a name taken by someone else, an unknown name), look-alike
//! names, stale records, the wrong domain, and release. The same suite runs
//! on SQLite and, when `KITH_TEST_POSTGRES` names a database (`.ci/run`
//! starts one), on PostgreSQL with two instances sharing it.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use data_encoding::BASE64;
use node_core::names::{Handle, NameAction, NameRecord};
use serde_json::Value;
use service_kit::testing::{HttpResponse, RunningServer};

mod common;
use common::{Account, now};

const BIN: &str = env!("CARGO_BIN_EXE_kith-named");
const DOMAIN: &str = "names.test";

fn start(database: Option<&str>, rate: [&str; 2]) -> RunningServer {
    let mut command = Command::new(BIN);
    for var in [
        "LISTEN",
        "DOMAIN",
        "DATA",
        "DATABASE",
        "CONFIG",
        "READY_FILE",
        "RATE_LIMIT",
        "RATE_BURST",
    ] {
        command.env_remove(format!("KITH_NAMED_{var}"));
    }
    let data = tempfile::tempdir().unwrap().keep();
    command
        .args(["--listen", "127.0.0.1:0", "--domain", DOMAIN, "--data"])
        .arg(&data)
        .args(["--rate-limit", rate[0], "--rate-burst", rate[1]]);
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    RunningServer::start(&mut command)
}

fn postgres() -> Option<String> {
    match std::env::var("KITH_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(format!("{url}_named")),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set KITH_TEST_POSTGRES (see .ci/run)"
            );
            eprintln!("KITH_TEST_POSTGRES is not set: skipping the PostgreSQL run");
            None
        }
    }
}

fn submit(server: &RunningServer, record: &[u8]) -> HttpResponse {
    let body = serde_json::json!({ "record": BASE64.encode(record) }).to_string();
    server.request(
        "POST",
        "/v1/names",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
}

fn lookup(server: &RunningServer, handle: &str) -> HttpResponse {
    server.get(&format!("/v1/names/{handle}"))
}

fn json(response: &HttpResponse) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", response.body))
}

#[track_caller]
fn refused(response: &HttpResponse, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    let error = json(response)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(needle),
        "{error:?} does not mention {needle:?}"
    );
}

/// The whole suite; `a` and `b` may be two instances sharing one database.
fn suite(a: &RunningServer, b: &RunningServer) {
    let alice = Account::new("alice");
    let mallory = Account::new("mallory");
    // Unique per run: a PostgreSQL database outlives the test.
    let run = now() % 1_000_000_000;
    let handle = format!("alice{run}@{DOMAIN}");

    // Unknown names and malformed handles.
    refused(&lookup(a, &handle), 404, "no such name");
    refused(&lookup(a, "not-a-handle"), 400, "bad handle");

    // Alice binds her name; both instances answer with her signed record.
    let first = alice.bind(&format!("Alice{run}@{DOMAIN}"), now());
    let ok = submit(a, &first);
    assert_eq!(ok.status, 200, "{}", ok.body);
    for server in [a, b] {
        let found = json(&lookup(server, &handle));
        assert_eq!(found["account"], alice.id.to_string());
        let record = BASE64
            .decode(found["record"].as_str().unwrap().as_bytes())
            .unwrap();
        let record = NameRecord::verify(&record, &[]).unwrap();
        assert_eq!(record.account, alice.id);
    }

    // The same record again (a replay), on either instance.
    refused(&submit(b, &first), 409, "replayed");
    // An old record, even one never seen.
    refused(
        &submit(a, &alice.bind(&handle, now() - 3_600_000)),
        400,
        "fresh",
    );
    // A binding signed by another account's device for Alice's account.
    let handle_ = handle.parse::<Handle>().unwrap();
    let forged = NameRecord::sign(
        &mallory.key,
        &handle_,
        alice.id,
        &NameAction::Bind { card: alice.card() },
        now(),
        &alice.log,
    );
    refused(&submit(a, &forged), 403, "not an active device");
    // Mallory's own binding of a name Alice holds.
    refused(&submit(b, &mallory.bind(&handle, now())), 409, "taken");
    // ... or of a name that looks like it (Cyrillic а, і, с, е; palochka for l).
    refused(
        &submit(
            a,
            &mallory.bind(
                &format!("\u{430}\u{4cf}\u{456}\u{441}\u{435}{run}@{DOMAIN}"),
                now(),
            ),
        ),
        409,
        "looks like",
    );
    // A name under another domain.
    refused(
        &submit(a, &mallory.bind("mallory@elsewhere.test", now())),
        400,
        "answers for",
    );
    // Garbage.
    refused(&submit(a, b"not a record"), 400, "malformed");
    let not_b64 = a.request(
        "POST",
        "/v1/names",
        &[("content-type", "application/json")],
        br#"{"record":"%%%"}"#,
    );
    refused(&not_b64, 400, "base64");
    // Still Alice's.
    assert_eq!(json(&lookup(b, &handle))["account"], alice.id.to_string());

    // Alice updates (newer record), then releases; Mallory cannot release it.
    let update = alice.bind(&handle, now() + 1);
    assert_eq!(submit(b, &update).status, 200);
    refused(
        &submit(a, &mallory.release(&handle, now() + 2)),
        409,
        "taken",
    );
    assert_eq!(submit(a, &alice.release(&handle, now() + 3)).status, 200);
    refused(&lookup(b, &handle), 404, "no such name");
    refused(
        &submit(a, &alice.release(&handle, now() + 4)),
        404,
        "not registered",
    );
    // The old binding cannot be replayed over the release.
    refused(&submit(a, &update), 409, "replayed");
    // Now free: Mallory may take it.
    assert_eq!(submit(b, &mallory.bind(&handle, now() + 5)).status, 200);
    assert_eq!(json(&lookup(a, &handle))["account"], mallory.id.to_string());

    let metrics = a.get("/metrics").body;
    assert!(
        metrics.contains("kith_named_records_total{outcome=\"conflict\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kith_named_lookups_total{outcome=\"found\"}"),
        "{metrics}"
    );
}

#[test]
fn api_on_sqlite() {
    let server = start(None, ["1000", "1000"]);
    suite(&server, &server);
}

#[test]
fn api_on_postgres_with_two_instances() {
    let Some(url) = postgres() else { return };
    let a = start(Some(&url), ["1000", "1000"]);
    let b = start(Some(&url), ["1000", "1000"]);
    suite(&a, &b);
}

#[test]
fn rate_limit_answers_429_after_the_burst() {
    let server = start(None, ["1", "3"]);
    let statuses: Vec<u16> = (0..5)
        .map(|_| lookup(&server, &format!("x@{DOMAIN}")).status)
        .collect();
    assert_eq!(statuses, [404, 404, 404, 429, 429]);
}
