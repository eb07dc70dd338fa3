//! `kith room`: group conversations without a hub (see `docs/rooms.md`).

use crate::display::terminal_safe;
use crate::rpc::{self, Request};
use anyhow::{Context, Result};
use node_core::node::rooms::{HeldInfo, HistoryInfo, MemberInfo, RoomInfo};
use std::path::Path;

/// `kith room` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Make a room; this account is its creator (admin, for good).
    Create {
        /// The room's name.
        name: String,
        /// Anyone with the room's link may join.
        #[arg(long)]
        public: bool,
    },
    /// Invite a contact (its devices join the room).
    Invite {
        /// Room: id, unique prefix or name.
        room: String,
        /// Contact: account id, unique prefix, alias or name.
        contact: String,
    },
    /// A `kith:room/` link anyone can join a public room with.
    Link {
        /// Room.
        room: String,
    },
    /// Join a room from its link; waits until a member's device gave it.
    Join {
        /// The `kith:room/` link.
        uri: String,
        /// How long to wait for a member's device, in seconds.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Members and their roles.
    Members {
        /// Room.
        room: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a member's role: admin, moderator or member.
    Role {
        /// Room.
        room: String,
        /// The member: account id, unique prefix, or a contact's name.
        account: String,
        /// `admin`, `moderator` or `member`.
        role: String,
    },
    /// Remove a member (moderators and admins, on members below them).
    Kick {
        /// Room.
        room: String,
        /// The member.
        account: String,
    },
    /// Remove a member and keep them out.
    Ban {
        /// Room.
        room: String,
        /// The member.
        account: String,
    },
    /// Leave a room.
    Leave {
        /// Room.
        room: String,
    },
    /// Rename a room (moderators and admins).
    Name {
        /// Room.
        room: String,
        /// The new name.
        name: String,
    },
    /// Set a room's topic (moderators and admins).
    Topic {
        /// Room.
        room: String,
        /// The topic.
        topic: String,
    },
    /// How history that arrives late is released; with options, change
    /// it (admins).
    History {
        /// Room.
        room: String,
        /// How many other members must cite a late event to release it
        /// (1 to 32).
        #[arg(long)]
        confirmations: Option<u8>,
        /// Whose citations release it: `auto` (members', until the room is
        /// public or has more than 50 members), `members` or `admins`.
        #[arg(long)]
        trust: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Events held as arrived late (not shown until confirmed).
    Held {
        /// Room.
        room: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Confirm an event held as arrived late (moderators and admins): it is
    /// shown in its place on every device.
    Confirm {
        /// Room.
        room: String,
        /// The held event: id or unique prefix.
        event: String,
    },
    /// Rooms this device holds.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith room …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let call = |req: Request| rt.block_on(rpc::call(home, &req));
    let id = |v: serde_json::Value| -> Result<String> {
        Ok(v["id"]
            .as_str()
            .context("the daemon's answer has no id")?
            .to_owned())
    };
    match args {
        Args::Create { name, public } => {
            println!("{}", id(call(Request::RoomCreate { name, public })?)?)
        }
        Args::Invite { room, contact } => {
            call(Request::RoomInvite { room, contact })?;
        }
        Args::Link { room } => {
            let v = call(Request::RoomLink { room })?;
            println!(
                "{}",
                v["uri"]
                    .as_str()
                    .context("the daemon's answer has no link")?
            );
        }
        Args::Join { uri, wait } => println!(
            "{}",
            id(call(Request::RoomJoin {
                uri,
                wait_secs: wait
            })?)?
        ),
        Args::Members { room, json } => {
            let v = call(Request::RoomMembers { room })?;
            let Some(members) = super::json_or::<Vec<MemberInfo>>(v, json, "member list")? else {
                return Ok(());
            };
            for m in members {
                let invited = if m.membership == "invite" {
                    " (invited)"
                } else {
                    ""
                };
                println!(
                    "{} {:<9} {}{invited}",
                    m.account,
                    m.role,
                    terminal_safe(m.name.as_deref().unwrap_or_default())
                );
            }
        }
        Args::Role {
            room,
            account,
            role,
        } => {
            call(Request::RoomRole {
                room,
                account,
                role,
            })?;
        }
        Args::Kick { room, account } => {
            call(Request::RoomKick {
                room,
                account,
                ban: false,
            })?;
        }
        Args::Ban { room, account } => {
            call(Request::RoomKick {
                room,
                account,
                ban: true,
            })?;
        }
        Args::Leave { room } => {
            call(Request::RoomLeave { room })?;
        }
        Args::Name { room, name } => {
            call(Request::RoomSet {
                room,
                topic: false,
                text: name,
            })?;
        }
        Args::Topic { room, topic } => {
            call(Request::RoomSet {
                room,
                topic: true,
                text: topic,
            })?;
        }
        Args::History {
            room,
            confirmations,
            trust,
            json,
        } => {
            let v = call(Request::RoomHistory {
                room,
                confirmations,
                trust,
            })?;
            let Some(h) = super::json_or::<HistoryInfo>(v, json, "answer")? else {
                return Ok(());
            };
            let whose = if h.admin_trusted {
                "moderators' and admins' citations only (admin-trusted)".to_owned()
            } else {
                format!(
                    "{} other members' citations, or one moderator's",
                    h.confirmations
                )
            };
            println!(
                "late history is released by {whose}; trust {}; {} held",
                h.trust, h.held
            );
        }
        Args::Held { room, json } => {
            let v = call(Request::RoomHeld { room })?;
            let Some(held) = super::json_or::<Vec<HeldInfo>>(v, json, "answer")? else {
                return Ok(());
            };
            for h in held {
                println!(
                    "{} {} depth {} of {} ({}): {}",
                    h.id,
                    h.author.short(12),
                    h.depth,
                    h.head_depth,
                    h.kind,
                    terminal_safe(&h.text)
                );
            }
        }
        Args::Confirm { room, event } => {
            call(Request::RoomConfirm { room, event })?;
        }
        Args::List { json } => {
            let v = call(Request::RoomList)?;
            let Some(rooms) = super::json_or::<Vec<RoomInfo>>(v, json, "room list")? else {
                return Ok(());
            };
            for r in rooms {
                let kind = if r.public { "public" } else { "private" };
                println!(
                    "{} {} ({kind}, {} members, {})",
                    r.id,
                    terminal_safe(&r.name),
                    r.members,
                    r.membership
                );
            }
        }
    }
    Ok(())
}
