//! [`PostgresStore`]: a [`KeyStore`] for `apikeys` in PostgreSQL, shared by many
//! processes and machines.
//!
//! ```no_run
//! use apikeys::{AccessLevel, Actor, Keyring, Request, Role};
//! use apikeys_postgres::PostgresStore;
//!
//! let store = PostgresStore::connect("postgres://app@db.internal/app")?;
//! let keyring = Keyring::new(store);
//! let admin = Actor::new("acme", "PADMIN1", Role::Admin);
//! let issued = keyring.create_general_key(&admin, "CI bot", AccessLevel::ReadOnly)?;
//! keyring.authenticate(issued.secret().expose(), &Request::rest("GET"))?;
//! # Ok::<(), apikeys::Error>(())
//! ```
//!
//! ## How it works
//! - **Client and pool**: the synchronous [`postgres`] client (rust-postgres),
//!   pooled with [`r2d2`]; each pooled connection keeps its prepared statements,
//!   so a query costs one round trip.
//! - **Schema**: tables `apikeys_keys` (primary key on the id, a unique
//!   constraint on the digest, an index on the account), `apikeys_accounts`,
//!   `apikeys_users`, and `apikeys_schema_version`. Created or migrated on
//!   connect, in one transaction under an advisory lock, so many processes may
//!   start at once; a database migrated by a newer version is refused. A record is
//!   stored as JSON (its serde form; the key itself is never stored) next to the
//!   searched columns ([`apikeys::store::rows`], shared with the other durable
//!   store). [`PostgresOptions::schema`] puts the tables in a schema of
//!   their own.
//! - **Every write is one transaction**: it happens whole or not at all.
//! - **Lost connections**: a connection that broke is dropped from the pool and
//!   a new one is made for the next call. A read that finds its connection
//!   broken is retried once on a fresh one; a write is retried only if it broke
//!   before anything was sent (`BEGIN`), otherwise it fails with
//!   [`StoreError::Unavailable`] (and, being one transaction, wrote nothing).
//! - **Errors** keep the driver's error as their
//!   [`source`](std::error::Error::source): a [`postgres::Error`] (or the
//!   pool's `r2d2::Error`) to downcast to and look into. Their messages say
//!   what the server said (severity, message, SQLSTATE code) but never its
//!   DETAIL, which may quote a row's values; the source still has it.
//! - **A cache in front of the hot path** ([`apikeys::store::cache`], shared
//!   with the other durable store): [`KeyStore::find_by_digest`] answers
//!   from memory once a key has been seen, so a warm `authenticate` costs about
//!   what it costs with [`apikeys::MemoryStore`]. Writes through this store
//!   update the cache before they return. Writes anywhere else (another process,
//!   another machine, or SQL by hand) fire triggers that `NOTIFY` a channel this
//!   store `LISTEN`s on, which drops the changed key (or, for account and user
//!   changes, everything). While the listening connection is down the cache is
//!   off, and it is emptied when it comes back: a cache never makes a
//!   disabled, deleted, expired or demoted key work.
//! - **Last used** times are queued in memory by [`KeyStore::record_use`] (the
//!   keyring calls it at most once a minute per key) and written in one
//!   transaction every [`PostgresOptions::flush_interval`] (1 s by default),
//!   by [`PostgresStore::flush`], and when the store is dropped. These writes
//!   do not fire the change trigger.
//!
//! ## Running the tests
//! The tests need a real PostgreSQL server, named by the environment variable
//! `APIKEYS_TEST_POSTGRES_URL`; without it they fail (they never skip). The
//! repository's test command starts a throwaway PostgreSQL 15 and sets it:
//! `bash scripts/test.sh`; or, to run only these tests,
//! `source scripts/services.sh && cargo test -p apikeys-postgres` in one bash shell.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod feed;
mod options;
mod outbox;
mod pool;
mod schema;
mod store;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;

#[cfg(doc)]
use apikeys::KeyStore;
use apikeys::StoreError;
use apikeys::store::cache::{LookupCache, Stopper, UseQueue};
use postgres::{Config, NoTls};

pub use options::{BadSetting, PostgresOptions, check_schema, check_url};
pub use schema::SCHEMA_VERSION;

use pool::{Manager, cannot_connect, pg};
use schema::migrate;

/// The store's name in its error messages.
const POSTGRES: &str = "PostgreSQL";

/// A [`KeyStore`] in PostgreSQL, with an in-memory cache in front of the hot
/// path kept fresh by LISTEN/NOTIFY. See the [crate documentation](crate).
pub struct PostgresStore {
    inner: Arc<Inner>,
    stop: Arc<Stopper>,
    workers: Vec<JoinHandle<()>>,
}

struct Inner {
    pool: r2d2::Pool<Manager>,
    config: Config,
    channel: String,
    options: PostgresOptions,
    cache: LookupCache,
    uses: UseQueue,
    /// Rotations' new keys seen in use, to note on their old keys at the
    /// next flush (never written from the hot path).
    successors: std::sync::Mutex<Vec<(apikeys::KeyId, apikeys::Timestamp)>>,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:password@host:port/dbname`, or
    /// `host=… user=…`), creating or migrating the schema, with the default options.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresOptions::default())
    }

    /// Options to connect with.
    pub fn options() -> PostgresOptions {
        PostgresOptions::default()
    }

    fn connect_with(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let setting = |e: BadSetting| StoreError::unavailable(format!("PostgreSQL {e}"), e);
        check_url(url).map_err(setting)?;
        if let Some(s) = &options.schema {
            check_schema(s).map_err(setting)?;
        }
        let mut config = Config::from_str(url)
            .map_err(|e| StoreError::unavailable(format!("bad PostgreSQL URL: {e}"), e))?;
        config.connect_timeout(options.connect_timeout);
        config.application_name(&format!(
            "apikeys/{}",
            options.schema.as_deref().unwrap_or("default")
        ));
        if let Some(s) = &options.schema {
            config.options(&format!("-c search_path={s}"));
        }
        let mut client = config.connect(NoTls).map_err(cannot_connect)?;
        migrate(&mut client, options.schema.as_deref())?;
        if options.outbox {
            client
                .execute(
                    "UPDATE apikeys_outbox_settings SET enabled = true WHERE id = 1",
                    &[],
                )
                .map_err(pg)?;
        }
        let schema: String = client
            .query_one("SELECT current_schema()", &[])
            .map_err(pg)?
            .get(0);
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(options.connect_timeout)
            .build(Manager {
                config: config.clone(),
            })
            .map_err(|e| {
                StoreError::unavailable(format!("cannot connect to PostgreSQL: {e}"), e)
            })?;
        let inner = Arc::new(Inner {
            pool,
            config,
            channel: format!("apikeys_changes_{schema}"),
            cache: LookupCache::new(options.cache_capacity),
            options,
            uses: UseQueue::default(),
            successors: std::sync::Mutex::new(Vec::new()),
        });
        let stop = Arc::new(Stopper::default());
        let mut workers = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StoreError::unavailable(format!("cannot start a thread: {e}"), e))
        };
        {
            let (inner, stop) = (inner.clone(), stop.clone());
            workers.push(spawn(
                "apikeys-pg-flush",
                Box::new(move || {
                    while !stop.sleep(inner.options.flush_interval) {
                        // A failed write stays queued for the next round.
                        let _ = inner.flush();
                    }
                }),
            )?);
        }
        if inner.options.cache {
            // Listen before the cache is first turned on, so nothing is missed.
            let listener = inner.listen()?;
            inner.cache.set_enabled(true);
            let (inner, stop) = (inner.clone(), stop.clone());
            workers.push(spawn(
                "apikeys-pg-listen",
                Box::new(move || inner.watch(listener, &stop)),
            )?);
        }
        Ok(PostgresStore {
            inner,
            stop,
            workers,
        })
    }

    /// Write every queued last use now; returns how many were written.
    pub fn flush(&self) -> Result<usize, StoreError> {
        self.inner.flush()
    }

    /// How many hot-path answers are cached now.
    pub fn cached_keys(&self) -> usize {
        self.inner.cache.len()
    }

    /// Whether the cache is on (off when turned off by the options, and while
    /// the connection listening for changes is down).
    pub fn cache_enabled(&self) -> bool {
        self.inner.cache.is_enabled()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.stop.stop();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // Best effort: call `flush` before dropping to see an error.
        let _ = self.inner.flush();
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("channel", &self.inner.channel)
            .field("cached_keys", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}
