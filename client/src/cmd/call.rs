//! `kith call`: ring a contact's devices, answer, decline, hang up, and
//! see the calls on this device. The call itself runs in the daemon.

use crate::display::terminal_safe;
use crate::rpc::Client;
use anyhow::{Context, Result};
use kith_client::CallOptions;
use std::path::{Path, PathBuf};

/// `kith call` arguments: a TARGET to ring, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// The contact to call (account id, unique prefix, alias or name).
    pub target: Option<String>,
    /// Send video too.
    #[arg(long)]
    pub video: bool,
    /// Send this 48 kHz mono 16-bit WAV file instead of the microphone.
    #[arg(long, value_name = "WAV")]
    pub audio_in: Option<PathBuf>,
    /// Write what is heard to this WAV file (when the call ends) instead
    /// of the speaker.
    #[arg(long, value_name = "WAV")]
    pub audio_out: Option<PathBuf>,
    /// Send this Y4M file (4:2:0) instead of the camera (implies --video).
    #[arg(long, value_name = "Y4M")]
    pub video_in: Option<PathBuf>,
    /// Write the video shown to this Y4M file (30 frames a second).
    #[arg(long, value_name = "Y4M")]
    pub video_out: Option<PathBuf>,
    /// What to do with a call on this device.
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// `kith call …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Answer a ringing call on this device.
    Answer {
        /// The call (a unique prefix of its id); none: the one ringing.
        call: Option<String>,
        /// Send video too.
        #[arg(long)]
        video: bool,
        /// Send this 48 kHz mono 16-bit WAV file instead of the microphone.
        #[arg(long, value_name = "WAV")]
        audio_in: Option<PathBuf>,
        /// Write what is heard to this WAV file when the call ends.
        #[arg(long, value_name = "WAV")]
        audio_out: Option<PathBuf>,
        /// Send this Y4M file (4:2:0) instead of the camera (implies
        /// --video).
        #[arg(long, value_name = "Y4M")]
        video_in: Option<PathBuf>,
        /// Write the video shown to this Y4M file (30 frames a second).
        #[arg(long, value_name = "Y4M")]
        video_out: Option<PathBuf>,
        /// Answer even though the caller is marked compromised.
        #[arg(long)]
        anyway: bool,
    },
    /// Decline a ringing call (every own device stops ringing).
    Decline {
        /// The call; none: the one ringing.
        call: Option<String>,
    },
    /// Leave the call, or stop ringing the other side.
    Hangup {
        /// The call; none: the one going on.
        call: Option<String>,
    },
    /// Mute this device's sound in a call (the call goes on); in a room's
    /// call, a moderator mutes a member for everyone with `--member`.
    Mute {
        /// The call; none: the one going on.
        call: Option<String>,
        /// Unmute instead.
        #[arg(long)]
        off: bool,
        /// A member of the room (account id, prefix or contact name):
        /// everyone in the room's call stops hearing them, and their
        /// devices send silence (moderators and admins).
        #[arg(long)]
        member: Option<String>,
    },
    /// End a room's call for everyone (whoever started it, moderators and
    /// admins, or the last one in it).
    End {
        /// The room (id, prefix or name).
        room: String,
    },
    /// Remove a member from the room's call (moderators and admins): they
    /// are dropped and may not join the room's calls again.
    Remove {
        /// The member (account id, prefix or contact name).
        member: String,
        /// The call; none: the one going on.
        call: Option<String>,
    },
    /// Hand this device's side of the call to another own device (the
    /// call goes on there; the other side hears at most a short gap).
    Move {
        /// The own device to take the call (id, unique prefix or name).
        device: String,
        /// The call; none: the one going on.
        call: Option<String>,
    },
    /// Calls on this device.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kith call …`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let rt = super::runtime()?;
    let client = Client::new(home);
    match (args.action, args.target) {
        (
            Some(Action::Answer {
                call,
                video,
                audio_in,
                audio_out,
                video_in,
                video_out,
                anyway,
            }),
            _,
        ) => {
            let mut options = options(video, [audio_in, audio_out, video_in, video_out])?;
            options.anyway = anyway;
            rt.block_on(client.call_answer(call.as_deref(), &options))?;
        }
        (Some(Action::Decline { call }), _) => {
            rt.block_on(client.call_decline(call.as_deref()))?;
        }
        (Some(Action::Hangup { call }), _) => {
            rt.block_on(client.call_hangup(call.as_deref()))?;
        }
        (Some(Action::Mute { call, off, member }), _) => match member {
            Some(member) => {
                rt.block_on(client.call_mute_member(call.as_deref(), &member, !off))?;
            }
            None => {
                rt.block_on(client.call_mute(call.as_deref(), !off))?;
            }
        },
        (Some(Action::End { room }), _) => {
            rt.block_on(client.call_end(&room))?;
        }
        (Some(Action::Remove { member, call }), _) => {
            rt.block_on(client.call_remove(call.as_deref(), &member))?;
        }
        (Some(Action::Move { device, call }), _) => {
            rt.block_on(client.call_move(&device, call.as_deref()))?;
        }
        (Some(Action::Status { json }), _) => {
            let Some(calls) = super::json_or(rt.block_on(client.call_status())?, json)? else {
                return Ok(());
            };
            if calls.is_empty() {
                println!("no calls");
            }
            for c in calls {
                if c.compromised && c.state == "incoming" {
                    println!(
                        "WARNING: the caller below is marked compromised: answer only with --anyway"
                    );
                }
                let with = c.device.map(|d| format!(" with {}", &d[..d.len().min(12)]));
                println!(
                    "{}  {}  {}{}{}",
                    &c.id[..12],
                    &c.target[..c.target.len().min(12)],
                    c.state,
                    with.unwrap_or_default(),
                    c.ended
                        .map(|e| format!(" ({})", terminal_safe(&e)))
                        .unwrap_or_default()
                );
            }
        }
        (None, Some(target)) => {
            let files = [args.audio_in, args.audio_out, args.video_in, args.video_out];
            let options = options(args.video, files)?;
            println!("{}", rt.block_on(client.call_start(&target, &options))?.id);
        }
        (None, None) => {
            anyhow::bail!("say whom to call: `kith call TARGET` (or see `kith call --help`)")
        }
    }
    Ok(())
}

/// The call options, with the files' paths made absolute (the daemon
/// reads and writes them, from its own working folder).
fn options(video: bool, files: [Option<PathBuf>; 4]) -> Result<CallOptions> {
    let absolute = |p: PathBuf| -> Result<String> {
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir()
                .context("finding the current folder")?
                .join(p)
        };
        p.to_str()
            .map(str::to_owned)
            .context("the path is not valid UTF-8")
    };
    let [audio_in, audio_out, video_in, video_out] = files;
    Ok(CallOptions {
        video: video || video_in.is_some(),
        audio_in: audio_in.map(absolute).transpose()?,
        audio_out: audio_out.map(absolute).transpose()?,
        video_in: video_in.map(absolute).transpose()?,
        video_out: video_out.map(absolute).transpose()?,
        anyway: false,
    })
}
