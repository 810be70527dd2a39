//! What `RestAuthLayer` and `EventsAuthLayer` add to an axum request, next to
//! what a layer doing nothing adds and what `Keyring::authenticate` costs, in
//! one run: each case is `tower::Service::call` on the router with a prebuilt
//! request (no socket, no runtime: every future is ready at once), the
//! answer's body read to the end. Batches of requests alternate between the
//! cases (the order rotating each round); each case's figure is its fastest
//! batch, next to its median batch, in ns per request.
//!
//! - REST, `GET /incidents` needing `incidents.read`: `bare` (no layer),
//!   `noop` (`route_layer` of a layer that only passes the request on),
//!   `apikeys` (`route_layer(RestAuthLayer … with_scope)`), and
//!   `apikeys-service` (`get_service(layer.layer(handler))`, the form that
//!   skips axum's second boxed route).
//! - Events, `POST /v2/enqueue` with a 1 KiB JSON event; the handler takes
//!   the body (`Bytes`) and answers 202: `bare`, `noop`, `apikeys`
//!   (`route_layer(EventsAuthLayer)`).
//! - The parts alone: `Keyring::authenticate` (REST with the scope; Events),
//!   `routing_key` on the 1 KiB body, `rest_token` on the REST request's headers.
//!
//! `cargo bench -p apikeys-http --bench adapters [-- ROUNDS | --quick]`;
//! `-- --loop CASE N` runs one case N times and nothing else (a stopped
//! clock: for `valgrind --tool=callgrind`, which counts instructions).
//!
//! `-- --evict BYTES` walks a buffer of BYTES (one load per 64-byte line)
//! before every request of every case, the same walk in each, so that each
//! request starts with caches as cold as a server leaves them between
//! requests (its framework and kernel code and data in between); each request
//! is then timed alone, the walk outside the clock, and a batch's figure is
//! the sum of its requests' times. With `--loop` the walk runs between the
//! looped requests too (for callgrind's `--cache-sim=yes`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use apikeys::{Actor, Keyring, Role};
use apikeys_http::{EventsAuthLayer, rest_token, routing_key};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::post;

mod app;

const BATCH: usize = 1000;

/// A buffer walked between requests (`--evict BYTES`): one load per cache
/// line, so that what a request finds in the caches is what that many bytes
/// of other work left there.
struct Evict(Vec<u8>);

impl Evict {
    fn walk(&self) {
        let mut sum = 0u8;
        for line in self.0.chunks(64) {
            sum = sum.wrapping_add(black_box(line[0]));
        }
        black_box(sum);
    }
}

async fn enqueue(body: Bytes) -> StatusCode {
    if body.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    }
}

/// A PagerDuty Events v2 trigger of exactly `size` bytes.
fn event_body(routing_key: &str, size: usize) -> Bytes {
    let head = format!(
        r#"{{"routing_key":"{routing_key}","event_action":"trigger","payload":{{"source":"bench.example","severity":"critical","summary":""#
    );
    let tail = r#""}}"#;
    let pad = size - head.len() - tail.len();
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    assert_eq!(body.len(), size);
    Bytes::from(body)
}

fn events_request(body: &Bytes) -> http::Request<Body> {
    http::Request::post("/v2/enqueue")
        .header("host", "127.0.0.1:18182")
        .header("user-agent", "wrk")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body.clone()))
        .expect("a request")
}

struct Case<'a> {
    name: &'static str,
    router: &'a mut Router,
    events: bool,
    times: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(name: &'static str, router: &'a mut Router, events: bool) -> Self {
        Case {
            name,
            router,
            events,
            times: Vec::new(),
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let evict = match args.iter().position(|a| a == "--evict") {
        Some(i) => {
            let Some(bytes) = args
                .get(i + 1)
                .and_then(|a| a.parse::<usize>().ok())
                .filter(|&b| b >= 64)
            else {
                eprintln!("--evict BYTES: a number of bytes, at least 64");
                std::process::exit(2);
            };
            args.drain(i..i + 2);
            // Written once, so its pages are really there (not the shared zero page).
            Some(Evict((0..bytes).map(|i| i as u8).collect()))
        }
        None => None,
    };
    let walk = || {
        if let Some(e) = &evict {
            e.walk();
        }
    };
    let looped = args.iter().position(|a| a == "--loop");
    let rounds: usize = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        args.iter().find_map(|a| a.parse().ok()).unwrap_or(300)
    };
    // valgrind cannot run the vDSO clock: a stopped clock when looping for it.
    let mut apps = app::apps(looped.is_some());
    let keyring: Arc<Keyring> = apps.keyring.clone();
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let events_key = keyring
        .create_integration_key(&admin, "PSERVICE", "bench")
        .expect("an integration key")
        .secret()
        .expose()
        .to_owned();
    let event = event_body(&events_key, 1024);
    let mut events_bare = Router::new()
        .route("/v2/enqueue", post(enqueue))
        .with_state(());
    let mut events_noop = Router::new()
        .route("/v2/enqueue", post(enqueue).route_layer(app::Pass))
        .with_state(());
    let mut events_apikeys = Router::new()
        .route(
            "/v2/enqueue",
            post(enqueue).route_layer(EventsAuthLayer::new(keyring.clone())),
        )
        .with_state(());
    let key = apps.key.clone();
    let mut cases = vec![
        Case::new("rest-bare", &mut apps.plain, false),
        Case::new("rest-noop", &mut apps.pass_layer, false),
        Case::new("rest-apikeys", &mut apps.route_layer, false),
        Case::new("rest-apikeys-service", &mut apps.service, false),
        Case::new("events-bare", &mut events_bare, true),
        Case::new("events-noop", &mut events_noop, true),
        Case::new("events-apikeys", &mut events_apikeys, true),
    ];
    let request = |events: bool| {
        if events {
            events_request(&event)
        } else {
            app::request(&key)
        }
    };
    // Every case answers, and the protected ones refuse what they must.
    for case in &mut cases {
        let want = if case.events { 202 } else { 200 };
        assert_eq!(
            app::serve(case.router, request(case.events)),
            want,
            "{}",
            case.name
        );
    }
    let unknown = event_body(&"R".repeat(32), 1024);
    assert_eq!(app::serve(cases[6].router, events_request(&unknown)), 401);
    let no_key = http::Request::get("/incidents")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(app::serve(cases[2].router, no_key), 401);

    let rest_request = apikeys::Request::rest("GET")
        .with_scope("incidents.read")
        .expect("scope");
    let events_check = apikeys::Request::events();
    let headers = app::request(&key);

    if let Some(i) = looped {
        let name = args.get(i + 1).expect("--loop CASE N");
        let n: usize = args
            .get(i + 2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(100_000);
        if let Some(case) = cases.iter_mut().find(|c| c.name == name) {
            for _ in 0..n {
                walk();
                black_box(app::serve(case.router, request(case.events)));
            }
        } else {
            for _ in 0..n {
                walk();
                match name.as_str() {
                    "authenticate-rest" => {
                        black_box(keyring.authenticate(black_box(&key), &rest_request))
                            .expect("valid");
                    }
                    "authenticate-events" => {
                        black_box(keyring.authenticate(black_box(&events_key), &events_check))
                            .expect("valid");
                    }
                    "nothing" => {}
                    other => panic!("no case {other}"),
                }
            }
        }
        return;
    }

    for case in &mut cases {
        for _ in 0..BATCH {
            black_box(app::serve(case.router, request(case.events)));
        }
    }
    let mut parts: [(&str, Vec<f64>); 4] = [
        ("authenticate-rest", Vec::new()),
        ("authenticate-events", Vec::new()),
        ("routing_key-1KiB", Vec::new()),
        ("rest_token", Vec::new()),
    ];
    let n = cases.len() + parts.len();
    for round in 0..rounds {
        for j in 0..n {
            let k = (j + round) % n;
            if k < cases.len() {
                let case = &mut cases[k];
                let reqs: Vec<_> = (0..BATCH).map(|_| request(case.events)).collect();
                if evict.is_some() {
                    let mut spent = 0u128;
                    for req in reqs {
                        walk();
                        let t = Instant::now();
                        black_box(app::serve(case.router, req));
                        spent += t.elapsed().as_nanos();
                    }
                    case.times.push(spent as f64 / BATCH as f64);
                    continue;
                }
                let t = Instant::now();
                for req in reqs {
                    black_box(app::serve(case.router, req));
                }
                case.times
                    .push(t.elapsed().as_nanos() as f64 / BATCH as f64);
                continue;
            }
            let (name, times) = &mut parts[k - cases.len()];
            let mut spent = 0u128;
            let t = Instant::now();
            for _ in 0..BATCH {
                let t = if evict.is_some() {
                    walk();
                    Some(Instant::now())
                } else {
                    None
                };
                match *name {
                    "authenticate-rest" => {
                        black_box(keyring.authenticate(black_box(&key), &rest_request))
                            .expect("valid");
                    }
                    "authenticate-events" => {
                        black_box(keyring.authenticate(black_box(&events_key), &events_check))
                            .expect("valid");
                    }
                    "routing_key-1KiB" => {
                        black_box(routing_key(black_box(&event))).expect("a key");
                    }
                    _ => {
                        black_box(rest_token(black_box(headers.headers()))).expect("a key");
                    }
                }
                if let Some(t) = t {
                    spent += t.elapsed().as_nanos();
                }
            }
            if evict.is_none() {
                spent = t.elapsed().as_nanos();
            }
            times.push(spent as f64 / BATCH as f64);
        }
    }
    let stat = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        (times[0], times[times.len() / 2])
    };
    let mut best = std::collections::HashMap::new();
    let evicted = match &evict {
        Some(e) => format!(
            "; {} bytes walked before each request, each request timed alone",
            e.0.len()
        ),
        None => String::new(),
    };
    println!(
        "{rounds} rounds of batches of {BATCH} requests per case, rotating order{evicted} (ns per request: fastest batch, median batch; + over the no-op layer)"
    );
    for (prefix, title) in [
        ("rest-", "REST, GET /incidents (incidents.read)"),
        ("events-", "Events, 1 KiB JSON"),
    ] {
        println!("{title}");
        let floor = cases
            .iter_mut()
            .find(|c| c.name == format!("{prefix}noop"))
            .map(|c| stat(&mut c.times))
            .expect("a no-op case");
        for case in cases.iter_mut().filter(|c| c.name.starts_with(prefix)) {
            let (min, median) = stat(&mut case.times);
            best.insert(case.name, (min, median));
            let over = if case.name.ends_with("bare") || case.name.ends_with("noop") {
                String::new()
            } else {
                format!("  +{:6.1} +{:6.1}", min - floor.0, median - floor.1)
            };
            println!("  {:24} {min:8.1} {median:8.1}{over}", case.name);
        }
    }
    println!("the parts alone");
    for (name, times) in &mut parts {
        let (min, median) = stat(times);
        best.insert(name, (min, median));
        println!("  {name:24} {min:8.1} {median:8.1}");
    }
    println!(
        "summary (ns): added over the no-op layer (fastest, median), over no layer (fastest), authenticate alone, target (authenticate + 300), gap over the no-op"
    );
    for (label, case, floor, bare, core) in [
        (
            "RestAuthLayer, route_layer",
            "rest-apikeys",
            "rest-noop",
            "rest-bare",
            "authenticate-rest",
        ),
        (
            "RestAuthLayer, get_service",
            "rest-apikeys-service",
            "rest-noop",
            "rest-bare",
            "authenticate-rest",
        ),
        (
            "EventsAuthLayer, route_layer",
            "events-apikeys",
            "events-noop",
            "events-bare",
            "authenticate-events",
        ),
    ] {
        let (c, cm) = best[case];
        let (f, fm) = best[floor];
        let b = best[bare].0;
        let a = best[core].0;
        println!(
            "  {label:30} {:7.1} ({:7.1}) {:7.1} {a:7.1} {:7.1} {:7.1}",
            c - f,
            cm - fm,
            c - b,
            a + 300.0,
            (c - f - a - 300.0).max(0.0)
        );
    }
}
