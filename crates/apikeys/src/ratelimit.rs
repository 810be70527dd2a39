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
//! and per key ([`RateLimits::with_key_limit`]), and read back
//! ([`RateLimits::account_limits`], [`RateLimits::key_limits`]). A [`Limit`] is
//! checked when it is made: at least one request, a window of 1 ms to
//! [`Limit::MAX_WINDOW`] (31 days), counted in whole milliseconds.
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
//! 4 bytes per admitted request still in the window of an active bucket (at
//! most 3.8 KB for a key at 960 a minute); idle buckets are swept away.
//!
//! A bucket whose limit changes (keys with different overrides that share
//! their owner's or account's budget, or a limit lowered while requests are in
//! the window) keeps every admission until it leaves the window: each request
//! is admitted only if fewer than *its* limit lie in the window, so switching
//! limits back and forth never lets more through than the higher one.
//!
//! Times within a bucket never run backwards: if the clock steps back, the
//! bucket treats the time as standing still at its newest admission until the
//! clock catches up (so the log stays ordered and the guarantee holds).
//!
//! ## Cost
//! One request takes one uncontended mutex (one of 64 shards, each on its own
//! cache line, so there is no global lock), one probe of the shard's table —
//! a key's bucket is found by its id, which is random already, so it is not
//! hashed again — and, in steady state, one pop and one push on a ring buffer
//! of `u32` offsets: no allocation. User and account buckets hash their names
//! (foldhash) once per request. `cargo bench -p apikeys-benches --bench hot_path`
//! measures `authenticate_limited` beside `sha256_raw`, and `cargo run --release
//! -p apikeys-benches --example limiter_overhead` what the limiter adds.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hashbrown::{HashMap, HashTable};

use crate::error::{Error, Result};
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

/// A limit: `requests` per `window`. Made only by [`Limit::new`] or
/// [`Limit::per_minute`], which refuse what no limiter could honour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    requests: u32,
    window_ms: u32,
}

impl Limit {
    /// The longest window accepted: 31 days (a monthly budget still fits).
    pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 86_400);

    /// `requests` per `window`. The window is counted in whole milliseconds (a
    /// fraction of one is dropped).
    ///
    /// Fails with [`Error::InvalidInput`] (field `requests` or `window`) for zero
    /// requests, a window under 1 ms, or one longer than [`Limit::MAX_WINDOW`].
    pub fn new(requests: u32, window: Duration) -> Result<Limit> {
        if requests == 0 {
            return Err(Error::invalid(
                "requests",
                "must be at least 1 (to refuse everything, disable or delete the key)".to_owned(),
            ));
        }
        if window < Duration::from_millis(1) {
            return Err(Error::invalid(
                "window",
                format!("must be at least 1 ms, got {window:?}"),
            ));
        }
        if window > Limit::MAX_WINDOW {
            return Err(Error::invalid(
                "window",
                format!("must be at most 31 days, got {window:?}"),
            ));
        }
        Ok(Limit {
            requests,
            // At most 31 days: 2,678,400,000 ms fits a u32.
            window_ms: window.as_millis() as u32,
        })
    }

    /// `requests` per minute. Fails like [`Limit::new`] for zero requests.
    pub fn per_minute(requests: u32) -> Result<Limit> {
        Limit::new(requests, Duration::from_secs(60))
    }

    /// PagerDuty's numbers, known to be valid.
    const fn per_minute_const(requests: u32) -> Limit {
        Limit {
            requests,
            window_ms: 60_000,
        }
    }

    /// Requests admitted per window (at least 1).
    pub const fn requests(self) -> u32 {
        self.requests
    }

    /// The window (whole milliseconds, 1 ms to [`Limit::MAX_WINDOW`]).
    pub const fn window(self) -> Duration {
        Duration::from_millis(self.window_ms as u64)
    }
}

/// The four things a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

crate::names::from_name!(LimitClass, "limit_class");

impl LimitClass {
    /// The snake_case name: `"general_key"`, `"user"`, `"scoped_account"`, `"events_key"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitClass::GeneralKey => "general_key",
            LimitClass::User => "user",
            LimitClass::ScopedAccount => "scoped_account",
            LimitClass::EventsKey => "events_key",
        }
    }

    /// Every class, in declaration order.
    pub const ALL: [LimitClass; 4] = [
        LimitClass::GeneralKey,
        LimitClass::User,
        LimitClass::ScopedAccount,
        LimitClass::EventsKey,
    ];

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
///
/// Everything set can be read back: [`RateLimits::limit`] for the defaults,
/// [`RateLimits::account_limit`] / [`RateLimits::account_limits`] and
/// [`RateLimits::key_limit`] / [`RateLimits::key_limits`] for the overrides.
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
            .with_limit(LimitClass::GeneralKey, Some(Limit::per_minute_const(960)))
            .with_limit(LimitClass::User, Some(Limit::per_minute_const(960)))
            .with_limit(
                LimitClass::ScopedAccount,
                Some(Limit::per_minute_const(960)),
            )
            .with_limit(LimitClass::EventsKey, Some(Limit::per_minute_const(120)))
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

    /// The default limit of a class (`None`: unlimited).
    pub fn limit(&self, class: LimitClass) -> Option<Limit> {
        self.defaults[class.index()]
    }

    /// The override set for one account and class: `None` if there is none (the
    /// default applies), `Some(None)` if the account was made unlimited.
    pub fn account_limit(&self, account: &str, class: LimitClass) -> Option<Option<Limit>> {
        self.accounts.get(account).and_then(|a| a[class.index()])
    }

    /// Every account override, as `(account, class, limit)`, sorted by account
    /// then class (`None`: that account is unlimited in that class).
    pub fn account_limits(&self) -> Vec<(&str, LimitClass, Option<Limit>)> {
        let mut v: Vec<_> = self
            .accounts
            .iter()
            .flat_map(|(account, set)| {
                LimitClass::ALL
                    .into_iter()
                    .filter_map(move |c| set[c.index()].map(|l| (account.as_str(), c, l)))
            })
            .collect();
        v.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        v
    }

    /// The override set for one key: `None` if there is none, `Some(None)` if
    /// the key was made unlimited.
    pub fn key_limit(&self, key: KeyId) -> Option<Option<Limit>> {
        self.keys.get(&key).copied()
    }

    /// Every key override, as `(key id, limit)`, sorted by key id (`None`:
    /// that key is unlimited).
    pub fn key_limits(&self) -> Vec<(KeyId, Option<Limit>)> {
        let mut v: Vec<_> = self.keys.iter().map(|(k, l)| (*k, *l)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// The limit that applies to `record`, and the bucket it is counted in.
    #[inline(always)]
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
        let limit = limit?;
        let bucket = match class {
            LimitClass::GeneralKey | LimitClass::EventsKey => RateBucket::Key(record.id),
            LimitClass::User => RateBucket::User {
                account: &record.account,
                user: record.owner.as_deref().unwrap_or(""),
            },
            LimitClass::ScopedAccount => RateBucket::Account(&record.account),
        };
        Some((bucket, limit))
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

    /// Decide this one request without waiting on I/O, if this limiter can:
    /// `Some(decision)`, counted exactly as [`RateLimiter::acquire`] would
    /// have counted it, or `None` when only a call that may wait (a network
    /// round trip) could decide — and then nothing was counted. A limiter that
    /// [may block](RateLimiter::may_block) only sometimes (one that spends a
    /// lease reserved earlier, say) answers most requests here.
    ///
    /// The default asks [`RateLimiter::acquire`] when
    /// [`RateLimiter::may_block`] is false, and answers `None` otherwise.
    fn try_acquire(
        &self,
        bucket: RateBucket<'_>,
        limit: Limit,
        now: Timestamp,
    ) -> Option<Decision> {
        if self.may_block() {
            None
        } else {
            Some(self.acquire(bucket, limit, now))
        }
    }
}

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

/// A limiter's answer in 16 bytes, so that it travels in two registers and
/// the hot path never reads it back from memory: `remaining` after an
/// admission, and `nanos`, positive when admitted (the budget is whole again
/// after that long), negative when refused (a slot frees after `-nanos`).
/// Both durations are at least 1 ms, so the sign is never ambiguous (and 0
/// is free to mean "no limit applies").
#[derive(Clone, Copy, Debug)]
struct Verdict {
    limit: u32,
    remaining: u32,
    nanos: i64,
}

impl Verdict {
    fn nanos(d: Duration) -> i64 {
        i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).max(1)
    }

    fn of(d: Decision) -> Verdict {
        match d {
            Decision::Allowed(s) => Verdict {
                limit: s.limit,
                remaining: s.remaining,
                nanos: Verdict::nanos(s.reset),
            },
            Decision::Limited { limit, retry_after } => Verdict {
                limit,
                remaining: 0,
                nanos: -Verdict::nanos(retry_after),
            },
        }
    }

    #[inline(always)]
    fn result(self) -> std::result::Result<RateLimitStatus, (u32, Duration)> {
        if self.nanos > 0 {
            Ok(RateLimitStatus {
                limit: self.limit,
                remaining: self.remaining,
                reset: Duration::from_nanos(self.nanos as u64),
            })
        } else {
            Err((self.limit, Duration::from_nanos(self.nanos.unsigned_abs())))
        }
    }

    fn decision(self) -> Decision {
        match self.result() {
            Ok(status) => Decision::Allowed(status),
            Err((limit, retry_after)) => Decision::Limited { limit, retry_after },
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
    fn verdict(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Verdict {
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

/// The limits a keyring enforces and the limiter that counts them. The
/// in-process limiter is held by value, so the hot path calls it directly
/// (inlined, its answer in registers) instead of through a `dyn RateLimiter`.
pub(crate) struct Enforcer {
    limits: RateLimits,
    limiter: Limiter,
}

enum Limiter {
    Local(LocalRateLimiter),
    Other(Arc<dyn RateLimiter>),
}

impl Enforcer {
    pub(crate) fn new(limits: RateLimits, limiter: Option<Arc<dyn RateLimiter>>) -> Enforcer {
        Enforcer {
            limits,
            limiter: match limiter {
                Some(l) => Limiter::Other(l),
                None => Limiter::Local(LocalRateLimiter::new()),
            },
        }
    }

    pub(crate) fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Whether counting a request may wait on I/O (a limiter such as Redis's);
    /// the in-process limiter never does.
    pub(crate) fn may_block(&self) -> bool {
        match &self.limiter {
            Limiter::Local(_) => false,
            Limiter::Other(l) => l.may_block(),
        }
    }

    /// Count one request of `record` at `now`: `Ok(None)` when no limit
    /// applies, `Ok(Some(status))` when admitted, `Err((limit, retry_after))`
    /// when over the limit.
    #[inline(always)]
    pub(crate) fn admit(
        &self,
        record: &KeyRecord,
        now: Timestamp,
    ) -> std::result::Result<Option<RateLimitStatus>, (u32, Duration)> {
        let verdict = self.verdict(record, now);
        if verdict.nanos == 0 {
            return Ok(None);
        }
        verdict.result().map(Some)
    }

    /// [`Enforcer::admit`] if it can be decided without waiting on I/O
    /// ([`RateLimiter::try_acquire`]); `None` when it cannot, and then nothing
    /// was counted.
    pub(crate) fn try_admit(
        &self,
        record: &KeyRecord,
        now: Timestamp,
    ) -> Option<std::result::Result<Option<RateLimitStatus>, (u32, Duration)>> {
        match &self.limiter {
            Limiter::Local(_) => Some(self.admit(record, now)),
            Limiter::Other(l) => {
                let Some((bucket, limit)) = self.limits.applicable(record) else {
                    return Some(Ok(None));
                };
                let verdict = Verdict::of(l.try_acquire(bucket, limit, now)?);
                Some(verdict.result().map(Some))
            }
        }
    }

    /// [`Enforcer::admit`]'s work, answering in registers; `nanos == 0`: no
    /// limit applies.
    #[inline(always)]
    fn verdict(&self, record: &KeyRecord, now: Timestamp) -> Verdict {
        let Some((bucket, limit)) = self.limits.applicable(record) else {
            return Verdict {
                limit: 0,
                remaining: 0,
                nanos: 0,
            };
        };
        match &self.limiter {
            Limiter::Local(l) => l.verdict(bucket, limit, now),
            Limiter::Other(l) => other(&**l, bucket, limit, now),
        }
    }
}

/// A limiter of the caller's, out of line and answering in registers, so the
/// local limiter's fast path never goes through memory.
#[inline(never)]
fn other(l: &dyn RateLimiter, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Verdict {
    Verdict::of(l.acquire(bucket, limit, now))
}

/// Counts of requests refused by the limiter, per key: 16 shards by key id,
/// so a flood of refused requests does not queue on one lock.
#[derive(Debug)]
pub(crate) struct Rejections(Box<[Mutex<HashMap<KeyId, u64>>]>);

impl Default for Rejections {
    fn default() -> Self {
        Rejections((0..16).map(|_| Mutex::default()).collect())
    }
}

impl Rejections {
    pub(crate) fn count(&self, id: KeyId) {
        let shard = &self.0[(id.as_u64() >> 32) as usize % self.0.len()];
        *shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert(0) += 1;
    }

    pub(crate) fn snapshot(&self) -> Vec<(KeyId, u64)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .flat_map(|shard| {
                let counts = shard.lock().unwrap_or_else(PoisonError::into_inner);
                counts.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>()
            })
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

    #[test]
    fn limits_refuse_zero_requests_and_absurd_windows() {
        for (requests, window, field) in [
            (0, Duration::from_secs(60), "requests"),
            (10, Duration::ZERO, "window"),
            (10, Duration::from_micros(999), "window"),
            (10, Limit::MAX_WINDOW + Duration::from_millis(1), "window"),
            (10, Duration::MAX, "window"),
        ] {
            match Limit::new(requests, window) {
                Err(Error::InvalidInput { field: f, reason }) => {
                    assert_eq!(f, field, "{requests} per {window:?}: {reason}")
                }
                r => panic!("{requests} per {window:?}: {r:?}"),
            }
        }
        assert!(matches!(
            Limit::per_minute(0),
            Err(Error::InvalidInput {
                field: "requests",
                ..
            })
        ));
    }

    #[test]
    fn limits_keep_whole_milliseconds_within_range() {
        let l = Limit::new(1, Duration::from_millis(1)).unwrap();
        assert_eq!((l.requests(), l.window()), (1, Duration::from_millis(1)));
        let l = Limit::new(u32::MAX, Limit::MAX_WINDOW).unwrap();
        assert_eq!((l.requests(), l.window()), (u32::MAX, Limit::MAX_WINDOW));
        let l = Limit::new(5, Duration::from_micros(1_500)).unwrap();
        assert_eq!(l.window(), Duration::from_millis(1));
        assert_eq!(
            Limit::per_minute(960).unwrap(),
            Limit::per_minute_const(960)
        );
    }

    #[test]
    fn every_override_reads_back() {
        let five = Limit::per_minute(5).unwrap();
        let k1 = KeyId::from_u64(1);
        let k2 = KeyId::from_u64(2);
        let k3 = KeyId::from_u64(3);
        let l = RateLimits::pagerduty()
            .with_limit(LimitClass::EventsKey, None)
            .with_account_limit("globex", LimitClass::User, Some(five))
            .with_account_limit("acme", LimitClass::ScopedAccount, None)
            .with_account_limit("acme", LimitClass::GeneralKey, Some(five))
            .with_key_limit(k2, None)
            .with_key_limit(k1, Some(five));
        assert_eq!(l.limit(LimitClass::EventsKey), None);
        assert_eq!(l.limit(LimitClass::User), Limit::per_minute(960).ok());
        assert_eq!(
            l.account_limit("acme", LimitClass::GeneralKey),
            Some(Some(five))
        );
        assert_eq!(
            l.account_limit("acme", LimitClass::ScopedAccount),
            Some(None)
        );
        assert_eq!(l.account_limit("acme", LimitClass::User), None);
        assert_eq!(l.account_limit("initech", LimitClass::User), None);
        assert_eq!(
            l.account_limits(),
            vec![
                ("acme", LimitClass::GeneralKey, Some(five)),
                ("acme", LimitClass::ScopedAccount, None),
                ("globex", LimitClass::User, Some(five)),
            ]
        );
        assert_eq!(l.key_limit(k1), Some(Some(five)));
        assert_eq!(l.key_limit(k2), Some(None));
        assert_eq!(l.key_limit(k3), None);
        assert_eq!(l.key_limits(), vec![(k1, Some(five)), (k2, None)]);
        assert!(RateLimits::none().account_limits().is_empty());
        assert!(RateLimits::none().key_limits().is_empty());
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
