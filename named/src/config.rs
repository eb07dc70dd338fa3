//! Settings of `kith-named`: flags, environment variables, the config
//! file and defaults, merged in that order of precedence.
//!
//! `domain` is required, like `listen`. Every option exists in all three places: `--ready-file` is
//! `KITH_NAMED_READY_FILE` and `ready_file` in the file.
//! `example-config.toml` beside `Cargo.toml` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;
use service_kit::proxy::ProxyNet;
use service_kit::{CommonOptions, CommonSettings, DatabaseUrl, MissingSetting, Span};

use node_core::names::DomainName;

/// The program name.
pub const BINARY: &str = "kith-named";

/// Command line; each flag falls back to its environment variable.
#[derive(Debug, Parser)]
#[command(name = BINARY, version, about = "kith nameserver: binds name@domain handles to signed contact cards.")]
pub struct Cli {
    /// Address and port to serve HTTP on (port 0: any free port). Required
    /// here, in the environment or in the config file.
    #[arg(long, env = "KITH_NAMED_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// The domain whose handles (name@DOMAIN) this server answers for.
    /// Required here, in the environment or in the config file.
    #[arg(long, env = "KITH_NAMED_DOMAIN", value_name = "DOMAIN")]
    domain: Option<DomainName>,
    /// Folder for the server's state [default: ~/.local/share/kith-named].
    #[arg(long, env = "KITH_NAMED_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DIR/named.db].
    #[arg(long, env = "KITH_NAMED_DATABASE", value_name = "URL")]
    database: Option<DatabaseUrl>,
    /// TOML config file; flags and environment variables override it.
    #[arg(long, env = "KITH_NAMED_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Once listening, write the bound ADDR:PORT to this file.
    #[arg(long, env = "KITH_NAMED_READY_FILE", value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Longest a client may take to send a request's headers, from its first byte [default: 10s].
    #[arg(long, env = "KITH_NAMED_HEADER_TIMEOUT", value_name = "SPAN")]
    header_timeout: Option<Span>,
    /// Longest a client may take to send a request's body, from the end of its headers [default: 60s].
    #[arg(long, env = "KITH_NAMED_BODY_TIMEOUT", value_name = "SPAN")]
    body_timeout: Option<Span>,
    /// How long a kept-alive connection may wait for its next request [default: 60s].
    #[arg(long, env = "KITH_NAMED_IDLE_TIMEOUT", value_name = "SPAN")]
    idle_timeout: Option<Span>,
    /// Most connections open at once; more are answered 503 [default: 1024].
    #[arg(long, env = "KITH_NAMED_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<u32>,
    /// Most connections open at once from one client address [default: 64].
    #[arg(long, env = "KITH_NAMED_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    max_connections_per_address: Option<u32>,
    /// Reverse proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For or Forwarded header names the client [default: none].
    #[arg(
        long,
        env = "KITH_NAMED_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    trusted_proxies: Option<Vec<ProxyNet>>,
    /// Requests per second allowed from one client address, on average [default: 20].
    #[arg(long, env = "KITH_NAMED_RATE_LIMIT", value_name = "N")]
    rate_limit: Option<u32>,
    /// Requests one client address may send in a burst [default: 100].
    #[arg(long, env = "KITH_NAMED_RATE_BURST", value_name = "N")]
    rate_burst: Option<u32>,
}

/// The config file. Every key is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// See `--listen`.
    pub listen: Option<SocketAddr>,
    /// See `--domain`.
    pub domain: Option<DomainName>,
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
}

/// Everything the server needs to start, all sources merged.
#[derive(Debug)]
pub struct Settings {
    /// Listen address, data folder, database, ready file.
    pub common: CommonSettings,
    /// The domain whose handles this server answers for.
    pub domain: DomainName,
    /// Requests per second per client address, on average.
    pub rate_limit: u32,
    /// Requests per client address in a burst.
    pub rate_burst: u32,
}

impl Settings {
    /// Reads the config file named by `cli`, if any, and merges.
    pub fn load(mut cli: Cli) -> anyhow::Result<Self> {
        let mut file: Config = service_kit::load_file(cli.config.as_deref())?;
        let domain = cli.domain.take().or(file.domain.take());
        let rate_limit = cli.rate_limit.or(file.rate_limit).unwrap_or(20);
        let rate_burst = cli.rate_burst.or(file.rate_burst).unwrap_or(100);
        if rate_limit < 1 || rate_burst < 1 {
            anyhow::bail!("rate_limit and rate_burst must be at least 1");
        }
        let common = CommonSettings::resolve(BINARY, cli.into_options(), file.into_options())?;
        let domain = domain.ok_or_else(|| MissingSetting::new(BINARY, "domain", "DOMAIN"))?;
        Ok(Self {
            common,
            domain,
            rate_limit,
            rate_burst,
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
        let file = "listen = \"127.0.0.1:1\"\ndata = \"/srv/box\"\ndomain = \"a.example\"\n";
        let (_dir, path) = service_kit::testing::temp_file("config.toml", file);
        let path = path.to_str().expect("utf-8 temp path");
        let cli = Cli::try_parse_from([BINARY, "--listen", "127.0.0.1:2", "--config", path])
            .expect("valid flags");
        let settings = Settings::load(cli).expect("valid settings");
        assert_eq!(settings.common.listen.port(), 2);
        assert_eq!(
            settings.common.database.to_string(),
            "sqlite:///srv/box/named.db"
        );
        assert_eq!(settings.domain.to_string(), "a.example");
    }
}
