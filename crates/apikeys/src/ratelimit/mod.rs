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

mod enforce;
mod limits;
mod local;

use std::time::Duration;

use crate::record::Timestamp;

pub(crate) use enforce::{Enforcer, Rejections};
pub use limits::{Limit, LimitClass, RateBucket, RateLimits};
pub use local::LocalRateLimiter;

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
