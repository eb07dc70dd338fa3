//! One HTTP/1.1 connection with deadlines: how long a client may take to
//! send a request's headers, its body, and how long a kept-alive
//! connection may wait for the next request. A client that holds a
//! connection open by sending slowly or not at all (slowloris) is cut off.
//!
//! The connection is in one of three phases, shared by the socket wrapper
//! ([`Watched`]), the request hook ([`Phase::begin`]) and the watcher
//! ([`serve`]):
//!
//! - *head*: from the first byte of a request (for a new connection, from
//!   `accept`) until its headers are parsed; at most `header_timeout`;
//! - *busy*: a request is being handled; its body must arrive within
//!   `body_timeout` of its headers ([`DeadlineBody`]); handlers and
//!   responses are not timed here;
//! - *idle*: after the last response, until the first byte of the next
//!   request; at most `idle_timeout`.
//!
//! Not here: accepting and counting connections (`server.rs`), HTTP/2.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};
use tower_service::Service as _;

use crate::proxy::{ClientAddr, TrustedProxies, client_addr};

/// The deadlines of one connection (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// From a request's first byte (or `accept`) to the end of its headers.
    pub header: Duration,
    /// From a request's headers to the end of its body.
    pub body: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle: Duration,
}

/// Serves HTTP/1.1 on `stream` from `peer` with `router` until the client
/// leaves, a deadline passes, or `shutdown` turns true (then the request in
/// flight, if any, is finished first).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    deadlines: Deadlines,
    trusted: Arc<TrustedProxies>,
    mut shutdown: watch::Receiver<bool>,
) {
    let phase = Arc::new(Phase::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        phase: Arc::clone(&phase),
    });
    let hook = Arc::clone(&phase);
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let guard = hook.begin();
        let client = client_addr(peer, request.headers(), &trusted);
        let mut request = request
            .map(|incoming| Body::new(DeadlineBody::new(Body::new(incoming), deadlines.body)));
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(ClientAddr(client));
        let mut router = router.clone();
        async move {
            let response = router.call(request).await?;
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(Guarded {
                    body,
                    _guard: guard,
                })
            }))
        }
    });
    // Our own deadlines replace hyper's header timer (which also runs
    // while a kept-alive connection waits, and needs a timer set).
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = phase.deadline(deadlines);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, "connection ended: {err}");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if phase.deadline(deadlines).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "connection timed out");
                    return;
                }
            }
            () = phase.changed.notified() => {}
            changed = shutdown.changed(), if !stopping => {
                if changed.is_err() || *shutdown.borrow() {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is (see the module comment).
#[derive(Debug)]
struct Phase {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Head { since: Instant },
    Busy { requests: usize },
    Idle { since: Instant },
}

impl Phase {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::Head {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(State) -> State) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = f(*state);
        drop(state);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts a request's head.
    fn received(&self) {
        let idle = matches!(
            *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            State::Idle { .. }
        );
        if idle {
            self.update(|state| match state {
                State::Idle { .. } => State::Head {
                    since: Instant::now(),
                },
                other => other,
            });
        }
    }

    /// A request's headers are parsed: busy until the guard is dropped
    /// (with the response body, once it is sent).
    fn begin(self: &Arc<Self>) -> BusyGuard {
        self.update(|state| match state {
            State::Busy { requests } => State::Busy {
                requests: requests + 1,
            },
            _ => State::Busy { requests: 1 },
        });
        BusyGuard(Arc::clone(self))
    }

    fn deadline(&self, deadlines: Deadlines) -> Option<Instant> {
        match *self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Head { since } => Some(since + deadlines.header),
            State::Idle { since } => Some(since + deadlines.idle),
            State::Busy { .. } => None,
        }
    }
}

/// Held while a request is in flight.
#[derive(Debug)]
struct BusyGuard(Arc<Phase>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.update(|state| match state {
            State::Busy { requests } if requests > 1 => State::Busy {
                requests: requests - 1,
            },
            _ => State::Idle {
                since: Instant::now(),
            },
        });
    }
}

/// The TCP stream, telling [`Phase`] when bytes arrive.
#[derive(Debug)]
struct Watched {
    inner: TcpStream,
    phase: Arc<Phase>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.phase.received();
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The request body was not complete in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its connection busy until it is dropped.
struct Guarded {
    body: Body,
    _guard: BusyGuard,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
