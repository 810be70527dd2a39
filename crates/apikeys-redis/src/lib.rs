//! A [`RateLimiter`] shared by every process that uses the same Redis.
//!
//! [`RedisRateLimiter`] runs the same sliding-window log as
//! [`apikeys::LocalRateLimiter`], atomically on the Redis server: one Lua
//! script call per request trims the bucket's sorted set to the window, counts
//! it, and adds the request if it fits. N processes sharing a Redis therefore
//! never admit more than the limit together. Times come from the Redis
//! server's clock (`TIME`), so processes on machines whose clocks disagree
//! still share one window.
//!
//! ```no_run
//! use std::sync::Arc;
//! use apikeys::{Keyring, RateLimits};
//! use apikeys_redis::RedisRateLimiter;
//!
//! let limiter = RedisRateLimiter::connect("redis://127.0.0.1:6379/")?;
//! let keyring = Keyring::builder()
//!     .rate_limits(RateLimits::pagerduty())
//!     .rate_limiter(Arc::new(limiter))
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## When Redis is unreachable
//! The behaviour is a choice ([`Fallback`]), made when the limiter is built:
//! - [`Fallback::Local`] (the default): each process goes on enforcing the same
//!   limits on its own, with an in-process limiter. Nothing is refused for want
//!   of Redis, but while it is down N processes may admit up to N × the limit
//!   together (each admits at most the limit).
//! - [`Fallback::Deny`]: every request is refused as rate limited (fail closed).
//! - [`Fallback::Allow`]: every request is admitted (fail open).
//!
//! Either way the limiter reports it: [`RedisRateLimiter::is_degraded`],
//! [`RedisRateLimiter::fallback_count`], [`RedisRateLimiter::last_error`], and
//! the callback given to [`RedisRateLimiterBuilder::on_degraded`], called once
//! each time Redis becomes unreachable. While degraded, Redis is tried again
//! every [`RedisRateLimiterBuilder::retry_interval`] (not on every request),
//! and every Redis call has a timeout, so an outage never stalls requests for long.
//!
//! ## Leases: shared limits without a round trip per request
//! With [`RedisRateLimiterBuilder::lease`], a process reserves a *lease* of
//! a bucket's budget — the request at hand plus up to `k - 1` admissions more —
//! in one script call, and spends the rest in memory while the lease lives
//! (one shard lock and a table probe, as in the in-process limiter). The
//! guarantee does not change: across every process, no window of the limit's
//! length admits more than the limit (in whole milliseconds, as without leases).
//!
//! ```no_run
//! use apikeys_redis::{LeaseOptions, RedisRateLimiter};
//!
//! let limiter = RedisRateLimiter::builder("redis://127.0.0.1:6379/")
//!     .lease(LeaseOptions::default())
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **The log.** Redis keeps each bucket's sliding-window log as a sorted set,
//! one member per admission, scored with *the last moment it may be used*: the
//! request decided by the call at `now` (Redis's `TIME`, in ms, as without
//! leases), each leased admission at `now + d + 1`, `d` being the lease's life.
//! The script drops the members scored at or before `now - window`, counts
//! the rest — members scored in the future included — and grants `k`
//! admissions only if the count plus `k` is at most the limit. The exact
//! limiter's script reads the same log, so processes with and without leases
//! can share a bucket (during a rolling switch, say).
//!
//! **Why no window admits more than the limit.** Each admission `i` is
//! granted by a script run at Redis time `r_i`, used at `u_i >= r_i`, and
//! scored `s_i >= u_i`: the request at hand is used at once (`s_i = r_i`, in
//! ms), and a process spends a leased one only before `t + d`, where `t` is
//! read on its monotonic clock *before* the call is sent, so `t <= r_i` and
//! `u_i < r_i + d < s_i`. A member leaves the log only when a script runs at
//! some time `>= s_i + window`. Now take any window `(a - window, a]` and the
//! admissions used in it, and among them the one, `j`, granted by the latest
//! script run (scripts run one at a time). Every other one, `i`, was granted
//! by that run or an earlier one, and `s_i >= u_i > a - window >= r_j - window`
//! (as `r_j <= u_j <= a`): it is still in the log when `j`'s run counts. That
//! run granted its `k` only if what it counted plus `k` was at most the limit,
//! and those are all of the window's admissions: at most the limit. An
//! admission never used changes nothing but the count (over-counting), and
//! only those are ever given back (below). This
//! assumes, as the exact limiter does, that Redis's clock does not step back,
//! and that it runs at the rate of the processes' monotonic clocks: a process
//! stops spending `d / 256` (0.4 %) before `t + d`, and Redis adds 1 ms for its
//! whole-millisecond clock.
//!
//! **How long a lease lives.** `d` = [`LeaseOptions::with_max_duration`]
//! (default 1 s) or a tenth of the window, whichever is shorter, in whole ms;
//! windows under 20 ms are not leased. A leased admission counts until
//! `d + window` after it was reserved, so an unused one (or one used early)
//! over-counts by at most `d` — a tenth of a window.
//!
//! **How big a lease is.** `k = floor(remaining * share / P)`, at most
//! what the process wants and [`LeaseOptions::with_max_size`] (default 64),
//! and 1 if that is under 2 — `remaining` being the limit less the log's
//! count, `share` [`LeaseOptions::with_share`] (default ¼), `P` the processes
//! that asked for a lease in this bucket during the last window (a second
//! sorted set, `<prefix>p:<bucket>`). What a process wants follows its
//! demand: 1 at first, twice the last lease when that was spent within its
//! life, what it used when a lease lived out, 1 again after a pause. So:
//! - a lease never takes more than `share / P` of what remains: the rest stays
//!   for whoever asks, and what idle leases can hold back is bounded;
//! - when little remains (`remaining * share / P < 2`) every request is one
//!   exact round trip, as without leases — and a limit under 8 (with the
//!   default share) is never leased at all: low limits degrade to today's
//!   exact behaviour, and no process is refused while Redis has budget;
//! - a bucket that gets fewer than about two requests per lease life in a
//!   process is not leased either (and costs one round trip per request).
//!
//! **Unused admissions.** When a lease lives out, or is replaced, its unused
//! admissions are given back (`ZREM`, by name) at the start of the process's
//! next call for that bucket; [`RedisRateLimiter::release_leases`] and
//! dropping the limiter give back every one. If the process dies instead,
//! they stay counted until `d + window` after their reservation, as if used
//! at the last moment: over-counted, never under-counted. A lease is spent
//! only for requests under the limit it was reserved under; a request under
//! another limit (keys with different overrides sharing a user's bucket) asks
//! Redis, which first takes the lease's unused admissions back.
//!
//! **Refusals.** When Redis refuses a bucket, the process repeats the refusal
//! until the retry time Redis gave (counted from before the call), so a flood
//! of refused requests costs no round trips either.
//!
//! **When Redis is down**, the [`Fallback`] applies as without leases. What is
//! left of a lease reserved before the outage is spent (it is counted in
//! Redis); the first call that fails starts the outage, and from then on
//! leases taken before it are never spent (a restarted Redis may have lost
//! them) and the fallback decides every request until Redis answers again.
//!
//! **Waiting.** [`RateLimiter::may_block`] stays `true` (some requests need
//! Redis); [`RateLimiter::try_acquire`] answers, request by request, from a
//! lease, a refusal, or the fallback during an outage, and says `None` when
//! the request needs Redis.
//!
//! **Cost.** `cargo bench -p apikeys-redis` measures, in one run, the
//! in-process limiter, one exact decision through Redis, and the leasing
//! limiter (docs/ratelimits.md has figures). A lease of `k` costs the server
//! work on `k` members, so even a hot key pays about a microsecond per
//! admission on the server, amortised; the local spend costs about what the
//! in-process limiter does.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod lease;

pub use lease::LeaseOptions;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use apikeys::{
    Decision, Limit, LocalRateLimiter, RateBucket, RateLimitStatus, RateLimiter, StoreError,
    Timestamp,
};
use rand_core::TryRng;

/// What to do while Redis is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Enforce the limits in this process alone (the default).
    #[default]
    Local,
    /// Refuse every request as rate limited.
    Deny,
    /// Admit every request.
    Allow,
}

/// The script: trim to the window, count, add if it fits. Returns
/// `{1, remaining, reset_ms}` or `{0, retry_after_ms, 0}`.
const SCRIPT: &str = r#"
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n < limit then
  redis.call('ZADD', key, now, ARGV[3])
  -- The key lives until its newest entry leaves the window (a leasing
  -- limiter's entries may lie in the future: never shorten their life).
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', key, tonumber(last[2]) + window - now)
  return {1, limit - n - 1, window}
end
-- Entries beyond the limit (it was lowered) still count until they leave the
-- window: a slot frees when entry n - limit does.
local frees = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
local retry = tonumber(frees[2]) + window - now
if retry < 1 then retry = 1 end
return {0, retry, 0}
"#;

type DegradedHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Builds a [`RedisRateLimiter`].
pub struct RedisRateLimiterBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    retry_interval: Duration,
    fallback: Fallback,
    on_degraded: Option<DegradedHook>,
    lease: Option<LeaseOptions>,
}

impl fmt::Debug for RedisRateLimiterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiterBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("retry_interval", &self.retry_interval)
            .field("fallback", &self.fallback)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiterBuilder {
    /// Prefix of every Redis key the limiter writes (default `apikeys:rl:`).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }
    /// Timeout of connecting and of each call (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }
    /// How long to wait, once Redis failed, before trying it again (default 1 s).
    pub fn retry_interval(mut self, d: Duration) -> Self {
        self.retry_interval = d;
        self
    }
    /// What to do while Redis is unreachable (default [`Fallback::Local`]).
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }
    /// Called (with the error) each time Redis becomes unreachable.
    pub fn on_degraded(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_degraded = Some(Arc::new(hook));
        self
    }
    /// Reserve leases of each bucket's budget in Redis and spend them in this
    /// process, instead of asking Redis for every request (see the crate docs,
    /// "Leases"). Without this call (the default) every request is one Redis
    /// round trip.
    pub fn lease(mut self, options: LeaseOptions) -> Self {
        self.lease = Some(options);
        self
    }
    /// The limiter. Checks the URL, but does not connect yet.
    pub fn build(self) -> Result<RedisRateLimiter, StoreError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| StoreError::unavailable(format!("bad Redis URL: {e}"), e))?;
        let mut seed = [0u8; 8];
        getrandom::SysRng.try_fill_bytes(&mut seed).map_err(|e| {
            StoreError::unavailable(format!("no randomness for member ids: {e}"), e)
        })?;
        Ok(RedisRateLimiter {
            client,
            pool: Mutex::new(Vec::new()),
            script: redis::Script::new(SCRIPT),
            prefix: self.prefix,
            timeout: self.timeout,
            retry_interval: self.retry_interval,
            fallback: self.fallback,
            on_degraded: self.on_degraded,
            local: LocalRateLimiter::new(),
            epoch: Instant::now(),
            retry_at_ns: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            fallbacks: AtomicU64::new(0),
            last_error: Mutex::new(None),
            member_prefix: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
            redis_calls: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            leases: self.lease.map(lease::Leases::new),
        })
    }
}

/// A rate limiter whose counts live in Redis (see the crate docs).
pub struct RedisRateLimiter {
    client: redis::Client,
    pool: Mutex<Vec<redis::Connection>>,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    retry_interval: Duration,
    fallback: Fallback,
    on_degraded: Option<DegradedHook>,
    local: LocalRateLimiter,
    epoch: Instant,
    /// While degraded: nanoseconds after `epoch` at which Redis is tried again.
    retry_at_ns: AtomicU64,
    degraded: AtomicBool,
    fallbacks: AtomicU64,
    last_error: Mutex<Option<String>>,
    member_prefix: u64,
    counter: AtomicU64,
    redis_calls: AtomicU64,
    /// Bumped each time Redis becomes unreachable: leases of an earlier
    /// generation are never spent again.
    generation: AtomicU64,
    leases: Option<lease::Leases>,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("fallback", &self.fallback)
            .field("degraded", &self.is_degraded())
            .field("fallbacks", &self.fallback_count())
            .field("lease", &self.lease_options())
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Configure a limiter for the Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: &str) -> RedisRateLimiterBuilder {
        RedisRateLimiterBuilder {
            url: url.to_owned(),
            prefix: "apikeys:rl:".to_owned(),
            timeout: Duration::from_millis(250),
            retry_interval: Duration::from_secs(1),
            fallback: Fallback::Local,
            on_degraded: None,
            lease: None,
        }
    }

    /// A limiter with the defaults, after checking that Redis answers.
    pub fn connect(url: &str) -> Result<RedisRateLimiter, StoreError> {
        let l = RedisRateLimiter::builder(url).build()?;
        let mut con = l.connection()?;
        redis::cmd("PING")
            .query::<String>(&mut con)
            .map_err(|e| StoreError::unavailable(format!("Redis did not answer PING: {e}"), e))?;
        l.give_back(con);
        Ok(l)
    }

    /// Whether Redis was unreachable at the last try (requests then follow the [`Fallback`]).
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    /// How many requests were decided by the fallback instead of Redis.
    pub fn fallback_count(&self) -> u64 {
        self.fallbacks.load(Ordering::SeqCst)
    }

    /// How many calls this limiter made to Redis (successful or not). Without
    /// leases that is one per request decided by Redis; with them, fewer.
    pub fn redis_calls(&self) -> u64 {
        self.redis_calls.load(Ordering::Relaxed)
    }

    /// The lease options, if this limiter leases (see
    /// [`RedisRateLimiterBuilder::lease`]).
    pub fn lease_options(&self) -> Option<LeaseOptions> {
        self.leases.as_ref().map(|l| l.options())
    }

    /// Give every unused leased admission back to Redis now, so that other
    /// processes can use it at once (best effort: when Redis cannot be reached
    /// they are simply counted until they expire). Dropping the limiter does
    /// this too; call it before a process exits without dropping it. Does
    /// nothing without leases.
    pub fn release_leases(&self) {
        if let Some(l) = &self.leases {
            l.release_all(self);
        }
    }

    /// The last Redis error seen, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn connection(&self) -> Result<redis::Connection, StoreError> {
        if let Some(c) = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(c);
        }
        let con = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| StoreError::unavailable(format!("cannot connect to Redis: {e}"), e))?;
        con.set_read_timeout(Some(self.timeout))
            .and_then(|_| con.set_write_timeout(Some(self.timeout)))
            .map_err(|e| StoreError::unavailable(format!("cannot set Redis timeouts: {e}"), e))?;
        Ok(con)
    }

    fn give_back(&self, con: redis::Connection) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 64 {
            pool.push(con);
        }
    }

    fn member(&self) -> String {
        format!(
            "{:x}-{:x}",
            self.member_prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn key(&self, bucket: RateBucket<'_>) -> String {
        format!("{}{}", self.prefix, bucket.name())
    }

    /// One exact decision: one script call.
    fn exact(&self, bucket: RateBucket<'_>, limit: Limit) -> Result<Decision, StoreError> {
        self.redis_calls.fetch_add(1, Ordering::Relaxed);
        let mut con = self.connection()?;
        let key = self.key(bucket);
        let member = self.member();
        let window_ms = limit.window().as_millis().clamp(1, i64::MAX as u128) as i64;
        let out: Vec<i64> = self
            .script
            .key(key)
            .arg(limit.requests())
            .arg(window_ms)
            .arg(member)
            .invoke(&mut con)
            .map_err(|e| {
                StoreError::unavailable(format!("Redis rate-limit script failed: {e}"), e)
            })?;
        self.give_back(con);
        match out.as_slice() {
            [1, remaining, reset] => Ok(Decision::Allowed(RateLimitStatus {
                limit: limit.requests(),
                remaining: (*remaining).clamp(0, u32::MAX as i64) as u32,
                reset: Duration::from_millis((*reset).max(0) as u64),
            })),
            [0, retry, _] => Ok(Decision::Limited {
                limit: limit.requests(),
                retry_after: Duration::from_millis((*retry).max(1) as u64),
            }),
            other => Err(StoreError::Corrupt(
                format!("unexpected rate-limit script answer {other:?}").into(),
            )),
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }

    fn fall_back(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision {
        self.fallbacks.fetch_add(1, Ordering::SeqCst);
        match self.fallback {
            Fallback::Local => self.local.acquire(bucket, limit, now),
            Fallback::Deny => Decision::Limited {
                limit: limit.requests(),
                retry_after: self.retry_interval.max(Duration::from_millis(1)),
            },
            Fallback::Allow => Decision::Allowed(RateLimitStatus {
                limit: limit.requests(),
                remaining: limit.requests().saturating_sub(1),
                reset: limit.window(),
            }),
        }
    }
}

impl RedisRateLimiter {
    /// Whether Redis is known to be unreachable and not due for another try.
    #[inline]
    fn in_outage(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
            && self.now_ns() < self.retry_at_ns.load(Ordering::SeqCst)
    }

    /// Redis answered: end an outage, if one was going on.
    fn redis_answered(&self) {
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::SeqCst) {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Redis failed: start (or prolong) an outage, and report a new one.
    fn redis_failed(&self, e: StoreError) {
        let msg = e.to_string();
        let retry = self
            .now_ns()
            .saturating_add(self.retry_interval.as_nanos().min(u64::MAX as u128) as u64);
        self.retry_at_ns.store(retry, Ordering::SeqCst);
        // A broken pool is thrown away; connections are made again on recovery.
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let newly = !self.degraded.swap(true, Ordering::SeqCst);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(msg.clone());
        if newly {
            // Leases taken before the outage are not spent after it (Redis
            // may have restarted empty): the fallback decides, as without them.
            self.generation.fetch_add(1, Ordering::SeqCst);
            if let Some(hook) = &self.on_degraded {
                hook(&msg);
            }
        }
    }

    /// Ask Redis, and follow the fallback if it cannot answer.
    fn ask_redis(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision {
        let answer = match &self.leases {
            Some(l) => l.reserve(self, bucket, limit),
            None => self.exact(bucket, limit),
        };
        match answer {
            Ok(d) => {
                self.redis_answered();
                d
            }
            Err(e) => {
                self.redis_failed(e);
                self.fall_back(bucket, limit, now)
            }
        }
    }
}

impl RateLimiter for RedisRateLimiter {
    /// Always `true`: some requests are counted by a round trip to Redis
    /// (every request without leases; with them, the one that finds its
    /// bucket's lease spent or expired). [`RateLimiter::try_acquire`] says
    /// which, request by request.
    fn may_block(&self) -> bool {
        true
    }

    /// Counts in Redis, or spends a lease reserved there; `now` is used only
    /// by the fallback (Redis has its own clock, leases a monotonic one).
    fn acquire(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision {
        if self.in_outage() {
            return self.fall_back(bucket, limit, now);
        }
        if let Some(l) = &self.leases {
            if let Some(d) = l.spend(self, bucket, limit) {
                return d;
            }
        }
        self.ask_redis(bucket, limit, now)
    }

    /// Decides without Redis when it can: during an outage (the
    /// [`Fallback`] decides), and with leases when the bucket's lease has an
    /// admission left, or Redis refused the bucket a moment ago and the
    /// refusal still holds. `None` otherwise: that request needs Redis.
    fn try_acquire(
        &self,
        bucket: RateBucket<'_>,
        limit: Limit,
        now: Timestamp,
    ) -> Option<Decision> {
        if self.in_outage() {
            return Some(self.fall_back(bucket, limit, now));
        }
        self.leases.as_ref()?.spend(self, bucket, limit)
    }
}

impl Drop for RedisRateLimiter {
    fn drop(&mut self) {
        self.release_leases();
    }
}
