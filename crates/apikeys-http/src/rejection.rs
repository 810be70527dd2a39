//! Refusals, and how they are written: PagerDuty's error body with the right
//! status and headers.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use apikeys::{Error, RateLimitStatus};
use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt, Either, Full};

/// `ratelimit-limit`: requests allowed per window.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `ratelimit-remaining`: requests left in the window after this one.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `ratelimit-reset`: seconds until the whole budget is available again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Why a request was refused before it reached the handler.
///
/// Written as PagerDuty's error body, `{"error":{"message":…,"code":…}}`, with
/// the status of the design's error table; a 401 adds `WWW-Authenticate:
/// Token`, a 429 adds `retry-after` and the `ratelimit-*` headers. The message
/// never contains a key, and internal errors say only "an internal error
/// occurred". The response carries a clone of the `Rejection` in its
/// extensions, so a logging layer outside can record [`Rejection::reason`]
/// (which check failed; the client is not told).
#[derive(Clone, Debug)]
pub struct Rejection {
    status: StatusCode,
    code: u32,
    kind: &'static str,
    message: Cow<'static, str>,
    reason: Cow<'static, str>,
    limited: Option<(u32, Duration)>,
}

impl Rejection {
    fn new(status: StatusCode, code: u32, kind: &'static str, message: &'static str) -> Self {
        Rejection {
            status,
            code,
            kind,
            message: Cow::Borrowed(message),
            reason: Cow::Borrowed(message),
            limited: None,
        }
    }

    /// A refused request (400, 2001) whose body the adapter could not use.
    fn bad_body(message: &'static str) -> Self {
        Rejection::new(StatusCode::BAD_REQUEST, 2001, "invalid_body", message)
    }

    /// A request without an `Authorization` header (REST): 401.
    pub fn missing_key() -> Self {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            2006,
            "missing_key",
            "no API key: send the header 'Authorization: Token token=<key>'",
        )
    }

    /// An `Authorization` header in no accepted form: 401.
    pub fn malformed_authorization() -> Self {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            2006,
            "malformed_authorization",
            "the Authorization header must read 'Token token=<key>' or 'Bearer <key>'",
        )
    }

    /// More than one `Authorization` header: 400.
    pub fn duplicate_authorization() -> Self {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            2001,
            "duplicate_authorization",
            "send exactly one Authorization header",
        )
    }

    /// An Events body over the size limit: 400.
    pub fn body_too_large(limit: usize) -> Self {
        let mut r = Rejection::new(StatusCode::BAD_REQUEST, 2001, "body_too_large", "");
        r.message = Cow::Owned(format!(
            "the request body is larger than the limit of {limit} bytes"
        ));
        r.reason = r.message.clone();
        r
    }

    /// An Events body that is not a JSON object (or could not be read): 400.
    pub fn invalid_body(message: &'static str) -> Self {
        Rejection::bad_body(message)
    }

    /// An Events body that does not start as a JSON object does: 400.
    pub fn not_an_object() -> Self {
        Rejection::bad_body("the body must be a JSON object")
    }

    /// An Events body that is not JSON (invalid UTF-8 included): 400.
    pub fn not_json() -> Self {
        Rejection::bad_body("the body is not valid JSON")
    }

    /// An Events body whose `routing_key` is not one string: 400.
    pub fn routing_key_not_a_string() -> Self {
        Rejection::bad_body("'routing_key' must be one string")
    }

    /// An Events body whose stream failed or ended early: 400.
    pub fn unreadable_body() -> Self {
        Rejection::bad_body("the body could not be read")
    }

    /// A `Content-Length` that is not a number (see
    /// [`crate::credentials::declared_length`]): 400.
    pub fn invalid_content_length() -> Self {
        Rejection::bad_body("the Content-Length header is not a number")
    }

    /// An Events body without a `routing_key`: 400.
    pub fn missing_routing_key() -> Self {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            2001,
            "missing_routing_key",
            "the event has no 'routing_key' (the integration or routing key)",
        )
    }

    /// A route reached without the layer in front of it (a server bug): 500.
    pub fn not_protected() -> Self {
        Rejection::misconfigured_as(
            "not_protected",
            Cow::Borrowed(
                "the handler asked for the principal, but no apikeys layer authenticated the request",
            ),
        )
    }

    /// A server set up so that the adapter cannot decide (a route whose scope
    /// declaration cannot be honoured, a body read away before the adapter):
    /// 500; `reason`, for the logs, says what is wrong.
    pub fn misconfigured(reason: impl Into<Cow<'static, str>>) -> Self {
        Rejection::misconfigured_as("misconfigured", reason.into())
    }

    /// The refusals an adapter in another language meets on its own, by
    /// name (what the Python and Node adapters pass across their bindings):
    /// `body_too_large` (over `limit` bytes), `not_json`, `not_an_object`,
    /// `routing_key_not_a_string`, `unreadable_body`, `misconfigured`
    /// (`reason` says why). `None` for any other name.
    pub fn named(name: &str, limit: usize, reason: &str) -> Option<Self> {
        Some(match name {
            "body_too_large" => Rejection::body_too_large(limit),
            "not_json" => Rejection::not_json(),
            "not_an_object" => Rejection::not_an_object(),
            "routing_key_not_a_string" => Rejection::routing_key_not_a_string(),
            "unreadable_body" => Rejection::unreadable_body(),
            "misconfigured" => Rejection::misconfigured(reason.to_owned()),
            _ => return None,
        })
    }

    fn misconfigured_as(kind: &'static str, reason: Cow<'static, str>) -> Self {
        let mut r = Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, 2000, kind, INTERNAL);
        r.reason = reason;
        r
    }

    /// What [`apikeys::Keyring::authenticate`] refused, as the design's table says.
    pub fn from_error(error: &Error) -> Self {
        let limited = match error {
            Error::RateLimited { retry_after, limit } => Some((*limit, *retry_after)),
            _ => None,
        };
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Rejection::refused(
            status,
            error.code(),
            error.kind_name(),
            || error.to_string(),
            error.reason(),
            limited,
        )
    }

    /// What [`Rejection::from_error`] makes of an error known only by what a
    /// binding's exception carries (the Python and Node adapters render the
    /// errors of their keyrings, or of a stand-in, this way): the same
    /// status, body and headers as for the core error with these facts.
    pub fn from_error_parts(parts: ErrorParts<'_>) -> Self {
        let status = StatusCode::from_u16(parts.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Rejection::refused(
            status,
            parts.code,
            parts.kind,
            || parts.message.to_owned(),
            parts.reason.to_owned(),
            parts.rate_limit,
        )
    }

    /// The one rule for refused keys: a 5xx says only that an internal error
    /// occurred; a 429 carries when to retry.
    fn refused(
        status: StatusCode,
        code: u32,
        kind: &'static str,
        message: impl FnOnce() -> String,
        reason: String,
        limited: Option<(u32, Duration)>,
    ) -> Self {
        Rejection {
            status,
            code,
            kind,
            message: if status.is_server_error() {
                Cow::Borrowed(INTERNAL)
            } else {
                Cow::Owned(message())
            },
            reason: Cow::Owned(reason),
            limited: limited.filter(|_| status == StatusCode::TOO_MANY_REQUESTS),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// PagerDuty's error code (2006 unauthorized, 2010 forbidden, 2001 bad request …).
    pub fn code(&self) -> u32 {
        self.code
    }

    /// A stable snake_case name: the core error's [`Error::kind_name`], or one of
    /// `missing_key`, `malformed_authorization`, `duplicate_authorization`,
    /// `body_too_large`, `invalid_body`, `missing_routing_key`, `not_protected`,
    /// `misconfigured`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For server logs: which check failed (for an unauthorized key: unknown,
    /// disabled, expired …). Never contains a key.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// For a 429: when to retry.
    pub fn retry_after(&self) -> Option<Duration> {
        self.limited.map(|(_, d)| d)
    }

    /// The JSON body: `{"error":{"message":…,"code":…}}`, PagerDuty's
    /// (the message first, no blanks), byte for byte what every adapter sends.
    pub fn body(&self) -> Bytes {
        // Written out rather than through a `serde_json::Value`, whose map
        // orders keys by name (or by insertion, with a feature another crate
        // of the build may turn on): the bytes never depend on the build.
        let message = serde_json::to_string(self.message.as_ref())
            .unwrap_or_else(|_| format!("{:?}", INTERNAL));
        Bytes::from(format!(
            r#"{{"error":{{"message":{message},"code":{}}}}}"#,
            self.code
        ))
    }

    /// Each response header but `content-length`, in the order written:
    /// `content-type`; `www-authenticate: Token` on a 401; on a 429
    /// `retry-after` and the `ratelimit-*` headers (whole seconds, rounded
    /// up, at least 1).
    fn each_header(&self, mut put: impl FnMut(HeaderName, HeaderValue)) {
        put(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            put(WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        if let Some((limit, retry)) = self.limited {
            let secs = number(ceil_secs(retry).max(1));
            put(RETRY_AFTER, secs.clone());
            put(RATELIMIT_LIMIT, number(u64::from(limit)));
            put(RATELIMIT_REMAINING, number(0));
            put(RATELIMIT_RESET, secs);
        }
    }

    /// The whole answer as plain data, for a server that writes it itself
    /// (the Python and Node adapters send exactly this): the status, every
    /// header (`content-length` second, after `content-type`) and the body.
    pub fn refusal(&self) -> Refusal {
        let body = self.body();
        let mut headers = Vec::with_capacity(7);
        self.each_header(|name, value| {
            headers.push((name, value));
            if headers.len() == 1 {
                headers.push((CONTENT_LENGTH, number(body.len() as u64)));
            }
        });
        Refusal {
            status: self.status,
            headers,
            body,
        }
    }

    /// The whole response.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        self.to_response_in()
    }

    /// The whole response, in any body type a [`RejectionBody`] converts
    /// into (the layers answer in the inner service's own body type, so that
    /// axum does not have to box the body once more).
    pub fn to_response_in<B: From<RejectionBody>>(&self) -> Response<B> {
        let mut res = Response::new(B::from(RejectionBody(self.body())));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        self.each_header(|name, value| {
            h.insert(name, value);
        });
        res.extensions_mut().insert(self.clone());
        res
    }
}

/// What the client is told of an internal failure.
const INTERNAL: &str = "an internal error occurred";

/// The facts of a refused key as a binding's exception carries them, for
/// [`Rejection::from_error_parts`].
#[derive(Clone, Copy, Debug)]
pub struct ErrorParts<'a> {
    /// The HTTP status ([`Error::http_status`]).
    pub status: u16,
    /// PagerDuty's code ([`Error::code`]).
    pub code: u32,
    /// The error's [`Error::kind_name`].
    pub kind: &'static str,
    /// The error's message (its `Display`); a 5xx never shows it.
    pub message: &'a str,
    /// [`Error::reason`], for the logs.
    pub reason: &'a str,
    /// For [`Error::RateLimited`]: the limit and when to retry.
    pub rate_limit: Option<(u32, Duration)>,
}

/// A refusal as plain data ([`Rejection::refusal`]): what a server that is
/// not tower writes.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// Every header, in the order to write them (names in lowercase).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// PagerDuty's JSON error body.
    pub body: Bytes,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.kind,
            self.reason
        )
    }
}

impl std::error::Error for Rejection {}

/// A refusal's body, PagerDuty's JSON error document, on its way into the
/// response body type of the service behind a layer.
///
/// [`crate::RestAuth`] and [`crate::EventsAuth`] answer in the inner
/// service's own body type `B`, which must implement `From<RejectionBody>`.
/// Provided: axum's `Body` (feature `axum`), `http_body_util::Full<Bytes>`,
/// `BoxBody<Bytes, E>`, `UnsyncBoxBody<Bytes, E>`, and `Either<L, R>` where
/// `R` is one of those, so any other body `L` works once the inner service's
/// responses are mapped with `Either::Left`.
#[derive(Clone, Debug)]
pub struct RejectionBody(Bytes);

impl RejectionBody {
    /// The JSON bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<RejectionBody> for Full<Bytes> {
    fn from(b: RejectionBody) -> Self {
        Full::new(b.0)
    }
}

impl<E: 'static> From<RejectionBody> for BoxBody<Bytes, E> {
    fn from(b: RejectionBody) -> Self {
        Full::new(b.0)
            .map_err(|never: Infallible| match never {})
            .boxed()
    }
}

impl<E: 'static> From<RejectionBody> for UnsyncBoxBody<Bytes, E> {
    fn from(b: RejectionBody) -> Self {
        Full::new(b.0)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync()
    }
}

impl<L, R: From<RejectionBody>> From<RejectionBody> for Either<L, R> {
    fn from(b: RejectionBody) -> Self {
        Either::Right(R::from(b))
    }
}

#[cfg(feature = "axum")]
impl From<RejectionBody> for axum_core::body::Body {
    fn from(b: RejectionBody) -> Self {
        axum_core::body::Body::from(b.0)
    }
}

impl From<&Error> for Rejection {
    fn from(e: &Error) -> Self {
        Rejection::from_error(e)
    }
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        Rejection::from_error(&e)
    }
}

/// Whole seconds, rounded up, at least 1 for any positive duration.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` (seconds,
/// rounded up) of an admitted request, as plain data (what the Python
/// adapters add to the application's answer).
pub fn rate_limit_headers(status: &RateLimitStatus) -> [(HeaderName, HeaderValue); 3] {
    [
        (RATELIMIT_LIMIT, number(u64::from(status.limit))),
        (RATELIMIT_REMAINING, number(u64::from(status.remaining))),
        (RATELIMIT_RESET, number(ceil_secs(status.reset))),
    ]
}

/// Add [`rate_limit_headers`] to response headers.
pub fn insert_rate_limit(headers: &mut HeaderMap, status: &RateLimitStatus) {
    for (name, value) in rate_limit_headers(status) {
        headers.insert(name, value);
    }
}

/// Numbers below this are header values made once (rate limits, what is left
/// of them and reset times in seconds are nearly always smaller).
const SMALL_NUMBERS: usize = 4096;

/// `n` as a header value. `HeaderValue::from(n)` allocates the digits every
/// time; a small number is a copy of a value made once, whose bytes are
/// static (a clone costs no allocation and no reference count).
pub(crate) fn number(n: u64) -> HeaderValue {
    static SMALL: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    match usize::try_from(n) {
        Ok(i) if i < SMALL_NUMBERS => SMALL.get_or_init(small_numbers)[i].clone(),
        _ => HeaderValue::from(n),
    }
}

fn small_numbers() -> Vec<HeaderValue> {
    let mut digits = String::new();
    let mut ends = Vec::with_capacity(SMALL_NUMBERS);
    for i in 0..SMALL_NUMBERS {
        digits.push_str(&i.to_string());
        ends.push(digits.len());
    }
    // Made once per process, about 15 KB: kept for the life of the process so
    // the values can borrow it as static bytes.
    let digits: &'static str = Box::leak(digits.into_boxed_str());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let v = HeaderValue::from_static(&digits[start..end]);
            start = end;
            v
        })
        .collect()
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Rejection {
    fn into_response(self) -> axum_core::response::Response {
        self.to_response().map(axum_core::body::Body::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::AuthFailure;

    #[test]
    fn error_body_is_pagerdutys() {
        let r = Rejection::from_error(&Error::Unauthorized(AuthFailure::Disabled));
        let res = r.to_response();
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Token");
        let v: serde_json::Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "unauthorized: the API key is not valid", "code": 2006}})
        );
        assert_eq!(r.reason(), "disabled key");
    }

    #[test]
    fn rate_limited_says_when_to_retry() {
        let r = Rejection::from_error(&Error::RateLimited {
            retry_after: Duration::from_millis(1500),
            limit: 960,
        });
        let res = r.to_response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[RETRY_AFTER], "2");
        assert_eq!(res.headers()[RATELIMIT_LIMIT], "960");
        assert_eq!(res.headers()[RATELIMIT_REMAINING], "0");
        assert_eq!(res.headers()[RATELIMIT_RESET], "2");
        assert!(!res.headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn numbers_read_the_same_from_the_table_and_past_it() {
        for n in [
            0,
            1,
            9,
            10,
            59,
            60,
            960,
            999,
            1000,
            4095,
            4096,
            4097,
            86_400,
            u64::MAX,
        ] {
            assert_eq!(number(n), n.to_string().as_str(), "{n}");
        }
        let mut h = HeaderMap::new();
        insert_rate_limit(
            &mut h,
            &RateLimitStatus {
                limit: 960,
                remaining: 959,
                reset: Duration::from_millis(62_500),
            },
        );
        assert_eq!(h[RATELIMIT_LIMIT], "960");
        assert_eq!(h[RATELIMIT_REMAINING], "959");
        assert_eq!(h[RATELIMIT_RESET], "63");
    }

    #[test]
    fn the_body_converts_into_each_body_type() {
        let r = Rejection::missing_key();
        async fn bytes<B: http_body::Body>(b: B) -> Bytes
        where
            B::Error: std::fmt::Debug,
        {
            b.collect().await.unwrap().to_bytes()
        }
        let want = r.body();
        let full: Response<Full<Bytes>> = r.to_response_in();
        let boxed: Response<BoxBody<Bytes, std::io::Error>> = r.to_response_in();
        let unsync: Response<UnsyncBoxBody<Bytes, std::io::Error>> = r.to_response_in();
        let either: Response<Either<String, Full<Bytes>>> = r.to_response_in();
        for status in [
            full.status(),
            boxed.status(),
            unsync.status(),
            either.status(),
        ] {
            assert_eq!(status.as_u16(), 401);
        }
        assert_eq!(unsync.headers()[WWW_AUTHENTICATE], "Token");
        assert!(unsync.extensions().get::<Rejection>().is_some());
        let bodies = [
            now(bytes(full.into_body())),
            now(bytes(boxed.into_body())),
            now(bytes(unsync.into_body())),
            now(bytes(either.into_body())),
        ];
        for b in bodies {
            assert_eq!(b, want);
        }
        #[cfg(feature = "axum")]
        {
            let axum: Response<axum_core::body::Body> = r.to_response_in();
            assert_eq!(axum.status().as_u16(), 401);
            assert_eq!(now(bytes(axum.into_body())), want);
        }
    }

    /// Poll a future that is ready at once.
    fn now<F: std::future::Future>(f: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("not ready"),
        }
    }

    #[test]
    fn the_body_is_pagerdutys_to_the_byte() {
        let r = Rejection::missing_key();
        assert_eq!(
            r.body(),
            r#"{"error":{"message":"no API key: send the header 'Authorization: Token token=<key>'","code":2006}}"#
        );
        let r = Rejection::from_error_parts(ErrorParts {
            status: 403,
            code: 2010,
            kind: "forbidden",
            message: "a \"quoted\"\nline \u{e9}",
            reason: "r",
            rate_limit: None,
        });
        assert_eq!(
            r.body(),
            "{\"error\":{\"message\":\"a \\\"quoted\\\"\\nline \u{e9}\",\"code\":2010}}"
        );
    }

    #[test]
    fn the_plain_refusal_is_the_response_with_its_length() {
        let limited = Rejection::from_error(&Error::RateLimited {
            retry_after: Duration::from_millis(1500),
            limit: 960,
        });
        for r in [
            Rejection::missing_key(),
            Rejection::body_too_large(10),
            limited,
            Rejection::misconfigured("two scopes"),
        ] {
            let plain = r.refusal();
            let res = r.to_response();
            assert_eq!(plain.status, res.status());
            assert_eq!(plain.body, r.body());
            let names: Vec<&str> = plain.headers.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names[..2], ["content-type", "content-length"]);
            assert_eq!(plain.headers[1].1, plain.body.len().to_string().as_str());
            let without_length: Vec<_> = plain
                .headers
                .iter()
                .filter(|(n, _)| *n != CONTENT_LENGTH)
                .cloned()
                .collect();
            let from_response: Vec<_> = res
                .headers()
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            assert_eq!(without_length, from_response, "{}", r.kind());
        }
    }

    #[test]
    fn named_refusals_are_the_constructors() {
        let same = |a: Option<Rejection>, b: Rejection| {
            let a = a.expect("a known name");
            assert_eq!(
                (a.status(), a.kind(), a.message(), a.reason()),
                (b.status(), b.kind(), b.message(), b.reason())
            );
        };
        same(
            Rejection::named("body_too_large", 9, ""),
            Rejection::body_too_large(9),
        );
        same(Rejection::named("not_json", 0, ""), Rejection::not_json());
        same(
            Rejection::named("not_an_object", 0, ""),
            Rejection::not_an_object(),
        );
        same(
            Rejection::named("routing_key_not_a_string", 0, ""),
            Rejection::routing_key_not_a_string(),
        );
        same(
            Rejection::named("unreadable_body", 0, ""),
            Rejection::unreadable_body(),
        );
        same(
            Rejection::named("misconfigured", 0, "why"),
            Rejection::misconfigured("why"),
        );
        assert!(Rejection::named("missing_key", 0, "").is_none());
    }

    #[test]
    fn a_429_says_at_least_one_second() {
        for (ms, secs) in [(0, "1"), (1, "1"), (999, "1"), (1000, "1"), (1001, "2")] {
            let r = Rejection::from_error(&Error::RateLimited {
                retry_after: Duration::from_millis(ms),
                limit: 5,
            });
            let h = r.to_response();
            assert_eq!(h.headers()[RETRY_AFTER], secs, "{ms} ms");
            assert_eq!(h.headers()[RATELIMIT_RESET], secs, "{ms} ms");
        }
    }

    #[test]
    fn an_error_by_its_parts_is_rendered_as_the_error_itself() {
        let errors = [
            Error::Unauthorized(AuthFailure::Unknown),
            Error::Forbidden {
                reason: "a read-only key may only read".into(),
            },
            Error::RateLimited {
                retry_after: Duration::from_millis(2500),
                limit: 120,
            },
            Error::Store(apikeys::StoreError::Unavailable("10.0.0.1 refused".into())),
            Error::Random,
        ];
        for e in &errors {
            let direct = Rejection::from_error(e);
            let reason = e.reason();
            let message = e.to_string();
            let by_parts = Rejection::from_error_parts(ErrorParts {
                status: e.http_status(),
                code: e.code(),
                kind: e.kind_name(),
                message: &message,
                reason: &reason,
                rate_limit: match e {
                    Error::RateLimited { retry_after, limit } => Some((*limit, *retry_after)),
                    _ => None,
                },
            });
            assert_eq!(
                format!("{:?}", direct.refusal()),
                format!("{:?}", by_parts.refusal()),
                "{e:?}"
            );
            assert_eq!(
                (direct.kind(), direct.reason()),
                (by_parts.kind(), by_parts.reason())
            );
        }
        // A status that is no refusal is an internal error; a retry only goes with a 429.
        let odd = Rejection::from_error_parts(ErrorParts {
            status: 200,
            code: 2006,
            kind: "unauthorized",
            message: "secret detail",
            reason: "",
            rate_limit: Some((1, Duration::from_secs(1))),
        });
        assert_eq!(odd.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(odd.message(), "an internal error occurred");
        assert!(odd.retry_after().is_none());
    }

    #[test]
    fn internal_errors_say_nothing_more() {
        let e = Error::Store(apikeys::StoreError::Unavailable(
            "connection to 10.0.0.1 refused".into(),
        ));
        let r = Rejection::from_error(&e);
        assert_eq!((r.status().as_u16(), r.code()), (500, 2000));
        assert_eq!(r.message(), "an internal error occurred");
        assert!(r.reason().contains("refused"));
        assert!(!String::from_utf8_lossy(&r.body()).contains("10.0.0.1"));
    }
}
