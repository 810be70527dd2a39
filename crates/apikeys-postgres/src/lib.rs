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
//!   searched columns. [`PostgresOptions::schema`] puts the tables in a schema of
//!   their own.
//! - **Every write is one transaction**: it happens whole or not at all.
//! - **Lost connections**: a connection that broke is dropped from the pool and
//!   a new one is made for the next call. A read that finds its connection
//!   broken is retried once on a fresh one; a write is retried only if it broke
//!   before anything was sent (`BEGIN`), otherwise it fails with
//!   [`StoreError::Unavailable`] (and, being one transaction, wrote nothing).
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

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use apikeys::store::cache::{LookupCache, Stopper, UseQueue};
use apikeys::store::{CachedLookup, check_immutable, removed_state};
use apikeys::{
    AccountSettings, Digest, Disabled, KeyFilter, KeyId, KeyLookup, KeyRecord, KeyStore, Role,
    StoreError, Timestamp, UserInsert, UserState,
};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement, Transaction};

/// The newest schema version this crate knows.
pub const SCHEMA_VERSION: i32 = 1;

/// Migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE apikeys_keys (
        id           bigint PRIMARY KEY,  -- the key id's 64 bits
        digest       bytea NOT NULL,
        account      text NOT NULL,
        kind         text NOT NULL,
        owner        text,
        created_at   bigint NOT NULL,     -- unix milliseconds
        last_used_at bigint,              -- unix milliseconds
        record       text NOT NULL,       -- the KeyRecord as JSON, without last_used_at
        CONSTRAINT apikeys_keys_digest_key UNIQUE (digest)
    );
    CREATE INDEX apikeys_keys_account ON apikeys_keys (account, created_at);
    CREATE TABLE apikeys_accounts (
        account              text PRIMARY KEY,
        rest_api             boolean NOT NULL,
        advanced_permissions boolean NOT NULL
    );
    CREATE TABLE apikeys_users (
        account text NOT NULL,
        user_id text NOT NULL,
        role    text NOT NULL,
        removed boolean NOT NULL,
        PRIMARY KEY (account, user_id)
    );
    -- Change feed for the caches of every process: a changed or deleted key
    -- sends its digest (hex); account, user or bulk changes send '*'.
    CREATE FUNCTION apikeys_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('apikeys_changes_' || TG_TABLE_SCHEMA, encode(OLD.digest, 'hex'));
        RETURN NULL;
    END $$;
    CREATE FUNCTION apikeys_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('apikeys_changes_' || TG_TABLE_SCHEMA, '*');
        RETURN NULL;
    END $$;
    CREATE TRIGGER apikeys_keys_changed AFTER UPDATE OF record, digest, account, owner OR DELETE
        ON apikeys_keys FOR EACH ROW EXECUTE FUNCTION apikeys_notify_key();
    CREATE TRIGGER apikeys_keys_truncated AFTER TRUNCATE
        ON apikeys_keys FOR EACH STATEMENT EXECUTE FUNCTION apikeys_notify_all();
    CREATE TRIGGER apikeys_accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON apikeys_accounts FOR EACH STATEMENT EXECUTE FUNCTION apikeys_notify_all();
    CREATE TRIGGER apikeys_users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON apikeys_users FOR EACH STATEMENT EXECUTE FUNCTION apikeys_notify_all();
"];

const FIND_SQL: &str = "
    SELECT k.record, k.last_used_at, a.rest_api, a.advanced_permissions, u.role, u.removed
    FROM apikeys_keys k
    LEFT JOIN apikeys_accounts a ON a.account = k.account
    LEFT JOIN apikeys_users u ON u.account = k.account AND u.user_id =
        CASE k.kind WHEN 'scoped' THEN k.record::json ->> 'created_by' ELSE k.owner END
    WHERE k.digest = $1";
/// The keys whose standing user ([`apikeys::store::standing_user`]) is `$2`:
/// a user's tokens and the scoped tokens they made. Locked: no update of
/// them lands between the read and the offboarding's write.
const STANDING_KEYS_SQL: &str = "
    SELECT record, last_used_at FROM apikeys_keys
    WHERE account = $1
      AND ((kind = 'user_token' AND owner = $2)
        OR (kind = 'scoped' AND record::json ->> 'created_by' = $2))
    FOR UPDATE";
/// The user's standing, locked until the transaction ends.
const USER_FOR_UPDATE_SQL: &str =
    "SELECT role, removed FROM apikeys_users WHERE account = $1 AND user_id = $2 FOR UPDATE";
const GET_SQL: &str = "SELECT record, last_used_at FROM apikeys_keys WHERE id = $1";
const LIST_SQL: &str = "
    SELECT record, last_used_at FROM apikeys_keys
    WHERE account = $1
      AND ($2::text IS NULL OR kind = $2)
      AND ($3::text IS NULL OR owner = $3)";
const ACCOUNT_SQL: &str =
    "SELECT rest_api, advanced_permissions FROM apikeys_accounts WHERE account = $1";
const USER_SQL: &str =
    "SELECT role, removed FROM apikeys_users WHERE account = $1 AND user_id = $2";

/// How to connect a [`PostgresStore`]; [`PostgresStore::connect`] uses the defaults.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    cache: bool,
    cache_capacity: usize,
    pool_size: u32,
    connect_timeout: Duration,
    flush_interval: Duration,
    schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            cache: true,
            cache_capacity: 1_000_000,
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            flush_interval: Duration::from_secs(1),
            schema: None,
        }
    }
}

impl PostgresOptions {
    /// Whether to cache hot-path lookups in memory (default on). Off, every
    /// `authenticate` queries the server.
    pub fn cache(mut self, on: bool) -> Self {
        self.cache = on;
        self
    }

    /// At most about this many keys cached (default 1,000,000).
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n;
        self
    }

    /// At most this many pooled connections (default 16), besides the one that listens.
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long to wait for a connection before failing with
    /// [`StoreError::Unavailable`] (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How often queued last uses are written (default 1 s).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// Keep the tables in this schema (created if missing) instead of the
    /// connection's default. Lowercase ASCII letters, digits and `_`, at most 40.
    pub fn schema(mut self, name: &str) -> Self {
        self.schema = Some(name.to_owned());
        self
    }

    /// Connect, creating or migrating the schema.
    pub fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, self)
    }
}

/// A pooled connection and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, args)
    }
}

struct Manager {
    config: Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

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
}

/// Whether an error means the connection is gone (so a fresh one may work).
fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            let c = c.code();
            // 08: connection exception; 57P: operator intervention (shutdown, terminated).
            c.starts_with("08") || c.starts_with("57P")
        }
        // Not an error from the server: I/O on the socket.
        None => e.as_db_error().is_none(),
    }
}

fn pg(e: postgres::Error) -> StoreError {
    if connection_lost(&e) {
        StoreError::Unavailable(format!(
            "PostgreSQL connection lost ({e}); nothing was written, and the next call reconnects"
        ))
    } else {
        StoreError::Unavailable(format!("PostgreSQL: {e}"))
    }
}

fn corrupt(what: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("PostgreSQL: {what}: {e}"))
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

/// A connection setting that can never work, found before any network access:
/// which option (`"url"` or `"schema"`) and what is wrong with it. The message
/// never repeats the value (a URL may carry a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSetting {
    /// `"url"` or `"schema"`.
    pub field: &'static str,
    /// What is wrong, without the value.
    pub reason: String,
}

impl fmt::Display for BadSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

impl std::error::Error for BadSetting {}

fn bad(field: &'static str, reason: impl Into<String>) -> BadSetting {
    BadSetting {
        field,
        reason: reason.into(),
    }
}

/// Check a URL or `key=value` connection string the way the driver parses it,
/// plus what the driver only finds out when connecting (no host, hosts and
/// ports or hostaddrs that do not pair up). An unreachable but well-formed
/// URL passes: that is [`StoreError::Unavailable`] at connect time.
/// [`PostgresStore::connect`] runs this first; bindings call it to report a
/// caller's mistake as invalid input rather than as an outage.
pub fn check_url(url: &str) -> Result<(), BadSetting> {
    let config = Config::from_str(url).map_err(|e| {
        // "invalid connection string"; its source names the option: "invalid
        // value for option `port`", "unknown option `x`", "unexpected EOF".
        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| c.to_string());
        bad(
            "url",
            format!(
                "is not a PostgreSQL URL (postgres://user:password@host:port/dbname) or \
                 key=value connection string: {why}"
            ),
        )
    })?;
    let (names, addrs) = (config.get_hosts().len(), config.get_hostaddrs().len());
    let hosts = names.max(addrs);
    if hosts == 0 {
        return Err(bad("url", "names no host"));
    }
    if names != 0 && addrs != 0 && names != addrs {
        return Err(bad("url", "has a different number of hosts and hostaddrs"));
    }
    let ports = config.get_ports().len();
    if ports > 1 && ports != hosts {
        return Err(bad("url", "has a different number of ports and hosts"));
    }
    Ok(())
}

/// Check a schema name for [`PostgresOptions::schema`]: 1 to 40 lowercase
/// ASCII letters, digits or `_`, starting with a letter (so it never needs
/// quoting in SQL).
pub fn check_schema(name: &str) -> Result<(), BadSetting> {
    let ok = name.len() <= 40
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "schema",
            "must be 1 to 40 lowercase ASCII letters, digits or '_', starting with a letter",
        ))
    }
}

fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg)?;
    // One migrator at a time, whichever process gets here first.
    tx.batch_execute("SELECT pg_advisory_xact_lock(7311529024145163)")
        .map_err(pg)?;
    if let Some(s) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
            .map_err(pg)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS apikeys_schema_version (version integer NOT NULL)",
    )
    .map_err(pg)?;
    let version: i32 = tx
        .query_opt("SELECT max(version) FROM apikeys_schema_version", &[])
        .map_err(pg)?
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "PostgreSQL: the database has apikeys schema version {version}, written by a newer \
             apikeys-postgres (this one knows up to {SCHEMA_VERSION}); upgrade it"
        )));
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).map_err(pg)?;
        tx.execute("DELETE FROM apikeys_schema_version", &[])
            .map_err(pg)?;
        tx.execute(
            "INSERT INTO apikeys_schema_version (version) VALUES ($1)",
            &[&(v as i32 + 1)],
        )
        .map_err(pg)?;
    }
    tx.commit().map_err(pg)
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
        let setting = |e: BadSetting| StoreError::Unavailable(format!("PostgreSQL {e}"));
        check_url(url).map_err(setting)?;
        if let Some(s) = &options.schema {
            check_schema(s).map_err(setting)?;
        }
        let mut config = Config::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        config.application_name(&format!(
            "apikeys/{}",
            options.schema.as_deref().unwrap_or("default")
        ));
        if let Some(s) = &options.schema {
            config.options(&format!("-c search_path={s}"));
        }
        let mut client = config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&mut client, options.schema.as_deref())?;
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
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let inner = Arc::new(Inner {
            pool,
            config,
            channel: format!("apikeys_changes_{schema}"),
            cache: LookupCache::new(options.cache_capacity),
            options,
            uses: UseQueue::default(),
        });
        let stop = Arc::new(Stopper::default());
        let mut workers = Vec::new();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StoreError::Unavailable(format!("cannot start a thread: {e}")))
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

impl Inner {
    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))
    }

    /// How many connections to try before giving up: after a server restart
    /// every idle pooled connection is dead, and each is found out by one try.
    fn attempts(&self) -> u32 {
        self.options.pool_size + 1
    }

    /// Run a read; while the pooled connection turns out broken, again on another.
    fn read<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut attempt = 1;
        loop {
            let mut conn = self.conn()?;
            match f(&mut conn) {
                Ok(v) => return Ok(v),
                Err(e) if connection_lost(&e) && attempt < self.attempts() => attempt += 1,
                Err(e) => return Err(pg(e)),
            }
        }
    }

    /// Run `f` in one transaction. Retried on another connection only when the
    /// connection was found broken at `BEGIN`, before anything was sent.
    fn write<T>(
        &self,
        mut f: impl FnMut(
            &mut Transaction<'_>,
            &mut HashMap<&'static str, Statement>,
        ) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 1;
        loop {
            let mut conn = self.conn()?;
            let Conn { client, statements } = &mut *conn;
            let mut tx = match client.transaction() {
                Ok(tx) => tx,
                Err(e) if connection_lost(&e) && attempt < self.attempts() => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(pg(e)),
            };
            let out = f(&mut tx, statements)?;
            tx.commit().map_err(pg)?;
            return Ok(out);
        }
    }

    fn flush(&self) -> Result<usize, StoreError> {
        self.uses.flush(|uses| {
            let ids: Vec<i64> = uses.iter().map(|&(id, _)| id_value(id)).collect();
            let ats: Vec<i64> = uses.iter().map(|&(_, at)| millis(at)).collect();
            self.write(|tx, _| {
                tx.execute(
                    "UPDATE apikeys_keys k
                     SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), u.at)
                     FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at)
                     WHERE k.id = u.id",
                    &[&ids, &ats],
                )
                .map_err(pg)?;
                Ok(())
            })
        })
    }

    /// A connection that LISTENs on this store's change channel.
    fn listen(&self) -> Result<Client, StoreError> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        client
            .batch_execute(&format!("LISTEN {}", self.channel))
            .map_err(pg)?;
        Ok(client)
    }

    /// The listener: applies notifications to the cache; reconnects when the
    /// connection breaks, with the cache off until it is back.
    fn watch(&self, mut client: Client, stop: &Stopper) {
        let mut last_ping = Instant::now();
        loop {
            // Until the connection breaks: apply what arrives.
            loop {
                if stop.sleep(Duration::ZERO) {
                    return;
                }
                let next = {
                    let mut n = client.notifications();
                    let next = n.timeout_iter(Duration::from_millis(100)).next();
                    next.map(|o| o.map(|note| note.payload().to_owned()))
                };
                match next {
                    Ok(Some(payload)) => match Digest::from_hex(&payload) {
                        Some(d) => self.cache.invalidate(&d),
                        // '*' (or anything unexpected): everything may have changed.
                        None => self.cache.clear(),
                    },
                    Ok(None) => {}
                    Err(_) => break,
                }
                if client.is_closed() {
                    break;
                }
                // A silent network can hide a dead connection: ask now and then.
                if last_ping.elapsed() > Duration::from_secs(2) {
                    last_ping = Instant::now();
                    if client.simple_query("").is_err() {
                        break;
                    }
                }
            }
            self.cache.set_enabled(false);
            loop {
                if stop.sleep(Duration::from_millis(100)) {
                    return;
                }
                if let Ok(c) = self.listen() {
                    client = c;
                    // Whatever changed meanwhile is unknown: start empty.
                    self.cache.set_enabled(true);
                    break;
                }
            }
        }
    }

    fn fetch(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        let bytes: &[u8] = &digest.as_bytes()[..];
        let rows = self.read(|c| c.query(FIND_SQL, &[&bytes]))?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let json: &str = row.get(0);
        let mut record = from_json(json, row.get(1))?;
        self.uses.merge(&mut record);
        let last_used_at = record.last_used_at.take();
        let rest_api: Option<bool> = row.get(2);
        let advanced: Option<bool> = row.get(3);
        let role: Option<&str> = row.get(4);
        let removed: Option<bool> = row.get(5);
        let owner = match (role, removed) {
            (Some(role), Some(removed)) => Some(UserState {
                role: Role::parse(role).map_err(|e| corrupt("bad role", e))?,
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

    fn record_from(&self, row: &Row) -> Result<KeyRecord, StoreError> {
        let mut r = from_json(row.get(0), row.get(1))?;
        self.uses.merge(&mut r);
        Ok(r)
    }
}

fn prepared(
    tx: &mut Transaction<'_>,
    statements: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).map_err(pg)?;
    statements.insert(sql, s.clone());
    Ok(s)
}

/// Insert `record` in `tx`, refusing a duplicate id or digest.
fn insert_in(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    record: &KeyRecord,
) -> Result<(), StoreError> {
    let json = to_json(record)?;
    let digest: &[u8] = &record.digest.as_bytes()[..];
    let last_used = record.last_used_at.map(millis);
    let s = prepared(
        tx,
        st,
        "INSERT INTO apikeys_keys
             (id, digest, account, kind, owner, created_at, last_used_at, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )?;
    let result = tx.execute(
        &s,
        &[
            &id_value(record.id),
            &digest,
            &&*record.account,
            &record.kind.as_str(),
            &record.owner.as_deref(),
            &millis(record.created_at),
            &last_used,
            &json,
        ],
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let on_digest = e
                .as_db_error()
                .and_then(|d| d.constraint())
                .is_some_and(|c| c.contains("digest"));
            Err(StoreError::Duplicate {
                field: if on_digest { "digest" } else { "id" },
            })
        }
        Err(e) => Err(pg(e)),
    }
}

fn user_from(row: &Row) -> Result<UserState, StoreError> {
    Ok(UserState {
        role: Role::parse(row.get(0)).map_err(|e| corrupt("bad role", e))?,
        removed: row.get(1),
    })
}

/// The user's standing, locked in `tx` until it ends (`None`: unknown).
fn user_for_update(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    account: &str,
    user: &str,
) -> Result<Option<UserState>, StoreError> {
    let s = prepared(tx, st, USER_FOR_UPDATE_SQL)?;
    tx.query_opt(&s, &[&account, &user])
        .map_err(pg)?
        .as_ref()
        .map(user_from)
        .transpose()
}

impl KeyStore for PostgresStore {
    fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.inner.write(|tx, st| insert_in(tx, st, &record))
        // No cache entry to drop: misses are never cached.
    }

    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
    ) -> Result<UserInsert, StoreError> {
        let account: &str = &record.account;
        let (outcome, new_user) = self.inner.write(|tx, st| {
            // The user's row stays locked until commit, so an offboarding
            // (which updates that row first) waits for this insert or sees it.
            let mut known = user_for_update(tx, st, account, user)?;
            let mut new_user = false;
            if known.is_none() {
                if !admit(&if_unknown) {
                    return Ok((UserInsert::Refused(if_unknown), false));
                }
                let s = prepared(
                    tx,
                    st,
                    "INSERT INTO apikeys_users (account, user_id, role, removed)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (account, user_id) DO NOTHING",
                )?;
                let n = tx
                    .execute(
                        &s,
                        &[
                            &account,
                            &user,
                            &if_unknown.role.as_str(),
                            &if_unknown.removed,
                        ],
                    )
                    .map_err(pg)?;
                if n == 1 {
                    new_user = true;
                } else {
                    // Someone stored this user meanwhile: decide on their row.
                    known = user_for_update(tx, st, account, user)?;
                }
            }
            let state = known.unwrap_or(if_unknown);
            if !new_user && !admit(&state) {
                return Ok((UserInsert::Refused(state), false));
            }
            insert_in(tx, st, &record)?;
            Ok((UserInsert::Inserted(state), new_user))
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
        let unknown = removed_state(None);
        let mut out = inner.write(|tx, st| {
            // The user's row first: it waits for a token insert in flight,
            // and every insert after this one sees the user removed.
            let s = prepared(
                tx,
                st,
                "INSERT INTO apikeys_users (account, user_id, role, removed)
                 VALUES ($1, $2, $3, true)
                 ON CONFLICT (account, user_id) DO UPDATE SET removed = true",
            )?;
            tx.execute(&s, &[&account, &user, &unknown.role.as_str()])
                .map_err(pg)?;
            let s = prepared(tx, st, STANDING_KEYS_SQL)?;
            let rows = tx.query(&s, &[&account, &user]).map_err(pg)?;
            let mut changed = Vec::new();
            for row in &rows {
                let r = inner.record_from(row)?;
                if r.disabled.is_none() {
                    changed.push(r);
                }
            }
            let s = prepared(tx, st, "UPDATE apikeys_keys SET record = $2 WHERE id = $1")?;
            for r in &mut changed {
                r.disabled = Some(Box::new(disabled.clone()));
                tx.execute(&s, &[&id_value(r.id), &to_json(r)?])
                    .map_err(pg)?;
            }
            Ok(changed)
        })?;
        inner.cache.clear();
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
        let rows = self.inner.read(|c| c.query(GET_SQL, &[&id_value(id)]))?;
        rows.first().map(|r| self.inner.record_from(r)).transpose()
    }

    fn list(&self, account: &str, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let kind = filter.kind.map(|k| k.as_str());
        let owner = filter.owner.as_deref();
        let rows = self
            .inner
            .read(|c| c.query(LIST_SQL, &[&account, &kind, &owner]))?;
        let mut out = rows
            .iter()
            .map(|r| self.inner.record_from(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    fn update(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord),
    ) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let updated = inner.write(|tx, st| {
            let s = prepared(
                tx,
                st,
                "SELECT record, last_used_at FROM apikeys_keys WHERE id = $1 FOR UPDATE",
            )?;
            let Some(row) = tx.query_opt(&s, &[&id_value(id)]).map_err(pg)? else {
                return Ok(None);
            };
            let before = inner.record_from(&row)?;
            let mut after = before.clone();
            change(&mut after);
            check_immutable(&before, &after)?;
            let last_used = after.last_used_at.max(before.last_used_at).map(millis);
            let s = prepared(
                tx,
                st,
                "UPDATE apikeys_keys SET record = $2, last_used_at = $3 WHERE id = $1",
            )?;
            tx.execute(&s, &[&id_value(id), &to_json(&after)?, &last_used])
                .map_err(pg)?;
            Ok(Some(after))
        })?;
        if let Some(r) = &updated {
            inner.cache.invalidate(&r.digest);
        }
        Ok(updated)
    }

    fn delete(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let deleted = inner.write(|tx, st| {
            let s = prepared(
                tx,
                st,
                "DELETE FROM apikeys_keys WHERE id = $1 RETURNING record, last_used_at",
            )?;
            let Some(row) = tx.query_opt(&s, &[&id_value(id)]).map_err(pg)? else {
                return Ok(None);
            };
            inner.record_from(&row).map(Some)
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
        let rows = self.inner.read(|c| c.query(ACCOUNT_SQL, &[&account]))?;
        Ok(rows
            .first()
            .map(|r| AccountSettings {
                rest_api: r.get(0),
                advanced_permissions: r.get(1),
            })
            .unwrap_or_default())
    }

    fn set_account_settings(
        &self,
        account: &str,
        settings: AccountSettings,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx, st| {
            let s = prepared(
                tx,
                st,
                "INSERT INTO apikeys_accounts (account, rest_api, advanced_permissions)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (account) DO UPDATE
                 SET rest_api = excluded.rest_api,
                     advanced_permissions = excluded.advanced_permissions",
            )?;
            tx.execute(
                &s,
                &[&account, &settings.rest_api, &settings.advanced_permissions],
            )
            .map_err(pg)?;
            Ok(())
        })?;
        self.inner.cache.clear();
        Ok(())
    }

    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
        let rows = self.inner.read(|c| c.query(USER_SQL, &[&account, &user]))?;
        rows.first().map(user_from).transpose()
    }

    fn flush_writes(&self) -> Result<usize, StoreError> {
        PostgresStore::flush(self)
    }

    fn set_user(&self, account: &str, user: &str, state: UserState) -> Result<(), StoreError> {
        self.inner.write(|tx, st| {
            let s = prepared(
                tx,
                st,
                "INSERT INTO apikeys_users (account, user_id, role, removed)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account, user_id) DO UPDATE
                 SET role = excluded.role, removed = excluded.removed",
            )?;
            tx.execute(&s, &[&account, &user, &state.role.as_str(), &state.removed])
                .map_err(pg)?;
            Ok(())
        })?;
        self.inner.cache.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{check_schema, check_url};

    #[test]
    fn well_formed_urls_pass_even_if_nothing_listens() {
        for url in [
            "postgres://app:secret@db.internal:5432/app",
            "postgresql://localhost/app?connect_timeout=2",
            "host=/run/postgresql dbname=app",
            "host=a,b port=5432,5433 user=x",
            "hostaddr=127.0.0.1 dbname=app",
        ] {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn urls_that_can_never_connect_name_the_url_and_never_its_password() {
        for (url, why) in [
            ("postgres://app:hunter22@db:notaport/app", "port"),
            (
                "postgres://app:hunter22@db/app?bogus_option=1",
                "bogus_option",
            ),
            ("not a url at all hunter22", "connection string"),
            ("dbname=app password=hunter22", "names no host"),
            ("host=a,b hostaddr=127.0.0.1 password=hunter22", "hostaddrs"),
            ("host=a,b,c port=1,2 password=hunter22", "ports and hosts"),
            ("", "names no host"),
        ] {
            let e = check_url(url).expect_err(url);
            assert_eq!(e.field, "url");
            let text = e.to_string();
            assert!(text.contains(why), "{url}: {text}");
            assert!(!text.contains("hunter22"), "{url}: {text}");
        }
    }

    #[test]
    fn schema_names_follow_the_documented_rule() {
        for ok in ["a", "apikeys", "tenant_42", &"x".repeat(40)] {
            assert_eq!(check_schema(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "_abc",
            "Apikeys",
            "a-b",
            "a b",
            "a;drop",
            "é",
            &"x".repeat(41),
        ] {
            let e = check_schema(bad).expect_err(bad);
            assert_eq!(e.field, "schema");
            assert!(e.reason.contains("1 to 40"), "{bad}");
        }
    }
}
