//! The in-process cache of hot-path lookups and the queue of last uses.
//!
//! (The same file is in `apikeys-sqlite` and `apikeys-postgres`; keep the two equal.)
//!
//! The cache maps a digest to what [`KeyStore::find_by_digest`] answered for it.
//! It only ever holds answers read from the database, and it is emptied (or the
//! one digest dropped) by every write that could change an answer:
//!
//! - writes through the same store drop what they touch right after they commit;
//! - writes by other processes are reported by the store's change feed
//!   (PostgreSQL LISTEN/NOTIFY, SQLite's `data_version`), which empties the cache;
//! - while the change feed is down, the cache is off: every lookup reads the database.
//!
//! A lookup that missed reads the database and then fills the cache, but only
//! if no invalidation happened since the lookup began (a generation counter,
//! checked under the shard's lock): so a reader that raced a write never puts
//! the old answer back.
//!
//! Misses are not cached: a key that did not exist costs a database read each time.
//!
//! [`KeyStore::find_by_digest`]: apikeys::KeyStore::find_by_digest

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use apikeys::{Digest, KeyId, KeyLookup, KeyRecord, StoreError, Timestamp};

const SHARDS: usize = 16;

/// A hasher for keys that are already uniform: digests hash as their first
/// eight bytes, key ids as their 64 random bits.
#[derive(Default)]
pub(crate) struct PassHasher(u64);

impl Hasher for PassHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
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

/// Cached lookups by digest.
pub(crate) struct Cache {
    shards: Box<[RwLock<PassMap<Digest, Entry>>]>,
    /// Which digest holds each cached id (for `record_use`); may hold stale pairs.
    ids: Mutex<PassMap<u64, Digest>>,
    generation: AtomicU64,
    enabled: AtomicBool,
    capacity_per_shard: usize,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cache {
    /// An empty cache holding at most about `capacity` entries, off until [`Cache::enable`].
    pub(crate) fn new(capacity: usize) -> Cache {
        Cache {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(PassMap::default()))
                .collect(),
            ids: Mutex::new(PassMap::default()),
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(false),
            capacity_per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, d: &Digest) -> &RwLock<PassMap<Digest, Entry>> {
        &self.shards[d.as_bytes()[31] as usize % SHARDS]
    }

    /// The cached answer for `d`, if the cache is on and holds one.
    #[inline]
    pub(crate) fn get(&self, d: &Digest) -> Option<KeyLookup> {
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

    /// Taken before reading the database: `None` while the cache is off.
    pub(crate) fn ticket(&self) -> Option<u64> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        Some(self.generation.load(Ordering::Acquire))
    }

    /// Keep `lookup` (read from the database after `ticket` was taken), unless
    /// anything was invalidated in between.
    pub(crate) fn fill(&self, ticket: u64, lookup: &KeyLookup) {
        let digest = lookup.record.digest;
        {
            let mut g = write(self.shard(&digest));
            if !self.enabled.load(Ordering::Acquire)
                || self.generation.load(Ordering::Acquire) != ticket
            {
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

    /// Drop what is cached for `d`.
    pub(crate) fn invalidate(&self, d: &Digest) {
        let mut g = write(self.shard(d));
        self.generation.fetch_add(1, Ordering::AcqRel);
        g.remove(d);
    }

    /// Drop everything.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for s in self.shards.iter() {
            write(s).clear();
        }
        lock(&self.ids).clear();
    }

    /// Turn the cache on (emptied first) or off (emptied too).
    pub(crate) fn set_enabled(&self, on: bool) {
        if on {
            self.clear();
            self.enabled.store(true, Ordering::Release);
        } else {
            self.enabled.store(false, Ordering::Release);
            self.clear();
        }
    }

    /// Whether the cache is on.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Note a use in the cached entry, so the hot path sees it at once.
    pub(crate) fn note_use(&self, id: KeyId, at: Timestamp) {
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
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }
}

/// Last uses waiting to be written, at most one per key.
#[derive(Default)]
pub(crate) struct UseQueue {
    pending: Mutex<PassMap<u64, u64>>,
}

impl UseQueue {
    /// Queue a use (keeps the latest per key).
    pub(crate) fn push(&self, id: KeyId, at: Timestamp) {
        let mut p = lock(&self.pending);
        let e = p.entry(id.as_u64()).or_insert(0);
        *e = (*e).max(at.unix_millis());
    }

    /// The queued use of `id`, if any.
    pub(crate) fn get(&self, id: KeyId) -> Option<Timestamp> {
        lock(&self.pending)
            .get(&id.as_u64())
            .map(|&ms| Timestamp::from_unix_millis(ms))
    }

    /// Forget the queued use of `id` (it was deleted).
    pub(crate) fn forget(&self, id: KeyId) {
        lock(&self.pending).remove(&id.as_u64());
    }

    /// Raise `r.last_used_at` to the queued use, if later.
    pub(crate) fn merge(&self, r: &mut KeyRecord) {
        if let Some(t) = self.get(r.id) {
            r.last_used_at = r.last_used_at.max(Some(t));
        }
    }

    /// Take every queued use.
    pub(crate) fn take(&self) -> Vec<(KeyId, Timestamp)> {
        let mut p = lock(&self.pending);
        p.drain()
            .map(|(id, ms)| (KeyId::from_u64(id), Timestamp::from_unix_millis(ms)))
            .collect()
    }

    /// Put back uses whose write failed (keeping later ones queued since).
    pub(crate) fn put_back(&self, uses: &[(KeyId, Timestamp)]) {
        for &(id, at) in uses {
            self.push(id, at);
        }
    }

    /// Write every queued use with `write`; on failure they stay queued.
    pub(crate) fn flush(
        &self,
        write: impl FnOnce(&[(KeyId, Timestamp)]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let uses = self.take();
        if uses.is_empty() {
            return Ok(0);
        }
        match write(&uses) {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                self.put_back(&uses);
                Err(e)
            }
        }
    }
}

/// Tells background threads to stop, and wakes them from their sleep.
#[derive(Default)]
pub(crate) struct Stopper {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stopper {
    /// Sleep for `d` or until stopped; true once stopped.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
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

    /// Ask every sleeper to stop.
    pub(crate) fn stop(&self) {
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }
}
