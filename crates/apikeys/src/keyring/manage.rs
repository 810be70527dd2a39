//! Managing keys and the users they act for: get, list, disable, enable,
//! delete; account settings, roles and offboarding.

use std::sync::Arc;

use super::{Draft, Keyring, OFFBOARDING, audit_id, not_found, validate_actor, validate_id};
use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::key::KeyKind;
use crate::policy::{Action, Subject, may_manage};
use crate::record::{Disabled, KeyId, KeyRecord};
use crate::role::{AccountSettings, Actor, Role, UserState};
use crate::store::KeyFilter;

impl Keyring {
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
}
