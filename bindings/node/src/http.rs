//! What the Express middleware (`apikeys/express`) reads out of a request and
//! what it answers a refused one, decided and rendered by the Rust adapter's
//! own code (`apikeys-http`): Express, axum and the Python middleware accept
//! and refuse the same requests and send the same bytes for a refusal.
//!
//! The middleware reads the request in JavaScript (header values, the body
//! bytes) and hands them here; each call answers its value or the refusal as
//! an [`HttpRefusal`], which the middleware writes as it is.

use std::collections::HashMap;
use std::time::Duration;

use apikeys_http::{ErrorParts, Rejection};
use napi::bindgen_prelude::{Result, Undefined};
use napi::{Either, Env, JsString};
use napi_derive::napi;

use crate::cache::lock;
use crate::error::to_js;
use crate::keyring::{Keyring, coded_request, with_js_origin};

/// The REST routes of `apikeys/express` on one keyring: for each scope a
/// route was declared with (`auth.rest(scope)`), the core request of each
/// method code 1 to 7 (`GET` … `OPTIONS`, as `_authenticate` numbers them),
/// built once, so a request converts and parses no scope. One route per
/// distinct scope, however many times it is declared.
#[derive(Default)]
pub struct Routes {
    requests: Vec<[apikeys::Request; 7]>,
    by_scope: HashMap<Option<String>, u32>,
}

/// More routes than any application declares: `_restRoute` refuses beyond
/// it (a route number times 8 must stay a JavaScript small integer).
const MAX_ROUTES: usize = 1 << 20;

/// The value of a request's `Authorization` headers as the middleware hands
/// them over: none (`undefined`), one string, or an array of them.
type Authorizations = Either<Undefined, Either<String, Vec<String>>>;

/// `apikeys_http::token_from_authorizations` over what the middleware hands over.
fn token_of(values: &Authorizations) -> std::result::Result<&str, Rejection> {
    match values {
        Either::A(()) => apikeys_http::token_from_authorizations([]),
        Either::B(Either::A(one)) => apikeys_http::token_from_authorizations([one.as_bytes()]),
        Either::B(Either::B(many)) => {
            apikeys_http::token_from_authorizations(many.iter().map(String::as_bytes))
        }
    }
}

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
    pub fn rest_token(values: Authorizations) -> Either<String, HttpRefusal> {
        answer(token_of(&values).map(str::to_owned))
    }

    /// Declares a REST route of `apikeys/express` (`auth.rest(scope)`): its
    /// request for each method is built here once. Answers the route's
    /// number for `_restCheck` (the same number for the same scope), or
    /// throws `ERR_INVALID_INPUT` for a scope that does not parse.
    #[napi(catch_unwind, js_name = "_restRoute", skip_typescript)]
    pub fn rest_route(&self, env: Env, scope: Option<String>) -> Result<u32> {
        let mut routes = lock(&self.routes);
        if let Some(&n) = routes.by_scope.get(&scope) {
            return Ok(n);
        }
        let parsed = match &scope {
            Some(s) => Some(apikeys::Scope::parse(s).map_err(|e| to_js(&env, &e))?),
            None => None,
        };
        if routes.requests.len() >= MAX_ROUTES {
            return Err(napi::Error::from_reason(
                "too many distinct route scopes on one keyring",
            ));
        }
        let requests = std::array::from_fn(|i| {
            let code = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1);
            let request = coded_request(code).unwrap_or_else(|| apikeys::Request::rest("GET"));
            match &parsed {
                Some(s) => request.with_parsed_scope(s.clone()),
                None => request,
            }
        });
        let n = u32::try_from(routes.requests.len()).unwrap_or(u32::MAX);
        routes.requests.push(requests);
        routes.by_scope.insert(scope, n);
        Ok(n)
    }

    /// The REST check of `apikeys/express` in one call: the key read from
    /// the request's `Authorization` values as `_restToken` reads it, then
    /// checked as `_authenticatePlaced` checks it against the request of
    /// route `route >> 3` (from `_restRoute`) for method code `route & 7`
    /// (1 to 7). Answers the principal's handle (as `_authenticate`), or
    /// the refusal the Rust adapter renders — for a missing, repeated or
    /// malformed header and for every error of the check alike
    /// (`apikeys_http::Rejection::from_error`).
    ///
    /// The request's one `Authorization` value comes as a plain string (the
    /// JavaScript layer takes the general path for none or several):
    /// napi-rs checks an `Either` argument by trying each type in turn, and
    /// a failed try formats an error message, which cost three quarters of
    /// this call in a server's profile (docs/performance.md).
    #[napi(catch_unwind, js_name = "_restCheck", skip_typescript)]
    pub fn rest_check(
        &self,
        value: String,
        route: u32,
        remote_address: Option<JsString<'_>>,
        path: Option<JsString<'_>>,
    ) -> Either<u32, HttpRefusal> {
        let token = apikeys_http::token_from_authorizations([value.as_bytes()]);
        let checked = token.and_then(|token| {
            let routes = lock(&self.routes);
            let request = routes
                .requests
                .get((route >> 3) as usize)
                .and_then(|r| r.get(((route & 7) as usize).wrapping_sub(1)))
                .ok_or_else(|| {
                    Rejection::from_error(&crate::open::invalid(
                        "route",
                        "not a route this keyring declared",
                    ))
                })?;
            with_js_origin(remote_address, path, |o| self.handle_for(token, request, o))
                .map_err(|e| Rejection::from_error(&e))
        });
        answer(checked)
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
