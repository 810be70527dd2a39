//! Refusals, and how they are written: PagerDuty's error body with the right
//! status and headers.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use apikeys::{Error, RateLimitStatus};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
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
        Rejection::new(StatusCode::BAD_REQUEST, 2001, "invalid_body", message)
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
        let mut r = Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            2000,
            "not_protected",
            "an internal error occurred",
        );
        r.reason = Cow::Borrowed(
            "the handler asked for the principal, but no apikeys layer authenticated the request",
        );
        r
    }

    /// What [`apikeys::Keyring::authenticate`] refused, as the design's table says.
    pub fn from_error(error: &Error) -> Self {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let internal = status.is_server_error();
        Rejection {
            status,
            code: error.code(),
            kind: error.kind_name(),
            message: if internal {
                Cow::Borrowed("an internal error occurred")
            } else {
                Cow::Owned(error.to_string())
            },
            reason: Cow::Owned(error.reason()),
            limited: match error {
                Error::RateLimited { retry_after, limit } => Some((*limit, *retry_after)),
                _ => None,
            },
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
    /// `body_too_large`, `invalid_body`, `missing_routing_key`, `not_protected`.
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

    /// The JSON body: `{"error":{"message":…,"code":…}}`.
    pub fn body(&self) -> Bytes {
        let v = serde_json::json!({"error": {"message": self.message, "code": self.code}});
        Bytes::from(v.to_string())
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
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        if let Some((limit, retry)) = self.limited {
            h.insert(RETRY_AFTER, number(ceil_secs(retry)));
            insert_rate_limit(
                h,
                &RateLimitStatus {
                    limit,
                    remaining: 0,
                    reset: retry,
                },
            );
        }
        res.extensions_mut().insert(self.clone());
        res
    }
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

/// Add `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` (seconds,
/// rounded up) to response headers.
pub fn insert_rate_limit(headers: &mut HeaderMap, status: &RateLimitStatus) {
    headers.insert(RATELIMIT_LIMIT, number(u64::from(status.limit)));
    headers.insert(RATELIMIT_REMAINING, number(u64::from(status.remaining)));
    headers.insert(RATELIMIT_RESET, number(ceil_secs(status.reset)));
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
