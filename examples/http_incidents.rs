//! A small incidents API protected by `apikeys-http`, speaking PagerDuty's
//! conventions: `cargo run -p apikeys-examples --example http_incidents`.
//!
//! - `GET  /incidents`                 needs `incidents.read`
//! - `POST /incidents`                 needs `incidents.write`   (answers 201)
//! - `PUT  /incidents/{id}`            needs `incidents.write`   (`{"incident":{"status":"acknowledged"}}`)
//! - `POST /v2/enqueue`                Events API v2, key in `routing_key` (answers 202)
//! - `GET  /metrics`                   verification metrics, Prometheus text format (no key)
//!
//! `/metrics` shows the final answer of every authentication by key kind and
//! outcome and its latency: the keyring counts them in an [`AuthMetrics`]
//! that forwards to the `metrics` crate facade (feature `metrics`), and
//! `metrics-exporter-prometheus` renders them (docs/design.md §12).
//!
//! On start it prints a few keys and the `curl` commands to try them. It
//! listens on `127.0.0.1:8080` (or `$APIKEYS_HTTP_ADDR`), and stops after
//! `$APIKEYS_HTTP_SECONDS` seconds when that is set.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apikeys::{
    AccessLevel, Actor, AuthMetrics, Keyring, LATENCY_BUCKETS, MemoryStore, RateLimits, Role,
};
use apikeys_http::{Authenticated, EventsAuthLayer, RestAuthLayer};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};

#[derive(Default)]
struct Incidents {
    next: u64,
    list: Vec<Value>,
}

type Db = Arc<Mutex<Incidents>>;

fn open(db: &Db, account: &str, title: &str, service: &str, via: &str) -> Value {
    let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
    db.next += 1;
    let incident = json!({
        "id": format!("Q{:06}", db.next),
        "type": "incident",
        "title": title,
        "status": "triggered",
        "service": {"id": service, "type": "service_reference"},
        "account": account,
        "created_via": via,
    });
    db.list.push(incident.clone());
    incident
}

async fn list(State(db): State<Db>, who: Authenticated) -> Json<Value> {
    let db = db.lock().unwrap_or_else(|e| e.into_inner());
    let mine: Vec<&Value> = db
        .list
        .iter()
        .filter(|i| i["account"] == who.account())
        .collect();
    Json(json!({"incidents": mine, "limit": 25, "offset": 0, "more": false}))
}

async fn create(
    State(db): State<Db>,
    who: Authenticated,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let title = body["incident"]["title"].as_str().unwrap_or("untitled");
    let service = body["incident"]["service"]["id"]
        .as_str()
        .unwrap_or("PSERVICE1");
    let incident = open(&db, who.account(), title, service, "rest");
    (StatusCode::CREATED, Json(json!({ "incident": incident })))
}

async fn update(
    State(db): State<Db>,
    who: Authenticated,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let status = body["incident"]["status"].as_str().unwrap_or("");
    if !matches!(status, "acknowledged" | "resolved") {
        let e = json!({"error": {"message": "status must be 'acknowledged' or 'resolved'", "code": 2001}});
        return (StatusCode::BAD_REQUEST, Json(e));
    }
    let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
    match db
        .list
        .iter_mut()
        .find(|i| i["id"] == id.as_str() && i["account"] == who.account())
    {
        Some(incident) => {
            incident["status"] = json!(status);
            (StatusCode::OK, Json(json!({ "incident": incident })))
        }
        None => {
            let e = json!({"error": {"message": "Not Found", "code": 2100}});
            (StatusCode::NOT_FOUND, Json(e))
        }
    }
}

async fn enqueue(
    State(db): State<Db>,
    who: Authenticated,
    Json(event): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let summary = event["payload"]["summary"].as_str().unwrap_or("event");
    let service = who.target().unwrap_or("-");
    let incident = open(&db, who.account(), summary, service, "events");
    (
        StatusCode::ACCEPTED,
        Json(
            json!({"status": "success", "message": "Event processed", "dedup_key": incident["id"]}),
        ),
    )
}

/// The recorder the keyring's metrics go to: latencies as a histogram with
/// the core's buckets (the exporter's default is a summary).
fn prometheus() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("apikeys_authentication_duration_seconds".into()),
            &LATENCY_BUCKETS,
        )?
        .install_recorder()?)
}

/// The service: each route declares its scope with a layer of its own;
/// `/metrics` needs no key (keep it off the public network).
fn app(keyring: Arc<Keyring>, db: Db, metrics: PrometheusHandle) -> Result<Router, apikeys::Error> {
    let rest = RestAuthLayer::new(keyring.clone());
    let read = rest.clone().with_scope("incidents.read")?;
    let write = rest.with_scope("incidents.write")?;
    let render = get(move || std::future::ready(metrics.render()));
    Ok(Router::new()
        .route("/metrics", render)
        .route("/incidents", get(list).route_layer(read))
        .route("/incidents", post(create).route_layer(write.clone()))
        .route("/incidents/{id}", put(update).route_layer(write))
        .route(
            "/v2/enqueue",
            post(enqueue).route_layer(EventsAuthLayer::new(keyring)),
        )
        .with_state(db))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keyring = Arc::new(
        Keyring::builder()
            .store(MemoryStore::new())
            .rate_limits(RateLimits::pagerduty())
            .metrics(Arc::new(AuthMetrics::new().forwarding()))
            .build()?,
    );
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let manager = Actor::new("acme", "PMANAGER1", Role::Manager);
    let full = keyring.create_general_key(&admin, "ops bot", AccessLevel::FullAccess)?;
    let read_only = keyring.create_general_key(&admin, "dashboard", AccessLevel::ReadOnly)?;
    let scoped = keyring.create_scoped_token(&manager, "ack bot", &["incidents.write"])?;
    let events = keyring.create_integration_key(&manager, "PSERVICE1", "Datadog")?;

    let addr = std::env::var("APIKEYS_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let stop_after = std::env::var("APIKEYS_HTTP_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs);
    let metrics = prometheus()?;
    let app = app(keyring, Db::default(), metrics.clone())?;

    let base = format!("http://{addr}");
    println!("incidents API on {base}");
    println!("  full access key: {}", full.secret().expose());
    println!("  read-only key:   {}", read_only.secret().expose());
    println!(
        "  scoped token:    {} (incidents.write)",
        scoped.secret().expose()
    );
    println!("  integration key: {}", events.secret().expose());
    println!("try:");
    let auth = |k: &str| format!("-H 'Authorization: Token token={k}'");
    println!(
        "  curl -i {} {base}/incidents",
        auth(read_only.secret().expose())
    );
    println!(
        "  curl -i {} -H 'Content-Type: application/json' -d '{{\"incident\":{{\"title\":\"db down\"}}}}' {base}/incidents   # 403",
        auth(read_only.secret().expose())
    );
    println!(
        "  curl -i {} -H 'Content-Type: application/json' -d '{{\"incident\":{{\"title\":\"db down\"}}}}' {base}/incidents   # 201",
        auth(full.secret().expose())
    );
    println!(
        "  curl -i -X PUT {} -H 'Content-Type: application/json' -d '{{\"incident\":{{\"status\":\"acknowledged\"}}}}' {base}/incidents/Q000001",
        auth(scoped.secret().expose())
    );
    println!(
        "  curl -i -H 'Content-Type: application/json' -d '{{\"routing_key\":\"{}\",\"event_action\":\"trigger\",\"payload\":{{\"summary\":\"disk full\",\"source\":\"db1\",\"severity\":\"critical\"}}}}' {base}/v2/enqueue   # 202",
        events.secret().expose()
    );
    println!("  curl {base}/metrics");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // The exporter keeps histograms in buffers that need draining now and then.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
            }
        });
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let serve = axum::serve(listener, app);
        match stop_after {
            Some(d) => {
                let _ = tokio::time::timeout(d, serve).await;
                Ok(())
            }
            None => serve.await,
        }
    })?;
    Ok(())
}
