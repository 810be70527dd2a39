//! The JavaScript-side shapes: string unions, plain objects and their
//! conversions from the core types. No key ever goes into any of them.

use apikeys::{AccessLevel as CoreAccess, KeyKind as CoreKind, Role as CoreRole};
use chrono::{DateTime, Utc};
use napi_derive::napi;

/// A user's role, with PagerDuty's REST names (`user` is a Manager,
/// `limited_user` a Responder, `read_only_user` a Full Stakeholder,
/// `read_only_limited_user` a Limited Stakeholder).
#[napi(string_enum)]
pub enum Role {
    /// The account owner.
    #[napi(value = "owner")]
    Owner,
    /// An administrator.
    #[napi(value = "admin")]
    Admin,
    /// A manager.
    #[napi(value = "user")]
    Manager,
    /// A responder.
    #[napi(value = "limited_user")]
    Responder,
    /// An observer.
    #[napi(value = "observer")]
    Observer,
    /// Restricted access.
    #[napi(value = "restricted_access")]
    RestrictedAccess,
    /// A full stakeholder.
    #[napi(value = "read_only_user")]
    FullStakeholder,
    /// A limited stakeholder (holds no tokens).
    #[napi(value = "read_only_limited_user")]
    LimitedStakeholder,
}

/// Other names accepted wherever a [`Role`] is read: `global_admin` (admin),
/// `manager` (user), `responder` (limited_user). Roles are always given back
/// by their [`Role`] name.
#[napi(string_enum)]
pub enum RoleAlias {
    /// Same as `admin`.
    #[napi(value = "global_admin")]
    GlobalAdmin,
    /// Same as `user`.
    #[napi(value = "manager")]
    Manager,
    /// Same as `limited_user`.
    #[napi(value = "responder")]
    Responder,
}

impl From<CoreRole> for Role {
    fn from(r: CoreRole) -> Role {
        match r {
            CoreRole::Owner => Role::Owner,
            CoreRole::Admin => Role::Admin,
            CoreRole::Manager => Role::Manager,
            CoreRole::Responder => Role::Responder,
            CoreRole::Observer => Role::Observer,
            CoreRole::RestrictedAccess => Role::RestrictedAccess,
            CoreRole::FullStakeholder => Role::FullStakeholder,
            CoreRole::LimitedStakeholder => Role::LimitedStakeholder,
        }
    }
}

/// Which API a key or a request belongs to.
#[napi(string_enum)]
pub enum Api {
    /// The REST API (20-character keys).
    #[napi(value = "rest")]
    Rest,
    /// The Events API (32-character keys).
    #[napi(value = "events")]
    Events,
}

/// The five kinds of key.
#[napi(string_enum)]
pub enum KeyKind {
    /// A general access REST key, owned by the account; full access or read-only.
    #[napi(value = "general")]
    General,
    /// A personal REST key that acts with its owner's current role.
    #[napi(value = "user_token")]
    UserToken,
    /// A REST token limited to an explicit list of scopes.
    #[napi(value = "scoped")]
    Scoped,
    /// An Events API integration key, owned by one service.
    #[napi(value = "integration")]
    Integration,
    /// An event-orchestration routing key (Events API).
    #[napi(value = "routing")]
    Routing,
}

impl From<CoreKind> for KeyKind {
    fn from(k: CoreKind) -> KeyKind {
        match k {
            CoreKind::General => KeyKind::General,
            CoreKind::UserToken => KeyKind::UserToken,
            CoreKind::Scoped => KeyKind::Scoped,
            CoreKind::Integration => KeyKind::Integration,
            CoreKind::Routing => KeyKind::Routing,
        }
    }
}

/// What a general access key may do (other kinds are always `full_access`).
#[napi(string_enum)]
pub enum AccessLevel {
    /// Any method on any resource.
    #[napi(value = "full_access")]
    FullAccess,
    /// `GET` and `HEAD` only.
    #[napi(value = "read_only")]
    ReadOnly,
}

impl From<CoreAccess> for AccessLevel {
    fn from(a: CoreAccess) -> AccessLevel {
        match a {
            CoreAccess::FullAccess => AccessLevel::FullAccess,
            CoreAccess::ReadOnly => AccessLevel::ReadOnly,
        }
    }
}

/// Who asks for a management action: a user of an account, with their role.
#[napi(object)]
pub struct Actor {
    /// The account the user acts in.
    pub account: String,
    /// The user's id.
    pub user: String,
    /// The user's role in that account, as the application knows it now.
    #[napi(ts_type = "Role | RoleAlias")]
    pub role: String,
    /// How the call reached the application (request id, remote address,
    /// the caller's key), kept in the call's audit record. Optional.
    pub context: Option<CallContext>,
}

/// How a management call reached the application, as the application tells
/// it (every field optional): kept in the call's audit record
/// (`AuditEvent.context`). Values with control characters are dropped, longer
/// ones cut to 128 bytes, and a value shaped like a key is kept as
/// `'(redacted)'`.
#[napi(object)]
pub struct CallContext {
    /// The request's id (a tracing id, `X-Request-Id` …).
    pub request_id: Option<String>,
    /// The caller's network address.
    pub remote_address: Option<String>,
    /// The key the caller authenticated with: only its last four characters
    /// are kept (`AuditEvent.context.truncatedToken`), never the key.
    pub caller_key: Option<String>,
}

/// How a management call reached the application, as its audit record keeps
/// it (`AuditEvent.context`): fields the application did not give are absent.
#[napi(object)]
pub struct AuditContext {
    /// The request's id.
    pub request_id: Option<String>,
    /// The caller's network address.
    pub remote_address: Option<String>,
    /// The last four characters of the key the caller authenticated with.
    pub truncated_token: Option<String>,
    /// For a change made because a key was reported leaked: where the report
    /// says it was seen (a URL; key-shaped parts redacted).
    pub report_url: Option<String>,
    /// For a change made because a key was reported leaked: the kind of place
    /// it was seen in (GitHub's `source`: `content`, `commit` …).
    pub report_source: Option<String>,
}

impl From<&apikeys::CallContext> for AuditContext {
    fn from(c: &apikeys::CallContext) -> AuditContext {
        AuditContext {
            request_id: c.request_id.clone(),
            remote_address: c.remote_address.clone(),
            truncated_token: c.truncated_token.clone(),
            report_url: c.report_url.clone(),
            report_source: c.report_source.clone(),
        }
    }
}

impl CallContext {
    /// The core's context: each value cleaned (and the key cut to its last
    /// four characters) by `apikeys::CallContext`.
    pub(crate) fn to_core(&self) -> apikeys::CallContext {
        let mut c = apikeys::CallContext::new();
        if let Some(r) = &self.request_id {
            c = c.request_id(r);
        }
        if let Some(a) = &self.remote_address {
            c = c.remote_address(a);
        }
        if let Some(k) = &self.caller_key {
            c = c.caller_key(k);
        }
        c
    }
}

/// What an account's plan includes. An account never configured has both.
#[napi(object)]
pub struct AccountSettings {
    /// The REST API. `false` on a legacy plan: REST keys can neither be made
    /// nor used there (Events keys still work).
    pub rest_api: bool,
    /// Advanced Permissions, needed to make and use user tokens.
    pub advanced_permissions: bool,
}

/// What the keyring stores of a user who owns tokens (or made scoped
/// tokens): their role now, and whether they were removed from the account.
#[napi(object)]
pub struct UserState {
    /// Their current role: what their user tokens act with.
    pub role: Role,
    /// Set when they were removed: their tokens stopped working.
    pub removed: bool,
}

impl From<apikeys::UserState> for UserState {
    fn from(s: apikeys::UserState) -> Self {
        UserState {
            role: s.role.into(),
            removed: s.removed,
        }
    }
}

/// Options of [`Keyring.createGeneralKey`].
#[napi(object)]
pub struct GeneralKeyOptions {
    /// A read-only key (`GET`/`HEAD` only). Default: full access.
    pub read_only: Option<bool>,
    /// When the key stops working (must be in the future). Default: never.
    #[napi(ts_type = "Date")]
    pub expires_at: Option<f64>,
}

/// Options of every other `create…` call.
#[napi(object)]
pub struct KeyOptions {
    /// When the key stops working (must be in the future). Default: never.
    #[napi(ts_type = "Date")]
    pub expires_at: Option<f64>,
}

/// What an authenticated call wants to do. Any other field is refused
/// (`ERR_INVALID_INPUT`).
#[napi(object)]
pub struct Request {
    /// The API called. Default: `'rest'`.
    #[napi(ts_type = "Api")]
    pub api: Option<String>,
    /// The HTTP method of a REST call, any case (unknown methods count as
    /// writes). Default: `'GET'`. Ignored on the Events API.
    pub method: Option<String>,
    /// The scope the call needs (`'incidents.write'`, `'users:contact_methods.read'`).
    pub scope: Option<String>,
    /// Where the request came from: the caller's address. Kept with the
    /// key's last use (`KeyRecord.lastUsedFrom`), written at most once a
    /// minute per key; no check depends on it.
    pub remote_address: Option<String>,
    /// The request's path (a query string is dropped), kept with the
    /// remote address.
    pub path: Option<String>,
}

/// Where keys are kept. Exactly one of `memory`, `sqlite` and `postgres` is named.
#[napi(object)]
pub struct StoreOptions {
    /// Keep keys in this process's memory (the default store).
    pub memory: Option<bool>,
    /// Keep keys in this SQLite file (created if missing; WAL mode), shared by
    /// every process that opens it. Opening it reads the file: `Keyring.open`
    /// does that off the JavaScript thread.
    pub sqlite: Option<String>,
    /// Keep keys in PostgreSQL at this URL (`postgres://user:pass@host:port/db`),
    /// shared by every process and machine that connects. Connecting is network
    /// I/O: use `Keyring.open` to do it off the JavaScript thread. The URL never
    /// appears in an error.
    pub postgres: Option<String>,
    /// With `postgres`: keep the tables in this schema (created if missing;
    /// lowercase ASCII letters, digits and `_`, at most 40). Default: the
    /// connection's.
    pub schema: Option<String>,
    /// With `sqlite` or `postgres`: turn the webhook outbox on for the
    /// database (every process writing to it writes events from then on;
    /// docs/webhooks.md). Default: leave the database as it is.
    pub outbox: Option<bool>,
}

/// A rate limiter shared through Redis: every process using the same Redis
/// enforces one limit together.
#[napi(object)]
pub struct RateLimiterOptions {
    /// The Redis URL (`redis://host:port/`). It is checked at once but not
    /// connected to until the first request; it never appears in an error.
    pub redis: String,
    /// What happens while Redis is unreachable: `'local'` (the default: each
    /// process enforces the limits alone), `'deny'` (refuse as rate limited) or
    /// `'allow'` (admit).
    #[napi(ts_type = "'local' | 'deny' | 'allow'")]
    pub fallback: Option<String>,
    /// Prefix of every Redis key it writes (default `'apikeys:rl:'`).
    pub prefix: Option<String>,
    /// Timeout of connecting and of each Redis call, in milliseconds (default 250).
    pub timeout_ms: Option<u32>,
}

/// How a Redis rate limiter is doing (`Keyring.rateLimiterState`).
#[napi(object)]
pub struct RateLimiterState {
    /// Whether Redis is unreachable right now (the `fallback` is in force).
    pub degraded: bool,
    /// How many requests the fallback decided so far.
    pub fallback_count: f64,
}

/// A successful request's standing against its rate limit: what the
/// `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` headers say.
#[napi(object)]
pub struct RateLimitStatus {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests still allowed in the current window, after this one.
    pub remaining: u32,
    /// Milliseconds until the whole budget is available again (the
    /// `ratelimit-reset` header gives it in seconds, rounded up).
    pub reset: f64,
}

/// One rate limit: `requests` per `windowMs` milliseconds (a sliding window).
#[napi(object)]
pub struct Limit {
    /// Requests admitted per window (at least 1).
    pub requests: u32,
    /// The window, in milliseconds (at least 1).
    pub window_ms: u32,
}

/// A limit as the JavaScript layer passes it: a [`Limit`], or `false` for
/// one made unlimited (the JavaScript layer turns the `null` a caller writes
/// into `false`, as napi reads `null` and an absent field alike).
pub type LimitOrUnlimited = napi::Either<Limit, bool>;

/// Rate limits that `authenticate` enforces, per class of key, with
/// overrides per account and per key (a key's wins over its account's,
/// which wins over the class's). A class not named is unlimited, or has
/// PagerDuty's limit with `pagerduty: true`; `null` makes it unlimited.
#[napi(object)]
pub struct RateLimitOptions {
    /// Start from PagerDuty's limits (as `rateLimits: 'pagerduty'`); the
    /// classes named here replace them.
    pub pagerduty: Option<bool>,
    /// Each general access key (PagerDuty: 960 a minute).
    #[napi(ts_type = "Limit | null")]
    pub general_key: Option<LimitOrUnlimited>,
    /// Each user, across all of their user tokens (PagerDuty: 960 a minute).
    #[napi(ts_type = "Limit | null")]
    pub user: Option<LimitOrUnlimited>,
    /// Each account, across all of its scoped tokens (PagerDuty: 960 a minute).
    #[napi(ts_type = "Limit | null")]
    pub scoped_account: Option<LimitOrUnlimited>,
    /// Each integration or routing key (PagerDuty: 120 a rolling minute).
    #[napi(ts_type = "Limit | null")]
    pub events_key: Option<LimitOrUnlimited>,
    /// Per account (by its id): that account's limit for a class, `null` to
    /// make the class unlimited there.
    #[napi(ts_type = "Record<string, AccountLimitOptions>")]
    pub accounts: Option<std::collections::HashMap<String, AccountLimitOptions>>,
    /// Per key (by its id, `P` and 13 characters): that key's limit, `null`
    /// to make it unlimited. For a user or scoped token it sets the limit of
    /// the budget the key counts in whenever this key is the one used.
    #[napi(ts_type = "Record<string, Limit | null>")]
    pub keys: Option<std::collections::HashMap<String, LimitOrUnlimited>>,
}

/// One account's limits, per class of key (`null`: unlimited in that
/// account; a class not named keeps the keyring's).
#[napi(object)]
pub struct AccountLimitOptions {
    /// The account's general access keys.
    #[napi(ts_type = "Limit | null")]
    pub general_key: Option<LimitOrUnlimited>,
    /// The account's users.
    #[napi(ts_type = "Limit | null")]
    pub user: Option<LimitOrUnlimited>,
    /// The account's scoped tokens.
    #[napi(ts_type = "Limit | null")]
    pub scoped_account: Option<LimitOrUnlimited>,
    /// The account's integration and routing keys.
    #[napi(ts_type = "Limit | null")]
    pub events_key: Option<LimitOrUnlimited>,
}

/// How to build a [`Keyring`]. An option name not listed here, at any depth,
/// is refused (`ERR_INVALID_INPUT` naming it), never ignored.
#[napi(object)]
pub struct KeyringOptions {
    /// Digest keys with HMAC-SHA-256 under this secret (at least 16 bytes;
    /// a string is taken as its UTF-8 bytes). Every keyring on the same store
    /// must use the same pepper. Default: plain SHA-256.
    #[napi(ts_type = "string | Uint8Array")]
    pub pepper: Option<napi::Either<String, napi::bindgen_prelude::Uint8Array>>,
    /// Where keys are kept: `{ memory: true }` (the default), `{ sqlite: path }`
    /// or `{ postgres: url, schema? }`.
    pub store: Option<StoreOptions>,
    /// How many audit events the in-memory audit trail keeps (default 10,000).
    pub audit_capacity: Option<u32>,
    /// How long a rotated key must go unused, after its replacement was
    /// first used, for the overlap to end before its grace, in milliseconds
    /// (default 900,000: 15 minutes). A non-negative integer.
    pub rotation_quiet_ms: Option<f64>,
    /// Count the final answer of every authentication, by key kind and
    /// outcome, and its latency (`metrics()`; `apikeys/prometheus` exposes
    /// them to prom-client). Default: false, and then nothing is counted.
    pub metrics: Option<bool>,
    /// Tell the time by this clock instead of the system's (tests of expiry
    /// and last use). The JavaScript layer hands it to the addon on its own.
    #[napi(ts_type = "ManualClock")]
    pub clock: Option<napi::bindgen_prelude::Undefined>,
    /// Rate limits for `authenticate`: `'pagerduty'` for PagerDuty's numbers,
    /// or a limit per class of key. Over the limit, `authenticate` throws
    /// `ERR_RATE_LIMITED` (429) with `retryAfter` in milliseconds. Default: none.
    #[napi(ts_type = "'pagerduty' | RateLimitOptions")]
    pub rate_limits: Option<napi::Either<String, RateLimitOptions>>,
    /// Count requests against `rateLimits` in Redis (`{ redis: url }`), shared
    /// by every process using it, instead of in this process. Each
    /// `authenticate` is then a Redis round trip: `authenticateAsync` makes it
    /// off the JavaScript thread.
    pub rate_limiter: Option<RateLimiterOptions>,
}

/// Who disabled a key, and when.
#[napi(object)]
pub struct Disabled {
    /// The user who disabled it (`'system:offboarding'` when its owner was removed).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Everything kept about one key. Never holds the key: only a four-character hint.
#[napi(object)]
pub struct KeyRecord {
    /// Public, unique, URL-safe id (`P` and 13 characters); not derived from the key.
    pub id: String,
    /// The account the key belongs to.
    pub account: String,
    /// Which kind of key.
    pub kind: KeyKind,
    /// A human description (`'CI bot'`).
    pub description: String,
    /// Full access or read-only (general keys; others are `'full_access'`).
    pub access: AccessLevel,
    /// The user a user token belongs to.
    pub owner: Option<String>,
    /// The service (integration key) or orchestration (routing key).
    pub target: Option<String>,
    /// The scopes of a scoped token (empty for other kinds).
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The user who made it.
    pub created_by: String,
    /// The API version it was made for.
    #[napi(ts_type = "'v2'")]
    pub api_version: String,
    /// Set while the key is disabled.
    pub disabled: Option<Disabled>,
    /// Whether this is a read-only general key (`access === 'read_only'`).
    pub read_only: bool,
    /// The last successful authentication (kept to about a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Where the key was last used from, when the request said
    /// (`Request.remoteAddress`, `Request.path`); written with `lastUsedAt`.
    pub last_used_from: Option<UsePlace>,
    /// After this time the key no longer works.
    pub expires_at: Option<DateTime<Utc>>,
    /// The key's last four characters, for display.
    pub hint: String,
    /// The key this one replaced, when a rotation made it (`rotation.rotatedFrom`).
    pub rotated_from: Option<String>,
    /// The key that replaces this one, when it was rotated (`rotation.rotatedTo`).
    pub rotated_to: Option<String>,
    /// The key's place in a rotation, once it was rotated or made by one;
    /// absent otherwise (Rust `KeyRecord.rotation`, Python `KeyRecord.rotation`).
    pub rotation: Option<Rotation>,
}

/// A key's place in a rotation (docs/design.md §8), field for field Rust's
/// and Python's `Rotation`. On the key being replaced (`rotatedTo` set) it
/// says until when that key still works: until `overlapUntil` at the latest,
/// and no longer once traffic has moved (the new key used, this one then
/// unused for `quietMs`). On the new key only `rotatedFrom` is set.
#[napi(object)]
pub struct Rotation {
    /// The id of the key this one replaced.
    pub rotated_from: Option<String>,
    /// The id of the key that replaces this one.
    pub rotated_to: Option<String>,
    /// When this key was rotated.
    pub rotated_at: Option<DateTime<Utc>>,
    /// The latest moment this (replaced) key works: the rotation's grace,
    /// never after its own expiry; the moment of `endRotation` when that
    /// ended it.
    pub overlap_until: Option<DateTime<Utc>>,
    /// How long, in milliseconds, this key must go unused after the new
    /// key's first use for the overlap to end early (the keyring's
    /// `rotationQuietMs` when it was rotated; 0 on the new key).
    pub quiet_ms: f64,
    /// When the new key was first seen in use.
    pub successor_used_at: Option<DateTime<Utc>>,
}

impl From<&apikeys::Rotation> for Rotation {
    fn from(r: &apikeys::Rotation) -> Rotation {
        Rotation {
            rotated_from: r.rotated_from.map(|id| id.to_string()),
            rotated_to: r.rotated_to.map(|id| id.to_string()),
            rotated_at: r.rotated_at.map(date),
            overlap_until: r.overlap_until.map(date),
            quiet_ms: r.quiet_ms as f64,
            successor_used_at: r.successor_used_at.map(date),
        }
    }
}

/// Where a key was last used from: what the request said of itself. Never
/// holds a key (a value shaped like one is `'(redacted)'`) nor a query string.
#[napi(object)]
pub struct UsePlace {
    /// The caller's network address.
    pub remote_address: Option<String>,
    /// The HTTP method (`'GET'` …; `'POST'` for the Events API).
    pub method: Option<String>,
    /// The request's path, without its query string.
    pub path: Option<String>,
}

impl From<&apikeys::UsePlace> for UsePlace {
    fn from(p: &apikeys::UsePlace) -> UsePlace {
        UsePlace {
            remote_address: p.remote_address.clone(),
            method: p.method.clone(),
            path: p.path.clone(),
        }
    }
}

/// Options of [`Keyring.rotate`].
#[napi(object)]
pub struct RotateOptions {
    /// How long the old key keeps working beside the new one, in
    /// milliseconds (at most 365 days; never past the old key's expiry). It
    /// stops earlier once traffic has moved to the new key, or at `endRotation`.
    pub grace_ms: f64,
}

/// Which audit records to read (`Keyring.auditRecords`): one account's,
/// optionally of one key, one actor, some actions, in a time window, a page
/// at a time. Any other field is refused (`ERR_INVALID_INPUT`).
#[napi(object)]
pub struct AuditQuery {
    /// The account (required).
    pub account: String,
    /// Only records about this key.
    pub key_id: Option<String>,
    /// Only records of this acting user (`'system'` for the calls the
    /// application makes itself).
    pub actor: Option<String>,
    /// Only these actions (default: all).
    #[napi(ts_type = "Array<AuditAction>")]
    pub actions: Option<Vec<String>>,
    /// From this moment on, inclusive. Default: 24 hours before `until`.
    #[napi(ts_type = "Date")]
    pub since: Option<f64>,
    /// Before this moment, exclusive. Default: now (this millisecond
    /// included). At most 31 days after `since`.
    #[napi(ts_type = "Date")]
    pub until: Option<f64>,
    /// Records per page: a whole number, at most 1000 (default 100).
    pub limit: Option<f64>,
    /// Where to go on: the `nextCursor` of the page before, as it was given.
    pub cursor: Option<String>,
}

/// One page of audit records, newest first.
#[napi(object)]
pub struct AuditPage {
    /// The records, newest first.
    pub records: Vec<AuditEvent>,
    /// Pass this as the query's `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A duration in milliseconds, rounded up to a whole one (so that, in
/// seconds rounded up, it reads as `apikeys-http` writes it in
/// `retry-after` and `ratelimit-reset`).
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 > 0);
    ms as f64
}

/// A time the JavaScript layer passes as a `Date`'s time value, for a
/// clock: from 1 ms after 1970 (the core's first time) to the last a record
/// can give back as a `Date`.
pub(crate) fn instant(ms: f64, field: &'static str) -> apikeys::Result<apikeys::Timestamp> {
    time_of(ms, field, 1.0, "must be after 1970-01-01T00:00:00.000Z")
}

/// A `Date`'s time value as a timestamp (whole milliseconds, rounded down),
/// or `InvalidInput` naming `field`: NaN, before `earliest` (saying
/// `too_early`), or later than a record can give back as a `Date`.
fn time_of(
    ms: f64,
    field: &'static str,
    earliest: f64,
    too_early: &str,
) -> apikeys::Result<apikeys::Timestamp> {
    let invalid = |reason: &str| apikeys::Error::InvalidInput {
        field,
        reason: reason.to_owned(),
    };
    if !ms.is_finite() {
        return Err(invalid("must be a valid Date"));
    }
    let ms = ms.floor();
    if ms < earliest {
        return Err(invalid(too_early));
    }
    // Below 2^53, so exact as an integer; and a date chrono can give back.
    if ms > 9_007_199_254_740_991.0 || DateTime::<Utc>::from_timestamp_millis(ms as i64).is_none() {
        return Err(invalid("is too far in the future"));
    }
    Ok(apikeys::Timestamp::from_unix_millis(ms as u64))
}

/// A bound of an audit query's window (`since`, `until`), as the JavaScript
/// layer passes a `Date`: NaN, a time before 1970 or one past what a record
/// can give back are `InvalidInput` naming `field`.
pub(crate) fn window_bound(ms: f64, field: &'static str) -> apikeys::Result<apikeys::Timestamp> {
    time_of(
        ms,
        field,
        0.0,
        "must not be before 1970-01-01T00:00:00.000Z",
    )
}

/// A duration the JavaScript layer passes as a number of milliseconds
/// (fractions dropped): NaN, an infinity or a negative number is
/// `InvalidInput` naming `field`. A huge one saturates, and the core refuses
/// it where it has a bound (a rotation's grace).
pub(crate) fn duration(ms: f64, field: &'static str) -> apikeys::Result<std::time::Duration> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(apikeys::Error::InvalidInput {
            field,
            reason: "must be a finite, non-negative number of milliseconds".to_owned(),
        });
    }
    // `as` saturates: anything past u64::MAX milliseconds is u64::MAX.
    Ok(std::time::Duration::from_millis(ms.floor() as u64))
}

/// An audit page size as the JavaScript layer passes it: a whole number from
/// 1 to [`apikeys::MAX_AUDIT_PAGE`] (Rust's `limit: 0`, "the default", is an
/// absent `limit` in JavaScript). A larger whole number goes to the core,
/// which refuses it.
pub(crate) fn page_size(n: f64) -> apikeys::Result<usize> {
    if !n.is_finite() || n < 1.0 || n.fract() != 0.0 {
        return Err(apikeys::Error::InvalidInput {
            field: "limit",
            reason: format!(
                "must be a whole number from 1 to {}",
                apikeys::MAX_AUDIT_PAGE
            ),
        });
    }
    Ok(n as usize)
}

pub(crate) fn date(t: apikeys::Timestamp) -> DateTime<Utc> {
    let ms = i64::try_from(t.unix_millis()).unwrap_or(i64::MAX);
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// An expiry date as the JavaScript layer passes it: a `Date`'s time value in
/// milliseconds (the layer reads it out of the `Date`, so that no conversion
/// error of napi's can reach the caller). NaN, a time before 1970 (in the past
/// in any case) and a time this binding could not give back as a `Date` in
/// a record are `ERR_INVALID_INPUT` naming `expiresAt`; the core then refuses
/// one that is not in the future.
pub(crate) fn expiry(ms: f64) -> apikeys::Result<apikeys::Timestamp> {
    time_of(ms, "expires_at", 0.0, "must be in the future")
}

impl From<&apikeys::KeyRecord> for KeyRecord {
    fn from(r: &apikeys::KeyRecord) -> KeyRecord {
        KeyRecord {
            id: r.id.to_string(),
            account: r.account.to_string(),
            kind: r.kind.into(),
            description: r.description.to_string(),
            access: r.access.into(),
            owner: r.owner.as_deref().map(str::to_owned),
            target: r.target.as_deref().map(str::to_owned),
            scopes: r.scopes.iter().map(ToString::to_string).collect(),
            created_at: date(r.created_at),
            created_by: r.created_by.to_string(),
            api_version: r.api_version.as_str().to_owned(),
            disabled: r.disabled.as_ref().map(|d| Disabled {
                by: d.by.to_string(),
                at: date(d.at),
            }),
            read_only: r.access == CoreAccess::ReadOnly,
            last_used_at: r.last_used_at.map(date),
            last_used_from: r.last_used_from.as_deref().map(UsePlace::from),
            expires_at: r.expires_at.map(date),
            hint: r.hint.as_str().to_owned(),
            rotated_from: r.rotated_from().map(|id| id.to_string()),
            rotated_to: r.rotated_to().map(|id| id.to_string()),
            rotation: r.rotation.as_deref().map(Rotation::from),
        }
    }
}

/// Who a request was authenticated as: a frozen object. Without a rate limit
/// the same key and role always give back the same object, so compare fields,
/// not identity across role changes.
#[napi(object)]
pub struct Principal {
    /// The key's id.
    pub key_id: String,
    /// The key's kind.
    pub kind: KeyKind,
    /// The account.
    pub account: String,
    /// The owner of a user token.
    pub owner: Option<String>,
    /// For a user token: the role it acted with (its owner's role at this request).
    pub role: Option<Role>,
    /// Full access or read-only.
    pub access: AccessLevel,
    /// The scopes of a scoped token.
    pub scopes: Vec<String>,
    /// The service or orchestration of an Events key.
    pub target: Option<String>,
    /// This request's standing against its rate limit; `null` when no limit
    /// applies to the key (a keyring without `rateLimits`, or a class of key
    /// left unlimited). A principal with a status is a new object per call.
    pub rate_limit: napi::Either<RateLimitStatus, napi::bindgen_prelude::Null>,
    /// The key's whole record as of its latest authentication through this
    /// keyring (for the principal just answered: as of this authentication,
    /// as Python's `Principal.record` and Rust's `Principal::record`). A
    /// getter, not enumerable: each read builds a fresh object.
    #[napi(ts_type = "KeyRecord")]
    pub record: napi::bindgen_prelude::Undefined,
}

impl RateLimitStatus {
    pub(crate) fn from_core(s: &apikeys::RateLimitStatus) -> RateLimitStatus {
        RateLimitStatus {
            limit: s.limit,
            remaining: s.remaining,
            reset: millis(s.reset),
        }
    }
}

/// What a management call asked for, as an audit event names it.
#[napi(string_enum)]
pub enum AuditAction {
    /// A key was asked for.
    #[napi(value = "create")]
    Create,
    /// The keys were listed.
    #[napi(value = "list")]
    List,
    /// One key's record was read.
    #[napi(value = "get")]
    Get,
    /// A key was disabled.
    #[napi(value = "disable")]
    Disable,
    /// A key was enabled.
    #[napi(value = "enable")]
    Enable,
    /// A key was deleted.
    #[napi(value = "delete")]
    Delete,
    /// An account's settings were set.
    #[napi(value = "set_account")]
    SetAccount,
    /// A user's role was set.
    #[napi(value = "set_user_role")]
    SetUserRole,
    /// A user was removed (their tokens disabled).
    #[napi(value = "remove_user")]
    RemoveUser,
    /// A key was rotated: a new key made, the old one on an overlap.
    #[napi(value = "rotate")]
    Rotate,
    /// A rotation's overlap was ended by hand.
    #[napi(value = "end_rotation")]
    EndRotation,
}

/// One field a management call changed, as text: `'disabled'` (`'true'`,
/// `'false'`), `'role'` (a role's name), `'rotated_to'` (a key id),
/// `'overlap_until'` (milliseconds since the epoch) … Never a key.
#[napi(object)]
pub struct FieldChange {
    /// The field's name (`'disabled'`, `'role'`, `'removed'`, `'rotated_to'`,
    /// `'overlap_until'`, `'rest_api'`, `'advanced_permissions'`, `'deleted'`).
    pub field: String,
    /// The value it has now; absent for none.
    pub value: Option<String>,
    /// The value it had; absent for none.
    pub before_value: Option<String>,
}

/// One management call, allowed or refused. Never holds a key.
#[napi(object)]
pub struct AuditEvent {
    /// The record's number in its trail: increasing in the order records
    /// were written (what paging goes by).
    pub id: f64,
    /// When.
    pub at: DateTime<Utc>,
    /// The account acted in.
    pub account: String,
    /// The acting user: `'system'` for `setAccount`, `setUserRole` and
    /// `removeUser`, the actor for their `…As` forms and every other call.
    pub actor: String,
    /// The actor's role, when there is an actor.
    pub actor_role: Option<Role>,
    /// What was asked for.
    #[napi(ts_type = "AuditAction")]
    pub action: String,
    /// The kind of key, where one is concerned.
    pub key_kind: Option<KeyKind>,
    /// The key, where one is concerned and known.
    pub key_id: Option<String>,
    /// The user acted upon (role changes, removals, another user's token).
    pub subject_user: Option<String>,
    /// `'allowed'` or `'refused'`.
    #[napi(ts_type = "'allowed' | 'refused'")]
    pub outcome: String,
    /// Whether the call was allowed (`outcome === 'allowed'`).
    pub allowed: bool,
    /// For a refusal: the error's kind, as the core names it and Python gives
    /// it (`'not_permitted'`, `'not_found'` …; the error thrown carried it as
    /// its `code`, `'ERR_NOT_PERMITTED'`).
    pub error: Option<String>,
    /// For a refusal: the error's message.
    pub reason: Option<String>,
    /// What changed (empty for reads and refusals).
    pub changes: Vec<FieldChange>,
    /// How the call reached the application, as the actor's `context` said
    /// (an empty object when it said nothing).
    pub context: AuditContext,
    /// The record in the shape of PagerDuty's `GET /audit/records`, as the
    /// core writes it (`AuditEvent::to_pagerduty`): a fresh object on each
    /// call. A method, not enumerable.
    // The addon hands the core's JSON text here; index.js keeps it and puts
    // the method in its place before any caller sees the object.
    #[napi(js_name = "toPagerDuty", ts_type = "() => PagerDutyAuditRecord")]
    pub to_pager_duty: String,
}

fn action_name(a: apikeys::AuditAction) -> &'static str {
    a.as_str()
}

impl From<&apikeys::AuditEvent> for AuditEvent {
    fn from(e: &apikeys::AuditEvent) -> AuditEvent {
        let (outcome, error, reason) = match &e.outcome {
            apikeys::AuditOutcome::Refused { error, reason } => {
                ("refused", Some(error.to_string()), Some(reason.clone()))
            }
            apikeys::AuditOutcome::Allowed => ("allowed", None, None),
        };
        AuditEvent {
            id: e.id as f64,
            at: date(e.at),
            account: e.account.clone(),
            actor: e.actor.clone(),
            actor_role: e.actor_role.map(Role::from),
            action: action_name(e.action).to_owned(),
            key_kind: e.key_kind.map(KeyKind::from),
            key_id: e.key_id.map(|k| k.to_string()),
            subject_user: e.subject_user.clone(),
            outcome: outcome.to_owned(),
            allowed: matches!(e.outcome, apikeys::AuditOutcome::Allowed),
            error,
            reason,
            changes: e
                .changes
                .iter()
                .map(|c| FieldChange {
                    field: c.field.clone(),
                    value: c.value.clone(),
                    before_value: c.before_value.clone(),
                })
                .collect(),
            context: AuditContext::from(&e.context),
            to_pager_duty: e.to_pagerduty().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ms: f64) -> String {
        match expiry(ms) {
            Err(apikeys::Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "expires_at");
                reason
            }
            other => panic!("expected InvalidInput for {ms}, got {other:?}"),
        }
    }

    #[test]
    fn milliseconds_are_rounded_up_so_seconds_read_as_the_headers_say() {
        use std::time::Duration;
        for (d, ms) in [
            (Duration::ZERO, 0.0),
            (Duration::from_nanos(1), 1.0),
            (Duration::from_micros(1_500), 2.0),
            (Duration::from_millis(2_000), 2_000.0),
            (Duration::from_nanos(2_000_000_001), 2_001.0),
        ] {
            assert_eq!(millis(d), ms, "{d:?}");
            let headers = apikeys_http::rate_limit_headers(&apikeys::RateLimitStatus {
                limit: 1,
                remaining: 0,
                reset: d,
            });
            assert_eq!(headers[2].1, (ms / 1000.0).ceil().to_string().as_str());
        }
    }

    fn field_and_reason<T: std::fmt::Debug>(r: apikeys::Result<T>) -> (&'static str, String) {
        match r {
            Err(apikeys::Error::InvalidInput { field, reason }) => (field, reason),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn durations_are_finite_non_negative_milliseconds_and_huge_ones_saturate() {
        use std::time::Duration;
        assert_eq!(duration(0.0, "grace").unwrap(), Duration::ZERO);
        assert_eq!(duration(1.9, "grace").unwrap(), Duration::from_millis(1));
        assert_eq!(
            duration(3_600_000.0, "grace").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            duration(1e300, "grace").unwrap(),
            Duration::from_millis(u64::MAX)
        );
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -0.5] {
            let (field, reason) = field_and_reason(duration(bad, "older_than"));
            assert_eq!(field, "older_than");
            assert_eq!(
                reason,
                "must be a finite, non-negative number of milliseconds"
            );
        }
    }

    #[test]
    fn a_page_size_is_a_whole_number_from_1_and_larger_ones_go_to_the_core() {
        assert_eq!(page_size(1.0).unwrap(), 1);
        assert_eq!(page_size(1000.0).unwrap(), 1000);
        assert_eq!(page_size(1001.0).unwrap(), 1001);
        for bad in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY] {
            let (field, reason) = field_and_reason(page_size(bad));
            assert_eq!(field, "limit");
            assert!(reason.contains("1000"), "{reason}");
        }
        // And the core refuses what is over its bound, naming the same field.
        let mut q = apikeys::AuditQuery::account("acme");
        q.limit = page_size(1001.0).unwrap();
        let (field, _) = field_and_reason(q.resolve(apikeys::Timestamp::now()));
        assert_eq!(field, "limit");
    }

    #[test]
    fn window_bounds_are_valid_dates_from_1970() {
        assert_eq!(window_bound(0.0, "since").unwrap().unix_millis(), 1);
        assert_eq!(
            window_bound(1_790_000_000_000.5, "until")
                .unwrap()
                .unix_millis(),
            1_790_000_000_000
        );
        assert_eq!(field_and_reason(window_bound(f64::NAN, "since")).0, "since");
        assert_eq!(field_and_reason(window_bound(-1.0, "until")).0, "until");
        assert_eq!(field_and_reason(window_bound(8.64e15, "until")).0, "until");
    }

    #[test]
    fn a_record_nests_its_rotation_like_rust_and_python_and_shows_its_place() {
        let kr = apikeys::Keyring::new(apikeys::MemoryStore::new());
        let admin = apikeys::Actor::new("acme", "PADMIN1", apikeys::Role::Admin);
        let old = kr
            .create_general_key(&admin, "ci", CoreAccess::FullAccess)
            .unwrap();
        let id = old.record().id.to_string();
        assert!(KeyRecord::from(old.record()).rotation.is_none());
        let new = kr
            .rotate(&admin, &id, std::time::Duration::from_secs(3600))
            .unwrap();
        let core = kr.get(&admin, &id).unwrap();
        let o = KeyRecord::from(&core);
        assert_eq!(o.rotated_to, Some(new.record().id.to_string()));
        assert_eq!(o.rotated_from, None);
        let rot = o.rotation.expect("the old key's rotation");
        let want = core.rotation.as_deref().unwrap();
        assert_eq!(rot.rotated_to, o.rotated_to);
        assert_eq!(rot.rotated_from, None);
        assert_eq!(rot.rotated_at, want.rotated_at.map(date));
        assert_eq!(rot.overlap_until, want.overlap_until.map(date));
        assert!(rot.rotated_at.is_some() && rot.overlap_until.is_some());
        assert_eq!(rot.quiet_ms, 900_000.0);
        assert_eq!(rot.successor_used_at, None);
        let n = KeyRecord::from(new.record());
        assert_eq!(n.rotated_from, Some(id.clone()));
        let nrot = n.rotation.expect("the new key's rotation");
        assert_eq!(nrot.rotated_from, Some(id));
        assert_eq!(nrot.rotated_to, None);
        assert_eq!(nrot.overlap_until, None);
        assert_eq!(nrot.quiet_ms, 0.0, "only a rotated key has a quiet period");
        kr.authenticate(
            new.secret().expose(),
            &apikeys::Request::rest("GET").with_place(Some("192.0.2.1"), Some("/x?y")),
        )
        .unwrap();
        let placed = KeyRecord::from(&kr.get(&admin, &new.record().id.to_string()).unwrap());
        let place = placed.last_used_from.expect("a place");
        assert_eq!(place.remote_address.as_deref(), Some("192.0.2.1"));
        assert_eq!(place.method.as_deref(), Some("GET"));
        assert_eq!(place.path.as_deref(), Some("/x"));
        // The audit event carries the core's PagerDuty JSON.
        let trail = kr.audit_trail();
        let rotate = trail
            .iter()
            .find(|e| e.action == apikeys::AuditAction::Rotate)
            .unwrap();
        let js = AuditEvent::from(rotate);
        assert_eq!(js.to_pager_duty, rotate.to_pagerduty().to_string());
        assert_eq!(js.changes.len(), rotate.changes.len());
        assert_eq!(js.id, rotate.id as f64);
    }

    #[test]
    fn an_expiry_is_a_finite_time_from_1970_that_a_record_can_give_back() {
        // The core keeps times from 1 ms after the epoch: 1970 itself is in the past.
        assert_eq!(expiry(0.0).unwrap().unix_millis(), 1);
        assert_eq!(
            expiry(1_700_000_000_123.0).unwrap().unix_millis(),
            1_700_000_000_123
        );
        let far = 253_402_214_400_000.0; // 9999-12-31
        assert_eq!(date(expiry(far).unwrap()).timestamp_millis() as f64, far);
        assert_eq!(reason(f64::NAN), "must be a valid Date");
        assert_eq!(reason(f64::INFINITY), "must be a valid Date");
        assert_eq!(reason(-1.0), "must be in the future");
        assert_eq!(reason(-8.64e15), "must be in the future");
        // The last Date JavaScript has is past what chrono (so a record) can hold.
        assert_eq!(reason(8.64e15), "is too far in the future");
        assert_eq!(reason(1e300), "is too far in the future");
    }
}

/// One series of the verification metrics: the answers of one key kind with
/// one outcome (docs/design.md §12).
#[napi(object)]
pub struct AuthMetricsSeries {
    /// A key kind's name (`general`, `user_token`, …) or `malformed`.
    pub kind: String,
    /// `ok` or the refusal's kind name (`unauthorized`, `rate_limited`, …).
    pub outcome: String,
    /// How many answers.
    pub count: f64,
    /// Their latencies added up, in seconds.
    pub sum_seconds: f64,
    /// Cumulative counts per bucket of `bucketBounds`, then `+Inf` (= `count`).
    pub buckets: Vec<f64>,
}

/// The verification metrics at one moment (`Keyring.metrics()`).
#[napi(object)]
pub struct AuthMetricsSnapshot {
    /// The latency buckets' upper bounds, in seconds (inclusive, Prometheus `le`).
    pub bucket_bounds: Vec<f64>,
    /// One entry per (kind, outcome) with at least one answer.
    pub series: Vec<AuthMetricsSeries>,
}
