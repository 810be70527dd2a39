//! The in-process limiter, [`LocalRateLimiter`]: a sliding-window log per
//! bucket, in 64 shards (see the [module documentation](super)).

use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};

use hashbrown::HashTable;

use super::{Decision, Limit, RateBucket, RateLimiter, Verdict};
use crate::record::{KeyId, Timestamp};

/// The name of a user or account bucket, as the limiter keeps it.
#[derive(Debug, PartialEq, Eq)]
enum OwnedName {
    User(Box<str>, Box<str>),
    Account(Box<str>),
}

impl OwnedName {
    fn of(b: RateBucket<'_>) -> OwnedName {
        match b {
            RateBucket::User { account, user } => OwnedName::User(account.into(), user.into()),
            RateBucket::Account(a) => OwnedName::Account(a.into()),
            // Key buckets live in a table of their own (see `Shard`) and never
            // come here; a name that matches no request keeps this total.
            RateBucket::Key(_) => OwnedName::Account(b.name().into()),
        }
    }

    #[inline]
    fn is(&self, b: RateBucket<'_>) -> bool {
        match (self, b) {
            (OwnedName::User(a, u), RateBucket::User { account, user }) => {
                **a == *account && **u == *user
            }
            (OwnedName::Account(a), RateBucket::Account(b)) => **a == *b,
            _ => false,
        }
    }
}

/// A ring buffer of `u32` that grows by doubling (its capacity is zero or a
/// power of two, so an index wraps with a mask).
#[derive(Debug, Default)]
struct Ring {
    buf: Vec<u32>,
    head: usize,
    len: usize,
}

impl Ring {
    #[inline(always)]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) & self.buf.len().wrapping_sub(1)
    }

    #[inline(always)]
    fn get(&self, i: usize) -> Option<u32> {
        if i < self.len {
            self.buf.get(self.slot(i)).copied()
        } else {
            None
        }
    }

    #[inline(always)]
    fn front(&self) -> Option<u32> {
        self.get(0)
    }

    #[inline(always)]
    fn back(&self) -> Option<u32> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    #[inline(always)]
    fn pop_front(&mut self) {
        if self.len > 0 {
            self.head = self.slot(1);
            self.len -= 1;
        }
    }

    #[inline(always)]
    fn push_back(&mut self, v: u32) {
        if self.len == self.buf.len() {
            self.resize((2 * self.buf.len()).max(8));
        }
        let i = self.slot(self.len);
        if let Some(s) = self.buf.get_mut(i) {
            *s = v;
            self.len += 1;
        }
    }

    /// Move the contents to a buffer of `cap` slots (a power of two, at least `len`).
    #[cold]
    #[inline(never)]
    fn resize(&mut self, cap: usize) {
        let mut buf = Vec::with_capacity(cap);
        buf.extend((0..self.len).filter_map(|i| self.get(i)));
        buf.resize(cap, 0);
        self.buf = buf;
        self.head = 0;
    }

    /// Give back memory a burst left unused.
    fn shrink(&mut self) {
        if self.len == 0 {
            *self = Ring::default();
        } else {
            let want = (2 * self.len).next_power_of_two();
            if want < self.buf.len() {
                self.resize(want);
            }
        }
    }

    /// Subtract `by` from every entry (each is at least `by`).
    fn rebase(&mut self, by: u32) {
        for i in 0..self.len {
            let j = self.slot(i);
            if let Some(t) = self.buf.get_mut(j) {
                *t -= by;
            }
        }
    }
}

/// One bucket's sliding-window log.
#[derive(Debug, Default)]
struct Log {
    /// The time (ms since the epoch) the offsets in `times` count from.
    base: u64,
    /// Admission times as offsets from `base`, oldest first; all within the
    /// last window once trimmed.
    times: Ring,
    /// The end of the window of the newest admission: after it the log is empty.
    idle_after: u64,
}

impl Log {
    #[inline(always)]
    fn acquire(&mut self, limit: Limit, now: u64) -> Verdict {
        let window = u64::from(limit.window_ms);
        let requests = limit.requests as usize;
        // Time stands still in a bucket while the clock is behind its newest admission.
        let now = match self.times.back() {
            Some(newest) => now.max(self.base + u64::from(newest)),
            None => now,
        };
        // The window is (now - window, now]: drop what fell out of it.
        let cutoff = now.saturating_sub(window);
        if cutoff >= self.base {
            let c = cutoff - self.base;
            while self.times.front().is_some_and(|t| u64::from(t) <= c) {
                self.times.pop_front();
            }
        }
        // Entries beyond the limit (a bucket whose limit was lowered, or that
        // keys with different limits share) are kept: they still count against
        // any limit until they leave the window.
        if self.times.len < requests {
            match self.times.front() {
                None => self.base = now,
                Some(oldest) if now - self.base > u64::from(u32::MAX) => {
                    // Every entry is within the window (at most 31 days), so
                    // counting from the oldest brings them all back into range.
                    self.base += u64::from(oldest);
                    self.times.rebase(oldest);
                }
                Some(_) => {}
            }
            self.times.push_back((now - self.base) as u32);
            self.idle_after = now + window;
            Verdict {
                limit: limit.requests,
                remaining: (requests - self.times.len) as u32,
                nanos: window as i64 * 1_000_000,
            }
        } else {
            // A slot frees when all but `requests - 1` of the entries have left:
            // at the end of the window of entry `len - requests` (the oldest when
            // the log holds exactly the limit). requests >= 1, so it exists.
            let i = self.times.len - requests;
            let frees = self.base + u64::from(self.times.get(i).unwrap_or(0)) + window;
            Verdict {
                limit: limit.requests,
                remaining: 0,
                // At most 31 days: no overflow in nanoseconds.
                nanos: -(frees.saturating_sub(now).max(1) as i64 * 1_000_000),
            }
        }
    }
}

/// A key's bucket: found by the key's id, which is random already and so
/// serves as its own hash.
struct KeyEntry {
    id: KeyId,
    log: Log,
}

/// A user's or an account's bucket: found by the hash of its name.
struct NamedEntry {
    hash: u64,
    name: OwnedName,
    log: Log,
}

#[derive(Default)]
struct Shard {
    keys: HashTable<KeyEntry>,
    named: HashTable<NamedEntry>,
    ops: u32,
}

impl Shard {
    #[inline(always)]
    fn tick(&mut self, now: u64) {
        self.ops = self.ops.wrapping_add(1);
        if self.ops % SWEEP_EVERY == 0 {
            self.sweep(now);
        }
    }

    #[inline(always)]
    fn key(&mut self, id: KeyId, limit: Limit, now: u64) -> Verdict {
        self.tick(now);
        match self.keys.find_mut(id.as_u64(), |e| e.id == id) {
            Some(e) => e.log.acquire(limit, now),
            None => self.first_key(id, limit, now),
        }
    }

    #[inline(always)]
    fn named(&mut self, hash: u64, bucket: RateBucket<'_>, limit: Limit, now: u64) -> Verdict {
        self.tick(now);
        match self.named.find_mut(hash, |e| e.name.is(bucket)) {
            Some(e) => e.log.acquire(limit, now),
            None => self.first_named(hash, bucket, limit, now),
        }
    }

    /// A key bucket's first request (or its first since it was swept).
    #[cold]
    #[inline(never)]
    fn first_key(&mut self, id: KeyId, limit: Limit, now: u64) -> Verdict {
        let entry = KeyEntry {
            id,
            log: Log::default(),
        };
        let hash = |e: &KeyEntry| e.id.as_u64();
        let entry = self.keys.insert_unique(id.as_u64(), entry, hash).into_mut();
        entry.log.acquire(limit, now)
    }

    /// A user or account bucket's first request (or its first since it was swept).
    #[cold]
    #[inline(never)]
    fn first_named(
        &mut self,
        hash: u64,
        bucket: RateBucket<'_>,
        limit: Limit,
        now: u64,
    ) -> Verdict {
        let entry = NamedEntry {
            hash,
            name: OwnedName::of(bucket),
            log: Log::default(),
        };
        let entry = self.named.insert_unique(hash, entry, |e| e.hash).into_mut();
        entry.log.acquire(limit, now)
    }

    fn len(&self) -> usize {
        self.keys.len() + self.named.len()
    }

    /// Forget idle buckets and give back what bursts left unused.
    #[cold]
    fn sweep(&mut self, now: u64) {
        let live = |log: &mut Log| {
            let live = log.idle_after > now;
            if live {
                log.times.shrink();
            }
            live
        };
        self.keys.retain(|e| live(&mut e.log));
        self.named.retain(|e| live(&mut e.log));
        self.keys.shrink_to(0, |e| e.id.as_u64());
        self.named.shrink_to(0, |e| e.hash);
    }
}

/// A shard on a cache line of its own, so threads on different shards do not
/// slow each other down.
#[repr(align(128))]
#[derive(Default)]
struct Padded(Mutex<Shard>);

const SHARDS: usize = 64;

const SWEEP_EVERY: u32 = 4096;

/// The in-process limiter: a sliding-window log per bucket (see the module docs).
pub struct LocalRateLimiter {
    shards: Box<[Padded]>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRateLimiter")
            .field("buckets", &self.buckets())
            .finish()
    }
}

impl Default for LocalRateLimiter {
    fn default() -> Self {
        LocalRateLimiter::new()
    }
}

impl LocalRateLimiter {
    /// An empty limiter.
    pub fn new() -> LocalRateLimiter {
        LocalRateLimiter {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// How many buckets are tracked (idle ones are swept from time to time).
    pub fn buckets(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

impl RateLimiter for LocalRateLimiter {
    fn acquire(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision {
        self.verdict(bucket, limit, now).decision()
    }
}

impl LocalRateLimiter {
    #[inline(always)]
    pub(super) fn verdict(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Verdict {
        let now = now.unix_millis();
        match bucket {
            RateBucket::Key(id) => self.shard(id.as_u64()).key(id, limit, now),
            named => {
                let hash = self.name_hash(named);
                self.shard(hash).named(hash, named, limit, now)
            }
        }
    }

    /// The hash of a user's or an account's bucket: their ids' bytes, in as
    /// few writes as possible (a user bucket's 0xff separator cannot occur in
    /// UTF-8, so the split is unambiguous; the table compares names anyway).
    #[inline(always)]
    fn name_hash(&self, b: RateBucket<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        match b {
            RateBucket::User { account, user } => {
                h.write(account.as_bytes());
                h.write_u8(0xff);
                h.write(user.as_bytes());
            }
            RateBucket::Account(a) => h.write(a.as_bytes()),
            RateBucket::Key(id) => h.write_u64(id.as_u64()),
        }
        h.finish()
    }

    #[inline(always)]
    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        // Bits 32..38 pick the shard: a table inside uses the low bits for the
        // bucket and the top seven for its tag, so these stay independent of both.
        self.shards[(hash >> 32) as usize % SHARDS]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_000_000 + ms)
    }

    #[test]
    fn admits_exactly_the_limit_then_says_when_to_retry() {
        let l = LocalRateLimiter::new();
        let lim = Limit::new(3, Duration::from_secs(10)).unwrap();
        let b = RateBucket::Key(KeyId::from_u64(7));
        for i in 0..3 {
            match l.acquire(b, lim, t(i * 1000)) {
                Decision::Allowed(s) => assert_eq!(s.remaining, 2 - i as u32),
                d => panic!("{d:?}"),
            }
        }
        assert_eq!(
            l.acquire(b, lim, t(5000)),
            Decision::Limited {
                limit: 3,
                retry_after: Duration::from_millis(5000)
            }
        );
        // The first admission leaves the window at exactly 10 s.
        assert!(matches!(
            l.acquire(b, lim, t(9999)),
            Decision::Limited { .. }
        ));
        assert!(matches!(l.acquire(b, lim, t(10_000)), Decision::Allowed(_)));
    }

    #[test]
    fn buckets_are_separate() {
        let l = LocalRateLimiter::new();
        let lim = Limit::new(1, Duration::from_secs(10)).unwrap();
        assert!(matches!(
            l.acquire(RateBucket::Account("a"), lim, t(0)),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            l.acquire(RateBucket::Account("b"), lim, t(0)),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            l.acquire(
                RateBucket::User {
                    account: "a",
                    user: "u"
                },
                lim,
                t(0)
            ),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            l.acquire(
                RateBucket::User {
                    account: "a",
                    user: "v"
                },
                lim,
                t(0)
            ),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            l.acquire(RateBucket::Account("a"), lim, t(1)),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn idle_buckets_are_swept() {
        let l = LocalRateLimiter::new();
        let lim = Limit::new(5, Duration::from_secs(1)).unwrap();
        for i in 0..10_000 {
            l.acquire(RateBucket::Key(KeyId::from_u64(1_000_000 + i)), lim, t(0));
        }
        assert_eq!(l.buckets(), 10_000);
        // Ten seconds later those are idle; enough traffic on 1,024 other keys
        // reaches every shard's sweep at least once.
        for i in 0..(2 * SWEEP_EVERY as u64 * SHARDS as u64) {
            l.acquire(
                RateBucket::Key(KeyId::from_u64(i % 1024)),
                lim,
                t(10_000 + i / 1000),
            );
        }
        assert_eq!(l.buckets(), 1024);
    }

    fn admit(l: &LocalRateLimiter, b: RateBucket<'_>, lim: Limit, at: u64) -> bool {
        matches!(l.acquire(b, lim, t(at)), Decision::Allowed(_))
    }

    #[test]
    fn a_changed_limit_applies_at_once_and_the_log_stays_exact() {
        let l = LocalRateLimiter::new();
        let b = RateBucket::Key(KeyId::from_u64(9));
        let ten = Limit::new(10, Duration::from_secs(60)).unwrap();
        for i in 0..10 {
            assert!(admit(&l, b, ten, i));
        }
        let three = Limit::new(3, Duration::from_secs(60)).unwrap();
        match l.acquire(b, three, t(20)) {
            // Three slots are free again once eight have left: at 60.007 s.
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_millis(60_007 - 20))
            }
            d => panic!("{d:?}"),
        }
        // Raised again: all ten admissions still count, in every window.
        assert!(!admit(&l, b, ten, 30));
        assert!(!admit(&l, b, three, 60_006));
        assert!(admit(&l, b, three, 60_007));
        // Two of the old ten and one new in the window: the ten-limit has room.
        assert!(admit(&l, b, ten, 60_007));
    }

    #[test]
    fn a_clock_stepping_back_never_admits_more() {
        let l = LocalRateLimiter::new();
        let b = RateBucket::Account("acme");
        let lim = Limit::new(2, Duration::from_secs(10)).unwrap();
        assert!(admit(&l, b, lim, 5_000));
        // The clock jumps back 4 s: time stands at 5 s for this bucket.
        assert!(admit(&l, b, lim, 1_000));
        assert!(!admit(&l, b, lim, 2_000));
        match l.acquire(b, lim, t(3_000)) {
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_secs(10))
            }
            d => panic!("{d:?}"),
        }
        assert!(!admit(&l, b, lim, 14_999));
        assert!(admit(&l, b, lim, 15_000));
    }

    /// Offsets are u32 milliseconds (49.7 days): a bucket used for longer,
    /// with a long window, must count from a later base without losing entries.

    #[test]
    fn offsets_are_rebased_after_49_days() {
        let l = LocalRateLimiter::new();
        let b = RateBucket::Key(KeyId::from_u64(11));
        let day = 86_400_000u64;
        let lim = Limit::new(3, Limit::MAX_WINDOW).unwrap();
        assert!(admit(&l, b, lim, 0));
        assert!(admit(&l, b, lim, 20 * day));
        assert!(admit(&l, b, lim, 40 * day));
        // 50 days in: the first admission left (31 days), two are in the window.
        assert!(admit(&l, b, lim, 50 * day), "one slot freed at day 31");
        assert!(!admit(&l, b, lim, 50 * day + 1));
        match l.acquire(b, lim, t(50 * day + 1)) {
            Decision::Limited { retry_after, .. } => {
                // The admission of day 20 leaves at day 51.
                assert_eq!(retry_after, Duration::from_millis(day - 1))
            }
            d => panic!("{d:?}"),
        }
        assert!(admit(&l, b, lim, 51 * day));
        assert!(!admit(&l, b, lim, 51 * day));
    }
}
