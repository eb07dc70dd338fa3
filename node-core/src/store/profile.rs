//! The profile folder: where it is, what it holds, and its permissions.
//!
//! Layout: `kith.key` (the wrapped store key), `kith.db` with its `-wal`
//! and `-shm` files (SQLCipher), `kith.sock` (the daemon's socket) and
//! `kith.lock` (held by the process that has the store open). The folder
//! must be `0700` and the key file `0600`, both owned by the current user;
//! anything looser is refused at start with the command that fixes it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the profile folder is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Nothing has been initialised here.
    #[error("no kith profile at {0} (run `kith init` first)")]
    Missing(PathBuf),
    /// A profile already exists here.
    #[error("a kith profile already exists at {0}")]
    Exists(PathBuf),
    /// Permissions are looser than owner-only.
    #[error("{path} has mode {mode:o}, must be {want:o} (fix: chmod {want:o} {path})")]
    Permissions {
        /// The path.
        path: PathBuf,
        /// Its mode.
        mode: u32,
        /// The mode required.
        want: u32,
    },
    /// Owned by someone else.
    #[error("{0} is owned by another user")]
    Owner(PathBuf),
    /// Another process has the profile open.
    #[error("profile {0} is in use by another process (is a daemon running?)")]
    Locked(PathBuf),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A profile folder.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

/// Holds the profile's lock while alive.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError {
    let path = path.to_owned();
    move |source| ProfileError::Io { what, path, source }
}

impl Profile {
    /// The profile at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The key file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("kith.key")
    }
    /// The database.
    pub fn database(&self) -> PathBuf {
        self.dir.join("kith.db")
    }
    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("kith.sock")
    }
    /// Whether a profile was initialised here.
    pub fn exists(&self) -> bool {
        self.key_file().exists()
    }

    /// Makes the folder (owner-only) for a new profile; fails if one exists.
    pub fn create_dir(&self) -> Result<(), ProfileError> {
        if self.exists() {
            return Err(ProfileError::Exists(self.dir.clone()));
        }
        fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(io("setting permissions of", &self.dir))?;
        Ok(())
    }

    /// Removes the files of a profile whose creation failed (and the folder,
    /// if that leaves it empty).
    pub fn remove_files(&self) {
        for name in [
            "kith.key",
            "kith.db",
            "kith.db-wal",
            "kith.db-shm",
            "kith.lock",
        ] {
            let _ = fs::remove_file(self.dir.join(name));
        }
        let _ = fs::remove_dir(&self.dir);
    }

    /// Checks an existing profile's folder and key file.
    pub fn check(&self) -> Result<(), ProfileError> {
        if !self.exists() {
            return Err(ProfileError::Missing(self.dir.clone()));
        }
        check_mode(&self.dir, 0o700)?;
        check_mode(&self.key_file(), 0o600)
    }

    /// Takes the profile's lock, failing at once if another process holds it.
    pub fn lock(&self) -> Result<ProfileLock, ProfileError> {
        let path = self.dir.join("kith.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("opening", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(ProfileLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(ProfileError::Locked(self.dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(io("locking", &path)(e)),
        }
    }

    /// Writes the key file (0600), durably, refusing to overwrite one.
    pub fn write_key_file(&self, bytes: &[u8]) -> Result<(), ProfileError> {
        let path = self.key_file();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => ProfileError::Exists(self.dir.clone()),
                _ => io("creating", &path)(e),
            })?;
        f.write_all(bytes).map_err(io("writing", &path))?;
        f.sync_all().map_err(io("syncing", &path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing", &self.dir))
    }

    /// Reads the key file.
    pub fn read_key_file(&self) -> Result<Vec<u8>, ProfileError> {
        let path = self.key_file();
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        Ok(bytes)
    }
}

fn check_mode(path: &Path, want: u32) -> Result<(), ProfileError> {
    let meta = fs::metadata(path).map_err(io("reading metadata of", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & !want != 0 {
        return Err(ProfileError::Permissions {
            path: path.to_owned(),
            mode,
            want,
        });
    }
    if current_uid().is_some_and(|me| meta.uid() != me) {
        return Err(ProfileError::Owner(path.to_owned()));
    }
    Ok(())
}

/// The current user's id, read from `/proc/self` (no libc call needed);
/// `None` where there is no `/proc`, and the owner check is skipped.
fn current_uid() -> Option<u32> {
    fs::metadata("/proc/self").map(|m| m.uid()).ok()
}
