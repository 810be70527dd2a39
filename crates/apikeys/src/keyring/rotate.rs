//! Rotation: [`Keyring::rotate`] and [`Keyring::end_rotation`]
//! (docs/design.md, "Rotation").

use std::time::Duration;

use super::manage::{may_act, parse_key_id};
use super::{Draft, IssuedKey, Keyring, MAX_ROTATION_GRACE, not_found, removed_actor};
use crate::audit::AuditAction;
use crate::error::{Error, Result, StoreError};
use crate::key::{Hint, KeyKind};
use crate::policy::{Action, plan_allows};
use crate::record::{KeyId, KeyRecord, Rotation, Timestamp};
use crate::role::{Actor, UserState};
use crate::store::Edit;

/// Why a key cannot be rotated now (checked on the row, inside the store's step).
fn rotatable(record: &KeyRecord, now: Timestamp) -> Result<()> {
    if record.is_expired(now) {
        return Err(Error::invalid(
            "key_id",
            "an expired key cannot be rotated; create a new key instead".to_owned(),
        ));
    }
    if let Some(to) = record.rotated_to() {
        return Err(Error::invalid(
            "key_id",
            format!(
                "this key was already rotated (to {to}); rotate the new key, or end this \
                 rotation first"
            ),
        ));
    }
    Ok(())
}

fn ms(t: Timestamp) -> String {
    t.unix_millis().to_string()
}

impl Keyring {
    /// Replace a key by a new one with the same settings (kind, description,
    /// access level, owner, service or orchestration, scopes, expiry) and
    /// return the new key, once, like a create. The old key keeps working
    /// until the first of: `grace` from now (never later than its own
    /// expiry); the moment traffic has moved — the new key has been used and
    /// the old one has then gone unused for the keyring's quiet period
    /// ([`KeyringBuilder::rotation_quiet`](crate::KeyringBuilder::rotation_quiet),
    /// 15 minutes by default); [`Keyring::end_rotation`].
    ///
    /// Whoever may create that kind of key for that owner and take it out of
    /// service may rotate it ([`Action::Rotate`]). Refused with
    /// `InvalidInput`: a grace over [`MAX_ROTATION_GRACE`], an expired key, a
    /// key already rotated (one rotation at a time: end it, or rotate the new
    /// key). A disabled key may be rotated: the new key works, the old one
    /// stays disabled. The records link both ways
    /// ([`KeyRecord::rotated_to`], [`KeyRecord::rotated_from`]); the old
    /// record's [`Rotation::overlap_until`] says until when it works at most.
    pub fn rotate(&self, actor: &Actor, key_id: &str, grace: Duration) -> Result<IssuedKey> {
        self.audited(Draft::by(actor, AuditAction::Rotate), |draft| {
            self.rotate_inner(actor, key_id, grace, draft)
        })
    }

    fn rotate_inner(
        &self,
        actor: &Actor,
        key_id: &str,
        grace: Duration,
        draft: &mut Draft,
    ) -> Result<IssuedKey> {
        let role = self.acting_role(actor, draft)?;
        let id = parse_key_id(key_id)?;
        draft.key_id = Some(id);
        if grace > MAX_ROTATION_GRACE {
            return Err(Error::invalid(
                "grace",
                format!(
                    "must be at most {} days",
                    MAX_ROTATION_GRACE.as_secs() / 86_400
                ),
            ));
        }
        // A first look, to build the new key from; every rule is checked
        // again on the row inside the store's atomic step.
        let old = self.store.get(id)?.ok_or_else(|| not_found(key_id))?;
        may_act(actor, role, Action::Rotate, key_id, &old, None)?;
        draft.note(&old);
        let now = self.clock.now();
        rotatable(&old, now)?;
        plan_allows(&self.store.account_settings(&actor.account)?, old.kind)?;
        let through_user = matches!(old.kind, KeyKind::UserToken | KeyKind::Scoped);
        let until = {
            let by_grace = now.saturating_add(grace);
            old.expires_at.map_or(by_grace, |e| e.min(by_grace))
        };
        let quiet_ms = self.rotation_quiet.as_millis().min(u128::from(u64::MAX)) as u64;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let secret = old.kind.generate().map_err(|_| Error::Random)?;
            let new_id = KeyId::generate().map_err(|_| Error::Random)?;
            let new = KeyRecord {
                id: new_id,
                created_at: now,
                created_by: actor.user.as_str().into(),
                disabled: None,
                last_used_at: None,
                last_used_from: None,
                hint: Hint::of(secret.expose()),
                digest: self.hasher.digest(secret.expose().as_bytes()),
                rotation: Some(Box::new(Rotation {
                    rotated_from: Some(id),
                    ..Rotation::default()
                })),
                ..old.clone()
            };
            let mut refusal: Option<Error> = None;
            let if_unknown = UserState {
                role: actor.role,
                removed: false,
            };
            let result = self
                .store
                .rotate(id, new.clone(), if_unknown, &mut |r, standing| {
                    refusal = None;
                    draft.changes.clear();
                    let owner = if r.kind == KeyKind::UserToken {
                        standing
                    } else {
                        None
                    };
                    let checked = may_act(actor, role, Action::Rotate, key_id, r, owner)
                        .and_then(|()| rotatable(r, now))
                        .and_then(|()| match (through_user, standing) {
                            // The new key acts through this user: their standing
                            // now must allow making it (a removed user: no).
                            (true, Some(s)) => self.may_create(s, r.kind, &r.scopes),
                            (true, None) => Err(removed_actor()),
                            (false, _) => Ok(()),
                        });
                    if let Err(e) = checked {
                        refusal = Some(e);
                        return Edit::Keep;
                    }
                    let mut rotation = r.rotation.take().map(|b| *b).unwrap_or_default();
                    rotation.rotated_to = Some(new_id);
                    rotation.rotated_at = Some(now);
                    rotation.overlap_until = Some(until);
                    rotation.quiet_ms = quiet_ms;
                    rotation.successor_used_at = None;
                    r.rotation = Some(Box::new(rotation));
                    draft.changed("rotated_to", None, Some(new_id.to_string()));
                    draft.changed("overlap_until", None, Some(ms(until)));
                    Edit::Write(Some(Box::new(draft.allowed(now))))
                });
            match result {
                Ok(Some(_)) => {
                    if let Some(e) = refusal {
                        return Err(e);
                    }
                    return Ok(IssuedKey::new(secret, new));
                }
                Ok(None) => return Err(not_found(key_id)),
                Err(StoreError::Duplicate { .. }) if attempts < 4 => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// End a rotation's overlap now: the old key (`key_id`, the one that was
    /// rotated) stops working at once; the new key is untouched. Allowed to
    /// whoever may rotate the key. `InvalidInput` when the key is not in an
    /// overlap (never rotated, or its overlap already over).
    pub fn end_rotation(&self, actor: &Actor, key_id: &str) -> Result<KeyRecord> {
        self.audited(Draft::by(actor, AuditAction::EndRotation), |draft| {
            let role = self.acting_role(actor, draft)?;
            let id = parse_key_id(key_id)?;
            draft.key_id = Some(id);
            let now = self.clock.now();
            let mut refusal: Option<Error> = None;
            let out = self.store.update_audited(id, &mut |r| {
                refusal = None;
                draft.changes.clear();
                if let Err(e) = may_act(actor, role, Action::Rotate, key_id, r, None) {
                    refusal = Some(e);
                    return Edit::Keep;
                }
                draft.note(r);
                let last_used = r.last_used_at;
                let from = r.rotated_from();
                match r.rotation.as_mut() {
                    Some(rot) if rot.overlapping(now, last_used) => {
                        draft.changed("overlap_until", rot.overlap_until.map(ms), Some(ms(now)));
                        rot.overlap_until = Some(now);
                        Edit::Write(Some(Box::new(draft.allowed(now))))
                    }
                    _ => {
                        refusal = Some(Error::invalid(
                            "key_id",
                            match from {
                                Some(old) => format!(
                                    "this key is the new key of a rotation; end the rotation of \
                                     the key it replaced ({old})"
                                ),
                                None => "this key is not in a rotation's overlap".to_owned(),
                            },
                        ));
                        Edit::Keep
                    }
                }
            })?;
            if let Some(e) = refusal {
                return Err(e);
            }
            out.ok_or_else(|| not_found(key_id))
        })
    }
}
