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
//! - [`types`]: the plain objects and string unions of the TypeScript API.
//! - [`error`]: core errors as `Error`s with `code`, `status` and `pdCode`.

#![deny(unsafe_code)]

pub mod error;
pub mod keyring;
pub mod types;
