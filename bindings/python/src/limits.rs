//! Rate limits: `RateLimits`, `Limit`, `RateLimitStatus` and the Redis limiter.
//!
//! Decisions:
//! - Windows, `reset` and `retry_after` are seconds as `float` (the unit of
//!   `time.sleep` and of the `retry-after` header); a window may also be given
//!   as a `timedelta`.
//! - Limit classes are strings: `"general_key"`, `"user"`, `"scoped_account"`,
//!   `"events_key"`. `None` as a limit means unlimited.
//! - `RateLimits` is immutable: every `with_…` returns a new value; what was
//!   set reads back with `limit`, `account_limits()` and `key_limits()`.
//! - `Limit` checks come from the core (`Limit::new`): at least one request, a
//!   window of 1 ms to 31 days; the window is taken to the microsecond, then
//!   counted in whole milliseconds.

use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDelta, PyDeltaAccess, PyDict, PyFloat, PyInt};

use apikeys::{KeyId, LimitClass};

use crate::convert::{self, text};
use crate::errors;

fn class(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<LimitClass> {
    text(v, "limit_class")?
        .parse::<LimitClass>()
        .map_err(|e| errors::to_py(py, e))
}

fn class_name(c: LimitClass) -> &'static str {
    c.as_str()
}

/// Seconds as given (int, float or `timedelta`), type-checked only.
fn seconds_f64(v: &Bound<'_, PyAny>, field: &'static str) -> PyResult<f64> {
    if let Ok(d) = v.cast::<PyDelta>() {
        Ok(f64::from(d.get_days()) * 86_400.0
            + f64::from(d.get_seconds())
            + f64::from(d.get_microseconds()) / 1e6)
    } else if (v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>())
        && !v.is_instance_of::<pyo3::types::PyBool>()
    {
        v.extract::<f64>()
    } else {
        Err(convert::wrong_type(v, field, "float or datetime.timedelta"))
    }
}

/// Seconds (int, float or `timedelta`) as a positive `Duration`.
pub(crate) fn seconds(
    py: Python<'_>,
    v: &Bound<'_, PyAny>,
    field: &'static str,
) -> PyResult<Duration> {
    let secs = seconds_f64(v, field)?;
    if !(0.001..=366.0 * 86_400.0).contains(&secs) {
        return Err(errors::invalid(
            py,
            field,
            "must be between one millisecond and a year",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `requests` per `window` seconds.
#[pyclass(frozen, eq, hash, module = "apikeys")]
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
pub struct Limit(pub(crate) apikeys::Limit);

#[pymethods]
impl Limit {
    #[new]
    fn new(
        py: Python<'_>,
        requests: &Bound<'_, PyAny>,
        window: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if !requests.is_instance_of::<PyInt>() || requests.is_instance_of::<pyo3::types::PyBool>() {
            return Err(convert::wrong_type(requests, "requests", "int"));
        }
        // Out of u32's range is a conversion error here; zero is the core's to refuse.
        let n: u32 = requests
            .extract::<u64>()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| errors::invalid(py, "requests", "must be between 1 and 4294967295"))?;
        let secs = seconds_f64(window, "window")?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(errors::invalid(
                py,
                "window",
                "must be a finite, positive number of seconds",
            ));
        }
        // To the microsecond first (a timedelta's precision), so that 1.001 s is
        // 1001 ms and not 1000.999…; the core counts whole milliseconds and
        // refuses a window under 1 ms or over 31 days.
        let window = Duration::from_micros((secs * 1e6).round() as u64);
        apikeys::Limit::new(n, window)
            .map(Limit)
            .map_err(|e| errors::to_py(py, e))
    }
    /// `requests` per minute.
    #[staticmethod]
    fn per_minute(py: Python<'_>, requests: &Bound<'_, PyAny>) -> PyResult<Self> {
        Limit::new(py, requests, &PyFloat::new(py, 60.0).into_any())
    }
    /// Requests admitted per window.
    #[getter]
    fn requests(&self) -> u32 {
        self.0.requests()
    }
    /// The window in seconds (whole milliseconds).
    #[getter]
    fn window(&self) -> f64 {
        self.0.window().as_secs_f64()
    }
    fn __repr__(&self) -> String {
        format!(
            "Limit({}, {:?})",
            self.0.requests(),
            self.0.window().as_secs_f64()
        )
    }
}

fn opt_limit(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<apikeys::Limit>> {
    match v.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) => Ok(Some(convert::instance::<Limit>(v, "limit")?.get().0)),
    }
}

/// Which limit applies to which key: a default per class, then overrides per
/// account and per key (a key's wins over its account's, which wins over the
/// default). Immutable: every `with_…` returns a new `RateLimits`.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq, Eq, Clone)]
pub struct RateLimits(pub(crate) apikeys::RateLimits);

#[pymethods]
impl RateLimits {
    /// No limits (add some with the `with_…` methods).
    #[staticmethod]
    fn none() -> Self {
        RateLimits(apikeys::RateLimits::none())
    }
    /// PagerDuty's limits: 960 a minute per general key, per user (all of
    /// their tokens) and per account (its scoped tokens); 120 a minute per
    /// Events key.
    #[staticmethod]
    fn pagerduty() -> Self {
        RateLimits(apikeys::RateLimits::pagerduty())
    }
    /// The default limit of a class (`None`: unlimited).
    fn with_limit(
        &self,
        py: Python<'_>,
        limit_class: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let c = class(py, limit_class)?;
        Ok(RateLimits(self.0.clone().with_limit(c, opt_limit(limit)?)))
    }
    /// One account's limit for a class (`None`: unlimited for that account).
    fn with_account_limit(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        limit_class: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let account = text(account, "account")?;
        let c = class(py, limit_class)?;
        Ok(RateLimits(self.0.clone().with_account_limit(
            account,
            c,
            opt_limit(limit)?,
        )))
    }
    /// One key's limit, by key id (`None`: unlimited). For a user or scoped
    /// token it sets the limit of the bucket the key counts in whenever this
    /// key is the one used.
    fn with_key_limit(
        &self,
        py: Python<'_>,
        key_id: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let id = KeyId::parse(text(key_id, "key_id")?)
            .ok_or_else(|| errors::invalid(py, "key_id", "is not a key id"))?;
        Ok(RateLimits(
            self.0.clone().with_key_limit(id, opt_limit(limit)?),
        ))
    }
    /// The default limit of a class (`None`: unlimited).
    fn limit(&self, py: Python<'_>, limit_class: &Bound<'_, PyAny>) -> PyResult<Option<Limit>> {
        Ok(self.0.limit(class(py, limit_class)?).map(Limit))
    }
    /// Every account override: `{account: {limit_class: Limit or None}}`,
    /// with only the classes set for that account (`None`: made unlimited).
    fn account_limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (account, c, limit) in self.0.account_limits() {
            let per = match out.get_item(account)? {
                Some(d) => d.cast_into::<PyDict>()?,
                None => {
                    let d = PyDict::new(py);
                    out.set_item(account, &d)?;
                    d
                }
            };
            per.set_item(class_name(c), limit.map(Limit))?;
        }
        Ok(out)
    }
    /// Every key override: `{key_id: Limit or None}` (`None`: made unlimited).
    fn key_limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (id, limit) in self.0.key_limits() {
            out.set_item(id.to_string(), limit.map(Limit))?;
        }
        Ok(out)
    }
    fn __repr__(&self) -> String {
        let show = |c| match self.0.limit(c) {
            Some(l) => format!("{}/{:?}s", l.requests(), l.window().as_secs_f64()),
            None => "None".to_owned(),
        };
        format!(
            "RateLimits(general_key={}, user={}, scoped_account={}, events_key={}, account_overrides={}, key_overrides={})",
            show(LimitClass::GeneralKey),
            show(LimitClass::User),
            show(LimitClass::ScopedAccount),
            show(LimitClass::EventsKey),
            self.0.account_limits().len(),
            self.0.key_limits().len()
        )
    }
}

/// A successful request's standing against its limit.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq)]
pub struct RateLimitStatus {
    limit: u32,
    remaining: u32,
    reset: f64,
}

impl RateLimitStatus {
    pub(crate) fn new(s: &apikeys::RateLimitStatus) -> Self {
        RateLimitStatus {
            limit: s.limit,
            remaining: s.remaining,
            reset: s.reset.as_secs_f64(),
        }
    }
}

#[pymethods]
impl RateLimitStatus {
    /// Requests allowed per window (`ratelimit-limit`).
    #[getter]
    fn limit(&self) -> u32 {
        self.limit
    }
    /// Requests still allowed in this window (`ratelimit-remaining`).
    #[getter]
    fn remaining(&self) -> u32 {
        self.remaining
    }
    /// Seconds until the budget is whole again (`ratelimit-reset`, rounded up).
    #[getter]
    fn reset(&self) -> f64 {
        self.reset
    }
    fn __repr__(&self) -> String {
        format!(
            "RateLimitStatus(limit={}, remaining={}, reset={:?})",
            self.limit, self.remaining, self.reset
        )
    }
}

/// Counts requests in Redis, so that every process sharing it enforces one
/// limit together. `fallback` says what happens while Redis is unreachable:
/// `"local"` (the default: count in this process alone), `"deny"` (refuse as
/// rate limited) or `"allow"` (admit).
#[pyclass(frozen, module = "apikeys")]
pub struct RedisRateLimiter(pub(crate) Arc<apikeys_redis::RedisRateLimiter>);

#[pymethods]
impl RedisRateLimiter {
    #[new]
    #[pyo3(signature = (url, *, fallback = None, prefix = None, timeout = None))]
    fn new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        fallback: Option<&Bound<'_, PyAny>>,
        prefix: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        use apikeys_redis::Fallback;
        let url = text(url, "url")?;
        let mut b = apikeys_redis::RedisRateLimiter::builder(url);
        if let Some(f) = fallback.filter(|v| !v.is_none()) {
            b = b.fallback(match text(f, "fallback")? {
                "local" => Fallback::Local,
                "deny" => Fallback::Deny,
                "allow" => Fallback::Allow,
                _ => {
                    return Err(errors::invalid(
                        py,
                        "fallback",
                        "must be 'local', 'deny' or 'allow'",
                    ));
                }
            });
        }
        if let Some(p) = prefix.filter(|v| !v.is_none()) {
            b = b.prefix(text(p, "prefix")?);
        }
        if let Some(t) = timeout.filter(|v| !v.is_none()) {
            b = b.timeout(seconds(py, t, "timeout")?);
        }
        let limiter = py
            .detach(|| b.build())
            .map_err(|e| errors::to_py(py, apikeys::Error::Store(e)))?;
        Ok(RedisRateLimiter(Arc::new(limiter)))
    }
    /// Whether Redis is unreachable right now (the fallback is in force).
    #[getter]
    fn is_degraded(&self) -> bool {
        self.0.is_degraded()
    }
    /// How many requests were decided by the fallback so far.
    #[getter]
    fn fallback_count(&self) -> u64 {
        self.0.fallback_count()
    }
    fn __repr__(&self) -> String {
        format!(
            "RedisRateLimiter(degraded={})",
            if self.0.is_degraded() {
                "True"
            } else {
                "False"
            }
        )
    }
}
