//! A profile made while the store ran on sqlx (its schema recorded in
//! sqlx's `_sqlx_migrations` table) opens on today's store with its rows,
//! and no migration runs twice.

#![allow(clippy::unwrap_used)]

use node_core::store::{Profile, Store, keyfile};
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use std::fmt::Write as _;

/// The store key of `profile` as SQLCipher's `key` pragma takes it.
fn key_pragma(profile: &Profile) -> String {
    let key = keyfile::unwrap(&std::fs::read(profile.key_file()).unwrap(), None).unwrap();
    let mut hex = String::from("\"x'");
    for b in key.as_bytes() {
        write!(hex, "{b:02x}").unwrap();
    }
    hex.push_str("'\"");
    hex
}

/// What the sqlx store ran at every open.
static SQLX_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[tokio::test]
async fn a_profile_made_by_the_sqlx_store_opens_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new(dir.path().join("p"));
    // A key file as `kith init` writes it; the database is then remade
    // the way the sqlx store made it.
    Store::create(&profile, None).await.unwrap().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", profile.database().display()));
    }
    let hex = key_pragma(&profile);
    let mut conn = SqliteConnectOptions::new()
        .filename(profile.database())
        .create_if_missing(true)
        .pragma("key", hex)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    SQLX_MIGRATOR.run(&mut conn).await.unwrap();
    sqlx::query("INSERT INTO meta (key, value) VALUES ('kept', x'01')")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();

    for _ in 0..2 {
        let store = Store::open(&profile, None).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 4);
        assert_eq!(store.meta("kept").await.unwrap(), Some(vec![1]));
        store.set_meta(&[("after", b"2")]).await.unwrap();
        assert_eq!(store.event_count().await.unwrap(), 0);
        store.close().await;
    }
}

#[tokio::test]
async fn a_new_profile_opens_again_without_migrating_twice() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new(dir.path().join("p"));
    let store = Store::create(&profile, None).await.unwrap();
    store.set_meta(&[("k", b"v")]).await.unwrap();
    store.close().await;
    let store = Store::open(&profile, None).await.unwrap();
    assert_eq!(store.meta("k").await.unwrap(), Some(b"v".to_vec()));
    store.close().await;
}

#[tokio::test]
async fn a_closed_store_refuses_further_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&Profile::new(dir.path().join("p")), None)
        .await
        .unwrap();
    let other = store.clone();
    store.close().await;
    assert!(matches!(
        other.meta("k").await,
        Err(node_core::store::StoreError::Closed)
    ));
}

#[tokio::test]
async fn a_database_a_newer_kith_made_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new(dir.path().join("p"));
    Store::create(&profile, None).await.unwrap().close().await;
    let hex = key_pragma(&profile);
    let mut conn = SqliteConnectOptions::new()
        .filename(profile.database())
        .pragma("key", hex)
        .connect()
        .await
        .unwrap();
    sqlx::query("PRAGMA user_version = 99")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let err = Store::open(&profile, None).await.unwrap_err();
    assert!(
        matches!(err, node_core::store::StoreError::Newer(99)),
        "{err}"
    );
}
