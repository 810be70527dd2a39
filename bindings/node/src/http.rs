//! What the HTTP adapters share with the Rust one (`apikeys-http`): reading
//! the key out of an Events API body, so that Express, axum and the Python
//! middleware give one verdict for one body.

use napi::Either;
use napi_derive::napi;

/// Why an Events API body was refused: PagerDuty's 400 body is
/// `{"error":{"message":message,"code":code}}` with this `status`.
#[napi(object)]
pub struct EventBodyRejection {
    /// The HTTP status (400).
    pub status: u32,
    /// PagerDuty's error code (2001).
    pub code: u32,
    /// A stable name: `invalid_body` or `missing_routing_key`.
    #[napi(ts_type = "'invalid_body' | 'missing_routing_key'")]
    pub kind: String,
    /// What the client is told.
    pub message: String,
}

/// The `routing_key` of an Events API v2 body (the bytes as received), read
/// by the same parser as the Rust adapter (`apikeys_http::routing_key`): the
/// key, or why the body is refused. The whole body must be one JSON object
/// (UTF-8, nested at most 128 deep, numbers in range, no duplicate
/// `routing_key`) whose `routing_key` is a string. The key itself is not
/// checked here: `authenticate` it with `{ api: 'events' }`.
#[napi(
    catch_unwind,
    ts_args_type = "body: Uint8Array",
    ts_return_type = "string | EventBodyRejection"
)]
pub fn event_routing_key(body: &[u8]) -> Either<String, EventBodyRejection> {
    match apikeys_http::routing_key(body) {
        Ok(key) => Either::A(key.into_owned()),
        Err(r) => Either::B(EventBodyRejection {
            status: u32::from(r.status().as_u16()),
            code: r.code(),
            kind: r.kind().to_owned(),
            message: r.message().to_owned(),
        }),
    }
}

/// The key in an `Authorization` header value, by the Rust adapter's parse
/// (`apikeys_http::token_from_authorization`), or `None`. The Express
/// middleware takes `Token token=<key>` exactly with one regular expression
/// (faster than a crossing into the addon) and hands every other spelling to
/// this, so the general grammar is the Rust adapter's only.
pub(crate) fn token_from_authorization(value: &str) -> Option<String> {
    apikeys_http::token_from_authorization(value.as_bytes()).map(str::to_owned)
}
