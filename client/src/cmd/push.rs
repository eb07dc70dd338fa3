//! `kith push`: register this device with a push relay, so contacts can
//! wake it when it is not reachable (see `docs/push.md`).

use crate::rpc::Client;
use anyhow::{Result, bail};
use std::path::Path;

/// `kith push` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Register this device with the push relay at URL for one platform
    /// target (from the phone's push service); contacts learn how to wake it.
    Use {
        /// The relay, `https://HOST[:PORT]`.
        url: String,
        /// An FCM registration token.
        #[arg(long, conflicts_with_all = ["apns", "webpush"])]
        fcm: Option<String>,
        /// An APNs device token (hex).
        #[arg(long, conflicts_with_all = ["fcm", "webpush"])]
        apns: Option<String>,
        /// A WebPush / UnifiedPush endpoint (with --p256dh and --auth).
        #[arg(long, requires_all = ["p256dh", "auth"])]
        webpush: Option<String>,
        /// The subscription's P-256 public key (base64url).
        #[arg(long, requires = "webpush")]
        p256dh: Option<String>,
        /// The subscription's auth secret (base64url).
        #[arg(long, requires = "webpush")]
        auth: Option<String>,
    },
    /// Unregister this device; contacts stop waking it.
    Off,
    /// Show the relay in use and which contact devices can be woken.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith push …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match args {
        Args::Use {
            url,
            fcm,
            apns,
            webpush,
            p256dh,
            auth,
        } => {
            let target = match (fcm, apns, webpush, p256dh, auth) {
                (Some(token), None, None, _, _) => {
                    serde_json::json!({ "platform": "fcm", "token": token })
                }
                (None, Some(token), None, _, _) => {
                    serde_json::json!({ "platform": "apns", "token": token })
                }
                (None, None, Some(endpoint), Some(p256dh), Some(auth)) => serde_json::json!({
                    "platform": "webpush", "endpoint": endpoint, "p256dh": p256dh, "auth": auth,
                }),
                _ => bail!(
                    "say what to push to: --fcm TOKEN, --apns TOKEN, or --webpush ENDPOINT --p256dh KEY --auth SECRET (from the phone's push service)"
                ),
            };
            let set = rt.block_on(client.push_use(&url, target))?;
            println!(
                "registered with the push relay at {}; contacts learn how to wake this device",
                set.url
            );
        }
        Args::Off => {
            let off = rt.block_on(client.push_off())?;
            match (off.url, off.removed) {
                (None, _) => println!("no push relay was in use"),
                (Some(url), true) => println!("unregistered from {url}"),
                (Some(url), false) => {
                    println!("stopped using {url}; it could not be reached to unregister")
                }
            }
        }
        Args::Status { json } => {
            let Some(status) = super::json_or(rt.block_on(client.push_status())?, json)? else {
                return Ok(());
            };
            match status.url {
                Some(url) => println!(
                    "push relay: {url} ({})",
                    if status.registered {
                        "registered"
                    } else {
                        "not registered yet"
                    }
                ),
                None => println!("push relay: off"),
            }
            for c in status.contacts {
                println!(
                    "can wake {} (device {}) through {}",
                    c.contact, c.device, c.url
                );
            }
        }
    }
    Ok(())
}
