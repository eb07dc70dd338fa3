//! One XMPP login: TCP to the server, STARTTLS (always: a server that does
//! not offer it is refused, and nothing is ever sent in plain text after the
//! stream header), TLS checked against the account's domain with the roots
//! the bridge was given, then SASL (SCRAM first, PLAIN only inside TLS,
//! never ANONYMOUS). The result is an authenticated stream for
//! tokio-xmpp's stanza stream, which binds a resource and negotiates
//! stream management itself.

use crate::BridgeError;
use futures::{SinkExt, StreamExt};
use sasl::common::Credentials;
use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_xmpp::error::{AuthError, ProtocolError};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::sasl::DefinedCondition;
use tokio_xmpp::parsers::{ns, starttls};
use tokio_xmpp::stanzastream::Connection;
use tokio_xmpp::xmlstream::{
    ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement, initiate_stream,
};

/// The longest a whole login may take.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and as whom to log in.
#[derive(Clone)]
pub(crate) struct Target {
    pub jid: BareJid,
    /// `host:port` to connect to.
    pub server: String,
    pub tls: Arc<rustls::ClientConfig>,
}

/// Logs in; the error says which step failed.
pub(crate) async fn login(target: &Target, password: &str) -> Result<Connection, BridgeError> {
    match tokio::time::timeout(LOGIN_TIMEOUT, steps(target, password)).await {
        Ok(r) => r,
        Err(_) => Err(BridgeError::Unreachable {
            server: target.server.clone(),
            why: format!("no login within {} s", LOGIN_TIMEOUT.as_secs()),
        }),
    }
}

async fn steps(target: &Target, password: &str) -> Result<Connection, BridgeError> {
    let server = target.server.as_str();
    let unreachable = |why: String| BridgeError::Unreachable {
        server: server.to_owned(),
        why,
    };
    let domain = target.jid.domain().as_str().to_owned();
    let header = || StreamHeader {
        to: Some(Cow::Owned(domain.clone())),
        from: None,
        id: None,
    };
    let timeouts = Timeouts::tight();

    let tcp = TcpStream::connect(server)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tcp.set_nodelay(true).ok();
    let (features, mut plain): (_, XmppStream<BufStream<TcpStream>>) =
        initiate_stream(BufStream::new(tcp), ns::JABBER_CLIENT, header(), timeouts)
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .recv_features()
            .await
            .map_err(|e| stream_error(server, e.into()))?;
    if !features.can_starttls() {
        return Err(BridgeError::Protocol(format!(
            "{server} does not offer TLS (STARTTLS); kith never logs in without it"
        )));
    }
    plain
        .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
            starttls::Request,
        )))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    loop {
        match plain
            .next()
            .await
            .map(|r| r.and_then(|e| e.into_read_error()))
        {
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
            Some(Ok(XmppStreamElement::Starttls(_))) => {
                return Err(BridgeError::Protocol(format!(
                    "{server} refused to start TLS"
                )));
            }
            Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Err(unreachable(e.to_string())),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(BridgeError::Protocol(format!(
                    "{server} sent what is not XMPP: {e}"
                )));
            }
            None | Some(Err(ReadError::StreamFooterReceived)) => {
                return Err(unreachable("the server closed the stream".into()));
            }
        }
    }
    let tcp = plain.into_inner().into_inner();
    let name = rustls::pki_types::ServerName::try_from(domain.clone())
        .map_err(|e| BridgeError::Invalid(format!("{domain}: {e}")))?;
    let tls = TlsConnector::from(Arc::clone(&target.tls))
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(server, e))?;

    let (features, secure) =
        initiate_stream(BufStream::new(tls), ns::JABBER_CLIENT, header(), timeouts)
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .recv_features()
            .await
            .map_err(|e| stream_error(server, e.into()))?;
    let mut mechanisms = features.sasl_mechanisms;
    mechanisms.remove("ANONYMOUS");
    let user = target
        .jid
        .node()
        .ok_or_else(|| BridgeError::Invalid(format!("{} has no user part", target.jid)))?
        .as_str();
    let credentials = Credentials::default()
        .with_username(user)
        .with_password(password)
        .with_channel_binding(sasl::common::ChannelBinding::None);
    let authed = tokio_xmpp::client_login(secure, mechanisms, credentials)
        .await
        .map_err(|e| auth_error(server, e))?;
    let (features, stream): (_, XmppStream<_>) = authed
        .send_header(header())
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .recv_features()
        .await
        .map_err(|e| stream_error(server, e.into()))?;
    if !features.can_bind() {
        // tokio-xmpp's worker cannot use a stream without resource binding
        // (it would stop for good): refused here, and tried again later.
        return Err(BridgeError::Protocol(format!(
            "{server} offers no resource binding after the login"
        )));
    }
    Ok(Connection {
        stream: stream.box_stream(),
        features,
        identity: Jid::from(target.jid.clone()),
    })
}

fn tls_error(server: &str, e: io::Error) -> BridgeError {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(why)) => BridgeError::Certificate {
            server: server.to_owned(),
            why: format!("{why:?}"),
        },
        _ => BridgeError::Unreachable {
            server: server.to_owned(),
            why: format!("TLS: {e}"),
        },
    }
}

fn auth_error(server: &str, e: tokio_xmpp::Error) -> BridgeError {
    match e {
        // Only what says the credentials themselves are wrong stops the
        // bridge; a server's temporary failure is tried again.
        tokio_xmpp::Error::Auth(AuthError::Fail(
            condition @ (DefinedCondition::NotAuthorized
            | DefinedCondition::AccountDisabled
            | DefinedCondition::CredentialsExpired
            | DefinedCondition::InvalidAuthzid),
        )) => BridgeError::Refused(format!("{condition:?}")),
        tokio_xmpp::Error::Auth(AuthError::Fail(condition)) => BridgeError::Unreachable {
            server: server.to_owned(),
            why: format!("the server failed the login for now ({condition:?})"),
        },
        tokio_xmpp::Error::Auth(AuthError::NoMechanism) => BridgeError::Protocol(format!(
            "{server} offers no login kith uses (SCRAM or PLAIN inside TLS)"
        )),
        tokio_xmpp::Error::Auth(other) => {
            BridgeError::Protocol(format!("the login with {server} failed: {other}"))
        }
        other => stream_error(server, other),
    }
}

fn stream_error(server: &str, e: tokio_xmpp::Error) -> BridgeError {
    match e {
        tokio_xmpp::Error::Protocol(ProtocolError::NoTls) => {
            BridgeError::Protocol(format!("{server} does not offer TLS"))
        }
        tokio_xmpp::Error::StreamError(s) => {
            BridgeError::Protocol(format!("{server} ended the stream: {s}"))
        }
        other => BridgeError::Unreachable {
            server: server.to_owned(),
            why: other.to_string(),
        },
    }
}

/// Whether a login error is worth trying again later.
pub(crate) fn is_final(e: &BridgeError) -> bool {
    matches!(e, BridgeError::Refused(_) | BridgeError::Invalid(_))
}
