//! Names with real daemons, real `kith-named` servers, a real DNS server
//! (hickory-server on a loopback port, the client pointed at it with
//! `KITH_DNS_SERVER`) and a small HTTP server for `.well-known/kith`
//! (CLI.md: `kith name register`, `kith contact add NAME@DOMAIN`).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use kith_tests::{Profile, assert_fails_cleanly, assert_ok, run_limited, server_bin};
use service_kit::testing::RunningServer;

const LIMIT: Duration = Duration::from_secs(60);

fn named(domain: &str) -> RunningServer {
    let data = tempfile::tempdir().unwrap().keep();
    let mut command = Command::new(server_bin("kith-named"));
    command
        .args(["--listen", "127.0.0.1:0", "--domain", domain, "--data"])
        .arg(&data);
    RunningServer::start(&mut command)
}

/// What the test DNS server answers.
enum Answer {
    Txt(String),
    Srv(u16, &'static str),
    A([u8; 4]),
}

/// An authoritative DNS server on 127.0.0.1 (UDP and TCP on one port),
/// running on its own thread until the test ends.
fn dns(zones: Vec<(&'static str, Vec<(&'static str, Answer)>)>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut catalog = Catalog::new();
            for (origin, records) in zones {
                let origin = Name::from_str(origin).unwrap();
                let mut zone: InMemoryZoneHandler<TokioRuntimeProvider> =
                    InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
                let soa = SOA::new(
                    Name::from_str("ns.test.").unwrap(),
                    Name::from_str("hostmaster.test.").unwrap(),
                    1,
                    3600,
                    600,
                    86400,
                    60,
                );
                zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
                for (name, answer) in records {
                    let name = Name::from_str(name).unwrap();
                    let data = match answer {
                        Answer::Txt(text) => RData::TXT(TXT::new(vec![text])),
                        Answer::Srv(port, target) => {
                            RData::SRV(SRV::new(10, 5, port, Name::from_str(target).unwrap()))
                        }
                        Answer::A(ip) => RData::A(A::from(std::net::Ipv4Addr::from(ip))),
                    };
                    zone.upsert_mut(Record::from_rdata(name, 60, data), 1);
                }
                catalog.upsert(
                    LowerName::from(origin),
                    vec![Arc::new(zone) as Arc<dyn ZoneHandler>],
                );
            }
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
            let mut server = Server::new(catalog);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 32);
            tx.send(addr).unwrap();
            // Serve until the test process ends.
            std::future::pending::<()>().await;
            drop(server);
        });
    });
    rx.recv().unwrap()
}

/// A one-route HTTP server answering `GET /.well-known/kith` with `body`.
fn well_known(body: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ = reader.read_line(&mut line);
            // Skip the headers.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let (status, body) = if line.starts_with("GET /.well-known/kith ") {
                ("200 OK", body.as_str())
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn with_dns(p: &Profile, dns: SocketAddr, args: &[&str]) -> Output {
    let mut command = p.command(args);
    command.env("KITH_DNS_SERVER", dns.to_string());
    run_limited(&mut command, LIMIT)
}

#[test]
fn names_are_registered_found_through_dns_and_checked() {
    let main = named("example.test");
    let other = named("wk.test");
    let rival = named("example.test");
    let main_url = format!("http://{}", main.addr());
    let other_url = format!("http://{}", other.addr());
    let rival_url = format!("http://{}", rival.addr());

    let mut a = Profile::new();
    let alice = a.init("Alice");
    let _ad = a.spawn_daemon();
    let mut b = Profile::new();
    let bob = b.init("Bob");
    let _bd = b.spawn_daemon();

    // Registering: clear errors for bad input, then it works.
    let err = assert_fails_cleanly(&a.kith([
        "name",
        "register",
        "al ice@example.test",
        "--server",
        &main_url,
    ]));
    assert!(err.contains("not a usable handle"), "{err}");
    let err =
        assert_fails_cleanly(&a.kith(["name", "register", "alice@wk.test", "--server", &main_url]));
    assert!(err.contains("answers for @example.test"), "{err}");
    assert_ok(&a.kith([
        "name",
        "register",
        "Alice@Example.test",
        "--server",
        &main_url,
    ]));
    assert_ok(&a.kith(["name", "register", "alice@wk.test", "--server", &other_url]));
    // A name someone else holds.
    let err = assert_fails_cleanly(&b.kith([
        "name",
        "register",
        "alice@example.test",
        "--server",
        &main_url,
    ]));
    assert!(err.contains("taken"), "{err}");
    // Bob holds alice@example.test on the rival server (a disagreement to find).
    assert_ok(&b.kith([
        "name",
        "register",
        "alice@example.test",
        "--server",
        &rival_url,
    ]));

    let wk_port = well_known(format!("{{\"nameserver\": \"{other_url}\"}}"));
    let resolver = dns(vec![
        (
            "example.test.",
            vec![(
                "_kith._tcp.example.test.",
                Answer::Txt(format!("kith-nameserver={main_url}")),
            )],
        ),
        ("wk.test.", vec![("wk.test.", Answer::A([127, 0, 0, 1]))]),
        (
            "srv.test.",
            vec![("_kith._tcp.srv.test.", Answer::Srv(8443, "names.srv.test."))],
        ),
    ]);

    // An unknown name: found the server, which says no.
    let err = assert_fails_cleanly(&with_dns(
        &b,
        resolver,
        &["contact", "add", "nobody@example.test"],
    ));
    assert!(err.contains("no such name"), "{err}");
    // A domain with no records at all.
    let err = assert_fails_cleanly(&with_dns(&b, resolver, &["contact", "add", "x@none.test"]));
    assert!(err.contains("no nameserver found"), "{err}");
    // SRV: the nameserver is https://TARGET:PORT (not served here, so unreachable).
    let err = assert_fails_cleanly(&with_dns(&b, resolver, &["name", "lookup", "x@srv.test"]));
    assert!(err.contains("https://names.srv.test:8443"), "{err}");

    // Bob adds Alice by name, found through the TXT record.
    let out = with_dns(&b, resolver, &["contact", "add", "alice@example.test"]);
    assert_eq!(assert_ok(&out).trim(), alice.account);
    let contacts = b.contacts_json();
    let entry = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == alice.account.as_str())
        .unwrap();
    assert_eq!(entry["trust"], "unvalidated");

    // Through .well-known (the domain's A record, then HTTP).
    let mut command = b.command(["name", "lookup", "alice@wk.test", "--json"]);
    command
        .env("KITH_DNS_SERVER", resolver.to_string())
        .env("KITH_WELL_KNOWN_HTTP_PORT", wk_port.to_string());
    let found: serde_json::Value =
        serde_json::from_str(&assert_ok(&run_limited(&mut command, LIMIT))).unwrap();
    assert_eq!(found["account"], alice.account.as_str());
    assert_eq!(found["nameservers"][0], other_url.as_str());

    // Two nameservers that disagree: reported, nothing added.
    let mut c = Profile::new();
    c.init("Carol");
    let _cd = c.spawn_daemon();
    let err = assert_fails_cleanly(&c.kith([
        "contact",
        "add",
        "alice@example.test",
        "--nameserver",
        &main_url,
        "--nameserver",
        &rival_url,
    ]));
    assert!(err.contains("disagree"), "{err}");
    assert!(
        err.contains(&alice.account) && err.contains(&bob.account),
        "{err}"
    );
    assert_eq!(c.contacts_json().as_array().unwrap().len(), 0);
    // Two that agree (one of them twice) are fine.
    let out = c.kith([
        "contact",
        "add",
        "alice@example.test",
        "--nameserver",
        &main_url,
        "--nameserver",
        &format!("{main_url}/"),
    ]);
    assert_eq!(assert_ok(&out).trim(), alice.account);

    // Alice releases the name: it is gone.
    assert_ok(&a.kith([
        "name",
        "release",
        "alice@example.test",
        "--server",
        &main_url,
    ]));
    let err = assert_fails_cleanly(&c.kith([
        "name",
        "lookup",
        "alice@example.test",
        "--nameserver",
        &main_url,
    ]));
    assert!(err.contains("no such name"), "{err}");
}
