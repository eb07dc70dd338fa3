//! The real `kith-pushd` binary against local servers that speak the
//! platforms' protocols: APNs over HTTP/2 (h2c), FCM's OAuth token endpoint
//! and HTTP v1 send endpoint, and a WebPush endpoint. The tests check the
//! exact requests (headers, JWT claims and signatures, payloads without
//! content; the WebPush payload is decrypted as a subscriber would), the
//! signature and freshness checks on wake-ups, and the rate limits under a
//! burst.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Version};
use axum::routing::post;
use data_encoding::{BASE64, BASE64URL, BASE64URL_NOPAD};
use node_core::DeviceId;
use node_core::crypto::SigningKey;
use node_core::push::sign_request;
use p256::ecdsa::signature::Verifier as _;
use p256::elliptic_curve::rand_core::{OsRng, RngCore as _};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use serde_json::{Value, json};
use service_kit::testing::{HttpResponse, RunningServer};

const BIN: &str = env!("CARGO_BIN_EXE_kith-pushd");
const RSA_KEY: &str = include_str!("fixtures/fcm-test-key.pem");

/// One request a fake platform received.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn record(
    State(log): State<Log>,
    version: Version,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path().to_owned();
    let body = body.to_vec();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    log.lock().unwrap().push(Seen {
        version,
        path: path.clone(),
        headers,
        body: body.clone(),
    });
    // The platforms' answers.
    if path == "/token" {
        let body = json!({"access_token": "test-access-token", "expires_in": 3600, "token_type": "Bearer"});
        return (StatusCode::OK, body.to_string());
    }
    // A token the platform no longer knows (FCM's and APNs' answers).
    if String::from_utf8_lossy(&body).contains("\"dead\"") {
        let error = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}});
        return (StatusCode::NOT_FOUND, error.to_string());
    }
    if path.ends_with("/dead") {
        return (
            StatusCode::GONE,
            json!({"reason": "Unregistered"}).to_string(),
        );
    }
    if path.starts_with("/push/") {
        return (StatusCode::CREATED, String::new());
    }
    (
        StatusCode::OK,
        json!({"name": "projects/kith-test/messages/1"}).to_string(),
    )
}

/// A local server (HTTP/1 and h2c on one port) recording every request.
fn platform(rt: &tokio::runtime::Runtime) -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/{*rest}", post(record))
        .with_state(log.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Keys and files the relay is configured with.
struct Setup {
    _dir: tempfile::TempDir,
    apns_key: p256::ecdsa::SigningKey,
    vapid_key: p256::ecdsa::SigningKey,
    args: Vec<String>,
}

fn setup(platform_url: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let apns_key = p256::ecdsa::SigningKey::random(&mut OsRng);
    let vapid_key = p256::ecdsa::SigningKey::random(&mut OsRng);
    let write_key = |name: &str, key: &p256::ecdsa::SigningKey| {
        let path = dir.path().join(name);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::fs::write(&path, pem.as_bytes()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let apns_file = write_key("apns.p8", &apns_key);
    let vapid_file = write_key("vapid.pem", &vapid_key);
    let account = json!({
        "type": "service_account",
        "project_id": "kith-test",
        "private_key_id": "test-key",
        "private_key": RSA_KEY,
        "client_email": "pushd@kith-test.iam.gserviceaccount.com",
        "token_uri": format!("{platform_url}/token"),
    });
    let fcm_file = dir.path().join("fcm.json");
    std::fs::write(&fcm_file, account.to_string()).unwrap();
    let args = [
        "--apns-key-file",
        &apns_file,
        "--apns-key-id",
        "KEYID12345",
        "--apns-team-id",
        "TEAM123456",
        "--apns-topic",
        "org.kith.test",
        "--apns-url",
        platform_url,
        "--fcm-service-account",
        fcm_file.to_str().unwrap(),
        "--fcm-url",
        platform_url,
        "--vapid-key-file",
        &vapid_file,
        "--vapid-subject",
        "mailto:ops@kith.test",
        "--webpush-allow-http",
        "true",
    ]
    .map(str::to_owned)
    .to_vec();
    Setup {
        _dir: dir,
        apns_key,
        vapid_key,
        args,
    }
}

fn start(setup: &Setup, extra: &[&str]) -> RunningServer {
    start_on(setup, extra, None)
}

fn start_on(setup: &Setup, extra: &[&str], database: Option<&str>) -> RunningServer {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("KITH_PUSHD_") {
            command.env_remove(key);
        }
    }
    let data = tempfile::tempdir().unwrap().keep();
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .args(&setup.args)
        .args(extra);
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    RunningServer::start(&mut command)
}

fn signed(
    server: &RunningServer,
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &Value,
) -> HttpResponse {
    let body = body.to_string();
    let auth = sign_request(key, method, path, body.as_bytes());
    server.request(
        method,
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body.as_bytes(),
    )
}

fn register(
    server: &RunningServer,
    device: &SigningKey,
    target: Value,
    senders: &[&SigningKey],
) -> String {
    let mut body = target;
    body["issued"] = json!(now_ms());
    body["senders"] = json!(
        senders
            .iter()
            .map(|k| DeviceId::from(k.verifying_key()).to_string())
            .collect::<Vec<_>>()
    );
    let response = signed(server, device, "POST", "/v1/registrations", &body);
    assert_eq!(response.status, 201, "{}", response.body);
    let v: Value = serde_json::from_str(&response.body).unwrap();
    v["handle"].as_str().unwrap().to_owned()
}

fn wake_body(handle: &str) -> Value {
    let mut nonce = [0u8; 16];
    OsRng.fill_bytes(&mut nonce);
    json!({
        "handle": handle,
        "issued": now_ms(),
        "nonce": node_core::wire::to_base32(&nonce),
    })
}

fn wake(server: &RunningServer, sender: &SigningKey, handle: &str) -> HttpResponse {
    signed(server, sender, "POST", "/v1/wake", &wake_body(handle))
}

/// Splits a JWT and checks its ES256 signature; returns (header, claims).
fn check_es256(jwt: &str, key: &p256::ecdsa::VerifyingKey) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let sig =
        p256::ecdsa::Signature::from_slice(&BASE64URL_NOPAD.decode(parts[2].as_bytes()).unwrap())
            .unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("JWT signature");
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&BASE64URL_NOPAD.decode(p.as_bytes()).unwrap()).unwrap()
    };
    (decode(parts[0]), decode(parts[1]))
}

fn taken(log: &Log) -> Vec<Seen> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn apns_fcm_and_webpush_get_exact_content_free_pushes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, log) = platform(&rt);
    let setup = setup(&url);
    let server = start(&setup, &[]);
    let phone = SigningKey::generate();
    let friend = SigningKey::generate();
    let now_s = now_ms() / 1000;

    // APNs.
    let apns_token = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let handle = register(
        &server,
        &phone,
        json!({"platform": "apns", "token": apns_token}),
        &[&friend],
    );
    assert!(
        !handle.contains(apns_token) && handle.len() > 40,
        "opaque handle"
    );
    let r = wake(&server, &friend, &handle);
    assert_eq!(r.status, 202, "{}", r.body);
    let seen = taken(&log);
    assert_eq!(seen.len(), 1);
    let apns = &seen[0];
    assert_eq!(apns.version, Version::HTTP_2, "APNs is HTTP/2");
    assert_eq!(apns.path, format!("/3/device/{apns_token}"));
    assert_eq!(apns.headers["apns-topic"], "org.kith.test");
    assert_eq!(apns.headers["apns-push-type"], "background");
    assert_eq!(apns.headers["apns-priority"], "5");
    let expiration: i64 = apns.headers["apns-expiration"].parse().unwrap();
    assert!(expiration > now_s && expiration <= now_s + 3600);
    let jwt = apns.headers["authorization"]
        .strip_prefix("bearer ")
        .unwrap();
    let (header, claims) = check_es256(jwt, setup.apns_key.verifying_key());
    assert_eq!(header, json!({"alg": "ES256", "kid": "KEYID12345"}));
    assert_eq!(claims["iss"], "TEAM123456");
    assert!((claims["iat"].as_i64().unwrap() - now_s).abs() < 60);
    let payload: Value = serde_json::from_slice(&apns.body).unwrap();
    assert_eq!(
        payload,
        json!({"aps": {"content-available": 1}}),
        "no content"
    );

    // FCM: an OAuth token first, then the send.
    let fcm = SigningKey::generate();
    let handle = register(
        &server,
        &fcm,
        json!({"platform": "fcm", "token": "fcm-registration-token"}),
        &[&friend],
    );
    let r = wake(&server, &friend, &handle);
    assert_eq!(r.status, 202, "{}", r.body);
    let seen = taken(&log);
    assert_eq!(seen.len(), 2, "{seen:?}");
    let token_request = &seen[0];
    assert_eq!(token_request.path, "/token");
    let form = String::from_utf8(token_request.body.clone()).unwrap();
    let fields: HashMap<&str, &str> = form
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert_eq!(
        fields["grant_type"],
        "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    );
    check_rs256_assertion(fields["assertion"], &format!("{url}/token"));
    let send = &seen[1];
    assert_eq!(send.path, "/v1/projects/kith-test/messages:send");
    assert_eq!(send.headers["authorization"], "Bearer test-access-token");
    let message: Value = serde_json::from_slice(&send.body).unwrap();
    assert_eq!(message["message"]["token"], "fcm-registration-token");
    assert_eq!(message["message"]["data"], json!({"kith": "wake"}));
    assert_eq!(message["message"]["android"]["priority"], "high");
    assert!(
        message["message"].get("notification").is_none(),
        "no notification"
    );

    // WebPush: encrypted to the subscription, VAPID-signed.
    let subscriber = p256::SecretKey::random(&mut OsRng);
    let p256dh = BASE64URL_NOPAD.encode(subscriber.public_key().to_encoded_point(false).as_bytes());
    let mut auth = [0u8; 16];
    OsRng.fill_bytes(&mut auth);
    let web = SigningKey::generate();
    let endpoint = format!("{url}/push/subscription-1");
    let handle = register(
        &server,
        &web,
        json!({"platform": "webpush", "endpoint": endpoint, "p256dh": p256dh, "auth": BASE64URL_NOPAD.encode(&auth)}),
        &[&friend],
    );
    let r = wake(&server, &friend, &handle);
    assert_eq!(r.status, 202, "{}", r.body);
    let seen = taken(&log);
    assert_eq!(seen.len(), 1);
    let push = &seen[0];
    assert_eq!(push.path, "/push/subscription-1");
    assert_eq!(push.headers["content-encoding"], "aes128gcm");
    assert_eq!(push.headers["urgency"], "high");
    assert!(push.headers["ttl"].parse::<u64>().unwrap() > 0);
    let vapid = push.headers["authorization"]
        .strip_prefix("vapid t=")
        .unwrap();
    let (jwt, k) = vapid.split_once(", k=").unwrap();
    let vapid_public = setup.vapid_key.verifying_key();
    assert_eq!(
        k,
        BASE64URL_NOPAD.encode(vapid_public.to_encoded_point(false).as_bytes())
    );
    let (_, claims) = check_es256(jwt, vapid_public);
    assert_eq!(
        claims["aud"],
        url.as_str(),
        "aud is the endpoint's origin, port included"
    );
    assert_eq!(claims["sub"], "mailto:ops@kith.test");
    assert!(claims["exp"].as_i64().unwrap() > now_s);
    let plain = web_push_native::decrypt(
        push.body.clone(),
        &subscriber,
        &web_push_native::Auth::clone_from_slice(&auth),
    )
    .expect("the subscriber can decrypt it");
    assert_eq!(plain, br#"{"kith":"wake"}"#, "nothing but a wake-up");

    // A platform that says the token is gone: the registration is dropped.
    let stale = SigningKey::generate();
    let handle = register(
        &server,
        &stale,
        json!({"platform": "fcm", "token": "dead"}),
        &[&friend],
    );
    assert_eq!(wake(&server, &friend, &handle).status, 410);
    assert_eq!(wake(&server, &friend, &handle).status, 404);

    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("kith_push_wakeups_total{outcome=\"ok\"} 3"),
        "{metrics}"
    );
}

/// The OAuth assertion gcp_auth made: RS256 by the fixture key, with the
/// service account's claims.
fn check_rs256_assertion(assertion: &str, token_uri: &str) {
    use ring::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
    let assertion = assertion.replace("%3D", "=");
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let pem_body: String = RSA_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = BASE64.decode(pem_body.as_bytes()).unwrap();
    let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
    let decode = |p: &str| {
        BASE64URL
            .decode(p.as_bytes())
            .or_else(|_| BASE64URL_NOPAD.decode(p.as_bytes()))
            .unwrap()
    };
    UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref(),
    )
    .verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &decode(parts[2]),
    )
    .expect("assertion signature");
    let claims: Value = serde_json::from_slice(&decode(parts[1])).unwrap();
    assert_eq!(claims["iss"], "pushd@kith-test.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], token_uri);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
}

#[test]
fn unsigned_forged_replayed_and_stale_requests_are_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, log) = platform(&rt);
    let setup = setup(&url);
    let server = start(&setup, &[]);
    let phone = SigningKey::generate();
    let friend = SigningKey::generate();
    let handle = register(
        &server,
        &phone,
        json!({"platform": "fcm", "token": "t1"}),
        &[&friend],
    );

    // Unsigned.
    let body = wake_body(&handle).to_string();
    let r = server.request(
        "POST",
        "/v1/wake",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    // Signed over another body, or with the signature of another key.
    let auth = sign_request(&friend, "POST", "/v1/wake", b"{}");
    let r = server.request(
        "POST",
        "/v1/wake",
        &[("authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let other = SigningKey::generate();
    let forged = sign_request(&other, "POST", "/v1/wake", body.as_bytes()).replace(
        &node_core::wire::to_base32(other.verifying_key().as_bytes()),
        &node_core::wire::to_base32(friend.verifying_key().as_bytes()),
    );
    let r = server.request(
        "POST",
        "/v1/wake",
        &[("authorization", &forged)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    // Signed for another path.
    let auth = sign_request(&friend, "POST", "/v1/registrations", body.as_bytes());
    let r = server.request(
        "POST",
        "/v1/wake",
        &[("authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(taken(&log).is_empty(), "nothing was pushed");

    // Good once, then the same request again is a replay.
    let auth = sign_request(&friend, "POST", "/v1/wake", body.as_bytes());
    let r = server.request(
        "POST",
        "/v1/wake",
        &[("authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let r = server.request(
        "POST",
        "/v1/wake",
        &[("authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    // Stale.
    let mut old = wake_body(&handle);
    old["issued"] = json!(now_ms() - 3_600_000);
    assert_eq!(
        signed(&server, &friend, "POST", "/v1/wake", &old).status,
        400
    );
    // Unknown handle, malformed handle.
    let unknown = node_core::push::PushHandle::generate().to_string();
    assert_eq!(wake(&server, &friend, &unknown).status, 404);
    assert_eq!(wake(&server, &friend, "nope").status, 400);

    // Registrations: bad tokens, unknown platforms, a replayed one.
    for target in [
        json!({"platform": "apns", "token": "not hex"}),
        json!({"platform": "fax", "token": "1"}),
        json!({"platform": "webpush", "endpoint": "ftp://x", "p256dh": "AA", "auth": "AA"}),
        json!({"platform": "fcm"}),
    ] {
        let mut body = target;
        body["issued"] = json!(now_ms());
        let r = signed(&server, &phone, "POST", "/v1/registrations", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let body = json!({"platform": "fcm", "token": "t2", "issued": now_ms() - 1000});
    let r = signed(&server, &phone, "POST", "/v1/registrations", &body);
    assert_eq!(
        r.status, 409,
        "an older registration is refused: {}",
        r.body
    );
    // Unregister, then the handle is unknown.
    let registered = json!({"platform": "fcm", "token": "t3", "issued": now_ms()});
    let r = signed(&server, &phone, "POST", "/v1/registrations", &registered);
    assert_eq!(r.status, 201, "{}", r.body);
    let removal = json!({"issued": now_ms() + 1});
    let r = signed(&server, &phone, "DELETE", "/v1/registrations", &removal);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(wake(&server, &friend, &handle).status, 404);
    // The registration before the removal cannot be replayed over it.
    let r = signed(&server, &phone, "POST", "/v1/registrations", &registered);
    assert_eq!(r.status, 409, "{}", r.body);
}

#[test]
fn webpush_endpoints_must_be_public() {
    // No --webpush-allow-http: a real deployment.
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("KITH_PUSHD_") {
            command.env_remove(key);
        }
    }
    let data = tempfile::tempdir().unwrap().keep();
    command
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data);
    let server = RunningServer::start(&mut command);
    let phone = SigningKey::generate();
    let subscriber = p256::SecretKey::random(&mut OsRng);
    let p256dh = BASE64URL_NOPAD.encode(subscriber.public_key().to_encoded_point(false).as_bytes());
    let auth = BASE64URL_NOPAD.encode(&[7u8; 16]);
    for (endpoint, needle) in [
        ("http://push.example/x", "https"),
        // URL parsing reads this as https://push.example/, but as the
        // request's own URI it is an authority (host `https`) with no
        // scheme (found by the pushd_request fuzz target).
        ("https:push.example", "https"),
        ("https://127.0.0.1/x", "public address"),
        ("https://10.0.0.1/x", "public address"),
        ("https://169.254.169.254/latest", "public address"),
        ("https://[::1]/x", "public address"),
        // Shorthand and odd-base IPv4 forms that URL parsers and resolvers
        // read as loopback.
        ("https://2130706433/x", "public address"),
        ("https://0x7f.1/x", "public address"),
        ("https://0177.0.0.1/x", "public address"),
        ("https://127.1/x", "public address"),
        ("https://0x7f000001/x", "public address"),
        ("https://[::ffff:127.0.0.1]/x", "public address"),
        ("https://[::127.0.0.1]/x", "public address"),
        ("https://[64:ff9b::7f00:1]/x", "public address"),
        ("https://0/x", "public address"),
        ("https://100.64.0.1/x", "public address"),
        ("https://224.0.0.1/x", "public address"),
        ("https://255.255.255.255/x", "public address"),
        ("https://192.0.2.1/x", "public address"),
        ("https://[fc00::1]/x", "public address"),
        ("https://[fe80::1]/x", "public address"),
        ("https://[ff02::1]/x", "public address"),
    ] {
        let body = json!({"platform": "webpush", "endpoint": endpoint, "p256dh": p256dh, "auth": auth, "issued": now_ms()});
        let r = signed(&server, &phone, "POST", "/v1/registrations", &body);
        assert_eq!(r.status, 400, "{endpoint}: {}", r.body);
        assert!(r.body.contains(needle), "{endpoint}: {}", r.body);
    }
    // APNs and FCM are off here.
    let body = json!({"platform": "fcm", "token": "t", "issued": now_ms()});
    let r = signed(&server, &phone, "POST", "/v1/registrations", &body);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("does not push to fcm"), "{}", r.body);
}

#[test]
fn rate_limits_hold_under_a_burst() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, log) = platform(&rt);
    let setup = setup(&url);
    let server = start(
        &setup,
        &[
            "--sender-wakes-per-minute",
            "5",
            "--target-wakes-per-minute",
            "3",
            "--unknown-wakes-per-hour",
            "2",
        ],
    );
    let phone = SigningKey::generate();
    let friend = SigningKey::generate();
    let handle = register(
        &server,
        &phone,
        json!({"platform": "fcm", "token": "t1"}),
        &[&friend],
    );

    // Strangers: two wake-ups per hour between all of them.
    let strangers: Vec<SigningKey> = (0..6).map(|_| SigningKey::generate()).collect();
    let statuses: Vec<u16> = strangers
        .iter()
        .map(|s| wake(&server, s, &handle).status)
        .collect();
    assert_eq!(statuses, [202, 202, 429, 429, 429, 429]);
    // The contact is not crowded out: three a minute for it.
    let statuses: Vec<u16> = (0..5)
        .map(|_| wake(&server, &friend, &handle).status)
        .collect();
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    // One sender, many targets: five a minute in all.
    let targets: Vec<String> = (0..7)
        .map(|i| {
            let device = SigningKey::generate();
            register(
                &server,
                &device,
                json!({"platform": "fcm", "token": format!("t-{i}")}),
                &[&friend],
            )
        })
        .collect();
    let busy = SigningKey::generate();
    let statuses: Vec<u16> = targets
        .iter()
        .map(|h| wake(&server, &busy, h).status)
        .collect();
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429, 429]);
    let pushed = taken(&log)
        .iter()
        .filter(|s| s.path.ends_with("messages:send"))
        .count();
    assert_eq!(pushed, 2 + 3 + 5, "only accepted wake-ups were pushed");
}

#[test]
fn two_instances_share_registrations_on_postgres() {
    let url = match std::env::var("KITH_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => format!("{url}_pushd"),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set KITH_TEST_POSTGRES (see .ci/run)"
            );
            eprintln!("KITH_TEST_POSTGRES is not set: skipping the PostgreSQL run");
            return;
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (platform_url, log) = platform(&rt);
    let setup = setup(&platform_url);
    let a = start_on(&setup, &[], Some(&url));
    let b = start_on(&setup, &[], Some(&url));
    let phone = SigningKey::generate();
    let friend = SigningKey::generate();
    let handle = register(
        &a,
        &phone,
        json!({"platform": "fcm", "token": "pg-token"}),
        &[&friend],
    );
    assert_eq!(wake(&b, &friend, &handle).status, 202);
    // A newer registration of the same device keeps its handle.
    let again = register(
        &b,
        &phone,
        json!({"platform": "fcm", "token": "pg-token-2"}),
        &[&friend],
    );
    assert_eq!(again, handle);
    assert_eq!(wake(&a, &friend, &handle).status, 202);
    let tokens: Vec<String> = taken(&log)
        .iter()
        .filter(|s| s.path.ends_with("messages:send"))
        .map(|s| {
            serde_json::from_slice::<Value>(&s.body).unwrap()["message"]["token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tokens, ["pg-token", "pg-token-2"]);
    let r = signed(
        &a,
        &phone,
        "DELETE",
        "/v1/registrations",
        &json!({"issued": now_ms()}),
    );
    assert_eq!(r.status, 204);
    assert_eq!(wake(&b, &friend, &handle).status, 404);
}
