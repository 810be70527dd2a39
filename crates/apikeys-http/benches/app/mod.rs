//! The axum apps the layer benchmarks compare, and a way to run one request
//! through them without a socket or a runtime (every future here is ready at
//! once).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use apikeys::{AccessLevel, Actor, Keyring, MemoryStore, Role};
use apikeys_http::RestAuthLayer;
use axum::Router;
use axum::body::Body;
use axum::handler::HandlerWithoutStateExt;
use axum::routing::{get, get_service};
use http_body_util::BodyExt;
use tower_service::Service;

pub async fn incidents() -> ([(&'static str, &'static str); 1], &'static str) {
    (
        [("content-type", "application/json")],
        r#"{"incidents":[],"limit":25,"offset":0,"more":false}"#,
    )
}

/// A layer that does nothing: what axum's wrapping of a route costs by itself.
#[derive(Clone)]
pub struct Pass;

impl<S> tower_layer::Layer<S> for Pass {
    type Service = PassService<S>;
    fn layer(&self, inner: S) -> PassService<S> {
        PassService(inner)
    }
}

#[derive(Clone)]
pub struct PassService<S>(S);

impl<S: Service<R>, R> Service<R> for PassService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> S::Future {
        self.0.call(req)
    }
}

pub struct Apps {
    pub keyring: Arc<Keyring>,
    pub key: String,
    pub layer: RestAuthLayer,
    /// `get(incidents)`, no authentication.
    pub plain: Router,
    /// `get(incidents).route_layer(RestAuthLayer …with_scope("incidents.read"))`.
    pub route_layer: Router,
    /// `get(incidents).route_layer(Pass)`.
    pub pass_layer: Router,
    /// `get_service(RestAuthLayer.layer(incidents.into_service()))`.
    pub service: Router,
}

/// The apps; `manual_clock` stops the keyring's clock (valgrind cannot run
/// the vDSO clock the system clock reads).
pub fn apps(manual_clock: bool) -> Apps {
    let keyring = if manual_clock {
        let start = apikeys::Timestamp::from_unix_millis(1_700_000_000_000);
        Keyring::builder()
            .store(MemoryStore::new())
            .clock(apikeys::ManualClock::new(start))
            .build()
            .expect("a keyring")
    } else {
        Keyring::new(MemoryStore::new())
    };
    let keyring = Arc::new(keyring);
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let key = keyring
        .create_general_key(&admin, "bench", AccessLevel::FullAccess)
        .expect("a key");
    let layer = RestAuthLayer::new(keyring.clone())
        .with_scope("incidents.read")
        .expect("a scope");
    // `with_state` turns each handler into its route once, as `axum::serve`
    // does (a router called as it is would do that on every request).
    Apps {
        key: key.secret().expose().to_owned(),
        plain: Router::new()
            .route("/incidents", get(incidents))
            .with_state(()),
        route_layer: Router::new()
            .route("/incidents", get(incidents).route_layer(layer.clone()))
            .with_state(()),
        pass_layer: Router::new()
            .route("/incidents", get(incidents).route_layer(Pass))
            .with_state(()),
        service: Router::new()
            .route(
                "/incidents",
                get_service(tower_layer::Layer::layer(&layer, incidents.into_service())),
            )
            .with_state(()),
        layer,
        keyring,
    }
}

pub fn request(key: &str) -> http::Request<Body> {
    http::Request::get("/incidents")
        .header("host", "127.0.0.1:18182")
        .header("user-agent", "wrk")
        .header("authorization", format!("Token token={key}"))
        .body(Body::empty())
        .expect("a request")
}

/// Poll a future that must be ready at once.
pub fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the future was not ready"),
    }
}

/// One request through `app`, the body read to the end; the status.
pub fn serve(app: &mut Router, req: http::Request<Body>) -> u16 {
    let res = now(app.call(req)).expect("infallible");
    let status = res.status().as_u16();
    let body = now(res.into_body().collect()).expect("a body");
    std::hint::black_box(body);
    status
}
