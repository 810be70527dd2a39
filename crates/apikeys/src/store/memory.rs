//! [`MemoryStore`]: the default store, in process memory.

use arcstr::ArcStr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use hashbrown::{HashMap, HashTable};

use super::{
    CachedLookup, Edit, KeyFilter, KeyLookup, KeyStore, LookupRef, Standings, UserInsert,
    check_immutable, removed_state, standing_user,
};
use crate::audit::AuditEvent;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::record::{Disabled, KeyId, KeyRecord, Timestamp};
use crate::role::{AccountSettings, Role, UserState};

/// Number of independently locked shards; records are spread over them by digest.
const SHARDS: usize = 16;

/// Keys, settings and users in process memory: the default store.
///
/// - Records are indexed by digest. The digest is already uniform, so its first
///   eight bytes are the table's hash: no second hash is computed.
/// - Records are spread over 16 shards by digest, each behind its own
///   [`ShardedLock`]: a read-write lock whose readers each take the read
///   side of one of eight sub-locks, picked by thread, each on cache lines
///   of its own; a writer takes all eight. So a lookup writes only a lock
///   word its own thread uses: two threads reading one key (or one shard)
///   pass no cache line back and forth, and a write that has returned is
///   seen by every later lookup, as with one lock (docs/design.md §6).
///   Inserts take one extra mutex (to keep ids unique across shards);
///   lookups never do.
/// - The hot path reads a record in place, under the read guard
///   ([`KeyStore::find_by_digest_with`]): no reference count is written
///   unless the caller keeps the record.
/// - Account settings and user states live in small shared cells that each
///   record points at, so the hot path reads them without another table lookup.
/// - Account, owner and creator names are interned: a million keys of one
///   account share one copy of its name.
/// - Lookups by id (management calls, not the hot path) visit the shards in turn.
///
/// Nothing survives the process: use a durable store for that.
pub struct MemoryStore {
    shards: Box<[ShardedLock<Shard>]>,
    insert_lock: Mutex<()>,
    accounts: RwLock<HashMap<ArcStr, Arc<AccountCell>>>,
    /// Where keys were last used from, for the few callers that say: kept
    /// beside the records (a slot stays small), written at most once a
    /// minute per key, read by management calls only.
    places: Mutex<HashMap<KeyId, Box<crate::record::UsePlace>>>,
}

struct AccountCell {
    name: ArcStr,
    settings: AtomicU8,
    users: RwLock<HashMap<ArcStr, Arc<UserCell>>>,
    /// Held by every write of a user's standing and by every insert that
    /// depends on it, so "read the standing, then insert" and "mark removed,
    /// then disable their keys" never interleave (docs/design.md, "Invariants").
    standing: Mutex<()>,
}

const REST_API: u8 = 1;
const ADVANCED: u8 = 2;

impl AccountCell {
    #[inline]
    fn settings(&self) -> AccountSettings {
        let b = self.settings.load(Ordering::Acquire);
        AccountSettings {
            rest_api: b & REST_API != 0,
            advanced_permissions: b & ADVANCED != 0,
        }
    }

    /// The stored state of `user`, without making a cell for an unknown one.
    fn known(&self, user: &str) -> Option<UserState> {
        read(&self.users).get(user).and_then(|c| c.state())
    }

    /// The standings of `actor` and `user`, read with `standing` held.
    fn standings(&self, actor: Option<&str>, user: &str) -> Standings {
        Standings {
            actor: actor.and_then(|a| self.known(a)),
            subject: self.known(user),
        }
    }

    fn store_settings(&self, settings: AccountSettings) {
        let bits = if settings.rest_api { REST_API } else { 0 }
            | if settings.advanced_permissions {
                ADVANCED
            } else {
                0
            };
        self.settings.store(bits, Ordering::Release);
    }

    fn user_cell(&self, user: &str) -> Arc<UserCell> {
        if let Some(c) = read(&self.users).get(user) {
            return c.clone();
        }
        let mut users = write(&self.users);
        if let Some(c) = users.get(user) {
            return c.clone();
        }
        let name: ArcStr = user.into();
        let cell = Arc::new(UserCell {
            name: name.clone(),
            state: AtomicU8::new(0),
        });
        users.insert(name, cell.clone());
        cell
    }
}

/// 0 = unknown; otherwise `1 + role`, with bit 7 set when the user was removed.
struct UserCell {
    name: ArcStr,
    state: AtomicU8,
}

const REMOVED: u8 = 0x80;

impl UserCell {
    #[inline]
    fn state(&self) -> Option<UserState> {
        let b = self.state.load(Ordering::Acquire);
        if b == 0 {
            return None;
        }
        let role = Role::from_u8((b & !REMOVED) - 1)?;
        Some(UserState {
            role,
            removed: b & REMOVED != 0,
        })
    }

    fn set(&self, s: UserState) {
        let b = (1 + s.role as u8) | if s.removed { REMOVED } else { 0 };
        self.state.store(b, Ordering::Release);
    }
}

struct Slot {
    record: Arc<KeyRecord>,
    /// Milliseconds since the epoch of the last use; 0 for never.
    last_used: AtomicU64,
    account: Arc<AccountCell>,
    owner: Option<Arc<UserCell>>,
}

impl Slot {
    #[inline]
    fn last_used(&self) -> Option<Timestamp> {
        match self.last_used.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Timestamp::from_unix_millis(ms)),
        }
    }

    fn snapshot(&self) -> KeyRecord {
        let mut r = (*self.record).clone();
        r.last_used_at = self.last_used().max(r.last_used_at);
        r
    }
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_digest: HashTable<u32>,
    by_id: HashTable<u32>,
}

#[inline(always)]
fn slot(slots: &[Option<Slot>], i: u32) -> &Slot {
    // Indexes in the tables always point at occupied slots.
    slots[i as usize]
        .as_ref()
        .expect("index points at an occupied slot")
}

impl Shard {
    #[inline(always)]
    fn find_digest(&self, d: &Digest) -> Option<u32> {
        self.by_digest
            .find(d.prefix64(), |&i| slot(&self.slots, i).record.digest == *d)
            .copied()
    }

    fn find_id(&self, id: KeyId) -> Option<u32> {
        self.by_id
            .find(id.as_u64(), |&i| slot(&self.slots, i).record.id == id)
            .copied()
    }

    fn insert(&mut self, s: Slot) {
        let (digest, id) = (s.record.digest, s.record.id);
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(s);
                i
            }
            None => {
                self.slots.push(Some(s));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.by_digest.insert_unique(digest.prefix64(), idx, |&i| {
            slot(slots, i).record.digest.prefix64()
        });
        self.by_id
            .insert_unique(id.as_u64(), idx, |&i| slot(slots, i).record.id.as_u64());
    }

    fn remove(&mut self, idx: u32) -> Option<Slot> {
        let s = self.slots.get_mut(idx as usize)?.take()?;
        if let Ok(e) = self
            .by_digest
            .find_entry(s.record.digest.prefix64(), |&i| i == idx)
        {
            e.remove();
        }
        if let Ok(e) = self.by_id.find_entry(s.record.id.as_u64(), |&i| i == idx) {
            e.remove();
        }
        self.free.push(idx);
        Some(s)
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[inline(always)]
fn read_shard(l: &ShardedLock<Shard>) -> ShardedLockReadGuard<'_, Shard> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_shard(l: &ShardedLock<Shard>) -> ShardedLockWriteGuard<'_, Shard> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| ShardedLock::new(Shard::default()))
                .collect(),
            insert_lock: Mutex::new(()),
            accounts: RwLock::new(HashMap::new()),
            places: Mutex::new(HashMap::new()),
        }
    }

    /// Fill in where the key was last used from, if known.
    fn merge_place(&self, r: &mut KeyRecord) {
        if let Some(p) = self
            .places
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&r.id)
        {
            r.last_used_from = Some(p.clone());
        }
    }

    /// How many records are stored.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read_shard(s).by_id.len()).sum()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reserve room for `additional` more records, spread evenly over the shards.
    pub fn reserve(&self, additional: usize) {
        let per = additional.div_ceil(SHARDS);
        for s in self.shards.iter() {
            let mut g = write_shard(s);
            let sh = &mut *g;
            sh.slots.reserve(per);
            let slots = &sh.slots;
            sh.by_digest
                .reserve(per, |&i| slot(slots, i).record.digest.prefix64());
            sh.by_id
                .reserve(per, |&i| slot(slots, i).record.id.as_u64());
        }
    }

    #[inline(always)]
    fn shard_for(&self, d: &Digest) -> &ShardedLock<Shard> {
        &self.shards[d.as_bytes()[31] as usize % SHARDS]
    }

    /// The shard holding `id`, found by visiting each in turn under its read lock.
    /// Records never move between shards, so the answer stays right until a delete.
    fn shard_with_id(&self, id: KeyId) -> Option<&ShardedLock<Shard>> {
        self.shards
            .iter()
            .find(|s| read_shard(s).find_id(id).is_some())
    }

    fn account_cell(&self, account: &str) -> Arc<AccountCell> {
        if let Some(c) = read(&self.accounts).get(account) {
            return c.clone();
        }
        let mut accounts = write(&self.accounts);
        if let Some(c) = accounts.get(account) {
            return c.clone();
        }
        let name: ArcStr = account.into();
        let cell = Arc::new(AccountCell {
            name: name.clone(),
            settings: AtomicU8::new(REST_API | ADVANCED),
            users: RwLock::new(HashMap::new()),
            standing: Mutex::new(()),
        });
        accounts.insert(name, cell.clone());
        cell
    }

    fn existing_account(&self, account: &str) -> Option<Arc<AccountCell>> {
        read(&self.accounts).get(account).cloned()
    }

    /// The hot path: `f` reads the slot of `digest` in place, under the
    /// shard's read guard (which writes only this thread's own lock word).
    #[inline(always)]
    fn lookup_with<R>(&self, digest: &Digest, f: impl FnOnce(Option<LookupRef<'_>>) -> R) -> R {
        let g = read_shard(self.shard_for(digest));
        f(g.find_digest(digest).map(|i| {
            let s = slot(&g.slots, i);
            LookupRef {
                record: &s.record,
                last_used_at: s.last_used(),
                account: s.account.settings(),
                owner: s.owner.as_ref().and_then(|o| o.state()),
            }
        }))
    }

    #[inline]
    fn lookup(&self, digest: &Digest) -> Option<KeyLookup> {
        self.lookup_with(digest, |found| found.map(|f| f.to_lookup()))
    }
}

impl MemoryStore {
    /// Insert `record` into `account` (whose cell the caller found).
    fn insert_into(
        &self,
        account: Arc<AccountCell>,
        mut record: KeyRecord,
    ) -> Result<(), StoreError> {
        let _serial = self
            .insert_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.shard_with_id(record.id).is_some() {
            return Err(StoreError::Duplicate { field: "id" });
        }
        let shard = self.shard_for(&record.digest);
        let mut g = write_shard(shard);
        if g.find_digest(&record.digest).is_some() {
            return Err(StoreError::Duplicate { field: "digest" });
        }
        record.account = account.name.clone();
        if let Some(o) = record.owner.as_deref() {
            record.owner = Some(account.user_cell(o).name.clone());
        }
        record.created_by = account.user_cell(&record.created_by).name.clone();
        // The cell whose state the hot path joins in: the owner of a user
        // token, the maker of a scoped token.
        let owner = standing_user(&record).map(|u| account.user_cell(u));
        let last_used = record.last_used_at.take().map_or(0, Timestamp::unix_millis);
        g.insert(Slot {
            record: Arc::new(record),
            last_used: AtomicU64::new(last_used),
            account,
            owner,
        });
        Ok(())
    }
}

impl MemoryStore {
    /// [`KeyStore::remove_user`]'s work, with the account's `standing` held.
    fn offboard(&self, cell: &Arc<AccountCell>, user: &str, disabled: &Disabled) -> Vec<KeyRecord> {
        let user_cell = cell.user_cell(user);
        user_cell.set(removed_state(user_cell.state()));
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut g = write_shard(shard);
            for s in g.slots.iter_mut().flatten() {
                if !Arc::ptr_eq(&s.account, cell)
                    || s.record.disabled.is_some()
                    || standing_user(&s.record) != Some(user)
                {
                    continue;
                }
                let mut stored = (*s.record).clone();
                stored.disabled = Some(Box::new(disabled.clone()));
                s.record = Arc::new(stored);
                out.push(s.snapshot());
            }
        }
        out.sort_by_key(|r| (r.created_at, r.id));
        out
    }
}

impl KeyStore for MemoryStore {
    /// The audit record is the keyring's sink's to keep: this store keeps no trail.
    fn insert_audited(
        &self,
        record: KeyRecord,
        _audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let account = self.account_cell(&record.account);
        self.insert_into(account, record)
    }

    fn rotate(
        &self,
        old: KeyId,
        new: KeyRecord,
        if_unknown: UserState,
        decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let Some(current) = self.get(old)? else {
            return Ok(None);
        };
        let account = self.account_cell(&current.account);
        // Rotations, removals and standing-dependent inserts of the account
        // take turns: the standing `decide` sees holds until the new key is in.
        let _standing = account
            .standing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let standing_cell = standing_user(&new).map(|u| account.user_cell(u));
        let known = standing_cell.as_ref().and_then(|c| c.state());
        let standing = standing_cell.as_ref().map(|_| known.unwrap_or(if_unknown));
        let Some(shard) = self.shard_with_id(old) else {
            return Ok(None);
        };
        let (before, after) = {
            let mut g = write_shard(shard);
            let Some(i) = g.find_id(old) else {
                return Ok(None);
            };
            let Some(s) = g.slots[i as usize].as_mut() else {
                return Ok(None);
            };
            let before = s.snapshot();
            let mut after = before.clone();
            if decide(&mut after, standing.as_ref()) == Edit::Keep {
                return Ok(Some(before));
            }
            check_immutable(&before, &after)?;
            // The old key says where it goes before the new key exists; it
            // keeps working meanwhile, so nothing is refused in between.
            let mut stored = after.clone();
            stored.account = s.record.account.clone();
            stored.owner = s.record.owner.clone();
            stored.last_used_at = None;
            s.record = Arc::new(stored);
            (before, after)
        };
        if let Err(e) = self.insert_into(account.clone(), new) {
            // Put the old key's rotation back as it was (the rest of the
            // record may have changed meanwhile and stays).
            let back = before.rotation.clone();
            self.update_audited(old, &mut |r| {
                r.rotation = back.clone();
                Edit::Write(None)
            })?;
            return Err(e);
        }
        if let (Some(cell), None, Some(state)) = (&standing_cell, known, standing) {
            cell.set(state);
        }
        Ok(Some(after))
    }

    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        _audit: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        let account = self.account_cell(&record.account);
        let _standing = account
            .standing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cell = account.user_cell(user);
        let known = cell.state();
        let state = known.unwrap_or(if_unknown);
        if !admit(&state) {
            return Ok(UserInsert::Refused(state));
        }
        self.insert_into(account.clone(), record)?;
        if known.is_none() {
            cell.set(state);
        }
        Ok(UserInsert::Inserted(state))
    }

    fn remove_user(
        &self,
        account: &str,
        user: &str,
        disabled: &Disabled,
        _audit: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let cell = self.account_cell(account);
        let _standing = cell.standing.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(self.offboard(&cell, user, disabled))
    }

    fn remove_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        disabled: &Disabled,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        let cell = self.account_cell(account);
        // Both standings hold still until the removal is done.
        let _standing = cell.standing.lock().unwrap_or_else(PoisonError::into_inner);
        if decide(&cell.standings(actor, user)) == Edit::Keep {
            return Ok(None);
        }
        Ok(Some(self.offboard(&cell, user, disabled)))
    }

    #[inline]
    fn find_by_digest(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        Ok(self.lookup(digest))
    }

    /// Read in place under the shard's read guard: no reference count written.
    #[inline]
    fn find_by_digest_with(
        &self,
        digest: &Digest,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        self.lookup_with(digest, f);
        Ok(())
    }

    /// Always answers (`true`), as [`MemoryStore::find_by_digest_with`].
    #[inline]
    fn find_cached_with(&self, digest: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        self.lookup_with(digest, f);
        true
    }

    /// Never: everything is in memory.
    fn may_block(&self) -> bool {
        false
    }

    /// Always [`CachedLookup::Known`]: everything is in memory.
    fn find_cached(&self, digest: &Digest) -> CachedLookup {
        CachedLookup::Known(self.lookup(digest))
    }

    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        for s in self.shards.iter() {
            let g = read_shard(s);
            if let Some(i) = g.find_id(id) {
                let mut r = slot(&g.slots, i).snapshot();
                drop(g);
                self.merge_place(&mut r);
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn record_use_from(
        &self,
        id: KeyId,
        at: Timestamp,
        place: &crate::record::UsePlace,
    ) -> Result<(), StoreError> {
        self.record_use(id, at)?;
        if self.shard_with_id(id).is_some() {
            self.places
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, Box::new(place.clone()));
        }
        Ok(())
    }

    fn list(&self, account: &str, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            let g = read_shard(s);
            out.extend(
                g.slots
                    .iter()
                    .flatten()
                    .filter(|s| &*s.record.account == account && filter.matches(&s.record))
                    .map(Slot::snapshot),
            );
        }
        out.sort_by_key(|r| (r.created_at, r.id));
        for r in &mut out {
            self.merge_place(r);
        }
        Ok(out)
    }

    fn update_audited(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let Some(shard) = self.shard_with_id(id) else {
            return Ok(None);
        };
        let mut g = write_shard(shard);
        let Some(i) = g.find_id(id) else {
            // Deleted between the two looks.
            return Ok(None);
        };
        let Some(s) = g.slots[i as usize].as_mut() else {
            return Ok(None);
        };
        let before = s.snapshot();
        let mut after = before.clone();
        if change(&mut after) == Edit::Keep {
            return Ok(Some(before));
        }
        check_immutable(&before, &after)?;
        if let Some(t) = after.last_used_at {
            s.last_used.fetch_max(t.unix_millis(), Ordering::Relaxed);
        }
        let mut stored = after.clone();
        stored.account = s.record.account.clone();
        stored.owner = s.record.owner.clone();
        stored.last_used_at = None;
        s.record = Arc::new(stored);
        Ok(Some(after))
    }

    fn delete_audited(
        &self,
        id: KeyId,
        check: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let Some(found) = self.get(id)? else {
            return Ok(None);
        };
        // The owner's standing holds still until the delete is done.
        let account = self.account_cell(&found.account);
        let _standing = account
            .standing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let owner = match (&found.owner, found.kind) {
            (Some(o), crate::key::KeyKind::UserToken) => account.user_cell(o).state(),
            _ => None,
        };
        let Some(shard) = self.shard_with_id(id) else {
            return Ok(None);
        };
        let mut g = write_shard(shard);
        let Some(i) = g.find_id(id) else {
            return Ok(None);
        };
        let current = slot(&g.slots, i).snapshot();
        if check(&current, owner.as_ref()) == Edit::Keep {
            return Ok(Some(current));
        }
        self.places
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        Ok(g.remove(i).map(|s| s.snapshot()))
    }

    fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError> {
        for s in self.shards.iter() {
            let g = read_shard(s);
            if let Some(i) = g.find_id(id) {
                slot(&g.slots, i)
                    .last_used
                    .fetch_max(at.unix_millis(), Ordering::Relaxed);
                break;
            }
        }
        Ok(())
    }

    fn account_settings(&self, account: &str) -> Result<AccountSettings, StoreError> {
        Ok(self
            .existing_account(account)
            .map(|c| c.settings())
            .unwrap_or_default())
    }

    fn set_account_settings_audited(
        &self,
        account: &str,
        settings: AccountSettings,
        _audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let cell = self.account_cell(account);
        // Taken so that a decided change's read of the settings holds.
        let _standing = cell.standing.lock().unwrap_or_else(PoisonError::into_inner);
        cell.store_settings(settings);
        Ok(())
    }

    fn set_account_settings_as(
        &self,
        account: &str,
        actor: Option<&str>,
        settings: AccountSettings,
        decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError> {
        let cell = self.account_cell(account);
        // The actor's standing and the settings hold still until the write.
        let _standing = cell.standing.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = actor.and_then(|a| cell.known(a));
        if decide(mine.as_ref(), &cell.settings()) == Edit::Keep {
            return Ok(false);
        }
        cell.store_settings(settings);
        Ok(true)
    }

    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
        Ok(self
            .existing_account(account)
            .and_then(|a| read(&a.users).get(user).cloned())
            .and_then(|u| u.state()))
    }

    fn set_user_audited(
        &self,
        account: &str,
        user: &str,
        state: UserState,
        _audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let cell = self.account_cell(account);
        let _standing = cell.standing.lock().unwrap_or_else(PoisonError::into_inner);
        cell.user_cell(user).set(state);
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
        let cell = self.account_cell(account);
        // Both standings hold still until the write.
        let _standing = cell.standing.lock().unwrap_or_else(PoisonError::into_inner);
        if decide(&cell.standings(actor, user)) == Edit::Keep {
            return Ok(false);
        }
        cell.user_cell(user).set(state);
        Ok(true)
    }
}
