//! Checking a key without stalling the async runtime.
//!
//! With [`apikeys::MemoryStore`] and an in-process rate limiter a check takes
//! about a microsecond and runs inline. When the keyring may wait on I/O
//! ([`Keyring::may_block`]: a durable store's cold lookup, a Redis limiter),
//! the layers first try [`Keyring::try_authenticate`], which answers from
//! memory and never waits, and move only what it cannot answer to tokio's
//! blocking pool, so one request waiting on the database never holds up
//! another on the same runtime thread.

use std::sync::Arc;

use apikeys::{Error, Keyring, Origin, Principal, Request, StoreError};

/// A check answered now, or one running on the blocking pool.
pub(crate) enum Checked {
    Now(Result<Principal, Error>),
    Later(tokio::task::JoinHandle<Result<Principal, Error>>),
}

/// Check `token` for `request`: inline when that cannot wait on I/O,
/// otherwise on tokio's blocking pool (inline, as a last resort, outside a
/// tokio runtime).
pub(crate) fn check(
    keyring: &Arc<Keyring>,
    token: &str,
    request: &Request,
    origin: &Origin<'_>,
) -> Checked {
    if !keyring.may_block() {
        return Checked::Now(keyring.authenticate_from(token, request, origin));
    }
    if let Some(answer) = keyring.try_authenticate_from(token, request, origin) {
        return Checked::Now(answer);
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let keyring = keyring.clone();
            let token = zeroize::Zeroizing::new(token.to_owned());
            // The thread needs its own copy of where the request came from.
            let address = origin.remote_address.map(|a| a.to_string());
            let request = request.clone().with_place(address.as_deref(), origin.path);
            Checked::Later(runtime.spawn_blocking(move || keyring.authenticate(&token, &request)))
        }
        Err(_) => Checked::Now(keyring.authenticate_from(token, request, origin)),
    }
}

/// Where `req` came from: its path, and the peer's address when the server
/// put a [`std::net::SocketAddr`] in the request's extensions.
pub(crate) fn origin_of<B>(req: &http::Request<B>) -> Origin<'_> {
    Origin {
        remote_address: req
            .extensions()
            .get::<std::net::SocketAddr>()
            .map(|a| a as &dyn std::fmt::Display),
        path: Some(req.uri().path()),
    }
}

/// The answer of a check that ran on the blocking pool.
pub(crate) fn joined(
    result: Result<Result<Principal, Error>, tokio::task::JoinError>,
) -> Result<Principal, Error> {
    result.unwrap_or_else(|_| {
        Err(Error::Store(StoreError::Unavailable(
            "the key check on the blocking pool did not finish".into(),
        )))
    })
}
