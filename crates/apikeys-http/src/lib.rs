//! HTTP adapters for [`apikeys`]: protect a tower service (axum, hyper) the way
//! PagerDuty's APIs are protected.
//!
//! - **REST** ([`RestAuthLayer`]): the key comes in `Authorization: Token
//!   token=<key>` (scheme and parameter name in any case, spaces tolerated;
//!   `Bearer <key>` too); the method comes from the request; the scope from the
//!   route ([`RestAuthLayer::with_scope`], or a [`RequiredScope`] extension).
//! - **Events** ([`EventsAuthLayer`]): the key is the `routing_key` field of the
//!   JSON body (Events API v2), read up to a size limit.
//! - **Refusals** ([`Rejection`]): the status of the design's error table and
//!   PagerDuty's body `{"error":{"message":…,"code":…}}`; `WWW-Authenticate:
//!   Token` on 401; `retry-after` on 429. Never a key, never an internal detail.
//! - **Rate limits**: when the keyring has them, every answer to an
//!   authenticated request carries `ratelimit-limit`, `ratelimit-remaining` and
//!   `ratelimit-reset` (seconds), and so does a 429.
//! - **The principal** goes into the request's extensions; in axum, take it
//!   with the [`Authenticated`] extractor.
//!
//! ```
//! use std::sync::Arc;
//! use apikeys::{Keyring, MemoryStore};
//! use apikeys_http::{Authenticated, EventsAuthLayer, RestAuthLayer};
//! use axum::{Router, http::StatusCode, routing::{get, post}};
//!
//! async fn list(Authenticated(who): Authenticated) -> String {
//!     format!("incidents of {}", who.account())
//! }
//! async fn create() -> StatusCode { StatusCode::CREATED }
//! async fn event() -> StatusCode { StatusCode::ACCEPTED }
//!
//! let keyring = Arc::new(Keyring::new(MemoryStore::new()));
//! let rest = RestAuthLayer::new(keyring.clone());
//! let app: Router = Router::new()
//!     .route("/incidents", get(list).route_layer(rest.clone().with_scope("incidents.read")?))
//!     .route("/incidents", post(create).route_layer(rest.with_scope("incidents.write")?))
//!     .route("/v2/enqueue", post(event).route_layer(EventsAuthLayer::new(keyring)));
//! # Ok::<(), apikeys::Error>(())
//! ```
//!
//! ## Decisions
//! - Adapter-level refusals: no `Authorization` header or one in no accepted
//!   form (including values over 1 KiB): 401, code 2006; two or more
//!   `Authorization` headers: 400, code 2001 (ambiguous, never guessed); an
//!   Events body over the limit (512 KiB by default, PagerDuty's), not a JSON
//!   object (UTF-8), nested deeper than [`credentials::MAX_EVENT_DEPTH`], or
//!   without a string `routing_key`: 400, code 2001.
//! - One rendering for every adapter: the Python (`apikeys.asgi`,
//!   `apikeys.wsgi`) and Node (`apikeys/express`) adapters read requests with
//!   this crate's plain functions ([`token_from_authorizations`],
//!   [`token_from_joined_authorization`], [`declared_length`],
//!   [`routing_key`]) and send what [`Rejection::refusal`] renders (for their
//!   keyrings' errors, through [`Rejection::from_error_parts`]), all through
//!   their bindings: the status, headers and body of a refusal are the same
//!   bytes from every adapter (`tests/refusals.json` lists them, and each
//!   binding's tests compare their adapters with it).
//! - Store and other internal failures answer 500 with "an internal error
//!   occurred"; the reason is in the [`Rejection`] put into the response's
//!   extensions, for a logging layer to record.
//! - `ratelimit-reset` and `retry-after` are whole seconds, rounded up (a
//!   429 says at least 1). A key
//!   that is refused for another reason (403 …) spends no budget, and the
//!   keyring does not report its budget, so those answers carry no
//!   `ratelimit-*` headers.
//! - Hyper refuses a request head over its buffer (about 400 KiB by default)
//!   with its own 431 before any service runs; a smaller oversized header gets
//!   this crate's 401.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod credentials;
pub mod events;
#[cfg(feature = "axum")]
pub mod extract;
pub mod manage;
pub mod mount;
mod offload;
pub mod rejection;
pub mod rest;
mod scanning;

pub use credentials::{
    MAX_AUTHORIZATION_BYTES, declared_length, header_name_is, rest_token, routing_key,
    token_from_authorization, token_from_authorizations, token_from_joined_authorization,
};
pub use events::{DEFAULT_MAX_EVENT_BYTES, EventsAuth, EventsAuthLayer, EventsFuture};
#[cfg(feature = "axum")]
pub use extract::Authenticated;
pub use manage::Management;
pub use rejection::{
    ErrorParts, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, Refusal, Rejection,
    RejectionBody, insert_rate_limit, rate_limit_headers,
};
pub use rest::{RequiredScope, ResponseFuture, RestAuth, RestAuthLayer};
pub use scanning::{
    DEFAULT_MAX_REPORT_BYTES, GITHUB_KEY_IDENTIFIER, GITHUB_KEY_SIGNATURE,
    MAX_KEY_IDENTIFIER_BYTES, REMEMBERED_DELETIONS, ScanningConfigError, ScanningRefusal,
    SecretScanning,
};
