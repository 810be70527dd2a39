//! Rate limits: how many requests a key, a user or an account may make per window.

use std::time::Duration;

/// Where a request stands against its rate limit, for the `ratelimit-limit`,
/// `ratelimit-remaining` and `ratelimit-reset` response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests still allowed in the current window, after this one.
    pub remaining: u32,
    /// Time until the window's budget is whole again.
    pub reset: Duration,
}
