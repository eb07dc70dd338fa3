//! The mailbox API against the real `kith-mailboxd` binary on port 0: every
//! refusal with its status, and the store unchanged after each. The same
//! suite runs on SQLite and, when `KITH_TEST_POSTGRES` names a database
//! (`.ci/run` starts one), on PostgreSQL, including two instances sharing it.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use node_core::crypto::{BoxSecretKey, SigningKey};
use node_core::mailbox::{self, DeliveryToken, MailboxKey, SignedPrekey};
use node_core::wire;
use serde_json::Value;
use service_kit::testing::{HttpResponse, RunningServer};

const NO_LIMIT: [&str; 2] = ["1000", "1000"];
const BIN: &str = env!("CARGO_BIN_EXE_kith-mailboxd");

/// The server with tight limits, so quotas are quick to reach; `rate` is
/// the rate limit and burst.
fn start(database: Option<&str>, rate: [&str; 2]) -> RunningServer {
    let mut command = Command::new(BIN);
    for var in [
        "LISTEN",
        "DATA",
        "DATABASE",
        "CONFIG",
        "READY_FILE",
        "RETENTION",
        "RATE_LIMIT",
        "RATE_BURST",
    ] {
        command.env_remove(format!("KITH_MAILBOXD_{var}"));
    }
    let data = tempfile::tempdir().unwrap().keep();
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .args([
            "--max-deposit-size",
            "2048",
            "--sender-max-deposits",
            "3",
            "--mailbox-max-deposits",
            "5",
            "--rate-limit",
            rate[0],
            "--rate-burst",
            rate[1],
        ]);
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    RunningServer::start(&mut command)
}

fn postgres() -> Option<String> {
    match std::env::var("KITH_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
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

fn json(response: &HttpResponse) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", response.body))
}

/// One mailbox and its owner's key, on one or more server instances.
struct Owner {
    key: MailboxKey,
}

impl Owner {
    fn new() -> Self {
        Self {
            key: MailboxKey::generate(),
        }
    }

    fn base(&self) -> String {
        format!("/v1/mailboxes/{}", self.key.id())
    }

    fn challenge(&self, server: &RunningServer) -> [u8; 32] {
        let answer = server.request("POST", &format!("{}/challenge", self.base()), &[], &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let text = json(&answer)["challenge"].as_str().unwrap().to_owned();
        wire::from_base32(&text, "challenge")
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// A signed request: the Authorization header it carries.
    fn sign(&self, server: &RunningServer, method: &str, path: &str, body: &[u8]) -> String {
        mailbox::sign_request(&self.key, &self.challenge(server), method, path, body)
    }

    fn call(&self, server: &RunningServer, method: &str, rest: &str, body: &[u8]) -> HttpResponse {
        let path = format!("{}{rest}", self.base());
        let auth = self.sign(server, method, &path, body);
        server.request(method, &path, &[("authorization", &auth)], body)
    }

    fn register(&self, server: &RunningServer) -> HttpResponse {
        self.call(server, "PUT", "", &[])
    }

    fn add_tokens(&self, server: &RunningServer, tokens: &[&DeliveryToken]) -> HttpResponse {
        let add: Vec<String> = tokens.iter().map(|t| t.hash().to_string()).collect();
        let body = serde_json::json!({ "add": add }).to_string();
        self.call(server, "POST", "/tokens", body.as_bytes())
    }

    fn fetch(&self, server: &RunningServer) -> Vec<(String, Vec<u8>)> {
        let answer = self.call(server, "GET", "/deposits", &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        json(&answer)["deposits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let body = d["body"].as_str().unwrap();
                (
                    d["id"].as_str().unwrap().to_owned(),
                    data_encoding::BASE64.decode(body.as_bytes()).unwrap(),
                )
            })
            .collect()
    }

    fn delete(&self, server: &RunningServer, ids: &[String]) -> u64 {
        let body = serde_json::json!({ "ids": ids }).to_string();
        let answer = self.call(server, "POST", "/deposits/delete", body.as_bytes());
        assert_eq!(answer.status, 200, "{}", answer.body);
        json(&answer)["deleted"].as_u64().unwrap()
    }

    fn deposit(
        &self,
        server: &RunningServer,
        token: &DeliveryToken,
        body: &[u8],
        ttl: Option<&str>,
    ) -> HttpResponse {
        let bearer = token.bearer();
        let mut headers = vec![("authorization", bearer.as_str())];
        if let Some(ttl) = ttl {
            headers.push(("kith-ttl", ttl));
        }
        server.request("POST", &format!("{}/deposits", self.base()), &headers, body)
    }
}

fn error_of(response: &HttpResponse) -> String {
    json(response)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every API rule, on `server` (and, for shared-database runs, with every
/// other request sent to `other`).
fn api_suite(server: &RunningServer, other: &RunningServer) {
    let owner = Owner::new();
    let alice = DeliveryToken::generate();
    let bob = DeliveryToken::generate();

    // Before registering: nothing can be done to the mailbox.
    assert_eq!(owner.call(server, "GET", "/deposits", &[]).status, 404);
    assert_eq!(owner.register(server).status, 201);
    assert_eq!(owner.register(other).status, 200, "already exists");
    assert_eq!(owner.add_tokens(other, &[&alice, &bob]).status, 200);

    // A deposit with a token the owner issued is kept.
    let first = owner.deposit(server, &alice, b"sealed one", None);
    assert_eq!(first.status, 201, "{}", first.body);
    let receipt = json(&first);
    assert!(receipt["expires_ms"].as_i64().unwrap() > 0);

    // Refusals, each leaving the store as it was.
    let stranger = DeliveryToken::generate();
    let wrong = owner.deposit(server, &stranger, b"x", None);
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(
        error_of(&wrong).contains("delivery token"),
        "{}",
        wrong.body
    );
    let path = format!("{}/deposits", owner.base());
    let none = server.request("POST", &path, &[], b"x");
    assert_eq!(none.status, 401, "{}", none.body);
    let junk = server.request("POST", &path, &[("authorization", "Bearer nope")], b"x");
    assert_eq!(junk.status, 401, "{}", junk.body);
    let big = owner.deposit(server, &alice, &[7u8; 4096], None);
    assert_eq!(big.status, 413, "{}", big.body);
    assert!(error_of(&big).contains("2048"), "{}", big.body);

    // Fetching needs the mailbox key: another key's signature is refused,
    // and so is a replayed (used) challenge.
    let thief = MailboxKey::generate();
    let challenge = owner.challenge(server);
    let forged = mailbox::sign_request(&thief, &challenge, "GET", &path, &[]);
    let answer = server.request("GET", &path, &[("authorization", &forged)], &[]);
    assert_eq!(answer.status, 401, "{}", answer.body);
    let unsigned = server.request("GET", &path, &[], &[]);
    assert_eq!(unsigned.status, 401);
    let auth = owner.sign(server, "GET", &path, &[]);
    assert_eq!(
        server
            .request("GET", &path, &[("authorization", &auth)], &[])
            .status,
        200
    );
    let replayed = other.request("GET", &path, &[("authorization", &auth)], &[]);
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    assert!(
        error_of(&replayed).contains("challenge"),
        "{}",
        replayed.body
    );
    // A signature over a different path does not carry over.
    let auth = owner.sign(server, "GET", &format!("{}/prekeys", owner.base()), &[]);
    assert_eq!(
        server
            .request("GET", &path, &[("authorization", &auth)], &[])
            .status,
        401
    );

    let held = owner.fetch(other);
    assert_eq!(held.len(), 1, "only the accepted deposit is stored");
    assert_eq!(held[0].1, b"sealed one");

    // Quotas: three per sender, five per mailbox.
    for i in 0..2 {
        assert_eq!(owner.deposit(server, &alice, &[i; 100], None).status, 201);
    }
    let over = owner.deposit(other, &alice, b"fourth", None);
    assert_eq!(over.status, 429, "{}", over.body);
    assert!(error_of(&over).contains("sender quota"), "{}", over.body);
    for i in 0..2 {
        assert_eq!(owner.deposit(server, &bob, &[i; 100], None).status, 201);
    }
    let full = owner.deposit(server, &bob, b"sixth", None);
    assert_eq!(full.status, 429, "{}", full.body);
    assert!(error_of(&full).contains("mailbox quota"), "{}", full.body);
    assert_eq!(owner.fetch(server).len(), 5);

    // Collecting frees the quota.
    let ids: Vec<String> = owner.fetch(server).into_iter().map(|(id, _)| id).collect();
    assert_eq!(owner.delete(other, &ids), 5);
    assert_eq!(owner.delete(server, &ids), 0, "already gone");
    assert!(owner.fetch(server).is_empty());
    assert_eq!(owner.deposit(server, &alice, b"again", None).status, 201);

    // An expired deposit is never handed out, and cannot be deleted.
    let short = owner.deposit(server, &bob, b"short-lived", Some("1"));
    assert_eq!(short.status, 201, "{}", short.body);
    let short_id = json(&short)["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1200));
    let held = owner.fetch(server);
    assert_eq!(held.len(), 1, "the expired deposit is gone");
    assert_eq!(held[0].1, b"again");
    assert_eq!(owner.delete(server, &[short_id]), 0);
    let bad_ttl = owner.deposit(server, &bob, b"x", Some("soon"));
    assert_eq!(bad_ttl.status, 400);

    // Prekeys: published by the key holder, read by token holders only.
    let device = SigningKey::generate();
    let prekey = SignedPrekey::sign(&device, BoxSecretKey::generate().public_key(), 1);
    let bundle = prekey.encode();
    assert_eq!(
        owner.call(other, "PUT", "/prekeys/dev-1", &bundle).status,
        204
    );
    let prekeys_path = format!("{}/prekeys", owner.base());
    let bearer = alice.bearer();
    let got = server.request("GET", &prekeys_path, &[("authorization", &bearer)], &[]);
    assert_eq!(got.status, 200, "{}", got.body);
    let first = json(&got)["prekeys"][0].as_str().unwrap().to_owned();
    assert_eq!(
        data_encoding::BASE64.decode(first.as_bytes()).unwrap(),
        bundle
    );
    let bearer = stranger.bearer();
    let refused = server.request("GET", &prekeys_path, &[("authorization", &bearer)], &[]);
    assert_eq!(refused.status, 403);
    assert_eq!(
        owner
            .call(server, "PUT", "/prekeys/no%20way", &bundle)
            .status,
        400
    );

    // Paging: the cursor of one page starts the next.
    for i in 0..2 {
        assert_eq!(owner.deposit(server, &bob, &[i; 10], None).status, 201);
    }
    let page = owner.call(server, "GET", "/deposits", &[]);
    let cursor = json(&page)["cursor"].as_str().unwrap().to_owned();
    let path = format!("{}/deposits", owner.base());
    let auth = owner.sign(server, "GET", &path, &[]);
    let next = server.request(
        "GET",
        &format!("{path}?after={cursor}"),
        &[("authorization", &auth)],
        &[],
    );
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(json(&next)["deposits"].as_array().unwrap().len(), 0);
    let auth = owner.sign(server, "GET", &path, &[]);
    let bad = server.request(
        "GET",
        &format!("{path}?after=x"),
        &[("authorization", &auth)],
        &[],
    );
    assert_eq!(bad.status, 400);

    // Tokens can be withdrawn; their deposits go with them.
    let before = owner.fetch(server).len();
    let body = serde_json::json!({ "remove": [bob.hash().to_string()] }).to_string();
    assert_eq!(
        owner
            .call(server, "POST", "/tokens", body.as_bytes())
            .status,
        200
    );
    assert_eq!(owner.deposit(server, &bob, b"x", None).status, 403);
    assert_eq!(
        owner.fetch(server).len(),
        before - 2,
        "bob's deposits are gone"
    );
    // Replacing keeps only the tokens named.
    let carol = DeliveryToken::generate();
    let body =
        serde_json::json!({ "add": [carol.hash().to_string()], "replace": true }).to_string();
    let answer = owner.call(server, "POST", "/tokens", body.as_bytes());
    assert_eq!(json(&answer)["tokens"], 1);
    assert_eq!(owner.deposit(server, &alice, b"x", None).status, 403);
    assert_eq!(owner.deposit(server, &carol, b"x", None).status, 201);
    assert!(owner.fetch(server).iter().all(|(_, b)| b == b"x"));
    let alice = carol;

    // Bad ids and bodies are 400s.
    assert_eq!(
        server
            .request("POST", "/v1/mailboxes/nope/challenge", &[], &[])
            .status,
        400
    );
    assert_eq!(
        owner
            .call(server, "POST", "/tokens", b"{\"add\": 1}")
            .status,
        400
    );

    // Removing the mailbox removes everything; tokens stop working.
    assert_eq!(owner.call(server, "DELETE", "", &[]).status, 204);
    assert_eq!(owner.deposit(other, &alice, b"x", None).status, 403);
    assert_eq!(owner.call(server, "GET", "/deposits", &[]).status, 404);

    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("kith_mailbox_deposits_total{outcome=\"stored\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&owner.key.id().to_string()),
        "no ids in metrics"
    );
}

#[test]
fn api_on_sqlite() {
    let server = start(None, NO_LIMIT);
    api_suite(&server, &server);
}

#[test]
fn api_on_postgres_with_two_instances() {
    let Some(url) = postgres() else { return };
    let first = start(Some(&url), NO_LIMIT);
    let second = start(Some(&url), NO_LIMIT);
    api_suite(&first, &second);
}

#[test]
fn rate_limit_answers_429_per_client() {
    let server = start(None, ["1", "3"]);
    let owner = Owner::new();
    let path = format!("{}/challenge", owner.base());
    let statuses: Vec<u16> = (0..5)
        .map(|_| server.request("POST", &path, &[], &[]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(server.get("/healthz").status, 200, "health is not limited");
}
