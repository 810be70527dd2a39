//! Rate limits: how many requests a key, a user or an account may make per window.
//!
//! Off until asked for: a keyring without [`RateLimits`] never answers
//! `RateLimited`. [`RateLimits::pagerduty`] gives PagerDuty's numbers:
//!
//! | what is counted | bucket | limit |
//! |---|---|---|
//! | a general access key | the key | 960 requests per minute |
//! | user tokens | their owner (all their tokens share it) | 960 per minute |
//! | scoped tokens | their account (all its scoped tokens share it) | 960 per minute |
//! | integration and routing keys | the key | 120 per rolling 60 seconds |
//!
//! Every number can be changed per account ([`RateLimits::with_account_limit`])
//! and per key ([`RateLimits::with_key_limit`]).
//!
//! ## The algorithm: a sliding-window log
//! The in-process [`LocalRateLimiter`] keeps, for each bucket, the times of the
//! requests it admitted during the last window, and admits a request only if
//! fewer than `limit` of them lie in the window `(now - window, now]`. So in
//! *every* window of that length — not just in aligned ones — exactly `limit`
//! requests get through, never one more, and a client may spend its budget in
//! a burst. GCRA (a token bucket) keeps one number per bucket instead, but in a
//! sliding window it admits up to `2 * limit - 1` (a full burst, then the refill),
//! which would break PagerDuty's "per rolling 60 seconds". The price is memory:
//! 8 bytes per admitted request still in the window of an active bucket (at
//! most 7.7 KB for a key at 960 a minute); idle buckets are swept away.
//!
//! Buckets live in 16 shards, each behind its own mutex, chosen by the bucket's
//! hash: there is no global lock on the hot path.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hashbrown::{HashMap, HashTable};

use crate::key::KeyKind;
use crate::record::{KeyId, KeyRecord, Timestamp};

/// Where a request stands against its rate limit, for the `ratelimit-limit`,
/// `ratelimit-remaining` and `ratelimit-reset` response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests still allowed in the current window, after this one.
    pub remaining: u32,
    /// Time until the whole budget is available again.
    pub reset: Duration,
}

/// A limit: `requests` per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Requests admitted per window (at least 1).
    pub requests: u32,
    /// The window (at least 1 ms).
    pub window: Duration,
}

impl Limit {
    /// `requests` per `window`. Zero requests or a window under 1 ms are raised to 1.
    pub fn new(requests: u32, window: Duration) -> Limit {
        Limit {
            requests: requests.max(1),
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// `requests` per minute.
    pub fn per_minute(requests: u32) -> Limit {
        Limit::new(requests, Duration::from_secs(60))
    }

    fn window_ms(self) -> u64 {
        (self.window.as_millis().min(u64::MAX as u128) as u64).max(1)
    }
}

/// The four things a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitClass {
    /// Each general access key.
    GeneralKey,
    /// Each user, across all of their user tokens.
    User,
    /// Each account, across all of its scoped tokens.
    ScopedAccount,
    /// Each integration or routing key.
    EventsKey,
}

impl LimitClass {
    /// The class a key of `kind` is counted in.
    pub const fn of(kind: KeyKind) -> LimitClass {
        match kind {
            KeyKind::General => LimitClass::GeneralKey,
            KeyKind::UserToken => LimitClass::User,
            KeyKind::Scoped => LimitClass::ScopedAccount,
            KeyKind::Integration | KeyKind::Routing => LimitClass::EventsKey,
        }
    }

    const fn index(self) -> usize {
        match self {
            LimitClass::GeneralKey => 0,
            LimitClass::User => 1,
            LimitClass::ScopedAccount => 2,
            LimitClass::EventsKey => 3,
        }
    }
}

/// Which limit applies to which key: defaults per class, then overrides per
/// account and per key (a key's override wins over its account's, which wins
/// over the default). `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    defaults: [Option<Limit>; 4],
    accounts: HashMap<String, [Option<Option<Limit>>; 4]>,
    keys: HashMap<KeyId, Option<Limit>>,
}

impl RateLimits {
    /// No limits at all (add some with the `with_…` methods).
    pub fn none() -> RateLimits {
        RateLimits::default()
    }

    /// PagerDuty's limits (see the module docs).
    pub fn pagerduty() -> RateLimits {
        RateLimits::none()
            .with_limit(LimitClass::GeneralKey, Some(Limit::per_minute(960)))
            .with_limit(LimitClass::User, Some(Limit::per_minute(960)))
            .with_limit(LimitClass::ScopedAccount, Some(Limit::per_minute(960)))
            .with_limit(LimitClass::EventsKey, Some(Limit::per_minute(120)))
    }

    /// Set the default limit of a class (`None`: unlimited).
    pub fn with_limit(mut self, class: LimitClass, limit: Option<Limit>) -> RateLimits {
        self.defaults[class.index()] = limit;
        self
    }

    /// Set one account's limit for a class (`None`: unlimited for that account).
    pub fn with_account_limit(
        mut self,
        account: &str,
        class: LimitClass,
        limit: Option<Limit>,
    ) -> RateLimits {
        self.accounts.entry_ref(account).or_insert([None; 4])[class.index()] = Some(limit);
        self
    }

    /// Set one key's limit (`None`: unlimited). For user tokens and scoped
    /// tokens this sets the limit of the bucket the key counts in (its owner,
    /// its account) whenever this key is the one used.
    pub fn with_key_limit(mut self, key: KeyId, limit: Option<Limit>) -> RateLimits {
        self.keys.insert(key, limit);
        self
    }

    /// The default limit of a class.
    pub fn limit(&self, class: LimitClass) -> Option<Limit> {
        self.defaults[class.index()]
    }

    /// The limit that applies to `record`, and the bucket it is counted in.
    pub fn applicable<'r>(&self, record: &'r KeyRecord) -> Option<(RateBucket<'r>, Limit)> {
        let class = LimitClass::of(record.kind);
        let mut limit = self.defaults[class.index()];
        if !self.accounts.is_empty() {
            if let Some(Some(l)) = self
                .accounts
                .get(&*record.account)
                .map(|a| a[class.index()])
            {
                limit = l;
            }
        }
        if !self.keys.is_empty() {
            if let Some(l) = self.keys.get(&record.id) {
                limit = *l;
            }
        }
        let bucket = match class {
            LimitClass::GeneralKey | LimitClass::EventsKey => RateBucket::Key(record.id),
            LimitClass::User => RateBucket::User {
                account: &record.account,
                user: record.owner.as_deref().unwrap_or(""),
            },
            LimitClass::ScopedAccount => RateBucket::Account(&record.account),
        };
        limit.map(|l| (bucket, l))
    }
}

/// What a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateBucket<'a> {
    /// One key.
    Key(KeyId),
    /// One user of an account.
    User {
        /// The account.
        account: &'a str,
        /// The user.
        user: &'a str,
    },
    /// One account.
    Account(&'a str),
}

impl RateBucket<'_> {
    /// A name for the bucket, usable as a key in a shared store:
    /// `k:<key id>`, `u:<len>:<account>:<user>`, `a:<account>`.
    pub fn name(&self) -> String {
        match self {
            RateBucket::Key(id) => format!("k:{id}"),
            // The account's length makes the split unambiguous whatever the ids hold.
            RateBucket::User { account, user } => format!("u:{}:{account}:{user}", account.len()),
            RateBucket::Account(a) => format!("a:{a}"),
        }
    }
}

/// A limiter's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Admitted (and counted).
    Allowed(RateLimitStatus),
    /// Over the limit (not counted).
    Limited {
        /// Requests allowed per window.
        limit: u32,
        /// When the next request would be admitted.
        retry_after: Duration,
    },
}

/// Counts requests per bucket and says whether one more fits.
pub trait RateLimiter: Send + Sync {
    /// Admit (and count) one request in `bucket` at `now` if it fits `limit`.
    fn acquire(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision;

    /// Whether [`RateLimiter::acquire`] may wait on I/O (a network round
    /// trip), so that a caller that must not wait (an event loop) should not
    /// call it: then [`Keyring::try_authenticate`](crate::Keyring::try_authenticate)
    /// leaves the check to [`Keyring::authenticate`](crate::Keyring::authenticate).
    /// The default, for limiters that count in memory, is `false`.
    fn may_block(&self) -> bool {
        false
    }
}

#[derive(Debug, PartialEq, Eq)]
enum OwnedBucket {
    Key(KeyId),
    User(Box<str>, Box<str>),
    Account(Box<str>),
}

impl OwnedBucket {
    fn of(b: RateBucket<'_>) -> OwnedBucket {
        match b {
            RateBucket::Key(k) => OwnedBucket::Key(k),
            RateBucket::User { account, user } => OwnedBucket::User(account.into(), user.into()),
            RateBucket::Account(a) => OwnedBucket::Account(a.into()),
        }
    }

    fn is(&self, b: RateBucket<'_>) -> bool {
        match (self, b) {
            (OwnedBucket::Key(a), RateBucket::Key(b)) => *a == b,
            (OwnedBucket::User(a, u), RateBucket::User { account, user }) => {
                **a == *account && **u == *user
            }
            (OwnedBucket::Account(a), RateBucket::Account(b)) => **a == *b,
            _ => false,
        }
    }

    fn borrow(&self) -> RateBucket<'_> {
        match self {
            OwnedBucket::Key(k) => RateBucket::Key(*k),
            OwnedBucket::User(a, u) => RateBucket::User {
                account: a,
                user: u,
            },
            OwnedBucket::Account(a) => RateBucket::Account(a),
        }
    }
}

struct Entry {
    bucket: OwnedBucket,
    hash: u64,
    /// Admission times (ms since the epoch), oldest first.
    log: VecDeque<u64>,
    /// The end of the window of the newest admission: after it the log is empty.
    idle_after: u64,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    ops: u32,
}

const SHARDS: usize = 16;
const SWEEP_EVERY: u32 = 4096;

/// The in-process limiter: a sliding-window log per bucket (see the module docs).
pub struct LocalRateLimiter {
    shards: Box<[Mutex<Shard>]>,
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
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// How many buckets are tracked (idle ones are swept from time to time).
    pub fn buckets(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).table.len())
            .sum()
    }

    fn hash(&self, b: RateBucket<'_>) -> u64 {
        match b {
            // Key ids are 64 random bits already: no hashing needed.
            RateBucket::Key(id) => id.as_u64(),
            other => self.hasher.hash_one(other),
        }
    }
}

impl RateLimiter for LocalRateLimiter {
    fn acquire(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision {
        let hash = self.hash(bucket);
        let now = now.unix_millis();
        let window = limit.window_ms();
        // Bits 32..36 pick the shard: the table inside uses the low bits for the
        // bucket and the top seven for its tag, so these stay independent of both.
        let mut shard = self.shards[(hash >> 32) as usize % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let shard = &mut *shard;
        shard.ops = shard.ops.wrapping_add(1);
        if shard.ops % SWEEP_EVERY == 0 {
            shard.table.retain(|e| e.idle_after > now);
        }
        let entry = match shard.table.find_mut(hash, |e| e.bucket.is(bucket)) {
            Some(e) => e,
            None => shard
                .table
                .insert_unique(
                    hash,
                    Entry {
                        bucket: OwnedBucket::of(bucket),
                        hash,
                        log: VecDeque::new(),
                        idle_after: 0,
                    },
                    |e| e.hash,
                )
                .into_mut(),
        };
        debug_assert!(entry.bucket.borrow() == bucket);
        // The window is (now - window, now]: drop what fell out of it.
        let cutoff = now.saturating_sub(window);
        while entry.log.front().is_some_and(|&t| t <= cutoff) {
            entry.log.pop_front();
        }
        // A limit lowered since the last request: drop the excess oldest entries
        // beyond what the new limit can ever need.
        while entry.log.len() > limit.requests as usize {
            entry.log.pop_front();
        }
        if entry.log.len() < limit.requests as usize {
            entry.log.push_back(now);
            entry.idle_after = now + window;
            let remaining = limit.requests - entry.log.len() as u32;
            Decision::Allowed(RateLimitStatus {
                limit: limit.requests,
                remaining,
                reset: Duration::from_millis(window),
            })
        } else {
            let oldest = entry.log.front().copied().unwrap_or(now);
            Decision::Limited {
                limit: limit.requests,
                retry_after: Duration::from_millis(oldest + window - now),
            }
        }
    }
}

/// Counts of requests refused by the limiter, per key.
#[derive(Debug, Default)]
pub(crate) struct Rejections(Mutex<HashMap<KeyId, u64>>);

impl Rejections {
    pub(crate) fn count(&self, id: KeyId) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert(0) += 1;
    }

    pub(crate) fn snapshot(&self) -> Vec<(KeyId, u64)> {
        let mut v: Vec<_> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_000_000 + ms)
    }

    #[test]
    fn admits_exactly_the_limit_then_says_when_to_retry() {
        let l = LocalRateLimiter::new();
        let lim = Limit::new(3, Duration::from_secs(10));
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
        let lim = Limit::new(1, Duration::from_secs(10));
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
        let lim = Limit::new(5, Duration::from_secs(1));
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

    #[test]
    fn names_are_unambiguous() {
        let a = RateBucket::User {
            account: "a:b",
            user: "c",
        }
        .name();
        let b = RateBucket::User {
            account: "a",
            user: "b:c",
        }
        .name();
        assert_ne!(a, b);
    }
}
