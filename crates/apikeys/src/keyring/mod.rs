//! [`Keyring`]: the whole system — issuing, managing and checking keys.
//!
//! One type, in four rooms: this module builds it and holds what every call
//! shares (the audit draft, input checks); `issue` makes keys,
//! `manage` changes and reads them and the users they act for, `verify` is the
//! hot path. What may be done by whom lives in [`crate::policy`], the contract
//! in docs/design.md.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditPage, AuditQuery, AuditSink, CallContext,
    FieldChange, MemoryAuditLog,
};
use crate::clock::{Clock, SystemClock};
use crate::digest::KeyHasher;
use crate::error::{Error, Result};
use crate::key::KeyKind;
use crate::metrics::AuthMetrics;
use crate::policy::GrantsTable;
use crate::ratelimit::{Enforcer, RateLimiter, RateLimits, Rejections};
use crate::record::{KeyId, KeyRecord};
use crate::role::{Actor, Role, UserState};
use crate::store::{KeyStore, MemoryStore};

mod issue;
mod leaks;
mod manage;
mod replica;
mod rotate;
mod verify;

pub use issue::{IssuedKey, NewKey};
pub use leaks::{LEAK_REPORT, LeakAction, LeakOutcome, LeakVerdict};
pub use verify::{Origin, Principal};

/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// The longest account, user, service or orchestration id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// The most scopes one token may carry.
pub const MAX_SCOPES: usize = 64;
/// `last_used_at` is written at most once per key per this interval.
pub const LAST_USED_GRANULARITY: Duration = Duration::from_secs(60);
/// Who [`Keyring::remove_user`] records as having disabled the user's tokens.
pub const OFFBOARDING: &str = "system:offboarding";
/// How long a rotated key must go unused, after its replacement's first use,
/// for the overlap to end early: the default of [`KeyringBuilder::rotation_quiet`].
pub const DEFAULT_ROTATION_QUIET: Duration = Duration::from_secs(15 * 60);
/// The longest grace a rotation may give the old key.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(365 * 86_400);

/// Issues, manages and checks API keys. Cheap to share between threads (`&self` everywhere).
///
/// Management calls take an [`Actor`] and follow the permission matrix of
/// docs/design.md §2; each one leaves exactly one [`AuditEvent`]. [`Keyring::authenticate`]
/// is the hot path.
pub struct Keyring {
    store: Arc<dyn KeyStore>,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn AuditSink>,
    grants: Arc<GrantsTable>,
    limits: Option<Enforcer>,
    rejections: Rejections,
    rotation_quiet: Duration,
    /// Verification metrics, when installed (docs/design.md §12).
    metrics: Option<Arc<AuthMetrics>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}

impl Default for Keyring {
    fn default() -> Self {
        Keyring::new(MemoryStore::new())
    }
}

/// Builds a [`Keyring`]: store, pepper, clock, audit sink and grants table.
#[derive(Default)]
pub struct KeyringBuilder {
    store: Option<Arc<dyn KeyStore>>,
    pepper: Option<zeroize::Zeroizing<Vec<u8>>>,
    clock: Option<Arc<dyn Clock>>,
    audit: Option<Arc<dyn AuditSink>>,
    grants: Option<GrantsTable>,
    limits: Option<RateLimits>,
    limiter: Option<Arc<dyn RateLimiter>>,
    rotation_quiet: Option<Duration>,
    metrics: Option<Arc<AuthMetrics>>,
}

impl fmt::Debug for KeyringBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringBuilder")
            .field("pepper", &self.pepper.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

impl KeyringBuilder {
    /// The store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl KeyStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }
    /// A store shared with other keyrings or code.
    pub fn shared_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// Digest keys with HMAC-SHA-256 under this secret (at least 16 bytes).
    /// Every keyring on the same store must use the same pepper.
    pub fn pepper(mut self, pepper: &[u8]) -> Self {
        self.pepper = Some(zeroize::Zeroizing::new(pepper.to_vec()));
        self
    }
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }
    /// Where audit events go (default: a [`MemoryAuditLog`]).
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }
    /// What user tokens may do per role (default: [`GrantsTable::pagerduty`]).
    pub fn grants(mut self, grants: GrantsTable) -> Self {
        self.grants = Some(grants);
        self
    }
    /// Enforce these rate limits in [`Keyring::authenticate`] (default: none).
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = Some(limits);
        self
    }
    /// Count requests with this limiter (default: a [`LocalRateLimiter`](crate::LocalRateLimiter)).
    /// Only used when rate limits are set.
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }
    /// How long a rotated key must go unused, after its replacement was
    /// first used, for the overlap to end before its grace (default:
    /// [`DEFAULT_ROTATION_QUIET`], 15 minutes).
    pub fn rotation_quiet(mut self, quiet: Duration) -> Self {
        self.rotation_quiet = Some(quiet);
        self
    }
    /// Count the final answer of every authentication and its latency in
    /// `metrics` (default: none, and then the hot path reads no clock). One
    /// [`AuthMetrics`] may serve several keyrings; set twice, the last wins.
    /// Read it with [`AuthMetrics::snapshot`] (docs/design.md §12).
    pub fn metrics(mut self, metrics: Arc<AuthMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
    /// The keyring. Fails only for a pepper shorter than 16 bytes.
    pub fn build(self) -> Result<Keyring> {
        let hasher = match &self.pepper {
            Some(p) => KeyHasher::with_pepper(p)?,
            None => KeyHasher::sha256(),
        };
        Ok(Keyring {
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            hasher,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            audit: self
                .audit
                .unwrap_or_else(|| Arc::new(MemoryAuditLog::default())),
            grants: Arc::new(self.grants.unwrap_or_default()),
            limits: self.limits.map(|l| Enforcer::new(l, self.limiter)),
            rejections: Rejections::default(),
            rotation_quiet: self.rotation_quiet.unwrap_or(DEFAULT_ROTATION_QUIET),
            metrics: self.metrics,
        })
    }
}

/// The audit event being filled in by one management call.
struct Draft {
    account: String,
    actor: String,
    actor_role: Option<Role>,
    action: AuditAction,
    key_kind: Option<KeyKind>,
    key_id: Option<KeyId>,
    subject_user: Option<String>,
    changes: Vec<FieldChange>,
    context: CallContext,
    /// When an allowed change was written (its record's time).
    at: Option<crate::record::Timestamp>,
}

/// An id as the audit trail may show it: never something that could be a key.
/// Ids that fail validation become `(invalid)`, and ids in a key's format
/// (someone pasted a key where an id goes) become `(redacted)`.
fn audit_id(s: &str) -> String {
    if validate_id("id", s).is_err() {
        "(invalid)".to_owned()
    } else if KeyKind::parse(s).is_ok() {
        "(redacted)".to_owned()
    } else {
        s.to_owned()
    }
}

impl Draft {
    fn by(actor: &Actor, action: AuditAction) -> Draft {
        Draft {
            account: audit_id(&actor.account),
            actor: audit_id(&actor.user),
            actor_role: Some(actor.role),
            action,
            key_kind: None,
            key_id: None,
            subject_user: None,
            changes: Vec::new(),
            context: actor.context.clone(),
            at: None,
        }
    }
    fn system(account: &str, action: AuditAction) -> Draft {
        Draft {
            account: audit_id(account),
            actor: "system".to_owned(),
            actor_role: None,
            action,
            key_kind: None,
            key_id: None,
            subject_user: None,
            changes: Vec::new(),
            context: CallContext::default(),
            at: None,
        }
    }
    /// The event as it stands, at `at`, with this outcome.
    fn event(&self, at: crate::record::Timestamp, outcome: AuditOutcome) -> AuditEvent {
        AuditEvent {
            id: 0,
            at,
            account: self.account.clone(),
            actor: self.actor.clone(),
            actor_role: self.actor_role,
            action: self.action,
            key_kind: self.key_kind,
            key_id: self.key_id,
            subject_user: self.subject_user.clone(),
            changes: self.changes.clone(),
            context: self.context.clone(),
            outcome,
        }
    }

    /// The record a store writes with an allowed change.
    fn allowed(&mut self, at: crate::record::Timestamp) -> AuditEvent {
        self.at = Some(at);
        self.event(at, AuditOutcome::Allowed)
    }

    /// Note one changed field.
    fn changed(&mut self, field: &str, before: Option<String>, value: Option<String>) {
        self.changes.retain(|c| c.field != field);
        self.changes.push(FieldChange::new(field, before, value));
    }

    fn note(&mut self, r: &KeyRecord) {
        self.key_id = Some(r.id);
        self.key_kind = Some(r.kind);
        if let Some(o) = &r.owner {
            if **o != *self.actor {
                self.subject_user = Some(audit_id(o));
            }
        }
    }
}

pub(crate) fn validate_id(field: &'static str, s: &str) -> Result<()> {
    let why = if s.is_empty() {
        "must not be empty".to_owned()
    } else if s.len() > MAX_ID_BYTES {
        format!("must be at most {MAX_ID_BYTES} bytes, got {}", s.len())
    } else if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "must not contain whitespace or control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::invalid(field, why))
}

fn validate_actor(a: &Actor) -> Result<()> {
    validate_id("account", &a.account)?;
    validate_id("user", &a.user)
}

fn validate_description(s: &str) -> Result<&str> {
    let t = s.trim();
    let why = if t.is_empty() {
        "must not be empty".to_owned()
    } else if t.chars().count() > MAX_DESCRIPTION_CHARS {
        format!("must be at most {MAX_DESCRIPTION_CHARS} characters")
    } else if t.chars().any(char::is_control) {
        "must not contain control characters (newlines, tabs, NUL …)".to_owned()
    } else {
        return Ok(t);
    };
    Err(Error::invalid("description", why))
}

fn removed_actor() -> Error {
    Error::NotPermitted {
        reason: "this user was removed from the account; set their role again to restore them"
            .to_owned(),
    }
}

fn not_found(id: &str) -> Error {
    // Ids are public, but echo only well-formed ones (never arbitrary input).
    let shown = if KeyId::parse(id).is_some() {
        id.to_owned()
    } else {
        "(malformed)".to_owned()
    };
    Error::NotFound { id: shown }
}

impl Keyring {
    /// A keyring over `store`, with plain SHA-256 digests, the system clock, an
    /// in-memory audit log and PagerDuty's grants table.
    pub fn new(store: impl KeyStore + 'static) -> Keyring {
        Keyring {
            store: Arc::new(store),
            hasher: KeyHasher::sha256(),
            clock: Arc::new(SystemClock),
            audit: Arc::new(MemoryAuditLog::default()),
            grants: Arc::new(GrantsTable::pagerduty()),
            limits: None,
            rejections: Rejections::default(),
            rotation_quiet: DEFAULT_ROTATION_QUIET,
            metrics: None,
        }
    }

    /// Configure a keyring piece by piece.
    pub fn builder() -> KeyringBuilder {
        KeyringBuilder::default()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The hasher (for tools that compute digests themselves).
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The grants table.
    pub fn grants(&self) -> &GrantsTable {
        &self.grants
    }

    /// Write out what the store holds back (queued last-use times of durable
    /// stores) and say how many it wrote (0 for the in-memory store); call it
    /// at a clean shutdown. Durable stores also flush when dropped.
    pub fn flush(&self) -> Result<usize> {
        Ok(self.store.flush_writes()?)
    }

    /// Whether [`Keyring::authenticate`] may wait on I/O: the store may read
    /// a disk or the network ([`KeyStore::may_block`]) or the rate limiter
    /// may ([`RateLimiter::may_block`]). When it may, a caller on an event
    /// loop tries [`Keyring::try_authenticate`] first and moves only what it
    /// cannot answer to a thread (the HTTP adapters do this).
    pub fn may_block(&self) -> bool {
        self.store.may_block() || self.limits.as_ref().is_some_and(Enforcer::may_block)
    }

    /// The verification metrics this keyring counts in, if any were
    /// installed ([`KeyringBuilder::metrics`]).
    pub fn metrics(&self) -> Option<&Arc<AuthMetrics>> {
        self.metrics.as_ref()
    }

    /// The rate limits in force, if any.
    pub fn rate_limits(&self) -> Option<&RateLimits> {
        self.limits.as_ref().map(Enforcer::limits)
    }

    /// How many requests the rate limiter refused, per key, since the keyring was made.
    pub fn rate_limit_rejections(&self) -> Vec<(KeyId, u64)> {
        self.rejections.snapshot()
    }

    /// The time by the keyring's clock ([`KeyringBuilder::clock`]): what
    /// expiry and rotation overlaps are judged by (the management API shows
    /// whether a key is expired, or still works during its rotation, by it).
    pub fn now(&self) -> crate::record::Timestamp {
        self.clock.now()
    }

    /// The events the audit sink still holds, oldest first.
    pub fn audit_trail(&self) -> Vec<AuditEvent> {
        self.audit.events()
    }

    /// A page of the audit trail, newest first: the store's own durable
    /// trail when it keeps one ([`KeyStore::keeps_audit`]: SQLite,
    /// PostgreSQL), else the audit sink's. `InvalidInput` for a query out of
    /// bounds ([`AuditQuery::resolve`]). An application call: whoever may
    /// read an account's audit records is the application's to decide (the
    /// management API asks for the `audit_records.read` grant).
    pub fn audit_records(&self, query: &AuditQuery) -> Result<AuditPage> {
        let window = query.resolve(self.clock.now())?;
        if self.store.keeps_audit() {
            Ok(self.store.audit_records(&window)?)
        } else {
            Ok(self.audit.query(&window))
        }
    }

    /// Forget the audit records older than `older_than` (retention); say how many.
    pub fn prune_audit(&self, older_than: Duration) -> Result<usize> {
        let now = self.clock.now();
        let before = crate::record::Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(older_than.as_millis().min(u128::from(u64::MAX)) as u64),
        );
        let mut n = self.audit.prune(before);
        if self.store.keeps_audit() {
            n = self.store.prune_audit(before)?;
        }
        Ok(n)
    }

    /// Run one management call and leave its audit record. `f` hands an
    /// allowed change's record ([`Draft::allowed`]) to the store, which writes
    /// it in the change's own transaction; a refusal is recorded here (in the
    /// store's trail too, when it keeps one). Every call, allowed or not,
    /// also goes to the audit sink.
    fn audited<T>(&self, mut draft: Draft, f: impl FnOnce(&mut Draft) -> Result<T>) -> Result<T> {
        let result = f(&mut draft);
        let outcome = match &result {
            Ok(_) => AuditOutcome::Allowed,
            Err(e) => AuditOutcome::Refused {
                error: e.kind_name().to_owned(),
                reason: e.to_string(),
            },
        };
        let refused = result.is_err();
        if refused {
            draft.changes.clear();
        }
        let at = match (refused, draft.at) {
            (false, Some(at)) => at,
            _ => self.clock.now(),
        };
        let event = draft.event(at, outcome);
        if refused && self.store.keeps_audit() {
            // Best effort: the call's answer is the refusal, whatever the trail says.
            let _ = self.store.append_audit(&event);
        }
        self.audit.record(event);
        result
    }

    /// What the actor's standing is: the state the keyring stores for them,
    /// or, for a user it does not know, the actor's own role. A removed user
    /// may do nothing. Only [`Keyring::set_user_role`] and
    /// [`Keyring::remove_user`] change a stored standing; every other call is
    /// decided on it, so a stale or forged [`Actor`] never raises a role.
    pub(super) fn standing_of(&self, actor: &Actor) -> Result<UserState> {
        match self.store.user(&actor.account, &actor.user)? {
            Some(s) if s.removed => Err(removed_actor()),
            Some(s) => Ok(s),
            None => Ok(UserState {
                role: actor.role,
                removed: false,
            }),
        }
    }
}
