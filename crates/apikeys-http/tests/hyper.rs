//! The REST layer on a plain hyper server (no axum): a hand-written tower
//! service behind `RestAuthLayer`, taking hyper's own `Incoming` body.

mod common;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use apikeys::{AccessLevel, Actor, Keyring, MemoryStore, Principal, Role};
use apikeys_http::RestAuthLayer;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::body::Incoming;
use tower_layer::Layer;
use tower_service::Service;

/// Answers with the account of the principal the layer put in the extensions.
#[derive(Clone)]
struct Hello;

impl Service<http::Request<Incoming>> for Hello {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        let who = req
            .extensions()
            .get::<Principal>()
            .map_or("nobody".to_owned(), |p| p.account().to_owned());
        ready(Ok(http::Response::new(Full::new(Bytes::from(who)))))
    }
}

fn serve(keyring: Arc<Keyring>) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let svc = RestAuthLayer::new(keyring)
        .with_scope("incidents.write")
        .unwrap()
        .layer(Hello);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    addr
}

#[test]
fn rest_layer_protects_a_plain_hyper_service() {
    let keyring = Arc::new(Keyring::new(MemoryStore::new()));
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let full = keyring
        .create_general_key(&admin, "full", AccessLevel::FullAccess)
        .unwrap();
    let ro = keyring
        .create_general_key(&admin, "ro", AccessLevel::ReadOnly)
        .unwrap();
    let addr = serve(keyring);

    let a = post(addr, "/anything", full.secret().expose(), "{}");
    assert_eq!((a.status, a.body.as_str()), (200, "acme"), "{}", a.whole());
    // incidents.write: a read-only key is refused even for a GET.
    let a = get(addr, "/anything", ro.secret().expose());
    assert_eq!(a.status, 403, "{}", a.whole());
    assert_eq!(a.error().0, 2010);
    let a = send(addr, &request("GET", "/anything", &[], ""));
    assert_eq!(a.status, 401, "{}", a.whole());
    assert_eq!(a.header("www-authenticate"), Some("Token"));
    let a = post(addr, "/anything", full.secret().expose(), "{}");
    assert_eq!(a.status, 200, "the server still serves: {}", a.whole());
}
