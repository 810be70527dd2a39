//! The Node.js binding of [`apikeys`]: the whole `Keyring` API as an npm
//! package, built with napi-rs.
//!
//! The binding holds no policy of its own: it converts arguments, results and
//! errors, nothing else. A thin hand-written JavaScript layer (`index.js`)
//! over the generated loader (`binding.js`) checks argument types, and keeps
//! one frozen principal object per key and role so that the hot path
//! (`authenticate`) builds no JavaScript object per call; every call still runs
//! every check in the core.
//!
//! - [`keyring::Keyring`]: the class, with a Promise-returning `…Async` twin of
//!   every call (run on libuv's thread pool, for stores that block).
//! - [`cache`]: the principal cache (key slots and handles, error templates);
//!   its JavaScript half is `principals.js`.
//! - [`types`]: the plain objects and string unions of the TypeScript API.
//! - [`error`]: core errors as `Error`s with `code`, `status` and `pdCode`.
//! - [`endpoint`]: the Rust endpoints (management API, secret-scanning
//!   receiver) mounted by `apikeys/express` (`endpoints.js`): parts in,
//!   `[status, headers, body]` out (`apikeys_http::mount`).
//! - [`http`]: what the Express middleware reads from a request and answers a
//!   refused one, decided and rendered by `apikeys-http` (the same bytes as
//!   axum and the Python middleware).
//!
//! ## Decisions
//! - Each keyring object keeps, per key it has authenticated, one slot (the
//!   key's id, a fingerprint of what a principal shows, and the record it was
//!   made from) and, on the JavaScript side, one frozen principal per role seen:
//!   memory grows with the number of distinct keys authenticated, not with calls.
//!   A record whose identity fields changed under the same id gets a new slot;
//!   one whose other fields changed (its last use …) replaces the slot's
//!   record, which `principal.record` reads.
//! - Failed authentications are answered as numbered error templates and
//!   thrown by the JavaScript layer (half the cost of a native throw); rate
//!   limit errors, whose `retryAfter` changes each time, are thrown from Rust.
//! - The request's method travels as a number for the seven common methods,
//!   by name otherwise; scopes by name.
//! - `store` names exactly one of `{ memory: true }`, `{ sqlite: path }`,
//!   `{ postgres: url, schema? }`; an unknown store is an error, never a silent
//!   fallback to memory. `new Keyring(options)` opens it on the JavaScript
//!   thread; `Keyring.open(options)` is its Promise twin, opening the store
//!   (connecting to PostgreSQL) on libuv's thread pool.
//! - `flush()` writes the queued last-use times of a durable store and answers
//!   how many (0 in memory), like Python's `SqliteStore.flush()`.
//! - With rate limits, `principal.rateLimit` is `{ limit, remaining, reset }`
//!   (`reset` in milliseconds, like `retryAfter`), and a principal with a
//!   status is a new frozen object per call (its other fields copied from the
//!   one kept per key and role); without a limit it is `null`, and the kept
//!   object is answered as before. `rateLimiter: { redis: url }` counts in
//!   Redis (`apikeys-redis`).

#![deny(unsafe_code)]

pub mod cache;
pub mod endpoint;
pub mod error;
pub mod http;
pub mod keyring;
pub mod open;
pub mod types;
pub mod webhooks;
