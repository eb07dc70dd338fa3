//! The `files` table: offered files, their keys and which chunks are held.

use super::{Store, StoreError};
use crate::crypto::SecretBytes;
use crate::id::{EventId, LogId};
use rusqlite::OptionalExtension;

/// A file as stored.
pub struct FileRow {
    /// The offer event's id.
    pub id: EventId,
    /// Its conversation or room.
    pub log: LogId,
    /// Display name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Chunk size.
    pub chunk_size: u32,
    /// Number of chunks.
    pub chunks: u32,
    /// The content file's name under the profile's `files/`.
    pub local: String,
    /// Key of the content at rest.
    pub key: SecretBytes<32>,
    /// Bitmap of chunks held.
    pub have: Vec<u8>,
    /// All chunks held and checked.
    pub complete: bool,
}

impl std::fmt::Debug for FileRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("size", &self.size)
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

fn row_to_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    let id: Vec<u8> = r.get("id")?;
    let log: Vec<u8> = r.get("log")?;
    let key: Vec<u8> = r.get("key")?;
    let size: i64 = r.get("size")?;
    let chunk_size: i64 = r.get("chunk_size")?;
    let chunks: i64 = r.get("chunks")?;
    Ok(FileRow {
        id: EventId::from_bytes(id.try_into().map_err(|_| super::bad_value("id"))?),
        log: LogId::from_bytes(log.try_into().map_err(|_| super::bad_value("log"))?),
        name: r.get("name")?,
        size: size.max(0) as u64,
        chunk_size: chunk_size.clamp(0, i64::from(u32::MAX)) as u32,
        chunks: chunks.clamp(0, i64::from(u32::MAX)) as u32,
        local: r.get("local")?,
        key: SecretBytes::new(key.try_into().map_err(|_| super::bad_value("key"))?),
        have: r.get("have")?,
        complete: r.get::<_, i64>("complete")? != 0,
    })
}

impl Store {
    /// Records a file (ignored if known).
    pub async fn insert_file(&self, f: &FileRow) -> Result<(), StoreError> {
        self.write("recording a file", 1, |tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO files (id, log, name, size, chunk_size, chunks, local, key, have, complete)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(rusqlite::params![
                f.id.as_bytes().as_slice(),
                f.log.as_bytes().as_slice(),
                &f.name,
                i64::try_from(f.size).unwrap_or(i64::MAX),
                i64::from(f.chunk_size),
                i64::from(f.chunks),
                &f.local,
                f.key.as_bytes().as_slice(),
                &f.have,
                i64::from(f.complete)
            ])
        })?;
        Ok(())
    }

    /// A file by its offer's id.
    pub async fn file(&self, id: EventId) -> Result<Option<FileRow>, StoreError> {
        self.read("reading a file", |c| {
            c.prepare_cached("SELECT * FROM files WHERE id = ?")?
                .query_row([id.as_bytes().as_slice()], row_to_file)
                .optional()
        })
    }

    /// Files of a log, or every file.
    pub async fn files(&self, log: Option<LogId>) -> Result<Vec<FileRow>, StoreError> {
        self.read_long("reading files", |c| match log {
            Some(l) => c
                .prepare_cached("SELECT * FROM files WHERE log = ? ORDER BY rowid")?
                .query_map([l.as_bytes().as_slice()], row_to_file)?
                .collect(),
            None => c
                .prepare_cached("SELECT * FROM files ORDER BY rowid")?
                .query_map([], row_to_file)?
                .collect(),
        })
    }

    /// Saves which chunks are held.
    pub async fn set_file_have(
        &self,
        id: EventId,
        have: &[u8],
        complete: bool,
    ) -> Result<(), StoreError> {
        self.write("recording file progress", 1, |tx| {
            tx.prepare_cached("UPDATE files SET have = ?, complete = ? WHERE id = ?")?
                .execute(rusqlite::params![
                    have,
                    i64::from(complete),
                    id.as_bytes().as_slice()
                ])
        })?;
        Ok(())
    }
}
