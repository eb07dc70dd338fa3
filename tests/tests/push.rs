//! Push wake-ups with real daemons and a real `kith-pushd` (CLI.md
//! `kith push use`): B registers a WebPush subscription (served here by a
//! small HTTP server), A learns how to wake B's device, and when B's daemon
//! is down and A has something for it, A's daemon posts a wake-up and the
//! subscription receives an encrypted push that says nothing but "wake".

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use data_encoding::BASE64URL_NOPAD;
use kith_tests::{Profile, assert_fails_cleanly, assert_ok, pair, server_bin, wait_until};
use p256::elliptic_curve::rand_core::{OsRng, RngCore as _};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use service_kit::testing::RunningServer;

const WAIT: Duration = Duration::from_secs(60);

type Pushes = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A push service endpoint: records each POST's headers and body, answers 201.
fn push_service() -> (String, Pushes) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let pushes: Pushes = Arc::default();
    let seen = Arc::clone(&pushes);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut line = String::new();
            let mut length = 0usize;
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                line.clear();
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            seen.lock().unwrap().push((head, body));
            let _ = stream.write_all(
                b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (url, pushes)
}

#[test]
fn an_unreachable_device_is_woken_through_its_push_relay() {
    let data = tempfile::tempdir().unwrap().keep();
    let mut command = Command::new(server_bin("kith-pushd"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--webpush-allow-http",
            "true",
            "--data",
        ])
        .arg(&data);
    let relay = RunningServer::start(&mut command);
    let relay_url = format!("http://{}", relay.addr());
    let (endpoint_base, pushes) = push_service();

    let mut a = Profile::new();
    a.init("Alice");
    let _ad = a.spawn_daemon();
    let mut b = Profile::new();
    let bob = b.init("Bob");
    let mut bd = b.spawn_daemon();
    let (bob_id, _) = pair(&a, &b);

    // Bad input: no target, a bad URL, a platform the relay does not serve.
    let err = assert_fails_cleanly(&b.kith(["push", "use", &relay_url]));
    assert!(err.contains("say what to push to"), "{err}");
    let err = assert_fails_cleanly(&b.kith(["push", "use", "ftp://x", "--fcm", "t"]));
    assert!(err.contains("not a push relay URL"), "{err}");
    let err = assert_fails_cleanly(&b.kith(["push", "use", &relay_url, "--apns", "ab12"]));
    assert!(err.contains("does not push to apns"), "{err}");

    // B's phone subscription.
    let secret = p256::SecretKey::random(&mut OsRng);
    let p256dh = BASE64URL_NOPAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
    let mut auth = [0u8; 16];
    OsRng.fill_bytes(&mut auth);
    let endpoint = format!("{endpoint_base}/push/bob");
    assert_ok(&b.kith([
        "push",
        "use",
        &relay_url,
        "--webpush",
        &endpoint,
        "--p256dh",
        &p256dh,
        // Joined with `=`: a random secret may begin with `-`, which
        // would read as an option (1 run in 64 failed so).
        &format!("--auth={}", BASE64URL_NOPAD.encode(&auth)),
    ]));
    let learned = wait_until(WAIT, || {
        let out = a.kith(["push", "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["contacts"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["device"] == bob.device.as_str()))
    });
    assert!(
        learned,
        "A never learned how to wake B\n{}",
        b.daemon_logs()
    );
    assert!(
        pushes.lock().unwrap().is_empty(),
        "nobody was woken while B was online"
    );

    // B's daemon goes away; A has something for it.
    assert!(bd.stop(Duration::from_secs(20)).is_some());
    a.send(&bob_id, "are you there?");
    let woken = wait_until(WAIT, || !pushes.lock().unwrap().is_empty());
    assert!(
        woken,
        "no wake-up reached B's push service\n{}",
        a.daemon_logs()
    );
    let (head, body) = pushes.lock().unwrap()[0].clone();
    assert!(head.starts_with("POST /push/bob "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-encoding: aes128gcm"),
        "{head}"
    );
    let plain = web_push_native::decrypt(
        body,
        &secret,
        &web_push_native::Auth::clone_from_slice(&auth),
    )
    .expect("B's phone can decrypt the push");
    assert_eq!(plain, br#"{"kith":"wake"}"#, "the push carries no content");

    // More messages do not wake it again at once.
    a.send(&bob_id, "hello?");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        pushes.lock().unwrap().len(),
        1,
        "one wake-up per device per 2 minutes"
    );

    // B comes back (as its app would, woken) and gets both.
    let _bd = b.spawn_daemon();
    let got = wait_until(WAIT, || {
        let contacts = b.contacts_json();
        let alice = contacts.as_array().unwrap()[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        b.try_log_json(&alice)
            .map(|log| {
                log.iter()
                    .filter(|m| m.text == "hello?" || m.text == "are you there?")
                    .count()
                    == 2
            })
            .unwrap_or(false)
    });
    assert!(
        got,
        "B did not get the messages after waking\n{}",
        b.daemon_logs()
    );

    // Off: unregistered, and A stops being able to wake B.
    assert_ok(&b.kith(["push", "off"]));
    let withdrawn = wait_until(WAIT, || {
        let out = a.kith(["push", "status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["contacts"].as_array().is_some_and(Vec::is_empty)
    });
    assert!(withdrawn, "A still thinks it can wake B");
}
