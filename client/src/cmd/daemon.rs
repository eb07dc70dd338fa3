//! `kith daemon`: runs the node in the foreground.

use crate::daemon::Daemon;
use crate::passphrase;
use anyhow::{Context, Result};
use node_core::node::Node;
use node_core::store::{Profile, Store};
use std::net::SocketAddr;
use std::path::Path;

/// `kith daemon` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on for device links (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Benchmark mode: answer every received message automatically.
    #[arg(long, hide = true)]
    pub bench_echo: bool,
    /// Fetch files up to this many bytes automatically (offers to us, and
    /// own devices' offers).
    #[arg(long, value_name = "BYTES", default_value_t = crate::daemon::FileLimits::default().auto_fetch)]
    pub auto_fetch_up_to: u64,
    /// Tests only: serve corrupted file chunks (plays a bad device).
    #[arg(long, hide = true)]
    pub danger_corrupt_served_chunks: bool,
    /// Tests only: wait this many milliseconds before each sync of the
    /// store to disk (widens the window between a commit and its
    /// durability).
    #[arg(long, hide = true, value_name = "MS", default_value_t = 0)]
    pub danger_sync_delay_ms: u64,
    /// Tests only: drop this share (percent, seeded) of incoming call
    /// media datagrams (plays a lossy path).
    #[arg(long, hide = true, value_name = "PERCENT", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub danger_media_loss_percent: u8,
    /// Tests only: room calls append every sender key given to this
    /// device and the first sealed frames received to files in DIR (to
    /// show a leaver's keys open nothing sent after it left).
    #[arg(long, hide = true, value_name = "DIR")]
    pub danger_conf_dump: Option<std::path::PathBuf>,
    /// Tests only: room calls also send replayed, forged and stale frames
    /// (a hostile participant, for the Byzantine tests).
    #[arg(long, hide = true)]
    pub danger_conf_hostile: bool,
    /// Calls send this 48 kHz mono 16-bit WAV file instead of the
    /// microphone when their command names none (and a call moved here
    /// from another own device sends it).
    #[arg(long, value_name = "WAV")]
    pub audio_in: Option<std::path::PathBuf>,
    /// Calls write what they heard to this WAV file instead of the
    /// speaker when their command names none.
    #[arg(long, value_name = "WAV")]
    pub audio_out: Option<std::path::PathBuf>,
    /// The sound card calls use when their command names no file:
    /// `default` (the system's, if it has one), `none` (calls without
    /// files are silent), or a device's name (ALSA: `null`, `hw:CARD=…`).
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub sound_card: crate::daemon::SoundCard,
    /// The camera video calls use when their command names no file:
    /// `default` (`/dev/video0` if there is one), `none` (the test
    /// picture), or a V4L2 device's path.
    #[arg(long, value_name = "DEVICE", default_value = "default")]
    pub camera: crate::daemon::CameraChoice,
    /// Refuse to offer files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::daemon::FileLimits::default().max_file)]
    pub max_file_size: u64,
    /// How often to collect the account's mailbox (when one is in use), in
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = crate::daemon::DEFAULT_MAILBOX_POLL.as_secs_f64())]
    pub mailbox_poll: f64,
    /// This device is its account's always-on device (it stays up, on
    /// power and a good link): room calls beyond a mesh prefer it as a
    /// forwarder (it says so in the room when it joins a call).
    #[arg(long)]
    pub always_on: bool,
    /// Do not look for own and contacts' devices on the local network
    /// (LAN discovery is on whenever the daemon listens beyond loopback).
    #[arg(long)]
    pub no_lan: bool,
    /// DHT bootstrap nodes (HOST:PORT, comma-separated) instead of the
    /// public ones, for `kith lookup dht on` (a private or test network).
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub dht_bootstrap: Vec<String>,
}

/// Runs `kith daemon` until SIGINT/SIGTERM.
pub fn run(home: &Path, args: Args) -> Result<()> {
    init_tracing();
    let profile = Profile::new(home);
    profile.check()?;
    let pass = if Store::is_protected(&profile)? {
        Some(passphrase::unlock()?)
    } else {
        None
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let node = Node::open(profile, pass.as_ref())
            .await
            .context("opening the profile")?;
        node.durability().set_delay_ms(args.danger_sync_delay_ms);
        drop(pass);
        let limits = crate::daemon::FileLimits {
            auto_fetch: args.auto_fetch_up_to,
            max_file: args.max_file_size,
            danger_corrupt_served: args.danger_corrupt_served_chunks,
        };
        let daemon = Daemon::start_with(node, args.listen, args.bench_echo, limits).await?;
        if !(args.mailbox_poll.is_finite() && args.mailbox_poll >= 0.1) {
            anyhow::bail!("--mailbox-poll must be at least 0.1 seconds");
        }
        daemon.set_mailbox_poll(std::time::Duration::from_secs_f64(args.mailbox_poll));
        if args.no_lan {
            daemon.turn_off_lan();
        }
        if args.always_on {
            daemon.set_always_on();
        }
        if !args.dht_bootstrap.is_empty() {
            daemon.set_dht_bootstrap(args.dht_bootstrap.clone());
        }
        daemon.set_media_loss(args.danger_media_loss_percent);
        // Keys in a file, a hostile participant: never in a release build.
        #[cfg(debug_assertions)]
        {
            if let Some(dir) = &args.danger_conf_dump {
                daemon.set_conf_dump(dir.clone());
            }
            if args.danger_conf_hostile {
                daemon.set_conf_hostile();
            }
        }
        #[cfg(not(debug_assertions))]
        if args.danger_conf_dump.is_some() || args.danger_conf_hostile {
            anyhow::bail!(
                "--danger-conf-dump and --danger-conf-hostile exist only in debug builds"
            );
        }
        let path = |p: &Option<std::path::PathBuf>| -> Result<Option<String>> {
            p.as_ref()
                .map(|p| {
                    std::path::absolute(p)
                        .context("finding the current folder")?
                        .to_str()
                        .map(str::to_owned)
                        .context("the path is not valid UTF-8")
                })
                .transpose()
        };
        daemon.set_default_audio(
            path(&args.audio_in)?.as_deref(),
            path(&args.audio_out)?.as_deref(),
        )?;
        daemon.set_sound_card(args.sound_card);
        daemon.set_camera(args.camera);
        Daemon::serve(daemon.clone()).await?;
        daemon.close().await;
        Ok(())
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The daemon's log output: standard error, with every relay access token
/// (`token=…`, a capability) blanked, whoever logged it (iroh logs relay
/// URLs whole). Each log line arrives in one write.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        if buf.windows(6).any(|w| w == b"token=") {
            let text = String::from_utf8_lossy(buf);
            err.write_all(node_core::relay_tls::redacted(&text).as_bytes())?;
        } else {
            err.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
