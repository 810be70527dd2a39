//! [`SqliteStore`]: an embedded, durable [`KeyStore`] for `apikeys`, in one SQLite file.
//!
//! ```
//! use apikeys::{AccessLevel, Actor, Keyring, Request, Role};
//! use apikeys_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("keys.db");
//! let admin = Actor::new("acme", "PADMIN1", Role::Admin);
//!
//! let token = {
//!     let keyring = Keyring::new(SqliteStore::open(&path)?);
//!     let issued = keyring.create_general_key(&admin, "CI bot", AccessLevel::ReadOnly)?;
//!     issued.secret().expose().to_owned()
//! }; // the keyring and its store are dropped: pending writes are flushed
//!
//! let keyring = Keyring::new(SqliteStore::open(&path)?);
//! keyring.authenticate(&token, &Request::rest("GET"))?;
//! # Ok::<(), apikeys::Error>(())
//! ```
//!
//! ## How it works
//! - **One file**, in WAL mode (readers never wait for the writer), with
//!   `synchronous = FULL`: a write that has returned survives a crash of the
//!   process or of the machine. Several processes may open the same file.
//! - **Every write is one transaction** (`BEGIN IMMEDIATE`): it happens whole or
//!   not at all. Writes from one process go through one connection; reads use a
//!   small pool of connections.
//! - **Schema**: tables `apikeys_keys` (a unique index on the digest, an index on
//!   the account), `apikeys_accounts`, `apikeys_users`, `apikeys_changes`. The schema version is
//!   SQLite's `user_version`; migrations run on open, in a transaction, and a file
//!   written by a newer version is refused rather than misread. A record is
//!   stored as JSON (its serde form, without the key, which is never stored) next
//!   to the columns that are searched ([`apikeys::store::rows`], shared with the
//!   other durable store).
//! - **A cache in front of the hot path** ([`apikeys::store::cache`], shared
//!   with the other durable store): [`KeyStore::find_by_digest`] answers
//!   from memory once a key has been seen, so a warm `authenticate` costs about
//!   what it costs with [`apikeys::MemoryStore`]. Writes through this store
//!   update the cache before they return. Writes by other processes (or other
//!   `SqliteStore`s on the same file) are noticed through SQLite's
//!   `PRAGMA data_version` (the file's change counter, as this connection sees
//!   it), polled every [`SqliteOptions::poll_interval`] (50 ms by default):
//!   that is how long another process's disable may take to be refused here.
//!   When it moved, a change log (table `apikeys_changes`, written by triggers,
//!   so SQL by hand is logged too) says which keys changed: only those are
//!   dropped, or everything after an account or user change. Other processes'
//!   inserts and last-use writes leave the cache alone. If the poll fails, the
//!   cache is turned off until it works again. A cache never makes a disabled,
//!   deleted, expired or demoted key work: expiry is checked on every request,
//!   and every other change drops what it touched.
//! - **Last used** times are queued in memory by [`KeyStore::record_use`] (the
//!   keyring calls it at most once a minute per key) and written in one
//!   transaction every [`SqliteOptions::flush_interval`] (1 s by default), by
//!   [`SqliteStore::flush`], and when the store is dropped. A crash loses at
//!   most the last interval's uses, never a key.
//! - Errors are [`StoreError::Unavailable`] (the file cannot be opened or
//!   written; nothing was half-written) or [`StoreError::Corrupt`] (a row cannot
//!   be read back). When SQLite (or the JSON of a row) failed, its error is the
//!   [`source`](std::error::Error::source) of the [`StoreError`]: a
//!   [`rusqlite::Error`] to downcast to and look into.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod conn;
mod feed;
mod options;
mod outbox;
mod schema;
mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[cfg(doc)]
use apikeys::KeyStore;
use apikeys::StoreError;
use apikeys::store::cache::{LookupCache, Stopper, UseQueue};
use apikeys::store::rows;
use rusqlite::Connection;

pub use options::SqliteOptions;
pub use schema::SCHEMA_VERSION;

use conn::{open_connection, wal_identity};
use feed::{Seen, data_version};
use schema::migrate;

/// The store's name in its error messages.
const SQLITE: &str = "SQLite";

/// A durable [`KeyStore`] in one SQLite file, with an in-memory cache in front
/// of the hot path. See the [crate documentation](crate) for how it works.
pub struct SqliteStore {
    inner: Arc<Inner>,
    stop: Arc<Stopper>,
    worker: Option<JoinHandle<()>>,
}

struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    /// All writes, and the `data_version` polls (its own commits do not change
    /// the version it reads, so only other connections' writes are looked into).
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    cache: LookupCache,
    uses: UseQueue,
    /// Rotations' new keys seen in use, to note on their old keys at the
    /// next flush (never written from the hot path).
    successors: Mutex<Vec<(apikeys::KeyId, apikeys::Timestamp)>>,
    /// The write-ahead log file this store's connections write to (device
    /// and inode), once seen; checked before every write (see [`Inner::wal_check`]).
    wal: Mutex<Option<(u64, u64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    rows::unavailable(SQLITE, e)
}

impl SqliteStore {
    /// Open (creating or migrating) the store at `path`, with the default options.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path.as_ref(), SqliteOptions::default())
    }

    /// Options to open a store with.
    pub fn options() -> SqliteOptions {
        SqliteOptions::default()
    }

    fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let shown = path.to_string_lossy();
        if shown.trim().is_empty() || shown == ":memory:" || shown.starts_with("file::memory:") {
            return Err(StoreError::Unavailable(
                format!(
                    "SQLite: {:?} is not a file: give the path of the file to keep keys in \
                 (an empty path or :memory: would be a database lost when the store closes)",
                    shown
                )
                .into(),
            ));
        }
        let mut writer = open_connection(path, &options)?;
        migrate(&mut writer)?;
        if options.outbox {
            writer
                .execute(
                    "UPDATE apikeys_outbox_settings SET enabled = 1 WHERE id = 1",
                    [],
                )
                .map_err(unavailable)?;
        }
        let seen = Seen {
            version: data_version(&writer)?,
            seq: writer
                .query_row(
                    "SELECT coalesce(max(seq), 0) FROM apikeys_changes",
                    [],
                    |r| r.get(0),
                )
                .map_err(unavailable)?,
        };
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            cache: LookupCache::new(options.cache_capacity),
            options,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            uses: UseQueue::default(),
            successors: Mutex::new(Vec::new()),
            wal: Mutex::new(None),
        });
        *lock(&inner.wal) = wal_identity(path);
        if inner.options.cache {
            inner.cache.set_enabled(true);
        }
        let stop = Arc::new(Stopper::default());
        let worker = {
            let (inner, stop) = (inner.clone(), stop.clone());
            std::thread::Builder::new()
                .name("apikeys-sqlite".into())
                .spawn(move || inner.background(&stop, seen))
                .map_err(|e| {
                    StoreError::unavailable(
                        format!("cannot start the SQLite watcher thread: {e}"),
                        e,
                    )
                })?
        };
        Ok(SqliteStore {
            inner,
            stop,
            worker: Some(worker),
        })
    }

    /// The file this store keeps its keys in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Write every queued last use now; returns how many were written.
    pub fn flush(&self) -> Result<usize, StoreError> {
        self.inner.flush()
    }

    /// How many hot-path answers are cached now.
    pub fn cached_keys(&self) -> usize {
        self.inner.cache.len()
    }

    /// Whether the cache is on (it is off when turned off by the options, and
    /// while changes by other processes cannot be watched).
    pub fn cache_enabled(&self) -> bool {
        self.inner.cache.is_enabled()
    }

    /// Run SQLite's `PRAGMA integrity_check`: `Ok(())` when it says `ok`,
    /// otherwise [`StoreError::Corrupt`] with what it found.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let conn = self.inner.reader()?;
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(unavailable)?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)?;
        if lines == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::Corrupt(
                format!("SQLite integrity_check: {}", lines.join("; ")).into(),
            ))
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        // Best effort: call `flush` before dropping to see an error.
        let _ = self.inner.flush();
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("cached_keys", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}
