//! `kith mailbox`: opt in to (or out of) a mailbox server that keeps sealed
//! deposits for this account while all its devices are away.

use crate::rpc::Client;
use anyhow::Result;
use std::path::Path;

/// `kith mailbox` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Use the mailbox server at URL (`http(s)://HOST[:PORT]`); your
    /// devices and contacts learn it.
    Use {
        /// The server.
        url: String,
    },
    /// Stop using the mailbox: it is removed from its server and contacts
    /// stop depositing.
    Off,
    /// Show the mailbox in use and which contacts offer theirs.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith mailbox`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match args {
        Args::Use { url } => {
            let set = rt.block_on(client.mailbox_use(&url))?;
            println!(
                "using the mailbox at {} (mailbox {}); your devices and contacts follow",
                set.url,
                set.mailbox.unwrap_or_default()
            );
        }
        Args::Off => {
            let off = rt.block_on(client.mailbox_off())?;
            match (off.url, off.removed) {
                (None, _) => println!("no mailbox was in use"),
                (Some(url), true) => println!("stopped using {url}; the mailbox is removed"),
                (Some(url), false) => println!(
                    "stopped using {url}; it could not be reached, so what it holds expires there"
                ),
            }
        }
        Args::Status { json } => {
            let Some(status) = super::json_or(rt.block_on(client.mailbox_status())?, json)? else {
                return Ok(());
            };
            match status.url {
                Some(url) => println!("mailbox: {url}"),
                None => println!("mailbox: off"),
            }
            for c in status.contacts {
                println!("contact {} deposits at {}", c.contact, c.url);
            }
        }
    }
    Ok(())
}

/// `kith relay` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RelayArgs {
    /// Be reachable through the relay at URL (`http(s)://HOST[:PORT]`, a
    /// self-hosted iroh-relay); your devices and contacts learn it.
    Use {
        /// The relay.
        url: String,
        /// The relay's access token (added to the URL as token=T; your
        /// contacts learn it with the URL, so they can reach you through it).
        #[arg(long, env = "KITH_RELAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The SHA-256 of the relay's certificate (64 hex digits, added as
        /// pin=HEX): trusted for that host even if self-signed.
        #[arg(long)]
        pin: Option<String>,
        /// The UDP port of the relay's QUIC address discovery, if not 7842
        /// (added as quic=PORT).
        #[arg(long, value_name = "PORT")]
        quic_port: Option<u16>,
    },
    /// Stop using a relay.
    Off,
}

/// Runs `kith relay`.
pub fn run_relay(home: &Path, args: RelayArgs) -> Result<()> {
    let url = match args {
        RelayArgs::Use {
            url,
            token,
            pin,
            quic_port,
        } => Some(with_params(&url, token, pin, quic_port)),
        RelayArgs::Off => None,
    };
    let set = super::runtime()?.block_on(Client::new(home).relay(url.as_deref()))?;
    match set.relay {
        Some(url) => println!(
            "using the relay at {}; your devices and contacts follow",
            node_core::relay_tls::redacted(&url)
        ),
        None => println!("no relay in use"),
    }
    Ok(())
}

/// `kith lookup` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LookupArgs {
    /// Publish your devices' addresses in the Mainline DHT (signed by each
    /// device's key) and look devices up there when every known address
    /// fails; all your devices follow. The DHT then learns that your
    /// device ids are online and at which IP addresses: off by default.
    Dht {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// Runs `kith lookup`.
pub fn run_lookup(home: &Path, args: LookupArgs) -> Result<()> {
    let LookupArgs::Dht { state } = args;
    let set = super::runtime()?.block_on(Client::new(home).lookup_dht(state == "on"))?;
    if set.dht {
        println!("DHT lookup on: your devices publish their addresses there and look devices up");
    } else {
        println!("DHT lookup off");
    }
    Ok(())
}

/// The relay URL with the flags' parameters added to its query.
fn with_params(url: &str, token: Option<String>, pin: Option<String>, quic: Option<u16>) -> String {
    let extra: Vec<String> = [
        token.map(|t| format!("token={t}")),
        pin.map(|p| format!("pin={p}")),
        quic.map(|q| format!("quic={q}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if extra.is_empty() {
        return url.to_owned();
    }
    let (url, extra) = (url.trim_end_matches('/'), extra.join("&"));
    if url.contains('?') {
        format!("{url}&{extra}")
    } else {
        format!("{url}/?{extra}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relay_flags_become_url_parameters() {
        assert_eq!(
            super::with_params("http://h:1", None, None, None),
            "http://h:1"
        );
        assert_eq!(
            super::with_params("http://h:1/", Some("tok12345".into()), None, Some(9)),
            "http://h:1/?token=tok12345&quic=9"
        );
        assert_eq!(
            super::with_params("http://h:1/?token=tok12345", None, Some("ab".into()), None),
            "http://h:1/?token=tok12345&pin=ab"
        );
    }
}
