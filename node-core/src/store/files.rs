//! The `files` table: offered files, their keys and which chunks are held.

use super::{Store, StoreError, db};
use crate::crypto::SecretBytes;
use crate::id::{EventId, LogId};
use sqlx::Row;

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

fn row_to_file(r: &sqlx::sqlite::SqliteRow) -> Result<FileRow, StoreError> {
    let damaged = |what: &str| StoreError::Db {
        what: "reading a file row",
        source: sqlx::Error::Decode(format!("bad {what}").into()),
    };
    let id: Vec<u8> = r.get("id");
    let log: Vec<u8> = r.get("log");
    let key: Vec<u8> = r.get("key");
    Ok(FileRow {
        id: EventId::from_bytes(id.try_into().map_err(|_| damaged("id"))?),
        log: LogId::from_bytes(log.try_into().map_err(|_| damaged("log"))?),
        name: r.get("name"),
        size: r.get::<i64, _>("size").max(0) as u64,
        chunk_size: r.get::<i64, _>("chunk_size").clamp(0, i64::from(u32::MAX)) as u32,
        chunks: r.get::<i64, _>("chunks").clamp(0, i64::from(u32::MAX)) as u32,
        local: r.get("local"),
        key: SecretBytes::new(key.try_into().map_err(|_| damaged("key"))?),
        have: r.get("have"),
        complete: r.get::<i64, _>("complete") != 0,
    })
}

impl Store {
    /// Records a file (ignored if known).
    pub async fn insert_file(&self, f: &FileRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR IGNORE INTO files (id, log, name, size, chunk_size, chunks, local, key, have, complete)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(f.id.as_bytes().as_slice())
        .bind(f.log.as_bytes().as_slice())
        .bind(&f.name)
        .bind(f.size as i64)
        .bind(i64::from(f.chunk_size))
        .bind(i64::from(f.chunks))
        .bind(&f.local)
        .bind(f.key.as_bytes().as_slice())
        .bind(&f.have)
        .bind(i64::from(f.complete))
        .execute(&self.pool)
        .await
        .map_err(db("recording a file"))?;
        self.durable.wrote();
        Ok(())
    }

    /// A file by its offer's id.
    pub async fn file(&self, id: EventId) -> Result<Option<FileRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM files WHERE id = ?")
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a file"))?;
        row.as_ref().map(row_to_file).transpose()
    }

    /// Files of a log, or every file.
    pub async fn files(&self, log: Option<LogId>) -> Result<Vec<FileRow>, StoreError> {
        let rows = match log {
            Some(l) => {
                sqlx::query("SELECT * FROM files WHERE log = ? ORDER BY rowid")
                    .bind(l.as_bytes().to_vec())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT * FROM files ORDER BY rowid")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(db("reading files"))?;
        rows.iter().map(row_to_file).collect()
    }

    /// Saves which chunks are held.
    pub async fn set_file_have(
        &self,
        id: EventId,
        have: &[u8],
        complete: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE files SET have = ?, complete = ? WHERE id = ?")
            .bind(have)
            .bind(i64::from(complete))
            .bind(id.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(db("recording file progress"))?;
        self.durable.wrote();
        Ok(())
    }
}
