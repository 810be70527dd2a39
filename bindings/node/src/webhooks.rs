//! Lifecycle webhooks (docs/webhooks.md): `WebhookWorker` (the
//! `apikeys-webhooks` deliverer over a keyring's durable store),
//! `generateWebhookSecret` and `verifyWebhook`. Conversions only: every rule
//! (URLs, secrets, signing, retries) is the Rust crate's.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use apikeys::webhooks::{EventType, Outbox, OutboxStatus};
use apikeys_webhooks::{Deliverer, Endpoint, WebhookError, Worker, WorkerOptions};

use crate::error::to_js;
use crate::keyring::Keyring;
use crate::open::invalid;
use crate::types::{date, duration};

fn webhook_err(env: &Env, e: &WebhookError) -> Error {
    match e.field() {
        Some(field) => to_js(env, &invalid(field, &e.reason())),
        None => Error::from_reason(e.to_string()),
    }
}

fn store_err(env: &Env, e: apikeys::StoreError) -> Error {
    to_js(env, &apikeys::Error::Store(e))
}

/// A receiver of webhook events: a name (1 to 64 of `A-Z a-z 0-9 _ - .`),
/// an `http://` or `https://` URL, a `whsec_…` signing secret and, when
/// given, the event types it wants (`'key.created'` …).
#[napi(object)]
pub struct WebhookEndpoint {
    /// Its name (kept in the outbox rows it accepted).
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// `whsec_` and base64 of 24 to 64 bytes.
    pub secret: String,
    /// Only these event types (all when absent).
    pub events: Option<Vec<String>>,
}

/// How a `WebhookWorker` works; every field has a default (docs/webhooks.md).
#[napi(object)]
pub struct WebhookWorkerOptions {
    /// The most one request may take (default 10,000 ms).
    pub timeout_ms: Option<f64>,
    /// After this many attempts a row is dead (default 12).
    pub max_attempts: Option<u32>,
    /// A row whose event is older than this at a failure is dead (default 3 days).
    pub max_age_ms: Option<f64>,
    /// The wait after the first failure, doubling after each (default 5,000 ms).
    pub backoff_base_ms: Option<f64>,
    /// The longest wait between attempts (default 1 hour).
    pub backoff_max_ms: Option<f64>,
    /// How long the worker sleeps when nothing is due (default 500 ms).
    pub poll_interval_ms: Option<f64>,
    /// How many rows one claim takes (default 16).
    pub batch: Option<u32>,
    /// How long a claim holds its rows (default: a whole batch's requests + 30 s).
    pub lease_ms: Option<f64>,
    /// Send `key.expiring` this long before a key expires (default 7 days; 0: never).
    pub expiring_ahead_ms: Option<f64>,
    /// How often to look for keys about to expire (default 60,000 ms).
    pub expiring_every_ms: Option<f64>,
}

/// What one round did (`runOnce`).
#[napi(object)]
pub struct WebhookRound {
    /// `key.expiring` events written by the round's scan.
    pub expiring: u32,
    /// Rows claimed.
    pub claimed: u32,
    /// Rows every endpoint accepted.
    pub delivered: u32,
    /// Rows to be tried again later.
    pub retried: u32,
    /// Rows given up on.
    pub dead: u32,
    /// Rows left unsent (their lease too short, or lost).
    pub released: u32,
}

/// One row of the outbox.
#[napi(object)]
pub struct OutboxRow {
    /// Its place in the outbox.
    pub seq: f64,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// `'key.created'` …
    #[napi(js_name = "type")]
    pub event_type: String,
    /// Its account.
    pub account: String,
    /// The key concerned, if any.
    pub key_id: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The body, exactly as sent.
    pub payload: String,
    /// `'pending'`, `'delivered'` or `'dead'`.
    pub status: String,
    /// How many times it was claimed.
    pub attempts: u32,
    /// Not tried again before this.
    pub next_at: DateTime<Utc>,
    /// The endpoints that accepted it.
    pub delivered_to: Vec<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

fn count(n: u32, field: &'static str, max: u32) -> apikeys::Result<u32> {
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(invalid(field, &format!("must be from 1 to {max}")))
    }
}

fn worker_options(o: Option<WebhookWorkerOptions>) -> apikeys::Result<WorkerOptions> {
    let mut w = WorkerOptions::default();
    let Some(o) = o else { return Ok(w) };
    if let Some(ms) = o.timeout_ms {
        w = w.timeout(duration(ms, "timeout_ms")?);
    }
    if let Some(n) = o.max_attempts {
        w = w.max_attempts(count(n, "max_attempts", 1_000_000)?);
    }
    if let Some(ms) = o.max_age_ms {
        w = w.max_age(duration(ms, "max_age_ms")?);
    }
    if let Some(ms) = o.backoff_base_ms {
        w = w.backoff_base(duration(ms, "backoff_base_ms")?);
    }
    if let Some(ms) = o.backoff_max_ms {
        w = w.backoff_max(duration(ms, "backoff_max_ms")?);
    }
    if let Some(ms) = o.poll_interval_ms {
        w = w.poll_interval(duration(ms, "poll_interval_ms")?);
    }
    if let Some(n) = o.batch {
        w = w.batch(count(n, "batch", 1000)? as usize);
    }
    if let Some(ms) = o.lease_ms {
        w = w.lease(duration(ms, "lease_ms")?);
    }
    if let Some(ms) = o.expiring_ahead_ms {
        let d = duration(ms, "expiring_ahead_ms")?;
        w = w.expiring_ahead((!d.is_zero()).then_some(d));
    }
    if let Some(ms) = o.expiring_every_ms {
        w = w.expiring_every(duration(ms, "expiring_every_ms")?);
    }
    Ok(w)
}

/// Delivers the outbox of a keyring's SQLite or PostgreSQL store to
/// endpoints, signed the Standard Webhooks way, at least once: on a thread of
/// its own once started, or a round at a time (`runOnce`).
#[napi]
pub struct WebhookWorker {
    deliverer: Arc<Deliverer>,
    outbox: Arc<dyn Outbox>,
    running: Mutex<Option<Worker>>,
}

#[napi]
impl WebhookWorker {
    /// A worker over `keyring`'s store (SQLite or PostgreSQL: the in-memory
    /// store has no outbox here) delivering to `endpoints`. Bad endpoints or
    /// options throw `ERR_INVALID_INPUT` naming the field; a secret is never
    /// repeated.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        keyring: &Keyring,
        endpoints: Vec<WebhookEndpoint>,
        options: Option<WebhookWorkerOptions>,
    ) -> Result<WebhookWorker> {
        let Some(outbox) = keyring.outbox.clone() else {
            return Err(to_js(
                &env,
                &invalid(
                    "keyring",
                    "has no outbox: open it with { store: { sqlite: path, outbox: true } } or { postgres: url, outbox: true }",
                ),
            ));
        };
        let opts = worker_options(options).map_err(|e| to_js(&env, &e))?;
        let mut list = Vec::with_capacity(endpoints.len());
        for e in &endpoints {
            let mut ep =
                Endpoint::new(&e.name, &e.url, &e.secret).map_err(|e| webhook_err(&env, &e))?;
            if let Some(events) = &e.events {
                let mut types = Vec::with_capacity(events.len());
                for name in events {
                    let t: EventType = name.parse().map_err(|e: apikeys::Error| match e {
                        apikeys::Error::InvalidInput { reason, .. } => {
                            to_js(&env, &invalid("events", &reason))
                        }
                        other => to_js(&env, &other),
                    })?;
                    types.push(t);
                }
                ep = ep.events(&types);
            }
            list.push(ep);
        }
        let deliverer =
            Deliverer::new(outbox.clone(), list, opts).map_err(|e| webhook_err(&env, &e))?;
        Ok(WebhookWorker {
            deliverer: Arc::new(deliverer),
            outbox,
            running: Mutex::new(None),
        })
    }

    /// Start delivering on a thread of its own (a second call does nothing).
    #[napi(catch_unwind)]
    pub fn start(&self, env: Env) -> Result<()> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.is_none() {
            let w = self
                .deliverer
                .clone()
                .start_shared()
                .map_err(|e| webhook_err(&env, &e))?;
            *running = Some(w);
        }
        Ok(())
    }

    /// Stop the thread after the round under way, and wait for it.
    #[napi(catch_unwind)]
    pub fn stop(&self) {
        let w = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = w {
            w.stop();
        }
    }

    /// Whether the thread runs.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// One round now, on the JavaScript thread (it waits on the store and
    /// the endpoints): the `key.expiring` scan when due, one claim, its deliveries.
    #[napi(catch_unwind)]
    pub fn run_once(&self, env: Env) -> Result<WebhookRound> {
        let r = self.deliverer.run_once().map_err(|e| store_err(&env, e))?;
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(WebhookRound {
            expiring: n(r.expiring),
            claimed: n(r.claimed),
            delivered: n(r.delivered),
            retried: n(r.retried),
            dead: n(r.dead),
            released: n(r.released),
        })
    }

    /// Rows of the outbox, oldest first, with this status (`'pending'`,
    /// `'delivered'`, `'dead'`) or all, at most `limit` (default 100).
    #[napi(catch_unwind)]
    pub fn outbox(
        &self,
        env: Env,
        status: Option<String>,
        limit: Option<u32>,
    ) -> Result<Vec<OutboxRow>> {
        let status = match status {
            Some(s) => Some(s.parse::<OutboxStatus>().map_err(|e| to_js(&env, &e))?),
            None => None,
        };
        let limit = match limit {
            Some(l) => count(l, "limit", 100_000).map_err(|e| to_js(&env, &e))? as usize,
            None => 100,
        };
        let rows = self
            .outbox
            .outbox_rows(status, limit)
            .map_err(|e| store_err(&env, e))?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxRow {
                seq: r.seq as f64,
                event_id: r.event_id,
                event_type: r.event_type.as_str().to_owned(),
                account: r.account,
                key_id: r.key_id.map(|k| k.to_string()),
                at: date(r.at),
                payload: r.payload,
                status: r.status.as_str().to_owned(),
                attempts: r.attempts,
                next_at: date(r.next_at),
                delivered_to: r.delivered_to,
                last_error: r.last_error,
            })
            .collect())
    }
}

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
#[napi(catch_unwind)]
pub fn generate_webhook_secret(env: Env) -> Result<String> {
    apikeys_webhooks::SigningSecret::generate().map_err(|e| webhook_err(&env, &e))
}

/// Whether a received webhook is genuine: its `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` headers and the raw body,
/// under `secret`. False for a changed body, a wrong secret, a timestamp more
/// than `toleranceSeconds` (default 300) from now, or malformed headers;
/// `ERR_INVALID_INPUT` for a malformed secret.
#[napi(catch_unwind)]
pub fn verify_webhook(
    env: Env,
    secret: String,
    webhook_id: String,
    webhook_timestamp: String,
    webhook_signature: String,
    body: Buffer,
    tolerance_seconds: Option<u32>,
) -> Result<bool> {
    let secret =
        apikeys_webhooks::SigningSecret::parse(&secret).map_err(|e| webhook_err(&env, &e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(apikeys_webhooks::verify(
        &secret,
        &webhook_id,
        &webhook_timestamp,
        &webhook_signature,
        &body,
        now,
        u64::from(tolerance_seconds.unwrap_or(300)),
    )
    .is_ok())
}
