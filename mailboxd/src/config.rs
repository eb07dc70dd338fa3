//! Settings of `kith-mailboxd`: flags, environment variables, the config
//! file and defaults, merged in that order of precedence.
//!
//! Every option exists in all three places: `--ready-file` is
//! `KITH_MAILBOXD_READY_FILE` and `ready_file` in the file.
//! `example-config.toml` beside `Cargo.toml` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;
use service_kit::{CommonOptions, CommonSettings, DatabaseUrl};

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
}

/// Everything the server needs to start, all sources merged.
#[derive(Debug)]
pub struct Settings {
    /// Listen address, data folder, database, ready file.
    pub common: CommonSettings,
}

impl Settings {
    /// Reads the config file named by `cli`, if any, and merges.
    pub fn load(cli: Cli) -> anyhow::Result<Self> {
        let file: Config = service_kit::load_file(cli.config.as_deref())?;
        let common = CommonSettings::resolve(BINARY, cli.into_options(), file.into_options())?;
        Ok(Self { common })
    }
}

impl Cli {
    fn into_options(self) -> CommonOptions {
        CommonOptions {
            listen: self.listen,
            data: self.data,
            database: self.database,
            ready_file: self.ready_file,
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
            "sqlite:///srv/box/mailboxd.db"
        );
    }
}
