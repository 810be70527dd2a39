//! Issue and check API access keys the way PagerDuty does.
//!
//! - **Key kinds** ([`KeyKind`]): 20-character REST keys (general access keys,
//!   full or read-only; personal user tokens that act with their owner's
//!   *current* role; scoped tokens) and 32-character Events API keys
//!   (integration keys, routing keys). A REST key on the Events API, or the
//!   reverse, is an error.
//! - **Who may do what**: every management call takes an [`Actor`] and follows
//!   a role permission matrix ([`may_manage`]); user tokens act through a grants
//!   table ([`GrantsTable`]).
//! - **Keys shown once, hashes at rest**: a new key comes back once, in a
//!   [`Secret`]; stores keep only its [`Digest`] (SHA-256, or HMAC-SHA-256
//!   under a pepper) and a four-character hint. Digests are compared in
//!   constant time. No error, `Debug` output, audit event or serialized record
//!   ever contains a key.
//! - **A fast hot path**: [`Keyring::authenticate`] costs little more than one SHA-256.
//! - **Pluggable storage**: the [`KeyStore`] trait, with [`MemoryStore`] as the default.
//! - **Finding leaked keys**: [`find_candidates`] finds what looks like a key
//!   in any text (with offsets, never printing it), and
//!   [`Keyring::check_leaked`] says which of those are keys of the store.
//!
//! ```
//! use apikeys::{AccessLevel, Actor, Error, Keyring, MemoryStore, Request, Role};
//!
//! let keyring = Keyring::new(MemoryStore::new());
//! let admin = Actor::new("acme", "PADMIN1", Role::Admin);
//! let issued = keyring.create_general_key(&admin, "CI bot", AccessLevel::ReadOnly)?;
//! let token: &str = issued.secret().expose(); // shown once
//!
//! let principal = keyring.authenticate(token, &Request::rest("GET"))?;
//! assert_eq!(principal.account(), "acme");
//!
//! let post = Request::rest("POST").with_scope("incidents.write")?;
//! let err = keyring.authenticate(token, &post).unwrap_err();
//! assert!(matches!(err, Error::Forbidden { .. }));
//! assert_eq!(err.http_status(), 403);
//!
//! let id = issued.record().id.to_string();
//! keyring.disable(&admin, &id)?;
//! assert_eq!(keyring.authenticate(token, &Request::rest("GET")).unwrap_err().http_status(), 401);
//! keyring.enable(&admin, &id)?;
//! keyring.delete(&admin, &id)?;
//! # Ok::<(), apikeys::Error>(())
//! ```
//!
//! ## Decisions where the design is silent
//! - Key ids are `P` plus 13 Crockford base32 characters (64 random bits).
//! - Descriptions are trimmed, then must be 1 to 200 characters without
//!   control characters. Account, user, service and orchestration ids are 1 to
//!   128 bytes without whitespace or control characters.
//! - A request needs write access when its method is not `GET`/`HEAD` *or* its
//!   scope is a `.write` scope; so a read-only key may not make a `GET` that
//!   names a write scope.
//! - Disabling applies to general keys only ([`Error::InvalidInput`] for other
//!   kinds); disabling a disabled key changes nothing. Offboarding
//!   ([`Keyring::remove_user`]) disables user tokens too, recording
//!   `system:offboarding`; restoring the user with [`Keyring::set_user_role`]
//!   does not re-enable them.
//! - `last_used_at` is written at most once a minute per key.
//! - Management calls check, in order: the inputs naming the actor, the key
//!   (unknown or other account: `NotFound`), the role (`NotPermitted`), the plan
//!   (`PlanRestricted`), then the remaining inputs.
//! - `list` and `get` are audited like every other management call.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The public API is the list below; the modules are rooms inside. Public
// modules are the ones other crates reach into by path: `store` (the
// building blocks of a store), `ratelimit` (the limiter's contract and its
// documentation) and, with the `testing` feature, `testing`.
mod audit;
mod clock;
mod digest;
mod error;
mod key;
mod keyring;
mod leaks;
mod metrics;
mod names;
mod policy;
pub mod ratelimit;
mod record;
mod request;
mod role;
mod secret;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

/// The thin reference-counted string of a record's names
/// ([`KeyRecord::account`], `owner`, `target`, `created_by`, [`Disabled::by`]):
/// one pointer where `Arc<str>` is two, a `Deref<Target = str>` like it.
/// Re-exported from the [`arcstr`](https://docs.rs/arcstr) crate.
pub use arcstr::ArcStr;

pub use self::{
    audit::{
        AuditAction, AuditEvent, AuditOutcome, AuditPage, AuditQuery, AuditSink, AuditWindow,
        CallContext, DEFAULT_AUDIT_WINDOW, FieldChange, MAX_AUDIT_PAGE, MAX_AUDIT_WINDOW,
        MAX_CONTEXT_BYTES, MAX_REPORT_URL_BYTES, MemoryAuditLog,
    },
    clock::{Clock, ManualClock, SystemClock},
    digest::{Digest, KeyHasher, MIN_PEPPER_LEN},
    error::{AuthFailure, Error, Result, StoreError, StoreFailure},
    key::{Api, EVENTS_KEY_LEN, Hint, KeyKind, Malformed, REST_KEY_LEN},
    keyring::{
        DEFAULT_ROTATION_QUIET, IssuedKey, Keyring, KeyringBuilder, LAST_USED_GRANULARITY,
        LEAK_REPORT, LeakAction, LeakOutcome, LeakVerdict, MAX_DESCRIPTION_CHARS, MAX_ID_BYTES,
        MAX_ROTATION_GRACE, MAX_SCOPES, NewKey, OFFBOARDING, Origin, Principal,
    },
    leaks::{
        CONTEXT_BYTES, Candidate, LeakState, LeakedKey, StreamCandidate, StreamScanner,
        find_candidates, find_candidates_in_bytes,
    },
    metrics::{
        AuthMetrics, AuthOutcome, KIND_LABELS, LATENCY_BUCKETS, MALFORMED_KIND, MetricsSnapshot,
        Series,
    },
    policy::{
        Action, GrantsTable, PAGERDUTY_ADMIN_ONLY, Permissions, ResourceSet, RoleGrants, Subject,
        may_manage,
    },
    ratelimit::{
        Decision, Limit, LimitClass, LocalRateLimiter, RateBucket, RateLimitStatus, RateLimiter,
        RateLimits,
    },
    record::{
        AccessLevel, ApiVersion, Disabled, KeyId, KeyRecord, MAX_PLACE_ADDRESS_BYTES,
        MAX_PLACE_PATH_BYTES, Rotation, Scope, Timestamp, UsePlace,
    },
    request::{Method, Request},
    role::{AccountSettings, Actor, Role, UserState},
    secret::Secret,
    store::{
        CachedLookup, Edit, KeyFilter, KeyLookup, KeyStore, LookupRef, MemoryStore, Standings,
        UserInsert,
    },
};
