//! Settings of `kith-mailboxd`: flags, environment variables, the config
//! file and defaults, merged in that order of precedence.
//!
//! Every option exists in all three places: `--ready-file` is
//! `KITH_MAILBOXD_READY_FILE` and `ready_file` in the file.
//! `example-config.toml` beside `Cargo.toml` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::Parser;
use node_core::mailbox::{MAX_DEPOSIT, MAX_RETENTION_MS, MIN_RETENTION_MS};
use serde::Deserialize;

use crate::relay::RelaySettings;
use service_kit::proxy::ProxyNet;
use service_kit::{CommonOptions, CommonSettings, DatabaseUrl, Span};

/// The program name.
pub const BINARY: &str = "kith-mailboxd";

/// Command line; each flag falls back to its environment variable.
#[derive(Debug, Parser)]
#[command(name = BINARY, version, about = "Opt-in kith mailbox: keeps sealed deposits for offline devices.")]
pub struct Cli {
    /// Address and port to serve HTTP on (port 0: any free port). Required
    /// here, in the environment or in the config file.
    #[arg(long, env = "KITH_MAILBOXD_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Folder for the server's state [default: ~/.local/share/kith-mailboxd].
    #[arg(long, env = "KITH_MAILBOXD_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DIR/mailboxd.db].
    #[arg(long, env = "KITH_MAILBOXD_DATABASE", value_name = "URL")]
    database: Option<DatabaseUrl>,
    /// TOML config file; flags and environment variables override it.
    #[arg(long, env = "KITH_MAILBOXD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Once listening, write the bound ADDR:PORT to this file.
    #[arg(long, env = "KITH_MAILBOXD_READY_FILE", value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Longest a client may take to send a request's headers, from its first byte [default: 10s].
    #[arg(long, env = "KITH_MAILBOXD_HEADER_TIMEOUT", value_name = "SPAN")]
    header_timeout: Option<Span>,
    /// Longest a client may take to send a request's body, from the end of its headers [default: 60s].
    #[arg(long, env = "KITH_MAILBOXD_BODY_TIMEOUT", value_name = "SPAN")]
    body_timeout: Option<Span>,
    /// How long a kept-alive connection may wait for its next request [default: 60s].
    #[arg(long, env = "KITH_MAILBOXD_IDLE_TIMEOUT", value_name = "SPAN")]
    idle_timeout: Option<Span>,
    /// Most connections open at once; more are answered 503 [default: 1024].
    #[arg(long, env = "KITH_MAILBOXD_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<u32>,
    /// Most connections open at once from one client address [default: 64].
    #[arg(
        long,
        env = "KITH_MAILBOXD_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N"
    )]
    max_connections_per_address: Option<u32>,
    /// Reverse proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For or Forwarded header names the client [default: none].
    #[arg(
        long,
        env = "KITH_MAILBOXD_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    trusted_proxies: Option<Vec<ProxyNet>>,
    /// How long a deposit is kept, 1h to 7d [default: 7d].
    #[arg(long, env = "KITH_MAILBOXD_RETENTION", value_name = "SPAN")]
    retention: Option<Span>,
    /// Largest deposit in bytes, at most 1048576 [default: 262144].
    #[arg(long, env = "KITH_MAILBOXD_MAX_DEPOSIT_SIZE", value_name = "BYTES")]
    max_deposit_size: Option<u64>,
    /// Most deposits one mailbox holds [default: 10000].
    #[arg(long, env = "KITH_MAILBOXD_MAILBOX_MAX_DEPOSITS", value_name = "N")]
    mailbox_max_deposits: Option<u64>,
    /// Most bytes one mailbox holds [default: 67108864].
    #[arg(long, env = "KITH_MAILBOXD_MAILBOX_MAX_BYTES", value_name = "BYTES")]
    mailbox_max_bytes: Option<u64>,
    /// Most deposits one sender (one delivery token) has in a mailbox [default: 1000].
    #[arg(long, env = "KITH_MAILBOXD_SENDER_MAX_DEPOSITS", value_name = "N")]
    sender_max_deposits: Option<u64>,
    /// Requests per second allowed from one client address, on average [default: 50].
    #[arg(long, env = "KITH_MAILBOXD_RATE_LIMIT", value_name = "N")]
    rate_limit: Option<u32>,
    /// Requests one client address may send in a burst [default: 200].
    #[arg(long, env = "KITH_MAILBOXD_RATE_BURST", value_name = "N")]
    rate_burst: Option<u32>,
    /// Also run an iroh relay (plain HTTP; put TLS in front) on this
    /// address, for devices behind NATs [default: no relay].
    #[arg(long, env = "KITH_MAILBOXD_RELAY_LISTEN", value_name = "ADDR:PORT")]
    relay_listen: Option<SocketAddr>,
    /// The relay's QUIC address discovery on this UDP address (lets devices behind NATs punch holes) [default: none].
    #[arg(
        long,
        env = "KITH_MAILBOXD_RELAY_QUIC_LISTEN",
        value_name = "ADDR:PORT"
    )]
    relay_quic_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) for address discovery [default: one made once in DATA/relay-tls, trusted by its pin].
    #[arg(long, env = "KITH_MAILBOXD_RELAY_CERT", value_name = "FILE")]
    relay_cert: Option<PathBuf>,
    /// Private key (PEM) of --relay-cert.
    #[arg(long, env = "KITH_MAILBOXD_RELAY_KEY", value_name = "FILE")]
    relay_key: Option<PathBuf>,
    /// File of access tokens, one per line: devices presenting one may use the relay.
    #[arg(long, env = "KITH_MAILBOXD_RELAY_TOKENS", value_name = "FILE")]
    relay_tokens: Option<PathBuf>,
    /// File of device ids, one per line, that may use the relay.
    #[arg(long, env = "KITH_MAILBOXD_RELAY_DEVICES", value_name = "FILE")]
    relay_devices: Option<PathBuf>,
    /// Let every device use the relay (needed beyond loopback without tokens or devices).
    #[arg(long, env = "KITH_MAILBOXD_RELAY_OPEN")]
    relay_open: bool,
}

/// The config file. Every key is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// See `--listen`.
    pub listen: Option<SocketAddr>,
    /// See `--data`.
    pub data: Option<PathBuf>,
    /// See `--database`.
    pub database: Option<DatabaseUrl>,
    /// See `--ready-file`.
    pub ready_file: Option<PathBuf>,
    /// See `--header-timeout`.
    pub header_timeout: Option<Span>,
    /// See `--body-timeout`.
    pub body_timeout: Option<Span>,
    /// See `--idle-timeout`.
    pub idle_timeout: Option<Span>,
    /// See `--max-connections`.
    pub max_connections: Option<u32>,
    /// See `--max-connections-per-address`.
    pub max_connections_per_address: Option<u32>,
    /// See `--trusted-proxies`.
    pub trusted_proxies: Option<Vec<ProxyNet>>,
    /// See `--retention`.
    pub retention: Option<Span>,
    /// See `--max-deposit-size`.
    pub max_deposit_size: Option<u64>,
    /// See `--mailbox-max-deposits`.
    pub mailbox_max_deposits: Option<u64>,
    /// See `--mailbox-max-bytes`.
    pub mailbox_max_bytes: Option<u64>,
    /// See `--sender-max-deposits`.
    pub sender_max_deposits: Option<u64>,
    /// See `--rate-limit`.
    pub rate_limit: Option<u32>,
    /// See `--rate-burst`.
    pub rate_burst: Option<u32>,
    /// See `--relay-listen`.
    pub relay_listen: Option<SocketAddr>,
    /// See `--relay-quic-listen`.
    pub relay_quic_listen: Option<SocketAddr>,
    /// See `--relay-cert`.
    pub relay_cert: Option<PathBuf>,
    /// See `--relay-key`.
    pub relay_key: Option<PathBuf>,
    /// See `--relay-tokens`.
    pub relay_tokens: Option<PathBuf>,
    /// See `--relay-devices`.
    pub relay_devices: Option<PathBuf>,
    /// See `--relay-open`.
    pub relay_open: Option<bool>,
}

/// The mailbox's own limits, all sources merged and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a deposit is kept, in milliseconds.
    pub retention_ms: i64,
    /// Largest deposit body.
    pub max_deposit_size: usize,
    /// Most deposits per mailbox.
    pub mailbox_max_deposits: i64,
    /// Most bytes per mailbox.
    pub mailbox_max_bytes: i64,
    /// Most deposits per delivery token.
    pub sender_max_deposits: i64,
    /// Sustained requests per second per client address.
    pub rate_limit: u32,
    /// Burst of requests per client address.
    pub rate_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            retention_ms: MAX_RETENTION_MS,
            max_deposit_size: 256 * 1024,
            mailbox_max_deposits: 10_000,
            mailbox_max_bytes: 64 * 1024 * 1024,
            sender_max_deposits: 1000,
            rate_limit: 50,
            rate_burst: 200,
        }
    }
}

/// Everything the server needs to start, all sources merged.
#[derive(Debug)]
pub struct Settings {
    /// Listen address, data folder, database, ready file.
    pub common: CommonSettings,
    /// Retention, sizes, quotas and rates.
    pub limits: Limits,
    /// The in-process relay, if any, and who may use it.
    pub relay: RelaySettings,
}

impl Settings {
    /// Reads the config file named by `cli`, if any, and merges.
    pub fn load(cli: Cli) -> anyhow::Result<Self> {
        let file: Config = service_kit::load_file(cli.config.as_deref())?;
        let defaults = Limits::default();
        let retention = cli.retention.or(file.retention);
        let limits = Limits {
            retention_ms: match retention {
                Some(span) => i64::try_from(span.as_secs())
                    .ok()
                    .and_then(|s| s.checked_mul(1000))
                    .unwrap_or(i64::MAX),
                None => defaults.retention_ms,
            },
            max_deposit_size: pick(cli.max_deposit_size, file.max_deposit_size)
                .map_or(defaults.max_deposit_size, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            mailbox_max_deposits: pick(cli.mailbox_max_deposits, file.mailbox_max_deposits)
                .map_or(defaults.mailbox_max_deposits, clamp_i64),
            mailbox_max_bytes: pick(cli.mailbox_max_bytes, file.mailbox_max_bytes)
                .map_or(defaults.mailbox_max_bytes, clamp_i64),
            sender_max_deposits: pick(cli.sender_max_deposits, file.sender_max_deposits)
                .map_or(defaults.sender_max_deposits, clamp_i64),
            rate_limit: pick(cli.rate_limit, file.rate_limit).unwrap_or(defaults.rate_limit),
            rate_burst: pick(cli.rate_burst, file.rate_burst).unwrap_or(defaults.rate_burst),
        };
        limits.check()?;
        let common = CommonSettings::resolve(BINARY, cli.common(), file.common())?;
        let relay = RelaySettings {
            listen: cli.relay_listen.or(file.relay_listen),
            quic_listen: cli.relay_quic_listen.or(file.relay_quic_listen),
            cert: cli.relay_cert.or(file.relay_cert),
            key: cli.relay_key.or(file.relay_key),
            tokens: cli.relay_tokens.or(file.relay_tokens),
            devices: cli.relay_devices.or(file.relay_devices),
            open: cli.relay_open || file.relay_open.unwrap_or(false),
        };
        relay.check()?;
        if relay.listen.is_some() {
            // The lists are read now, so a bad one is a usage error.
            crate::relay::Gate::new(&relay)?;
        }
        Ok(Self {
            common,
            limits,
            relay,
        })
    }
}

impl Limits {
    /// Refuses values outside what the protocol and common sense allow.
    fn check(&self) -> anyhow::Result<()> {
        if !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&self.retention_ms) {
            bail!("retention must be between 1h and 7d");
        }
        if !(1024..=MAX_DEPOSIT).contains(&self.max_deposit_size) {
            bail!("max_deposit_size must be between 1024 and {MAX_DEPOSIT} bytes");
        }
        if self.mailbox_max_deposits < 1 || self.sender_max_deposits < 1 {
            bail!("mailbox_max_deposits and sender_max_deposits must be at least 1");
        }
        if self.mailbox_max_bytes < self.max_deposit_size as i64 {
            bail!("mailbox_max_bytes must be at least max_deposit_size");
        }
        if self.rate_limit < 1 || self.rate_burst < 1 {
            bail!("rate_limit and rate_burst must be at least 1");
        }
        Ok(())
    }
}

fn pick<T>(flag: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(file)
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Cli {
    fn common(&self) -> CommonOptions {
        CommonOptions {
            listen: self.listen,
            data: self.data.clone(),
            database: self.database.clone(),
            ready_file: self.ready_file.clone(),
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

impl Config {
    fn common(&self) -> CommonOptions {
        CommonOptions {
            listen: self.listen,
            data: self.data.clone(),
            database: self.database.clone(),
            ready_file: self.ready_file.clone(),
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn example_config_lists_and_parses_every_option() {
        let example = include_str!("../example-config.toml");
        service_kit::config::check_example::<Config>(example).expect("example config");
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_the_file() {
        let file =
            "listen = \"127.0.0.1:1\"\ndata = \"/srv/box\"\nretention = \"2h\"\nrate_limit = 7\n";
        let (_dir, path) = service_kit::testing::temp_file("config.toml", file);
        let path = path.to_str().expect("utf-8 temp path");
        let cli = Cli::try_parse_from([
            BINARY,
            "--listen",
            "127.0.0.1:2",
            "--config",
            path,
            "--retention",
            "3h",
        ])
        .expect("valid flags");
        let settings = Settings::load(cli).expect("valid settings");
        assert_eq!(settings.common.listen.port(), 2);
        assert_eq!(
            settings.common.database.to_string(),
            "sqlite:///srv/box/mailboxd.db"
        );
        assert_eq!(settings.limits.retention_ms, 3 * 3600 * 1000);
        assert_eq!(settings.limits.rate_limit, 7);
        assert_eq!(settings.limits.sender_max_deposits, 1000);
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        for args in [
            ["--retention", "30m"],
            ["--retention", "8d"],
            ["--max-deposit-size", "2000000"],
            ["--max-deposit-size", "10"],
            ["--rate-limit", "0"],
            ["--sender-max-deposits", "0"],
        ] {
            let mut argv = vec![BINARY, "--listen", "127.0.0.1:0"];
            argv.extend(args);
            let cli = Cli::try_parse_from(argv).expect("parses");
            let err = Settings::load(cli).expect_err("out of range");
            assert!(err.to_string().contains("must be"), "{args:?}: {err}");
        }
    }
}
