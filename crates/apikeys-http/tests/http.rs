//! The layers over a real socket on loopback, with plain HTTP requests for
//! every edge case, and the server still serving afterwards.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use apikeys::Scope;
use apikeys::{AccessLevel, Actor, Keyring, Limit, LimitClass, MemoryStore, RateLimits, Role};
use apikeys_http::{Authenticated, EventsAuthLayer, RequiredScope, RestAuthLayer};
use axum::Router;
use axum::http::StatusCode;
use axum::routing;
use common::*;

struct Fixture {
    addr: SocketAddr,
    keyring: Arc<Keyring>,
    admin: Actor,
    full: String,
    read_only: String,
    read_only_id: String,
    scoped: String,
    integration: String,
}

async fn list(Authenticated(who): Authenticated) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "incidents": [],
        "account": who.account(),
        "kind": who.kind().to_string(),
    }))
}

async fn create(who: Authenticated) -> (StatusCode, String) {
    (StatusCode::CREATED, format!("created in {}", who.account()))
}

async fn enqueue(who: Authenticated, body: String) -> (StatusCode, String) {
    let target = who.target().unwrap_or("-").to_owned();
    (StatusCode::ACCEPTED, format!("{target} {}", body.len()))
}

async fn open(who: Option<Authenticated>) -> &'static str {
    if who.is_some() {
        "someone"
    } else {
        "anonymous"
    }
}

fn app(keyring: &Arc<Keyring>) -> Router {
    let rest = RestAuthLayer::new(keyring.clone());
    Router::new()
        .route(
            "/incidents",
            routing::get(list).route_layer(rest.clone().with_scope("incidents.read").unwrap()),
        )
        .route(
            "/incidents",
            routing::post(create).route_layer(rest.clone().with_scope("incidents.write").unwrap()),
        )
        .route("/whoami", routing::get(list).route_layer(rest.clone()))
        .route("/any", routing::any(create).layer(rest.clone()))
        // A scope set by whatever routed the request, as a request extension.
        .route(
            "/by-extension",
            routing::post(create)
                .route_layer(rest)
                .route_layer(axum::Extension(RequiredScope(
                    Scope::parse("incidents.write").unwrap(),
                ))),
        )
        .route(
            "/v2/enqueue",
            routing::post(enqueue)
                .route_layer(EventsAuthLayer::new(keyring.clone()).max_body_bytes(64 * 1024)),
        )
        .route("/open", routing::get(open))
        .route("/forgot-the-layer", routing::get(list))
}

/// Serve `app` on a loopback port from a thread of its own. The hyper
/// connection builder allows a 2 MiB head, so that a 1 MB header reaches the layer.
fn serve(app: Router) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .max_buf_size(2 << 20)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    addr
}

fn fixture_with(keyring: Keyring) -> Fixture {
    let keyring = Arc::new(keyring);
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let manager = Actor::new("acme", "PMANAGER1", Role::Manager);
    let full = keyring
        .create_general_key(&admin, "full", AccessLevel::FullAccess)
        .unwrap();
    let read_only = keyring
        .create_general_key(&admin, "read only", AccessLevel::ReadOnly)
        .unwrap();
    let scoped = keyring
        .create_scoped_token(&manager, "closer", &["incidents.write"])
        .unwrap();
    let integration = keyring
        .create_integration_key(&manager, "PSERVICE1", "Datadog")
        .unwrap();
    Fixture {
        addr: serve(app(&keyring)),
        keyring,
        admin,
        full: full.secret().expose().to_owned(),
        read_only: read_only.secret().expose().to_owned(),
        read_only_id: read_only.record().id.to_string(),
        scoped: scoped.secret().expose().to_owned(),
        integration: integration.secret().expose().to_owned(),
    }
}

fn fixture() -> Fixture {
    fixture_with(Keyring::new(MemoryStore::new()))
}

impl Fixture {
    fn keys(&self) -> [&str; 4] {
        [&self.full, &self.read_only, &self.scoped, &self.integration]
    }

    /// A refusal: status, PagerDuty code, the error body, and no key anywhere.
    fn refused(&self, a: &Answer, status: u16, code: u64) -> String {
        assert_eq!(a.status, status, "{}", a.whole());
        assert!(
            a.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{}",
            a.whole()
        );
        let (c, message) = a.error();
        assert_eq!(c, code, "{}", a.whole());
        for k in self.keys() {
            assert!(!a.whole().contains(k), "a key leaked: {}", a.whole());
        }
        assert_eq!(
            a.header("www-authenticate").is_some(),
            status == 401,
            "{}",
            a.whole()
        );
        if status == 401 {
            assert_eq!(a.header("www-authenticate"), Some("Token"));
        }
        message
    }

    /// The server still answers a valid request.
    fn still_serving(&self) {
        let a = get(self.addr, "/incidents", &self.full);
        assert_eq!(a.status, 200, "{}", a.whole());
    }
}

#[test]
fn valid_key_reads_in_every_accepted_header_form() {
    let f = fixture();
    for header in [
        format!("Authorization: Token token={}", f.full),
        format!("authorization: token TOKEN={}", f.full),
        format!("Authorization:    Token   token = \"{}\"  ", f.full),
        format!("Authorization: Bearer {}", f.read_only),
    ] {
        let a = send(f.addr, &request("GET", "/incidents", &[&header], ""));
        assert_eq!(a.status, 200, "{header}: {}", a.whole());
        let v = a.json();
        assert_eq!(v["account"], "acme");
        assert_eq!(v["kind"], "general");
        assert!(
            a.header("ratelimit-limit").is_none(),
            "no limits configured"
        );
    }
}

#[test]
fn missing_empty_and_malformed_headers_are_401_with_the_error_body() {
    let f = fixture();
    let cases: Vec<Vec<u8>> = vec![
        request("GET", "/incidents", &[], ""),
        request("GET", "/incidents", &["Authorization:"], ""),
        request("GET", "/incidents", &["Authorization:    "], ""),
        request(
            "GET",
            "/incidents",
            &[&format!("Authorization: Basic {}", f.full)],
            "",
        ),
        request(
            "GET",
            "/incidents",
            &[&format!("Authorization: {}", f.full)],
            "",
        ),
        request(
            "GET",
            "/incidents",
            &[&format!("Authorization: Token {}", f.full)],
            "",
        ),
        request(
            "GET",
            "/incidents",
            &["Authorization: Token token=not-a-key"],
            "",
        ),
        request(
            "GET",
            "/incidents",
            &["Authorization: Token token=aaaaaaaaaaaaaaaaaaaa"],
            "",
        ),
        // An Events key on the REST API.
        request(
            "GET",
            "/incidents",
            &[&format!("Authorization: Token token={}", f.integration)],
            "",
        ),
    ];
    for raw in cases {
        let a = send(f.addr, &raw);
        let msg = f.refused(&a, 401, 2006);
        assert!(!msg.is_empty());
    }
    f.still_serving();
}

#[test]
fn one_megabyte_header_is_refused_and_the_server_goes_on() {
    let f = fixture();
    let huge = format!("Authorization: Token token={}", "a".repeat(1 << 20));
    let a = send(f.addr, &request("GET", "/incidents", &[&huge], ""));
    f.refused(&a, 401, 2006);
    // A valid key with a megabyte of padding after it is not that key.
    let huge = format!("Authorization: Bearer {}{}", f.full, "A".repeat(1 << 20));
    let a = send(f.addr, &request("GET", "/incidents", &[&huge], ""));
    f.refused(&a, 401, 2006);
    // Surrounding spaces are tolerated, however many (hyper trims the value).
    let spaced = format!("Authorization: Bearer {}{}", f.full, " ".repeat(1 << 20));
    assert_eq!(
        send(f.addr, &request("GET", "/incidents", &[&spaced], "")).status,
        200
    );
    f.still_serving();
}

#[test]
fn one_megabyte_header_under_axum_serve_gets_hypers_431() {
    let keyring = Arc::new(Keyring::new(MemoryStore::new()));
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let key = keyring
        .create_general_key(&admin, "k", AccessLevel::FullAccess)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(&keyring);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(l, router).await;
        });
    });
    let huge = format!("Authorization: Token token={}", "a".repeat(1 << 20));
    // Hyper answers 431 and closes; the answer may be lost if the close
    // overtakes it, but the server must go on either way.
    if let Some(a) = try_send(addr, &request("GET", "/incidents", &[&huge], "")) {
        assert_eq!(a.status, 431, "{}", a.whole());
    }
    let a = get(addr, "/incidents", key.secret().expose());
    assert_eq!(a.status, 200, "{}", a.whole());
}

#[test]
fn two_authorization_headers_are_400() {
    let f = fixture();
    let h = format!("Authorization: Token token={}", f.full);
    let a = send(f.addr, &request("GET", "/incidents", &[&h, &h], ""));
    f.refused(&a, 400, 2001);
    let other = format!("Authorization: Bearer {}", f.read_only);
    let a = send(f.addr, &request("GET", "/incidents", &[&h, &other], ""));
    f.refused(&a, 400, 2001);
    f.still_serving();
}

#[test]
fn read_only_key_cannot_post_and_full_key_can() {
    let f = fixture();
    let a = post(f.addr, "/incidents", &f.read_only, "{}");
    let msg = f.refused(&a, 403, 2010);
    assert!(msg.contains("read-only"), "{msg}");
    let a = post(f.addr, "/incidents", &f.full, "{}");
    assert_eq!(
        (a.status, a.body.as_str()),
        (201, "created in acme"),
        "{}",
        a.whole()
    );
}

#[test]
fn disabled_key_is_401_and_enabled_again_reads() {
    let f = fixture();
    assert_eq!(get(f.addr, "/incidents", &f.read_only).status, 200);
    f.keyring.disable(&f.admin, &f.read_only_id).unwrap();
    let a = get(f.addr, "/incidents", &f.read_only);
    f.refused(&a, 401, 2006);
    f.keyring.enable(&f.admin, &f.read_only_id).unwrap();
    assert_eq!(get(f.addr, "/incidents", &f.read_only).status, 200);
}

#[test]
fn the_route_scope_decides_what_a_scoped_token_may_do() {
    let f = fixture();
    // incidents.write covers reading and writing incidents …
    assert_eq!(get(f.addr, "/incidents", &f.scoped).status, 200);
    assert_eq!(post(f.addr, "/incidents", &f.scoped, "{}").status, 201);
    // … but a route without a scope stands for every resource.
    let a = get(f.addr, "/whoami", &f.scoped);
    f.refused(&a, 403, 2010);
    assert_eq!(get(f.addr, "/whoami", &f.full).status, 200);
    // The scope can come from a request extension too.
    assert_eq!(post(f.addr, "/by-extension", &f.scoped, "{}").status, 201);
    let a = post(f.addr, "/by-extension", &f.read_only, "{}");
    f.refused(&a, 403, 2010);
}

#[test]
fn every_method_is_checked_as_itself() {
    let f = fixture();
    let ro = format!("Authorization: Token token={}", f.read_only);
    let full = format!("Authorization: Token token={}", f.full);
    // A read-only key may GET and HEAD, nothing else; a full key may do anything.
    for m in ["GET", "HEAD"] {
        let a = send(f.addr, &request(m, "/any", &[&ro], ""));
        assert_eq!(a.status, 201, "{m}: {}", a.whole());
    }
    for m in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"] {
        f.refused(&send(f.addr, &request(m, "/any", &[&ro], "{}")), 403, 2010);
        let a = send(f.addr, &request(m, "/any", &[&full], "{}"));
        assert_eq!(a.status, 201, "{m}: {}", a.whole());
    }
}

#[test]
fn events_key_in_the_body_is_accepted_with_202() {
    let f = fixture();
    let body = event(&f.integration);
    let a = send(f.addr, &request("POST", "/v2/enqueue", &[], &body));
    assert_eq!(a.status, 202, "{}", a.whole());
    // The handler got the principal and the whole body.
    assert_eq!(a.body, format!("PSERVICE1 {}", body.len()));
}

#[test]
fn rest_key_as_routing_key_is_refused() {
    let f = fixture();
    for k in [&f.full, &f.scoped] {
        let a = send(f.addr, &request("POST", "/v2/enqueue", &[], &event(k)));
        let msg = f.refused(&a, 400, 2006);
        assert!(msg.to_lowercase().contains("rest api"), "{msg}");
    }
    // An unknown Events key is 401.
    let a = send(
        f.addr,
        &request(
            "POST",
            "/v2/enqueue",
            &[],
            &event("0123456789abcdef0123456789abcdef"),
        ),
    );
    f.refused(&a, 401, 2006);
    f.still_serving();
}

#[test]
fn bad_events_bodies_are_400() {
    let f = fixture();
    let huge = format!(
        r#"{{"routing_key":"{}","payload":"{}"}}"#,
        f.integration,
        "x".repeat(200 * 1024)
    );
    for body in [
        "".to_owned(),
        "not json".to_owned(),
        format!("routing_key={}", f.integration),
        format!(r#"{{"routing_key":"{}""#, f.integration),
        format!(r#"["{}"]"#, f.integration),
        r#"{"event_action":"trigger","payload":{}}"#.to_owned(),
        r#"{"routing_key":42}"#.to_owned(),
        huge,
    ] {
        let a = send(f.addr, &request("POST", "/v2/enqueue", &[], &body));
        f.refused(&a, 400, 2001);
    }
    // A huge body without Content-Length (chunked) is cut off at the limit too.
    let mut raw = Vec::new();
    raw.extend_from_slice(b"POST /v2/enqueue HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = "x".repeat(16 * 1024);
    let first = format!("{{\"routing_key\":\"{}\",\"p\":\"", f.integration);
    raw.extend_from_slice(format!("{:x}\r\n{first}\r\n", first.len()).as_bytes());
    for _ in 0..8 {
        raw.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    raw.extend_from_slice(b"2\r\n\"}\r\n0\r\n\r\n");
    let a = send(f.addr, &raw);
    let msg = f.refused(&a, 400, 2001);
    assert!(msg.contains("65536"), "{msg}");
    // A good event still goes through afterwards.
    let a = send(
        f.addr,
        &request("POST", "/v2/enqueue", &[], &event(&f.integration)),
    );
    assert_eq!(a.status, 202, "{}", a.whole());
    f.still_serving();
}

#[test]
fn extractor_without_a_layer_is_a_500_that_says_nothing() {
    let f = fixture();
    let a = get(f.addr, "/forgot-the-layer", &f.full);
    let msg = f.refused(&a, 500, 2000);
    assert_eq!(msg, "an internal error occurred");
    let a = get(f.addr, "/open", &f.full);
    assert_eq!((a.status, a.body.as_str()), (200, "anonymous"));
}

#[test]
fn exhausted_limit_is_429_with_retry_after_and_ratelimit_headers() {
    let limits = RateLimits::none()
        .with_limit(
            LimitClass::GeneralKey,
            Some(Limit::new(3, Duration::from_secs(3600)).unwrap()),
        )
        .with_limit(
            LimitClass::EventsKey,
            Some(Limit::new(1, Duration::from_secs(3600)).unwrap()),
        );
    let f = fixture_with(
        Keyring::builder()
            .store(MemoryStore::new())
            .rate_limits(limits)
            .build()
            .unwrap(),
    );
    for remaining in (0..3).rev() {
        let a = get(f.addr, "/incidents", &f.full);
        assert_eq!(a.status, 200, "{}", a.whole());
        assert_eq!(a.header("ratelimit-limit"), Some("3"));
        assert_eq!(
            a.header("ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        assert_eq!(a.header("ratelimit-reset"), Some("3600"));
    }
    let a = get(f.addr, "/incidents", &f.full);
    f.refused(&a, 429, 2020);
    let retry: u64 = a
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(a.header("ratelimit-limit"), Some("3"));
    assert_eq!(a.header("ratelimit-remaining"), Some("0"));
    assert_eq!(
        a.header("ratelimit-reset"),
        Some(retry.to_string().as_str())
    );
    // Another key has its own budget.
    assert_eq!(get(f.addr, "/incidents", &f.read_only).status, 200);
    // Events keys too.
    let a = send(
        f.addr,
        &request("POST", "/v2/enqueue", &[], &event(&f.integration)),
    );
    assert_eq!(
        (a.status, a.header("ratelimit-remaining")),
        (202, Some("0"))
    );
    let a = send(
        f.addr,
        &request("POST", "/v2/enqueue", &[], &event(&f.integration)),
    );
    f.refused(&a, 429, 2020);
    assert!(a.header("retry-after").is_some());
}
