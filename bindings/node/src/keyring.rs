//! The `Keyring` class: every core call, synchronous and as a Promise.

use std::sync::{Arc, Mutex};

use apikeys::{AccessLevel as CoreAccess, NewKey};
use napi::JsString;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::cache::{ERROR_BIT, ErrorTemplate, Errors, Slots, WOULD_BLOCK, lock};
use crate::error::to_js;
use crate::open::{Durable, OpenTask, OpenedKeyring, Plan, invalid};
use crate::types::{
    AccountSettings, Actor, AuditEvent, AuditPage, AuditQuery, GeneralKeyOptions, KeyOptions,
    KeyRecord, KeyringOptions, Principal, RateLimitStatus, RateLimiterState, Request,
    RotateOptions, UserState, duration, expiry, page_size, window_bound,
};

type CoreResult<T> = apikeys::Result<T>;

pub(crate) fn core_actor(a: &Actor) -> CoreResult<apikeys::Actor> {
    let role = apikeys::Role::parse(&a.role)?;
    let actor = apikeys::Actor::new(a.account.as_str(), a.user.as_str(), role);
    Ok(match &a.context {
        Some(c) => actor.with_context(c.to_core()),
        None => actor,
    })
}

fn core_request(api: &str, method: &str, scope: Option<&str>) -> CoreResult<apikeys::Request> {
    let req = match api {
        "rest" => apikeys::Request::rest(method),
        "events" => apikeys::Request::events(),
        _ => return Err(invalid("api", "must be 'rest' or 'events'")),
    };
    match scope {
        Some(s) => req.with_scope(s),
        None => Ok(req),
    }
}

/// Where a request came from (`remoteAddress`, `path`), owned: what the
/// Promise twins and the object forms of `authenticate` take.
type Place = (Option<String>, Option<String>);

/// The core's origin of a request, borrowed (the core copies it only when it
/// writes the key's last use); `None` when the request said nothing, which
/// leaves the key's last place as it was.
fn origin<'a>(
    address: Option<&'a dyn std::fmt::Display>,
    path: Option<&'a str>,
) -> Option<apikeys::Origin<'a>> {
    (address.is_some() || path.is_some()).then_some(apikeys::Origin {
        remote_address: address,
        path,
    })
}

fn owned_origin(place: &Place) -> Option<apikeys::Origin<'_>> {
    origin(
        place.0.as_ref().map(|a| a as &dyn std::fmt::Display),
        place.1.as_deref(),
    )
}

fn authenticate_from(
    k: &apikeys::Keyring,
    token: &str,
    req: &apikeys::Request,
    origin: Option<&apikeys::Origin<'_>>,
) -> CoreResult<apikeys::Principal> {
    match origin {
        None => k.authenticate(token, req),
        Some(o) => k.authenticate_from(token, req, o),
    }
}

fn try_authenticate_from(
    k: &apikeys::Keyring,
    token: &str,
    req: &apikeys::Request,
    origin: Option<&apikeys::Origin<'_>>,
) -> Option<CoreResult<apikeys::Principal>> {
    match origin {
        None => k.try_authenticate(token, req),
        Some(o) => k.try_authenticate_from(token, req, o),
    }
}

/// The caller's address as the JavaScript layer handed it on the synchronous
/// hot path: left a JavaScript string, and read only if the core writes it
/// as the place of the key's last use (at most once a minute per key), so a
/// request pays nothing for it otherwise. The path cannot wait so: the core
/// borrows it as text.
struct LazyAddress<'a>(JsString<'a>);

impl std::fmt::Display for LazyAddress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A string the JavaScript layer checked; should napi fail to read it,
        // no address is kept (the core keeps nothing for an empty one).
        match self.0.into_utf8() {
            Ok(text) => f.write_str(text.as_str().unwrap_or_default()),
            Err(_) => Ok(()),
        }
    }
}

/// Runs `f` with the origin of a request whose address and path are
/// JavaScript strings (see [`LazyAddress`]); `None` when both are absent.
pub(crate) fn with_js_origin<T>(
    address: Option<JsString<'_>>,
    path: Option<JsString<'_>>,
    f: impl FnOnce(Option<&apikeys::Origin<'_>>) -> T,
) -> T {
    if address.is_none() && path.is_none() {
        return f(None);
    }
    let address = address.map(LazyAddress);
    let path = path.and_then(|p| p.into_utf8().ok());
    let o = origin(
        address.as_ref().map(|a| a as &dyn std::fmt::Display),
        path.as_ref().and_then(|p| p.as_str().ok()),
    );
    f(o.as_ref())
}

/// The core's audit query for a JavaScript one.
fn core_query(q: &AuditQuery) -> CoreResult<apikeys::AuditQuery> {
    let mut out = apikeys::AuditQuery::account(&q.account);
    if let Some(id) = &q.key_id {
        out.key_id = Some(id.parse::<apikeys::KeyId>()?);
    }
    out.actor.clone_from(&q.actor);
    if let Some(actions) = &q.actions {
        out.actions = actions
            .iter()
            .map(|a| a.parse::<apikeys::AuditAction>())
            .collect::<CoreResult<_>>()?;
    }
    if let Some(ms) = q.since {
        out.since = Some(window_bound(ms, "since")?);
    }
    if let Some(ms) = q.until {
        out.until = Some(window_bound(ms, "until")?);
    }
    if let Some(n) = q.limit {
        out.limit = page_size(n)?;
    }
    out.cursor.clone_from(&q.cursor);
    Ok(out)
}

fn js_page(p: &apikeys::AuditPage) -> AuditPage {
    AuditPage {
        records: p.records.iter().map(AuditEvent::from).collect(),
        next_cursor: p.next_cursor.clone(),
    }
}

fn expiring(spec: NewKey, expires_at: Option<f64>) -> CoreResult<NewKey> {
    Ok(match expires_at {
        Some(ms) => spec.expires_at(expiry(ms)?),
        None => spec,
    })
}

/// The request a coded call stands for (see `coded_request`), with its scope.
fn scoped_request(code: u32, scope: Option<String>) -> CoreResult<apikeys::Request> {
    let req = coded_request(code).ok_or_else(|| invalid("api", "unknown request code"))?;
    match scope {
        Some(s) => req.with_scope(&s),
        None => Ok(req),
    }
}

/// A request from the number the JavaScript layer passes for the common
/// cases: 0 for the Events API, 1 to 7 for a REST `GET`, `HEAD`, `POST`,
/// `PUT`, `PATCH`, `DELETE`, `OPTIONS`.
pub(crate) fn coded_request(code: u32) -> Option<apikeys::Request> {
    use apikeys::Method as M;
    let method = match code {
        0 => return Some(apikeys::Request::events()),
        1 => M::Get,
        2 => M::Head,
        3 => M::Post,
        4 => M::Put,
        5 => M::Patch,
        6 => M::Delete,
        7 => M::Options,
        _ => return None,
    };
    Some(apikeys::Request::rest_method(method))
}

/// A principal object with this call's rate limit status.
fn full_principal(slots: &Mutex<Slots>, p: &apikeys::Principal) -> CoreResult<Principal> {
    let mut s = lock(slots);
    let h = s.handle(p)?;
    let mut out = s
        .principal(h)
        .ok_or_else(|| invalid("handle", "not a handle this keyring answered"))?;
    if let Some(status) = p.rate_limit() {
        out.rate_limit = Either::A(RateLimitStatus::from_core(status));
    }
    Ok(out)
}

/// A `Float64Array` of the JavaScript layer that `_authenticateLimited`
/// writes the call's rate limit status into (napi reads it in place: no copy,
/// no object). Spelled as an alias so that napi converts it as a typed array.
type StatusOut<'a> = &'a mut [f64];

/// Writes a principal's rate limit status into `out` (`[limit, remaining,
/// reset ms, 1]`, or `[.., .., .., 0]` when no limit applies), for the
/// JavaScript layer, which builds the `rateLimit` object.
fn write_status(p: &apikeys::Principal, out: &mut [f64]) {
    if out.len() < 4 {
        return;
    }
    match p.rate_limit() {
        Some(s) => {
            out[0] = f64::from(s.limit);
            out[1] = f64::from(s.remaining);
            out[2] = crate::types::millis(s.reset);
            out[3] = 1.0;
        }
        None => out[3] = 0.0,
    }
}

/// A clock that moves only when told to, for tests of expiry and last use:
/// give it as `clock` to a keyring, which then tells the time by it.
#[napi]
pub struct ManualClock {
    inner: apikeys::ManualClock,
}

#[napi]
impl ManualClock {
    /// A clock standing at `start`.
    #[napi(constructor, catch_unwind, ts_args_type = "start: Date")]
    pub fn new(env: Env, start: f64) -> Result<ManualClock> {
        let start = crate::types::instant(start, "start").map_err(|e| to_js(&env, &e))?;
        Ok(ManualClock {
            inner: apikeys::ManualClock::new(start),
        })
    }

    /// Move the clock forward by `ms` milliseconds (a non-negative number).
    #[napi(catch_unwind)]
    pub fn advance(&self, env: Env, ms: f64) -> Result<()> {
        if !ms.is_finite() || ms < 0.0 {
            return Err(to_js(
                &env,
                &invalid(
                    "ms",
                    "must be a finite, non-negative number of milliseconds",
                ),
            ));
        }
        let now = apikeys::Clock::now(&self.inner).unix_millis() as f64;
        crate::types::instant(now + ms.floor(), "ms").map_err(|e| to_js(&env, &e))?;
        self.inner
            .advance(std::time::Duration::from_millis(ms.floor() as u64));
        Ok(())
    }

    /// Set the time.
    #[napi(catch_unwind, ts_args_type = "at: Date")]
    pub fn set(&self, env: Env, at: f64) -> Result<()> {
        let at = crate::types::instant(at, "at").map_err(|e| to_js(&env, &e))?;
        self.inner.set(at);
        Ok(())
    }

    /// The clock's time.
    #[napi(catch_unwind)]
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        crate::types::date(apikeys::Clock::now(&self.inner))
    }
}

/// A key just made. `secret` is the key itself: hand it to its user once. It
/// never shows in `util.inspect`, `JSON.stringify` or a record.
#[napi]
pub struct IssuedKey {
    secret: apikeys::Secret,
    record: apikeys::KeyRecord,
}

/// What `JSON.stringify(issued)` writes: the record, never the key.
#[napi(object)]
pub struct IssuedKeyJson {
    /// The record.
    pub record: KeyRecord,
}

#[napi]
impl IssuedKey {
    /// The key. Hand it to its user once; it cannot be shown again.
    #[napi(getter, catch_unwind)]
    pub fn secret(&self) -> String {
        self.secret.expose().to_owned()
    }

    /// What is stored about the key.
    #[napi(getter, catch_unwind)]
    pub fn record(&self) -> KeyRecord {
        KeyRecord::from(&self.record)
    }

    /// The record only: serializing an issued key never writes the key.
    #[napi(js_name = "toJSON", catch_unwind)]
    pub fn to_json(&self) -> IssuedKeyJson {
        IssuedKeyJson {
            record: KeyRecord::from(&self.record),
        }
    }
}

impl From<apikeys::IssuedKey> for IssuedKey {
    fn from(i: apikeys::IssuedKey) -> IssuedKey {
        let (secret, record) = i.into_parts();
        IssuedKey { secret, record }
    }
}

/// One call to run on the keyring, off the JavaScript thread.
type Work<T> = Box<dyn FnOnce(&apikeys::Keyring) -> CoreResult<T> + Send>;

/// Work for a Promise-returning call: runs on libuv's thread pool, so a store
/// that blocks (a database) never stalls the event loop.
pub struct Job<T> {
    keyring: Arc<apikeys::Keyring>,
    work: Option<Work<T>>,
    failure: Option<apikeys::Error>,
}

impl<T> Job<T> {
    fn new(
        keyring: &Arc<apikeys::Keyring>,
        work: impl FnOnce(&apikeys::Keyring) -> CoreResult<T> + Send + 'static,
    ) -> AsyncTask<Job<T>>
    where
        Job<T>: Task,
    {
        AsyncTask::new(Job {
            keyring: Arc::clone(keyring),
            work: Some(Box::new(work)),
            failure: None,
        })
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Job<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> Result<T> {
        let work = self
            .work
            .take()
            .ok_or_else(|| Error::from_reason("this task already ran"))?;
        // A panic must not unwind into libuv's thread pool: it rejects the Promise instead.
        let keyring = &self.keyring;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(keyring))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.failure = Some(e);
                Err(Error::from_reason("apikeys call failed"))
            }
            Err(_) => Err(Error::from_reason(
                "internal error: the apikeys call panicked; please report it",
            )),
        }
    }

    fn resolve(&mut self, _env: Env, output: T) -> Result<T> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<T> {
        Err(match self.failure.take() {
            Some(e) => to_js(&env, &e),
            None => err,
        })
    }
}

/// Issues, manages and checks API keys.
///
/// Management calls take an actor (`{ account, user, role }`) and follow the
/// role permission matrix; each leaves one audit event. `authenticate` is the
/// hot path. Every call has a Promise-returning twin (`…Async`) that runs off
/// the JavaScript thread, for stores that block.
#[napi]
pub struct Keyring {
    inner: Arc<apikeys::Keyring>,
    slots: Arc<Mutex<Slots>>,
    errors: Mutex<Errors>,
    durable: Durable,
    limited: bool,
    limiter: Option<Arc<apikeys_redis::RedisRateLimiter>>,
    pub(crate) outbox: Option<Arc<dyn apikeys::webhooks::Outbox>>,
    /// The REST routes of `apikeys/express` (`_restRoute`, src/http.rs).
    pub(crate) routes: Mutex<crate::http::Routes>,
}

impl Keyring {
    /// The core keyring, shared with the endpoints mounted on it.
    pub(crate) fn core(&self) -> &Arc<apikeys::Keyring> {
        &self.inner
    }

    /// The handle of the principal `authenticate` answers (what
    /// `_authenticate` answers, its error not yet numbered).
    pub(crate) fn handle_for(
        &self,
        token: &str,
        req: &apikeys::Request,
        origin: Option<&apikeys::Origin<'_>>,
    ) -> CoreResult<u32> {
        authenticate_from(&self.inner, token, req, origin)
            .and_then(|p| lock(&self.slots).handle(&p))
    }

    fn sync<T>(&self, env: &Env, r: CoreResult<T>) -> Result<T> {
        r.map_err(|e| to_js(env, &e))
    }

    /// The principal's handle, after writing its rate limit status into
    /// `status` when the caller passed one (see `write_status`).
    fn handle_reporting(
        &self,
        p: &apikeys::Principal,
        status: Option<StatusOut<'_>>,
    ) -> CoreResult<u32> {
        if let Some(out) = status {
            write_status(p, out);
        }
        lock(&self.slots).handle(p)
    }

    /// A handle, or an error template number with [`ERROR_BIT`] set, or a thrown error.
    fn answer(&self, env: &Env, r: CoreResult<u32>) -> Result<u32> {
        match r {
            Ok(h) => Ok(h),
            Err(e) => match lock(&self.errors).intern(&e) {
                Some(id) => Ok(ERROR_BIT | id),
                None => Err(to_js(env, &e)),
            },
        }
    }

    fn create_job(
        &self,
        actor: Actor,
        spec: impl FnOnce() -> CoreResult<NewKey> + Send + 'static,
    ) -> AsyncTask<Job<IssuedKey>> {
        Job::new(&self.inner, move |k| {
            let actor = core_actor(&actor)?;
            Ok(k.create(&actor, spec()?)?.into())
        })
    }

    fn create_now(&self, env: &Env, actor: &Actor, spec: CoreResult<NewKey>) -> Result<IssuedKey> {
        let r = core_actor(actor).and_then(|a| self.inner.create(&a, spec?));
        self.sync(env, r).map(IssuedKey::from)
    }
}

#[napi]
impl Keyring {
    /// A keyring over an in-memory store (the default), or as `options` say.
    /// A durable store is opened here, on the JavaScript thread (a PostgreSQL
    /// store connects to the server): `Keyring.open(options)` does the same
    /// off the JavaScript thread. A bad path or URL, or a server that cannot
    /// be reached, throws `ERR_STORE` (or `ERR_INVALID_INPUT`).
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options?: KeyringOptions | undefined | null"
    )]
    pub fn new(
        env: Env,
        options: Option<KeyringOptions>,
        opened: Option<&OpenedKeyring>,
        clock: Option<&ManualClock>,
    ) -> Result<Keyring> {
        let opened = match opened {
            Some(o) => o
                .take()
                .ok_or_else(|| to_js(&env, &invalid("opened", "this keyring was already taken")))?,
            None => Plan::new(options, clock.map(|c| c.inner.clone()))
                .and_then(Plan::open)
                .map_err(|e| to_js(&env, &e))?,
        };
        Ok(Keyring {
            inner: Arc::new(opened.keyring),
            slots: Arc::default(),
            errors: Mutex::default(),
            durable: opened.durable,
            limited: opened.limited,
            limiter: opened.limiter,
            outbox: opened.outbox,
            routes: Mutex::default(),
        })
    }

    /// A keyring as `options` say, its store opened (and a PostgreSQL server
    /// connected to) off the JavaScript thread. Rejects with `ERR_STORE` when
    /// the store cannot be opened, `ERR_INVALID_INPUT` for bad options.
    #[napi(
        catch_unwind,
        ts_args_type = "options?: KeyringOptions | undefined | null",
        ts_return_type = "Promise<Keyring>"
    )]
    pub fn open(
        env: Env,
        options: Option<KeyringOptions>,
        clock: Option<&ManualClock>,
    ) -> Result<AsyncTask<OpenTask>> {
        let clock = clock.map(|c| c.inner.clone());
        let plan = Plan::new(options, clock).map_err(|e| to_js(&env, &e))?;
        Ok(AsyncTask::new(OpenTask::new(plan)))
    }

    /// Write out what the store holds back (the last-use times a durable
    /// store queues, written every second anyway); call it at a clean
    /// shutdown. Returns how many were written (always 0 in memory).
    #[napi(catch_unwind)]
    pub fn flush(&self, env: Env) -> Result<u32> {
        let r = self.inner.flush().map(saturating_u32);
        self.sync(&env, r)
    }

    /// `flush` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn flush_async(&self) -> AsyncTask<Job<u32>> {
        Job::new(&self.inner, move |k| k.flush().map(saturating_u32))
    }

    /// The kind of store the keyring keeps its keys in.
    #[napi(
        getter,
        catch_unwind,
        ts_return_type = "'memory' | 'sqlite' | 'postgres'"
    )]
    pub fn store_kind(&self) -> &'static str {
        self.durable.name()
    }

    /// Whether `authenticate` may wait on I/O (a durable store's cold lookup,
    /// a Redis limiter): then prefer `tryAuthenticate`, and `authenticateAsync`
    /// when it answers `null` (as `apikeys/express`'s `offThread` does).
    #[napi(getter, catch_unwind)]
    pub fn may_block(&self) -> bool {
        self.inner.may_block()
    }

    /// Whether `authenticate` enforces rate limits (the `rateLimits` option).
    #[napi(getter, catch_unwind)]
    pub fn has_rate_limits(&self) -> bool {
        self.limited
    }

    /// The Redis rate limiter's state (the `rateLimiter` option), as
    /// Python's `RedisRateLimiter.is_degraded` and `fallback_count` give it;
    /// `null` without a Redis limiter.
    #[napi(getter, catch_unwind)]
    pub fn rate_limiter_state(&self) -> Option<RateLimiterState> {
        self.limiter.as_ref().map(|l| RateLimiterState {
            degraded: l.is_degraded(),
            fallback_count: l.fallback_count() as f64,
        })
    }

    // ---- creating keys ----

    /// Make a general access key (Owner or Admin). `{ readOnly: true }` makes a
    /// read-only key; `expiresAt` a key that stops working then.
    #[napi(catch_unwind)]
    pub fn create_general_key(
        &self,
        env: Env,
        actor: Actor,
        description: String,
        options: Option<GeneralKeyOptions>,
    ) -> Result<IssuedKey> {
        let (access, expires) = general_options(options.as_ref());
        let spec = expiring(NewKey::general(&description, access), expires);
        self.create_now(&env, &actor, spec)
    }

    /// Make a user token for the actor (any role but `read_only_limited_user`;
    /// the account needs Advanced Permissions). It acts with its owner's current role.
    #[napi(catch_unwind)]
    pub fn create_user_token(
        &self,
        env: Env,
        actor: Actor,
        description: String,
        options: Option<KeyOptions>,
    ) -> Result<IssuedKey> {
        let spec = expiring(
            NewKey::user_token(&description),
            options.and_then(|o| o.expires_at),
        );
        self.create_now(&env, &actor, spec)
    }

    /// Make an Events API integration key for a service (Manager or above).
    #[napi(catch_unwind)]
    pub fn create_integration_key(
        &self,
        env: Env,
        actor: Actor,
        service_id: String,
        description: String,
        options: Option<KeyOptions>,
    ) -> Result<IssuedKey> {
        let spec = expiring(
            NewKey::integration(&service_id, &description),
            options.and_then(|o| o.expires_at),
        );
        self.create_now(&env, &actor, spec)
    }

    /// Make an event-orchestration routing key (Manager or above).
    #[napi(catch_unwind)]
    pub fn create_routing_key(
        &self,
        env: Env,
        actor: Actor,
        orchestration_id: String,
        description: String,
        options: Option<KeyOptions>,
    ) -> Result<IssuedKey> {
        let spec = expiring(
            NewKey::routing(&orchestration_id, &description),
            options.and_then(|o| o.expires_at),
        );
        self.create_now(&env, &actor, spec)
    }

    /// Make a scoped token (Manager or above) carrying these scopes
    /// (`['incidents.write', 'services.read']`; `x.write` implies `x.read`).
    #[napi(catch_unwind)]
    pub fn create_scoped_token(
        &self,
        env: Env,
        actor: Actor,
        description: String,
        scopes: Vec<String>,
        options: Option<KeyOptions>,
    ) -> Result<IssuedKey> {
        let spec = expiring(
            NewKey::scoped(&description, &scopes),
            options.and_then(|o| o.expires_at),
        );
        self.create_now(&env, &actor, spec)
    }

    // ---- managing keys ----

    /// Disable a general key (Owner or Admin): it stops working at once and can
    /// be enabled again. Returns the new record.
    #[napi(catch_unwind)]
    pub fn disable(&self, env: Env, actor: Actor, key_id: String) -> Result<KeyRecord> {
        let r = core_actor(&actor).and_then(|a| self.inner.disable(&a, &key_id));
        self.sync(&env, r).map(|r| KeyRecord::from(&r))
    }

    /// Enable a disabled general key (Owner or Admin). Returns the new record.
    #[napi(catch_unwind)]
    pub fn enable(&self, env: Env, actor: Actor, key_id: String) -> Result<KeyRecord> {
        let r = core_actor(&actor).and_then(|a| self.inner.enable(&a, &key_id));
        self.sync(&env, r).map(|r| KeyRecord::from(&r))
    }

    /// Delete a key for good. Returns the record it had.
    #[napi(catch_unwind)]
    pub fn delete(&self, env: Env, actor: Actor, key_id: String) -> Result<KeyRecord> {
        let r = core_actor(&actor).and_then(|a| self.inner.delete(&a, &key_id));
        self.sync(&env, r).map(|r| KeyRecord::from(&r))
    }

    /// One key's record, if the actor may see it.
    #[napi(catch_unwind)]
    pub fn get(&self, env: Env, actor: Actor, key_id: String) -> Result<KeyRecord> {
        let r = core_actor(&actor).and_then(|a| self.inner.get(&a, &key_id));
        self.sync(&env, r).map(|r| KeyRecord::from(&r))
    }

    /// Every key of the actor's account that the actor may see, oldest first.
    #[napi(catch_unwind)]
    pub fn list(&self, env: Env, actor: Actor) -> Result<Vec<KeyRecord>> {
        let r = core_actor(&actor).and_then(|a| self.inner.list(&a));
        self.sync(&env, r)
            .map(|v| v.iter().map(KeyRecord::from).collect())
    }

    // ---- accounts and users ----

    /// Set what an account's plan includes. Takes effect on the next request.
    #[napi(catch_unwind)]
    pub fn set_account(&self, env: Env, account: String, settings: AccountSettings) -> Result<()> {
        let r = self.inner.set_account(&account, core_settings(&settings));
        self.sync(&env, r)
    }

    /// An account's current settings (both `true` for an account never configured).
    #[napi(catch_unwind)]
    pub fn account(&self, env: Env, account: String) -> Result<AccountSettings> {
        let r = self.inner.account(&account);
        self.sync(&env, r).map(js_settings)
    }

    /// Set a user's current role: their user tokens act with it from the next request on.
    #[napi(
        catch_unwind,
        ts_args_type = "account: string, user: string, role: Role | RoleAlias"
    )]
    pub fn set_user_role(
        &self,
        env: Env,
        account: String,
        user: String,
        role: String,
    ) -> Result<()> {
        let r = apikeys::Role::parse(&role)
            .and_then(|role| self.inner.set_user_role(&account, &user, role));
        self.sync(&env, r)
    }

    /// Remove a user (offboarding): every user token of theirs stops working at
    /// once and is disabled. Returns how many tokens were disabled.
    #[napi(catch_unwind)]
    pub fn remove_user(&self, env: Env, account: String, user: String) -> Result<u32> {
        let r = self.inner.remove_user(&account, &user);
        self.sync(&env, r).map(saturating_u32)
    }

    /// `setUserRole` as `actor`, for tools that act for a person (an admin
    /// page): an Owner or an Admin of the actor's account, by their stored
    /// role (not the one `actor` claims), may change another user's role;
    /// only an Owner makes an Owner, or changes an Owner's role. Otherwise
    /// `ERR_NOT_PERMITTED`, and nothing changes. Decided by the core in one
    /// atomic step of the store, and recorded in the audit trail with the
    /// actor, allowed or refused.
    #[napi(
        catch_unwind,
        ts_args_type = "actor: Actor, user: string, role: Role | RoleAlias"
    )]
    pub fn set_user_role_as(
        &self,
        env: Env,
        actor: Actor,
        user: String,
        role: String,
    ) -> Result<()> {
        let r = core_actor(&actor).and_then(|a| {
            let role = apikeys::Role::parse(&role)?;
            self.inner.set_user_role_as(&a, &user, role)
        });
        self.sync(&env, r)
    }

    /// `removeUser` as `actor`, decided by the rule of `setUserRoleAs` (an
    /// Owner or an Admin; only an Owner removes an Owner), recorded with the
    /// actor. Returns how many tokens were disabled; `ERR_NOT_PERMITTED`,
    /// and nothing changes, otherwise.
    #[napi(catch_unwind)]
    pub fn remove_user_as(&self, env: Env, actor: Actor, user: String) -> Result<u32> {
        let r = core_actor(&actor).and_then(|a| self.inner.remove_user_as(&a, &user));
        self.sync(&env, r).map(saturating_u32)
    }

    /// `setAccount` as `actor`, for the actor's own account: an Owner or an
    /// Admin, by their stored role, may change its plan; `ERR_NOT_PERMITTED`,
    /// and nothing changes, otherwise. Recorded with the actor.
    #[napi(catch_unwind)]
    pub fn set_account_as(&self, env: Env, actor: Actor, settings: AccountSettings) -> Result<()> {
        let r = core_actor(&actor)
            .and_then(|a| self.inner.set_account_as(&a, core_settings(&settings)));
        self.sync(&env, r)
    }

    /// What the keyring stores of a user: their current role and whether they
    /// were removed; `null` for a user it does not know.
    #[napi(catch_unwind)]
    pub fn user(&self, env: Env, account: String, user: String) -> Result<Option<UserState>> {
        let r = self.inner.user(&account, &user);
        self.sync(&env, r).map(|s| s.map(UserState::from))
    }

    /// `user` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<UserState | null>")]
    pub fn user_async(&self, account: String, user: String) -> AsyncTask<Job<Option<UserState>>> {
        Job::new(&self.inner, move |k| {
            k.user(&account, &user).map(|s| s.map(UserState::from))
        })
    }

    /// How many requests the rate limiter refused since the keyring was made,
    /// per key id (for operators).
    #[napi(catch_unwind, ts_return_type = "Record<string, number>")]
    pub fn rate_limit_rejections(&self) -> std::collections::HashMap<String, f64> {
        self.inner
            .rate_limit_rejections()
            .into_iter()
            .map(|(id, n)| (id.to_string(), n as f64))
            .collect()
    }

    /// The verification metrics so far (docs/design.md §12), or `null` when
    /// the keyring counts none (`new Keyring({ metrics: true })` counts
    /// them). `apikeys/prometheus` turns them into prom-client metrics.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> Option<crate::types::AuthMetricsSnapshot> {
        let snap = self.inner.metrics()?.snapshot();
        Some(crate::types::AuthMetricsSnapshot {
            bucket_bounds: snap.bucket_bounds().to_vec(),
            series: snap
                .series
                .into_iter()
                .map(|s| crate::types::AuthMetricsSeries {
                    kind: s.kind.to_owned(),
                    outcome: s.outcome.to_owned(),
                    count: s.count as f64,
                    sum_seconds: s.sum_seconds,
                    buckets: s.buckets.into_iter().map(|b| b as f64).collect(),
                })
                .collect(),
        })
    }

    /// The audit events the keyring's in-memory sink still holds (the last
    /// 10,000 by default, `auditCapacity`), oldest first: every call, on
    /// every store. `auditRecords` reads the store's own durable trail.
    #[napi(catch_unwind)]
    pub fn audit_trail(&self) -> Vec<AuditEvent> {
        self.inner
            .audit_trail()
            .iter()
            .map(AuditEvent::from)
            .collect()
    }

    // ---- rotation and the audit trail ----

    /// Replace a key by a new one with the same settings (kind, description,
    /// access, owner, service or orchestration, scopes, expiry), returned
    /// once, like a create. The old key keeps working until the first of:
    /// `graceMs` from now (at most 365 days, never past its expiry); the
    /// moment traffic has moved (the new key used, and the old one unused
    /// since for the keyring's `rotationQuietMs`); `endRotation`. Whoever may
    /// create that kind of key for its owner and take it out of service may
    /// rotate it. `ERR_INVALID_INPUT` for an expired key, a key already
    /// rotated (end that rotation, or rotate the new key) or too long a grace.
    #[napi(catch_unwind)]
    pub fn rotate(
        &self,
        env: Env,
        actor: Actor,
        key_id: String,
        options: RotateOptions,
    ) -> Result<IssuedKey> {
        let r = core_actor(&actor).and_then(|a| {
            let grace = duration(options.grace_ms, "grace")?;
            self.inner.rotate(&a, &key_id, grace)
        });
        self.sync(&env, r).map(IssuedKey::from)
    }

    /// End a rotation's overlap now: the old key (`keyId`, the one that was
    /// rotated) stops working at once; the new key is untouched. Returns the
    /// old key's record. `ERR_INVALID_INPUT` when the key is not in an overlap.
    #[napi(catch_unwind)]
    pub fn end_rotation(&self, env: Env, actor: Actor, key_id: String) -> Result<KeyRecord> {
        let r = core_actor(&actor).and_then(|a| self.inner.end_rotation(&a, &key_id));
        self.sync(&env, r).map(|r| KeyRecord::from(&r))
    }

    /// A page of one account's audit records, newest first: the store's
    /// durable trail (SQLite, PostgreSQL), or the in-memory sink's. Paging
    /// while records are being added never skips or repeats one.
    /// `ERR_INVALID_INPUT` naming the field for a query out of bounds (a
    /// window over 31 days, `until` before `since`, a `limit` over 1000, a
    /// cursor this package did not give). An application call: who may read
    /// an account's trail is the application's to decide.
    #[napi(catch_unwind)]
    pub fn audit_records(&self, env: Env, query: AuditQuery) -> Result<AuditPage> {
        let r = core_query(&query).and_then(|q| self.inner.audit_records(&q));
        self.sync(&env, r).map(|p| js_page(&p))
    }

    /// Forget the audit records older than `olderThanMs` milliseconds
    /// (retention); returns how many.
    #[napi(catch_unwind)]
    pub fn prune_audit(&self, env: Env, older_than_ms: f64) -> Result<f64> {
        let r = duration(older_than_ms, "older_than").and_then(|d| self.inner.prune_audit(d));
        self.sync(&env, r).map(|n| n as f64)
    }

    /// `rotate` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<IssuedKey>")]
    pub fn rotate_async(
        &self,
        actor: Actor,
        key_id: String,
        options: RotateOptions,
    ) -> AsyncTask<Job<IssuedKey>> {
        Job::new(&self.inner, move |k| {
            let a = core_actor(&actor)?;
            let grace = duration(options.grace_ms, "grace")?;
            Ok(k.rotate(&a, &key_id, grace)?.into())
        })
    }

    /// `endRotation` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn end_rotation_async(&self, actor: Actor, key_id: String) -> AsyncTask<Job<KeyRecord>> {
        Job::new(&self.inner, move |k| {
            Ok(KeyRecord::from(
                &k.end_rotation(&core_actor(&actor)?, &key_id)?,
            ))
        })
    }

    /// `auditRecords` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<AuditPage>")]
    pub fn audit_records_async(&self, query: AuditQuery) -> AsyncTask<Job<AuditPage>> {
        Job::new(&self.inner, move |k| {
            Ok(js_page(&k.audit_records(&core_query(&query)?)?))
        })
    }

    /// `pruneAudit` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn prune_audit_async(&self, older_than_ms: f64) -> AsyncTask<Job<f64>> {
        Job::new(&self.inner, move |k| {
            Ok(k.prune_audit(duration(older_than_ms, "older_than")?)? as f64)
        })
    }

    // ---- the hot path ----

    /// Check a presented key against a request (default `{ api: 'rest', method: 'GET' }`).
    /// Answers who it is, or throws `ERR_UNAUTHORIZED`, `ERR_WRONG_API`,
    /// `ERR_PLAN_RESTRICTED`, `ERR_FORBIDDEN` or `ERR_RATE_LIMITED` (or
    /// `ERR_INVALID_INPUT` for a bad `api` or `scope`). The answer is a frozen
    /// object, the same one for every request by the same key and role.
    #[napi(catch_unwind)]
    pub fn authenticate(
        &self,
        env: Env,
        token: String,
        request: Option<Request>,
    ) -> Result<Principal> {
        let (api, method, scope, place) = request_parts(request.as_ref());
        let r = core_request(api, method, scope)
            .and_then(|req| {
                authenticate_from(&self.inner, &token, &req, owned_origin(&place).as_ref())
            })
            .and_then(|p| full_principal(&self.slots, &p));
        self.sync(&env, r)
    }

    /// The hot path without objects: answers a handle for `_principal`, or,
    /// with bit 31 set, an error template for `_errorTemplate`. `request` is a
    /// number (see `coded_request`); `scope` may be `undefined`. Used by the
    /// JavaScript layer, which keeps one principal object per handle. A
    /// request with a place (`remoteAddress`, `path`) goes to
    /// `_authenticatePlaced`: napi checks the type of every argument it is
    /// given, `undefined` included, so the two that most calls leave out are
    /// not parameters here (docs/performance.md, "Where the rest went").
    #[napi(catch_unwind, js_name = "_authenticate", skip_typescript)]
    pub fn authenticate_raw(
        &self,
        env: Env,
        token: String,
        request: u32,
        scope: Option<String>,
    ) -> Result<u32> {
        let r = scoped_request(request, scope)
            .and_then(|req| authenticate_from(&self.inner, &token, &req, None))
            .and_then(|p| lock(&self.slots).handle(&p));
        self.answer(&env, r)
    }

    /// `_authenticate` with the request's place: `remote_address` and `path`
    /// may be `undefined`, and what cannot be read as text is not kept.
    #[napi(catch_unwind, js_name = "_authenticatePlaced", skip_typescript)]
    pub fn authenticate_placed_raw(
        &self,
        env: Env,
        token: String,
        request: u32,
        scope: Option<String>,
        remote_address: Option<JsString<'_>>,
        path: Option<JsString<'_>>,
    ) -> Result<u32> {
        let r = scoped_request(request, scope)
            .and_then(|req| {
                with_js_origin(remote_address, path, |o| {
                    authenticate_from(&self.inner, &token, &req, o)
                })
            })
            .and_then(|p| lock(&self.slots).handle(&p));
        self.answer(&env, r)
    }

    /// `_authenticate` for a keyring with rate limits: also writes the call's
    /// rate limit status into `status` (see `write_status`).
    #[napi(catch_unwind, js_name = "_authenticateLimited", skip_typescript)]
    // The JavaScript layer's positional call: one plain value per request part, no object to convert.
    #[allow(clippy::too_many_arguments)]
    pub fn authenticate_limited(
        &self,
        env: Env,
        token: String,
        request: u32,
        scope: Option<String>,
        status: StatusOut<'_>,
        remote_address: Option<JsString<'_>>,
        path: Option<JsString<'_>>,
    ) -> Result<u32> {
        let r = scoped_request(request, scope)
            .and_then(|req| {
                with_js_origin(remote_address, path, |o| {
                    authenticate_from(&self.inner, &token, &req, o)
                })
            })
            .and_then(|p| self.handle_reporting(&p, Some(status)));
        self.answer(&env, r)
    }

    /// Like `_authenticate`, for any API and method names (the JavaScript
    /// layer uses it for the uncommon ones); writes the rate limit status into
    /// `status` when given.
    #[napi(catch_unwind, js_name = "_authenticateNamed", skip_typescript)]
    // The JavaScript layer's positional call: one plain value per request part, no object to convert.
    #[allow(clippy::too_many_arguments)]
    pub fn authenticate_named(
        &self,
        env: Env,
        token: String,
        api: String,
        method: String,
        scope: Option<String>,
        status: Option<StatusOut<'_>>,
        remote_address: Option<JsString<'_>>,
        path: Option<JsString<'_>>,
    ) -> Result<u32> {
        let r = core_request(&api, &method, scope.as_deref())
            .and_then(|req| {
                with_js_origin(remote_address, path, |o| {
                    authenticate_from(&self.inner, &token, &req, o)
                })
            })
            .and_then(|p| self.handle_reporting(&p, status));
        self.answer(&env, r)
    }

    /// `authenticate` if it can be answered without waiting on I/O, `null`
    /// when it cannot (a key the store has not cached yet, or a Redis rate
    /// limiter): then call `authenticateAsync`. `null` never means refused;
    /// otherwise the answer, or the error thrown, is exactly `authenticate`'s.
    /// With the in-memory store it always answers.
    #[napi(catch_unwind)]
    pub fn try_authenticate(
        &self,
        env: Env,
        token: String,
        request: Option<Request>,
    ) -> Result<Option<Principal>> {
        let (api, method, scope, place) = request_parts(request.as_ref());
        let req = self.sync(&env, core_request(api, method, scope))?;
        match try_authenticate_from(&self.inner, &token, &req, owned_origin(&place).as_ref()) {
            None => Ok(None),
            Some(r) => {
                let r = r.and_then(|p| full_principal(&self.slots, &p));
                self.sync(&env, r).map(Some)
            }
        }
    }

    /// `_authenticateNamed` that never waits on I/O: answers like it, or
    /// [`WOULD_BLOCK`] when only `authenticate` can answer (see
    /// `apikeys::Keyring::try_authenticate`).
    #[napi(catch_unwind, js_name = "_tryAuthenticate", skip_typescript)]
    // The JavaScript layer's positional call: one plain value per request part, no object to convert.
    #[allow(clippy::too_many_arguments)]
    pub fn try_authenticate_raw(
        &self,
        env: Env,
        token: String,
        api: String,
        method: String,
        scope: Option<String>,
        status: Option<StatusOut<'_>>,
        remote_address: Option<JsString<'_>>,
        path: Option<JsString<'_>>,
    ) -> Result<u32> {
        let req = match core_request(&api, &method, scope.as_deref()) {
            Ok(req) => req,
            Err(e) => return self.answer(&env, Err(e)),
        };
        let tried = with_js_origin(remote_address, path, |o| {
            try_authenticate_from(&self.inner, &token, &req, o)
        });
        let Some(r) = tried else {
            return Ok(WOULD_BLOCK);
        };
        let r = r.and_then(|p| self.handle_reporting(&p, status));
        self.answer(&env, r)
    }

    /// The error template numbered `id` by `_authenticate`.
    #[napi(catch_unwind, js_name = "_errorTemplate", skip_typescript)]
    pub fn error_template(&self, env: Env, id: u32) -> Result<ErrorTemplate> {
        let t = lock(&self.errors).template(id);
        t.ok_or_else(|| to_js(&env, &invalid("id", "not an error this keyring answered")))
    }

    /// The key's record as of its latest authentication through this keyring
    /// object, for a handle answered by `_authenticate` (what a principal's
    /// `record` getter reads).
    #[napi(catch_unwind, js_name = "_record", skip_typescript)]
    pub fn record_at(&self, env: Env, handle: u32) -> Result<KeyRecord> {
        let r = lock(&self.slots).record(handle);
        r.map(|p| KeyRecord::from(p.record())).ok_or_else(|| {
            to_js(
                &env,
                &invalid("handle", "not a handle this keyring answered"),
            )
        })
    }

    /// The principal for a handle answered by `_authenticate`.
    #[napi(catch_unwind, js_name = "_principal", skip_typescript)]
    pub fn principal_at(&self, env: Env, handle: u32) -> Result<Principal> {
        let p = lock(&self.slots).principal(handle);
        p.ok_or_else(|| {
            to_js(
                &env,
                &invalid("handle", "not a handle this keyring answered"),
            )
        })
    }

    /// `authenticate` off the JavaScript thread; answers `[handle]` (see
    /// `_principal`), or `[handle, limit, remaining, reset ms]` when a rate
    /// limit applied.
    #[napi(catch_unwind, js_name = "_authenticateAsync", skip_typescript)]
    pub fn authenticate_raw_async(
        &self,
        token: String,
        api: String,
        method: String,
        scope: Option<String>,
        remote_address: Option<String>,
        path: Option<String>,
    ) -> AsyncTask<Job<Vec<f64>>> {
        let slots = Arc::clone(&self.slots);
        Job::new(&self.inner, move |k| {
            let place = (remote_address, path);
            let req = core_request(&api, &method, scope.as_deref())?;
            let p = authenticate_from(k, &token, &req, owned_origin(&place).as_ref())?;
            let h = lock(&slots).handle(&p)?;
            Ok(match p.rate_limit() {
                None => vec![f64::from(h)],
                Some(s) => vec![
                    f64::from(h),
                    f64::from(s.limit),
                    f64::from(s.remaining),
                    crate::types::millis(s.reset),
                ],
            })
        })
    }

    // ---- Promise-returning twins ----

    /// `authenticate` off the JavaScript thread, for stores that block.
    #[napi(catch_unwind, ts_return_type = "Promise<Principal>")]
    pub fn authenticate_async(
        &self,
        token: String,
        request: Option<Request>,
    ) -> AsyncTask<Job<Principal>> {
        let slots = Arc::clone(&self.slots);
        Job::new(&self.inner, move |k| {
            let (api, method, scope, place) = request_parts(request.as_ref());
            let req = core_request(api, method, scope)?;
            let p = authenticate_from(k, &token, &req, owned_origin(&place).as_ref())?;
            full_principal(&slots, &p)
        })
    }

    /// `createGeneralKey` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<IssuedKey>")]
    pub fn create_general_key_async(
        &self,
        actor: Actor,
        description: String,
        options: Option<GeneralKeyOptions>,
    ) -> AsyncTask<Job<IssuedKey>> {
        let (access, expires) = general_options(options.as_ref());
        self.create_job(actor, move || {
            expiring(NewKey::general(&description, access), expires)
        })
    }

    /// `createUserToken` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<IssuedKey>")]
    pub fn create_user_token_async(
        &self,
        actor: Actor,
        description: String,
        options: Option<KeyOptions>,
    ) -> AsyncTask<Job<IssuedKey>> {
        let expires = options.and_then(|o| o.expires_at);
        self.create_job(actor, move || {
            expiring(NewKey::user_token(&description), expires)
        })
    }

    /// `createIntegrationKey` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<IssuedKey>")]
    pub fn create_integration_key_async(
        &self,
        actor: Actor,
        service_id: String,
        description: String,
        options: Option<KeyOptions>,
    ) -> AsyncTask<Job<IssuedKey>> {
        let expires = options.and_then(|o| o.expires_at);
        self.create_job(actor, move || {
            expiring(NewKey::integration(&service_id, &description), expires)
        })
    }

    /// `createRoutingKey` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<IssuedKey>")]
    pub fn create_routing_key_async(
        &self,
        actor: Actor,
        orchestration_id: String,
        description: String,
        options: Option<KeyOptions>,
    ) -> AsyncTask<Job<IssuedKey>> {
        let expires = options.and_then(|o| o.expires_at);
        self.create_job(actor, move || {
            expiring(NewKey::routing(&orchestration_id, &description), expires)
        })
    }

    /// `createScopedToken` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<IssuedKey>")]
    pub fn create_scoped_token_async(
        &self,
        actor: Actor,
        description: String,
        scopes: Vec<String>,
        options: Option<KeyOptions>,
    ) -> AsyncTask<Job<IssuedKey>> {
        let expires = options.and_then(|o| o.expires_at);
        self.create_job(actor, move || {
            expiring(NewKey::scoped(&description, &scopes), expires)
        })
    }

    /// `disable` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn disable_async(&self, actor: Actor, key_id: String) -> AsyncTask<Job<KeyRecord>> {
        Job::new(&self.inner, move |k| {
            Ok(KeyRecord::from(&k.disable(&core_actor(&actor)?, &key_id)?))
        })
    }

    /// `enable` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn enable_async(&self, actor: Actor, key_id: String) -> AsyncTask<Job<KeyRecord>> {
        Job::new(&self.inner, move |k| {
            Ok(KeyRecord::from(&k.enable(&core_actor(&actor)?, &key_id)?))
        })
    }

    /// `delete` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn delete_async(&self, actor: Actor, key_id: String) -> AsyncTask<Job<KeyRecord>> {
        Job::new(&self.inner, move |k| {
            Ok(KeyRecord::from(&k.delete(&core_actor(&actor)?, &key_id)?))
        })
    }

    /// `get` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<KeyRecord>")]
    pub fn get_async(&self, actor: Actor, key_id: String) -> AsyncTask<Job<KeyRecord>> {
        Job::new(&self.inner, move |k| {
            Ok(KeyRecord::from(&k.get(&core_actor(&actor)?, &key_id)?))
        })
    }

    /// `list` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<KeyRecord>>")]
    pub fn list_async(&self, actor: Actor) -> AsyncTask<Job<Vec<KeyRecord>>> {
        Job::new(&self.inner, move |k| {
            let v = k.list(&core_actor(&actor)?)?;
            Ok(v.iter().map(KeyRecord::from).collect())
        })
    }

    /// `setAccount` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn set_account_async(
        &self,
        account: String,
        settings: AccountSettings,
    ) -> AsyncTask<Job<()>> {
        let settings = core_settings(&settings);
        Job::new(&self.inner, move |k| k.set_account(&account, settings))
    }

    /// `account` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<AccountSettings>")]
    pub fn account_async(&self, account: String) -> AsyncTask<Job<AccountSettings>> {
        Job::new(&self.inner, move |k| k.account(&account).map(js_settings))
    }

    /// `setUserRole` off the JavaScript thread.
    #[napi(
        catch_unwind,
        ts_args_type = "account: string, user: string, role: Role | RoleAlias",
        ts_return_type = "Promise<void>"
    )]
    pub fn set_user_role_async(
        &self,
        account: String,
        user: String,
        role: String,
    ) -> AsyncTask<Job<()>> {
        Job::new(&self.inner, move |k| {
            k.set_user_role(&account, &user, apikeys::Role::parse(&role)?)
        })
    }

    /// `removeUser` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn remove_user_async(&self, account: String, user: String) -> AsyncTask<Job<u32>> {
        Job::new(&self.inner, move |k| {
            k.remove_user(&account, &user).map(saturating_u32)
        })
    }

    /// `setUserRoleAs` off the JavaScript thread.
    #[napi(
        catch_unwind,
        ts_args_type = "actor: Actor, user: string, role: Role | RoleAlias",
        ts_return_type = "Promise<void>"
    )]
    pub fn set_user_role_as_async(
        &self,
        actor: Actor,
        user: String,
        role: String,
    ) -> AsyncTask<Job<()>> {
        Job::new(&self.inner, move |k| {
            let a = core_actor(&actor)?;
            k.set_user_role_as(&a, &user, apikeys::Role::parse(&role)?)
        })
    }

    /// `removeUserAs` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn remove_user_as_async(&self, actor: Actor, user: String) -> AsyncTask<Job<u32>> {
        Job::new(&self.inner, move |k| {
            k.remove_user_as(&core_actor(&actor)?, &user)
                .map(saturating_u32)
        })
    }

    /// `setAccountAs` off the JavaScript thread.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn set_account_as_async(
        &self,
        actor: Actor,
        settings: AccountSettings,
    ) -> AsyncTask<Job<()>> {
        let settings = core_settings(&settings);
        Job::new(&self.inner, move |k| {
            k.set_account_as(&core_actor(&actor)?, settings)
        })
    }
}

fn request_parts(r: Option<&Request>) -> (&str, &str, Option<&str>, Place) {
    match r {
        Some(r) => (
            r.api.as_deref().unwrap_or("rest"),
            r.method.as_deref().unwrap_or("GET"),
            r.scope.as_deref(),
            (r.remote_address.clone(), r.path.clone()),
        ),
        None => ("rest", "GET", None, (None, None)),
    }
}

pub(crate) fn rate_limits(
    o: &Either<String, crate::types::RateLimitOptions>,
) -> CoreResult<apikeys::RateLimits> {
    use apikeys::ratelimit::RateLimits;
    let o = match o {
        Either::A(name) if name == "pagerduty" => return Ok(RateLimits::pagerduty()),
        Either::A(_) => {
            return Err(invalid(
                "rate_limits",
                "must be 'pagerduty' or { generalKey, user, scopedAccount, eventsKey, accounts, keys }",
            ));
        }
        Either::B(o) => o,
    };
    let mut limits = if o.pagerduty == Some(true) {
        RateLimits::pagerduty()
    } else {
        RateLimits::none()
    };
    // Without `pagerduty`, a class not named is unlimited as it is.
    let named = [&o.general_key, &o.user, &o.scoped_account, &o.events_key];
    for (class, l) in by_class(named) {
        limits = limits.with_limit(class, core_limit(l)?);
    }
    for (account, per) in o.accounts.iter().flatten() {
        let named = [
            &per.general_key,
            &per.user,
            &per.scoped_account,
            &per.events_key,
        ];
        for (class, l) in by_class(named) {
            limits = limits.with_account_limit(account, class, core_limit(l)?);
        }
    }
    for (id, l) in o.keys.iter().flatten() {
        let id = apikeys::KeyId::parse(id).ok_or_else(|| {
            invalid(
                "rate_limits.keys",
                "names a key by something that is not a key id ('P' and 13 characters)",
            )
        })?;
        limits = limits.with_key_limit(id, core_limit(l)?);
    }
    Ok(limits)
}

/// The limits named, with their classes (the order of [`RateLimitOptions`]'s
/// and [`AccountLimitOptions`]'s fields).
///
/// [`RateLimitOptions`]: crate::types::RateLimitOptions
/// [`AccountLimitOptions`]: crate::types::AccountLimitOptions
fn by_class(
    named: [&Option<crate::types::LimitOrUnlimited>; 4],
) -> impl Iterator<Item = (apikeys::LimitClass, &crate::types::LimitOrUnlimited)> {
    use apikeys::LimitClass as C;
    [C::GeneralKey, C::User, C::ScopedAccount, C::EventsKey]
        .into_iter()
        .zip(named)
        .filter_map(|(class, l)| Some((class, l.as_ref()?)))
}

/// A limit, or `None` for one made unlimited (`false` from the JavaScript
/// layer). Zero requests or a window out of range is refused by `Limit::new`.
fn core_limit(l: &crate::types::LimitOrUnlimited) -> CoreResult<Option<apikeys::Limit>> {
    match l {
        Either::A(l) => apikeys::Limit::new(
            l.requests,
            std::time::Duration::from_millis(u64::from(l.window_ms)),
        )
        .map(Some),
        Either::B(false) => Ok(None),
        Either::B(true) => Err(invalid("rate_limits", "a limit is an object or null")),
    }
}

fn general_options(o: Option<&GeneralKeyOptions>) -> (CoreAccess, Option<f64>) {
    let read_only = o.and_then(|o| o.read_only).unwrap_or(false);
    let access = if read_only {
        CoreAccess::ReadOnly
    } else {
        CoreAccess::FullAccess
    };
    (access, o.and_then(|o| o.expires_at))
}

fn core_settings(s: &AccountSettings) -> apikeys::AccountSettings {
    apikeys::AccountSettings {
        rest_api: s.rest_api,
        advanced_permissions: s.advanced_permissions,
    }
}

fn js_settings(s: apikeys::AccountSettings) -> AccountSettings {
    AccountSettings {
        rest_api: s.rest_api,
        advanced_permissions: s.advanced_permissions,
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
