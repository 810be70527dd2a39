//! [`Keyring`]: the whole system — issuing, managing and checking keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditSink, MemoryAuditLog};
use crate::clock::{Clock, SystemClock};
use crate::digest::{Digest, KeyHasher};
use crate::error::{AuthFailure, Error, Result, StoreError};
use crate::key::{Api, Hint, KeyKind};
use crate::policy::{Action, GrantsTable, Subject, may_manage};
use crate::ratelimit::{Enforcer, RateLimitStatus, RateLimiter, RateLimits, Rejections};
use crate::record::{AccessLevel, ApiVersion, Disabled, KeyId, KeyRecord, Scope, Timestamp};
use crate::request::Request;
use crate::role::{AccountSettings, Actor, Role, UserState};
use crate::secret::Secret;
use crate::store::{CachedLookup, KeyFilter, KeyLookup, KeyStore, MemoryStore, UserInsert};

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

/// A key just made: the key itself (shown once) and its record.
#[derive(Debug)]
pub struct IssuedKey {
    secret: Secret,
    record: KeyRecord,
}

impl IssuedKey {
    /// The key. Hand it to its user once; it cannot be shown again.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// What is stored about it.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    /// Both parts.
    pub fn into_parts(self) -> (Secret, KeyRecord) {
        (self.secret, self.record)
    }
}

/// Who a request was authenticated as.
#[derive(Clone, Debug)]
pub struct Principal {
    record: Arc<KeyRecord>,
    role: Option<Role>,
    rate_limit: Option<RateLimitStatus>,
}

impl Principal {
    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.record.id
    }
    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.record.kind
    }
    /// The account.
    pub fn account(&self) -> &str {
        &self.record.account
    }
    /// The owner of a user token.
    pub fn owner(&self) -> Option<&str> {
        self.record.owner.as_deref()
    }
    /// For a user token: the role it acted with (its owner's role at this request).
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    /// Full access or read-only.
    pub fn access(&self) -> AccessLevel {
        self.record.access
    }
    /// The scopes of a scoped token.
    pub fn scopes(&self) -> &[Scope] {
        &self.record.scopes
    }
    /// The service or orchestration of an Events key.
    pub fn target(&self) -> Option<&str> {
        self.record.target.as_deref()
    }
    /// The whole record as it was at this request.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }
    /// Where this request stands against its rate limit (`None` when the
    /// keyring has no rate limits).
    pub fn rate_limit(&self) -> Option<&RateLimitStatus> {
        self.rate_limit.as_ref()
    }
}

/// What key to make: kind, description and options. Built with one of the
/// constructors, then [`NewKey::expires_at`] if the key should expire.
#[derive(Clone, Debug)]
pub struct NewKey {
    kind: KeyKind,
    description: String,
    access: AccessLevel,
    target: Option<String>,
    scopes: Vec<String>,
    expires_at: Option<Timestamp>,
}

impl NewKey {
    fn of(kind: KeyKind, description: &str) -> NewKey {
        NewKey {
            kind,
            description: description.to_owned(),
            access: AccessLevel::FullAccess,
            target: None,
            scopes: Vec::new(),
            expires_at: None,
        }
    }
    /// A general access key.
    pub fn general(description: &str, access: AccessLevel) -> NewKey {
        NewKey {
            access,
            ..NewKey::of(KeyKind::General, description)
        }
    }
    /// A user token for the actor.
    pub fn user_token(description: &str) -> NewKey {
        NewKey::of(KeyKind::UserToken, description)
    }
    /// An integration key for a service.
    pub fn integration(service_id: &str, description: &str) -> NewKey {
        NewKey {
            target: Some(service_id.to_owned()),
            ..NewKey::of(KeyKind::Integration, description)
        }
    }
    /// A routing key for an event orchestration.
    pub fn routing(orchestration_id: &str, description: &str) -> NewKey {
        NewKey {
            target: Some(orchestration_id.to_owned()),
            ..NewKey::of(KeyKind::Routing, description)
        }
    }
    /// A scoped token.
    pub fn scoped<S: AsRef<str>>(description: &str, scopes: &[S]) -> NewKey {
        NewKey {
            scopes: scopes.iter().map(|s| s.as_ref().to_owned()).collect(),
            ..NewKey::of(KeyKind::Scoped, description)
        }
    }
    /// The key stops working at `at` (which must be in the future).
    pub fn expires_at(mut self, at: Timestamp) -> NewKey {
        self.expires_at = Some(at);
        self
    }
    /// The kind of key this makes.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
}

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
        }
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

fn validate_id(field: &'static str, s: &str) -> Result<()> {
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

/// A request that passed every check but the rate limit.
struct Vetted {
    record: Arc<KeyRecord>,
    role: Option<Role>,
    last_used_at: Option<Timestamp>,
    now: Timestamp,
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

    /// The rate limits in force, if any.
    pub fn rate_limits(&self) -> Option<&RateLimits> {
        self.limits.as_ref().map(Enforcer::limits)
    }

    /// How many requests the rate limiter refused, per key, since the keyring was made.
    pub fn rate_limit_rejections(&self) -> Vec<(KeyId, u64)> {
        self.rejections.snapshot()
    }

    /// The events the audit sink still holds, oldest first.
    pub fn audit_trail(&self) -> Vec<AuditEvent> {
        self.audit.events()
    }

    fn audited<T>(&self, mut draft: Draft, f: impl FnOnce(&mut Draft) -> Result<T>) -> Result<T> {
        let result = f(&mut draft);
        let outcome = match &result {
            Ok(_) => AuditOutcome::Allowed,
            Err(e) => AuditOutcome::Refused {
                error: e.kind_name().to_owned(),
                reason: e.to_string(),
            },
        };
        self.audit.record(AuditEvent {
            at: self.clock.now(),
            account: draft.account,
            actor: draft.actor,
            actor_role: draft.actor_role,
            action: draft.action,
            key_kind: draft.key_kind,
            key_id: draft.key_id,
            subject_user: draft.subject_user,
            outcome,
        });
        result
    }

    // ---- creating keys ----

    /// Make a general access key (Owner or Admin).
    pub fn create_general_key(
        &self,
        actor: &Actor,
        description: &str,
        access: AccessLevel,
    ) -> Result<IssuedKey> {
        self.create(actor, NewKey::general(description, access))
    }

    /// Make a user token for the actor (any role but LimitedStakeholder; the
    /// account needs Advanced Permissions). The token acts with its owner's
    /// *stored* role at every request ([`Keyring::set_user_role`]); the
    /// actor's role is stored only for a user the keyring did not know yet,
    /// and never replaces a stored one.
    pub fn create_user_token(&self, actor: &Actor, description: &str) -> Result<IssuedKey> {
        self.create(actor, NewKey::user_token(description))
    }

    /// Make an integration key for a service (Manager or above).
    pub fn create_integration_key(
        &self,
        actor: &Actor,
        service_id: &str,
        description: &str,
    ) -> Result<IssuedKey> {
        self.create(actor, NewKey::integration(service_id, description))
    }

    /// Make a routing key for an event orchestration (Manager or above).
    pub fn create_routing_key(
        &self,
        actor: &Actor,
        orchestration_id: &str,
        description: &str,
    ) -> Result<IssuedKey> {
        self.create(actor, NewKey::routing(orchestration_id, description))
    }

    /// Make a scoped token (Manager or above) carrying these scopes (`"incidents.write"` …).
    ///
    /// A scoped token never carries more than its maker may do: each scope
    /// must be within the maker's grants, and admin-only resources only an
    /// Owner or Admin may hand on ([`GrantsTable::may_delegate`];
    /// `NotPermitted` names the first scope that is not). At every request
    /// its rights are its scopes intersected with its maker's *current*
    /// grants, and it stops working when its maker is removed.
    pub fn create_scoped_token<S: AsRef<str>>(
        &self,
        actor: &Actor,
        description: &str,
        scopes: &[S],
    ) -> Result<IssuedKey> {
        self.create(actor, NewKey::scoped(description, scopes))
    }

    /// Make any kind of key, with options such as an expiry.
    ///
    /// Checks, in order: the actor's ids, the actor's standing (a removed
    /// user: `NotPermitted`), the role (`NotPermitted`), the account's plan
    /// (`PlanRestricted`), the inputs (`InvalidInput`), then, for a scoped
    /// token, that the maker may hand on each scope (`NotPermitted`). The role
    /// is the one the keyring stores for the actor when it knows them
    /// (docs/design.md, "Invariants"), else the actor's.
    pub fn create(&self, actor: &Actor, spec: NewKey) -> Result<IssuedKey> {
        let mut draft = Draft::by(actor, AuditAction::Create);
        draft.key_kind = Some(spec.kind);
        self.audited(draft, |draft| {
            let issued = self.create_inner(actor, spec, draft)?;
            draft.note(&issued.record);
            Ok(issued)
        })
    }

    /// What the actor's standing is: the state the keyring stores for them,
    /// or, for a user it does not know, the actor's own role. A removed user
    /// may do nothing. Only [`Keyring::set_user_role`] and
    /// [`Keyring::remove_user`] change a stored standing; every other call is
    /// decided on it, so a stale or forged [`Actor`] never raises a role.
    fn standing_of(&self, actor: &Actor) -> Result<UserState> {
        match self.store.user(&actor.account, &actor.user)? {
            Some(s) if s.removed => Err(removed_actor()),
            Some(s) => Ok(s),
            None => Ok(UserState {
                role: actor.role,
                removed: false,
            }),
        }
    }

    /// Whether a user with `standing` may make a key of `kind` carrying
    /// `scopes`: the role check and, for a scoped token, the delegation check.
    fn may_create(&self, standing: &UserState, kind: KeyKind, scopes: &[Scope]) -> Result<()> {
        if standing.removed {
            return Err(removed_actor());
        }
        let subject = if kind == KeyKind::UserToken {
            Subject::OwnToken
        } else {
            Subject::Account
        };
        may_manage(standing.role, Action::Create, kind, subject)
            .map_err(|reason| Error::NotPermitted { reason })?;
        self.may_hand_on(standing.role, scopes)
    }

    fn may_hand_on(&self, role: Role, scopes: &[Scope]) -> Result<()> {
        match scopes
            .iter()
            .find(|s| !self.grants.may_delegate(role, s.resource(), s.is_write()))
        {
            None => Ok(()),
            Some(s) => Err(Error::NotPermitted {
                reason: format!(
                    "the role '{role}' may not hand the scope '{s}' to a token: a scoped token \
                     carries no more than its maker may do"
                ),
            }),
        }
    }

    fn create_inner(&self, actor: &Actor, spec: NewKey, draft: &mut Draft) -> Result<IssuedKey> {
        validate_actor(actor)?;
        let kind = spec.kind;
        let standing = self.standing_of(actor)?;
        draft.actor_role = Some(standing.role);
        self.may_create(&standing, kind, &[])?;
        let settings = self.store.account_settings(&actor.account)?;
        if kind.api() == Api::Rest && !settings.rest_api {
            return Err(Error::PlanRestricted {
                feature: "the REST API",
            });
        }
        if kind == KeyKind::UserToken && !settings.advanced_permissions {
            return Err(Error::PlanRestricted {
                feature: "Advanced Permissions",
            });
        }
        let description = validate_description(&spec.description)?;
        let target: Option<Arc<str>> = match (&spec.target, kind) {
            (Some(t), KeyKind::Integration) => {
                validate_id("service_id", t)?;
                Some(t.as_str().into())
            }
            (Some(t), KeyKind::Routing) => {
                validate_id("orchestration_id", t)?;
                Some(t.as_str().into())
            }
            _ => None,
        };
        let scopes: Box<[Scope]> = if kind == KeyKind::Scoped {
            if spec.scopes.is_empty() {
                return Err(Error::invalid(
                    "scopes",
                    "a scoped token needs at least one scope".to_owned(),
                ));
            }
            if spec.scopes.len() > MAX_SCOPES {
                return Err(Error::invalid(
                    "scopes",
                    format!("at most {MAX_SCOPES} scopes"),
                ));
            }
            let mut v: Vec<Scope> = Vec::with_capacity(spec.scopes.len());
            for s in &spec.scopes {
                let s = Scope::parse(s)?;
                if !v.contains(&s) {
                    v.push(s);
                }
            }
            v.into()
        } else {
            Box::new([])
        };
        self.may_hand_on(standing.role, &scopes)?;
        let now = self.clock.now();
        if let Some(e) = spec.expires_at {
            if e <= now {
                return Err(Error::invalid(
                    "expires_at",
                    "must be in the future".to_owned(),
                ));
            }
        }
        // User and scoped tokens act through their maker's standing: it is
        // read again, and the key stored, in one atomic step of the store.
        let through_maker = matches!(kind, KeyKind::UserToken | KeyKind::Scoped);
        let owner: Option<Arc<str>> =
            (kind == KeyKind::UserToken).then(|| actor.user.as_str().into());
        // A clash of id or digest is astronomically unlikely, but a store may
        // report one: draw again rather than fail.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let secret = kind.generate().map_err(|_| Error::Random)?;
            let id = KeyId::generate().map_err(|_| Error::Random)?;
            let record = KeyRecord {
                id,
                account: actor.account.as_str().into(),
                kind,
                description: description.into(),
                access: if kind == KeyKind::General {
                    spec.access
                } else {
                    AccessLevel::FullAccess
                },
                owner: owner.clone(),
                target: target.clone(),
                scopes: scopes.clone(),
                created_at: now,
                created_by: actor.user.as_str().into(),
                api_version: ApiVersion::V2,
                disabled: None,
                last_used_at: None,
                expires_at: spec.expires_at,
                hint: Hint::of(secret.expose()),
                digest: self.hasher.digest(secret.expose().as_bytes()),
            };
            let inserted = if through_maker {
                let mut refusal = None;
                let mut admit = |s: &UserState| match self.may_create(s, kind, &scopes) {
                    Ok(()) => true,
                    Err(e) => {
                        refusal = Some(e);
                        false
                    }
                };
                let if_unknown = UserState {
                    role: actor.role,
                    removed: false,
                };
                match self.store.insert_for_user(
                    record.clone(),
                    &actor.user,
                    if_unknown,
                    &mut admit,
                ) {
                    Ok(UserInsert::Inserted(_)) => Ok(()),
                    Ok(UserInsert::Refused(_)) => {
                        return Err(refusal.unwrap_or_else(removed_actor));
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.store.insert(record.clone())
            };
            match inserted {
                Ok(()) => return Ok(IssuedKey { secret, record }),
                Err(StoreError::Duplicate { .. }) if attempts < 4 => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ---- managing existing keys ----

    /// Load a key of the actor's account and check the actor may do `action` on it.
    fn load_for(
        &self,
        actor: &Actor,
        key_id: &str,
        action: Action,
        draft: &mut Draft,
    ) -> Result<KeyRecord> {
        validate_actor(actor)?;
        let id = KeyId::parse(key_id).ok_or_else(|| {
            Error::invalid(
                "key_id",
                "must be 'P' followed by 13 characters of Crockford base32".to_owned(),
            )
        })?;
        draft.key_id = Some(id);
        let record = match self.store.get(id)? {
            Some(r) if *r.account == *actor.account => r,
            // A key of another account behaves as if it did not exist.
            _ => return Err(not_found(key_id)),
        };
        draft.note(&record);
        if matches!(action, Action::Disable | Action::Enable) && record.kind != KeyKind::General {
            return Err(Error::invalid(
                "key_id",
                format!(
                    "only general access keys can be {}d; delete this {} instead",
                    action.as_str(),
                    record.kind
                ),
            ));
        }
        let role = self.standing_of(actor)?.role;
        draft.actor_role = Some(role);
        let subject = self.subject_of(actor, &record)?;
        may_manage(role, action, record.kind, subject)
            .map_err(|reason| Error::NotPermitted { reason })?;
        Ok(record)
    }

    fn subject_of(&self, actor: &Actor, record: &KeyRecord) -> Result<Subject> {
        Ok(match (&record.owner, record.kind) {
            (Some(o), KeyKind::UserToken) if **o == *actor.user => Subject::OwnToken,
            (Some(o), KeyKind::UserToken) => {
                Subject::OthersToken(self.store.user(&actor.account, o)?.map(|u| u.role))
            }
            _ => Subject::Account,
        })
    }

    /// Disable a general key (Owner or Admin). It stops working at once and can be
    /// enabled again; the record says who disabled it and when. Disabling a
    /// disabled key changes nothing.
    pub fn disable(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Disable), |draft| {
            let rec = self.load_for(actor, key_id, Action::Disable, draft)?;
            let now = self.clock.now();
            let by: Arc<str> = actor.user.as_str().into();
            self.store
                .update(rec.id, &mut |r| {
                    if r.disabled.is_none() {
                        r.disabled = Some(Box::new(Disabled {
                            by: by.clone(),
                            at: now,
                        }));
                    }
                })?
                .ok_or_else(|| not_found(key_id))
        })
    }

    /// Enable a disabled general key (Owner or Admin).
    pub fn enable(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Enable), |draft| {
            let rec = self.load_for(actor, key_id, Action::Enable, draft)?;
            self.store
                .update(rec.id, &mut |r| r.disabled = None)?
                .ok_or_else(|| not_found(key_id))
        })
    }

    /// Delete a key for good. Returns the record it had.
    pub fn delete(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Delete), |draft| {
            let rec = self.load_for(actor, key_id, Action::Delete, draft)?;
            self.store.delete(rec.id)?.ok_or_else(|| not_found(key_id))
        })
    }

    /// One key's record, if the actor may see it.
    pub fn get(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Get), |draft| {
            self.load_for(actor, key_id, Action::Get, draft)
        })
    }

    /// Every key of the actor's account that the actor may see, oldest first.
    pub fn list(&self, actor: &Actor) -> Result<Vec<KeyRecord>> {
        self.audited(Draft::by(actor, AuditAction::List), |draft| {
            validate_actor(actor)?;
            let role = self.standing_of(actor)?.role;
            draft.actor_role = Some(role);
            let all = self.store.list(&actor.account, &KeyFilter::default())?;
            let mut out = Vec::with_capacity(all.len());
            for r in all {
                let subject = self.subject_of(actor, &r)?;
                if may_manage(role, Action::List, r.kind, subject).is_ok() {
                    out.push(r);
                }
            }
            Ok(out)
        })
    }

    // ---- accounts and users ----

    /// Set what an account's plan includes. Takes effect on the next request.
    pub fn set_account(&self, account: &str, settings: AccountSettings) -> Result<()> {
        self.audited(Draft::system(account, AuditAction::SetAccount), |_| {
            validate_id("account", account)?;
            Ok(self.store.set_account_settings(account, settings)?)
        })
    }

    /// The account's current settings.
    pub fn account(&self, account: &str) -> Result<AccountSettings> {
        validate_id("account", account)?;
        Ok(self.store.account_settings(account)?)
    }

    /// Set a user's current role: their user tokens act with it from the next
    /// request on. A removed user is restored by this, but the tokens disabled
    /// when they were removed stay disabled.
    pub fn set_user_role(&self, account: &str, user: &str, role: Role) -> Result<()> {
        let mut draft = Draft::system(account, AuditAction::SetUserRole);
        draft.subject_user = Some(audit_id(user));
        self.audited(draft, |_| {
            validate_id("account", account)?;
            validate_id("user", user)?;
            Ok(self.store.set_user(
                account,
                user,
                UserState {
                    role,
                    removed: false,
                },
            )?)
        })
    }

    /// Remove a user from the account (offboarding): every user token of
    /// theirs and every scoped token they made stops working at once and is
    /// disabled, in one atomic step of the store (a token being made at the
    /// same moment is either refused or disabled with the others). A user the
    /// keyring did not know is recorded as removed all the same, so they
    /// cannot make tokens later. Returns how many keys were disabled.
    pub fn remove_user(&self, account: &str, user: &str) -> Result<usize> {
        let mut draft = Draft::system(account, AuditAction::RemoveUser);
        draft.subject_user = Some(audit_id(user));
        self.audited(draft, |_| {
            validate_id("account", account)?;
            validate_id("user", user)?;
            let disabled = Disabled {
                by: OFFBOARDING.into(),
                at: self.clock.now(),
            };
            Ok(self.store.remove_user(account, user, &disabled)?.len())
        })
    }

    /// A user's current state, if the keyring knows them.
    pub fn user(&self, account: &str, user: &str) -> Result<Option<UserState>> {
        validate_id("account", account)?;
        validate_id("user", user)?;
        Ok(self.store.user(account, user)?)
    }

    // ---- the hot path ----

    /// Check a presented key against a request.
    ///
    /// In this order (cheap checks first): the token parses (`Unauthorized`, no
    /// store access); its kind belongs to the request's API (`WrongApi`); a key
    /// with its digest exists and the digests match in constant time
    /// (`Unauthorized`); it is not disabled, not expired and its owner is not
    /// removed (`Unauthorized`); the account's plan allows it (`PlanRestricted`);
    /// what the key may do covers the request (`Forbidden`).
    pub fn authenticate(&self, token: &str, request: &Request) -> Result<Principal> {
        let (kind, digest) = self.parse_for(token, request)?;
        let found = self.store.find_by_digest(&digest)?;
        let vetted = self.vet(kind, &digest, found, request)?;
        // Only a request that would otherwise succeed spends budget.
        let rate_limit = match &self.limits {
            None => None,
            Some(enforcer) => match enforcer.admit(&vetted.record, vetted.now) {
                Ok(status) => status,
                Err((limit, retry_after)) => {
                    return Err(self.rate_limited(&vetted.record, limit, retry_after));
                }
            },
        };
        Ok(self.finish(vetted, rate_limit))
    }

    /// [`Keyring::authenticate`] if it can be answered without waiting on
    /// I/O, for a caller that must not wait (an event loop): `None` when it
    /// cannot, and then the caller runs `authenticate` where waiting is fine
    /// (a worker thread). `None` never means "refused".
    ///
    /// `Some(answer)` is exactly what `authenticate` would answer now, from
    /// the same checks in the same order, with the same effects (a request
    /// admitted spends rate-limit budget and notes the key's use). Malformed
    /// keys and keys of the wrong API are always answered. The rest is
    /// answered when the store knows the key from memory
    /// ([`KeyStore::find_cached`]: always for a [`MemoryStore`], on a cache
    /// hit for the durable stores) and the rate limiter, if limits are set,
    /// can count this request without waiting ([`RateLimiter::try_acquire`]:
    /// always for the in-process limiter; for a leasing Redis limiter while
    /// its lease lasts; never for the exact Redis limiter).
    pub fn try_authenticate(&self, token: &str, request: &Request) -> Option<Result<Principal>> {
        let (kind, digest) = match self.parse_for(token, request) {
            Ok(parsed) => parsed,
            Err(e) => return Some(Err(e)),
        };
        let found = match self.store.find_cached(&digest) {
            CachedLookup::Known(found) => found,
            CachedLookup::WouldBlock => return None,
        };
        let vetted = match self.vet(kind, &digest, found, request) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let rate_limit = match &self.limits {
            None => None,
            // `None`: only a call that may wait can count it; nothing was spent.
            Some(enforcer) => match enforcer.try_admit(&vetted.record, vetted.now)? {
                Ok(status) => status,
                Err((limit, retry_after)) => {
                    return Some(Err(self.rate_limited(&vetted.record, limit, retry_after)));
                }
            },
        };
        Some(Ok(self.finish(vetted, rate_limit)))
    }

    /// The checks before the store: the token parses and belongs to the
    /// request's API. Returns its kind and digest.
    #[inline(always)]
    fn parse_for(&self, token: &str, request: &Request) -> Result<(KeyKind, Digest)> {
        let kind =
            KeyKind::parse(token).map_err(|m| Error::Unauthorized(AuthFailure::Malformed(m)))?;
        if kind.api() != request.api() {
            return Err(Error::WrongApi {
                key_api: kind.api(),
                request_api: request.api(),
            });
        }
        Ok((kind, self.hasher.digest(token.as_bytes())))
    }

    /// The checks after the store, on what it `found` for `digest`, up to
    /// (not including) the rate limit.
    #[inline(always)]
    fn vet(
        &self,
        kind: KeyKind,
        digest: &Digest,
        found: Option<KeyLookup>,
        request: &Request,
    ) -> Result<Vetted> {
        let Some(found) = found else {
            return Err(Error::Unauthorized(AuthFailure::Unknown));
        };
        let record = found.record;
        let matches: bool = subtle::ConstantTimeEq::ct_eq(&record.digest, digest).into();
        if !matches || record.kind != kind {
            return Err(Error::Unauthorized(AuthFailure::Unknown));
        }
        if record.disabled.is_some() {
            return Err(Error::Unauthorized(AuthFailure::Disabled));
        }
        let now = self.clock.now();
        if record.is_expired(now) {
            return Err(Error::Unauthorized(AuthFailure::Expired));
        }
        // User and scoped tokens act through a user's standing (the owner's,
        // the maker's): gone or unknown, the key does not work.
        let standing = if matches!(kind, KeyKind::UserToken | KeyKind::Scoped) {
            match found.owner {
                Some(UserState {
                    role,
                    removed: false,
                }) => Some(role),
                _ => return Err(Error::Unauthorized(AuthFailure::OwnerRemoved)),
            }
        } else {
            None
        };
        if kind.api() == Api::Rest {
            if !found.account.rest_api {
                return Err(Error::PlanRestricted {
                    feature: "the REST API",
                });
            }
            if kind == KeyKind::UserToken && !found.account.advanced_permissions {
                return Err(Error::PlanRestricted {
                    feature: "Advanced Permissions",
                });
            }
        }
        self.authorize(&record, standing, request)?;
        Ok(Vetted {
            role: if kind == KeyKind::UserToken {
                standing
            } else {
                None
            },
            last_used_at: found.last_used_at,
            record,
            now,
        })
    }

    /// An admitted request: note the key's use, make its principal.
    #[inline(always)]
    fn finish(&self, v: Vetted, rate_limit: Option<RateLimitStatus>) -> Principal {
        if v.last_used_at
            .is_none_or(|t| v.now.saturating_since(t) >= LAST_USED_GRANULARITY)
        {
            // Best effort: failing to note the use must not refuse a valid request.
            let _ = self.store.record_use(v.record.id, v.now);
        }
        Principal {
            record: v.record,
            role: v.role,
            rate_limit,
        }
    }

    #[cold]
    fn rate_limited(&self, record: &KeyRecord, limit: u32, retry_after: Duration) -> Error {
        self.rejections.count(record.id);
        Error::RateLimited { retry_after, limit }
    }

    fn authorize(&self, record: &KeyRecord, role: Option<Role>, request: &Request) -> Result<()> {
        let write = request.needs_write();
        match record.kind {
            KeyKind::General => {
                if record.access == AccessLevel::ReadOnly && write {
                    return Err(Error::Forbidden {
                        reason:
                            "this key is read-only: only GET and HEAD requests, with read scopes"
                                .to_owned(),
                    });
                }
            }
            KeyKind::UserToken => {
                let role = role.unwrap_or(Role::LimitedStakeholder);
                let resource = request.scope().map(Scope::resource);
                if !self.grants.allows(role, resource, write) {
                    let what = if write { "write" } else { "read" };
                    return Err(Error::Forbidden {
                        reason: match resource {
                            Some(r) => {
                                format!("the token's owner, now '{role}', may not {what} '{r}'")
                            }
                            None => format!(
                                "the token's owner, now '{role}', may not {what} every resource; name a scope"
                            ),
                        },
                    });
                }
            }
            KeyKind::Scoped => {
                let Some(scope) = request.scope() else {
                    return Err(Error::Forbidden {
                        reason: "a scoped token can only be used for a request with a scope"
                            .to_owned(),
                    });
                };
                let ok = record
                    .scopes
                    .iter()
                    .any(|s| s.resource() == scope.resource() && (s.is_write() || !write));
                let what = if write { "write" } else { "read" };
                if !ok {
                    return Err(Error::Forbidden {
                        reason: format!("this token lacks the scope {}.{what}", scope.resource()),
                    });
                }
                // Its scopes, intersected with what its maker may do now.
                let maker = role.unwrap_or(Role::LimitedStakeholder);
                if !self.grants.may_delegate(maker, scope.resource(), write) {
                    return Err(Error::Forbidden {
                        reason: format!(
                            "the token's maker, now '{maker}', may not {what} '{}'",
                            scope.resource()
                        ),
                    });
                }
            }
            KeyKind::Integration | KeyKind::Routing => {}
        }
        Ok(())
    }
}
