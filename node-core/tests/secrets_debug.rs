//! Debug prints of the secret-holding types outside `crypto` show no secret
//! bytes (the crypto types are covered by `crypto_debug.rs`).

#![allow(clippy::unwrap_used)]

use node_core::node::Node;
use node_core::store::{Passphrase, Profile};

#[test]
fn passphrase_debug_is_redacted() {
    let p = Passphrase::new("hunter2-very-secret".into());
    assert_eq!(format!("{p:?}"), "Passphrase(..)");
}

#[tokio::test]
async fn recovery_code_and_node_debug_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let (node, code) = Node::create(Profile::new(dir.path().join("p")), "alice", None, true, 1)
        .await
        .unwrap();
    let code = code.unwrap();
    assert_eq!(format!("{code:?}"), "RecoveryCode(..)");
    let words = code.to_words();
    let shown = format!("{node:?}");
    assert!(shown.starts_with("Node {"), "{shown}");
    assert!(!shown.contains(&words[..8]));
    assert!(
        !shown.to_lowercase().contains("seed") && !shown.contains("key"),
        "{shown}"
    );
    // Close the store before the process exits: SQLCipher's connection
    // thread must not outlive OpenSSL's exit-time cleanup.
    node.close().await;
}
