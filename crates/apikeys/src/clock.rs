//! [`Clock`]: where the keyring reads the time, so tests can move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::record::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock (the default).
///
/// On Linux it reads the coarse real-time clock (`CLOCK_REALTIME_COARSE`,
/// through the vDSO): resolution of a few milliseconds, which is all that
/// expiry and last-used times need, for about a fifth of the cost of the
/// precise clock on the authentication hot path. Elsewhere it is
/// [`std::time::SystemTime::now`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let ts = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
            let ms = (ts.tv_sec.max(0) as u64).saturating_mul(1000)
                + (ts.tv_nsec.max(0) as u64) / 1_000_000;
            Timestamp::from_unix_millis(ms)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            Timestamp::now()
        }
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(start.unix_millis())))
    }

    /// Move forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(d.as_millis().min(u64::MAX as u128) as u64, Ordering::SeqCst);
    }

    /// Set the time.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}
