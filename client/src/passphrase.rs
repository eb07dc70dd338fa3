//! Where the passphrase comes from: `KITH_PASSPHRASE`, a file
//! (`KITH_PASSPHRASE_FILE`, a systemd credential), a pipe from the
//! terminal UI (`KITH_PASSPHRASE_STDIN`), else the terminal.

use anyhow::{Context, Result, bail};
use node_core::store::Passphrase;
use std::io::IsTerminal;

/// The environment variable that carries the passphrase for scripts.
pub const ENV: &str = "KITH_PASSPHRASE";

/// Set (to anything) by the terminal UI when it starts a daemon: the
/// passphrase is the first line on standard input (a pipe), so it is in
/// neither the daemon's environment nor its arguments.
pub const ENV_STDIN: &str = "KITH_PASSPHRASE_STDIN";

/// A file holding the passphrase (a systemd credential: decrypted into
/// memory only the service can read; see `deploy/user/kith.service`).
pub const ENV_FILE: &str = "KITH_PASSPHRASE_FILE";

/// The passphrase to unlock an existing profile.
pub fn unlock() -> Result<Passphrase> {
    if let Ok(p) = std::env::var(ENV) {
        return Ok(Passphrase::new(p));
    }
    if let Some(path) = std::env::var_os(ENV_FILE) {
        let mut text = zeroize::Zeroizing::new(String::with_capacity(4096));
        std::fs::File::open(&path)
            .and_then(|f| {
                use std::io::Read;
                f.take(4096).read_to_string(&mut text)
            })
            .with_context(|| format!("reading the passphrase from {ENV_FILE}"))?;
        let p = text.trim_end_matches(['\r', '\n']);
        return Ok(Passphrase::new(p.to_owned()));
    }
    if std::env::var_os(ENV_STDIN).is_some() {
        use std::io::{BufRead, Read};
        // Sized once: a growing buffer would leave unwiped copies.
        let mut line = zeroize::Zeroizing::new(String::with_capacity(4096));
        std::io::stdin()
            .lock()
            .take(4096)
            .read_line(&mut line)
            .context("reading the passphrase from standard input")?;
        let p = line.trim_end_matches(['\r', '\n']);
        return Ok(Passphrase::new(p.to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("this profile needs its passphrase: set {ENV} or run in a terminal");
    }
    let p = rpassword::prompt_password("passphrase: ").context("reading the passphrase")?;
    Ok(Passphrase::new(p))
}

/// A new passphrase (asked twice on a terminal).
pub fn choose() -> Result<Passphrase> {
    let first = match std::env::var(ENV) {
        Ok(p) => p,
        Err(_) => {
            if !std::io::stdin().is_terminal() {
                bail!("no passphrase: set {ENV}, run in a terminal, or use --no-passphrase");
            }
            let a =
                rpassword::prompt_password("new passphrase: ").context("reading the passphrase")?;
            let b = rpassword::prompt_password("again: ").context("reading the passphrase")?;
            if a != b {
                bail!("the two passphrases differ");
            }
            a
        }
    };
    if first.is_empty() {
        bail!("empty passphrase: choose one, or use --no-passphrase for an unprotected profile");
    }
    Ok(Passphrase::new(first))
}
