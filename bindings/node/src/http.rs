//! What the Express middleware (`apikeys/express`) reads out of a request and
//! what it answers a refused one, decided and rendered by the Rust adapter's
//! own code (`apikeys-http`): Express, axum and the Python middleware accept
//! and refuse the same requests and send the same bytes for a refusal.
//!
//! The middleware reads the request in JavaScript (header values, the body
//! bytes) and hands them here; each call answers its value or the refusal as
//! an [`HttpRefusal`], which the middleware writes as it is.

use std::time::Duration;

use apikeys_http::{ErrorParts, Rejection};
use napi::Either;
use napi::bindgen_prelude::{Result, Undefined};
use napi_derive::napi;

use crate::keyring::Keyring;

/// A refused request and the answer for it, as the Rust adapter renders it
/// (`apikeys_http::Rejection::refusal`): write `status`, `headers` in order
/// and `body`, and the client gets the bytes every adapter sends.
#[napi(object)]
pub struct HttpRefusal {
    /// The HTTP status (400, 401, 403, 429, 500 …).
    pub status: u32,
    /// PagerDuty's error code (2001, 2006, 2010, 2020 …).
    pub pd_code: u32,
    /// A stable name: the core error's kind (`unauthorized` …), or the
    /// adapter's (`missing_key`, `invalid_body`, `missing_routing_key` …).
    pub kind: String,
    /// What the client is told (it is in `body`).
    pub message: String,
    /// For server logs only, never for the client: which check failed. Never a key.
    pub reason: String,
    /// For a 429: milliseconds until a retry may succeed.
    pub retry_after_ms: Option<f64>,
    /// Every response header, in order (`content-type`, `content-length`,
    /// then `www-authenticate` or `retry-after` and `ratelimit-*`).
    #[napi(ts_type = "Array<[string, string]>")]
    pub headers: Vec<(String, String)>,
    /// PagerDuty's JSON error body: `{"error":{"message":…,"code":…}}`.
    pub body: String,
}

impl From<&Rejection> for HttpRefusal {
    fn from(r: &Rejection) -> Self {
        let plain = r.refusal();
        HttpRefusal {
            status: u32::from(plain.status.as_u16()),
            pd_code: r.code(),
            kind: r.kind().to_owned(),
            message: r.message().to_owned(),
            reason: r.reason().to_owned(),
            retry_after_ms: r.retry_after().map(crate::types::millis),
            headers: plain
                .headers
                .iter()
                .map(|(n, v)| {
                    let value = v.to_str().unwrap_or_default();
                    (n.as_str().to_owned(), value.to_owned())
                })
                .collect(),
            body: String::from_utf8_lossy(&plain.body).into_owned(),
        }
    }
}

fn answer<T>(r: std::result::Result<T, Rejection>) -> Either<T, HttpRefusal> {
    match r {
        Ok(v) => Either::A(v),
        Err(r) => Either::B(HttpRefusal::from(&r)),
    }
}

/// The `routing_key` of an Events API v2 body (the bytes as received), read
/// by the same parser as the Rust adapter (`apikeys_http::routing_key`): the
/// key, or why the body is refused and the answer for it. The whole body must
/// be one JSON object (UTF-8, nested at most 128 deep, numbers in range, no
/// duplicate `routing_key`) whose `routing_key` is a string. The key itself
/// is not checked here: `authenticate` it with `{ api: 'events' }`.
#[napi(
    catch_unwind,
    ts_args_type = "body: Uint8Array",
    ts_return_type = "string | HttpRefusal"
)]
pub fn event_routing_key(body: &[u8]) -> Either<String, HttpRefusal> {
    answer(apikeys_http::routing_key(body).map(|k| k.into_owned()))
}

/// A limit given from JavaScript as a number: a safe integer, as a size.
fn size(n: f64) -> usize {
    if n.is_finite() && n > 0.0 {
        n.min(usize::MAX as f64) as usize
    } else {
        0
    }
}

#[napi]
impl Keyring {
    /// The key in an `Authorization` value as the Rust adapter reads it
    /// (`apikeys_http::token_from_authorization`), or `null`.
    #[napi(catch_unwind, js_name = "_tokenFromAuthorization", skip_typescript)]
    pub fn token_from_authorization(value: String) -> Option<String> {
        apikeys_http::token_from_authorization(value.as_bytes()).map(str::to_owned)
    }

    /// The REST key of a request (`apikeys_http::token_from_authorizations`)
    /// from its `Authorization` values: none (`undefined`), one string, or an
    /// array of them.
    #[napi(catch_unwind, js_name = "_restToken", skip_typescript)]
    pub fn rest_token(
        values: Either<Undefined, Either<String, Vec<String>>>,
    ) -> Either<String, HttpRefusal> {
        let token = match &values {
            Either::A(()) => apikeys_http::token_from_authorizations([]),
            Either::B(Either::A(one)) => apikeys_http::token_from_authorizations([one.as_bytes()]),
            Either::B(Either::B(many)) => {
                apikeys_http::token_from_authorizations(many.iter().map(String::as_bytes))
            }
        };
        answer(token.map(str::to_owned))
    }

    /// The body length a `Content-Length` value declares, within `limit`
    /// bytes (`apikeys_http::declared_length`), or the refusal.
    #[napi(catch_unwind, js_name = "_declaredLength", skip_typescript)]
    pub fn declared_length(value: String, limit: f64) -> Either<f64, HttpRefusal> {
        answer(apikeys_http::declared_length(value.as_bytes(), size(limit)).map(|n| n as f64))
    }

    /// `apikeys_http::Rejection::named`: the refusals the middleware meets on
    /// its own (`body_too_large` over `limit` bytes, `not_json`,
    /// `not_an_object`, `routing_key_not_a_string`, `unreadable_body`,
    /// `misconfigured` for `reason`).
    #[napi(catch_unwind, js_name = "_refusal", skip_typescript)]
    pub fn refusal(
        name: String,
        limit: Option<f64>,
        reason: Option<String>,
    ) -> Result<HttpRefusal> {
        let r = Rejection::named(
            &name,
            size(limit.unwrap_or(0.0)),
            reason.as_deref().unwrap_or(""),
        );
        r.map(|r| HttpRefusal::from(&r))
            .ok_or_else(|| napi::Error::from_reason("not a refusal apikeys-http renders by name"))
    }

    /// The refusal for an error of `authenticate` (or of a stand-in keyring),
    /// from what the error carries (`status`, `pdCode`, `code`, its message,
    /// `reason`, and for a 429 `retryAfter` in milliseconds and `limit`),
    /// rendered by `apikeys_http::Rejection::from_error_parts`.
    #[napi(catch_unwind, js_name = "_refusalForError", skip_typescript)]
    pub fn refusal_for_error(
        status: u32,
        pd_code: u32,
        code: String,
        message: String,
        reason: String,
        retry_after_ms: Option<f64>,
        limit: Option<u32>,
    ) -> HttpRefusal {
        let retry = retry_after_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms.min(1e12) / 1000.0));
        let r = Rejection::from_error_parts(ErrorParts {
            status: u16::try_from(status).unwrap_or(500),
            code: pd_code,
            kind: crate::error::kind_for_code(&code),
            message: &message,
            reason: &reason,
            rate_limit: retry.map(|d| (limit.unwrap_or(0), d)),
        });
        HttpRefusal::from(&r)
    }

    /// `[MAX_AUTHORIZATION_BYTES, DEFAULT_MAX_EVENT_BYTES]` of `apikeys-http`.
    #[napi(catch_unwind, js_name = "_httpLimits", skip_typescript)]
    pub fn http_limits() -> Vec<f64> {
        vec![
            apikeys_http::MAX_AUTHORIZATION_BYTES as f64,
            apikeys_http::DEFAULT_MAX_EVENT_BYTES as f64,
        ]
    }
}
