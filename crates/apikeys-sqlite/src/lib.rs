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
//!   to the columns that are searched.
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
//!   be read back).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apikeys::store::cache::{LookupCache, Stopper, UseQueue};
use apikeys::store::{CachedLookup, check_immutable, removed_state};
use apikeys::{
    AccountSettings, Digest, Disabled, KeyFilter, KeyId, KeyLookup, KeyRecord, KeyStore, Role,
    StoreError, Timestamp, UserInsert, UserState,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

/// The newest schema version this crate knows (SQLite's `user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// Migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE apikeys_keys (
        id           INTEGER PRIMARY KEY,  -- the key id's 64 bits
        digest       BLOB NOT NULL,
        account      TEXT NOT NULL,
        kind         TEXT NOT NULL,
        owner        TEXT,
        created_at   INTEGER NOT NULL,     -- unix milliseconds
        last_used_at INTEGER,              -- unix milliseconds
        record       TEXT NOT NULL         -- the KeyRecord as JSON, without last_used_at
    );
    CREATE UNIQUE INDEX apikeys_keys_digest ON apikeys_keys (digest);
    CREATE INDEX apikeys_keys_account ON apikeys_keys (account, created_at);
    CREATE TABLE apikeys_accounts (
        account              TEXT PRIMARY KEY,
        rest_api             INTEGER NOT NULL,
        advanced_permissions INTEGER NOT NULL
    );
    CREATE TABLE apikeys_users (
        account TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role    TEXT NOT NULL,
        removed INTEGER NOT NULL,
        PRIMARY KEY (account, user_id)
    );
",
    "
    -- The change log other processes read when the file's data_version moves:
    -- a changed or deleted key logs its digest; an account or user change logs
    -- NULL (anything may have changed). Written by triggers, so SQL by hand is
    -- logged too; last-use writes (only last_used_at) and inserts are not,
    -- as they cannot make a cached answer wrong. The newest 10,000 are kept.
    CREATE TABLE apikeys_changes (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        digest BLOB
    );
    CREATE TRIGGER apikeys_keys_updated AFTER UPDATE OF record, digest, account, owner
    ON apikeys_keys BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (old.digest);
    END;
    CREATE TRIGGER apikeys_keys_deleted AFTER DELETE ON apikeys_keys BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (old.digest);
    END;
    CREATE TRIGGER apikeys_accounts_inserted AFTER INSERT ON apikeys_accounts BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_accounts_updated AFTER UPDATE ON apikeys_accounts BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_accounts_deleted AFTER DELETE ON apikeys_accounts BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_users_inserted AFTER INSERT ON apikeys_users BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_users_updated AFTER UPDATE ON apikeys_users BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_users_deleted AFTER DELETE ON apikeys_users BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_changes_pruned AFTER INSERT ON apikeys_changes BEGIN
        DELETE FROM apikeys_changes WHERE seq <= new.seq - 10000;
    END;
",
];

const FIND_SQL: &str = "
    SELECT k.record, k.last_used_at, a.rest_api, a.advanced_permissions, u.role, u.removed
    FROM apikeys_keys k
    LEFT JOIN apikeys_accounts a ON a.account = k.account
    LEFT JOIN apikeys_users u ON u.account = k.account AND u.user_id =
        CASE k.kind WHEN 'scoped' THEN json_extract(k.record, '$.created_by') ELSE k.owner END
    WHERE k.digest = ?1";

/// The keys whose standing user ([`apikeys::store::standing_user`]) is `?2`:
/// a user's tokens and the scoped tokens they made.
const STANDING_KEYS_SQL: &str = "
    SELECT record, last_used_at FROM apikeys_keys
    WHERE account = ?1
      AND ((kind = 'user_token' AND owner = ?2)
        OR (kind = 'scoped' AND json_extract(record, '$.created_by') = ?2))";

/// How to open a [`SqliteStore`]; [`SqliteStore::open`] uses the defaults.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    cache: bool,
    cache_capacity: usize,
    poll_interval: Duration,
    flush_interval: Duration,
    busy_timeout: Duration,
    max_idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            cache: true,
            cache_capacity: 1_000_000,
            poll_interval: Duration::from_millis(50),
            flush_interval: Duration::from_secs(1),
            busy_timeout: Duration::from_secs(5),
            max_idle_readers: 8,
        }
    }
}

impl SqliteOptions {
    /// Whether to cache hot-path lookups in memory (default on). Off, every
    /// `authenticate` reads the file.
    pub fn cache(mut self, on: bool) -> Self {
        self.cache = on;
        self
    }

    /// At most about this many keys cached (default 1,000,000).
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n;
        self
    }

    /// How often to look for writes by other processes (default 50 ms): the
    /// longest a change made elsewhere stays unseen by the cache.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d.max(Duration::from_millis(1));
        self
    }

    /// How often queued last uses are written (default 1 s).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// How long a write waits for another process's write to finish (default 5 s).
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Open (creating or migrating) the store at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path.as_ref(), self)
    }
}

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
    /// The write-ahead log file this store's connections write to (device
    /// and inode), once seen; checked before every write (see [`Inner::wal_check`]).
    wal: Mutex<Option<(u64, u64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("SQLite: {e}"))
}

fn corrupt(what: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("SQLite: {what}: {e}"))
}

fn id_value(id: KeyId) -> i64 {
    id.as_u64() as i64
}

fn millis(t: Timestamp) -> i64 {
    t.unix_millis().min(i64::MAX as u64) as i64
}

fn timestamp(ms: Option<i64>) -> Option<Timestamp> {
    ms.filter(|&m| m > 0)
        .map(|m| Timestamp::from_unix_millis(m as u64))
}

fn to_json(r: &KeyRecord) -> Result<String, StoreError> {
    let mut r = r.clone();
    r.last_used_at = None;
    serde_json::to_string(&r).map_err(|e| corrupt("cannot encode a record", e))
}

fn from_json(json: &str, last_used: Option<i64>) -> Result<KeyRecord, StoreError> {
    let mut r: KeyRecord =
        serde_json::from_str(json).map_err(|e| corrupt("cannot decode a record", e))?;
    r.last_used_at = r.last_used_at.max(timestamp(last_used));
    Ok(r)
}

fn open_connection(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        StoreError::Unavailable(format!("cannot open SQLite file {}: {e}", path.display()))
    })?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(unavailable)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // WAL is a property of the file: set once, kept by every later open.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "SQLite: cannot switch the file to WAL mode (it is in {mode} mode)"
        )));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "SQLite: the file has schema version {version}, written by a newer apikeys-sqlite \
             (this one knows up to {SCHEMA_VERSION}); upgrade it"
        )));
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.pragma_update(None, "user_version", v as i64 + 1)
            .map_err(unavailable)?;
    }
    tx.commit().map_err(unavailable)
}

/// The device and inode of the database's write-ahead log (`<path>-wal`), if it exists.
fn wal_identity(path: &Path) -> Option<(u64, u64)> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let meta = std::fs::metadata(wal).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        // No inode: only a vanished log can be told.
        let _ = meta;
        Some((0, 0))
    }
}

/// What the watcher has seen: the writer connection's `data_version`, and the
/// change log up to `seq`.
#[derive(Clone, Copy)]
struct Seen {
    version: i64,
    seq: i64,
}

fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        .map_err(unavailable)
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
            return Err(StoreError::Unavailable(format!(
                "SQLite: {:?} is not a file: give the path of the file to keep keys in \
                 (an empty path or :memory: would be a database lost when the store closes)",
                shown
            )));
        }
        let mut writer = open_connection(path, &options)?;
        migrate(&mut writer)?;
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
                    StoreError::Unavailable(format!("cannot start the SQLite watcher thread: {e}"))
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
            Err(StoreError::Corrupt(format!(
                "SQLite integrity_check: {}",
                lines.join("; ")
            )))
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

/// A pooled read connection, returned to the pool when dropped.
struct Reader<'a> {
    conn: Option<Connection>,
    inner: &'a Inner,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut pool = lock(&self.inner.readers);
            if pool.len() < self.inner.options.max_idle_readers {
                pool.push(c);
            }
        }
    }
}

impl Inner {
    fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.path, &self.options)?,
        };
        Ok(Reader {
            conn: Some(conn),
            inner: self,
        })
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction on the writer connection.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        self.wal_check()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let out = f(&tx)?;
        tx.commit().map_err(unavailable)?;
        let mut wal = lock(&self.wal);
        if wal.is_none() {
            *wal = wal_identity(&self.path);
        }
        Ok(out)
    }

    /// Refuse to write when the write-ahead log this store writes to is no
    /// longer the file's: it was deleted or replaced under the store.
    ///
    /// That happens when another copy of SQLite in the same process (Python's
    /// `sqlite3` module, another crate's bundled SQLite) opens and closes the
    /// same file: POSIX locks belong to the process, so closing that copy's
    /// handle drops this store's locks, the other copy believes it is the
    /// last user and deletes the log, and this store's later writes would go
    /// to a deleted file — lost, unseen by other processes. A clear error (and
    /// no cache, which can no longer be kept right) beats a silent loss.
    fn wal_check(&self) -> Result<(), StoreError> {
        let Some(seen) = *lock(&self.wal) else {
            return Ok(());
        };
        if wal_identity(&self.path) == Some(seen) {
            return Ok(());
        }
        self.cache.set_enabled(false);
        Err(StoreError::Unavailable(format!(
            "SQLite: the write-ahead log of {} was deleted or replaced under this store \
             (most likely another SQLite library in this process, such as Python's sqlite3 \
             module, opened and closed the same file); nothing was written. Reopen the store, \
             and never open its file with another SQLite library in the same process",
            self.path.display()
        )))
    }

    fn flush(&self) -> Result<usize, StoreError> {
        self.uses.flush(|uses| {
            self.write(|tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE apikeys_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2)
                         WHERE id = ?1",
                    )
                    .map_err(unavailable)?;
                for &(id, at) in uses {
                    stmt.execute(params![id_value(id), millis(at)])
                        .map_err(unavailable)?;
                }
                Ok(())
            })
        })
    }

    /// The watcher: polls `data_version`, reads the change log when it moved,
    /// and writes queued uses, until stopped.
    fn background(&self, stop: &Stopper, mut seen: Seen) {
        let mut last_flush = Instant::now();
        let mut healthy = true;
        while !stop.sleep(self.options.poll_interval) {
            let polled = {
                let conn = lock(&self.writer);
                self.apply_changes(&conn, &mut seen)
                    .and_then(|()| self.wal_check())
            };
            match polled {
                Ok(()) => {
                    if !healthy && self.options.cache {
                        self.cache.set_enabled(true);
                    }
                    healthy = true;
                }
                Err(_) => {
                    // Cannot tell what others changed: stop trusting the cache.
                    self.cache.set_enabled(false);
                    healthy = false;
                }
            }
            if last_flush.elapsed() >= self.options.flush_interval {
                // A failed write stays queued for the next round.
                let _ = self.flush();
                last_flush = Instant::now();
            }
        }
    }

    /// If another connection wrote since `seen`, drop from the cache what its
    /// logged changes touched (everything, if the log cannot say).
    fn apply_changes(&self, conn: &Connection, seen: &mut Seen) -> Result<(), StoreError> {
        // The version first: a commit after this read moves it again, so it is
        // read on the next poll even if the log below already shows it.
        let version = data_version(conn)?;
        if version == seen.version {
            return Ok(());
        }
        let mut stmt = conn
            .prepare_cached("SELECT seq, digest FROM apikeys_changes WHERE seq > ?1 ORDER BY seq")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map([seen.seq], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .map_err(unavailable)?;
        let mut first = None;
        let mut everything = false;
        let mut digests = Vec::new();
        let mut last = seen.seq;
        for row in rows {
            let (seq, digest) = row.map_err(unavailable)?;
            first.get_or_insert(seq);
            last = seq;
            match digest.as_deref().and_then(|d| <[u8; 32]>::try_from(d).ok()) {
                Some(d) => digests.push(Digest::from_bytes(d)),
                None => everything = true,
            }
        }
        // Entries pruned before this process read them: it cannot know which.
        if first.is_some_and(|f| f > seen.seq + 1) {
            everything = true;
        }
        if everything {
            self.cache.clear();
        } else {
            for d in &digests {
                self.cache.invalidate(d);
            }
        }
        *seen = Seen { version, seq: last };
        Ok(())
    }

    fn read_record(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let conn = self.reader()?;
        let row = conn
            .prepare_cached(sql)
            .map_err(unavailable)?
            .query_row(args, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()
            .map_err(unavailable)?;
        row.map(|(json, used)| {
            let mut r = from_json(&json, used)?;
            self.uses.merge(&mut r);
            Ok(r)
        })
        .transpose()
    }

    fn fetch(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        let conn = self.reader()?;
        type Row = (
            String,
            Option<i64>,
            Option<bool>,
            Option<bool>,
            Option<String>,
            Option<bool>,
        );
        let row: Option<Row> = conn
            .prepare_cached(FIND_SQL)
            .map_err(unavailable)?
            .query_row(params![&digest.as_bytes()[..]], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
            .map_err(unavailable)?;
        let Some((json, used, rest_api, advanced, role, removed)) = row else {
            return Ok(None);
        };
        let mut record = from_json(&json, used)?;
        self.uses.merge(&mut record);
        let last_used_at = record.last_used_at.take();
        let owner = match (role, removed) {
            (Some(role), Some(removed)) => Some(UserState {
                role: Role::parse(&role).map_err(|e| corrupt("bad role", e))?,
                removed,
            }),
            _ => None,
        };
        let defaults = AccountSettings::default();
        Ok(Some(KeyLookup {
            record: Arc::new(record),
            last_used_at,
            account: AccountSettings {
                rest_api: rest_api.unwrap_or(defaults.rest_api),
                advanced_permissions: advanced.unwrap_or(defaults.advanced_permissions),
            },
            owner,
        }))
    }
}

/// Insert `record` in `tx`, refusing a duplicate id or digest.
fn insert_in(tx: &rusqlite::Transaction<'_>, record: &KeyRecord) -> Result<(), StoreError> {
    let json = to_json(record)?;
    let id_taken: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM apikeys_keys WHERE id = ?1)",
            [id_value(record.id)],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if id_taken {
        return Err(StoreError::Duplicate { field: "id" });
    }
    let digest_taken: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM apikeys_keys WHERE digest = ?1)",
            [&record.digest.as_bytes()[..]],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if digest_taken {
        return Err(StoreError::Duplicate { field: "digest" });
    }
    tx.execute(
        "INSERT INTO apikeys_keys
                     (id, digest, account, kind, owner, created_at, last_used_at, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id_value(record.id),
            &record.digest.as_bytes()[..],
            &*record.account,
            record.kind.as_str(),
            record.owner.as_deref(),
            millis(record.created_at),
            record.last_used_at.map(millis),
            json,
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// The state stored for `user` of `account`, read in `tx`.
fn user_in(conn: &Connection, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT role, removed FROM apikeys_users WHERE account = ?1 AND user_id = ?2",
        )
        .map_err(unavailable)?
        .query_row([account, user], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })
        .optional()
        .map_err(unavailable)?;
    row.map(|(role, removed)| {
        Ok(UserState {
            role: Role::parse(&role).map_err(|e| corrupt("bad role", e))?,
            removed,
        })
    })
    .transpose()
}

fn set_user_in(
    tx: &rusqlite::Transaction<'_>,
    account: &str,
    user: &str,
    state: UserState,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO apikeys_users (account, user_id, role, removed)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account, user_id) DO UPDATE
         SET role = excluded.role, removed = excluded.removed",
        params![account, user, state.role.as_str(), state.removed],
    )
    .map_err(unavailable)?;
    Ok(())
}

impl KeyStore for SqliteStore {
    fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.inner.write(|tx| insert_in(tx, &record))
        // No cache entry to drop: misses are never cached.
    }

    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
    ) -> Result<UserInsert, StoreError> {
        // One BEGIN IMMEDIATE transaction: no other writer, in this process or
        // another, runs between reading the standing and inserting.
        let (outcome, new_user) = self.inner.write(|tx| {
            let known = user_in(tx, &record.account, user)?;
            let state = known.unwrap_or(if_unknown);
            if !admit(&state) {
                return Ok((UserInsert::Refused(state), false));
            }
            if known.is_none() {
                set_user_in(tx, &record.account, user, state)?;
            }
            insert_in(tx, &record)?;
            Ok((UserInsert::Inserted(state), known.is_none()))
        })?;
        if new_user {
            // A cached answer may have been given without this user's state.
            self.inner.cache.clear();
        }
        Ok(outcome)
    }

    fn remove_user(
        &self,
        account: &str,
        user: &str,
        disabled: &Disabled,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let out = inner.write(|tx| {
            let known = user_in(tx, account, user)?;
            set_user_in(tx, account, user, removed_state(known))?;
            let mut rows = Vec::new();
            {
                let mut stmt = tx.prepare_cached(STANDING_KEYS_SQL).map_err(unavailable)?;
                let found = stmt
                    .query_map(params![account, user], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
                    })
                    .map_err(unavailable)?;
                for row in found {
                    let (json, used) = row.map_err(unavailable)?;
                    let mut r = from_json(&json, used)?;
                    inner.uses.merge(&mut r);
                    if r.disabled.is_none() {
                        rows.push(r);
                    }
                }
            }
            for r in &mut rows {
                r.disabled = Some(Box::new(disabled.clone()));
                tx.execute(
                    "UPDATE apikeys_keys SET record = ?2 WHERE id = ?1",
                    params![id_value(r.id), to_json(r)?],
                )
                .map_err(unavailable)?;
            }
            Ok(rows)
        })?;
        inner.cache.clear();
        let mut out = out;
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    #[inline]
    fn find_by_digest(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        self.inner
            .cache
            .get_or_fetch(digest, |d| self.inner.fetch(d))
    }

    /// From the cache only: [`CachedLookup::WouldBlock`] on a miss (misses
    /// are never cached) or while the cache is off.
    fn find_cached(&self, digest: &Digest) -> CachedLookup {
        self.inner.cache.cached(digest)
    }

    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.read_record(
            "SELECT record, last_used_at FROM apikeys_keys WHERE id = ?1",
            [id_value(id)],
        )
    }

    fn list(&self, account: &str, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.inner.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT record, last_used_at FROM apikeys_keys
                 WHERE account = ?1
                   AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR owner = ?3)",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(
                params![
                    account,
                    filter.kind.map(|k| k.as_str()),
                    filter.owner.as_deref()
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for row in rows {
            let (json, used) = row.map_err(unavailable)?;
            let mut r = from_json(&json, used)?;
            self.inner.uses.merge(&mut r);
            out.push(r);
        }
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    fn update(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord),
    ) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let updated = inner.write(|tx| {
            let row = tx
                .query_row(
                    "SELECT record, last_used_at FROM apikeys_keys WHERE id = ?1",
                    [id_value(id)],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            let Some((json, used)) = row else {
                return Ok(None);
            };
            let mut before = from_json(&json, used)?;
            inner.uses.merge(&mut before);
            let mut after = before.clone();
            change(&mut after);
            check_immutable(&before, &after)?;
            let last_used = after.last_used_at.max(before.last_used_at);
            tx.execute(
                "UPDATE apikeys_keys SET record = ?2, last_used_at = ?3 WHERE id = ?1",
                params![id_value(id), to_json(&after)?, last_used.map(millis)],
            )
            .map_err(unavailable)?;
            Ok(Some(after))
        })?;
        if let Some(r) = &updated {
            inner.cache.invalidate(&r.digest);
        }
        Ok(updated)
    }

    fn delete(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let deleted = inner.write(|tx| {
            let row = tx
                .query_row(
                    "SELECT record, last_used_at FROM apikeys_keys WHERE id = ?1",
                    [id_value(id)],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            let Some((json, used)) = row else {
                return Ok(None);
            };
            let mut r = from_json(&json, used)?;
            inner.uses.merge(&mut r);
            tx.execute("DELETE FROM apikeys_keys WHERE id = ?1", [id_value(id)])
                .map_err(unavailable)?;
            Ok(Some(r))
        })?;
        if let Some(r) = &deleted {
            inner.cache.invalidate(&r.digest);
            inner.uses.forget(id);
        }
        Ok(deleted)
    }

    fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError> {
        self.inner.uses.push(id, at);
        self.inner.cache.note_use(id, at);
        Ok(())
    }

    fn account_settings(&self, account: &str) -> Result<AccountSettings, StoreError> {
        let conn = self.inner.reader()?;
        let row = conn
            .prepare_cached(
                "SELECT rest_api, advanced_permissions FROM apikeys_accounts WHERE account = ?1",
            )
            .map_err(unavailable)?
            .query_row([account], |r| {
                Ok(AccountSettings {
                    rest_api: r.get(0)?,
                    advanced_permissions: r.get(1)?,
                })
            })
            .optional()
            .map_err(unavailable)?;
        Ok(row.unwrap_or_default())
    }

    fn set_account_settings(
        &self,
        account: &str,
        settings: AccountSettings,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx| {
            tx.execute(
                "INSERT INTO apikeys_accounts (account, rest_api, advanced_permissions)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (account) DO UPDATE
                 SET rest_api = excluded.rest_api,
                     advanced_permissions = excluded.advanced_permissions",
                params![account, settings.rest_api, settings.advanced_permissions],
            )
            .map_err(unavailable)?;
            Ok(())
        })?;
        self.inner.cache.clear();
        Ok(())
    }

    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
        user_in(&*self.inner.reader()?, account, user)
    }

    fn flush_writes(&self) -> Result<usize, StoreError> {
        SqliteStore::flush(self)
    }

    fn set_user(&self, account: &str, user: &str, state: UserState) -> Result<(), StoreError> {
        self.inner
            .write(|tx| set_user_in(tx, account, user, state))?;
        self.inner.cache.clear();
        Ok(())
    }
}
