//! The same axum service twice, with and without `RestAuthLayer`, for a load
//! tool to compare (`crates/apikeys-http/bench/wrk.sh` runs `wrk` against both).
//!
//! `cargo run --release -p apikeys-examples --example http_overhead -- PLAIN_ADDR AUTH_ADDR [SECONDS] [FORM] [HANDLER]`
//! prints one line, the full-access key to send to AUTH_ADDR, then serves
//! `GET /incidents` on both addresses (one worker thread each way, so the load
//! tool keeps a core) until SECONDS have passed (default 600).
//!
//! FORM is how the layer is put on the protected route: `route_layer`
//! (default: `get(h).route_layer(layer)`, axum's usual way) or `service`
//! (`get_service(layer.layer(h.into_service()))`, which spares axum a second
//! boxed route per request). HANDLER is `trivial` (default: a constant body)
//! or `json` (builds and serialises a list of 25 incidents, a small amount of
//! real work).

use std::sync::Arc;
use std::time::Duration;

use apikeys::{AccessLevel, Actor, Keyring, MemoryStore, Role};
use apikeys_http::RestAuthLayer;
use axum::Router;
use axum::handler::{Handler, HandlerWithoutStateExt};
use axum::routing::{get, get_service};
use tower_layer::Layer;

async fn trivial() -> ([(&'static str, &'static str); 1], &'static str) {
    (
        [("content-type", "application/json")],
        r#"{"incidents":[],"limit":25,"offset":0,"more":false}"#,
    )
}

#[derive(serde::Serialize)]
struct Reference {
    id: String,
    r#type: &'static str,
    summary: String,
}

#[derive(serde::Serialize)]
struct Incident {
    id: String,
    r#type: &'static str,
    incident_number: u32,
    title: String,
    status: &'static str,
    urgency: &'static str,
    created_at: String,
    html_url: String,
    service: Reference,
}

#[derive(serde::Serialize)]
struct Page {
    incidents: Vec<Incident>,
    limit: u32,
    offset: u32,
    more: bool,
}

async fn json() -> axum::Json<Page> {
    let incidents = (0..25u32)
        .map(|n| Incident {
            id: format!("Q{n:013}"),
            r#type: "incident",
            incident_number: 1000 + n,
            title: format!("Disk usage above 90% on db-{n}"),
            status: if n % 3 == 0 {
                "acknowledged"
            } else {
                "triggered"
            },
            urgency: "high",
            created_at: format!("2024-05-{:02}T10:{:02}:00Z", 1 + n % 28, n % 60),
            html_url: format!("https://acme.pagerduty.com/incidents/Q{n:013}"),
            service: Reference {
                id: "PSERVIC".to_owned(),
                r#type: "service_reference",
                summary: "Database".to_owned(),
            },
        })
        .collect();
    axum::Json(Page {
        incidents,
        limit: 25,
        offset: 0,
        more: false,
    })
}

fn apps<H, T>(handler: H, layer: RestAuthLayer, form: &str) -> (Router, Router)
where
    H: Handler<T, ()> + HandlerWithoutStateExt<T> + Clone,
    T: 'static,
{
    let plain = Router::new().route("/incidents", get(handler.clone()));
    let auth = match form {
        "service" => Router::new().route(
            "/incidents",
            get_service(layer.layer(handler.into_service())),
        ),
        _ => Router::new().route("/incidents", get(handler).route_layer(layer)),
    };
    (plain, auth)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let plain_addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let auth_addr = args.next().unwrap_or_else(|| "127.0.0.1:8082".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let form = args.next().unwrap_or_else(|| "route_layer".into());
    let handler = args.next().unwrap_or_else(|| "trivial".into());
    if !matches!(form.as_str(), "route_layer" | "service") {
        return Err(format!("FORM is route_layer or service, not {form:?}").into());
    }

    let keyring = Arc::new(Keyring::new(MemoryStore::new()));
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let key = keyring.create_general_key(&admin, "bench", AccessLevel::FullAccess)?;
    println!("{}", key.secret().expose());

    let layer = RestAuthLayer::new(keyring).with_scope("incidents.read")?;
    let (plain, auth) = match handler.as_str() {
        "trivial" => apps(trivial, layer, &form),
        "json" => apps(json, layer, &form),
        _ => return Err(format!("HANDLER is trivial or json, not {handler:?}").into()),
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let p = tokio::net::TcpListener::bind(&plain_addr).await?;
        let a = tokio::net::TcpListener::bind(&auth_addr).await?;
        let both = async {
            tokio::try_join!(
                axum::serve(p, plain).into_future(),
                axum::serve(a, auth).into_future()
            )
        };
        let _ = tokio::time::timeout(Duration::from_secs(seconds), both).await;
        Ok::<_, std::io::Error>(())
    })?;
    Ok(())
}
