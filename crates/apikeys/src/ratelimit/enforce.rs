//! What a keyring enforces: the [`Enforcer`] (its limits and the limiter
//! that counts them, called on the hot path) and the [`Rejections`] it counts
//! per key.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hashbrown::HashMap;

use super::{
    Limit, LocalRateLimiter, RateBucket, RateLimitStatus, RateLimiter, RateLimits, Verdict,
};
use crate::record::{KeyId, KeyRecord, Timestamp};

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
