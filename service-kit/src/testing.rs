//! Helpers for integration tests that run a real server binary.
//!
//! [`RunningServer::start`] runs the binary with `--ready-file` in a fresh
//! temporary folder and waits for the bound address to appear there, so
//! tests can listen on `127.0.0.1:0`. [`http_get`] is a tiny blocking
//! HTTP/1.1 client, enough for `/healthz` and `/metrics`. Everything stays on
//! loopback.
//!
//! Not for production code: these helpers panic with a clear message
//! instead of returning errors, as test code does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start or to stop.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server binary running in the background; killed when dropped.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

impl RunningServer {
    /// Starts `command` (the binary and its arguments, which must make it
    /// listen, e.g. `--listen 127.0.0.1:0`) with `--ready-file` added, and
    /// waits until it has written its bound address.
    pub fn start(command: &mut Command) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let ready = dir.path().join("ready");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("create stderr log");
        let child = command
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the server binary");
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        server.addr = server.wait_for_address(&ready);
        server
    }

    /// The address the server bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A folder that lives as long as the server, for its data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// `GET path` on the server.
    pub fn get(&self, path: &str) -> HttpResponse {
        http_get(self.addr, path)
            .unwrap_or_else(|err| panic!("GET {path}: {err}\nserver log:\n{}", self.stderr()))
    }

    /// Any request on the server; see [`http_request`].
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(self.addr, method, path, headers, body)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}\nserver log:\n{}", self.stderr()))
    }

    /// Sends SIGTERM and waits for the server to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
        wait_timeout(&mut self.child, PATIENCE)
            .unwrap_or_else(|| panic!("no exit after SIGTERM\nserver log:\n{}", self.stderr()))
    }

    fn wait_for_address(&mut self, ready: &Path) -> SocketAddr {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(addr) = read_address(ready) {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "server exited with {status} before listening\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "server did not write {} in time\n{}",
            ready.display(),
            self.stderr()
        );
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the server, checks `/healthz` and `/metrics`, sends SIGTERM and
/// checks it exits 0 and logged `listening on ADDR`.
pub fn assert_serves_and_stops(command: &mut Command) {
    let server = RunningServer::start(command);
    let health = server.get("/healthz");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "ok"),
        "{}",
        server.stderr()
    );
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    for name in ["kith_http_requests_total", "kith_build_info"] {
        assert!(
            metrics.body.contains(name),
            "{name} missing from\n{}",
            metrics.body
        );
    }
    let listening = format!("listening on {}", server.addr());
    let log = server.stderr();
    assert!(
        log.contains(&listening),
        "no {listening:?} in the log:\n{log}"
    );
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
}

/// Checks a server started with a `header_timeout` well under
/// [`PATIENCE`]: a connection that sends half a request header and then
/// nothing is closed without an answer, and the server still answers
/// `/healthz`.
pub fn assert_cuts_off_slow_headers(addr: SocketAddr) {
    let mut slow = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    slow.set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .expect("send half a header");
    let mut answer = Vec::new();
    match slow.read_to_end(&mut answer) {
        Ok(_) => assert!(answer.is_empty(), "answered: {answer:?}"),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("still open after {PATIENCE:?}: {err}"),
    }
    let health = http_get(addr, "/healthz").expect("GET /healthz");
    assert_eq!(health.status, 200);
}

/// Runs `binary --help` and checks it succeeds and names every flag.
pub fn assert_help_mentions(binary: &str, flags: &[&str]) {
    let output = run_to_exit(Command::new(binary).arg("--help"));
    assert!(output.status.success(), "--help: {}", output.status);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in flags {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

/// Runs `command`, which must fail with exit code `code` and an error
/// message on the first line of stderr that contains `needle`.
pub fn assert_fails(command: &mut Command, code: i32, needle: &str) -> String {
    let output = run_to_exit(command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("error"),
        "first line is not an error: {stderr}"
    );
    assert!(
        first.contains(needle),
        "{needle:?} not on the first line: {stderr}"
    );
    stderr
}

/// Runs `command` to completion (it must exit by itself within
/// [`PATIENCE`]) and returns its status and output.
pub fn run_to_exit(command: &mut Command) -> Output {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("create stdout log"))
        .stderr(std::fs::File::create(&err_path).expect("create stderr log"))
        .spawn()
        .expect("start the binary");
    let status = wait_timeout(&mut child, PATIENCE).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{command:?} did not exit in time");
    });
    Output {
        status,
        stdout: std::fs::read(out_path).unwrap_or_default(),
        stderr: std::fs::read(err_path).unwrap_or_default(),
    }
}

/// Writes `text` to a file in a new temporary folder, e.g. a config file.
pub fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the temporary file");
    (dir, path)
}

/// A minimal blocking `GET` over HTTP/1.1 (`Connection: close`).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpResponse> {
    http_request(addr, "GET", path, &[], &[])
}

/// A minimal blocking HTTP/1.1 request (`Connection: close`) with extra
/// `headers` and a `body` (sent with its `Content-Length`).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (e.g. 413) before reading the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad response: {raw:?}"),
        )
    })
}

/// Parses a `Connection: close` response; chunked bodies are de-chunked.
fn parse_response(raw: &str) -> Option<HttpResponse> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Some(HttpResponse { status, body })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

fn read_address(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let plain = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(
            parse_response(plain).map(|r| (r.status, r.body)),
            Some((200, "ok".into()))
        );
        let chunked = "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).map(|r| (r.status, r.body)),
            Some((404, "abcde".into()))
        );
    }
}

/// What a closed-loop load run measured.
#[derive(Debug, Clone, Copy)]
pub struct LoadReport {
    /// Completed requests per second.
    pub rate: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.rate,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )
    }
}

/// Benchmarks: `clients` tasks each call `request(client index)` in a loop
/// for `length`, one request at a time (closed loop); returns throughput and
/// latency percentiles. Each request panics on a wrong answer.
pub async fn closed_loop<F, Fut>(clients: usize, length: Duration, request: F) -> LoadReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let request = std::sync::Arc::new(request);
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let request = std::sync::Arc::clone(&request);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                request(client).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a load client panicked"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    LoadReport {
        rate: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

/// What a server benchmark runs: seconds per run (`KITH_BENCH_SECS`,
/// default 5), client counts (`KITH_BENCH_CLIENTS`, comma-separated), and
/// the backends: SQLite, plus PostgreSQL when `KITH_TEST_POSTGRES` names a
/// database (with `db_suffix` appended to its name, one database per server).
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Length of each run.
    pub length: Duration,
    /// Concurrent clients per run.
    pub clients: Vec<usize>,
    /// (name, database URL; `None` is the default SQLite).
    pub backends: Vec<(&'static str, Option<String>)>,
}

impl BenchPlan {
    /// Reads the environment; prints when PostgreSQL is skipped.
    pub fn from_env(default_clients: &str, db_suffix: &str) -> Self {
        let secs: u64 = std::env::var("KITH_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5);
        let clients = std::env::var("KITH_BENCH_CLIENTS")
            .unwrap_or_else(|_| default_clients.into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let mut backends = vec![("sqlite", None)];
        match std::env::var("KITH_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => {
                backends.push(("postgres", Some(format!("{url}{db_suffix}"))))
            }
            _ => println!("(KITH_TEST_POSTGRES not set: SQLite only)"),
        }
        Self {
            length: Duration::from_secs(secs),
            clients,
            backends,
        }
    }

    /// Every run: (backend name, database URL, clients), backend by backend.
    pub fn runs(&self) -> Vec<(&'static str, Option<&str>, usize)> {
        self.backends
            .iter()
            .flat_map(|(name, url)| {
                self.clients
                    .iter()
                    .map(move |&n| (*name, url.as_deref(), n))
            })
            .collect()
    }

    /// The multi-threaded runtime the load clients run on.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("building the benchmark runtime")
    }
}
