//! The [`KeyStore`] implementation and its SQL.

use std::collections::HashMap;

use apikeys::store::rows::{self, LookupRow, id_value, millis};
use apikeys::store::{
    CachedLookup, Edit, LookupRef, Standings, check_immutable, removed_state, standing_user,
};
use apikeys::{
    AccountSettings, AuditEvent, AuditPage, AuditWindow, Digest, Disabled, KeyFilter, KeyId,
    KeyKind, KeyLookup, KeyRecord, KeyStore, StoreError, Timestamp, UsePlace, UserInsert,
    UserState,
};
use postgres::error::SqlState;
use postgres::{Row, Statement, Transaction};

use crate::audit::{self, write_some};
use crate::pool::prepared;
use crate::{Inner, POSTGRES, PostgresStore, pg};

const FIND_SQL: &str = "
    SELECT k.record, k.last_used_at, a.rest_api, a.advanced_permissions, u.role, u.removed
    FROM apikeys_keys k
    LEFT JOIN apikeys_accounts a ON a.account = k.account
    LEFT JOIN apikeys_users u ON u.account = k.account AND u.user_id =
        CASE k.kind WHEN 'scoped' THEN k.record::json ->> 'created_by' ELSE k.owner END
    WHERE k.digest = $1";
/// The keys whose standing user ([`apikeys::store::standing_user`]) is `$2`:
/// a user's tokens and the scoped tokens they made. Locked: no update of
/// them lands between the read and the offboarding's write.
const STANDING_KEYS_SQL: &str = "
    SELECT record, last_used_at FROM apikeys_keys
    WHERE account = $1
      AND ((kind = 'user_token' AND owner = $2)
        OR (kind = 'scoped' AND record::json ->> 'created_by' = $2))
    FOR UPDATE";
/// The user's standing, locked until the transaction ends.
const USER_FOR_UPDATE_SQL: &str =
    "SELECT role, removed FROM apikeys_users WHERE account = $1 AND user_id = $2 FOR UPDATE";
const GET_SQL: &str = "SELECT record, last_used_at, last_used_from FROM apikeys_keys WHERE id = $1";
const LIST_SQL: &str = "
    SELECT record, last_used_at, last_used_from FROM apikeys_keys
    WHERE account = $1
      AND ($2::text IS NULL OR kind = $2)
      AND ($3::text IS NULL OR owner = $3)";
const ACCOUNT_SQL: &str =
    "SELECT rest_api, advanced_permissions FROM apikeys_accounts WHERE account = $1";
const USER_SQL: &str =
    "SELECT role, removed FROM apikeys_users WHERE account = $1 AND user_id = $2";

impl Inner {
    pub(crate) fn flush(&self) -> Result<usize, StoreError> {
        self.flush_successors()?;
        self.flush_places()?;
        self.uses.flush(|uses| {
            let ids: Vec<i64> = uses.iter().map(|&(id, _)| id_value(id)).collect();
            let ats: Vec<i64> = uses.iter().map(|&(_, at)| millis(at)).collect();
            self.write(|tx, _| {
                tx.execute(
                    "UPDATE apikeys_keys k
                     SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), u.at)
                     FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at)
                     WHERE k.id = u.id",
                    &[&ids, &ats],
                )
                .map_err(pg)?;
                Ok(())
            })
        })
    }

    /// Note the queued first uses of rotations' new keys on their old keys.
    fn flush_successors(&self) -> Result<(), StoreError> {
        let marks = std::mem::take(
            &mut *self
                .successors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if marks.is_empty() {
            return Ok(());
        }
        let written = self.write(|tx, st| {
            let mut n = 0;
            for &(old, at) in &marks {
                let Some(mut r) = select_for_update(self, tx, st, old)? else {
                    continue;
                };
                if !r
                    .rotation
                    .as_mut()
                    .is_some_and(|rot| rot.note_successor_use(at))
                {
                    continue;
                }
                let s = prepared(tx, st, "UPDATE apikeys_keys SET record = $2 WHERE id = $1")?;
                tx.execute(&s, &[&id_value(old), &rows::encode_record(POSTGRES, &r)?])
                    .map_err(pg)?;
                n += 1;
            }
            Ok(n)
        });
        match written {
            Ok(n) => {
                if n > 0 {
                    self.cache.clear();
                }
                Ok(())
            }
            Err(e) => {
                self.successors
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(marks);
                Err(e)
            }
        }
    }

    pub(crate) fn fetch(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        let bytes: &[u8] = &digest.as_bytes()[..];
        let rows = self.read(|c| c.query(FIND_SQL, &[&bytes]))?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        LookupRow {
            record: row.get(0),
            last_used_at: row.get(1),
            rest_api: row.get(2),
            advanced_permissions: row.get(3),
            role: row.get(4),
            removed: row.get(5),
        }
        .decode(POSTGRES, &self.uses)
        .map(Some)
    }

    /// A row of `record, last_used_at, last_used_from` (get, list).
    fn record_with_place(&self, row: &Row) -> Result<KeyRecord, StoreError> {
        let mut r = rows::decode_record(POSTGRES, row.get(0), row.get(1))?;
        r.last_used_from = rows::decode_place(row.get(2));
        self.uses.merge(&mut r);
        Ok(r)
    }

    /// Write the queued places of last uses (their own column: no trigger,
    /// no cache to drop).
    fn flush_places(&self) -> Result<(), StoreError> {
        let places = self.uses.take_places();
        if places.is_empty() {
            return Ok(());
        }
        let written = (|| {
            let ids: Vec<i64> = places.iter().map(|(id, _)| id_value(*id)).collect();
            let json = places
                .iter()
                .map(|(_, p)| rows::encode_place(POSTGRES, p))
                .collect::<Result<Vec<String>, _>>()?;
            self.write(|tx, _| {
                tx.execute(
                    "UPDATE apikeys_keys k SET last_used_from = u.place
                     FROM unnest($1::bigint[], $2::text[]) AS u(id, place)
                     WHERE k.id = u.id",
                    &[&ids, &json],
                )
                .map_err(pg)?;
                Ok(())
            })
        })();
        if written.is_err() {
            self.uses.requeue_places(places);
        }
        written
    }

    pub(crate) fn record_from(&self, row: &Row) -> Result<KeyRecord, StoreError> {
        let mut r = rows::decode_record(POSTGRES, row.get(0), row.get(1))?;
        self.uses.merge(&mut r);
        Ok(r)
    }
}

/// Insert `record` in `tx`, refusing a duplicate id or digest.
fn insert_in(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    record: &KeyRecord,
) -> Result<(), StoreError> {
    let json = rows::encode_record(POSTGRES, record)?;
    let digest: &[u8] = &record.digest.as_bytes()[..];
    let last_used = record.last_used_at.map(millis);
    let s = prepared(
        tx,
        st,
        "INSERT INTO apikeys_keys
             (id, digest, account, kind, owner, created_at, last_used_at, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )?;
    let result = tx.execute(
        &s,
        &[
            &id_value(record.id),
            &digest,
            &&*record.account,
            &record.kind.as_str(),
            &record.owner.as_deref(),
            &millis(record.created_at),
            &last_used,
            &json,
        ],
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let on_digest = e
                .as_db_error()
                .and_then(|d| d.constraint())
                .is_some_and(|c| c.contains("digest"));
            Err(StoreError::Duplicate {
                field: if on_digest { "digest" } else { "id" },
            })
        }
        Err(e) => Err(pg(e)),
    }
}

/// The record `id`, locked in `tx` until it ends.
fn select_for_update(
    inner: &Inner,
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    id: KeyId,
) -> Result<Option<KeyRecord>, StoreError> {
    let s = prepared(
        tx,
        st,
        "SELECT record, last_used_at FROM apikeys_keys WHERE id = $1 FOR UPDATE",
    )?;
    match tx.query_opt(&s, &[&id_value(id)]).map_err(pg)? {
        Some(row) => inner.record_from(&row).map(Some),
        None => Ok(None),
    }
}

/// Write `after` over `before`'s row, keeping the later last use.
fn rewrite(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    before: &KeyRecord,
    after: &KeyRecord,
) -> Result<(), StoreError> {
    check_immutable(before, after)?;
    let last_used = after.last_used_at.max(before.last_used_at).map(millis);
    let s = prepared(
        tx,
        st,
        "UPDATE apikeys_keys SET record = $2, last_used_at = $3 WHERE id = $1",
    )?;
    tx.execute(
        &s,
        &[
            &id_value(before.id),
            &rows::encode_record(POSTGRES, after)?,
            &last_used,
        ],
    )
    .map_err(pg)?;
    Ok(())
}

/// Store `state` for a user not stored yet; `false` if someone stored them meanwhile.
fn insert_user(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    account: &str,
    user: &str,
    state: UserState,
) -> Result<bool, StoreError> {
    let s = prepared(
        tx,
        st,
        "INSERT INTO apikeys_users (account, user_id, role, removed)
         VALUES ($1, $2, $3, $4) ON CONFLICT (account, user_id) DO NOTHING",
    )?;
    let n = tx
        .execute(&s, &[&account, &user, &state.role.as_str(), &state.removed])
        .map_err(pg)?;
    Ok(n == 1)
}

fn user_from(row: &Row) -> Result<UserState, StoreError> {
    rows::user_state(POSTGRES, row.get(0), row.get(1))
}

/// The user's standing, locked in `tx` until it ends (`None`: unknown).
fn user_for_update(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    account: &str,
    user: &str,
) -> Result<Option<UserState>, StoreError> {
    let s = prepared(tx, st, USER_FOR_UPDATE_SQL)?;
    tx.query_opt(&s, &[&account, &user])
        .map_err(pg)?
        .as_ref()
        .map(user_from)
        .transpose()
}

/// The user's standing, locked in `tx` until it ends, even when the store
/// knows nothing of them: then a placeholder row ([`removed_state`] of no
/// one) is inserted in its place, which a concurrent first write of that
/// user waits for, and the answer is `None`. The caller overwrites the
/// placeholder, deletes it ([`forget_placeholder`]) or rolls back: it is
/// never committed as a standing.
fn lock_user(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    account: &str,
    user: &str,
) -> Result<Option<UserState>, StoreError> {
    // A row is never deleted once committed (a placeholder never is), so
    // the second look finds the row the insert ran into; twice for safety.
    for _ in 0..2 {
        if insert_user(tx, st, account, user, removed_state(None))? {
            return Ok(None);
        }
        if let Some(s) = user_for_update(tx, st, account, user)? {
            return Ok(Some(s));
        }
    }
    Err(StoreError::Unavailable(
        "a user's row came and went while it was being locked"
            .to_owned()
            .into(),
    ))
}

/// Delete the placeholder [`lock_user`] inserted for `user`.
fn forget_placeholder(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    account: &str,
    user: &str,
) -> Result<(), StoreError> {
    let s = prepared(
        tx,
        st,
        "DELETE FROM apikeys_users WHERE account = $1 AND user_id = $2",
    )?;
    tx.execute(&s, &[&account, &user]).map_err(pg)?;
    Ok(())
}

/// The standings of `actor` (none for the system) and `user`, both rows
/// locked in `tx` until it ends ([`lock_user`]), in the order of their ids:
/// two decided changes never wait on each other crosswise.
fn lock_standings(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    account: &str,
    actor: Option<&str>,
    user: &str,
) -> Result<Standings, StoreError> {
    let actor = match actor {
        None => {
            return Ok(Standings {
                actor: None,
                subject: lock_user(tx, st, account, user)?,
            });
        }
        Some(a) if a == user => {
            let s = lock_user(tx, st, account, user)?;
            return Ok(Standings {
                actor: s,
                subject: s,
            });
        }
        Some(a) => a,
    };
    let (first, second) = if actor < user {
        (actor, user)
    } else {
        (user, actor)
    };
    let a = lock_user(tx, st, account, first)?;
    let b = lock_user(tx, st, account, second)?;
    let (actor_state, subject) = if actor < user { (a, b) } else { (b, a) };
    Ok(Standings {
        actor: actor_state,
        subject,
    })
}

/// The upsert of a user's standing.
const SET_USER_SQL: &str = "INSERT INTO apikeys_users (account, user_id, role, removed)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (account, user_id) DO UPDATE
     SET role = excluded.role, removed = excluded.removed";

/// The upsert of an account's settings.
const SET_ACCOUNT_SQL: &str =
    "INSERT INTO apikeys_accounts (account, rest_api, advanced_permissions)
     VALUES ($1, $2, $3)
     ON CONFLICT (account) DO UPDATE
     SET rest_api = excluded.rest_api,
         advanced_permissions = excluded.advanced_permissions";

impl Inner {
    /// [`KeyStore::remove_user`]'s work, in the caller's transaction: the
    /// user's row first (it waits for a token insert in flight, and every
    /// insert after this one sees the user removed), then their keys.
    fn offboard(
        &self,
        tx: &mut Transaction<'_>,
        st: &mut HashMap<&'static str, Statement>,
        account: &str,
        user: &str,
        disabled: &Disabled,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let unknown = removed_state(None);
        let s = prepared(
            tx,
            st,
            "INSERT INTO apikeys_users (account, user_id, role, removed)
             VALUES ($1, $2, $3, true)
             ON CONFLICT (account, user_id) DO UPDATE SET removed = true",
        )?;
        tx.execute(&s, &[&account, &user, &unknown.role.as_str()])
            .map_err(pg)?;
        let s = prepared(tx, st, STANDING_KEYS_SQL)?;
        let rows = tx.query(&s, &[&account, &user]).map_err(pg)?;
        let mut changed = Vec::new();
        for row in &rows {
            let r = self.record_from(row)?;
            if r.disabled.is_none() {
                changed.push(r);
            }
        }
        let s = prepared(tx, st, "UPDATE apikeys_keys SET record = $2 WHERE id = $1")?;
        for r in &mut changed {
            r.disabled = Some(Box::new(disabled.clone()));
            tx.execute(&s, &[&id_value(r.id), &rows::encode_record(POSTGRES, r)?])
                .map_err(pg)?;
        }
        changed.sort_by_key(|r| (r.created_at, r.id));
        Ok(changed)
    }
}

impl KeyStore for PostgresStore {
    fn insert_audited(
        &self,
        record: KeyRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx, st| {
            insert_in(tx, st, &record)?;
            write_some(tx, st, audit)
        })
        // No cache entry to drop: misses are never cached.
    }

    fn rotate(
        &self,
        old: KeyId,
        new: KeyRecord,
        if_unknown: UserState,
        decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let user = standing_user(&new).map(str::to_owned);
        let account: &str = &new.account;
        let (out, new_user) = inner.write_if(|tx, st| {
            // Locks in the order every writer takes them: the user's row,
            // then the keys' rows. Anything but a rotation is rolled back.
            let (known, new_user) = match &user {
                None => (None, false),
                Some(u) => match user_for_update(tx, st, account, u)? {
                    Some(s) => (Some(s), false),
                    None if insert_user(tx, st, account, u, if_unknown)? => {
                        (Some(if_unknown), true)
                    }
                    None => (user_for_update(tx, st, account, u)?, false),
                },
            };
            let standing = user.as_ref().map(|_| known.unwrap_or(if_unknown));
            let Some(before) = select_for_update(inner, tx, st, old)? else {
                return Ok(((None, false), false));
            };
            let mut after = before.clone();
            let audit = match decide(&mut after, standing.as_ref()) {
                Edit::Keep => return Ok(((Some(before), false), false)),
                Edit::Write(audit) => audit,
            };
            rewrite(tx, st, &before, &after)?;
            insert_in(tx, st, &new)?;
            write_some(tx, st, audit.as_deref())?;
            Ok(((Some(after), new_user), true))
        })?;
        if let Some(r) = &out {
            inner.cache.invalidate(&r.digest);
        }
        if new_user {
            inner.cache.clear();
        }
        Ok(out)
    }

    fn successor_used(&self, predecessor: KeyId, at: Timestamp) -> Result<(), StoreError> {
        // Queued, like last uses: the hot path never writes.
        self.inner
            .successors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((predecessor, at));
        Ok(())
    }

    fn keeps_audit(&self) -> bool {
        true
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.write(|tx, st| audit::write_audit(tx, st, event))
    }

    fn audit_records(&self, window: &AuditWindow) -> Result<AuditPage, StoreError> {
        self.inner.read(|c| audit::page(c, window))
    }

    fn prune_audit(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.write(|tx, st| audit::prune(tx, st, before))
    }

    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        audit: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        let account: &str = &record.account;
        let (outcome, new_user) = self.inner.write(|tx, st| {
            // The user's row stays locked until commit, so an offboarding
            // (which updates that row first) waits for this insert or sees it.
            let mut known = user_for_update(tx, st, account, user)?;
            let mut new_user = false;
            if known.is_none() {
                if !admit(&if_unknown) {
                    return Ok((UserInsert::Refused(if_unknown), false));
                }
                let s = prepared(
                    tx,
                    st,
                    "INSERT INTO apikeys_users (account, user_id, role, removed)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (account, user_id) DO NOTHING",
                )?;
                let n = tx
                    .execute(
                        &s,
                        &[
                            &account,
                            &user,
                            &if_unknown.role.as_str(),
                            &if_unknown.removed,
                        ],
                    )
                    .map_err(pg)?;
                if n == 1 {
                    new_user = true;
                } else {
                    // Someone stored this user meanwhile: decide on their row.
                    known = user_for_update(tx, st, account, user)?;
                }
            }
            let state = known.unwrap_or(if_unknown);
            if !new_user && !admit(&state) {
                return Ok((UserInsert::Refused(state), false));
            }
            insert_in(tx, st, &record)?;
            write_some(tx, st, audit)?;
            Ok((UserInsert::Inserted(state), new_user))
        })?;
        if new_user {
            // A cached answer may have been given without this user's state.
            self.inner.cache.clear();
        }
        Ok(outcome)
    }

    fn remove_user(
        &self,
        account: &str,
        user: &str,
        disabled: &Disabled,
        audit: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let out = inner.write(|tx, st| {
            let changed = inner.offboard(tx, st, account, user, disabled)?;
            write_some(tx, st, audit)?;
            Ok(changed)
        })?;
        inner.cache.clear();
        Ok(out)
    }

    fn remove_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        disabled: &Disabled,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        let inner = &self.inner;
        let out = inner.write_if(|tx, st| {
            // Both users' rows stay locked until commit: no change of either
            // lands between the decision and the removal. A refusal is
            // rolled back (with any placeholder row).
            let standings = lock_standings(tx, st, account, actor, user)?;
            let audit = match decide(&standings) {
                Edit::Keep => return Ok((None, false)),
                Edit::Write(audit) => audit,
            };
            // An unknown subject's placeholder is the removed state
            // `remove_user` stores for them.
            let changed = inner.offboard(tx, st, account, user, disabled)?;
            if let Some(a) = actor.filter(|a| *a != user && standings.actor.is_none()) {
                forget_placeholder(tx, st, account, a)?;
            }
            write_some(tx, st, audit.as_deref())?;
            Ok((Some(changed), true))
        })?;
        if out.is_some() {
            inner.cache.clear();
        }
        Ok(out)
    }

    #[inline]
    fn find_by_digest(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        self.inner
            .cache
            .get_or_fetch(digest, |d| self.inner.fetch(d))
    }

    /// From the cache only: [`CachedLookup::WouldBlock`] on a miss (misses
    /// are never cached) or while the cache is off.
    fn find_cached(&self, digest: &Digest) -> CachedLookup {
        self.inner.cache.cached(digest)
    }

    /// The hot path lent in place: a cache hit is read under the cache
    /// shard's read guard, no reference count written (docs/design.md §6).
    #[inline]
    fn find_by_digest_with(
        &self,
        digest: &Digest,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        self.inner
            .cache
            .get_or_fetch_with(digest, |d| self.inner.fetch(d), f)
    }

    /// [`KeyStore::find_cached`] lent in place.
    fn find_cached_with(&self, digest: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        self.inner.cache.cached_with(digest, f)
    }

    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let rows = self.inner.read(|c| c.query(GET_SQL, &[&id_value(id)]))?;
        rows.first()
            .map(|r| self.inner.record_with_place(r))
            .transpose()
    }

    fn list(&self, account: &str, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let kind = filter.kind.map(|k| k.as_str());
        let owner = filter.owner.as_deref();
        let rows = self
            .inner
            .read(|c| c.query(LIST_SQL, &[&account, &kind, &owner]))?;
        let mut out = rows
            .iter()
            .map(|r| self.inner.record_with_place(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    fn update_audited(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let (updated, written) = inner.write(|tx, st| {
            let Some(before) = select_for_update(inner, tx, st, id)? else {
                return Ok((None, false));
            };
            let mut after = before.clone();
            let audit = match change(&mut after) {
                Edit::Keep => return Ok((Some(before), false)),
                Edit::Write(audit) => audit,
            };
            rewrite(tx, st, &before, &after)?;
            write_some(tx, st, audit.as_deref())?;
            Ok((Some(after), true))
        })?;
        if let (Some(r), true) = (&updated, written) {
            inner.cache.invalidate(&r.digest);
        }
        Ok(updated)
    }

    fn delete_audited(
        &self,
        id: KeyId,
        check: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        // Who owns it (owner never changes), to lock their row first, in the
        // order every writer takes locks: the user's row, then the key's.
        let Some(peek) = self.get(id)? else {
            return Ok(None);
        };
        let (found, deleted) = inner.write(|tx, st| {
            let owner = match (&peek.owner, peek.kind) {
                (Some(o), KeyKind::UserToken) => user_for_update(tx, st, &peek.account, o)?,
                _ => None,
            };
            let Some(r) = select_for_update(inner, tx, st, id)? else {
                return Ok((None, false));
            };
            let audit = match check(&r, owner.as_ref()) {
                Edit::Keep => return Ok((Some(r), false)),
                Edit::Write(audit) => audit,
            };
            let s = prepared(tx, st, "DELETE FROM apikeys_keys WHERE id = $1")?;
            tx.execute(&s, &[&id_value(id)]).map_err(pg)?;
            write_some(tx, st, audit.as_deref())?;
            Ok((Some(r), true))
        })?;
        if let (Some(r), true) = (&found, deleted) {
            inner.cache.invalidate(&r.digest);
            inner.uses.forget(id);
        }
        Ok(found)
    }

    fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner.uses.record(&inner.cache, id, at, None);
        Ok(())
    }

    fn record_use_from(
        &self,
        id: KeyId,
        at: Timestamp,
        place: &UsePlace,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner.uses.record(&inner.cache, id, at, Some(place));
        Ok(())
    }

    fn account_settings(&self, account: &str) -> Result<AccountSettings, StoreError> {
        let rows = self.inner.read(|c| c.query(ACCOUNT_SQL, &[&account]))?;
        Ok(rows
            .first()
            .map(|r| AccountSettings {
                rest_api: r.get(0),
                advanced_permissions: r.get(1),
            })
            .unwrap_or_default())
    }

    fn set_account_settings_audited(
        &self,
        account: &str,
        settings: AccountSettings,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx, st| {
            let s = prepared(tx, st, SET_ACCOUNT_SQL)?;
            tx.execute(
                &s,
                &[&account, &settings.rest_api, &settings.advanced_permissions],
            )
            .map_err(pg)?;
            write_some(tx, st, audit)
        })?;
        self.inner.cache.clear();
        Ok(())
    }

    fn set_account_settings_as(
        &self,
        account: &str,
        actor: Option<&str>,
        settings: AccountSettings,
        decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError> {
        let written = self.inner.write_if(|tx, st| {
            // Locks in the order every writer takes them: the actor's row,
            // then the account's (a default row held in its place when the
            // account was never configured). A refusal is rolled back.
            let mine = match actor {
                Some(a) => lock_user(tx, st, account, a)?,
                None => None,
            };
            let defaults = AccountSettings::default();
            let s = prepared(
                tx,
                st,
                "INSERT INTO apikeys_accounts (account, rest_api, advanced_permissions)
                 VALUES ($1, $2, $3) ON CONFLICT (account) DO NOTHING",
            )?;
            tx.execute(
                &s,
                &[&account, &defaults.rest_api, &defaults.advanced_permissions],
            )
            .map_err(pg)?;
            let s = prepared(
                tx,
                st,
                "SELECT rest_api, advanced_permissions FROM apikeys_accounts
                 WHERE account = $1 FOR UPDATE",
            )?;
            let before = tx
                .query_opt(&s, &[&account])
                .map_err(pg)?
                .map(|r| AccountSettings {
                    rest_api: r.get(0),
                    advanced_permissions: r.get(1),
                })
                .unwrap_or_default();
            let audit = match decide(mine.as_ref(), &before) {
                Edit::Keep => return Ok((false, false)),
                Edit::Write(audit) => audit,
            };
            let s = prepared(tx, st, SET_ACCOUNT_SQL)?;
            tx.execute(
                &s,
                &[&account, &settings.rest_api, &settings.advanced_permissions],
            )
            .map_err(pg)?;
            if let Some(a) = actor.filter(|_| mine.is_none()) {
                forget_placeholder(tx, st, account, a)?;
            }
            write_some(tx, st, audit.as_deref())?;
            Ok((true, true))
        })?;
        if written {
            self.inner.cache.clear();
        }
        Ok(written)
    }

    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
        let rows = self.inner.read(|c| c.query(USER_SQL, &[&account, &user]))?;
        rows.first().map(user_from).transpose()
    }

    fn flush_writes(&self) -> Result<usize, StoreError> {
        PostgresStore::flush(self)
    }

    fn set_user_audited(
        &self,
        account: &str,
        user: &str,
        state: UserState,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx, st| {
            let s = prepared(tx, st, SET_USER_SQL)?;
            tx.execute(&s, &[&account, &user, &state.role.as_str(), &state.removed])
                .map_err(pg)?;
            write_some(tx, st, audit)
        })?;
        self.inner.cache.clear();
        Ok(())
    }

    fn set_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        state: UserState,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<bool, StoreError> {
        let written = self.inner.write_if(|tx, st| {
            // Both users' rows stay locked until commit: no change of either
            // lands between the decision and the write. A refusal is rolled
            // back (with any placeholder row).
            let standings = lock_standings(tx, st, account, actor, user)?;
            let audit = match decide(&standings) {
                Edit::Keep => return Ok((false, false)),
                Edit::Write(audit) => audit,
            };
            let s = prepared(tx, st, SET_USER_SQL)?;
            tx.execute(&s, &[&account, &user, &state.role.as_str(), &state.removed])
                .map_err(pg)?;
            if let Some(a) = actor.filter(|a| *a != user && standings.actor.is_none()) {
                forget_placeholder(tx, st, account, a)?;
            }
            write_some(tx, st, audit.as_deref())?;
            Ok((true, true))
        })?;
        if written {
            self.inner.cache.clear();
        }
        Ok(written)
    }
}
