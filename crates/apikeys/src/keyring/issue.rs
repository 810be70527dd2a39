//! Making keys: [`NewKey`], [`IssuedKey`] and the `create…` calls.

use arcstr::ArcStr;

use super::{
    Draft, Keyring, MAX_SCOPES, removed_actor, validate_actor, validate_description, validate_id,
};
use crate::audit::AuditAction;
use crate::error::{Error, Result, StoreError};
use crate::key::{Hint, KeyKind};
use crate::policy::{Action, Subject, may_manage, plan_allows};
use crate::record::{AccessLevel, ApiVersion, KeyId, KeyRecord, Scope, Timestamp};
use crate::role::{Actor, Role, UserState};
use crate::secret::Secret;
use crate::store::UserInsert;

/// A key just made: the key itself (shown once) and its record.
#[derive(Debug)]
pub struct IssuedKey {
    secret: Secret,
    record: KeyRecord,
}

impl IssuedKey {
    pub(super) fn new(secret: Secret, record: KeyRecord) -> IssuedKey {
        IssuedKey { secret, record }
    }

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

impl Keyring {
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
    /// Owner or Admin may hand on ([`GrantsTable::may_delegate`](crate::GrantsTable::may_delegate);
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

    /// Whether a user with `standing` may make a key of `kind` carrying
    /// `scopes`: the role check and, for a scoped token, the delegation check.
    pub(super) fn may_create(
        &self,
        standing: &UserState,
        kind: KeyKind,
        scopes: &[Scope],
    ) -> Result<()> {
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
        plan_allows(&self.store.account_settings(&actor.account)?, kind)?;
        let description = validate_description(&spec.description)?;
        let target: Option<ArcStr> = match (&spec.target, kind) {
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
        let owner: Option<ArcStr> =
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
                rotation: None,
                last_used_from: None,
            };
            draft.note(&record);
            let event = draft.allowed(now);
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
                    Some(&event),
                ) {
                    Ok(UserInsert::Inserted(_)) => Ok(()),
                    Ok(UserInsert::Refused(_)) => {
                        return Err(refusal.unwrap_or_else(removed_actor));
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.store.insert_audited(record.clone(), Some(&event))
            };
            match inserted {
                Ok(()) => return Ok(IssuedKey { secret, record }),
                Err(StoreError::Duplicate { .. }) if attempts < 4 => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
