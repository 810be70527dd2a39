//! The Events layer: the key is the `routing_key` field of the JSON body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apikeys::{Keyring, Origin, Request};
use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError};
use tower_layer::Layer;
use tower_service::Service;

use crate::credentials::{declared_length, routing_key};
use crate::offload::{self, Checked};
use crate::rejection::{Rejection, RejectionBody, insert_rate_limit};

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
/// back after it was read.
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

/// The future of [`EventsAuth`].
pub type EventsFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The whole body, up to `max` bytes. A body of one frame (a small request as
/// hyper hands it over, an axum `Body` made from `Bytes`) is that frame's
/// `Bytes` as they are: no list to gather frames in, no copy. Several frames
/// are joined. Over `max`: [`Rejection::body_too_large`] (also when the body
/// itself reports a [`LengthLimitError`], as `http_body_util::Limited` does);
/// a failed stream: [`Rejection::unreadable_body`].
async fn read_body<B>(body: B, max: usize) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                return Err(if e.is::<LengthLimitError>() {
                    Rejection::body_too_large(max)
                } else {
                    Rejection::unreadable_body()
                });
            }
        };
        // Trailers are not part of the body.
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let n = data.remaining();
        if n > max - size {
            return Err(Rejection::body_too_large(max));
        }
        size += n;
        let chunk = data.copy_to_bytes(n);
        match (&first, &mut joined) {
            (None, _) => first = Some(chunk),
            (Some(one), None) => {
                let mut all = BytesMut::with_capacity(size);
                all.extend_from_slice(one);
                all.extend_from_slice(&chunk);
                joined = Some(all);
            }
            (Some(_), Some(all)) => all.extend_from_slice(&chunk),
        }
    }
    Ok(match joined {
        Some(all) => all.freeze(),
        None => first.unwrap_or_default(),
    })
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for EventsAuth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<RejectionBody>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = EventsFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        // The clone waits for the next request; the service that was ready serves this one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let keyring = self.keyring.clone();
        let max = self.max_body;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let refuse = |r: Rejection| Ok(r.to_response_in());
            if let Some(declared) = parts.headers.get(CONTENT_LENGTH) {
                if let Err(r) = declared_length(declared.as_bytes(), max) {
                    return refuse(r);
                }
            }
            let bytes = match read_body(body, max).await {
                Ok(bytes) => bytes,
                Err(r) => return refuse(r),
            };
            let checked = match routing_key(&bytes) {
                Ok(key) => {
                    let origin = Origin {
                        remote_address: parts
                            .extensions
                            .get::<std::net::SocketAddr>()
                            .map(|a| a as &dyn std::fmt::Display),
                        path: Some(parts.uri.path()),
                    };
                    offload::check(&keyring, &key, &Request::events(), &origin)
                }
                Err(r) => return refuse(r),
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
        })
    }
}
