// The quickstart story against the packaged crates (scripts/test-packages.sh
// builds this in a scratch Cargo project that depends on the unpacked .crate
// files, not on the workspace).
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use apikeys::{AccessLevel, Actor, Error, Keyring, Request, Role};
use apikeys_http::RestAuthLayer;
use apikeys_sqlite::SqliteStore;
use bytes::Bytes;
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

fn status(r: Result<apikeys::Principal, Error>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => e.http_status(),
    }
}

/// The application behind the layer: answers 200 "hello".
#[derive(Clone)]
struct Hello;
impl Service<http::Request<()>> for Hello {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(Full::new(Bytes::from_static(
            b"hello",
        )))))
    }
}

/// Every future here is ready at once (the store is SQLite, the app answers inline).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the layer's future was not ready"),
    }
}

fn get(
    service: &mut impl Service<
        http::Request<()>,
        Response = http::Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<http::Response<Full<Bytes>>, Infallible>>,
    >,
    key: Option<&str>,
) -> u16 {
    let mut req = http::Request::get("/incidents");
    if let Some(key) = key {
        req = req.header("authorization", format!("Token token={key}"));
    }
    let res = now(service.call(req.body(()).unwrap())).unwrap();
    res.status().as_u16()
}

fn main() -> Result<(), Error> {
    let dir = std::env::args().nth(1).expect("usage: story <scratch dir>");
    let path = std::path::Path::new(&dir).join("keys.db");
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let manager = Actor::new("acme", "PMANAGER1", Role::Manager);

    let (token, kept, id) = {
        let keyring = Keyring::new(SqliteStore::open(&path)?);
        let issued = keyring.create_general_key(&admin, "CI bot", AccessLevel::ReadOnly)?;
        let token = issued.secret().expose().to_owned();
        assert_eq!(token.len(), 20);
        let principal = keyring.authenticate(&token, &Request::rest("GET"))?;
        assert_eq!(principal.account(), "acme");
        let post = Request::rest("POST").with_scope("incidents.write")?;
        assert_eq!(status(keyring.authenticate(&token, &post)), 403);

        let id = issued.record().id.to_string();
        keyring.disable(&admin, &id)?;
        assert_eq!(
            status(keyring.authenticate(&token, &Request::rest("GET"))),
            401
        );
        keyring.enable(&admin, &id)?;
        assert_eq!(
            status(keyring.authenticate(&token, &Request::rest("GET"))),
            200
        );

        let events = keyring.create_integration_key(&manager, "PSERVICE1", "Datadog")?;
        let events_key = events.secret().expose();
        assert_eq!(events_key.len(), 32);
        assert_eq!(
            status(keyring.authenticate(events_key, &Request::events())),
            200
        );
        assert!(matches!(
            keyring.authenticate(events_key, &Request::rest("GET")),
            Err(Error::WrongApi { .. })
        ));

        let kept = keyring.create_general_key(&admin, "kept", AccessLevel::FullAccess)?;
        keyring.delete(&admin, &id)?;
        assert_eq!(
            status(keyring.authenticate(&token, &Request::rest("GET"))),
            401
        );
        (token, kept.secret().expose().to_owned(), id)
    };

    // The file keeps the keys: a new keyring on it knows the kept key and not the deleted one.
    let keyring = Arc::new(Keyring::new(SqliteStore::open(&path)?));
    assert_eq!(
        status(keyring.authenticate(&kept, &Request::rest("DELETE"))),
        200
    );
    assert_eq!(
        status(keyring.authenticate(&token, &Request::rest("GET"))),
        401
    );
    assert!(matches!(
        keyring.get(&admin, &id),
        Err(Error::NotFound { .. })
    ));

    // apikeys-http: the tower layer in front of an app.
    let mut service = RestAuthLayer::new(keyring.clone()).layer(Hello);
    assert_eq!(get(&mut service, Some(&kept)), 200);
    assert_eq!(get(&mut service, None), 401);
    assert_eq!(get(&mut service, Some(&token)), 401);

    // apikeys-postgres and apikeys-redis need servers; here they only have to build and link.
    let _connect_pg: fn(&str) -> Result<apikeys_postgres::PostgresStore, apikeys::StoreError> =
        apikeys_postgres::PostgresStore::connect;
    let _connect_redis: fn(&str) -> Result<apikeys_redis::RedisRateLimiter, apikeys::StoreError> =
        apikeys_redis::RedisRateLimiter::connect;

    println!("rust story: ok");
    Ok(())
}
