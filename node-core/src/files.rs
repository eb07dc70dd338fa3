//! Files: the offer that goes into a conversation (name, size, content
//! hash, and the hash of every chunk, so each chunk is checked on arrival),
//! and the encrypted content store in the profile.
//!
//! At rest a file is `files/<local>.kith`: one slot per chunk, each slot a
//! secretstream (header, one final message) under the file's own key, so
//! chunks can arrive in any order and from several devices at once, and a
//! transfer resumes where it stopped. Which chunks are held is a bitmap in
//! the store, saved every [`SAVE_EVERY`] chunks (a chunk written but not yet
//! recorded is simply fetched again).

use crate::crypto::{
    HashDomain, Hasher, STREAM_ABYTES, STREAM_HEADER_LEN, SecretBytes, StreamDecryptor,
    StreamEncryptor, StreamKey, hash, random_bytes,
};
pub use crate::file_offer::{
    FileOffer, MAX_CHUNK, MAX_CHUNKS, MAX_NAME, MIN_CHUNK, chunk_size_for,
};
use crate::id::{EventId, LogId};
use crate::store::{FileRow, Store, StoreError};
use crate::wire::to_base32;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The bitmap is saved after this many new chunks (and at completion).
pub const SAVE_EVERY: u32 = 8;

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request that makes no sense.
    #[error("{0}")]
    Invalid(String),
    /// A chunk does not match its hash in the offer.
    #[error("chunk {0} does not match the offer")]
    BadChunk(u32),
    /// The content at rest is damaged.
    #[error("the stored content of this file is damaged (chunk {0})")]
    Damaged(u32),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FileError + use<> {
    let path = path.to_owned();
    move |source| FileError::Io { what, path, source }
}

/// Creates a new file only the owner can read (failing if it exists).
fn create_private(path: &Path, what: &'static str) -> Result<File, FileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(what, path))
}

fn slot_len(chunk_size: u32) -> u64 {
    (STREAM_HEADER_LEN + STREAM_ABYTES) as u64 + u64::from(chunk_size)
}

fn encrypt_chunk(key: &StreamKey, chunk: &[u8]) -> Vec<u8> {
    let (mut enc, header) = StreamEncryptor::new(key);
    let mut out = header.to_vec();
    out.extend(enc.push(chunk, true));
    out
}

/// A file read from disk, hashed and encrypted into the store, ready to be
/// offered.
pub struct Prepared {
    /// The offer.
    pub offer: FileOffer,
    /// Its content file under `files/`.
    pub local: String,
    /// The content key.
    pub key: SecretBytes<32>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("offer", &self.offer.name)
            .finish_non_exhaustive()
    }
}

/// Where a profile keeps file content.
pub fn files_dir(profile_dir: &Path) -> PathBuf {
    profile_dir.join("files")
}

/// Reads `path` (a regular file of at most `max` bytes), hashes it and
/// stores it encrypted under `dir`. Calls `progress(done, total)` as it goes.
pub fn prepare(
    dir: &Path,
    path: &Path,
    max: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Prepared, FileError> {
    let meta = std::fs::metadata(path).map_err(io("cannot read", path))?;
    if meta.is_dir() {
        return Err(FileError::Invalid(format!(
            "{} is a folder, not a file",
            path.display()
        )));
    }
    if !meta.is_file() {
        return Err(FileError::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let size = meta.len();
    if size > max {
        return Err(FileError::Invalid(format!(
            "{} is {size} bytes; the limit is {max}",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n.len() <= MAX_NAME)
        .ok_or_else(|| FileError::Invalid("the file needs a name of at most 255 bytes".into()))?;
    let chunk_size = chunk_size_for(size)
        .ok_or_else(|| FileError::Invalid(format!("{} is too large", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let key = StreamKey::from_bytes(SecretBytes::random());
    let local = to_base32(&random_bytes::<16>());
    let target = dir.join(format!("{local}.kith"));
    let mut out = create_private(&target, "cannot create")?;
    let mut input = File::open(path).map_err(io("cannot read", path))?;
    let mut whole = Hasher::new(HashDomain::FILE);
    let mut chunks = Vec::new();
    // Two threads: this one reads and hashes the whole content (one pass
    // in order); a second hashes each chunk, encrypts it and writes it.
    let result = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (key, target) = (&key, &target);
        let writer = scope.spawn(move || -> Result<Vec<[u8; 32]>, FileError> {
            let mut chunks = Vec::new();
            for chunk in rx {
                chunks.push(hash(HashDomain::FILE_CHUNK, &chunk));
                let slot = encrypt_chunk(key, &chunk);
                out.write_all(&slot).map_err(io("cannot write", target))?;
                // Slots are fixed-size: pad a short last one.
                let pad = slot_len(chunk_size) as usize - slot.len();
                if pad > 0 {
                    out.seek(SeekFrom::Current(pad as i64))
                        .map_err(io("cannot write", target))?;
                }
            }
            out.sync_all().map_err(io("cannot write", target))?;
            Ok(chunks)
        });
        let mut done = 0u64;
        let read = (|| {
            while done < size {
                let want = (size - done).min(u64::from(chunk_size)) as usize;
                let mut chunk = vec![0u8; want];
                input
                    .read_exact(&mut chunk)
                    .map_err(io("cannot read", path))?;
                whole.update(&chunk);
                if tx.send(chunk).is_err() {
                    // The writer stopped: its error says why.
                    break;
                }
                done += want as u64;
                progress(done, size);
            }
            Ok::<_, FileError>(())
        })();
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(FileError::Invalid("the file writer stopped".into())));
        read.and(written)
    });
    let result = result.map(|c| chunks = c);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    Ok(Prepared {
        offer: FileOffer {
            name,
            size,
            hash: whole.finalize(),
            chunk_size,
            chunks,
        },
        local,
        key: SecretBytes::new(*key.as_secret().as_bytes()),
    })
}

/// A file being received (or held), with its offer.
struct Open {
    row: FileRow,
    /// Chunks held (bits set in `row.have`).
    held: u32,
    /// Chunks written since the bitmap was last saved.
    unsaved: u32,
    /// The content file, once opened.
    file: Option<File>,
}

impl Open {
    /// The content file, opened (and made) on first use.
    fn handle(&mut self, path: &Path) -> Result<&File, FileError> {
        if self.file.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
            }
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(io("cannot open", path))?;
            self.file = Some(f);
        }
        self.file
            .as_ref()
            .ok_or_else(|| FileError::Invalid("content file not open".into()))
    }
}

/// What writing a chunk changed.
struct Written {
    /// The bitmap to save now, if it is time to.
    save: Option<Vec<u8>>,
    /// Whether the file is complete.
    complete: bool,
}

/// Runs file work (hashing, encryption, disk) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, FileError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| FileError::Invalid("a file task stopped".into()))?
}

/// The profile's file content: chunk reads and checked writes, usable
/// without the node (transfers run beside the sync).
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    store: Store,
    open: Arc<Mutex<HashMap<EventId, Arc<Mutex<Open>>>>>,
    /// Files whose content was deleted: nothing is written for them again.
    removed: Arc<Mutex<std::collections::HashSet<EventId>>>,
    /// The last local write failure per file (disk full, permissions),
    /// until a write succeeds again.
    errors: Arc<Mutex<HashMap<EventId, String>>>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn has(bitmap: &[u8], i: u32) -> bool {
    bitmap
        .get(i as usize / 8)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn set(bitmap: &mut [u8], i: u32) {
    if let Some(b) = bitmap.get_mut(i as usize / 8) {
        *b |= 1 << (i % 8);
    }
}

/// How many of `chunks` chunks a bitmap says are held.
pub fn held_chunks(bitmap: &[u8], chunks: u32) -> u32 {
    (0..chunks).filter(|i| has(bitmap, *i)).count() as u32
}

/// An empty bitmap for `chunks` chunks.
pub fn empty_bitmap(chunks: u32) -> Vec<u8> {
    vec![0; (chunks as usize).div_ceil(8)]
}

/// A full bitmap for `chunks` chunks.
pub fn full_bitmap(chunks: u32) -> Vec<u8> {
    let mut b = empty_bitmap(chunks);
    for i in 0..chunks {
        set(&mut b, i);
    }
    b
}

impl FileStore {
    /// The file store of a profile folder.
    pub fn new(profile_dir: &Path, store: Store) -> Self {
        Self {
            dir: files_dir(profile_dir),
            store,
            open: Default::default(),
            removed: Default::default(),
            errors: Default::default(),
        }
    }

    /// Why writing `id`'s content last failed here, if it did and has not
    /// succeeded since (e.g. the disk is full).
    pub fn last_error(&self, id: EventId) -> Option<String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    fn note_write(&self, id: EventId, result: &Result<bool, FileError>) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                errors.remove(&id);
            }
            Err(e @ FileError::Io { .. }) => {
                errors.insert(id, e.to_string());
            }
            Err(_) => {}
        }
    }

    /// The folder content lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, local: &str) -> PathBuf {
        self.dir.join(format!("{local}.kith"))
    }

    fn is_removed(&self, id: &EventId) -> bool {
        self.removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    async fn get(&self, id: EventId) -> Result<Arc<Mutex<Open>>, FileError> {
        if self.is_removed(&id) {
            return Err(FileError::Invalid("that file was deleted".into()));
        }
        if let Some(o) = self.lock().get(&id) {
            return Ok(Arc::clone(o));
        }
        let row = self
            .store
            .file(id)
            .await?
            .ok_or_else(|| FileError::Invalid(format!("no file {id}")))?;
        let held = held_chunks(&row.have, row.chunks);
        let open = Arc::new(Mutex::new(Open {
            row,
            held,
            unsaved: 0,
            file: None,
        }));
        Ok(Arc::clone(self.lock().entry(id).or_insert(open)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, Arc<Mutex<Open>>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a file offered by someone else (nothing held yet).
    pub async fn register(
        &self,
        id: EventId,
        log: LogId,
        offer: &FileOffer,
    ) -> Result<(), FileError> {
        let local = to_base32(&random_bytes::<16>());
        self.store
            .insert_file(&FileRow {
                id,
                log,
                name: offer.name.clone(),
                size: offer.size,
                chunk_size: offer.chunk_size,
                chunks: offer.chunk_count(),
                local,
                key: SecretBytes::random(),
                have: empty_bitmap(offer.chunk_count()),
                complete: offer.chunk_count() == 0,
            })
            .await?;
        Ok(())
    }

    /// Records a file prepared here (all chunks held).
    pub async fn register_prepared(
        &self,
        id: EventId,
        log: LogId,
        p: &Prepared,
    ) -> Result<(), FileError> {
        self.store
            .insert_file(&FileRow {
                id,
                log,
                name: p.offer.name.clone(),
                size: p.offer.size,
                chunk_size: p.offer.chunk_size,
                chunks: p.offer.chunk_count(),
                local: p.local.clone(),
                key: SecretBytes::new(*p.key.as_bytes()),
                have: full_bitmap(p.offer.chunk_count()),
                complete: true,
            })
            .await?;
        Ok(())
    }

    /// Chunks of the file not held yet.
    pub async fn missing(&self, id: EventId, offer: &FileOffer) -> Result<Vec<u32>, FileError> {
        let open = self.get(id).await?;
        let o = open.lock().unwrap_or_else(|p| p.into_inner());
        Ok((0..offer.chunk_count())
            .filter(|i| !has(&o.row.have, *i))
            .collect())
    }

    /// Checks chunk `i` against the offer and stores it encrypted. Returns
    /// whether the file is now complete. A local failure (disk full,
    /// permissions) is kept for [`FileStore::last_error`]; chunks already
    /// written stay, and the chunk is simply fetched again later.
    pub async fn write_chunk(
        &self,
        id: EventId,
        offer: &FileOffer,
        i: u32,
        data: Vec<u8>,
    ) -> Result<bool, FileError> {
        let result = self.write_chunk_inner(id, offer, i, data).await;
        self.note_write(id, &result);
        result
    }

    async fn write_chunk_inner(
        &self,
        id: EventId,
        offer: &FileOffer,
        i: u32,
        data: Vec<u8>,
    ) -> Result<bool, FileError> {
        if i >= offer.chunk_count() || data.len() != offer.chunk_len(i) {
            return Err(FileError::BadChunk(i));
        }
        let open = self.get(id).await?;
        let expected = offer.chunks[i as usize];
        let (chunks, slot_at) = (
            offer.chunk_count(),
            u64::from(i) * slot_len(offer.chunk_size),
        );
        let dir = self.dir.clone();
        let removed = Arc::clone(&self.removed);
        let written = blocking(move || {
            if hash(HashDomain::FILE_CHUNK, &data) != expected {
                return Err(FileError::BadChunk(i));
            }
            let key = {
                let o = open.lock().unwrap_or_else(|p| p.into_inner());
                if has(&o.row.have, i) {
                    return Ok(Written {
                        save: None,
                        complete: o.row.complete,
                    });
                }
                StreamKey::from_bytes(SecretBytes::new(*o.row.key.as_bytes()))
            };
            let slot = encrypt_chunk(&key, &data);
            let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
            if has(&o.row.have, i) {
                return Ok(Written {
                    save: None,
                    complete: o.row.complete,
                });
            }
            // Deleted meanwhile: write nothing (checked under the file's lock,
            // which removal also takes).
            if removed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&id)
            {
                return Err(FileError::Invalid("that file was deleted".into()));
            }
            let path = dir.join(format!("{}.kith", o.row.local));
            let complete = o.held + 1 == chunks;
            let save_now = complete || o.unsaved + 1 >= SAVE_EVERY;
            let file = o.handle(&path)?;
            file.write_all_at(&slot, slot_at)
                .map_err(io("cannot write", &path))?;
            if save_now {
                // Chunks are on disk before the bitmap says they are here.
                file.sync_data().map_err(io("cannot write", &path))?;
            }
            set(&mut o.row.have, i);
            o.held += 1;
            o.unsaved += 1;
            o.row.complete = complete;
            let save = save_now.then(|| {
                o.unsaved = 0;
                o.row.have.clone()
            });
            Ok(Written { save, complete })
        })
        .await?;
        if let Some(have) = written.save {
            self.store
                .set_file_have(id, &have, written.complete)
                .await?;
        }
        Ok(written.complete)
    }

    /// Saves the bitmap of chunks written since the last save.
    pub async fn flush(&self) -> Result<(), FileError> {
        let all: Vec<(EventId, Arc<Mutex<Open>>)> = self
            .lock()
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        for (id, open) in all {
            let pending = {
                let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
                (o.unsaved > 0).then(|| {
                    o.unsaved = 0;
                    (o.row.have.clone(), o.row.complete)
                })
            };
            if let Some((have, complete)) = pending {
                self.store.set_file_have(id, &have, complete).await?;
            }
        }
        Ok(())
    }

    /// Reads and decrypts chunk `i` (checked against the offer).
    pub async fn read_chunk(
        &self,
        id: EventId,
        offer: &FileOffer,
        i: u32,
    ) -> Result<Option<Vec<u8>>, FileError> {
        self.read_chunk_checked(id, offer, i, true).await
    }

    /// [`FileStore::read_chunk`] for serving a peer: the hash is not
    /// checked again here, because the slot's AEAD already proves it is
    /// what this device wrote (after checking it), and the receiver checks
    /// every chunk against the offer anyway. One hash pass less per byte
    /// served.
    pub async fn read_chunk_to_serve(
        &self,
        id: EventId,
        offer: &FileOffer,
        i: u32,
    ) -> Result<Option<Vec<u8>>, FileError> {
        self.read_chunk_checked(id, offer, i, false).await
    }

    async fn read_chunk_checked(
        &self,
        id: EventId,
        offer: &FileOffer,
        i: u32,
        check_hash: bool,
    ) -> Result<Option<Vec<u8>>, FileError> {
        if i >= offer.chunk_count() {
            return Ok(None);
        }
        let open = self.get(id).await?;
        let expected = offer.chunks[i as usize];
        let len = STREAM_HEADER_LEN + STREAM_ABYTES + offer.chunk_len(i);
        let slot_at = u64::from(i) * slot_len(offer.chunk_size);
        let dir = self.dir.clone();
        blocking(move || {
            let (slot, key) = {
                let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
                if !has(&o.row.have, i) {
                    return Ok(None);
                }
                let key = StreamKey::from_bytes(SecretBytes::new(*o.row.key.as_bytes()));
                let path = dir.join(format!("{}.kith", o.row.local));
                let mut slot = vec![0u8; len];
                o.handle(&path)?
                    .read_exact_at(&mut slot, slot_at)
                    .map_err(io("cannot read", &path))?;
                (slot, key)
            };
            let (header, body) = slot.split_at(STREAM_HEADER_LEN);
            let header: [u8; STREAM_HEADER_LEN] =
                header.try_into().map_err(|_| FileError::Damaged(i))?;
            let mut dec = StreamDecryptor::new(&key, &header).map_err(|_| FileError::Damaged(i))?;
            let (plain, _) = dec.pull(body).map_err(|_| FileError::Damaged(i))?;
            if check_hash && hash(HashDomain::FILE_CHUNK, &plain) != expected {
                return Err(FileError::Damaged(i));
            }
            Ok(Some(plain))
        })
        .await
    }

    /// Writes a complete file's plaintext to `dest` (a new file; written
    /// beside it and renamed, so a failure leaves nothing half-written).
    pub async fn save(&self, id: EventId, offer: &FileOffer, dest: &Path) -> Result<(), FileError> {
        if !self.missing(id, offer).await?.is_empty() {
            return Err(FileError::Invalid(format!(
                "{} is not complete yet",
                offer.name
            )));
        }
        if dest.exists() {
            return Err(FileError::Invalid(format!(
                "{} exists already; choose another name",
                dest.display()
            )));
        }
        let tmp = dest.with_file_name(format!(
            ".{}.kith-partial",
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let mut out = create_private(&tmp, "cannot write")?;
        let mut whole = Hasher::new(HashDomain::FILE);
        let result = async {
            for i in 0..offer.chunk_count() {
                let chunk = self
                    .read_chunk(id, offer, i)
                    .await?
                    .ok_or(FileError::Damaged(i))?;
                whole.update(&chunk);
                out.write_all(&chunk).map_err(io("cannot write", &tmp))?;
            }
            if whole.finalize() != offer.hash {
                return Err(FileError::Damaged(0));
            }
            out.sync_all().map_err(io("cannot write", &tmp))?;
            std::fs::rename(&tmp, dest).map_err(io("cannot write", dest))
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Removes a file's content (its message was deleted).
    pub async fn remove_content(&self, id: EventId) -> Result<(), FileError> {
        self.removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        if let Some(open) = self.lock().remove(&id) {
            // Wait for a write in progress, and close the file.
            open.lock().unwrap_or_else(|p| p.into_inner()).file = None;
        }
        if let Some(row) = self.store.file(id).await? {
            let _ = std::fs::remove_file(self.path(&row.local));
            self.store
                .set_file_have(id, &empty_bitmap(row.chunks), false)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn offers_round_trip_and_are_checked() {
        let o = FileOffer {
            name: "a.bin".into(),
            size: MIN_CHUNK as u64 + 1,
            hash: [1; 32],
            chunk_size: MIN_CHUNK,
            chunks: vec![[2; 32], [3; 32]],
        };
        assert_eq!(FileOffer::decode(&o.encode()).unwrap(), o);
        let mut bad = o.clone();
        bad.chunks.pop();
        assert!(FileOffer::decode(&bad.encode()).is_err());
        let mut bad = o.clone();
        bad.name = "../etc/passwd".into();
        assert!(FileOffer::decode(&bad.encode()).is_err());
        let mut bad = o;
        bad.chunk_size = 7;
        assert!(FileOffer::decode(&bad.encode()).is_err());
    }

    #[test]
    fn chunk_sizes_keep_offers_small() {
        assert_eq!(chunk_size_for(0), Some(MIN_CHUNK));
        assert_eq!(chunk_size_for(200 << 20), Some(MIN_CHUNK));
        assert_eq!(chunk_size_for(1 << 30), Some(1 << 20));
        assert!(chunk_size_for(1 << 40).is_none());
        for size in [1u64, 1 << 30, 5 << 30] {
            let c = chunk_size_for(size).unwrap();
            assert!(size.div_ceil(u64::from(c)) <= MAX_CHUNKS as u64);
        }
    }
}
