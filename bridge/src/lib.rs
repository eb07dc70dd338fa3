//! Bridges: one of the user's own devices logged in to another network for
//! the account, so the user reaches that network's people from any of their
//! devices and the network's password never leaves that device.
//!
//! A bridge is a session with the other network that keeps itself up
//! (reconnecting with backoff, resuming where the network allows), says what
//! arrived ([`Incoming`], on a bounded channel) and takes what to send
//! ([`Outgoing`], never waiting for the network). [`Bridge`] is the whole
//! surface the daemon uses, so a second network (Matrix, say) is a second
//! implementation of it. XMPP is the first: [`xmpp`].
//!
//! Everything a bridge carries is insecure: the other network's servers read
//! it, and its people are not proven by kith keys. The daemon marks every
//! bridged conversation so, everywhere it is shown.
//!
//! Not in this crate: kith logs, conversations, who may send through the
//! bridge, or where the password is kept (the daemon and the node's
//! encrypted store do those).

pub mod xmpp;

/// The XMPP library the bridge is built on, for tests and tools that speak
/// to a server themselves (see [`xmpp::raw_stream`]).
pub use tokio_xmpp;

use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// Most bytes of one message's text taken from a network; longer text is
/// cut (at a character boundary) and marked.
pub const MAX_TEXT: usize = 64 * 1024;
/// Most contacts a bridge lists (the rest of a roster is not taken).
pub const MAX_CONTACTS: usize = 1_000;
/// Most bytes of an address, a name or a message id taken from a network.
pub const MAX_FIELD: usize = 1_024;

/// The networks kith bridges to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// XMPP (Jabber).
    Xmpp,
}

impl Network {
    /// Its name in commands and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Network::Xmpp => "xmpp",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Network {
    type Err = BridgeError;
    fn from_str(s: &str) -> Result<Self, BridgeError> {
        match s {
            "xmpp" => Ok(Network::Xmpp),
            other => Err(BridgeError::Invalid(format!(
                "no bridge to {other:?}: kith bridges to xmpp"
            ))),
        }
    }
}

/// The password of the bridged account: zeroized when dropped, never
/// printed.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes the password.
    pub fn new(password: String) -> Self {
        Password(Zeroizing::new(password))
    }
    /// The password, for the login only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Clone for Password {
    fn clone(&self) -> Self {
        Password(Zeroizing::new(self.0.as_str().to_owned()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A contact on the other network, from its contact list (XMPP: roster).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Its address on that network (XMPP: a bare JID).
    pub address: String,
    /// The name the user gave it there, if any.
    pub name: Option<String>,
}

/// What a bridge reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// The session's state changed.
    Status(Status),
    /// The network's contact list, whole, after each login, and again when
    /// it changes (at most [`MAX_CONTACTS`]).
    Contacts(Vec<Contact>),
    /// A message arrived.
    Message(Received),
    /// A group chat this account joined confirmed the join.
    Joined {
        /// The group's address.
        group: String,
    },
    /// An [`Outgoing`] message left this device for the network's server
    /// (XMPP with stream management: the server acknowledged it).
    Sent {
        /// The id it was sent with.
        id: String,
    },
    /// The recipient's client said it received the message (XMPP: XEP-0184).
    Delivered {
        /// The conversation (the recipient's address).
        chat: String,
        /// The id it was sent with.
        id: String,
    },
    /// The network refused a message.
    Failed {
        /// The id it was sent with.
        id: String,
        /// Why, as the network said.
        why: String,
    },
}

/// A message that arrived from the other network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The conversation: the sender's address, or the group's.
    pub chat: String,
    /// Whether `chat` is a group chat.
    pub group: bool,
    /// Who wrote it: the sender's address, or their nickname in a group.
    pub sender: String,
    /// Whether this account wrote it (a group echoing our own message, or
    /// the group's history).
    pub own: bool,
    /// The network's id for it, if it gave one (repeats carry the same).
    pub id: Option<String>,
    /// The text (at most [`MAX_TEXT`] bytes, cut and marked beyond).
    pub text: String,
    /// When the network says it was sent (history, offline delivery), in
    /// Unix milliseconds; `None` means now.
    pub time_ms: Option<i64>,
    /// Whether the sender asked for a receipt: call [`Bridge::received`]
    /// once it is kept.
    pub wants_receipt: bool,
}

/// A message to send on the other network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The id to send it with; receipts and failures name it.
    pub id: String,
    /// The recipient's or the group's address.
    pub to: String,
    /// Whether `to` is a group chat.
    pub group: bool,
    /// The text.
    pub text: String,
}

/// The session's state, for `bridge list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Logging in.
    Connecting,
    /// Logged in.
    Online,
    /// Not connected; it tries again in `retry_in`.
    Offline {
        /// What went wrong last.
        why: String,
        /// When the next try is, from the moment this was reported.
        retry_in: Duration,
    },
    /// The network refused the login (wrong password, disabled account):
    /// it does not try again until given a new password.
    Refused {
        /// What the network said.
        why: String,
    },
    /// Closed by the daemon.
    Closed,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Connecting => f.write_str("connecting"),
            Status::Online => f.write_str("online"),
            Status::Offline { why, retry_in } => {
                write!(f, "offline: {why}; next try in {} s", retry_in.as_secs())
            }
            Status::Refused { why } => write!(f, "refused: {why}"),
            Status::Closed => f.write_str("closed"),
        }
    }
}

/// Why a bridge could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Bad input (an address, a network name, a server).
    #[error("{0}")]
    Invalid(String),
    /// The network refused the credentials.
    #[error("the server refused the login ({0})")]
    Refused(String),
    /// The server could not be reached or the connection failed.
    #[error("could not reach {server}: {why}")]
    Unreachable {
        /// Where we tried.
        server: String,
        /// What failed.
        why: String,
    },
    /// The server's certificate is not trusted for the account's domain.
    #[error("the certificate of {server} is not trusted: {why}")]
    Certificate {
        /// Where we tried.
        server: String,
        /// What the check said.
        why: String,
    },
    /// The server did not speak the protocol as expected (no TLS, say).
    #[error("{0}")]
    Protocol(String),
    /// The session is closed.
    #[error("the bridge is closed")]
    Closed,
}

/// A broad class of [`BridgeError`], for callers that branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input.
    Invalid,
    /// Credentials refused: trying again will not help.
    Refused,
    /// Network or server trouble: may pass.
    Transient,
    /// Closed.
    Closed,
}

impl BridgeError {
    /// Its class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BridgeError::Invalid(_) => ErrorKind::Invalid,
            BridgeError::Refused(_) => ErrorKind::Refused,
            BridgeError::Unreachable { .. }
            | BridgeError::Certificate { .. }
            | BridgeError::Protocol(_) => ErrorKind::Transient,
            BridgeError::Closed => ErrorKind::Closed,
        }
    }
}

/// A running bridge: what the daemon uses, whatever the network. Nothing
/// here waits for the network; what arrives comes on the channel the
/// bridge was started with.
pub trait Bridge: Send + Sync + fmt::Debug {
    /// Which network.
    fn network(&self) -> Network;
    /// The account on that network (XMPP: the bare JID).
    fn account(&self) -> &str;
    /// The session's state now.
    fn status(&self) -> Status;
    /// The contact list as last received.
    fn contacts(&self) -> Vec<Contact>;
    /// Queues a message; it goes out as soon as the session is up, in the
    /// order given.
    fn send(&self, message: Outgoing) -> Result<(), BridgeError>;
    /// Joins a group chat (and again after every new login), asking for
    /// the history since `since_ms` (Unix milliseconds) if given.
    fn join(&self, group: &str, since_ms: Option<i64>) -> Result<(), BridgeError>;
    /// Leaves a group chat and stops rejoining it.
    fn leave(&self, group: &str) -> Result<(), BridgeError>;
    /// Says a message that asked for a receipt is kept (sends the receipt).
    fn received(&self, chat: &str, id: &str) -> Result<(), BridgeError>;
    /// Logs out and ends the session.
    fn close(&self);
}

/// Cuts `text` to at most `max` bytes at a character boundary; `true` if it
/// was cut.
pub(crate) fn cut(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        let mut s = "aé".repeat(3);
        assert!(cut(&mut s, 4));
        assert_eq!(s, "aéa");
        let mut short = "ok".to_string();
        assert!(!cut(&mut short, 4));
        assert_eq!(short, "ok");
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("hunter2".into());
        assert_eq!(format!("{p:?}"), "Password(..)");
        assert_eq!(p.clone().expose(), "hunter2");
    }

    #[test]
    fn networks_parse_by_name() {
        assert_eq!("xmpp".parse::<Network>().unwrap(), Network::Xmpp);
        assert_eq!(
            "matrix".parse::<Network>().unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
}
