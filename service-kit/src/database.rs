//! The `--database` value: where a server keeps its state.
//!
//! `sqlite://PATH` (zero set-up, the default) or `postgres://…` /
//! `postgresql://…` (several stateless instances sharing one database).
//! Anything else is refused when the flag or config file is read, not when
//! the server first touches its store.
//!
//! [`open_pool`] opens either through sqlx's `Any` driver and runs the
//! server's migrations, so each server keeps one set of queries for both.
//! A PostgreSQL URL may carry a password, so `Display` and `Debug` redact it;
//! only [`DatabaseUrl::connect_string`] gives the full URL, for the driver.
//!
//! Not here: any server's tables or queries.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use std::sync::Once;

use anyhow::Context as _;
use serde::Deserialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

static DRIVERS: Once = Once::new();

/// Opens the database at `url` (creating an SQLite file and its folder if
/// needed) and runs the migrations for its backend. SQLite connections wait
/// up to 5 s for a lock and use WAL with `synchronous = NORMAL`.
pub async fn open_pool(
    url: &DatabaseUrl,
    sqlite: &'static Migrator,
    postgres: &'static Migrator,
) -> anyhow::Result<AnyPool> {
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let (pool, migrations) = match url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in [
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .with_context(|| format!("opening {url}"))?;
            (pool, sqlite)
        }
        DatabaseUrl::Postgres(_) => {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .connect(&url.connect_string())
                .await
                .with_context(|| format!("connecting to {url}"))?;
            (pool, postgres)
        }
    };
    migrations
        .run(&pool)
        .await
        .with_context(|| format!("migrating {url}"))?;
    Ok(pool)
}

/// A parsed database location.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DatabaseUrl {
    /// An SQLite file (`sqlite://PATH`; `sqlite:///abs/path` for an absolute one).
    Sqlite(PathBuf),
    /// A PostgreSQL server, as given (`postgres://USER:PASSWORD@HOST/DB`).
    Postgres(String),
}

/// Why a `--database` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    /// Not of the form `SCHEME://…`.
    #[error("not a database URL: expected {EXPECTED}")]
    NotAUrl,
    /// A scheme other than sqlite, postgres or postgresql.
    #[error("unsupported database scheme `{0}`: expected {EXPECTED}")]
    UnsupportedScheme(String),
    /// `sqlite://` with no path.
    #[error("`sqlite://` needs a file path, e.g. sqlite:///var/lib/kith/server.db")]
    MissingPath,
    /// `postgres://` with nothing after it.
    #[error("`{0}://` needs a host, e.g. postgres://kith@localhost/kith")]
    MissingHost(String),
}

const EXPECTED: &str = "sqlite://PATH or postgres://USER@HOST/DB";

impl DatabaseUrl {
    /// The default: the SQLite file `<data>/<name>.db`.
    pub fn sqlite_in(data: &Path, name: &str) -> Self {
        Self::Sqlite(data.join(format!("{name}.db")))
    }

    /// The full URL, password included, for handing to the database driver.
    /// Never log this; log the value itself (it redacts).
    pub fn connect_string(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => url.clone(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s.split_once("://").ok_or(DatabaseUrlError::NotAUrl)?;
        match scheme {
            "sqlite" if rest.is_empty() => Err(DatabaseUrlError::MissingPath),
            "sqlite" => Ok(Self::Sqlite(PathBuf::from(rest))),
            "postgres" | "postgresql" if rest.is_empty() => {
                Err(DatabaseUrlError::MissingHost(scheme.to_owned()))
            }
            "postgres" | "postgresql" => Ok(Self::Postgres(s.to_owned())),
            _ if is_scheme(scheme) => Err(DatabaseUrlError::UnsupportedScheme(scheme.to_owned())),
            _ => Err(DatabaseUrlError::NotAUrl),
        }
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = DatabaseUrlError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Shows the URL with any password and query string replaced by `***`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// `postgres://u:secret@h/db?password=x` → `postgres://u:***@h/db?***`.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?***"),
        None => (rest, ""),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        s.parse()
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            parse("sqlite:///var/lib/x.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/x.db".into()))
        );
        assert_eq!(
            parse("sqlite://x.db"),
            Ok(DatabaseUrl::Sqlite("x.db".into()))
        );
        assert_eq!(parse("sqlite://"), Err(DatabaseUrlError::MissingPath));
    }

    #[test]
    fn postgres_both_spellings() {
        for url in ["postgres://kith@db/kith", "postgresql://kith@db/kith"] {
            assert_eq!(parse(url), Ok(DatabaseUrl::Postgres(url.to_owned())));
        }
        assert_eq!(
            parse("postgres://"),
            Err(DatabaseUrlError::MissingHost("postgres".into()))
        );
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        let err = parse("ftp://x").expect_err("ftp is not a database");
        assert_eq!(err, DatabaseUrlError::UnsupportedScheme("ftp".into()));
        assert!(
            err.to_string().contains("sqlite://PATH or postgres://"),
            "{err}"
        );
        assert_eq!(
            parse("mysql://root:pw@h/db"),
            Err(DatabaseUrlError::UnsupportedScheme("mysql".into()))
        );
    }

    #[test]
    fn non_urls_are_refused() {
        assert_eq!(parse("/var/lib/x.db"), Err(DatabaseUrlError::NotAUrl));
        assert_eq!(parse("pass:word@x://y"), Err(DatabaseUrlError::NotAUrl));
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let url = parse("postgres://kith:hunter2@db:5432/kith?sslpassword=x").expect("valid");
        assert_eq!(url.to_string(), "postgres://kith:***@db:5432/kith?***");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.connect_string().contains("hunter2"));
    }

    #[test]
    fn default_is_a_file_in_the_data_folder() {
        let url = DatabaseUrl::sqlite_in(Path::new("/srv/kith"), "pushd");
        assert_eq!(url.connect_string(), "sqlite:///srv/kith/pushd.db");
    }
}
