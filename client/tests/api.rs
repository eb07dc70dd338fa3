//! The client library's errors carry a kind a program can match on (the
//! message stays the one line the CLI prints).

#![allow(clippy::unwrap_used)]

mod support;

use kith_client::rpc::{self, ClientError, ErrorKind, Request};
use support::Running;

fn kind(e: &anyhow::Error) -> ErrorKind {
    ClientError::of(e)
        .unwrap_or_else(|| panic!("no ClientError in {e:#}"))
        .kind
}

#[tokio::test]
async fn no_daemon_is_its_own_kind() {
    let dir = tempfile::tempdir().unwrap();
    let e = rpc::call(dir.path(), &Request::Status).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::NoDaemon);
    assert!(
        kith_client::one_line(&e).starts_with("no kith daemon is running for"),
        "{e:#}"
    );
    let e = rpc::subscribe(dir.path()).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::NoDaemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_says_what_kind_of_failure() {
    let alice = Running::start("Alice");
    let send = Request::Send {
        target: "nobody-by-that-name".into(),
        text: "hi".into(),
    };
    let e = rpc::call(&alice.home, &send).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::Invalid, "{e:#}");
    let add = Request::ContactAdd {
        card: "kith:not-a-card".into(),
        alias: None,
    };
    let e = rpc::call(&alice.home, &add).await.unwrap_err();
    assert_eq!(kind(&e), ErrorKind::Invalid, "{e:#}");
    // Success still answers with the value.
    let status = rpc::call(&alice.home, &Request::Status).await.unwrap();
    assert!(status["device"].is_string());
}
