//! A profile folder whose relative name starts with `file:` is a folder,
//! not an SQLite URI. Its own test binary: it changes the working
//! directory.

#![allow(clippy::unwrap_used)]

use node_core::store::{Profile, Store};

/// Regression: SQLCipher reads a name starting with `file:` as a URI
/// whatever the open flags say, so the database went elsewhere than the
/// durability thread syncs.
#[tokio::test]
async fn a_relative_profile_named_like_a_uri_is_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let profile = Profile::new("file:p");
    let store = Store::create(&profile, None).await.unwrap();
    store.set_meta(&[("k", b"v")]).await.unwrap();
    store.durability().sync().await.unwrap();
    store.close().await;
    assert!(dir.path().join("file:p").join("kith.db").is_file());
    let store = Store::open(&profile, None).await.unwrap();
    assert_eq!(store.meta("k").await.unwrap(), Some(b"v".to_vec()));
    store.close().await;
}
