//! Building a keyring from its options: checking them (on the JavaScript
//! thread), then opening the store and the limiter (which may block: on the
//! JavaScript thread for `new Keyring(…)`, on libuv's thread pool for
//! `Keyring.open(…)`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use apikeys::{MemoryAuditLog, MemoryStore};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::to_js;
use crate::types::{KeyringOptions, RateLimiterOptions, StoreOptions};

type CoreResult<T> = apikeys::Result<T>;

pub(crate) fn invalid(field: &'static str, reason: &str) -> apikeys::Error {
    // `Error::invalid` is crate-private in the core; this builds the same variant.
    apikeys::Error::InvalidInput {
        field,
        reason: reason.to_owned(),
    }
}

/// Longest path accepted for a SQLite file, in bytes.
const MAX_PATH_BYTES: usize = 4096;
/// Longest URL accepted for PostgreSQL or Redis, in bytes.
const MAX_URL_BYTES: usize = 4096;

/// Which store to open.
enum StorePlan {
    Memory,
    Sqlite(std::path::PathBuf, bool),
    Postgres {
        url: String,
        schema: Option<String>,
        outbox: bool,
    },
}

/// The options, checked and owned, ready to be opened on any thread.
pub(crate) struct Plan {
    pepper: Option<zeroize::Zeroizing<Vec<u8>>>,
    store: StorePlan,
    limits: Option<apikeys::RateLimits>,
    limiter: Option<apikeys_redis::RedisRateLimiterBuilder>,
    audit_capacity: Option<u32>,
    rotation_quiet: Option<Duration>,
    clock: Option<apikeys::ManualClock>,
}

/// Which store a keyring holds (for `storeKind`; `flush` goes through the core).
#[derive(Clone, Copy)]
pub(crate) enum Durable {
    Memory,
    Sqlite,
    Postgres,
}

impl Durable {
    /// The store's kind: `memory`, `sqlite` or `postgres`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Durable::Memory => "memory",
            Durable::Sqlite => "sqlite",
            Durable::Postgres => "postgres",
        }
    }
}

/// A keyring opened, with what the binding keeps beside it.
pub struct Opened {
    pub(crate) keyring: apikeys::Keyring,
    pub(crate) durable: Durable,
    pub(crate) limited: bool,
    pub(crate) limiter: Option<Arc<apikeys_redis::RedisRateLimiter>>,
    /// The durable store's webhook outbox (none in memory).
    pub(crate) outbox: Option<Arc<dyn apikeys::webhooks::Outbox>>,
}

fn checked_text(s: &str, field: &'static str, max: usize) -> CoreResult<()> {
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(invalid(field, &format!("must be at most {max} bytes")));
    }
    if s.contains('\0') {
        return Err(invalid(field, "contains a NUL character"));
    }
    Ok(())
}

fn store_plan(o: &StoreOptions) -> CoreResult<StorePlan> {
    let named = usize::from(o.memory.is_some())
        + usize::from(o.sqlite.is_some())
        + usize::from(o.postgres.is_some());
    if named != 1 {
        return Err(invalid(
            "store",
            "name exactly one store: { memory: true }, { sqlite: path } or { postgres: url }",
        ));
    }
    if o.outbox.is_some() && o.memory.is_some() {
        return Err(invalid(
            "store",
            "'outbox' goes only with { sqlite: path } or { postgres: url }",
        ));
    }
    if o.schema.is_some() && o.postgres.is_none() {
        return Err(invalid(
            "store",
            "'schema' goes only with { postgres: url }",
        ));
    }
    if let Some(path) = &o.sqlite {
        checked_text(path, "store.sqlite", MAX_PATH_BYTES)?;
        return Ok(StorePlan::Sqlite(path.into(), o.outbox == Some(true)));
    }
    if let Some(url) = &o.postgres {
        checked_text(url, "store.postgres", MAX_URL_BYTES)?;
        if let Some(schema) = &o.schema {
            checked_text(schema, "store.schema", 40)?;
        }
        return Ok(StorePlan::Postgres {
            url: url.clone(),
            schema: o.schema.clone(),
            outbox: o.outbox == Some(true),
        });
    }
    if o.memory == Some(false) {
        return Err(invalid("store", "names no store; use { memory: true }"));
    }
    Ok(StorePlan::Memory)
}

fn limiter_plan(o: &RateLimiterOptions) -> CoreResult<apikeys_redis::RedisRateLimiterBuilder> {
    use apikeys_redis::Fallback;
    checked_text(&o.redis, "rate_limiter.redis", MAX_URL_BYTES)?;
    let mut b = apikeys_redis::RedisRateLimiter::builder(&o.redis);
    if let Some(f) = &o.fallback {
        b = b.fallback(match f.as_str() {
            "local" => Fallback::Local,
            "deny" => Fallback::Deny,
            "allow" => Fallback::Allow,
            _ => {
                return Err(invalid(
                    "rate_limiter.fallback",
                    "must be 'local', 'deny' or 'allow'",
                ));
            }
        });
    }
    if let Some(p) = &o.prefix {
        checked_text(p, "rate_limiter.prefix", 256)?;
        b = b.prefix(p);
    }
    if let Some(ms) = o.timeout_ms {
        if ms == 0 {
            return Err(invalid("rate_limiter.timeout_ms", "must be at least 1"));
        }
        b = b.timeout(Duration::from_millis(u64::from(ms)));
    }
    Ok(b)
}

impl Plan {
    /// Checks the options; opens nothing.
    pub(crate) fn new(
        o: Option<KeyringOptions>,
        clock: Option<apikeys::ManualClock>,
    ) -> CoreResult<Plan> {
        let mut plan = Plan {
            pepper: None,
            store: StorePlan::Memory,
            limits: None,
            limiter: None,
            audit_capacity: None,
            rotation_quiet: None,
            clock,
        };
        let Some(o) = o else { return Ok(plan) };
        if let Some(s) = &o.store {
            plan.store = store_plan(s)?;
        }
        if let Some(p) = &o.pepper {
            let bytes: &[u8] = match p {
                Either::A(s) => s.as_bytes(),
                Either::B(b) => b,
            };
            plan.pepper = Some(zeroize::Zeroizing::new(bytes.to_vec()));
        }
        if let Some(l) = &o.rate_limits {
            plan.limits = Some(crate::keyring::rate_limits(l)?);
        }
        if let Some(l) = &o.rate_limiter {
            if plan.limits.is_none() {
                return Err(invalid(
                    "rate_limiter",
                    "counts requests against rateLimits: give rateLimits too",
                ));
            }
            plan.limiter = Some(limiter_plan(l)?);
        }
        plan.audit_capacity = o.audit_capacity;
        if let Some(ms) = o.rotation_quiet_ms {
            plan.rotation_quiet = Some(crate::types::duration(ms, "rotation_quiet")?);
        }
        Ok(plan)
    }

    /// Opens the store (file or network I/O) and builds the keyring.
    pub(crate) fn open(self) -> CoreResult<Opened> {
        let mut builder = apikeys::Keyring::builder();
        let mut outbox: Option<Arc<dyn apikeys::webhooks::Outbox>> = None;
        let durable = match self.store {
            StorePlan::Memory => {
                builder = builder.store(MemoryStore::new());
                Durable::Memory
            }
            StorePlan::Sqlite(path, on) => {
                let store = Arc::new(
                    apikeys_sqlite::SqliteStore::options()
                        .outbox(on)
                        .open(&path)?,
                );
                outbox = Some(store.clone());
                builder = builder.shared_store(store);
                Durable::Sqlite
            }
            StorePlan::Postgres {
                url,
                schema,
                outbox: on,
            } => {
                let mut opts = apikeys_postgres::PostgresStore::options().outbox(on);
                if let Some(schema) = &schema {
                    opts = opts.schema(schema);
                }
                let store = Arc::new(opts.connect(&url)?);
                outbox = Some(store.clone());
                builder = builder.shared_store(store);
                Durable::Postgres
            }
        };
        if let Some(p) = &self.pepper {
            builder = builder.pepper(p);
        }
        let limited = self.limits.is_some();
        if let Some(l) = self.limits {
            builder = builder.rate_limits(l);
        }
        let limiter = match self.limiter {
            Some(b) => Some(Arc::new(b.build()?)),
            None => None,
        };
        if let Some(l) = &limiter {
            builder = builder.rate_limiter(Arc::clone(l) as Arc<dyn apikeys::RateLimiter>);
        }
        if let Some(clock) = self.clock {
            builder = builder.clock(clock);
        }
        if let Some(quiet) = self.rotation_quiet {
            builder = builder.rotation_quiet(quiet);
        }
        if let Some(cap) = self.audit_capacity {
            builder = builder.audit_sink(Arc::new(MemoryAuditLog::with_capacity(cap as usize)));
        }
        Ok(Opened {
            keyring: builder.build()?,
            durable,
            limited,
            limiter,
            outbox,
        })
    }
}

/// A keyring opened off the JavaScript thread by `Keyring.open`, waiting to
/// be wrapped in a `Keyring` object. Not for direct use.
#[napi(js_name = "_OpenedKeyring")]
pub struct OpenedKeyring {
    pub(crate) inner: Mutex<Option<Opened>>,
}

impl OpenedKeyring {
    /// Takes the keyring out (once).
    pub(crate) fn take(&self) -> Option<Opened> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Opens a keyring on libuv's thread pool.
pub struct OpenTask {
    plan: Option<Plan>,
    failure: Option<apikeys::Error>,
}

impl OpenTask {
    pub(crate) fn new(plan: Plan) -> OpenTask {
        OpenTask {
            plan: Some(plan),
            failure: None,
        }
    }
}

impl Task for OpenTask {
    type Output = Opened;
    type JsValue = OpenedKeyring;

    fn compute(&mut self) -> Result<Opened> {
        let plan = self
            .plan
            .take()
            .ok_or_else(|| Error::from_reason("this task already ran"))?;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plan.open())) {
            Ok(Ok(o)) => Ok(o),
            Ok(Err(e)) => {
                self.failure = Some(e);
                Err(Error::from_reason("apikeys: opening the keyring failed"))
            }
            Err(_) => Err(Error::from_reason(
                "internal error: opening the keyring panicked; please report it",
            )),
        }
    }

    fn resolve(&mut self, _env: Env, output: Opened) -> Result<OpenedKeyring> {
        Ok(OpenedKeyring {
            inner: Mutex::new(Some(output)),
        })
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<OpenedKeyring> {
        Err(match self.failure.take() {
            Some(e) => to_js(&env, &e),
            None => err,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(memory: Option<bool>, sqlite: Option<&str>, postgres: Option<&str>) -> StoreOptions {
        StoreOptions {
            memory,
            sqlite: sqlite.map(str::to_owned),
            postgres: postgres.map(str::to_owned),
            schema: None,
            outbox: None,
        }
    }

    fn field_of(r: CoreResult<impl Sized>) -> &'static str {
        match r {
            Err(apikeys::Error::InvalidInput { field, .. }) => field,
            Err(e) => panic!("expected InvalidInput, got {e:?}"),
            Ok(_) => panic!("expected InvalidInput, got a value"),
        }
    }

    #[test]
    fn a_store_plan_names_exactly_one_store() {
        assert!(matches!(
            store_plan(&store(Some(true), None, None)),
            Ok(StorePlan::Memory)
        ));
        assert!(matches!(
            store_plan(&store(None, Some("k.db"), None)),
            Ok(StorePlan::Sqlite(p, false)) if p == std::path::Path::new("k.db")
        ));
        let mut with_outbox = store(None, Some("k.db"), None);
        with_outbox.outbox = Some(true);
        assert!(matches!(
            store_plan(&with_outbox),
            Ok(StorePlan::Sqlite(_, true))
        ));
        let mut memory_outbox = store(Some(true), None, None);
        memory_outbox.outbox = Some(true);
        assert_eq!(field_of(store_plan(&memory_outbox)), "store");
        assert!(matches!(
            store_plan(&store(None, None, Some("postgres://x/y"))),
            Ok(StorePlan::Postgres { schema: None, .. })
        ));
        assert_eq!(field_of(store_plan(&store(None, None, None))), "store");
        assert_eq!(
            field_of(store_plan(&store(Some(true), Some("k.db"), None))),
            "store"
        );
        assert_eq!(
            field_of(store_plan(&store(Some(false), None, None))),
            "store"
        );
        let mut s = store(None, Some("k.db"), None);
        s.schema = Some("x".into());
        assert_eq!(field_of(store_plan(&s)), "store");
    }

    #[test]
    fn bad_paths_urls_and_schemas_are_invalid_input_naming_the_field() {
        assert_eq!(
            field_of(store_plan(&store(None, Some(""), None))),
            "store.sqlite"
        );
        assert_eq!(
            field_of(store_plan(&store(None, Some("a\0b"), None))),
            "store.sqlite"
        );
        let long = "x".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(
            field_of(store_plan(&store(None, Some(&long), None))),
            "store.sqlite"
        );
        assert_eq!(
            field_of(store_plan(&store(None, None, Some("")))),
            "store.postgres"
        );
        let mut s = store(None, None, Some("postgres://x/y"));
        s.schema = Some("x".repeat(41));
        assert_eq!(field_of(store_plan(&s)), "store.schema");
    }

    #[test]
    fn a_limiter_plan_checks_fallback_prefix_and_timeout() {
        let o = |fallback: Option<&str>, timeout_ms: Option<u32>| RateLimiterOptions {
            redis: "redis://127.0.0.1:6379/".into(),
            fallback: fallback.map(str::to_owned),
            prefix: None,
            timeout_ms,
        };
        for f in ["local", "deny", "allow"] {
            assert!(limiter_plan(&o(Some(f), Some(5))).is_ok(), "{f}");
        }
        assert_eq!(
            field_of(limiter_plan(&o(Some("maybe"), None))),
            "rate_limiter.fallback"
        );
        assert_eq!(
            field_of(limiter_plan(&o(None, Some(0)))),
            "rate_limiter.timeout_ms"
        );
        let mut empty = o(None, None);
        empty.redis = String::new();
        assert_eq!(field_of(limiter_plan(&empty)), "rate_limiter.redis");
    }
}
