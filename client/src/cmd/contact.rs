//! `kith contact`: add and list contacts.

use crate::display::terminal_safe;
use crate::rpc::{self, Request};
use anyhow::{Context, Result};
use node_core::node::contacts::ContactInfo;
use std::path::Path;

/// `kith contact` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Add a contact from its `kith:` card, or by `name@domain` (found
    /// through the domain's nameserver; the answer is checked and the
    /// contact stays unvalidated until you compare safety numbers).
    Add {
        /// The card URI or handle.
        card: String,
        /// A local name for the contact.
        #[arg(long)]
        alias: Option<String>,
        /// Ask these nameservers for a handle instead of finding the
        /// domain's (repeatable; answers are cross-checked).
        #[arg(long)]
        nameserver: Vec<String>,
    },
    /// List contacts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the safety number to compare with the contact over another
    /// channel (in person, a call): the same on both sides.
    SafetyNumber {
        /// Contact (id, prefix, alias or name).
        contact: String,
        /// Also show it as a QR code the other side can scan.
        #[arg(long)]
        qr: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark the contact validated if NUMBER is the safety number (else
    /// nothing changes).
    Verify {
        /// Contact.
        contact: String,
        /// The 60 digits the contact reads out (spaces allowed).
        #[arg(num_args = 1.., required = true)]
        number: Vec<String>,
    },
    /// Set the trust state by hand: unvalidated, validated or compromised.
    Trust {
        /// Contact.
        contact: String,
        /// The state.
        state: String,
    },
    /// Send a contact's card to another contact (it arrives unvalidated,
    /// naming you as the introducer).
    Share {
        /// The contact to introduce.
        contact: String,
        /// The contact to send it to.
        #[arg(long)]
        with: String,
    },
}

/// Runs `kith contact …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    match args {
        Args::Add {
            card,
            alias,
            nameserver,
        } => {
            let card = if is_handle(&card) {
                let handle = super::name::parse(&card)?;
                let found = rt.block_on(async {
                    let finder = crate::names::Finder::from_env()?;
                    finder.find(&handle, &nameserver).await
                })?;
                super::name::report_silent(&found.silent);
                found.card
            } else {
                if !nameserver.is_empty() {
                    anyhow::bail!("--nameserver is for adding by name@domain, not by card");
                }
                card
            };
            let v = rt.block_on(rpc::call(home, &Request::ContactAdd { card, alias }))?;
            println!(
                "{}",
                v["id"].as_str().context("the daemon's answer has no id")?
            );
        }
        Args::List { json } => {
            let v = rt.block_on(rpc::call(home, &Request::ContactList))?;
            let Some(contacts) = super::json_or::<Vec<ContactInfo>>(v, json, "list")? else {
                return Ok(());
            };
            let unvalidated = contacts.iter().filter(|c| c.trust == "unvalidated").count();
            for c in contacts {
                let alias = c
                    .alias
                    .map(|a| format!(" ({})", terminal_safe(&a)))
                    .unwrap_or_default();
                let name = terminal_safe(&c.name);
                if c.trust == "compromised" {
                    println!(
                        "!! {name} is COMPROMISED: {}",
                        terminal_safe(c.trust_reason.as_deref().unwrap_or("marked by hand"))
                    );
                }
                println!(
                    "{}  {name}{alias}  [{}]  {} device(s)",
                    c.id.short(12),
                    c.trust,
                    c.devices.len()
                );
                if !c.new_devices.is_empty() {
                    println!(
                        "   notice: {} device(s) added since you validated (signed by its other devices; still validated)",
                        c.new_devices.len()
                    );
                }
            }
            if unvalidated > 0 {
                println!(
                    "{unvalidated} contact(s) not validated yet: compare safety numbers with `kith contact safety-number CONTACT`"
                );
            }
        }
        Args::SafetyNumber { contact, qr, json } => {
            let v = rt.block_on(rpc::call(home, &Request::ContactSafetyNumber { contact }))?;
            if json {
                println!("{v}");
                return Ok(());
            }
            let grouped = v["grouped"]
                .as_str()
                .context("the daemon's answer has no number")?;
            println!("{grouped}");
            if qr {
                let digits = v["digits"]
                    .as_str()
                    .context("the daemon's answer has no number")?;
                println!(
                    "{}",
                    node_core::identity::card::qr_terminal(&format!("KITH:SAFETY/{digits}"))?
                );
            }
        }
        Args::Verify { contact, number } => {
            let number = number.join(" ");
            rt.block_on(rpc::call(home, &Request::ContactVerify { contact, number }))?;
            println!("validated: the safety numbers match");
        }
        Args::Trust { contact, state } => {
            let v = rt.block_on(rpc::call(home, &Request::ContactTrust { contact, state }))?;
            println!("trust is now {}", v["trust"].as_str().unwrap_or("?"));
        }
        Args::Share { contact, with } => {
            let v = rt.block_on(rpc::call(home, &Request::ContactShare { contact, with }))?;
            println!(
                "{}",
                v["id"].as_str().context("the daemon's answer has no id")?
            );
        }
    }
    Ok(())
}

/// Whether `text` is a `name@domain` handle rather than a `kith:` card.
fn is_handle(text: &str) -> bool {
    let text = text.trim();
    !text.to_ascii_lowercase().starts_with("kith:") && text.contains('@')
}
