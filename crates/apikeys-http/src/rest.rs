//! The REST layer: the key from `Authorization`, the method from the request,
//! the scope from the route.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use apikeys::{Keyring, Method, RateLimitStatus, Request, Scope};
use tower_layer::Layer;
use tower_service::Service;

use crate::credentials::rest_token;
use crate::offload::{self, Checked};
use crate::rejection::{Rejection, RejectionBody, insert_rate_limit};

/// A scope for the request, set by whatever routed it (for servers that route
/// before authenticating, such as a plain hyper service). A
/// [`RestAuthLayer`] with a scope of its own ignores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredScope(pub Scope);

/// A tower [`Layer`] that authenticates REST requests with a [`Keyring`].
///
/// The key comes from `Authorization: Token token=<key>` (or `Bearer <key>`),
/// the method from the request, the scope from [`RestAuthLayer::with_scope`]
/// (or a [`RequiredScope`] extension); without either the request stands for
/// the broadest scope (see [`apikeys::Request`]). On success the inner service
/// gets the request with the [`apikeys::Principal`] in its extensions, and the
/// response gains the `ratelimit-*` headers when the keyring has rate limits.
/// A refusal answers at once with a [`Rejection`].
///
/// Put one on each route with its scope (axum: `route_layer` on the method
/// router), or one on a whole router for scope-less checks.
///
/// The check runs inline when the keyring cannot wait on I/O
/// ([`Keyring::may_block`] false: [`apikeys::MemoryStore`], an in-process
/// limiter), and when [`Keyring::try_authenticate`] can answer from a durable
/// store's cache; only a check that would wait (a cold lookup, a Redis
/// limiter) goes to tokio's blocking pool, so it never holds up the runtime.
#[derive(Clone, Debug)]
pub struct RestAuthLayer {
    scope: Option<Scope>,
    shared: Arc<Shared>,
}

/// What every copy of a [`RestAuth`] reads, behind one `Arc` (axum clones the
/// service for every request: one reference count to move, not several).
#[derive(Debug)]
struct Shared {
    keyring: Arc<Keyring>,
    /// Whether the layer has a scope of its own (then `requests` carry it).
    scope: bool,
    /// The request for each method, built once, so a call allocates nothing for it.
    requests: [Request; METHODS.len()],
}

/// Every [`Method`], in the order of [`method_index`].
const METHODS: [Method; 8] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
    Method::Other,
];

const fn method_index(m: Method) -> usize {
    match m {
        Method::Get => 0,
        Method::Head => 1,
        Method::Post => 2,
        Method::Put => 3,
        Method::Patch => 4,
        Method::Delete => 5,
        Method::Options => 6,
        Method::Other => 7,
    }
}

fn method_of(m: &http::Method) -> Method {
    match *m {
        http::Method::GET => Method::Get,
        http::Method::HEAD => Method::Head,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::PATCH => Method::Patch,
        http::Method::DELETE => Method::Delete,
        http::Method::OPTIONS => Method::Options,
        _ => Method::parse(m.as_str()),
    }
}

fn shared(keyring: Arc<Keyring>, scope: Option<&Scope>) -> Arc<Shared> {
    Arc::new(Shared {
        keyring,
        scope: scope.is_some(),
        requests: METHODS.map(|m| {
            let r = Request::rest_method(m);
            match scope {
                Some(s) => r.with_parsed_scope(s.clone()),
                None => r,
            }
        }),
    })
}

impl RestAuthLayer {
    /// A layer checking keys against `keyring`, with no scope.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        RestAuthLayer {
            scope: None,
            shared: shared(keyring, None),
        }
    }

    /// The same layer, requiring `scope` (`"incidents.write"`).
    ///
    /// # Errors
    /// [`apikeys::Error::InvalidInput`] when `scope` is not a valid scope.
    pub fn with_scope(self, scope: &str) -> apikeys::Result<Self> {
        Ok(self.with_parsed_scope(Scope::parse(scope)?))
    }

    /// The same layer, requiring an already parsed scope.
    pub fn with_parsed_scope(mut self, scope: Scope) -> Self {
        self.shared = shared(self.shared.keyring.clone(), Some(&scope));
        self.scope = Some(scope);
        self
    }

    /// The scope this layer requires.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }
}

impl<S> Layer<S> for RestAuthLayer {
    type Service = RestAuth<S>;

    fn layer(&self, inner: S) -> RestAuth<S> {
        RestAuth {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`RestAuthLayer`].
#[derive(Clone, Debug)]
pub struct RestAuth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> RestAuth<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn check<B>(&self, req: &http::Request<B>) -> Result<Checked, Rejection> {
        let token = rest_token(req.headers())?;
        let method = method_of(req.method());
        let shared = &*self.shared;
        Ok(match req.extensions().get::<RequiredScope>() {
            Some(RequiredScope(scope)) if !shared.scope => {
                let request = Request::rest_method(method).with_parsed_scope(scope.clone());
                offload::check(&shared.keyring, token, &request, &offload::origin_of(req))
            }
            _ => offload::check(
                &shared.keyring,
                token,
                &shared.requests[method_index(method)],
                &offload::origin_of(req),
            ),
        })
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RestAuth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<RejectionBody> + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        match self.check(&req) {
            Ok(Checked::Now(Ok(principal))) => {
                let rate_limit = principal.rate_limit().copied();
                req.extensions_mut().insert(principal);
                ResponseFuture::inner(self.inner.call(req), rate_limit)
            }
            Ok(Checked::Now(Err(e))) => ResponseFuture::rejected(Rejection::from_error(&e)),
            Err(rejection) => ResponseFuture::rejected(rejection),
            Ok(Checked::Later(handle)) => {
                // The service that was ready serves this request once the
                // check is back; the clone waits for the next one.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(Box::pin(async move {
                    match offload::joined(handle.await) {
                        Ok(principal) => {
                            let rate_limit = principal.rate_limit().copied();
                            req.extensions_mut().insert(principal);
                            let mut res = inner.call(req).await?;
                            if let Some(status) = rate_limit {
                                insert_rate_limit(res.headers_mut(), &status);
                            }
                            Ok(res)
                        }
                        Err(e) => Ok(Rejection::from_error(&e).to_response_in()),
                    }
                }))
            }
        }
    }
}

/// The boxed continuation of a check that went to the blocking pool.
pub(crate) type Boxed<O> = Pin<Box<dyn Future<Output = O> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`RestAuth`]: the inner service's response with the
    /// rate-limit headers added, or a refusal.
    pub struct ResponseFuture<F>
    where
        F: Future,
    {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F>
    where
        F: Future,
    {
        Inner { #[pin] fut: F, rate_limit: Option<RateLimitStatus> },
        Rejected { rejection: Option<Rejection> },
        Boxed { fut: Boxed<F::Output> },
    }
}

impl<F: Future> ResponseFuture<F> {
    pub(crate) fn boxed(fut: Boxed<F::Output>) -> Self {
        ResponseFuture {
            state: State::Boxed { fut },
        }
    }

    pub(crate) fn inner(fut: F, rate_limit: Option<RateLimitStatus>) -> Self {
        ResponseFuture {
            state: State::Inner { fut, rate_limit },
        }
    }

    pub(crate) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: From<RejectionBody>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { fut, rate_limit } => {
                let mut res = ready!(fut.poll(cx))?;
                if let Some(status) = rate_limit {
                    insert_rate_limit(res.headers_mut(), status);
                }
                Poll::Ready(Ok(res))
            }
            StateProj::Rejected { rejection } => {
                let rejection = rejection
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(rejection.to_response_in()))
            }
            StateProj::Boxed { fut } => fut.as_mut().poll(cx),
        }
    }
}
