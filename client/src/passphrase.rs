//! Where the passphrase comes from: `KITH_PASSPHRASE`, else the terminal.

use anyhow::{Context, Result, bail};
use node_core::store::Passphrase;
use std::io::IsTerminal;

/// The environment variable that carries the passphrase for scripts.
pub const ENV: &str = "KITH_PASSPHRASE";

/// The passphrase to unlock an existing profile.
pub fn unlock() -> Result<Passphrase> {
    if let Ok(p) = std::env::var(ENV) {
        return Ok(Passphrase::new(p));
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
