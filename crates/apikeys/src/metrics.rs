//! Verification metrics: the final answer of every authentication, counted
//! per key kind and outcome, and its latency (docs/design.md §12, docs/metrics.md).
//!
//! Off unless a keyring is built with [`KeyringBuilder::metrics`](crate::KeyringBuilder::metrics):
//! then [`Keyring::authenticate`](crate::Keyring::authenticate),
//! `authenticate_from` and `try_authenticate(_from)` hand their **final**
//! answer — after the permission, plan and rate-limit checks — to
//! [`AuthMetrics`], once per call. A request refused for its rate limit counts
//! as `rate_limited`, never as `ok` first. Off, the hot path pays one test of
//! a pointer and reads no clock.
//!
//! The counts live in stripes, one cache-aligned block per thread slot
//! (threads take slots in turn), so two threads seldom write the same cache
//! line; [`AuthMetrics::snapshot`] adds the stripes up. The bindings turn a
//! snapshot into `prometheus_client` and `prom-client` metrics; with the
//! `metrics` cargo feature, [`AuthMetrics::forwarding`] also sends each answer
//! to the [`metrics`](https://docs.rs/metrics) crate's recorder.
//!
//! Labels are the key's kind (as the token's format says; `malformed` when
//! it has none) and the outcome's name: never anything of the key.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::key::KeyKind;
use crate::keyring::Principal;

/// The final answer of one authentication, as metrics name it: `ok` or the
/// refusal's [`Error::kind_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// Authenticated: every check passed, the rate limit admitted it.
    Ok,
    /// [`Error::Unauthorized`]: malformed, unknown, disabled, expired, rotated, owner removed.
    Unauthorized,
    /// [`Error::WrongApi`]: a key of the other API.
    WrongApi,
    /// [`Error::Forbidden`]: a valid key that may not make this request.
    Forbidden,
    /// [`Error::PlanRestricted`]: the account's plan lacks the feature.
    PlanRestricted,
    /// [`Error::RateLimited`]: over the rate limit (the key is valid).
    RateLimited,
    /// [`Error::Store`]: the store failed, no answer on the key (HTTP 500).
    Store,
}

impl AuthOutcome {
    /// Every outcome, in the order of [`AuthMetrics::snapshot`].
    pub const ALL: [AuthOutcome; 7] = [
        AuthOutcome::Ok,
        AuthOutcome::Unauthorized,
        AuthOutcome::WrongApi,
        AuthOutcome::Forbidden,
        AuthOutcome::PlanRestricted,
        AuthOutcome::RateLimited,
        AuthOutcome::Store,
    ];

    /// The label: `"ok"`, else the error's [`Error::kind_name`] (`"unauthorized"`, `"wrong_api"`,
    /// `"forbidden"`, `"plan_restricted"`, `"rate_limited"`, `"store"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Ok => "ok",
            AuthOutcome::Unauthorized => "unauthorized",
            AuthOutcome::WrongApi => "wrong_api",
            AuthOutcome::Forbidden => "forbidden",
            AuthOutcome::PlanRestricted => "plan_restricted",
            AuthOutcome::RateLimited => "rate_limited",
            AuthOutcome::Store => "store",
        }
    }

    /// The outcome of an authentication that answered `e`. Authentication
    /// answers no other error than these; anything else would count as `store`
    /// (a failure to answer).
    pub fn of_error(e: &Error) -> AuthOutcome {
        match e {
            Error::Unauthorized(_) => AuthOutcome::Unauthorized,
            Error::WrongApi { .. } => AuthOutcome::WrongApi,
            Error::Forbidden { .. } => AuthOutcome::Forbidden,
            Error::PlanRestricted { .. } => AuthOutcome::PlanRestricted,
            Error::RateLimited { .. } => AuthOutcome::RateLimited,
            _ => AuthOutcome::Store,
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

crate::names::from_name!(AuthOutcome, "outcome");

/// The `kind` label of a token that is in no key format.
pub const MALFORMED_KIND: &str = "malformed";

/// The `kind` labels, in the order of [`AuthMetrics::snapshot`]: the five
/// [`KeyKind`] names, then [`MALFORMED_KIND`].
pub const KIND_LABELS: [&str; 6] = [
    KeyKind::General.as_str(),
    KeyKind::UserToken.as_str(),
    KeyKind::Scoped.as_str(),
    KeyKind::Integration.as_str(),
    KeyKind::Routing.as_str(),
    MALFORMED_KIND,
];

/// The latency histogram's bucket bounds, in seconds (Prometheus' `le`,
/// inclusive): 1 µs to 1 s. An authentication from memory takes a fraction
/// of a microsecond; one that reads PostgreSQL, milliseconds.
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
];

/// The same bounds in nanoseconds, for the hot path.
const BUCKETS_NS: [u64; 18] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

const KINDS: usize = KIND_LABELS.len();
const OUTCOMES: usize = AuthOutcome::ALL.len();
/// Cells of one (kind, outcome) series: a count per bucket (the last is
/// `+Inf`), then the sum of latencies in nanoseconds.
const CELLS: usize = BUCKETS_NS.len() + 2;
const SUM: usize = CELLS - 1;
const MAX_STRIPES: usize = 64;

/// One thread slot's counts, aligned so that no two stripes share a cache
/// line (128 bytes: the pair of lines x86 prefetches together).
#[repr(align(128))]
struct Stripe {
    cells: [AtomicU64; KINDS * OUTCOMES * CELLS],
}

impl Stripe {
    fn new() -> Stripe {
        Stripe {
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Hands out thread slots in turn.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn thread_slot() -> usize {
    SLOT.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
        s.set(v);
        v
    })
}

/// The counts and latencies of authentications' final answers, per key kind
/// and outcome. Share one between keyrings (an `Arc`) to add them up.
///
/// ```
/// use std::sync::Arc;
/// use apikeys::{AuthMetrics, Keyring, Request};
///
/// let metrics = Arc::new(AuthMetrics::new());
/// let keyring = Keyring::builder().metrics(metrics.clone()).build()?;
/// let _ = keyring.authenticate("not a key", &Request::rest("GET"));
/// let snap = metrics.snapshot();
/// let s = snap.series("malformed", "unauthorized").expect("counted");
/// assert_eq!(s.count, 1);
/// assert_eq!(snap.total(), 1);
/// # Ok::<(), apikeys::Error>(())
/// ```
pub struct AuthMetrics {
    stripes: Box<[Stripe]>,
    #[cfg(feature = "metrics")]
    forward: bool,
}

impl std::fmt::Debug for AuthMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMetrics")
            .field("stripes", &self.stripes.len())
            .finish_non_exhaustive()
    }
}

impl Default for AuthMetrics {
    fn default() -> Self {
        AuthMetrics::new()
    }
}

impl AuthMetrics {
    /// Empty counts, with one stripe per CPU (rounded up to a power of two,
    /// at most 64).
    pub fn new() -> AuthMetrics {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = cpus.next_power_of_two().min(MAX_STRIPES);
        AuthMetrics {
            stripes: (0..n).map(|_| Stripe::new()).collect(),
            #[cfg(feature = "metrics")]
            forward: false,
        }
    }

    /// Also send each answer to the [`metrics`](https://docs.rs/metrics)
    /// crate's global recorder: counter `apikeys_authentications_total` and
    /// histogram `apikeys_authentication_duration_seconds`, labelled `kind`
    /// and `outcome` (static labels: nothing is allocated per call). With no
    /// recorder installed the facade drops them.
    #[cfg(feature = "metrics")]
    pub fn forwarding(mut self) -> AuthMetrics {
        self.forward = true;
        self
    }

    /// Count one final answer (the keyring's hook; `started` was read just
    /// before the authentication began).
    #[inline]
    pub(crate) fn observe(&self, token: &str, answer: &Result<Principal>, started: Instant) {
        let elapsed = started.elapsed();
        let (kind, outcome) = match answer {
            Ok(p) => (Some(p.kind()), AuthOutcome::Ok),
            // A refusal says no kind: the token's format does (`malformed` if none).
            Err(e) => (KeyKind::parse(token).ok(), AuthOutcome::of_error(e)),
        };
        self.record(kind, outcome, elapsed);
    }

    /// Count one answer of `kind` (`None`: a malformed token) with its latency.
    pub fn record(&self, kind: Option<KeyKind>, outcome: AuthOutcome, elapsed: Duration) {
        let k = kind_index(kind);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BUCKETS_NS.len());
        let stripe = &self.stripes[thread_slot() & (self.stripes.len() - 1)];
        let base = (k * OUTCOMES + outcome.index()) * CELLS;
        stripe.cells[base + bucket].fetch_add(1, Ordering::Relaxed);
        stripe.cells[base + SUM].fetch_add(ns, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if self.forward {
            facade::forward(k, outcome.index(), elapsed);
        }
    }

    /// The counts so far, added over the stripes. Only series with at least
    /// one answer are listed, kinds then outcomes in the order of
    /// [`KIND_LABELS`] and [`AuthOutcome::ALL`]. Taken while other threads
    /// authenticate, a series' count and buckets agree with each other (they
    /// are read from the same cells) and its sum may lag by those in flight.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut series = Vec::new();
        for (k, kind) in KIND_LABELS.iter().enumerate() {
            for outcome in AuthOutcome::ALL {
                let base = (k * OUTCOMES + outcome.index()) * CELLS;
                let mut cells = [0u64; CELLS];
                for stripe in self.stripes.iter() {
                    for (c, cell) in cells.iter_mut().zip(&stripe.cells[base..base + CELLS]) {
                        *c = c.wrapping_add(cell.load(Ordering::Relaxed));
                    }
                }
                let mut cumulative = Vec::with_capacity(CELLS - 1);
                let mut running = 0u64;
                for c in &cells[..SUM] {
                    running = running.wrapping_add(*c);
                    cumulative.push(running);
                }
                if running == 0 {
                    continue;
                }
                series.push(Series {
                    kind,
                    outcome: outcome.as_str(),
                    count: running,
                    sum_seconds: cells[SUM] as f64 / 1e9,
                    buckets: cumulative,
                });
            }
        }
        MetricsSnapshot { series }
    }
}

#[inline]
fn kind_index(kind: Option<KeyKind>) -> usize {
    match kind {
        Some(KeyKind::General) => 0,
        Some(KeyKind::UserToken) => 1,
        Some(KeyKind::Scoped) => 2,
        Some(KeyKind::Integration) => 3,
        Some(KeyKind::Routing) => 4,
        None => 5,
    }
}

/// The counts of [`AuthMetrics`] at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// One entry per (kind, outcome) with at least one answer.
    pub series: Vec<Series>,
}

impl MetricsSnapshot {
    /// The series of this kind and outcome label, if any answer was counted.
    pub fn series(&self, kind: &str, outcome: &str) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.kind == kind && s.outcome == outcome)
    }

    /// All answers counted.
    pub fn total(&self) -> u64 {
        self.series.iter().map(|s| s.count).sum()
    }

    /// The bucket bounds of every series' `buckets`, in seconds ([`LATENCY_BUCKETS`]).
    pub fn bucket_bounds(&self) -> &'static [f64] {
        &LATENCY_BUCKETS
    }
}

/// The answers of one key kind with one outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The `kind` label: a [`KeyKind`] name or [`MALFORMED_KIND`].
    pub kind: &'static str,
    /// The `outcome` label ([`AuthOutcome::as_str`]).
    pub outcome: &'static str,
    /// How many answers.
    pub count: u64,
    /// Their latencies added up, in seconds.
    pub sum_seconds: f64,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`] (`le`), then
    /// `+Inf` (equal to `count`): one more entry than the bounds.
    pub buckets: Vec<u64>,
}

#[cfg(feature = "metrics")]
mod facade {
    //! The `metrics` crate facade: one static key per (kind, outcome), so a
    //! call allocates nothing.
    use std::sync::OnceLock;
    use std::time::Duration;

    use metrics::{Key, Label, Level, Metadata};

    use super::{AuthOutcome, KIND_LABELS, OUTCOMES};

    /// Counter name.
    pub(super) const COUNTER: &str = "apikeys_authentications_total";
    /// Histogram name.
    pub(super) const HISTOGRAM: &str = "apikeys_authentication_duration_seconds";

    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    fn keys() -> &'static [(Key, Key)] {
        static KEYS: OnceLock<Vec<(Key, Key)>> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut v = Vec::with_capacity(KIND_LABELS.len() * OUTCOMES);
            for kind in KIND_LABELS {
                for outcome in AuthOutcome::ALL {
                    let labels = vec![
                        Label::from_static_parts("kind", kind),
                        Label::from_static_parts("outcome", outcome.as_str()),
                    ];
                    v.push((
                        Key::from_parts(COUNTER, labels.clone()),
                        Key::from_parts(HISTOGRAM, labels),
                    ));
                }
            }
            v
        })
    }

    pub(super) fn forward(kind: usize, outcome: usize, elapsed: Duration) {
        let (counter, histogram) = &keys()[kind * OUTCOMES + outcome];
        metrics::with_recorder(|r| {
            r.register_counter(counter, &METADATA).increment(1);
            r.register_histogram(histogram, &METADATA)
                .record(elapsed.as_secs_f64());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_are_the_error_kind_names() {
        use std::time::Duration as D;
        let errors = [
            Error::Unauthorized(crate::error::AuthFailure::Unknown),
            Error::WrongApi {
                key_api: crate::key::Api::Rest,
                request_api: crate::key::Api::Events,
            },
            Error::Forbidden {
                reason: String::new(),
            },
            Error::PlanRestricted { feature: "x" },
            Error::RateLimited {
                retry_after: D::from_secs(1),
                limit: 1,
            },
            Error::Store(crate::error::StoreError::Unavailable("down".into())),
        ];
        for e in &errors {
            assert_eq!(AuthOutcome::of_error(e).as_str(), e.kind_name());
        }
        for o in AuthOutcome::ALL {
            assert_eq!(o.as_str().parse::<AuthOutcome>().unwrap(), o);
        }
        assert!("OK".parse::<AuthOutcome>().is_err());
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds_and_cumulative() {
        let m = AuthMetrics::new();
        m.record(None, AuthOutcome::Unauthorized, Duration::from_nanos(1_000)); // le 1e-6
        m.record(None, AuthOutcome::Unauthorized, Duration::from_nanos(1_001)); // le 2.5e-6
        m.record(None, AuthOutcome::Unauthorized, Duration::from_secs(5)); // +Inf only
        let snap = m.snapshot();
        let s = snap.series("malformed", "unauthorized").unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 2);
        assert_eq!(s.buckets[LATENCY_BUCKETS.len() - 1], 2);
        assert_eq!(*s.buckets.last().unwrap(), 3);
        assert!((s.sum_seconds - 5.000_002_001).abs() < 1e-9);
        for (b, ns) in LATENCY_BUCKETS.iter().zip(BUCKETS_NS) {
            assert_eq!((b * 1e9).round() as u64, ns);
        }
        assert_eq!(snap.series.len(), 1, "only series with answers");
    }
}
