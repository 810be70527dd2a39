//! [`Deliverer`]: one round of delivery ([`Deliverer::run_once`]), and the
//! thread that runs rounds ([`Worker`]).

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use apikeys::webhooks::{Finish, Outbox, OutboxRow};
use apikeys::{Clock, StoreError, SystemClock, Timestamp};

use crate::WebhookError;
use crate::endpoint::Endpoint;

/// Time kept in hand at the end of a lease (to record the outcome, and for
/// clocks of different processes that differ a little): a request is only
/// started when its timeout and this still fit in the lease.
pub const LEASE_MARGIN: Duration = Duration::from_millis(250);

/// The longest backoff a worker accepts (longer ones are this).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 86_400);

/// How a [`Deliverer`] works. Every setting has a default fit for production.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub(crate) poll_interval: Duration,
    pub(crate) batch: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) max_age: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) lease: Option<Duration>,
    pub(crate) expiring_ahead: Option<Duration>,
    pub(crate) expiring_every: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            poll_interval: Duration::from_millis(500),
            batch: 16,
            timeout: Duration::from_secs(10),
            max_attempts: 12,
            max_age: Duration::from_secs(3 * 86_400),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            lease: None,
            expiring_ahead: Some(Duration::from_secs(7 * 86_400)),
            expiring_every: Duration::from_secs(60),
        }
    }
}

impl WorkerOptions {
    /// How long the worker sleeps when the outbox has nothing due (default
    /// 500 ms; from 1 ms to 1 hour).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d.clamp(Duration::from_millis(1), Duration::from_secs(3600));
        self
    }
    /// How many rows one claim takes (default 16, at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.clamp(1, 1000);
        self
    }
    /// The most one request may take, connecting and answering included
    /// (default 10 s; from 1 ms to 10 minutes); past it the attempt failed.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d.clamp(Duration::from_millis(1), Duration::from_secs(600));
        self
    }
    /// After this many attempts a row is dead (default 12, at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// A row whose event is older than this when an attempt fails is dead
    /// (default 3 days).
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }
    /// The wait after the first failed attempt (default 5 s); it doubles
    /// with each attempt, up to [`WorkerOptions::backoff_max`], and a random
    /// part of it (up to half) is taken off so that failed rows spread out.
    pub fn backoff_base(mut self, d: Duration) -> Self {
        self.backoff_base = d.min(MAX_BACKOFF);
        self
    }
    /// The longest wait between attempts (default 1 hour; at most 30 days).
    pub fn backoff_max(mut self, d: Duration) -> Self {
        self.backoff_max = d.min(MAX_BACKOFF);
        self
    }
    /// How long a claim holds its rows (default: long enough to try every
    /// endpoint for every row of a batch, plus 30 s). A worker never starts
    /// a request that could outlast its lease.
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = Some(d);
        self
    }
    /// Send `key.expiring` this long before a key expires (default 7 days;
    /// `None`: never).
    pub fn expiring_ahead(mut self, d: Option<Duration>) -> Self {
        self.expiring_ahead = d;
        self
    }
    /// How often to look for keys about to expire (default every minute).
    pub fn expiring_every(mut self, d: Duration) -> Self {
        self.expiring_every = d;
        self
    }
}

/// Why one request did not deliver an event. Never holds the URL or a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The endpoint answered, but not with 2xx.
    #[error("HTTP {0}")]
    Status(u16),
    /// It did not answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The connection could not be made, or was closed or broken.
    #[error("connection failed: {0}")]
    Connection(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// How a [`Deliverer`] sends one request. The default is [`UreqTransport`].
pub trait Transport: Send + Sync {
    /// POST `body` with `headers` to `url`; `Ok(())` for a 2xx answer.
    fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(), SendError>;
}

/// A blocking HTTP/1.1 client (ureq): one request at a time per call, a
/// whole-request timeout, no redirects followed (a redirect is a failure),
/// proxies from the environment.
#[derive(Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    /// A client whose every request gives up after `timeout`.
    pub fn new(timeout: Duration) -> UreqTransport {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("apikeys-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        UreqTransport { agent }
    }
}

impl Transport for UreqTransport {
    fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(), SendError> {
        let mut req = self.agent.post(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.send(body) {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if (200..300).contains(&code) {
                    Ok(())
                } else {
                    Err(SendError::Status(code))
                }
            }
            Err(ureq::Error::Timeout(_)) => Err(SendError::Timeout),
            Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(SendError::Timeout)
            }
            Err(ureq::Error::Io(e)) => Err(SendError::Connection(e.kind().to_string())),
            Err(ureq::Error::ConnectionFailed) => {
                Err(SendError::Connection("connection refused".into()))
            }
            Err(ureq::Error::HostNotFound) => Err(SendError::Connection("host not found".into())),
            Err(ureq::Error::Protocol(_)) => Err(SendError::Connection(
                "the connection closed or the answer was not HTTP".into(),
            )),
            Err(ureq::Error::StatusCode(c)) => Err(SendError::Status(c)),
            Err(_) => Err(SendError::Other("the request failed".into())),
        }
    }
}

/// What one round did ([`Deliverer::run_once`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// `key.expiring` events written by this round's scan.
    pub expiring: usize,
    /// Rows claimed.
    pub claimed: usize,
    /// Rows every endpoint accepted.
    pub delivered: usize,
    /// Rows to be tried again later.
    pub retried: usize,
    /// Rows given up on.
    pub dead: usize,
    /// Rows left unsent because their lease was too short or was lost.
    pub released: usize,
}

/// Delivers the events of an [`Outbox`] to [`Endpoint`]s, signed the
/// Standard Webhooks way. Run it on a thread with [`Deliverer::start`], or
/// call [`Deliverer::run_once`] from a scheduler of your own.
pub struct Deliverer {
    outbox: Arc<dyn Outbox>,
    endpoints: Vec<Endpoint>,
    options: WorkerOptions,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    last_scan: Mutex<Option<Timestamp>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("endpoints", &self.endpoints)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer of `outbox`'s events to `endpoints` (at least one, names
    /// unique), with the system clock and a [`UreqTransport`].
    pub fn new(
        outbox: Arc<dyn Outbox>,
        endpoints: Vec<Endpoint>,
        options: WorkerOptions,
    ) -> Result<Deliverer, WebhookError> {
        if endpoints.is_empty() {
            return Err(WebhookError::NoEndpoints);
        }
        let mut names = HashSet::new();
        for e in &endpoints {
            if !names.insert(e.name.as_str()) {
                return Err(WebhookError::InvalidName {
                    reason: format!("{:?} is registered twice", e.name),
                });
            }
        }
        if let Some(lease) = options.lease {
            let need = options.timeout.saturating_mul(endpoints.len() as u32) + LEASE_MARGIN;
            if lease < need {
                return Err(WebhookError::InvalidOption {
                    field: "lease",
                    reason: format!(
                        "must be at least the timeout times the endpoints plus {} ms ({} ms here): \
                         a shorter lease could run out during a request",
                        LEASE_MARGIN.as_millis(),
                        need.as_millis()
                    ),
                });
            }
        }
        Ok(Deliverer {
            outbox,
            transport: Arc::new(UreqTransport::new(options.timeout)),
            endpoints,
            options,
            clock: Arc::new(SystemClock),
            last_scan: Mutex::new(None),
        })
    }

    /// Send with `transport` instead of the default client.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Deliverer {
        self.transport = transport;
        self
    }

    /// Read the time from `clock` (tests move it).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Deliverer {
        self.clock = clock;
        self
    }

    fn lease(&self) -> Duration {
        self.options.lease.unwrap_or_else(|| {
            self.options
                .timeout
                .saturating_mul(self.endpoints.len() as u32)
                .saturating_mul(self.options.batch as u32)
                + Duration::from_secs(30)
        })
    }

    /// The wait before attempt `attempts + 1`, with jitter.
    fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(32);
        let full = self
            .options
            .backoff_base
            .saturating_mul(1u32 << exp.min(31))
            .min(self.options.backoff_max);
        // Take off a random part, up to half.
        let r = u64::from_str_radix(&apikeys::webhooks::new_lease()[..8], 16).unwrap_or(0);
        let frac = (r % 1000) as f64 / 2000.0;
        full.mul_f64(1.0 - frac)
    }

    /// One round: look for keys about to expire (when due), claim a batch of
    /// due rows, send each to the endpoints that want it and have not
    /// accepted it yet, and record how each ended.
    pub fn run_once(&self) -> Result<Round, StoreError> {
        let mut round = Round::default();
        let now = self.clock.now();
        if let Some(ahead) = self.options.expiring_ahead {
            let due = {
                let last = self
                    .last_scan
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                last.is_none_or(|t| now.saturating_since(t) >= self.options.expiring_every)
            };
            if due {
                round.expiring = self.outbox.enqueue_expiring(now, ahead)?;
                *self
                    .last_scan
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now);
            }
        }
        let lease = self.lease();
        let claimed = self.outbox.claim(now, lease, self.options.batch)?;
        round.claimed = claimed.len();
        let until = now.saturating_add(lease);
        for c in &claimed {
            // Never start a row whose lease could run out mid-request: another
            // worker may claim it then, and the receiver would get it twice at once.
            let need = self
                .options
                .timeout
                .saturating_mul(self.endpoints.len() as u32)
                + LEASE_MARGIN;
            if self.clock.now().saturating_add(need) > until {
                round.released += 1;
                continue;
            }
            let how = self.deliver(&c.row);
            let done = self.outbox.finish(c, &how, self.clock.now())?;
            match (&how, done) {
                (_, false) => round.released += 1,
                (Finish::Delivered { .. }, true) => round.delivered += 1,
                (Finish::Retry { .. }, true) => round.retried += 1,
                (Finish::Dead { .. }, true) => round.dead += 1,
            }
        }
        Ok(round)
    }

    /// Send `row` to every endpoint that wants it and has not accepted it yet.
    fn deliver(&self, row: &OutboxRow) -> Finish {
        let mut delivered_to = row.delivered_to.clone();
        let mut errors = Vec::new();
        for e in &self.endpoints {
            if !e.wants(row.event_type) || delivered_to.contains(&e.name) {
                continue;
            }
            let ts = self.clock.now().unix_millis() / 1000;
            let sig = e.secret.sign(&row.event_id, ts, row.payload.as_bytes());
            let ts = ts.to_string();
            let headers = [
                ("content-type", "application/json"),
                ("webhook-id", row.event_id.as_str()),
                ("webhook-timestamp", ts.as_str()),
                ("webhook-signature", sig.as_str()),
            ];
            match self
                .transport
                .post(&e.url, &headers, row.payload.as_bytes())
            {
                Ok(()) => delivered_to.push(e.name.clone()),
                Err(err) => errors.push(format!("{}: {err}", e.name)),
            }
        }
        if errors.is_empty() {
            return Finish::Delivered { delivered_to };
        }
        let error = errors.join("; ");
        let now = self.clock.now();
        let too_old = now.saturating_since(row.at) >= self.options.max_age;
        if row.attempts >= self.options.max_attempts || too_old {
            Finish::Dead {
                delivered_to,
                error,
            }
        } else {
            Finish::Retry {
                delivered_to,
                next_at: now.saturating_add(self.backoff(row.attempts)),
                error,
            }
        }
    }

    /// Run rounds on a thread of its own until the [`Worker`] is stopped or
    /// dropped: right away again while claims come back full, else after
    /// [`WorkerOptions::poll_interval`]. A round that fails (the store is
    /// unreachable) is tried again after the interval; nothing is lost.
    pub fn start(self) -> Result<Worker, WebhookError> {
        Arc::new(self).start_shared()
    }

    /// [`Deliverer::start`] for a deliverer that is shared (the bindings
    /// keep one to call [`Deliverer::run_once`] and to start a thread).
    pub fn start_shared(self: Arc<Self>) -> Result<Worker, WebhookError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("apikeys-webhooks".into())
            .spawn(move || {
                loop {
                    let full = matches!(self.run_once(), Ok(r) if r.claimed >= self.options.batch);
                    let (lock, cvar) = &*s;
                    let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    if !full && !*stopped {
                        stopped = cvar
                            .wait_timeout(stopped, self.options.poll_interval)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    if *stopped {
                        return;
                    }
                }
            })
            .map_err(|e| WebhookError::Thread(e.to_string()))?;
        Ok(Worker {
            stop,
            handle: Some(handle),
        })
    }
}

/// A running delivery thread. [`Worker::stop`] (or dropping it) ends it after
/// the round under way.
#[derive(Debug)]
pub struct Worker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Stop after the round under way, and wait for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cvar.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.halt();
    }
}
