//! `kith contact`: add and list contacts.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::Result;
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
        /// Print JSON (`{"id"}`).
        #[arg(long)]
        json: bool,
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
    /// Requests from people who added you and are not contacts yet: who
    /// asks, how they say they found you, and their first messages.
    Requests {
        /// Print JSON (`[{"id","name","how","time","messages"}]`).
        #[arg(long)]
        json: bool,
    },
    /// Accept a request: the requester becomes a contact (unvalidated).
    Accept {
        /// The request: the requester's id, or a prefix of at least 12
        /// characters (as `contact requests` shows it).
        id: String,
    },
    /// Decline a request, on all your devices (the requester is not told).
    Decline {
        /// The request.
        id: String,
    },
    /// Block the requester: its request, further requests, links and
    /// introductions are refused, on all your devices.
    Block {
        /// The request.
        id: String,
    },
    /// Send a contact's card to another contact (it arrives unvalidated,
    /// naming you as the introducer).
    Share {
        /// The contact to introduce.
        contact: String,
        /// The contact to send it to.
        #[arg(long)]
        with: String,
        /// Print JSON (`{"id"}`).
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith contact …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match args {
        Args::Add {
            card,
            alias,
            nameserver,
            json,
        } => {
            let (card, handle) = if is_handle(&card) {
                let handle = super::name::parse(&card)?;
                let found = rt.block_on(async {
                    let finder = crate::names::Finder::from_env()?;
                    finder.find(&handle, &nameserver).await
                })?;
                super::name::report_silent(&found.silent);
                (found.card, Some(handle.to_string()))
            } else {
                if !nameserver.is_empty() {
                    anyhow::bail!("--nameserver is for adding by name@domain, not by card");
                }
                (card, None)
            };
            let added =
                rt.block_on(client.contact_add_found(&card, alias.as_deref(), handle.as_deref()))?;
            if let Some(added) = super::json_or(added, json)? {
                println!("{}", added.id);
            }
        }
        Args::List { json } => {
            let Some(contacts) = super::json_or(rt.block_on(client.contact_list())?, json)? else {
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
            let number = rt.block_on(client.safety_number(&contact))?;
            let Some(number) = super::json_or(number, json)? else {
                return Ok(());
            };
            println!("{}", number.grouped);
            if qr {
                let digits = &number.digits;
                println!(
                    "{}",
                    node_core::identity::card::qr_terminal(&format!("KITH:SAFETY/{digits}"))?
                );
            }
        }
        Args::Verify { contact, number } => {
            let number = number.join(" ");
            rt.block_on(client.contact_verify(&contact, &number))?;
            println!("validated: the safety numbers match");
        }
        Args::Trust { contact, state } => {
            let set = rt.block_on(client.contact_trust(&contact, &state))?;
            println!("trust is now {}", set.trust);
        }
        Args::Requests { json } => {
            let Some(requests) = super::json_or(rt.block_on(client.contact_requests())?, json)?
            else {
                return Ok(());
            };
            if requests.is_empty() {
                println!("no contact requests");
            }
            for r in &requests {
                print_request(r);
            }
            if !requests.is_empty() {
                println!(
                    "answer with `kith contact accept ID`, `kith contact decline ID` or `kith contact block ID`"
                );
            }
        }
        Args::Accept { id } => {
            let done = rt.block_on(client.contact_answer(&id, "accept"))?;
            println!(
                "{} is a contact now (unvalidated: compare safety numbers to validate)",
                done.id.short(12)
            );
        }
        Args::Decline { id } => {
            let done = rt.block_on(client.contact_answer(&id, "decline"))?;
            println!("declined the request from {}", done.id.short(12));
        }
        Args::Block { id } => {
            let done = rt.block_on(client.contact_answer(&id, "block"))?;
            println!("blocked {} on all your devices", done.id.short(12));
        }
        Args::Share {
            contact,
            with,
            json,
        } => {
            let shared = rt.block_on(client.contact_share(&contact, &with))?;
            if let Some(shared) = super::json_or(shared, json)? {
                println!("{}", shared.id);
            }
        }
    }
    Ok(())
}

/// Prints one request: every text in it is the stranger's, so made safe
/// for the terminal, and every claim in it is shown as a claim.
fn print_request(r: &kith_client::RequestInfo) {
    let how = crate::display::request_how(r);
    println!(
        "{}  {}  {how}  ({})",
        r.id.short(12),
        terminal_safe(&r.name),
        r.time
    );
    if let Some(like) = r.resembles {
        println!(
            "    careful: a different account from your contact with that name ({})",
            like.short(12)
        );
    }
    for m in &r.messages {
        println!("    > {}", terminal_safe(m));
    }
}

/// Whether `text` is a `name@domain` handle rather than a `kith:` card.
fn is_handle(text: &str) -> bool {
    let text = text.trim();
    !text.to_ascii_lowercase().starts_with("kith:") && text.contains('@')
}
