//! `kith room`: group conversations without a hub (see `docs/rooms.md`).

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::Result;
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
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join a room from its link; waits until a member's device gave it.
    Join {
        /// The `kith:room/` link.
        uri: String,
        /// How long to wait for a member's device, in seconds.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        /// Print JSON (`{"id"}`).
        #[arg(long)]
        json: bool,
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
    let client = Client::new(home);
    match args {
        Args::Create { name, public, json } => {
            if let Some(made) =
                super::json_or(rt.block_on(client.room_create(&name, public))?, json)?
            {
                println!("{}", made.id);
            }
        }
        Args::Invite { room, contact } => {
            rt.block_on(client.room_invite(&room, &contact))?;
        }
        Args::Link { room, json } => {
            if let Some(link) = super::json_or(rt.block_on(client.room_link(&room))?, json)? {
                println!("{}", link.uri);
            }
        }
        Args::Join { uri, wait, json } => {
            if let Some(joined) = super::json_or(rt.block_on(client.room_join(&uri, wait))?, json)?
            {
                println!("{}", joined.id);
            }
        }
        Args::Members { room, json } => {
            let members = rt.block_on(client.room_members(&room))?;
            let Some(members) = super::json_or(members, json)? else {
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
            rt.block_on(client.room_role(&room, &account, &role))?;
        }
        Args::Kick { room, account } => {
            rt.block_on(client.room_kick(&room, &account, false))?;
        }
        Args::Ban { room, account } => {
            rt.block_on(client.room_kick(&room, &account, true))?;
        }
        Args::Leave { room } => {
            rt.block_on(client.room_leave(&room))?;
        }
        Args::Name { room, name } => {
            rt.block_on(client.room_set(&room, false, &name))?;
        }
        Args::Topic { room, topic } => {
            rt.block_on(client.room_set(&room, true, &topic))?;
        }
        Args::History {
            room,
            confirmations,
            trust,
            json,
        } => {
            let history =
                rt.block_on(client.room_history(&room, confirmations, trust.as_deref()))?;
            let Some(h) = super::json_or(history, json)? else {
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
            let Some(held) = super::json_or(rt.block_on(client.room_held(&room))?, json)? else {
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
            rt.block_on(client.room_confirm(&room, &event))?;
        }
        Args::List { json } => {
            let Some(rooms) = super::json_or(rt.block_on(client.room_list())?, json)? else {
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
