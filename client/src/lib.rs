//! The kith client: `kith daemon` owns the node; every other command is a
//! client of the daemon's local socket (see [`rpc`]).
//!
//! Not here: protocol logic (in `node_core`), and the helper servers.

#![warn(missing_docs)]

pub mod cmd;
pub mod daemon;
pub mod display;
pub mod http;
pub mod names;
pub mod passphrase;
pub mod rpc;
pub mod tui;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// kith: peer-to-peer, end-to-end encrypted messaging.
#[derive(Debug, Parser)]
#[command(name = "kith", version, about, propagate_version = true)]
pub struct Cli {
    /// Profile folder (default: the platform data folder, e.g. ~/.local/share/kith).
    #[arg(long, global = true, env = "KITH_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// What to do (none, in a terminal: the terminal UI).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new device and a new account in an empty profile.
    Init(cmd::init::Args),
    /// Run the node in the foreground until SIGINT/SIGTERM.
    Daemon(cmd::daemon::Args),
    /// Show the daemon's state.
    Status(cmd::status::Args),
    /// Show this account's contact card.
    Card(cmd::card::Args),
    /// Add and list contacts.
    #[command(subcommand)]
    Contact(cmd::contact::Args),
    /// Queue a message to a contact or room (never waits for the peer).
    Send(cmd::send::Args),
    /// Show a conversation in display order.
    Log(cmd::log::Args),
    /// Find messages in a conversation or room by their text.
    Search(cmd::log::SearchArgs),
    /// Mute (or, with --off, unmute) a conversation's notifications on all own devices.
    Mute(cmd::log::MuteArgs),
    /// This account's devices: invite a new one, list, revoke.
    #[command(subcommand)]
    Device(cmd::device::Args),
    /// Delete messages (or a whole conversation) on all own devices.
    Delete(cmd::delete::Args),
    /// Offer, list, watch and save files.
    #[command(subcommand)]
    File(cmd::file::Args),
    /// Use a mailbox server for when all your devices are away.
    #[command(subcommand)]
    Mailbox(cmd::mailbox::Args),
    /// Publish this account under a `name@domain` handle on a nameserver.
    #[command(subcommand)]
    Name(cmd::name::Args),
    /// Let contacts wake this device through a push relay.
    #[command(subcommand)]
    Push(cmd::push::Args),
    /// Calls: ring a contact's devices, answer, decline, hang up.
    Call(cmd::call::Args),
    /// Rooms: group conversations without a hub.
    #[command(subcommand)]
    Room(cmd::room::Args),
    /// Bridges: reach another network (XMPP) through one of your devices.
    #[command(subcommand)]
    Bridge(cmd::bridge::Args),
    /// Use a relay for reaching devices behind NATs.
    #[command(subcommand)]
    Relay(cmd::mailbox::RelayArgs),
    /// Address lookup without servers: `kith lookup dht on|off`.
    #[command(subcommand)]
    Lookup(cmd::mailbox::LookupArgs),
    /// The terminal UI (also what `kith` alone starts in a terminal).
    Tui,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::shell::CompletionsArgs),
    /// Print the manual page, or write one per command with `--out DIR`.
    Man(cmd::shell::ManArgs),
}

/// Runs the command line; prints one clear line on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // These need no profile.
    match &cli.command {
        Some(Command::Completions(args)) => return finish(cmd::shell::completions(args)),
        Some(Command::Man(args)) => return finish(cmd::shell::man(args)),
        _ => {}
    }
    let home = match cli.home.clone().or_else(default_home) {
        Some(h) => h,
        None => {
            return fail(anyhow::anyhow!(
                "no profile folder: give --home DIR or set KITH_HOME"
            ));
        }
    };
    let Some(command) = cli.command else {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            return match tui::run(&home) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            };
        }
        eprintln!(
            "kith: give a command (see `kith --help`); alone in a terminal, kith starts its UI"
        );
        return ExitCode::from(2);
    };
    let result = match command {
        Command::Init(args) => cmd::init::run(&home, args),
        Command::Daemon(args) => cmd::daemon::run(&home, args),
        Command::Status(args) => cmd::status::run(&home, args),
        Command::Card(args) => cmd::card::run(&home, args),
        Command::Contact(args) => cmd::contact::run(&home, args),
        Command::Send(args) => cmd::send::run(&home, args),
        Command::Log(args) => cmd::log::run(&home, args),
        Command::Search(args) => cmd::log::search(&home, args),
        Command::Mute(args) => cmd::log::mute(&home, args),
        Command::Device(args) => cmd::device::run(&home, args),
        Command::Delete(args) => cmd::delete::run(&home, args),
        Command::File(args) => cmd::file::run(&home, args),
        Command::Mailbox(args) => cmd::mailbox::run(&home, args),
        Command::Name(args) => cmd::name::run(&home, args),
        Command::Push(args) => cmd::push::run(&home, args),
        Command::Room(args) => cmd::room::run(&home, args),
        Command::Call(args) => cmd::call::run(&home, args),
        Command::Relay(args) => cmd::mailbox::run_relay(&home, args),
        Command::Lookup(args) => cmd::mailbox::run_lookup(&home, args),
        Command::Bridge(args) => cmd::bridge::run(&home, args),
        Command::Tui => tui::run(&home),
        Command::Completions(args) => cmd::shell::completions(&args),
        Command::Man(args) => cmd::shell::man(&args),
    };
    finish(result)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("kith: {}", one_line(&e));
    ExitCode::FAILURE
}

/// The error and its causes on one line, leaving out a cause whose text
/// the message before it already includes.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    // Errors can carry a peer's or a server's words: no terminal controls.
    display::terminal_safe(&line.replace('\n', " ")).into_owned()
}

fn default_home() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("kith"))
}

/// Milliseconds since the Unix epoch, from the system clock (the driver is
/// the one place that reads it; protocol code is given `now`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
