//! Reading a server's settings.
//!
//! Each setting can come from four places, first one wins: a command-line
//! flag, an environment variable (both handled by clap's `env` feature in each
//! binary), the TOML config file, a default. A binary declares its clap
//! struct and its config-file struct (with `#[serde(deny_unknown_fields)]`, so
//! a misspelt key is an error, not a silently ignored setting), turns both
//! into [`CommonOptions`] and calls [`CommonSettings::resolve`].
//!
//! Not here: the flags themselves (each binary names its own environment
//! variables), and anything a particular server adds.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use crate::database::DatabaseUrl;
use crate::proxy::{ProxyNet, TrustedProxies};
use crate::server::HttpSettings;
use crate::span::Span;

/// Reads the TOML config file at `path` into `T`; with no path, `T::default()`.
pub fn load_file<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, ConfigFileError> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|message| ConfigFileError::Parse {
        path: path.to_owned(),
        message,
    })
}

/// Parses TOML text into `T`, with a one-line message (`line N: …`) on error.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|err| one_line(text, &err))
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a bad value.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file we read.
        path: PathBuf,
        /// Where and what, on one line.
        message: String,
    },
}

/// The settings every kith server has, from one source (flags and
/// environment, or the config file): each may be missing.
#[derive(Debug, Default, Clone)]
pub struct CommonOptions {
    /// Address and port to serve HTTP on.
    pub listen: Option<SocketAddr>,
    /// Folder for the server's state.
    pub data: Option<PathBuf>,
    /// Where the server keeps its state.
    pub database: Option<DatabaseUrl>,
    /// File to write the bound `ADDR:PORT` to once listening.
    pub ready_file: Option<PathBuf>,
    /// Longest a client may take to send a request's headers.
    pub header_timeout: Option<Span>,
    /// Longest a client may take to send a request's body.
    pub body_timeout: Option<Span>,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Option<Span>,
    /// Most connections open at once.
    pub max_connections: Option<u32>,
    /// Most connections open at once from one client address.
    pub max_connections_per_address: Option<u32>,
    /// Reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: Option<Vec<ProxyNet>>,
}

/// The settings every kith server has, after merging all sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonSettings {
    /// Address and port to serve HTTP on (port 0: the system picks one).
    pub listen: SocketAddr,
    /// Folder for the server's state.
    pub data: PathBuf,
    /// Where the server keeps its state; default `sqlite://<data>/<name>.db`.
    pub database: DatabaseUrl,
    /// File to write the bound `ADDR:PORT` to once listening, if any.
    pub ready_file: Option<PathBuf>,
    /// Connection deadlines and caps, trusted proxies.
    pub http: HttpSettings,
}

impl CommonSettings {
    /// Merges `flags` (command line and environment) over `file`, then fills
    /// in defaults. `binary` is the program name, e.g. `kith-mailboxd`.
    pub fn resolve(
        binary: &str,
        flags: CommonOptions,
        file: CommonOptions,
    ) -> Result<Self, SettingError> {
        let http = resolve_http(&flags, &file)?;
        let listen = flags
            .listen
            .or(file.listen)
            .ok_or_else(|| MissingSetting::new(binary, "listen", "ADDR:PORT"))?;
        let data = flags
            .data
            .or(file.data)
            .unwrap_or_else(|| default_data_dir(binary));
        let database = flags
            .database
            .or(file.database)
            .unwrap_or_else(|| DatabaseUrl::sqlite_in(&data, short_name(binary)));
        let ready_file = flags.ready_file.or(file.ready_file);
        Ok(Self {
            listen,
            data,
            database,
            ready_file,
            http,
        })
    }
}

/// The connection settings: each from `flags`, else `file`, else the
/// default; all must be more than zero.
fn resolve_http(flags: &CommonOptions, file: &CommonOptions) -> Result<HttpSettings, SettingError> {
    let d = HttpSettings::default();
    let span = |flag: Option<Span>, file: Option<Span>, default: Duration, key: &'static str| {
        let value = flag.or(file).map_or(default, Span::duration);
        positive(value.is_zero(), key).map(|()| value)
    };
    let count = |flag: Option<u32>, file: Option<u32>, default: u32, key: &'static str| {
        let value = flag.or(file).unwrap_or(default);
        positive(value == 0, key).map(|()| value)
    };
    let mut http = HttpSettings {
        max_connections: count(
            flags.max_connections,
            file.max_connections,
            d.max_connections,
            "max_connections",
        )?,
        max_connections_per_address: count(
            flags.max_connections_per_address,
            file.max_connections_per_address,
            d.max_connections_per_address,
            "max_connections_per_address",
        )?,
        trusted_proxies: flags
            .trusted_proxies
            .clone()
            .or_else(|| file.trusted_proxies.clone())
            .map_or(d.trusted_proxies, TrustedProxies::new),
        deadlines: d.deadlines,
    };
    http.deadlines.header = span(
        flags.header_timeout,
        file.header_timeout,
        d.deadlines.header,
        "header_timeout",
    )?;
    http.deadlines.body = span(
        flags.body_timeout,
        file.body_timeout,
        d.deadlines.body,
        "body_timeout",
    )?;
    http.deadlines.idle = span(
        flags.idle_timeout,
        file.idle_timeout,
        d.deadlines.idle,
        "idle_timeout",
    )?;
    Ok(http)
}

fn positive(zero: bool, key: &'static str) -> Result<(), SettingError> {
    if zero {
        Err(SettingError::Zero { key })
    } else {
        Ok(())
    }
}

/// A setting that is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A required setting given by no source.
    #[error(transparent)]
    Missing(#[from] MissingSetting),
    /// A limit or timeout of zero (it would refuse everything).
    #[error("{key} must be more than 0")]
    Zero {
        /// The config-file key.
        key: &'static str,
    },
}

/// A required setting given by no source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing {key}: pass --{flag} {value_name}, set {env}, or put `{key}` in the config file")]
pub struct MissingSetting {
    key: String,
    flag: String,
    value_name: String,
    env: String,
}

impl MissingSetting {
    /// The config-file `key` (e.g. `listen`) of `binary` is missing;
    /// `value_name` is how help shows its value (e.g. `ADDR:PORT`).
    pub fn new(binary: &str, key: &str, value_name: &str) -> Self {
        Self {
            key: key.to_owned(),
            flag: key.replace('_', "-"),
            value_name: value_name.to_owned(),
            env: env_var(binary, key),
        }
    }
}

/// The environment variable for `key` of `binary`:
/// `env_var("kith-mailboxd", "ready_file")` is `KITH_MAILBOXD_READY_FILE`.
pub fn env_var(binary: &str, key: &str) -> String {
    format!("{binary}_{key}").replace('-', "_").to_uppercase()
}

/// The default `--data` folder: `<platform data folder>/<binary>`
/// (`~/.local/share/kith-mailboxd` on Linux), or `./<binary>` without one.
pub fn default_data_dir(binary: &str) -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(binary)
}

/// The binary name without its `kith-` prefix: `mailboxd` for `kith-mailboxd`.
fn short_name(binary: &str) -> &str {
    binary.strip_prefix("kith-").unwrap_or(binary)
}

/// Checks an example config file against the config struct `T`: with every
/// commented-out `# key = value` line of a field of `T` switched on, it must
/// parse into `T` (so no unknown keys) and mention every field of `T`.
pub fn check_example<T: DeserializeOwned>(text: &str) -> Result<(), String> {
    let fields = field_names::<T>();
    let uncommented = uncomment_fields(text, fields);
    parse::<T>(&uncommented)?;
    let table: toml::Table = parse(&uncommented)?;
    let missing: Vec<_> = fields.iter().filter(|f| !table.contains_key(**f)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("the example does not mention {missing:?}"))
    }
}

/// The field names of a struct that derives `Deserialize`, as serde sees them.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The probe always answers with an error once it has seen the fields.
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

fn uncomment_fields(text: &str, fields: &[&str]) -> String {
    let uncomment = |line: &str| {
        let body = line.trim_start().strip_prefix('#')?.trim_start();
        let key = body.split('=').next()?.trim();
        fields.contains(&key).then(|| body.to_owned())
    };
    text.lines()
        .map(|line| uncomment(line).unwrap_or_else(|| line.to_owned()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_line(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            format!("line {}: {message}", before.matches('\n').count() + 1)
        }
        None => message,
    }
}

/// A serde deserializer that only records the field names it is asked for.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct ProbeDone;

impl fmt::Display for ProbeDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for ProbeDone {}

impl de::Error for ProbeDone {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        ProbeDone
    }
}

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = ProbeDone;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeDone> {
        Err(ProbeDone)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeDone> {
        *self.0 = fields;
        Err(ProbeDone)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        listen: Option<SocketAddr>,
        ready_file: Option<PathBuf>,
    }

    fn options(listen: Option<&str>, data: Option<&str>) -> CommonOptions {
        CommonOptions {
            listen: listen.map(|l| l.parse().expect("test address")),
            data: data.map(PathBuf::from),
            ..CommonOptions::default()
        }
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let flags = options(Some("127.0.0.1:1"), None);
        let file = options(Some("127.0.0.1:2"), Some("/srv/box"));
        let settings = CommonSettings::resolve("kith-mailboxd", flags, file).expect("resolves");
        assert_eq!(settings.listen.port(), 1);
        assert_eq!(settings.data, PathBuf::from("/srv/box"));
        assert_eq!(
            settings.database.to_string(),
            "sqlite:///srv/box/mailboxd.db"
        );
    }

    #[test]
    fn connection_settings_merge_and_refuse_zero() {
        let flags = CommonOptions {
            listen: Some("127.0.0.1:1".parse().expect("test address")),
            header_timeout: Some("300ms".parse().expect("span")),
            trusted_proxies: Some(vec!["10.0.0.0/8".parse().expect("net")]),
            ..CommonOptions::default()
        };
        let file = CommonOptions {
            header_timeout: Some(Span::from_secs(5)),
            max_connections: Some(7),
            ..CommonOptions::default()
        };
        let http = CommonSettings::resolve("kith-pushd", flags.clone(), file)
            .expect("resolves")
            .http;
        assert_eq!(http.deadlines.header, Duration::from_millis(300));
        assert_eq!(http.max_connections, 7);
        assert_eq!(http.deadlines.idle, HttpSettings::default().deadlines.idle);
        assert!(http.trusted_proxies.contains([10, 1, 2, 3].into()));
        let zero = CommonOptions {
            max_connections_per_address: Some(0),
            ..flags
        };
        let err = CommonSettings::resolve("kith-pushd", zero, CommonOptions::default())
            .expect_err("zero is refused");
        assert_eq!(
            err.to_string(),
            "max_connections_per_address must be more than 0"
        );
    }

    #[test]
    fn missing_listen_names_flag_env_and_key() {
        let err = CommonSettings::resolve("kith-pushd", options(None, None), options(None, None))
            .expect_err("listen is required");
        let msg = err.to_string();
        assert!(msg.contains("--listen ADDR:PORT"), "{msg}");
        assert!(msg.contains("KITH_PUSHD_LISTEN"), "{msg}");
        assert!(msg.contains("`listen`"), "{msg}");
    }

    #[test]
    fn env_var_names() {
        assert_eq!(env_var("kith-named", "domain"), "KITH_NAMED_DOMAIN");
        assert_eq!(
            env_var("kith-mailboxd", "ready_file"),
            "KITH_MAILBOXD_READY_FILE"
        );
    }

    #[test]
    fn unknown_key_is_one_line_with_its_line_number() {
        let err = parse::<Sample>("listen = \"127.0.0.1:1\"\ncolour = \"blue\"\n")
            .expect_err("unknown key");
        assert!(err.starts_with("line 2: unknown field `colour`"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn missing_file_is_a_read_error_naming_it() {
        let err = load_file::<Sample>(Some(Path::new("/nonexistent/kith.toml")))
            .expect_err("no such file");
        assert!(err.to_string().contains("/nonexistent/kith.toml"), "{err}");
    }

    #[test]
    fn no_file_gives_defaults() {
        assert_eq!(
            load_file::<Sample>(None).expect("default"),
            Sample::default()
        );
    }

    #[test]
    fn field_names_come_from_serde() {
        assert_eq!(field_names::<Sample>(), ["listen", "ready_file"]);
    }

    #[test]
    fn example_check_uncomments_and_finds_missing_fields() {
        let full = "listen = \"127.0.0.1:1\"\n# ready_file = \"/run/x\"\n";
        assert_eq!(check_example::<Sample>(full), Ok(()));
        let partial = "listen = \"127.0.0.1:1\"\n";
        let err = check_example::<Sample>(partial).expect_err("ready_file missing");
        assert!(err.contains("ready_file"), "{err}");
    }
}
