//! [`SqliteOptions`]: how to open a store.

use std::path::Path;
use std::time::Duration;

use apikeys::StoreError;

use crate::SqliteStore;

/// How to open a [`SqliteStore`]; [`SqliteStore::open`] uses the defaults.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub(crate) cache: bool,
    pub(crate) cache_capacity: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) busy_timeout: Duration,
    pub(crate) max_idle_readers: usize,
    pub(crate) outbox: bool,
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
            outbox: false,
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

    /// Turn the webhook outbox on for the file when opening it (default:
    /// leave the file as it is). Once on, it stays on for every process
    /// until [`SqliteStore::set_outbox`] turns it off: every change that makes
    /// webhook events writes them in its own transaction (docs/webhooks.md).
    pub fn outbox(mut self, on: bool) -> Self {
        self.outbox = on;
        self
    }

    /// Open (creating or migrating) the store at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path.as_ref(), self)
    }
}
