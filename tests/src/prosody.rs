//! A throw-away Prosody XMPP server on loopback for the bridge tests: its
//! own config, data and certificates in a temporary folder, a port chosen
//! here, client-to-server only (no server-to-server, no HTTP), TLS required,
//! a group chat service, accounts made with `prosodyctl`. Run as root (CI),
//! it runs as the `prosody` user the package made; never as a system
//! service. `.ci/run` installs the package.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The XMPP domain of the test server.
pub const DOMAIN: &str = "localhost";
/// Its group chat service.
pub const MUC: &str = "conference.localhost";

/// A running Prosody (stopped when dropped).
#[derive(Debug)]
pub struct Prosody {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The client port on 127.0.0.1.
    pub port: u16,
    as_root: bool,
}

impl Prosody {
    /// Whether Prosody is installed here. Tests that need it fail in CI
    /// without it (`.ci/run` installs it) and say so elsewhere.
    pub fn available() -> bool {
        let found = Command::new("prosody")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found || std::env::var_os("CI").is_none(),
            "prosody is not installed (.ci/run installs it)"
        );
        if !found {
            eprintln!("prosody is not installed: skipped (apt-get install prosody)");
        }
        found
    }

    /// Starts a server with a fresh certificate authority.
    pub fn start() -> Prosody {
        let dir = tempfile::tempdir().expect("tempdir");
        let as_root = current_uid() == 0;
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("address").port()
        };
        let ca = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kith test CA");
        let issuer = rcgen::CertifiedIssuer::self_signed(ca_params, ca).expect("self-signed CA");
        let key = rcgen::KeyPair::generate().expect("server key");
        let leaf = rcgen::CertificateParams::new(vec![DOMAIN.to_owned(), MUC.to_owned()])
            .expect("server certificate")
            .signed_by(&key, &issuer)
            .expect("signed");
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).expect("data folder");
        std::fs::create_dir_all(d.join("certs")).expect("certs folder");
        std::fs::write(d.join("ca.pem"), issuer.pem()).expect("CA file");
        std::fs::write(d.join("certs/localhost.crt"), leaf.pem()).expect("certificate");
        std::fs::write(d.join("certs/localhost.key"), key.serialize_pem()).expect("key");
        let user = if as_root {
            "prosody_user = \"prosody\"\n"
        } else {
            ""
        };
        let config = format!(
            r#"pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
plugin_paths = {{}}
admins = {{}}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "presence"; "message"; "iq"; "ping"; "smacks"; "offline" }}
modules_disabled = {{ "s2s" }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{}}
allow_registration = false
c2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
log = {{ debug = "{d}/prosody.log" }}
{user}VirtualHost "{DOMAIN}"
  ssl = {{ certificate = "{d}/certs/localhost.crt"; key = "{d}/certs/localhost.key" }}
Component "{MUC}" "muc"
  muc_room_locking = false
  ssl = {{ certificate = "{d}/certs/localhost.crt"; key = "{d}/certs/localhost.key" }}
"#,
            d = d.display()
        );
        std::fs::write(d.join("prosody.cfg.lua"), config).expect("config");
        if as_root {
            let status = Command::new("chown")
                .args(["-R", "prosody:prosody"])
                .arg(d)
                .status()
                .expect("chown");
            assert!(status.success(), "chown to prosody failed");
        }
        let mut p = Prosody {
            dir,
            child: None,
            port,
            as_root,
        };
        p.run();
        p
    }

    fn command(&self, program: &str) -> Command {
        let mut c = if self.as_root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=prosody",
                "--regid=prosody",
                "--init-groups",
                program,
            ]);
            c
        } else {
            Command::new(program)
        };
        c.arg("--config").arg(self.config());
        c
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Starts (or starts again) the server process on the same port and
    /// data, and waits until it listens.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = self
            .command("prosody")
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "prosody did not listen on {} within 20 s; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::sigterm(child.id());
            if crate::wait_limited(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Makes an account `user@localhost`.
    pub fn register(&self, user: &str, password: &str) {
        let out = self
            .command("prosodyctl")
            .args(["register", user, DOMAIN, password])
            .output()
            .expect("prosodyctl runs");
        assert!(
            out.status.success(),
            "prosodyctl register {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }

    /// Its folder (data and log).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
    }
}

/// This process's user id, from `id -u` (no libc call in this crate).
fn current_uid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}
