//! Managing keys and the users they act for: get, list, disable, enable,
//! delete; account settings, roles and offboarding.
//!
//! A call that changes a key decides inside the store's atomic step, on the
//! row it changes (docs/design.md, "Invariants"): the store hands the current
//! record (and, for a delete, its owner's current standing) to a closure
//! that checks the permission and edits it, and the store writes the change
//! with its audit record in one transaction.

use arcstr::ArcStr;

use super::{
    Draft, Keyring, OFFBOARDING, audit_id, not_found, removed_actor, validate_actor, validate_id,
};
use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::key::KeyKind;
use crate::policy::{Action, Subject, may_manage};
use crate::record::{Disabled, KeyId, KeyRecord};
use crate::role::{AccountSettings, Actor, Role, UserState};
use crate::store::{Edit, KeyFilter, Standings};

/// Parse a key id given by a caller.
pub(super) fn parse_key_id(key_id: &str) -> Result<KeyId> {
    KeyId::parse(key_id).ok_or_else(|| {
        Error::invalid(
            "key_id",
            "must be 'P' followed by 13 characters of Crockford base32".to_owned(),
        )
    })
}

/// Whose key `record` is, for the matrix, given its owner's standing.
pub(super) fn subject(actor: &Actor, record: &KeyRecord, owner: Option<&UserState>) -> Subject {
    match (&record.owner, record.kind) {
        (Some(o), KeyKind::UserToken) if **o == *actor.user => Subject::OwnToken,
        (Some(_), KeyKind::UserToken) => Subject::OthersToken(owner.map(|u| u.role)),
        _ => Subject::Account,
    }
}

/// May an actor of `role` do `action` on `record`? Checked on the row
/// itself, in the order of docs/design.md §2: a key of another account is
/// "not found"; disable and enable are for general keys only; a removed
/// actor (`role` is `None`) may do nothing; then the matrix.
pub(super) fn may_act(
    actor: &Actor,
    role: Option<Role>,
    action: Action,
    key_id: &str,
    record: &KeyRecord,
    owner: Option<&UserState>,
) -> Result<()> {
    if *record.account != *actor.account {
        // A key of another account behaves as if it did not exist.
        return Err(not_found(key_id));
    }
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
    let Some(role) = role else {
        return Err(removed_actor());
    };
    may_manage(role, action, record.kind, subject(actor, record, owner))
        .map_err(|reason| Error::NotPermitted { reason })
}

impl Keyring {
    /// The actor's role for a call on a key: their ids checked, their stored
    /// standing read; `None` for a removed user, who may do nothing — refused
    /// once the key is found ([`may_act`]), so an unknown key is still
    /// `NotFound` (docs/design.md §2: the key before the standing).
    pub(super) fn acting_role(&self, actor: &Actor, draft: &mut Draft) -> Result<Option<Role>> {
        validate_actor(actor)?;
        let role = match self.standing_of(actor) {
            Ok(s) => Some(s.role),
            Err(Error::NotPermitted { .. }) => None,
            Err(e) => return Err(e),
        };
        draft.actor_role = role;
        Ok(role)
    }

    /// Change a key the actor may `action`: `edit` runs inside the store's
    /// atomic step, after the permission check on the same row.
    fn change_key(
        &self,
        actor: &Actor,
        key_id: &str,
        action: Action,
        draft: &mut Draft,
        edit: &mut dyn FnMut(&mut KeyRecord, &mut Draft) -> Result<()>,
    ) -> Result<KeyRecord> {
        let role = self.acting_role(actor, draft)?;
        let id = parse_key_id(key_id)?;
        draft.key_id = Some(id);
        let now = self.clock.now();
        let mut refusal: Option<Error> = None;
        let out = self.store.update_audited(id, &mut |r| {
            refusal = None;
            draft.changes.clear();
            if let Err(e) = may_act(actor, role, action, key_id, r, None) {
                refusal = Some(e);
                return Edit::Keep;
            }
            draft.note(r);
            if let Err(e) = edit(r, draft) {
                refusal = Some(e);
                return Edit::Keep;
            }
            Edit::Write(Some(Box::new(draft.allowed(now))))
        })?;
        if let Some(e) = refusal {
            return Err(e);
        }
        out.ok_or_else(|| not_found(key_id))
    }

    /// Disable a general key (Owner or Admin). It stops working at once and can be
    /// enabled again; the record says who disabled it and when. Disabling a
    /// disabled key changes nothing.
    pub fn disable(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Disable), |draft| {
            let now = self.clock.now();
            let by: ArcStr = actor.user.as_str().into();
            self.change_key(actor, key_id, Action::Disable, draft, &mut |r, d| {
                if r.disabled.is_none() {
                    r.disabled = Some(Box::new(Disabled {
                        by: by.clone(),
                        at: now,
                    }));
                    d.changed("disabled", Some("false".into()), Some("true".into()));
                }
                Ok(())
            })
        })
    }

    /// Enable a disabled general key (Owner or Admin).
    pub fn enable(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Enable), |draft| {
            self.change_key(actor, key_id, Action::Enable, draft, &mut |r, d| {
                if r.disabled.take().is_some() {
                    d.changed("disabled", Some("true".into()), Some("false".into()));
                }
                Ok(())
            })
        })
    }

    /// Delete a key for good. Returns the record it had.
    ///
    /// The permission is checked inside the store's atomic step, on the row
    /// it deletes and on its owner's standing as it is at that moment: an
    /// admin deleting another user's token while that user is promoted to
    /// admin either deletes it before the promotion or is refused after it.
    pub fn delete(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Delete), |draft| {
            let role = self.acting_role(actor, draft)?;
            let id = parse_key_id(key_id)?;
            draft.key_id = Some(id);
            let now = self.clock.now();
            let mut refusal: Option<Error> = None;
            let out = self.store.delete_audited(id, &mut |r, owner| {
                refusal = None;
                if let Err(e) = may_act(actor, role, Action::Delete, key_id, r, owner) {
                    refusal = Some(e);
                    return Edit::Keep;
                }
                draft.note(r);
                draft.changed("deleted", Some("false".into()), Some("true".into()));
                Edit::Write(Some(Box::new(draft.allowed(now))))
            })?;
            if let Some(e) = refusal {
                return Err(e);
            }
            out.ok_or_else(|| not_found(key_id))
        })
    }

    /// One key's record, if the actor may see it.
    pub fn get(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::Get), |draft| {
            let role = self.acting_role(actor, draft)?;
            let id = parse_key_id(key_id)?;
            draft.key_id = Some(id);
            let record = self.store.get(id)?.ok_or_else(|| not_found(key_id))?;
            let owner = self.owner_state(&record)?;
            may_act(actor, role, Action::Get, key_id, &record, owner.as_ref())?;
            draft.note(&record);
            Ok(record)
        })
    }

    /// The stored state of a user token's owner.
    fn owner_state(&self, record: &KeyRecord) -> Result<Option<UserState>> {
        match (&record.owner, record.kind) {
            (Some(o), KeyKind::UserToken) => Ok(self.store.user(&record.account, o)?),
            _ => Ok(None),
        }
    }

    /// Every key of the actor's account that the actor may see, oldest first.
    pub fn list(&self, actor: &Actor) -> Result<Vec<KeyRecord>> {
        self.audited(Draft::by(actor, AuditAction::List), |draft| {
            let role = self.acting_role(actor, draft)?.ok_or_else(removed_actor)?;
            let all = self.store.list(&actor.account, &KeyFilter::default())?;
            let mut out = Vec::with_capacity(all.len());
            for r in all {
                let owner = self.owner_state(&r)?;
                if may_manage(
                    role,
                    Action::List,
                    r.kind,
                    subject(actor, &r, owner.as_ref()),
                )
                .is_ok()
                {
                    out.push(r);
                }
            }
            Ok(out)
        })
    }

    /// Set what an account's plan includes. Takes effect on the next request.
    pub fn set_account(&self, account: &str, settings: AccountSettings) -> Result<()> {
        self.audited(Draft::system(account, AuditAction::SetAccount), |draft| {
            validate_id("account", account)?;
            self.write_account(draft, account, None, settings)
        })
    }

    /// [`Keyring::set_account`] as `actor`, for tools that act for a person
    /// (the command line, an admin page): an Owner or an Admin of the
    /// account, by their stored standing, may change its plan
    /// (docs/design.md §2, "Users and the account"); recorded with the actor.
    /// `NotPermitted` otherwise, recorded too.
    ///
    /// Decided inside the store's atomic step, on the actor's standing as it
    /// is when the plan is written ([`KeyStore::set_account_settings_as`]):
    /// an admin demoted or removed while this call is in flight either
    /// changed the plan before that landed or is refused.
    ///
    /// [`KeyStore::set_account_settings_as`]: crate::KeyStore::set_account_settings_as
    pub fn set_account_as(&self, actor: &Actor, settings: AccountSettings) -> Result<()> {
        self.audited(Draft::by(actor, AuditAction::SetAccount), |draft| {
            validate_actor(actor)?;
            self.write_account(draft, &actor.account, Some(actor), settings)
        })
    }

    /// Write the plan, decided in the store's atomic step: for `actor` by the
    /// rule of [`Keyring::set_account_as`], for the system always. The audit
    /// record is made there too, with the settings it replaced and the
    /// moment of the write.
    fn write_account(
        &self,
        draft: &mut Draft,
        account: &str,
        actor: Option<&Actor>,
        settings: AccountSettings,
    ) -> Result<()> {
        let mut refusal: Option<Error> = None;
        let written = self.store.set_account_settings_as(
            account,
            actor.map(|a| a.user.as_str()),
            settings,
            &mut |mine, before| {
                refusal = None;
                draft.changes.clear();
                if let Some(actor) = actor {
                    if let Err(e) = may_set_account(actor, draft, mine) {
                        refusal = Some(e);
                        return Edit::Keep;
                    }
                }
                note_settings(draft, before, &settings);
                Edit::Write(Some(Box::new(draft.allowed(self.clock.now()))))
            },
        )?;
        decided(refusal, written.then_some(()))
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
        self.audited(draft, |draft| {
            validate_id("account", account)?;
            validate_id("user", user)?;
            self.write_user_role(draft, account, None, user, role)
        })
    }

    /// [`Keyring::set_user_role`] as `actor`, for tools that act for a
    /// person: an Owner or an Admin, by their stored standing, may change
    /// another user's role; only an Owner makes an Owner, or changes one's
    /// role (docs/design.md §2, "Users and the account"). Recorded with the
    /// actor. `NotPermitted` otherwise, recorded too.
    ///
    /// Decided inside the store's atomic step, on both users' standings as
    /// they are when the role is written ([`KeyStore::set_user_as`]): an
    /// admin's change racing the promotion of its subject to Owner, or the
    /// admin's own demotion or removal, is refused once that has landed; and
    /// the audit record's `changes` show the role the write replaced.
    ///
    /// [`KeyStore::set_user_as`]: crate::KeyStore::set_user_as
    pub fn set_user_role_as(&self, actor: &Actor, user: &str, role: Role) -> Result<()> {
        let mut draft = Draft::by(actor, AuditAction::SetUserRole);
        draft.subject_user = Some(audit_id(user));
        self.audited(draft, |draft| {
            validate_id("user", user)?;
            validate_actor(actor)?;
            self.write_user_role(draft, &actor.account, Some(actor), user, role)
        })
    }

    /// Write a user's role, decided in the store's atomic step: for `actor`
    /// by the rule of [`Keyring::set_user_role_as`], for the system always.
    /// The audit record is made there too, with the standing it replaced and
    /// the moment of the write.
    fn write_user_role(
        &self,
        draft: &mut Draft,
        account: &str,
        actor: Option<&Actor>,
        user: &str,
        role: Role,
    ) -> Result<()> {
        let state = UserState {
            role,
            removed: false,
        };
        let mut refusal: Option<Error> = None;
        let written = self.store.set_user_as(
            account,
            actor.map(|a| a.user.as_str()),
            user,
            state,
            &mut |s| {
                refusal = None;
                draft.changes.clear();
                if let Some(actor) = actor {
                    if let Err(e) = may_manage_user(actor, draft, s, Some(role)) {
                        refusal = Some(e);
                        return Edit::Keep;
                    }
                }
                note_role(draft, s.subject, role);
                Edit::Write(Some(Box::new(draft.allowed(self.clock.now()))))
            },
        )?;
        decided(refusal, written.then_some(()))
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
        self.audited(draft, |draft| {
            validate_id("account", account)?;
            validate_id("user", user)?;
            self.write_removal(draft, account, None, user)
        })
    }

    /// [`Keyring::remove_user`] as `actor`, for tools that act for a
    /// person: decided by the rule of [`Keyring::set_user_role_as`], inside
    /// the store's atomic step like it ([`KeyStore::remove_user_as`]), and
    /// recorded with the actor. `NotPermitted` otherwise, recorded too.
    ///
    /// [`KeyStore::remove_user_as`]: crate::KeyStore::remove_user_as
    pub fn remove_user_as(&self, actor: &Actor, user: &str) -> Result<usize> {
        let mut draft = Draft::by(actor, AuditAction::RemoveUser);
        draft.subject_user = Some(audit_id(user));
        self.audited(draft, |draft| {
            validate_id("user", user)?;
            validate_actor(actor)?;
            self.write_removal(draft, &actor.account, Some(actor), user)
        })
    }

    /// Offboard a user, decided in the store's atomic step: for `actor` by
    /// the rule of [`Keyring::set_user_role_as`], for the system always.
    fn write_removal(
        &self,
        draft: &mut Draft,
        account: &str,
        actor: Option<&Actor>,
        user: &str,
    ) -> Result<usize> {
        let disabled = Disabled {
            by: OFFBOARDING.into(),
            at: self.clock.now(),
        };
        let mut refusal: Option<Error> = None;
        let out = self.store.remove_user_as(
            account,
            actor.map(|a| a.user.as_str()),
            user,
            &disabled,
            &mut |s| {
                refusal = None;
                draft.changes.clear();
                if let Some(actor) = actor {
                    if let Err(e) = may_manage_user(actor, draft, s, None) {
                        refusal = Some(e);
                        return Edit::Keep;
                    }
                }
                let was = s.subject.is_some_and(|u| u.removed);
                draft.changed("removed", Some(was.to_string()), Some("true".into()));
                Edit::Write(Some(Box::new(draft.allowed(self.clock.now()))))
            },
        )?;
        decided(refusal, out.map(|disabled| disabled.len()))
    }

    /// A user's current state, if the keyring knows them.
    pub fn user(&self, account: &str, user: &str) -> Result<Option<UserState>> {
        validate_id("account", account)?;
        validate_id("user", user)?;
        Ok(self.store.user(account, user)?)
    }
}

/// The actor's role by their standing as the store read it in the change's
/// atomic step (`None`: the store knows nothing of them, so the role they
/// claim; [`Keyring::standing_of`] inside the transaction); a removed actor
/// may do nothing. Noted on the draft, as [`Keyring::acting_role`] does.
fn standing_role(actor: &Actor, draft: &mut Draft, stored: Option<&UserState>) -> Result<Role> {
    match stored {
        Some(s) if s.removed => {
            draft.actor_role = None;
            Err(removed_actor())
        }
        Some(s) => {
            draft.actor_role = Some(s.role);
            Ok(s.role)
        }
        None => {
            draft.actor_role = Some(actor.role);
            Ok(actor.role)
        }
    }
}

/// Who may change the account's plan (docs/design.md §2, "Users and the
/// account"): an Owner or an Admin, by their standing as the store read it
/// in the change's atomic step.
fn may_set_account(actor: &Actor, draft: &mut Draft, mine: Option<&UserState>) -> Result<()> {
    let mine = standing_role(actor, draft, mine)?;
    if mine.is_admin_or_owner() {
        Ok(())
    } else {
        Err(Error::NotPermitted {
            reason: format!("the role '{mine}' may not change the account's plan"),
        })
    }
}

/// Who may change another user's role (`new`) or remove them (`None`)
/// (docs/design.md §2, "Users and the account"): an Owner or an Admin, by
/// their stored standing; only an Owner makes an Owner, or changes or
/// removes one. Decided on the standings the store read in the change's own
/// atomic step, so a change racing it is decided on the state it replaces.
fn may_manage_user(
    actor: &Actor,
    draft: &mut Draft,
    s: &Standings,
    new: Option<Role>,
) -> Result<()> {
    let mine = standing_role(actor, draft, s.actor.as_ref())?;
    if !mine.is_admin_or_owner() {
        return Err(Error::NotPermitted {
            reason: format!("the role '{mine}' may not change users' roles"),
        });
    }
    let theirs = s.subject.map(|u| u.role);
    if mine != Role::Owner && (theirs == Some(Role::Owner) || new == Some(Role::Owner)) {
        return Err(Error::NotPermitted {
            reason: "only an owner may make an owner, or change or remove one".to_owned(),
        });
    }
    Ok(())
}

/// Note a role change on the draft: the role `before` (and whether the
/// user was removed, which setting a role undoes) against the new `role`.
fn note_role(draft: &mut Draft, before: Option<UserState>, role: Role) {
    draft.changed(
        "role",
        before.map(|s| s.role.as_str().to_owned()),
        Some(role.as_str().to_owned()),
    );
    if before.is_some_and(|s| s.removed) {
        draft.changed("removed", Some("true".into()), Some("false".into()));
    }
}

/// Note the plan's changed fields on the draft.
fn note_settings(draft: &mut Draft, before: &AccountSettings, settings: &AccountSettings) {
    if before.rest_api != settings.rest_api {
        draft.changed(
            "rest_api",
            Some(before.rest_api.to_string()),
            Some(settings.rest_api.to_string()),
        );
    }
    if before.advanced_permissions != settings.advanced_permissions {
        draft.changed(
            "advanced_permissions",
            Some(before.advanced_permissions.to_string()),
            Some(settings.advanced_permissions.to_string()),
        );
    }
}

/// The answer of a change decided in the store's atomic step: the refusal
/// the decision gave, or what the store wrote. A store that wrote nothing
/// though the decision allowed the write broke [`crate::KeyStore`]'s contract:
/// answered as a store error, never as success.
fn decided<T>(refusal: Option<Error>, written: Option<T>) -> Result<T> {
    match (refusal, written) {
        (Some(e), _) => Err(e),
        (None, Some(out)) => Ok(out),
        (None, None) => Err(Error::Store(crate::StoreError::Unavailable(
            "the store wrote nothing, though the change was allowed"
                .to_owned()
                .into(),
        ))),
    }
}
