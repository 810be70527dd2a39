//! The layers note where a key was last used from: the request's path and,
//! when the server put one in the request's extensions, the peer's
//! `SocketAddr` (both only when the last use is written, about once a minute).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apikeys::{AccessLevel, Actor, Keyring, Role};
use apikeys_http::RestAuthLayer;
use bytes::Bytes;
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

#[derive(Clone)]
struct Ok200;

impl Service<http::Request<()>> for Ok200 {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        Box::pin(async { Ok(http::Response::new(Full::new(Bytes::from_static(b"ok")))) })
    }
}

#[tokio::test]
async fn the_rest_layer_notes_the_path_and_the_peer_of_the_last_use() {
    let keyring = Arc::new(Keyring::default());
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let k = keyring
        .create_general_key(&admin, "ci", AccessLevel::FullAccess)
        .unwrap();
    let mut svc = RestAuthLayer::new(keyring.clone()).layer(Ok200);
    poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let mut req = http::Request::get("/incidents?offset=25")
        .header(
            "authorization",
            format!("Token token={}", k.secret().expose()),
        )
        .body(())
        .unwrap();
    let peer: SocketAddr = "192.0.2.44:51000".parse().unwrap();
    req.extensions_mut().insert(peer);
    let res = svc.call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let rec = keyring.get(&admin, &k.record().id.to_string()).unwrap();
    let place = rec.last_used_from.expect("a place");
    assert_eq!(place.remote_address.as_deref(), Some("192.0.2.44:51000"));
    assert_eq!(place.method.as_deref(), Some("GET"));
    assert_eq!(place.path.as_deref(), Some("/incidents"));
}
