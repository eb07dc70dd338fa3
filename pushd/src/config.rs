//! Settings of `kith-pushd`: flags, environment variables, the config
//! file and defaults, merged in that order of precedence.
//!
//! Every option exists in all three places: `--ready-file` is
//! `KITH_PUSHD_READY_FILE` and `ready_file` in the file.
//! `example-config.toml` beside `Cargo.toml` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;
use service_kit::proxy::ProxyNet;
use service_kit::{CommonOptions, CommonSettings, DatabaseUrl, Span};

/// The program name.
pub const BINARY: &str = "kith-pushd";

/// Command line; each flag falls back to its environment variable.
#[derive(Debug, Parser)]
#[command(name = BINARY, version, about = "Opt-in kith push relay: wakes phones with signed, content-free wake-ups.")]
pub struct Cli {
    /// Address and port to serve HTTP on (port 0: any free port). Required
    /// here, in the environment or in the config file.
    #[arg(long, env = "KITH_PUSHD_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Folder for the server's state [default: ~/.local/share/kith-pushd].
    #[arg(long, env = "KITH_PUSHD_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DIR/pushd.db].
    #[arg(long, env = "KITH_PUSHD_DATABASE", value_name = "URL")]
    database: Option<DatabaseUrl>,
    /// TOML config file; flags and environment variables override it.
    #[arg(long, env = "KITH_PUSHD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Once listening, write the bound ADDR:PORT to this file.
    #[arg(long, env = "KITH_PUSHD_READY_FILE", value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Longest a client may take to send a request's headers, from its first byte [default: 10s].
    #[arg(long, env = "KITH_PUSHD_HEADER_TIMEOUT", value_name = "SPAN")]
    header_timeout: Option<Span>,
    /// Longest a client may take to send a request's body, from the end of its headers [default: 60s].
    #[arg(long, env = "KITH_PUSHD_BODY_TIMEOUT", value_name = "SPAN")]
    body_timeout: Option<Span>,
    /// How long a kept-alive connection may wait for its next request [default: 60s].
    #[arg(long, env = "KITH_PUSHD_IDLE_TIMEOUT", value_name = "SPAN")]
    idle_timeout: Option<Span>,
    /// Most connections open at once; more are answered 503 [default: 1024].
    #[arg(long, env = "KITH_PUSHD_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<u32>,
    /// Most connections open at once from one client address [default: 64].
    #[arg(long, env = "KITH_PUSHD_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    max_connections_per_address: Option<u32>,
    /// Reverse proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For or Forwarded header names the client [default: none].
    #[arg(
        long,
        env = "KITH_PUSHD_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    trusted_proxies: Option<Vec<ProxyNet>>,
    /// Requests per second allowed from one client address, on average [default: 50].
    #[arg(long, env = "KITH_PUSHD_RATE_LIMIT", value_name = "N")]
    rate_limit: Option<u32>,
    /// Requests one client address may send in a burst [default: 200].
    #[arg(long, env = "KITH_PUSHD_RATE_BURST", value_name = "N")]
    rate_burst: Option<u32>,
    /// Wake-ups one sending device may post per minute, to all targets together [default: 30].
    #[arg(long, env = "KITH_PUSHD_SENDER_WAKES_PER_MINUTE", value_name = "N")]
    sender_wakes_per_minute: Option<u32>,
    /// Wake-ups one registered device receives per minute from senders it knows [default: 12].
    #[arg(long, env = "KITH_PUSHD_TARGET_WAKES_PER_MINUTE", value_name = "N")]
    target_wakes_per_minute: Option<u32>,
    /// Wake-ups one registered device receives per hour from senders it does not list, all such senders together [default: 4].
    #[arg(long, env = "KITH_PUSHD_UNKNOWN_WAKES_PER_HOUR", value_name = "N")]
    unknown_wakes_per_hour: Option<u32>,
    /// APNs token-signing key (the .p8 file from Apple); APNs is off without it.
    #[arg(long, env = "KITH_PUSHD_APNS_KEY_FILE", value_name = "FILE")]
    apns_key_file: Option<PathBuf>,
    /// The APNs key's 10-character Key ID.
    #[arg(long, env = "KITH_PUSHD_APNS_KEY_ID", value_name = "ID")]
    apns_key_id: Option<String>,
    /// The Apple developer Team ID (10 characters).
    #[arg(long, env = "KITH_PUSHD_APNS_TEAM_ID", value_name = "ID")]
    apns_team_id: Option<String>,
    /// The app's bundle id (the apns-topic header).
    #[arg(long, env = "KITH_PUSHD_APNS_TOPIC", value_name = "BUNDLE_ID")]
    apns_topic: Option<String>,
    /// APNs endpoint [default: https://api.push.apple.com].
    #[arg(long, env = "KITH_PUSHD_APNS_URL", value_name = "URL")]
    apns_url: Option<String>,
    /// FCM service-account key (JSON from the Firebase console); FCM is off without it.
    #[arg(long, env = "KITH_PUSHD_FCM_SERVICE_ACCOUNT", value_name = "FILE")]
    fcm_service_account: Option<PathBuf>,
    /// FCM endpoint [default: https://fcm.googleapis.com].
    #[arg(long, env = "KITH_PUSHD_FCM_URL", value_name = "URL")]
    fcm_url: Option<String>,
    /// VAPID key for WebPush/UnifiedPush (PKCS#8 PEM, P-256) [default: WebPush without VAPID].
    #[arg(long, env = "KITH_PUSHD_VAPID_KEY_FILE", value_name = "FILE")]
    vapid_key_file: Option<PathBuf>,
    /// Contact the push services see in VAPID tokens (mailto: or https:) [default: mailto:admin@localhost].
    #[arg(long, env = "KITH_PUSHD_VAPID_SUBJECT", value_name = "URI")]
    vapid_subject: Option<String>,
    /// Accept plain http:// WebPush endpoints (local testing only) [default: false].
    #[arg(long, env = "KITH_PUSHD_WEBPUSH_ALLOW_HTTP", value_name = "BOOL")]
    webpush_allow_http: Option<bool>,
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
    /// See `--rate-limit`.
    pub rate_limit: Option<u32>,
    /// See `--rate-burst`.
    pub rate_burst: Option<u32>,
    /// See `--sender-wakes-per-minute`.
    pub sender_wakes_per_minute: Option<u32>,
    /// See `--target-wakes-per-minute`.
    pub target_wakes_per_minute: Option<u32>,
    /// See `--unknown-wakes-per-hour`.
    pub unknown_wakes_per_hour: Option<u32>,
    /// See `--apns-key-file`.
    pub apns_key_file: Option<PathBuf>,
    /// See `--apns-key-id`.
    pub apns_key_id: Option<String>,
    /// See `--apns-team-id`.
    pub apns_team_id: Option<String>,
    /// See `--apns-topic`.
    pub apns_topic: Option<String>,
    /// See `--apns-url`.
    pub apns_url: Option<String>,
    /// See `--fcm-service-account`.
    pub fcm_service_account: Option<PathBuf>,
    /// See `--fcm-url`.
    pub fcm_url: Option<String>,
    /// See `--vapid-key-file`.
    pub vapid_key_file: Option<PathBuf>,
    /// See `--vapid-subject`.
    pub vapid_subject: Option<String>,
    /// See `--webpush-allow-http`.
    pub webpush_allow_http: Option<bool>,
}

/// Everything the server needs to start, all sources merged.
#[derive(Debug)]
pub struct Settings {
    /// Listen address, data folder, database, ready file.
    pub common: CommonSettings,
    /// Rates.
    pub limits: Limits,
    /// The push services to use.
    pub backends: Backends,
}

/// How much may be asked of the relay.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second per client address.
    pub rate_limit: u32,
    /// Burst per client address.
    pub rate_burst: u32,
    /// Wake-ups per minute per sending device.
    pub sender_wakes_per_minute: u32,
    /// Wake-ups per minute per target from known senders.
    pub target_wakes_per_minute: u32,
    /// Wake-ups per hour per target from unknown senders, together.
    pub unknown_wakes_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_limit: 50,
            rate_burst: 200,
            sender_wakes_per_minute: 30,
            target_wakes_per_minute: 12,
            unknown_wakes_per_hour: 4,
        }
    }
}

/// APNs settings (all four needed).
#[derive(Debug, Clone)]
pub struct ApnsSettings {
    /// The .p8 key file.
    pub key_file: PathBuf,
    /// Key ID.
    pub key_id: String,
    /// Team ID.
    pub team_id: String,
    /// Bundle id.
    pub topic: String,
    /// Endpoint.
    pub url: String,
}

/// Which push services are configured.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    /// APNs, if configured.
    pub apns: Option<ApnsSettings>,
    /// FCM: the service-account file and the endpoint.
    pub fcm: Option<(PathBuf, String)>,
    /// WebPush: the VAPID key file (if any) and subject.
    pub vapid: Option<PathBuf>,
    /// VAPID subject.
    pub vapid_subject: String,
    /// Whether http:// WebPush endpoints are accepted.
    pub webpush_allow_http: bool,
}

impl Settings {
    /// Reads the config file named by `cli`, if any, and merges.
    pub fn load(cli: Cli) -> anyhow::Result<Self> {
        let mut cli = cli;
        let mut file: Config = service_kit::load_file(cli.config.as_deref())?;
        let d = Limits::default();
        let limits = Limits {
            rate_limit: cli.rate_limit.or(file.rate_limit).unwrap_or(d.rate_limit),
            rate_burst: cli.rate_burst.or(file.rate_burst).unwrap_or(d.rate_burst),
            sender_wakes_per_minute: cli
                .sender_wakes_per_minute
                .or(file.sender_wakes_per_minute)
                .unwrap_or(d.sender_wakes_per_minute),
            target_wakes_per_minute: cli
                .target_wakes_per_minute
                .or(file.target_wakes_per_minute)
                .unwrap_or(d.target_wakes_per_minute),
            unknown_wakes_per_hour: cli
                .unknown_wakes_per_hour
                .or(file.unknown_wakes_per_hour)
                .unwrap_or(d.unknown_wakes_per_hour),
        };
        if [
            limits.rate_limit,
            limits.rate_burst,
            limits.sender_wakes_per_minute,
            limits.target_wakes_per_minute,
            limits.unknown_wakes_per_hour,
        ]
        .contains(&0)
        {
            anyhow::bail!("rates must be at least 1");
        }
        let apns_key = cli.apns_key_file.take().or(file.apns_key_file.take());
        let apns = match apns_key {
            Some(key_file) => {
                let need = |value: Option<String>, key: &str| {
                    value.ok_or_else(|| {
                        anyhow::anyhow!("apns_key_file is set, so {key} is needed too")
                    })
                };
                Some(ApnsSettings {
                    key_file,
                    key_id: need(
                        cli.apns_key_id.take().or(file.apns_key_id.take()),
                        "apns_key_id",
                    )?,
                    team_id: need(
                        cli.apns_team_id.take().or(file.apns_team_id.take()),
                        "apns_team_id",
                    )?,
                    topic: need(
                        cli.apns_topic.take().or(file.apns_topic.take()),
                        "apns_topic",
                    )?,
                    url: cli
                        .apns_url
                        .take()
                        .or(file.apns_url.take())
                        .unwrap_or_else(|| "https://api.push.apple.com".into()),
                })
            }
            None => None,
        };
        let fcm = cli
            .fcm_service_account
            .take()
            .or(file.fcm_service_account.take())
            .map(|path| {
                let url = cli
                    .fcm_url
                    .take()
                    .or(file.fcm_url.take())
                    .unwrap_or_else(|| "https://fcm.googleapis.com".into());
                (path, url)
            });
        let backends = Backends {
            apns,
            fcm,
            vapid: cli.vapid_key_file.take().or(file.vapid_key_file.take()),
            vapid_subject: cli
                .vapid_subject
                .take()
                .or(file.vapid_subject.take())
                .unwrap_or_else(|| "mailto:admin@localhost".into()),
            webpush_allow_http: cli
                .webpush_allow_http
                .or(file.webpush_allow_http)
                .unwrap_or(false),
        };
        let common = CommonSettings::resolve(BINARY, cli.into_options(), file.into_options())?;
        Ok(Self {
            common,
            limits,
            backends,
        })
    }
}

impl Cli {
    fn into_options(self) -> CommonOptions {
        CommonOptions {
            listen: self.listen,
            data: self.data,
            database: self.database,
            ready_file: self.ready_file,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            trusted_proxies: self.trusted_proxies,
        }
    }
}

impl Config {
    fn into_options(self) -> CommonOptions {
        CommonOptions {
            listen: self.listen,
            data: self.data,
            database: self.database,
            ready_file: self.ready_file,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            trusted_proxies: self.trusted_proxies,
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
        let file = "listen = \"127.0.0.1:1\"\ndata = \"/srv/box\"\n";
        let (_dir, path) = service_kit::testing::temp_file("config.toml", file);
        let path = path.to_str().expect("utf-8 temp path");
        let cli = Cli::try_parse_from([BINARY, "--listen", "127.0.0.1:2", "--config", path])
            .expect("valid flags");
        let settings = Settings::load(cli).expect("valid settings");
        assert_eq!(settings.common.listen.port(), 2);
        assert_eq!(
            settings.common.database.to_string(),
            "sqlite:///srv/box/pushd.db"
        );
    }
}
