//! Lifecycle webhooks for `apikeys`: a delivery worker that drains a store's
//! outbox to the endpoints the application registers, signed the
//! [Standard Webhooks](https://www.standardwebhooks.com) way.
//!
//! The events (`key.created`, `key.disabled`, … `user.removed`) and the
//! outbox are the core's ([`apikeys::webhooks`]): SQLite and PostgreSQL write
//! each event in the transaction of its change once their outbox is on
//! (`SqliteOptions::outbox(true)`, `PostgresOptions::outbox(true)`);
//! [`apikeys::webhooks::OutboxStore`] gives the in-memory store an outbox
//! that is not durable. This crate sends them:
//!
//! ```no_run
//! use std::sync::Arc;
//! use apikeys::Keyring;
//! use apikeys_sqlite::SqliteStore;
//! use apikeys_webhooks::{Deliverer, Endpoint, WorkerOptions};
//!
//! let store = Arc::new(SqliteStore::options().outbox(true).open("keys.db")?);
//! let keyring = Keyring::builder().shared_store(store.clone()).build()?;
//! let ops = Endpoint::new("ops", "https://ops.example.com/hooks", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")?;
//! let worker = Deliverer::new(store, vec![ops], WorkerOptions::default())?.start()?;
//! // … the application runs; keyring changes are delivered …
//! worker.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each request carries `webhook-id` (the event's id, the same on every
//! retry), `webhook-timestamp` (unix seconds of the attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA-256 of "{id}.{timestamp}.{body}">`;
//! a receiver checks them with [`verify`]. Delivery is at least once:
//! a 2xx answer accepts, anything else (an error status, a timeout, a closed
//! connection) is retried with exponential backoff and jitter until
//! [`WorkerOptions::max_attempts`] or [`WorkerOptions::max_age`], after which
//! the row is kept, marked dead. docs/webhooks.md is the full contract.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod endpoint;
mod signing;
mod worker;

pub use apikeys::webhooks::{EventType, Outbox, OutboxRow, OutboxStatus};
pub use endpoint::{Endpoint, MAX_NAME_BYTES, MAX_URL_BYTES};
pub use signing::{
    DEFAULT_TOLERANCE_SECS, MAX_SECRET_BYTES, MIN_SECRET_BYTES, SECRET_PREFIX, SigningSecret,
    VerifyError, verify,
};
pub use worker::{
    Deliverer, LEASE_MARGIN, MAX_BACKOFF, Round, SendError, Transport, UreqTransport, Worker,
    WorkerOptions,
};

/// What registering an endpoint or starting a worker can refuse. Never
/// repeats a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The endpoint URL cannot be used.
    #[error("invalid webhook endpoint URL: it {reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
    /// The signing secret cannot be used.
    #[error("invalid webhook signing secret: it {reason}")]
    InvalidSecret {
        /// Why.
        reason: String,
    },
    /// The endpoint name cannot be used.
    #[error("invalid webhook endpoint name: it {reason}")]
    InvalidName {
        /// Why.
        reason: String,
    },
    /// A worker option cannot work.
    #[error("invalid webhook worker option {field}: it {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A deliverer needs at least one endpoint.
    #[error("a webhook deliverer needs at least one endpoint")]
    NoEndpoints,
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
    /// The delivery thread could not start.
    #[error("cannot start the webhook delivery thread: {0}")]
    Thread(String),
}

impl WebhookError {
    /// The argument at fault, as the bindings name it: `"url"`, `"secret"`,
    /// `"name"`, `"endpoints"`, or `None` for a failure that is no one's input.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            WebhookError::InvalidUrl { .. } => Some("url"),
            WebhookError::InvalidSecret { .. } => Some("secret"),
            WebhookError::InvalidName { .. } => Some("name"),
            WebhookError::NoEndpoints => Some("endpoints"),
            WebhookError::InvalidOption { field, .. } => Some(field),
            WebhookError::Random(_) | WebhookError::Thread(_) => None,
        }
    }

    /// Why, without the field's name (for an `InvalidInput` that names it).
    pub fn reason(&self) -> String {
        match self {
            WebhookError::InvalidUrl { reason }
            | WebhookError::InvalidSecret { reason }
            | WebhookError::InvalidName { reason }
            | WebhookError::InvalidOption { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }
}
