//! The HTTP server's connection limits, on real sockets on loopback: slow
//! clients are cut off while others are served, the connection caps hold,
//! and forwarding headers count only from trusted proxies.
//!
//! Deadlines are short (300 ms) and waits generous (10 s), so a loaded
//! machine makes these tests slower, not flaky: nothing asserts that
//! something happened quickly, only that it happened, and not early.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension};
use axum::routing::{get, post};
use service_kit::conn::Deadlines;
use service_kit::proxy::{ClientAddr, TrustedProxies};
use service_kit::rate::{RateLimiter, rate_limit};
use service_kit::server::{HttpSettings, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

const SHORT: Duration = Duration::from_millis(300);
const PATIENCE: Duration = Duration::from_secs(10);

fn short_deadlines() -> HttpSettings {
    HttpSettings {
        deadlines: Deadlines {
            header: SHORT,
            body: SHORT,
            idle: SHORT,
        },
        ..HttpSettings::default()
    }
}

fn router() -> Router {
    let limiter = Arc::new(RateLimiter::new(0.001, 1));
    Router::new()
        .route("/hello", get(|| async { "hi" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/whoami",
            get(whoami).route_layer(axum::middleware::from_fn_with_state(limiter, rate_limit)),
        )
}

/// The client address the server believes.
async fn whoami(
    client: Option<Extension<ClientAddr>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> String {
    client
        .map_or(peer.ip(), |Extension(ClientAddr(ip))| ip)
        .to_string()
}

/// A running server; stops when dropped.
struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(http: HttpSettings) -> Running {
    let server = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind loopback");
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        server.serve(router(), http, shutdown).await
    });
    Running { addr, _stop: stop }
}

/// Status and body of a `Connection: close` request.
async fn request(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send");
    let raw = read_all(&mut stream).await;
    parse(&raw)
}

async fn fetch(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n");
    request(addr, &head).await
}

async fn read_all(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw)).await;
    assert!(
        read.is_ok(),
        "no end of answer within {PATIENCE:?}: {raw:?}"
    );
    String::from_utf8_lossy(&raw).into_owned()
}

fn parse(raw: &str) -> (u16, String) {
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// Waits until the server closes `stream` (reads to its end, or a reset);
/// returns what it sent and when it closed. Fails after [`PATIENCE`].
async fn until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {PATIENCE:?}; got {raw:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&raw).into_owned(), Instant::now());
            }
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// A kept-alive connection that has had one answered request.
async fn held(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&raw).ends_with("\r\n\r\nhi") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert_ne!(n, 0, "closed before answering: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
    }
    stream
}

async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source");
    socket.connect(addr).await.expect("connect")
}

#[tokio::test]
async fn slowloris_is_cut_off_after_the_header_timeout_while_others_are_served() {
    let server = start(short_deadlines()).await;
    let started = Instant::now();
    let mut partial = TcpStream::connect(server.addr).await.expect("connect");
    partial
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("send");
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    assert_eq!(fetch(server.addr, "/hello", "").await, (200, "hi".into()));
    let (sent, closed) = until_closed(&mut partial).await;
    assert!(
        !sent.contains(" 200 "),
        "a partial header was answered: {sent}"
    );
    assert!(closed - started >= SHORT, "closed before the deadline");
    until_closed(&mut silent).await;
    assert_eq!(fetch(server.addr, "/hello", "").await, (200, "hi".into()));
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let server = start(short_deadlines()).await;
    let mut stream = held(server.addr).await;
    let (sent, _) = until_closed(&mut stream).await;
    assert_eq!(sent, "", "nothing more is sent before closing");
}

#[tokio::test]
async fn slow_body_is_cut_off_after_the_body_timeout() {
    let server = start(short_deadlines()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .expect("send");
    let (sent, _) = until_closed(&mut stream).await;
    assert!(
        !sent.contains(" 200 "),
        "an incomplete body was taken: {sent}"
    );
    // A whole body in time is fine.
    let (status, body) = request(
        server.addr,
        "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "3"));
}

#[tokio::test]
async fn connection_cap_refuses_the_next_connection_until_one_closes() {
    let mut http = HttpSettings {
        max_connections: 2,
        ..HttpSettings::default()
    };
    http.deadlines.idle = PATIENCE * 6;
    let server = start(http).await;
    let first = held(server.addr).await;
    let _second = held(server.addr).await;
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    let (sent, _) = until_closed(&mut third).await;
    assert!(sent.starts_with("HTTP/1.1 503 "), "{sent:?}");
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let _ = stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await;
        let (sent, _) = until_closed(&mut stream).await;
        if parse(&sent) == (200, "hi".into()) {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed: {sent:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn per_address_cap_refuses_only_that_address() {
    let mut http = HttpSettings {
        max_connections_per_address: 1,
        ..HttpSettings::default()
    };
    http.deadlines.idle = PATIENCE * 6;
    let server = start(http).await;
    let _first = held(server.addr).await;
    let mut again = connect_from([127, 0, 0, 1], server.addr).await;
    let (sent, _) = until_closed(&mut again).await;
    assert!(sent.starts_with("HTTP/1.1 503 "), "{sent:?}");
    let mut other = connect_from([127, 0, 0, 2], server.addr).await;
    other
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    assert_eq!(parse(&read_all(&mut other).await), (200, "hi".into()));
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_change_the_rate_limit_key() {
    let server = start(HttpSettings::default()).await;
    let first = fetch(server.addr, "/whoami", "X-Forwarded-For: 1.2.3.4\r\n").await;
    assert_eq!(first, (200, "127.0.0.1".into()));
    // Another claimed address is still the same client: its one token is spent.
    let second = fetch(server.addr, "/whoami", "X-Forwarded-For: 5.6.7.8\r\n").await;
    assert_eq!(second.0, 429, "{second:?}");
    let third = fetch(server.addr, "/whoami", "Forwarded: for=9.9.9.9\r\n").await;
    assert_eq!(third.0, 429, "{third:?}");
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_is_the_rate_limit_key() {
    let proxy: IpAddr = [127, 0, 0, 1].into();
    let http = HttpSettings {
        trusted_proxies: TrustedProxies::new(vec![proxy.to_string().parse().expect("net")]),
        ..HttpSettings::default()
    };
    let server = start(http).await;
    let xff = |v: &str| format!("X-Forwarded-For: {v}\r\n");
    assert_eq!(
        fetch(server.addr, "/whoami", &xff("1.2.3.4")).await,
        (200, "1.2.3.4".into())
    );
    assert_eq!(
        fetch(server.addr, "/whoami", &xff("5.6.7.8")).await,
        (200, "5.6.7.8".into())
    );
    // The client may prepend anything; the proxy's own entry counts.
    let spoofed = fetch(server.addr, "/whoami", &xff("9.9.9.9, 1.2.3.4")).await;
    assert_eq!(spoofed.0, 429, "{spoofed:?}");
    assert_eq!(
        fetch(
            server.addr,
            "/whoami",
            "Forwarded: for=\"[2001:db8::1]:80\"\r\n"
        )
        .await,
        (200, "2001:db8::1".into())
    );
}
