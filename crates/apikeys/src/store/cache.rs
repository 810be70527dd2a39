//! Building blocks for a durable store: a cache of hot-path lookups, a queue
//! of last uses, and a way to stop background threads.
//!
//! A store that keeps its records in a database answers
//! [`KeyStore::find_by_digest`] from a [`LookupCache`] once a key has been
//! seen, queues [`KeyStore::record_use`] in a [`UseQueue`] that a background
//! thread writes out now and then, and stops that thread with a [`Stopper`].
//! `apikeys-sqlite` and `apikeys-postgres` are both built this way.
//!
//! ## The cache's rules
//! The cache maps a digest to what [`KeyStore::find_by_digest`] answered for it.
//! It only ever holds answers read from the database, and the store must empty
//! it (or drop the one digest) on every write that could change an answer:
//!
//! - writes through the same store drop what they touch right after they
//!   commit ([`LookupCache::invalidate`], or [`LookupCache::clear`] for an
//!   account or user change);
//! - writes by other processes are reported by the store's change feed
//!   (PostgreSQL LISTEN/NOTIFY, SQLite's `data_version`), which drops them too;
//! - while the change feed is down, the store turns the cache off
//!   ([`LookupCache::set_enabled`]): every lookup then reads the database.
//!
//! A lookup that missed reads the database and then fills the cache, but only
//! if no invalidation happened since the lookup began (a generation counter,
//! checked under the shard's lock): so a reader that raced a write never puts
//! the old answer back. [`LookupCache::get_or_fetch`] follows that protocol.
//!
//! Misses are not cached: a key that does not exist costs a database read each time.
//!
//! ```
//! use apikeys::store::cache::LookupCache;
//! use apikeys::{KeyLookup, StoreError};
//! # use apikeys::Digest;
//! # fn read_database(_: &Digest) -> Result<Option<KeyLookup>, StoreError> { Ok(None) }
//! # let digest = apikeys::KeyHasher::sha256().digest(b"a key");
//!
//! let cache = LookupCache::new(100_000);
//! cache.set_enabled(true); // once the change feed is listening
//! // In `find_by_digest`:
//! let found = cache.get_or_fetch(&digest, read_database)?;
//! # assert!(found.is_none());
//! # Ok::<(), StoreError>(())
//! ```
//!
//! [`KeyStore::find_by_digest`]: crate::KeyStore::find_by_digest
//! [`KeyStore::record_use`]: crate::KeyStore::record_use

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

use super::{CachedLookup, KeyLookup, LookupRef};
use crate::digest::Digest;
use crate::error::StoreError;
use crate::record::{KeyId, KeyRecord, Timestamp, UsePlace};

const SHARDS: usize = 16;

/// A hasher for keys that are already uniform: digests hash as their first
/// eight bytes, key ids as their 64 random bits.
#[derive(Default)]
struct PassHasher(u64);

impl Hasher for PassHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type PassMap<K, V> = HashMap<K, V, BuildHasherDefault<PassHasher>>;

struct Entry {
    lookup: KeyLookup,
    /// Milliseconds since the epoch of the last use; 0 for never.
    last_used: AtomicU64,
}

#[inline]
fn read<T>(l: &ShardedLock<T>) -> ShardedLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &ShardedLock<T>) -> ShardedLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers of [`KeyStore::find_by_digest`] kept in process memory, by digest.
///
/// Sixteen shards, each behind its own [`ShardedLock`] (a read-write lock
/// whose readers write only a lock word of their own thread's, on cache
/// lines of its own: readers on two cores pass no line back and forth). A
/// hit costs one read lock and either a clone of the [`KeyLookup`]
/// ([`LookupCache::get`]; the record itself is shared, its `Arc` count
/// written) or nothing more ([`LookupCache::cached_with`], which lends the
/// entry in place). When a
/// shard is full, it is emptied before the next entry goes in. Off until
/// [`LookupCache::set_enabled`]. See the [module documentation](self) for the
/// rules a store must follow so that the cache never answers with a stale record.
///
/// [`KeyStore::find_by_digest`]: crate::KeyStore::find_by_digest
pub struct LookupCache {
    shards: Box<[ShardedLock<PassMap<Digest, Entry>>]>,
    /// Which digest holds each cached id (for `note_use`); may hold stale pairs.
    ids: Mutex<PassMap<u64, Digest>>,
    generation: AtomicU64,
    enabled: AtomicBool,
    capacity_per_shard: usize,
}

impl LookupCache {
    /// An empty cache holding at most about `capacity` entries (at least one
    /// per shard), off until [`LookupCache::set_enabled`].
    pub fn new(capacity: usize) -> LookupCache {
        LookupCache {
            shards: (0..SHARDS)
                .map(|_| ShardedLock::new(PassMap::default()))
                .collect(),
            ids: Mutex::new(PassMap::default()),
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(false),
            capacity_per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    #[inline]
    fn shard(&self, d: &Digest) -> &ShardedLock<PassMap<Digest, Entry>> {
        &self.shards[d.as_bytes()[31] as usize % SHARDS]
    }

    /// What a durable store's [`KeyStore::find_cached`](super::KeyStore::find_cached)
    /// answers from this cache alone: [`CachedLookup::Known`] on a hit,
    /// [`CachedLookup::WouldBlock`] on a miss (misses are never cached, so a
    /// miss says nothing about the database) or while the cache is off.
    #[inline]
    pub fn cached(&self, d: &Digest) -> CachedLookup {
        match self.get(d) {
            Some(hit) => CachedLookup::Known(Some(hit)),
            None => CachedLookup::WouldBlock,
        }
    }

    /// [`LookupCache::cached`], the answer lent to `f` in place (no reference
    /// count written): `true` after calling `f` once with the hit, `false`
    /// (without calling `f`) on a miss or while the cache is off. What a
    /// durable store's
    /// [`KeyStore::find_cached_with`](super::KeyStore::find_cached_with)
    /// answers. `f` runs under the shard's read guard: it must not call the
    /// cache or the store.
    #[inline(always)]
    pub fn cached_with(&self, d: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        if !self.enabled.load(Ordering::Acquire) {
            return false;
        }
        let g = read(self.shard(d));
        let Some(e) = g.get(d) else {
            return false;
        };
        let mut found = e.lookup.view();
        found.last_used_at = match e.last_used.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Timestamp::from_unix_millis(ms)),
        };
        f(Some(found));
        true
    }

    /// [`LookupCache::get_or_fetch`], the answer lent to `f` (called exactly
    /// once when the answer is `Ok`): a hit is lent in place, under the
    /// shard's read guard; a miss reads with `fetch`, fills as
    /// `get_or_fetch` does, and lends what it read. What a durable store's
    /// [`KeyStore::find_by_digest_with`](super::KeyStore::find_by_digest_with)
    /// answers.
    #[inline]
    pub fn get_or_fetch_with(
        &self,
        d: &Digest,
        fetch: impl FnOnce(&Digest) -> Result<Option<KeyLookup>, StoreError>,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        if self.cached_with(d, f) {
            return Ok(());
        }
        let ticket = self.ticket();
        let found = fetch(d)?;
        if let (Some(t), Some(found)) = (ticket, &found) {
            self.fill(t, found);
        }
        f(found.as_ref().map(KeyLookup::view));
        Ok(())
    }

    /// The cached answer for `d`, if the cache is on and holds one. Its
    /// `last_used_at` is the latest of the one read and those noted since
    /// ([`LookupCache::note_use`]).
    // `always`: otherwise the compiler, seeing a function of another crate, may
    // keep it out of line in a store's `find_by_digest` (measured: one more
    // call on every warm `authenticate`).
    #[inline(always)]
    pub fn get(&self, d: &Digest) -> Option<KeyLookup> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let g = read(self.shard(d));
        let e = g.get(d)?;
        let mut lookup = e.lookup.clone();
        lookup.last_used_at = match e.last_used.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Timestamp::from_unix_millis(ms)),
        };
        Some(lookup)
    }

    /// The whole hot path of a cached store: the cached answer for `d`, or
    /// else what `fetch` reads from the database, kept for next time unless
    /// anything was invalidated while `fetch` ran. Errors of `fetch` are
    /// returned as they are, and nothing is cached for a miss.
    #[inline]
    pub fn get_or_fetch(
        &self,
        d: &Digest,
        fetch: impl FnOnce(&Digest) -> Result<Option<KeyLookup>, StoreError>,
    ) -> Result<Option<KeyLookup>, StoreError> {
        if let Some(hit) = self.get(d) {
            return Ok(Some(hit));
        }
        let ticket = self.ticket();
        let found = fetch(d)?;
        if let (Some(t), Some(f)) = (ticket, &found) {
            self.fill(t, f);
        }
        Ok(found)
    }

    /// Take this before reading the database for [`LookupCache::fill`]:
    /// `None` while the cache is off (then there is nothing to fill).
    #[inline]
    pub fn ticket(&self) -> Option<u64> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        Some(self.generation.load(Ordering::Acquire))
    }

    /// Keep `lookup` (read from the database after `ticket` was taken from
    /// [`LookupCache::ticket`]), unless anything was invalidated in between or
    /// the cache was turned off.
    pub fn fill(&self, ticket: u64, lookup: &KeyLookup) {
        let digest = lookup.record.digest;
        {
            let mut g = write(self.shard(&digest));
            if !self.enabled.load(Ordering::Acquire)
                || self.generation.load(Ordering::Acquire) != ticket
            {
                // Something was written since this read began: what is
                // cached for the digest may be older than what another
                // reader has already answered. Drop it; the next lookup reads.
                g.remove(&digest);
                return;
            }
            if g.len() >= self.capacity_per_shard && !g.contains_key(&digest) {
                g.clear();
            }
            g.insert(
                digest,
                Entry {
                    lookup: lookup.clone(),
                    last_used: AtomicU64::new(lookup.last_used_at.map_or(0, |t| t.unix_millis())),
                },
            );
        }
        let mut ids = lock(&self.ids);
        if ids.len() >= self.capacity_per_shard * SHARDS {
            ids.clear();
        }
        ids.insert(lookup.record.id.as_u64(), digest);
    }

    /// Drop what is cached for `d` (and make lookups already under way not
    /// fill the cache with what they read).
    pub fn invalidate(&self, d: &Digest) {
        let mut g = write(self.shard(d));
        self.generation.fetch_add(1, Ordering::AcqRel);
        g.remove(d);
    }

    /// Call before a write begins (and [`LookupCache::invalidate`] after it
    /// commits): a read that began before the write and fills the cache after
    /// it committed is refused, so no lookup sees a record older than one a
    /// racing lookup already read from the database.
    pub fn fence(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drop everything (and make lookups already under way not fill the cache).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for s in self.shards.iter() {
            write(s).clear();
        }
        lock(&self.ids).clear();
    }

    /// Turn the cache on (emptied first) or off (emptied too).
    pub fn set_enabled(&self, on: bool) {
        if on {
            self.clear();
            self.enabled.store(true, Ordering::Release);
        } else {
            self.enabled.store(false, Ordering::Release);
            self.clear();
        }
    }

    /// Whether the cache is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Note a use of key `id` in its cached entry, if any, so the hot path
    /// sees it at once (never moves the last use back).
    pub fn note_use(&self, id: KeyId, at: Timestamp) {
        let Some(d) = lock(&self.ids).get(&id.as_u64()).copied() else {
            return;
        };
        if let Some(e) = read(self.shard(&d)).get(&d) {
            if e.lookup.record.id == id {
                e.last_used.fetch_max(at.unix_millis(), Ordering::Relaxed);
            }
        }
    }

    /// How many answers are cached.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether no answer is cached.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| read(s).is_empty())
    }
}

impl fmt::Debug for LookupCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupCache")
            .field("enabled", &self.is_enabled())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Last uses waiting to be written, at most one (the latest) per key.
#[derive(Default)]
pub struct UseQueue {
    pending: Mutex<PassMap<u64, u64>>,
    /// Where the queued uses came from, for keys whose callers said.
    places: Mutex<PassMap<u64, Box<UsePlace>>>,
}

impl UseQueue {
    /// An empty queue.
    pub fn new() -> UseQueue {
        UseQueue::default()
    }

    /// Queue a use (keeps the latest per key).
    pub fn push(&self, id: KeyId, at: Timestamp) {
        let mut p = lock(&self.pending);
        let e = p.entry(id.as_u64()).or_insert(0);
        *e = (*e).max(at.unix_millis());
    }

    /// Queue a use from `place` (keeps the latest use and its place per key).
    pub fn push_from(&self, id: KeyId, at: Timestamp, place: &UsePlace) {
        self.push(id, at);
        lock(&self.places).insert(id.as_u64(), Box::new(place.clone()));
    }

    /// A durable store's [`KeyStore::record_use`](crate::KeyStore::record_use)
    /// and [`KeyStore::record_use_from`](crate::KeyStore::record_use_from)
    /// whole: queue the use (and its `place`, when the caller said) to be
    /// written on the next flush, and note it in `cache` so that the hot path
    /// sees it at once. No I/O, as [`KeyStore::find_cached`](crate::KeyStore::find_cached)
    /// asks of a store that answered from memory.
    pub fn record(&self, cache: &LookupCache, id: KeyId, at: Timestamp, place: Option<&UsePlace>) {
        match place {
            Some(place) => self.push_from(id, at, place),
            None => self.push(id, at),
        }
        cache.note_use(id, at);
    }

    /// The places queued since the last call, to write beside the last uses
    /// (give them back with [`UseQueue::requeue_places`] if that fails).
    pub fn take_places(&self) -> Vec<(KeyId, Box<UsePlace>)> {
        lock(&self.places)
            .drain()
            .map(|(id, p)| (KeyId::from_u64(id), p))
            .collect()
    }

    /// Put back places a failed write took; a place queued since wins.
    pub fn requeue_places(&self, places: Vec<(KeyId, Box<UsePlace>)>) {
        let mut q = lock(&self.places);
        for (id, p) in places {
            q.entry(id.as_u64()).or_insert(p);
        }
    }

    /// The queued use of `id`, if any.
    pub fn get(&self, id: KeyId) -> Option<Timestamp> {
        lock(&self.pending)
            .get(&id.as_u64())
            .map(|&ms| Timestamp::from_unix_millis(ms))
    }

    /// Forget the queued use of `id` (the key was deleted).
    pub fn forget(&self, id: KeyId) {
        lock(&self.pending).remove(&id.as_u64());
        lock(&self.places).remove(&id.as_u64());
    }

    /// Raise `r.last_used_at` to the queued use of `r.id`, if later: what a
    /// store does to every record it reads, so its callers see queued uses.
    pub fn merge(&self, r: &mut KeyRecord) {
        if let Some(t) = self.get(r.id) {
            r.last_used_at = r.last_used_at.max(Some(t));
        }
        if let Some(p) = lock(&self.places).get(&r.id.as_u64()) {
            r.last_used_from = Some(p.clone());
        }
    }

    /// How many keys have a use queued.
    pub fn len(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Whether no use is queued.
    pub fn is_empty(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    /// Write every queued use with `write`, and return how many there were
    /// (`write` is not called when there are none). If `write` fails, they
    /// stay queued (a later use of the same key, queued meanwhile, is kept
    /// if later) and its error is returned.
    pub fn flush(
        &self,
        write: impl FnOnce(&[(KeyId, Timestamp)]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let uses: Vec<(KeyId, Timestamp)> = lock(&self.pending)
            .drain()
            .map(|(id, ms)| (KeyId::from_u64(id), Timestamp::from_unix_millis(ms)))
            .collect();
        if uses.is_empty() {
            return Ok(0);
        }
        match write(&uses) {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                for &(id, at) in &uses {
                    self.push(id, at);
                }
                Err(e)
            }
        }
    }
}

impl fmt::Debug for UseQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UseQueue")
            .field("len", &self.len())
            .finish()
    }
}

/// Tells background threads to stop, and wakes them from their sleep.
#[derive(Debug, Default)]
pub struct Stopper {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stopper {
    /// A stopper not yet stopped.
    pub fn new() -> Stopper {
        Stopper::default()
    }

    /// Sleep for `d` or until stopped, whichever comes first; true once stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let g = lock(&self.stopped);
        if *g {
            return true;
        }
        let (g, _) = self
            .wake
            .wait_timeout(g, d)
            .unwrap_or_else(PoisonError::into_inner);
        *g
    }

    /// Ask every sleeper to stop (and wake those asleep now).
    pub fn stop(&self) {
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }

    /// Whether [`Stopper::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;

    use super::*;
    use crate::digest::KeyHasher;
    use crate::key::KeyKind;
    use crate::role::{AccountSettings, Role, UserState};
    use crate::store::record_for_tests;

    fn lookup(n: u64) -> KeyLookup {
        let digest = KeyHasher::sha256().digest(&n.to_le_bytes());
        lookup_with(n, digest)
    }

    fn lookup_with(id: u64, digest: Digest) -> KeyLookup {
        let record = record_for_tests(KeyId::from_u64(id), "acme", KeyKind::UserToken, digest);
        KeyLookup {
            record: Arc::new(record),
            last_used_at: None,
            account: AccountSettings::default(),
            owner: Some(UserState {
                role: Role::Observer,
                removed: false,
            }),
        }
    }

    fn on(capacity: usize) -> LookupCache {
        let c = LookupCache::new(capacity);
        c.set_enabled(true);
        c
    }

    fn fill(c: &LookupCache, l: &KeyLookup) {
        let t = c.ticket().expect("the cache is on");
        c.fill(t, l);
    }

    fn ms(n: u64) -> Timestamp {
        Timestamp::from_unix_millis(n)
    }

    #[test]
    fn a_new_cache_is_off_and_neither_answers_nor_fills() {
        let c = LookupCache::new(10);
        let l = lookup(1);
        assert!(!c.is_enabled());
        assert_eq!(c.ticket(), None, "no ticket while off");
        c.fill(0, &l); // generation 0, but off: ignored
        assert!(c.get(&l.record.digest).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn a_filled_answer_is_returned_whole() {
        let c = on(10);
        let l = lookup(1);
        fill(&c, &l);
        let got = c.get(&l.record.digest).expect("cached");
        assert!(Arc::ptr_eq(&got.record, &l.record), "the record is shared");
        assert_eq!(got.account, l.account);
        assert_eq!(got.owner, l.owner);
        assert_eq!(got.last_used_at, None);
        assert!(c.get(&lookup(2).record.digest).is_none(), "others miss");
        assert_eq!(c.len(), 1);
        assert!(!c.is_empty());
    }

    /// What `cached_with` lent, owned (and how many times it called back).
    fn lent(c: &LookupCache, d: &Digest) -> (bool, Vec<Option<KeyId>>) {
        let mut calls = Vec::new();
        let answered = c.cached_with(d, &mut |f| calls.push(f.map(|f| f.record.id)));
        (answered, calls)
    }

    #[test]
    fn cached_with_lends_a_hit_in_place_and_says_would_block_otherwise() {
        let c = LookupCache::new(10);
        let l = lookup(1);
        assert_eq!(
            lent(&c, &l.record.digest),
            (false, vec![]),
            "off: no answer"
        );
        c.set_enabled(true);
        assert!(!lent(&c, &l.record.digest).0, "a miss is no answer");
        fill(&c, &l);
        c.note_use(l.record.id, ms(7));
        let mut seen = 0;
        assert!(c.cached_with(&l.record.digest, &mut |f| {
            let f = f.expect("a hit");
            assert!(
                Arc::ptr_eq(f.record, &l.record),
                "lent in place, not cloned"
            );
            assert_eq!(f.last_used_at, Some(ms(7)), "the noted use is seen");
            assert_eq!((f.account, f.owner), (l.account, l.owner));
            seen += 1;
        }));
        assert_eq!(seen, 1, "called back exactly once");
        c.invalidate(&l.record.digest);
        assert_eq!(
            lent(&c, &l.record.digest),
            (false, vec![]),
            "gone once invalidated"
        );
    }

    #[test]
    fn get_or_fetch_with_lends_once_fills_on_a_miss_and_keeps_the_fence() {
        let c = on(10);
        let l = lookup(1);
        let d = l.record.digest;
        // A miss reads, lends what it read, and fills.
        let mut got = Vec::new();
        c.get_or_fetch_with(&d, |_| Ok(Some(l.clone())), &mut |f| {
            got.push(f.map(|f| f.record.id))
        })
        .unwrap();
        assert_eq!(got, vec![Some(l.record.id)]);
        assert!(c.get(&d).is_some(), "filled");
        // A hit never reads.
        let mut got = Vec::new();
        c.get_or_fetch_with(&d, |_| panic!("a hit must not read"), &mut |f| {
            got.push(f.map(|f| f.record.id))
        })
        .unwrap();
        assert_eq!(got, vec![Some(l.record.id)]);
        // A read raced by a write is lent but never kept.
        let m = lookup(2);
        let mut got = Vec::new();
        c.get_or_fetch_with(
            &m.record.digest,
            |_| {
                c.fence();
                Ok(Some(m.clone()))
            },
            &mut |f| got.push(f.map(|f| f.record.id)),
        )
        .unwrap();
        assert_eq!(got, vec![Some(m.record.id)]);
        assert!(
            c.get(&m.record.digest).is_none(),
            "the raced read stays out"
        );
        // Not found: lent as `None`, nothing cached; an error: not called.
        let n = lookup(3);
        let mut got = Vec::new();
        c.get_or_fetch_with(&n.record.digest, |_| Ok(None), &mut |f| {
            got.push(f.map(|f| f.record.id))
        })
        .unwrap();
        assert_eq!(got, vec![None]);
        let mut called = false;
        let err = c.get_or_fetch_with(
            &n.record.digest,
            |_| Err(StoreError::Unavailable("down".into())),
            &mut |_| called = true,
        );
        assert!(
            err.is_err() && !called,
            "an error is returned, nothing lent"
        );
    }

    #[test]
    fn a_fill_after_an_invalidation_is_dropped() {
        let c = on(10);
        let (a, b) = (lookup(1), lookup(2));
        let t = c.ticket().expect("on");
        // A write to any key between the read and the fill: the old answer stays out.
        c.invalidate(&b.record.digest);
        c.fill(t, &a);
        assert!(c.get(&a.record.digest).is_none());
        let t = c.ticket().expect("on");
        c.clear();
        c.fill(t, &a);
        assert!(c.get(&a.record.digest).is_none());
        // A fresh ticket works.
        fill(&c, &a);
        assert!(c.get(&a.record.digest).is_some());
    }

    #[test]
    fn a_fill_after_the_cache_was_turned_off_is_dropped() {
        let c = on(10);
        let a = lookup(1);
        let t = c.ticket().expect("on");
        c.set_enabled(false);
        c.fill(t, &a);
        c.set_enabled(true);
        assert!(c.get(&a.record.digest).is_none());
    }

    #[test]
    fn invalidate_drops_one_digest_and_clear_drops_all() {
        let c = on(100);
        let ls: Vec<_> = (1..=5).map(lookup).collect();
        for l in &ls {
            fill(&c, l);
        }
        c.invalidate(&ls[0].record.digest);
        assert!(c.get(&ls[0].record.digest).is_none());
        assert!(ls[1..].iter().all(|l| c.get(&l.record.digest).is_some()));
        c.clear();
        assert!(ls.iter().all(|l| c.get(&l.record.digest).is_none()));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn turning_the_cache_off_empties_it_and_on_again_starts_empty() {
        let c = on(10);
        let l = lookup(1);
        fill(&c, &l);
        c.set_enabled(false);
        assert!(!c.is_enabled());
        assert!(c.get(&l.record.digest).is_none());
        assert!(c.is_empty());
        c.set_enabled(true);
        assert!(
            c.get(&l.record.digest).is_none(),
            "not back after re-enabling"
        );
    }

    #[test]
    fn a_full_shard_is_emptied_before_the_next_entry() {
        // Capacity 16: one entry per shard.
        let c = on(16);
        let ls: Vec<_> = (1..=200).map(lookup).collect();
        for l in &ls {
            fill(&c, l);
        }
        assert!(c.len() <= 16, "at most one per shard, got {}", c.len());
        let last = ls.last().expect("some");
        assert!(c.get(&last.record.digest).is_some(), "the newest is kept");
        // Refilling a present digest in a full shard keeps it.
        fill(&c, last);
        assert!(c.get(&last.record.digest).is_some());
    }

    #[test]
    fn note_use_reaches_the_cached_entry_and_never_moves_back() {
        let c = on(10);
        let mut l = lookup(1);
        l.last_used_at = Some(ms(5_000));
        fill(&c, &l);
        let d = l.record.digest;
        assert_eq!(c.get(&d).expect("cached").last_used_at, Some(ms(5_000)));
        c.note_use(l.record.id, ms(9_000));
        assert_eq!(c.get(&d).expect("cached").last_used_at, Some(ms(9_000)));
        c.note_use(l.record.id, ms(7_000));
        assert_eq!(c.get(&d).expect("cached").last_used_at, Some(ms(9_000)));
        // Unknown ids are ignored.
        c.note_use(KeyId::from_u64(999), ms(10_000));
        assert_eq!(c.get(&d).expect("cached").last_used_at, Some(ms(9_000)));
    }

    #[test]
    fn note_use_of_a_stale_id_leaves_the_new_owner_of_the_digest_alone() {
        let c = on(10);
        let old = lookup(1);
        let d = old.record.digest;
        fill(&c, &old);
        // The key was deleted and its digest stored again under another id.
        c.invalidate(&d);
        let new = lookup_with(2, d);
        fill(&c, &new);
        c.note_use(KeyId::from_u64(1), ms(9_000));
        let got = c.get(&d).expect("cached");
        assert_eq!(got.record.id, KeyId::from_u64(2));
        assert_eq!(
            got.last_used_at, None,
            "the old id's use is not the new key's"
        );
    }

    #[test]
    fn get_or_fetch_caches_hits_of_the_database_but_not_misses_or_errors() {
        let c = on(10);
        let l = lookup(1);
        let d = l.record.digest;
        let mut reads = 0;
        for _ in 0..3 {
            let got = c
                .get_or_fetch(&d, |_| {
                    reads += 1;
                    Ok(Some(l.clone()))
                })
                .expect("ok");
            assert_eq!(got.map(|g| g.record.id), Some(l.record.id));
        }
        assert_eq!(reads, 1, "read once, then answered from the cache");

        let missing = lookup(2).record.digest;
        let mut reads = 0;
        for _ in 0..2 {
            let got = c
                .get_or_fetch(&missing, |_| {
                    reads += 1;
                    Ok(None)
                })
                .expect("ok");
            assert!(got.is_none());
        }
        assert_eq!(reads, 2, "misses are not cached");

        let err = c
            .get_or_fetch(&missing, |_| Err(StoreError::Unavailable("down".into())))
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(m) if m == "down"));
        assert!(c.get(&missing).is_none());
    }

    #[test]
    fn get_or_fetch_does_not_keep_what_a_racing_write_changed() {
        let c = on(10);
        let l = lookup(1);
        let d = l.record.digest;
        // The write commits and invalidates while the read is under way.
        let got = c
            .get_or_fetch(&d, |_| {
                c.invalidate(&d);
                Ok(Some(l.clone()))
            })
            .expect("ok");
        assert!(got.is_some(), "the caller still gets what was read");
        assert!(c.get(&d).is_none(), "but it is not cached");
    }

    #[test]
    fn get_or_fetch_with_the_cache_off_always_reads() {
        let c = LookupCache::new(10);
        let l = lookup(1);
        let mut reads = 0;
        for _ in 0..3 {
            c.get_or_fetch(&l.record.digest, |_| {
                reads += 1;
                Ok(Some(l.clone()))
            })
            .expect("ok");
        }
        assert_eq!(reads, 3);
        assert!(c.is_empty());
    }

    #[test]
    fn debug_shows_counts_only() {
        let c = on(10);
        fill(&c, &lookup(1));
        let s = format!("{c:?}");
        assert!(s.contains("enabled: true") && s.contains("len: 1"), "{s}");
        assert!(!s.contains("acme"), "{s}");
        let q = UseQueue::new();
        q.push(KeyId::from_u64(1), ms(1));
        assert_eq!(format!("{q:?}"), "UseQueue { len: 1 }");
    }

    #[test]
    fn the_use_queue_keeps_the_latest_use_per_key() {
        let q = UseQueue::new();
        let (a, b) = (KeyId::from_u64(1), KeyId::from_u64(2));
        assert!(q.is_empty());
        q.push(a, ms(200));
        q.push(a, ms(100));
        q.push(b, ms(50));
        assert_eq!(q.get(a), Some(ms(200)));
        assert_eq!(q.get(b), Some(ms(50)));
        assert_eq!(q.len(), 2);
        q.forget(b);
        assert_eq!(q.get(b), None);
        assert_eq!(q.get(KeyId::from_u64(3)), None);
    }

    #[test]
    fn merge_raises_a_records_last_use_but_never_lowers_it() {
        let q = UseQueue::new();
        let mut r = (*lookup(1).record).clone();
        q.merge(&mut r);
        assert_eq!(r.last_used_at, None, "nothing queued");
        q.push(r.id, ms(500));
        q.merge(&mut r);
        assert_eq!(r.last_used_at, Some(ms(500)));
        r.last_used_at = Some(ms(900));
        q.merge(&mut r);
        assert_eq!(r.last_used_at, Some(ms(900)));
    }

    #[test]
    fn flush_writes_every_queued_use_once() {
        let q = UseQueue::new();
        assert_eq!(
            q.flush(|_| panic!("nothing to write")).expect("ok"),
            0,
            "an empty queue writes nothing"
        );
        q.push(KeyId::from_u64(1), ms(10));
        q.push(KeyId::from_u64(2), ms(20));
        let mut written = Vec::new();
        let n = q
            .flush(|uses| {
                written.extend_from_slice(uses);
                Ok(())
            })
            .expect("ok");
        assert_eq!(n, 2);
        written.sort_by_key(|&(id, _)| id.as_u64());
        assert_eq!(
            written,
            vec![(KeyId::from_u64(1), ms(10)), (KeyId::from_u64(2), ms(20))]
        );
        assert!(q.is_empty(), "written uses leave the queue");
    }

    #[test]
    fn a_failed_flush_keeps_the_uses_queued_and_later_ones_win() {
        let q = UseQueue::new();
        let (a, b) = (KeyId::from_u64(1), KeyId::from_u64(2));
        q.push(a, ms(10));
        q.push(b, ms(20));
        let err = q
            .flush(|_| {
                // A use of `a` arrives while the write is under way.
                q.push(a, ms(30));
                Err(StoreError::Unavailable("disk full".into()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(m) if m == "disk full"));
        assert_eq!(q.get(a), Some(ms(30)), "the later use is kept");
        assert_eq!(q.get(b), Some(ms(20)), "the failed one is back");
        assert_eq!(q.flush(|_| Ok(())).expect("ok"), 2);
    }

    #[test]
    fn a_stopper_wakes_a_sleeper_and_stays_stopped() {
        let s = Arc::new(Stopper::new());
        assert!(!s.is_stopped());
        assert!(!s.sleep(Duration::ZERO), "not stopped yet");
        let (tx, rx) = mpsc::channel();
        let sleeper = {
            let s = s.clone();
            std::thread::spawn(move || tx.send(s.sleep(Duration::from_secs(3600))))
        };
        s.stop();
        // Generous bound: fails (rather than hangs) if the sleeper is not woken.
        let woke = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the sleeper was woken");
        assert!(woke, "the sleeper learns it was stopped");
        sleeper.join().expect("thread").expect("sent");
        assert!(s.is_stopped());
        assert!(
            s.sleep(Duration::from_secs(3600)),
            "later sleeps return at once"
        );
    }
}
