//! The Events layer: the key is the `routing_key` field of the JSON body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use apikeys::{Keyring, Origin, Principal, Request};
use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::LengthLimitError;
use tower_layer::Layer;
use tower_service::Service;

use crate::credentials::{declared_length, routing_key};
use crate::offload::{self, Checked};
use crate::rejection::{Rejection, RejectionBody, insert_rate_limit};
use crate::rest::ResponseFuture;

/// The default body limit: 512 KiB, PagerDuty's limit for one event.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 512 * 1024;

/// A tower [`Layer`] for an Events API v2 endpoint: reads the JSON body (up to
/// a limit), authenticates its `routing_key` as an Events key, and hands the
/// inner service the same body with the [`apikeys::Principal`] in the
/// request's extensions. The handler answers the event (202 on success).
///
/// Refusals: a body over the limit, not a JSON object, or without a
/// `routing_key`: 400; a REST key as the routing key: 400 (`wrong_api`); an
/// unknown or disabled key: 401; over the rate limit: 429.
///
/// The request body type must be buildable from [`Bytes`] (axum's `Body`,
/// `http_body_util::Full<Bytes>` …), since the inner service gets the body
/// back after it was read, and `Unpin` (every body of axum and hyper is), so
/// that a body already whole is read in `call` itself: then the check is
/// made there and the inner service called at once, with no clone of it and
/// no boxed future.
#[derive(Clone, Debug)]
pub struct EventsAuthLayer {
    keyring: Arc<Keyring>,
    max_body: usize,
}

impl EventsAuthLayer {
    /// A layer checking routing keys against `keyring`, with a 512 KiB body limit.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        EventsAuthLayer {
            keyring,
            max_body: DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// The same layer with another body limit in bytes.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }
}

impl<S> Layer<S> for EventsAuthLayer {
    type Service = EventsAuth<S>;

    fn layer(&self, inner: S) -> EventsAuth<S> {
        EventsAuth {
            inner,
            keyring: self.keyring.clone(),
            max_body: self.max_body,
        }
    }
}

/// The service made by [`EventsAuthLayer`].
#[derive(Clone, Debug)]
pub struct EventsAuth<S> {
    inner: S,
    keyring: Arc<Keyring>,
    max_body: usize,
}

/// The future of [`EventsAuth`]: the same as [`RestAuth`](crate::RestAuth)'s.
pub type EventsFuture<F> = ResponseFuture<F>;

/// The body read so far: the first frame's `Bytes` as they came, the frames
/// joined once there is more than one.
#[derive(Default)]
struct Reading {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    size: usize,
}

/// Reads the whole body, up to `max` bytes. A body of one frame (a small
/// request as hyper hands it over, an axum `Body` made from `Bytes`) is that
/// frame's `Bytes` as they are: no list to gather frames in, no copy. Several
/// frames are joined. Over `max`: [`Rejection::body_too_large`] (also when
/// the body itself reports a [`LengthLimitError`], as
/// `http_body_util::Limited` does); a failed stream:
/// [`Rejection::unreadable_body`]. `Pending` keeps what was read in `so_far`:
/// the next poll goes on from there.
fn poll_body<B>(
    mut body: Pin<&mut B>,
    cx: &mut Context<'_>,
    max: usize,
    so_far: &mut Reading,
) -> Poll<Result<Bytes, Rejection>>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    while let Some(frame) = ready!(body.as_mut().poll_frame(cx)) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                return Poll::Ready(Err(if e.is::<LengthLimitError>() {
                    Rejection::body_too_large(max)
                } else {
                    Rejection::unreadable_body()
                }));
            }
        };
        // Trailers are not part of the body.
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let n = data.remaining();
        if n > max - so_far.size {
            return Poll::Ready(Err(Rejection::body_too_large(max)));
        }
        so_far.size += n;
        let chunk = data.copy_to_bytes(n);
        match (&so_far.first, &mut so_far.joined) {
            (None, _) => so_far.first = Some(chunk),
            (Some(one), None) => {
                let mut all = BytesMut::with_capacity(so_far.size);
                all.extend_from_slice(one);
                all.extend_from_slice(&chunk);
                so_far.joined = Some(all);
            }
            (Some(_), Some(all)) => all.extend_from_slice(&chunk),
        }
    }
    let so_far = std::mem::take(so_far);
    Poll::Ready(Ok(match so_far.joined {
        Some(all) => all.freeze(),
        None => so_far.first.unwrap_or_default(),
    }))
}

/// The check of a whole body: its `routing_key` as an Events key, from where
/// the request came.
fn check_body(
    keyring: &Arc<Keyring>,
    parts: &http::request::Parts,
    bytes: &Bytes,
) -> Result<Checked, Rejection> {
    let key = routing_key(bytes)?;
    let origin = Origin {
        remote_address: parts
            .extensions
            .get::<std::net::SocketAddr>()
            .map(|a| a as &dyn std::fmt::Display),
        path: Some(parts.uri.path()),
    };
    Ok(offload::check(keyring, &key, &Request::events(), &origin))
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for EventsAuth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Unpin + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<RejectionBody> + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = EventsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let (parts, mut body) = req.into_parts();
        if let Some(declared) = parts.headers.get(CONTENT_LENGTH) {
            if let Err(r) = declared_length(declared.as_bytes(), self.max_body) {
                return ResponseFuture::rejected(r);
            }
        }
        // A body that is all there already (an axum `Body` made from
        // `Bytes`, a small request hyper has read whole) is read and checked
        // here, and the service that was ready serves the request at once:
        // no clone of it, no boxed future. A body still arriving is read on
        // in the future (polling it here with a waker that does nothing
        // loses nothing: the future polls it again with its own).
        let mut so_far = Reading::default();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let then = match poll_body(Pin::new(&mut body), &mut cx, self.max_body, &mut so_far) {
            Poll::Ready(Err(r)) => return ResponseFuture::rejected(r),
            Poll::Ready(Ok(bytes)) => match check_body(&self.keyring, &parts, &bytes) {
                Err(r) => return ResponseFuture::rejected(r),
                Ok(Checked::Now(Err(e))) => {
                    return ResponseFuture::rejected(Rejection::from_error(&e));
                }
                Ok(Checked::Now(Ok(principal))) => {
                    let rate_limit = principal.rate_limit().copied();
                    let mut req = http::Request::from_parts(parts, ReqBody::from(bytes));
                    req.extensions_mut().insert(principal);
                    return ResponseFuture::inner(self.inner.call(req), rate_limit);
                }
                Ok(Checked::Later(handle)) => Then::Wait(bytes, handle),
            },
            Poll::Pending => Then::Read(body, so_far),
        };
        // The service that was ready serves this request once the body is
        // read or the check is back; the clone waits for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        later(inner, self.keyring.clone(), self.max_body, parts, then)
    }
}

/// Where a request that could not be answered in `call` is.
enum Then<B> {
    /// Its body is still arriving (`Reading`: what came so far).
    Read(B, Reading),
    /// Its body is read and its check went to the blocking pool.
    Wait(
        Bytes,
        tokio::task::JoinHandle<Result<Principal, apikeys::Error>>,
    ),
}

/// The rest of an Events request, in a boxed future: the body read to the
/// end, the check, the inner service's answer.
fn later<S, ReqBody, ResBody>(
    mut inner: S,
    keyring: Arc<Keyring>,
    max: usize,
    parts: http::request::Parts,
    then: Then<ReqBody>,
) -> EventsFuture<S::Future>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Unpin + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<RejectionBody> + Send + 'static,
{
    ResponseFuture::boxed(Box::pin(async move {
        let refuse = |r: Rejection| Ok(r.to_response_in());
        let (bytes, checked) = match then {
            Then::Read(mut body, mut so_far) => {
                let read =
                    std::future::poll_fn(|cx| poll_body(Pin::new(&mut body), cx, max, &mut so_far));
                let bytes = match read.await {
                    Ok(bytes) => bytes,
                    Err(r) => return refuse(r),
                };
                match check_body(&keyring, &parts, &bytes) {
                    Ok(checked) => (bytes, checked),
                    Err(r) => return refuse(r),
                }
            }
            Then::Wait(bytes, handle) => (bytes, Checked::Later(handle)),
        };
        let answer = match checked {
            Checked::Now(answer) => answer,
            Checked::Later(handle) => offload::joined(handle.await),
        };
        let principal = match answer {
            Ok(p) => p,
            Err(e) => return refuse(Rejection::from_error(&e)),
        };
        let rate_limit = principal.rate_limit().copied();
        let mut req = http::Request::from_parts(parts, ReqBody::from(bytes));
        req.extensions_mut().insert(principal);
        let mut res = inner.call(req).await?;
        if let Some(status) = rate_limit {
            insert_rate_limit(res.headers_mut(), &status);
        }
        Ok(res)
    }))
}
