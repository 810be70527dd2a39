//! The same axum service twice, with and without `RestAuthLayer`, for a load
//! tool to compare (`crates/apikeys-http/bench/wrk.sh` runs `wrk` against both).
//!
//! `cargo run --release -p apikeys-examples --example http_overhead -- PLAIN_ADDR AUTH_ADDR [SECONDS]`
//! prints one line, the full-access key to send to AUTH_ADDR, then serves
//! `GET /incidents` on both addresses (one worker thread each way, so the load
//! tool keeps a core) until SECONDS have passed (default 600).

use std::sync::Arc;
use std::time::Duration;

use apikeys::{AccessLevel, Actor, Keyring, MemoryStore, Role};
use apikeys_http::RestAuthLayer;
use axum::Router;
use axum::routing::get;

async fn incidents() -> ([(&'static str, &'static str); 1], &'static str) {
    (
        [("content-type", "application/json")],
        r#"{"incidents":[],"limit":25,"offset":0,"more":false}"#,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let plain_addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let auth_addr = args.next().unwrap_or_else(|| "127.0.0.1:8082".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);

    let keyring = Arc::new(Keyring::new(MemoryStore::new()));
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let key = keyring.create_general_key(&admin, "bench", AccessLevel::FullAccess)?;
    println!("{}", key.secret().expose());

    let plain = Router::new().route("/incidents", get(incidents));
    let auth = Router::new().route(
        "/incidents",
        get(incidents).route_layer(RestAuthLayer::new(keyring).with_scope("incidents.read")?),
    );

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
