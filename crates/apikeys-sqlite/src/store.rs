//! The [`KeyStore`] implementation and its SQL.

use apikeys::store::rows::{self, LookupRow, id_value, millis};
use apikeys::store::{
    CachedLookup, Edit, LookupRef, Standings, check_immutable, removed_state, standing_user,
};
use apikeys::{
    AccountSettings, AuditEvent, AuditPage, AuditWindow, Digest, Disabled, KeyFilter, KeyId,
    KeyKind, KeyLookup, KeyRecord, KeyStore, StoreError, Timestamp, UsePlace, UserInsert,
    UserState,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::audit::{self, write_some};
use crate::{Inner, SQLITE, SqliteStore, lock, unavailable};

const FIND_SQL: &str = "
    SELECT k.record, k.last_used_at, a.rest_api, a.advanced_permissions, u.role, u.removed
    FROM apikeys_keys k
    LEFT JOIN apikeys_accounts a ON a.account = k.account
    LEFT JOIN apikeys_users u ON u.account = k.account AND u.user_id =
        CASE k.kind WHEN 'scoped' THEN json_extract(k.record, '$.created_by') ELSE k.owner END
    WHERE k.digest = ?1";

/// The keys whose standing user ([`apikeys::store::standing_user`]) is `?2`:
/// a user's tokens and the scoped tokens they made.
const STANDING_KEYS_SQL: &str = "
    SELECT record, last_used_at FROM apikeys_keys
    WHERE account = ?1
      AND ((kind = 'user_token' AND owner = ?2)
        OR (kind = 'scoped' AND json_extract(record, '$.created_by') = ?2))";

impl Inner {
    pub(crate) fn flush(&self) -> Result<usize, StoreError> {
        self.flush_successors()?;
        self.flush_places()?;
        self.uses.flush(|uses| {
            self.write(|tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE apikeys_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2)
                         WHERE id = ?1",
                    )
                    .map_err(unavailable)?;
                for &(id, at) in uses {
                    stmt.execute(params![id_value(id), millis(at)])
                        .map_err(unavailable)?;
                }
                Ok(())
            })
        })
    }

    /// Note the queued first uses of rotations' new keys on their old keys.
    fn flush_successors(&self) -> Result<(), StoreError> {
        let marks = std::mem::take(&mut *lock(&self.successors));
        if marks.is_empty() {
            return Ok(());
        }
        let written = self.write(|tx| {
            let mut n = 0;
            for &(old, at) in &marks {
                let Some(mut r) = select_record(tx, old)? else {
                    continue;
                };
                if !r
                    .rotation
                    .as_mut()
                    .is_some_and(|rot| rot.note_successor_use(at))
                {
                    continue;
                }
                tx.execute(
                    "UPDATE apikeys_keys SET record = ?2 WHERE id = ?1",
                    params![id_value(old), rows::encode_record(SQLITE, &r)?],
                )
                .map_err(unavailable)?;
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
                // Keep them for the next flush.
                lock(&self.successors).extend(marks);
                Err(e)
            }
        }
    }

    /// Write the queued places of last uses (their own column: no trigger,
    /// no cache to drop).
    fn flush_places(&self) -> Result<(), StoreError> {
        let places = self.uses.take_places();
        if places.is_empty() {
            return Ok(());
        }
        let written = self.write(|tx| {
            let mut stmt = tx
                .prepare_cached("UPDATE apikeys_keys SET last_used_from = ?2 WHERE id = ?1")
                .map_err(unavailable)?;
            for (id, p) in &places {
                stmt.execute(params![id_value(*id), rows::encode_place(SQLITE, p)?])
                    .map_err(unavailable)?;
            }
            Ok(())
        });
        if written.is_err() {
            self.uses.requeue_places(places);
        }
        written
    }

    fn read_record(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let conn = self.reader()?;
        let row = conn
            .prepare_cached(sql)
            .map_err(unavailable)?
            .query_row(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()
            .map_err(unavailable)?;
        row.map(|(json, used, place)| {
            let mut r = rows::decode_record(SQLITE, &json, used)?;
            r.last_used_from = rows::decode_place(place.as_deref());
            self.uses.merge(&mut r);
            Ok(r)
        })
        .transpose()
    }

    pub(crate) fn fetch(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        let conn = self.reader()?;
        type Row = (
            String,
            Option<i64>,
            Option<bool>,
            Option<bool>,
            Option<String>,
            Option<bool>,
        );
        let row: Option<Row> = conn
            .prepare_cached(FIND_SQL)
            .map_err(unavailable)?
            .query_row(params![&digest.as_bytes()[..]], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
            .map_err(unavailable)?;
        let Some((json, used, rest_api, advanced, role, removed)) = row else {
            return Ok(None);
        };
        let row = LookupRow {
            record: &json,
            last_used_at: used,
            rest_api,
            advanced_permissions: advanced,
            role: role.as_deref(),
            removed,
        };
        row.decode(SQLITE, &self.uses).map(Some)
    }
}

/// The record with this id, read in `conn` (a transaction), without queued uses.
fn select_record(conn: &Connection, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
    let row = conn
        .prepare_cached("SELECT record, last_used_at FROM apikeys_keys WHERE id = ?1")
        .map_err(unavailable)?
        .query_row([id_value(id)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })
        .optional()
        .map_err(unavailable)?;
    row.map(|(json, used)| rows::decode_record(SQLITE, &json, used))
        .transpose()
}

/// Write `after` over the record `id`, keeping the later last use.
fn rewrite(
    tx: &rusqlite::Transaction<'_>,
    before: &KeyRecord,
    after: &KeyRecord,
) -> Result<(), StoreError> {
    check_immutable(before, after)?;
    let last_used = after.last_used_at.max(before.last_used_at);
    tx.execute(
        "UPDATE apikeys_keys SET record = ?2, last_used_at = ?3 WHERE id = ?1",
        params![
            id_value(before.id),
            rows::encode_record(SQLITE, after)?,
            last_used.map(millis)
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Insert `record` in `tx`, refusing a duplicate id or digest.
fn insert_in(tx: &rusqlite::Transaction<'_>, record: &KeyRecord) -> Result<(), StoreError> {
    let json = rows::encode_record(SQLITE, record)?;
    let id_taken: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM apikeys_keys WHERE id = ?1)",
            [id_value(record.id)],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if id_taken {
        return Err(StoreError::Duplicate { field: "id" });
    }
    let digest_taken: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM apikeys_keys WHERE digest = ?1)",
            [&record.digest.as_bytes()[..]],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if digest_taken {
        return Err(StoreError::Duplicate { field: "digest" });
    }
    tx.execute(
        "INSERT INTO apikeys_keys
                     (id, digest, account, kind, owner, created_at, last_used_at, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id_value(record.id),
            &record.digest.as_bytes()[..],
            &*record.account,
            record.kind.as_str(),
            record.owner.as_deref(),
            millis(record.created_at),
            record.last_used_at.map(millis),
            json,
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// The state stored for `user` of `account`, read in `tx`.
fn user_in(conn: &Connection, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT role, removed FROM apikeys_users WHERE account = ?1 AND user_id = ?2",
        )
        .map_err(unavailable)?
        .query_row([account, user], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })
        .optional()
        .map_err(unavailable)?;
    row.map(|(role, removed)| rows::user_state(SQLITE, &role, removed))
        .transpose()
}

fn set_user_in(
    tx: &rusqlite::Transaction<'_>,
    account: &str,
    user: &str,
    state: UserState,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO apikeys_users (account, user_id, role, removed)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account, user_id) DO UPDATE
         SET role = excluded.role, removed = excluded.removed",
        params![account, user, state.role.as_str(), state.removed],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// The account's settings, read in `conn` (the default when never set).
fn account_in(conn: &Connection, account: &str) -> Result<AccountSettings, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT rest_api, advanced_permissions FROM apikeys_accounts WHERE account = ?1",
        )
        .map_err(unavailable)?
        .query_row([account], |r| {
            Ok(AccountSettings {
                rest_api: r.get(0)?,
                advanced_permissions: r.get(1)?,
            })
        })
        .optional()
        .map_err(unavailable)?;
    Ok(row.unwrap_or_default())
}

fn set_account_in(
    tx: &rusqlite::Transaction<'_>,
    account: &str,
    settings: AccountSettings,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO apikeys_accounts (account, rest_api, advanced_permissions)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (account) DO UPDATE
         SET rest_api = excluded.rest_api,
             advanced_permissions = excluded.advanced_permissions",
        params![account, settings.rest_api, settings.advanced_permissions],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// The standings of `actor` (none for the system) and `user`, read in `tx`.
fn standings_in(
    conn: &Connection,
    account: &str,
    actor: Option<&str>,
    user: &str,
) -> Result<Standings, StoreError> {
    Ok(Standings {
        actor: match actor {
            Some(a) => user_in(conn, account, a)?,
            None => None,
        },
        subject: user_in(conn, account, user)?,
    })
}

impl Inner {
    /// [`KeyStore::remove_user`]'s work, in the caller's transaction.
    fn offboard(
        &self,
        tx: &rusqlite::Transaction<'_>,
        account: &str,
        user: &str,
        disabled: &Disabled,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let known = user_in(tx, account, user)?;
        set_user_in(tx, account, user, removed_state(known))?;
        let mut rows = Vec::new();
        {
            let mut stmt = tx.prepare_cached(STANDING_KEYS_SQL).map_err(unavailable)?;
            let found = stmt
                .query_map(params![account, user], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
                })
                .map_err(unavailable)?;
            for row in found {
                let (json, used) = row.map_err(unavailable)?;
                let mut r = rows::decode_record(SQLITE, &json, used)?;
                self.uses.merge(&mut r);
                if r.disabled.is_none() {
                    rows.push(r);
                }
            }
        }
        for r in &mut rows {
            r.disabled = Some(Box::new(disabled.clone()));
            tx.execute(
                "UPDATE apikeys_keys SET record = ?2 WHERE id = ?1",
                params![id_value(r.id), rows::encode_record(SQLITE, r)?],
            )
            .map_err(unavailable)?;
        }
        rows.sort_by_key(|r| (r.created_at, r.id));
        Ok(rows)
    }
}

impl KeyStore for SqliteStore {
    fn insert_audited(
        &self,
        record: KeyRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx| {
            insert_in(tx, &record)?;
            write_some(tx, audit)
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
        // One BEGIN IMMEDIATE transaction: the old key's edit, the new key,
        // the standing they were decided on and the audit record, together.
        let (out, new_user) = inner.write(|tx| {
            let Some(mut before) = select_record(tx, old)? else {
                return Ok((None, false));
            };
            inner.uses.merge(&mut before);
            let user = standing_user(&new).map(str::to_owned);
            let known = match &user {
                Some(u) => user_in(tx, &new.account, u)?,
                None => None,
            };
            let standing = user.as_ref().map(|_| known.unwrap_or(if_unknown));
            let mut after = before.clone();
            let audit = match decide(&mut after, standing.as_ref()) {
                Edit::Keep => return Ok((Some(before), false)),
                Edit::Write(audit) => audit,
            };
            rewrite(tx, &before, &after)?;
            insert_in(tx, &new)?;
            let new_user = match (&user, known, standing) {
                (Some(u), None, Some(state)) => {
                    set_user_in(tx, &new.account, u, state)?;
                    true
                }
                _ => false,
            };
            write_some(tx, audit.as_deref())?;
            Ok((Some(after), new_user))
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
        lock(&self.inner.successors).push((predecessor, at));
        Ok(())
    }

    fn keeps_audit(&self) -> bool {
        true
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.write(|tx| audit::write_audit(tx, event))
    }

    fn audit_records(&self, window: &AuditWindow) -> Result<AuditPage, StoreError> {
        audit::page(&*self.inner.reader()?, window)
    }

    fn prune_audit(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.write(|tx| audit::prune(tx, before))
    }

    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        audit: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        // One BEGIN IMMEDIATE transaction: no other writer, in this process or
        // another, runs between reading the standing and inserting.
        let (outcome, new_user) = self.inner.write(|tx| {
            let known = user_in(tx, &record.account, user)?;
            let state = known.unwrap_or(if_unknown);
            if !admit(&state) {
                return Ok((UserInsert::Refused(state), false));
            }
            if known.is_none() {
                set_user_in(tx, &record.account, user, state)?;
            }
            insert_in(tx, &record)?;
            write_some(tx, audit)?;
            Ok((UserInsert::Inserted(state), known.is_none()))
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
        let out = inner.write(|tx| {
            let rows = inner.offboard(tx, account, user, disabled)?;
            write_some(tx, audit)?;
            Ok(rows)
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
        // One BEGIN IMMEDIATE transaction: no other writer, in this process
        // or another, runs between reading the standings and the removal.
        let out = inner.write(|tx| {
            let audit = match decide(&standings_in(tx, account, actor, user)?) {
                Edit::Keep => return Ok(None),
                Edit::Write(audit) => audit,
            };
            let rows = inner.offboard(tx, account, user, disabled)?;
            write_some(tx, audit.as_deref())?;
            Ok(Some(rows))
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
        self.inner.read_record(
            "SELECT record, last_used_at, last_used_from FROM apikeys_keys WHERE id = ?1",
            [id_value(id)],
        )
    }

    fn list(&self, account: &str, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.inner.reader()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT record, last_used_at, last_used_from FROM apikeys_keys
                 WHERE account = ?1
                   AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR owner = ?3)",
            )
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(
                params![
                    account,
                    filter.kind.map(|k| k.as_str()),
                    filter.owner.as_deref()
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for row in rows {
            let (json, used, place) = row.map_err(unavailable)?;
            let mut r = rows::decode_record(SQLITE, &json, used)?;
            r.last_used_from = rows::decode_place(place.as_deref());
            self.inner.uses.merge(&mut r);
            out.push(r);
        }
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    fn update_audited(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let inner = &self.inner;
        let (updated, written) = inner.write(|tx| {
            let Some(mut before) = select_record(tx, id)? else {
                return Ok((None, false));
            };
            inner.uses.merge(&mut before);
            let mut after = before.clone();
            let audit = match change(&mut after) {
                Edit::Keep => return Ok((Some(before), false)),
                Edit::Write(audit) => audit,
            };
            rewrite(tx, &before, &after)?;
            write_some(tx, audit.as_deref())?;
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
        let (found, deleted) = inner.write(|tx| {
            let Some(mut r) = select_record(tx, id)? else {
                return Ok((None, false));
            };
            inner.uses.merge(&mut r);
            // The owner's standing, read under the same write lock.
            let owner = match (&r.owner, r.kind) {
                (Some(o), KeyKind::UserToken) => user_in(tx, &r.account, o)?,
                _ => None,
            };
            let audit = match check(&r, owner.as_ref()) {
                Edit::Keep => return Ok((Some(r), false)),
                Edit::Write(audit) => audit,
            };
            tx.execute("DELETE FROM apikeys_keys WHERE id = ?1", [id_value(id)])
                .map_err(unavailable)?;
            write_some(tx, audit.as_deref())?;
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
        account_in(&*self.inner.reader()?, account)
    }

    fn set_account_settings_audited(
        &self,
        account: &str,
        settings: AccountSettings,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx| {
            set_account_in(tx, account, settings)?;
            write_some(tx, audit)
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
        // One BEGIN IMMEDIATE transaction: the actor's standing and the
        // settings read are those the write replaces.
        let written = self.inner.write(|tx| {
            let mine = match actor {
                Some(a) => user_in(tx, account, a)?,
                None => None,
            };
            let before = account_in(tx, account)?;
            let audit = match decide(mine.as_ref(), &before) {
                Edit::Keep => return Ok(false),
                Edit::Write(audit) => audit,
            };
            set_account_in(tx, account, settings)?;
            write_some(tx, audit.as_deref())?;
            Ok(true)
        })?;
        if written {
            self.inner.cache.clear();
        }
        Ok(written)
    }

    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
        user_in(&*self.inner.reader()?, account, user)
    }

    fn flush_writes(&self) -> Result<usize, StoreError> {
        SqliteStore::flush(self)
    }

    fn set_user_audited(
        &self,
        account: &str,
        user: &str,
        state: UserState,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.write(|tx| {
            set_user_in(tx, account, user, state)?;
            write_some(tx, audit)
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
        // One BEGIN IMMEDIATE transaction: no other writer, in this process
        // or another, runs between reading the standings and the write.
        let written = self.inner.write(|tx| {
            let audit = match decide(&standings_in(tx, account, actor, user)?) {
                Edit::Keep => return Ok(false),
                Edit::Write(audit) => audit,
            };
            set_user_in(tx, account, user, state)?;
            write_some(tx, audit.as_deref())?;
            Ok(true)
        })?;
        if written {
            self.inner.cache.clear();
        }
        Ok(written)
    }
}
