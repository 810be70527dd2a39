//! Lifecycle webhooks (docs/webhooks.md): `WebhookEndpoint`, `WebhookWorker`
//! (the `apikeys-webhooks` deliverer over a durable store's outbox),
//! `generate_webhook_secret` and `verify_webhook`. Conversions only: every
//! rule (URLs, secrets, signing, retries) is the Rust crate's.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use apikeys::webhooks::{EventType, Outbox, OutboxRow, OutboxStatus};
use apikeys_webhooks::{Deliverer, Endpoint, WebhookError, Worker, WorkerOptions};

use crate::convert::{datetime, duration, text};
use crate::errors;
use crate::stores::{PostgresStore, SqliteStore};

fn webhook_err(py: Python<'_>, e: &WebhookError) -> PyErr {
    match e.field() {
        Some(field) => errors::invalid(py, field, &e.reason()),
        None => pyo3::exceptions::PyRuntimeError::new_err(e.to_string()),
    }
}

fn store_err(py: Python<'_>, e: apikeys::StoreError) -> PyErr {
    errors::to_py(py, apikeys::Error::Store(e))
}

/// A receiver of webhook events: a name (1 to 64 of `A-Z a-z 0-9 _ - .`),
/// an `http://` or `https://` URL, a `whsec_…` signing secret and, when
/// given, the event types it wants (`"key.created"` …). Checked here:
/// a bad one is `InvalidInput` naming `name`, `url`, `secret` or `events`,
/// and never repeating the secret. Its `repr` shows the name only.
#[pyclass(frozen, module = "apikeys")]
pub struct WebhookEndpoint(Endpoint);

#[pymethods]
impl WebhookEndpoint {
    #[new]
    #[pyo3(signature = (name, url, secret, *, events = None))]
    fn new(
        py: Python<'_>,
        name: &Bound<'_, PyAny>,
        url: &Bound<'_, PyAny>,
        secret: &Bound<'_, PyAny>,
        events: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (name, url, secret) = (
            text(name, "name")?,
            text(url, "url")?,
            text(secret, "secret")?,
        );
        let mut e = Endpoint::new(name, url, secret).map_err(|e| webhook_err(py, &e))?;
        if let Some(ev) = events.filter(|v| !v.is_none()) {
            if ev.is_instance_of::<pyo3::types::PyString>() {
                return Err(crate::convert::wrong_type(ev, "events", "list of str"));
            }
            let mut types = Vec::new();
            for item in ev.try_iter()? {
                let item = item?;
                // The core names the field `event_type`; here it is the `events` argument.
                let t: EventType =
                    text(&item, "events")?
                        .parse()
                        .map_err(|e: apikeys::Error| match e {
                            apikeys::Error::InvalidInput { reason, .. } => {
                                errors::invalid(py, "events", &reason)
                            }
                            other => errors::to_py(py, other),
                        })?;
                types.push(t);
            }
            e = e.events(&types);
        }
        Ok(WebhookEndpoint(e))
    }
    /// The endpoint's name.
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "WebhookEndpoint({})",
            crate::convert::repr(py, self.0.name())
        )
    }
}

/// Delivers the outbox of a `SqliteStore` or `PostgresStore` to endpoints,
/// on a thread of its own once started (`start`, `stop`), or a round at a
/// time (`run_once`). Durations are seconds or `timedelta`s; `None` is the
/// default; `expiring_ahead=0` sends no `key.expiring`.
#[pyclass(frozen, module = "apikeys")]
pub struct WebhookWorker {
    deliverer: Arc<Deliverer>,
    outbox: Arc<dyn Outbox>,
    running: Mutex<Option<Worker>>,
}

fn outbox_of(store: &Bound<'_, PyAny>) -> PyResult<Arc<dyn Outbox>> {
    if let Ok(s) = store.cast::<SqliteStore>() {
        return Ok(s.get().0.clone());
    }
    if let Ok(s) = store.cast::<PostgresStore>() {
        return Ok(s.get().0.clone());
    }
    Err(crate::convert::wrong_type(
        store,
        "store",
        "SqliteStore or PostgresStore",
    ))
}

#[pymethods]
impl WebhookWorker {
    #[new]
    #[pyo3(signature = (store, endpoints, *, timeout = None, max_attempts = None, max_age = None,
        backoff_base = None, backoff_max = None, poll_interval = None, batch = None, lease = None,
        expiring_ahead = None, expiring_every = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        endpoints: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        max_attempts: Option<&Bound<'_, PyAny>>,
        max_age: Option<&Bound<'_, PyAny>>,
        backoff_base: Option<&Bound<'_, PyAny>>,
        backoff_max: Option<&Bound<'_, PyAny>>,
        poll_interval: Option<&Bound<'_, PyAny>>,
        batch: Option<&Bound<'_, PyAny>>,
        lease: Option<&Bound<'_, PyAny>>,
        expiring_ahead: Option<&Bound<'_, PyAny>>,
        expiring_every: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let outbox = outbox_of(store)?;
        let mut o = WorkerOptions::default();
        if let Some(v) = some_value(timeout) {
            o = o.timeout(duration(v, "timeout")?);
        }
        if let Some(v) = some_value(max_age) {
            o = o.max_age(duration(v, "max_age")?);
        }
        if let Some(v) = some_value(backoff_base) {
            o = o.backoff_base(duration(v, "backoff_base")?);
        }
        if let Some(v) = some_value(backoff_max) {
            o = o.backoff_max(duration(v, "backoff_max")?);
        }
        if let Some(v) = some_value(poll_interval) {
            o = o.poll_interval(duration(v, "poll_interval")?);
        }
        if let Some(v) = some_value(lease) {
            o = o.lease(duration(v, "lease")?);
        }
        if let Some(v) = some_value(expiring_every) {
            o = o.expiring_every(duration(v, "expiring_every")?);
        }
        if let Some(v) = some_value(expiring_ahead) {
            let d = duration(v, "expiring_ahead")?;
            o = o.expiring_ahead((!d.is_zero()).then_some(d));
        }
        if let Some(v) = some_value(max_attempts) {
            o = o.max_attempts(count(v, "max_attempts", 1_000_000)?);
        }
        if let Some(v) = some_value(batch) {
            o = o.batch(count(v, "batch", 1000)? as usize);
        }
        if endpoints.is_instance_of::<pyo3::types::PyString>() {
            return Err(crate::convert::wrong_type(
                endpoints,
                "endpoints",
                "list of WebhookEndpoint",
            ));
        }
        let mut list = Vec::new();
        for item in endpoints.try_iter()? {
            let item = item?;
            let e = item.cast::<WebhookEndpoint>().map_err(|_| {
                crate::convert::wrong_type(&item, "endpoints", "list of WebhookEndpoint")
            })?;
            list.push(e.get().0.clone());
        }
        let deliverer = Deliverer::new(outbox.clone(), list, o).map_err(|e| webhook_err(py, &e))?;
        Ok(WebhookWorker {
            deliverer: Arc::new(deliverer),
            outbox,
            running: Mutex::new(None),
        })
    }

    /// Start delivering on a thread of its own (once; a second call does nothing).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_none() {
            let w = self
                .deliverer
                .clone()
                .start_shared()
                .map_err(|e| webhook_err(py, &e))?;
            *running = Some(w);
        }
        Ok(())
    }

    /// Stop the thread after the round under way, and wait for it.
    fn stop(&self, py: Python<'_>) {
        let w = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = w {
            py.detach(|| w.stop());
        }
    }

    /// Whether the thread runs.
    #[getter]
    fn running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// One round now (without the GIL): the `key.expiring` scan when due,
    /// one claim, its deliveries. Answers how many rows were claimed,
    /// delivered, retried, dead or released, and `key.expiring` events written.
    fn run_once<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = &self.deliverer;
        let r = py.detach(|| d.run_once()).map_err(|e| store_err(py, e))?;
        let out = PyDict::new(py);
        out.set_item("expiring", r.expiring)?;
        out.set_item("claimed", r.claimed)?;
        out.set_item("delivered", r.delivered)?;
        out.set_item("retried", r.retried)?;
        out.set_item("dead", r.dead)?;
        out.set_item("released", r.released)?;
        Ok(out)
    }

    /// Rows of the outbox, oldest first: with this status (`"pending"`,
    /// `"delivered"`, `"dead"`) or all, at most `limit` (default 100). Each a
    /// dict: `seq`, `event_id`, `type`, `account`, `key_id`, `at`, `payload`,
    /// `status`, `attempts`, `next_at`, `delivered_to`, `last_error`.
    #[pyo3(signature = (status = None, limit = None))]
    fn outbox<'py>(
        &self,
        py: Python<'py>,
        status: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let status = match status.filter(|v| !v.is_none()) {
            Some(s) => Some(
                text(s, "status")?
                    .parse::<OutboxStatus>()
                    .map_err(|e: apikeys::Error| errors::to_py(py, e))?,
            ),
            None => None,
        };
        let limit = match limit.filter(|v| !v.is_none()) {
            Some(l) => count(l, "limit", 100_000)? as usize,
            None => 100,
        };
        let o = &self.outbox;
        let rows = py
            .detach(|| o.outbox_rows(status, limit))
            .map_err(|e| store_err(py, e))?;
        let out = PyList::empty(py);
        for r in rows {
            out.append(row_dict(py, &r)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("WebhookWorker(running={})", self.running())
    }
}

fn row_dict<'py>(py: Python<'py>, r: &OutboxRow) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seq", r.seq)?;
    d.set_item("event_id", &r.event_id)?;
    d.set_item("type", r.event_type.as_str())?;
    d.set_item("account", &r.account)?;
    d.set_item("key_id", r.key_id.map(|k| k.to_string()))?;
    d.set_item("at", datetime(py, r.at)?)?;
    d.set_item("payload", &r.payload)?;
    d.set_item("status", r.status.as_str())?;
    d.set_item("attempts", r.attempts)?;
    d.set_item("next_at", datetime(py, r.next_at)?)?;
    d.set_item("delivered_to", r.delivered_to.clone())?;
    d.set_item("last_error", r.last_error.clone())?;
    Ok(d)
}

/// An optional argument: `None` (or absent) means its default.
fn some_value<'a, 'py>(v: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    v.filter(|v| !v.is_none())
}

/// A whole number from 1 to `max`.
fn count(v: &Bound<'_, PyAny>, field: &'static str, max: u32) -> PyResult<u32> {
    if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(crate::convert::wrong_type(v, field, "int"));
    }
    match v.extract::<i64>() {
        Ok(n) if (1..=i64::from(max)).contains(&n) => Ok(n as u32),
        _ => Err(errors::invalid(
            v.py(),
            field,
            &format!("must be from 1 to {max}"),
        )),
    }
}

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
#[pyfunction]
pub(crate) fn generate_webhook_secret(py: Python<'_>) -> PyResult<String> {
    apikeys_webhooks::SigningSecret::generate().map_err(|e| webhook_err(py, &e))
}

/// Whether a received webhook is genuine: its `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` headers, and the raw body
/// (`bytes`, before any JSON parsing), under `secret`. False for a changed
/// body, a wrong secret, a timestamp more than `tolerance` seconds (default
/// 300) from now, or malformed headers; `InvalidInput` for a malformed secret.
#[pyfunction]
#[pyo3(signature = (secret, webhook_id, webhook_timestamp, webhook_signature, body, *, tolerance = 300))]
pub(crate) fn verify_webhook(
    py: Python<'_>,
    secret: &Bound<'_, PyAny>,
    webhook_id: &Bound<'_, PyAny>,
    webhook_timestamp: &Bound<'_, PyAny>,
    webhook_signature: &Bound<'_, PyAny>,
    body: &Bound<'_, PyAny>,
    tolerance: u64,
) -> PyResult<bool> {
    let secret = apikeys_webhooks::SigningSecret::parse(text(secret, "secret")?)
        .map_err(|e| webhook_err(py, &e))?;
    let body = body
        .cast::<PyBytes>()
        .map_err(|_| crate::convert::wrong_type(body, "body", "bytes"))?
        .as_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(apikeys_webhooks::verify(
        &secret,
        text(webhook_id, "webhook_id")?,
        text(webhook_timestamp, "webhook_timestamp")?,
        text(webhook_signature, "webhook_signature")?,
        body,
        now,
        tolerance,
    )
    .is_ok())
}
