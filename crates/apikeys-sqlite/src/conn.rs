//! Connections: the writer every write goes through (one `BEGIN IMMEDIATE`
//! transaction each, after checking the write-ahead log), and a small pool
//! of readers.

use std::path::Path;

use apikeys::StoreError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{Inner, SqliteOptions, lock, unavailable};

pub(crate) fn open_connection(
    path: &Path,
    options: &SqliteOptions,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        StoreError::unavailable(
            format!("cannot open SQLite file {}: {e}", path.display()),
            e,
        )
    })?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(unavailable)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    Ok(conn)
}

/// The device and inode of the database's write-ahead log (`<path>-wal`), if it exists.
pub(crate) fn wal_identity(path: &Path) -> Option<(u64, u64)> {
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

/// A pooled read connection, returned to the pool when dropped.
pub(crate) struct Reader<'a> {
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
    pub(crate) fn reader(&self) -> Result<Reader<'_>, StoreError> {
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
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        self.wal_check()?;
        self.cache.fence();
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
    pub(crate) fn wal_check(&self) -> Result<(), StoreError> {
        let Some(seen) = *lock(&self.wal) else {
            return Ok(());
        };
        if wal_identity(&self.path) == Some(seen) {
            return Ok(());
        }
        self.cache.set_enabled(false);
        Err(StoreError::Unavailable(
            format!(
                "SQLite: the write-ahead log of {} was deleted or replaced under this store \
             (most likely another SQLite library in this process, such as Python's sqlite3 \
             module, opened and closed the same file); nothing was written. Reopen the store, \
             and never open its file with another SQLite library in the same process",
                self.path.display()
            )
            .into(),
        ))
    }
}
