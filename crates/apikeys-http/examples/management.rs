//! The management API and the API Access Keys page in a small axum server,
//! over an in-memory keyring seeded with one account and a user of each
//! role (what `scripts/test-browser.sh` drives in Chromium).
//!
//! ```text
//! cargo run -p apikeys-http --features router --example management -- [PORT]
//! ```
//!
//! It prints `listening on http://127.0.0.1:PORT` (port 0, the default,
//! picks a free one). Open `/`, pick a user: the page is at `/keys`.
//!
//! **Who is logged in is the host's concern**, not the library's. This
//! example's "login" is a cookie, `demo_user=<user id>`, set by
//! `/login?user=PADMIN` with no password: fine for a demo on the loopback
//! interface, never for a real application. The closure given to
//! `Management::router` reads it and answers the `Actor` (`None`: 401).

use std::sync::Arc;

use apikeys::{AccessLevel, Actor, Keyring, MemoryStore, Role};
use apikeys_http::Management;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

const ACCOUNT: &str = "acme";

/// The demo's users: id, name, role.
const USERS: [(&str, &str, Role); 7] = [
    ("POWNER", "Olivia Owner", Role::Owner),
    ("PADMIN", "Ada Admin", Role::Admin),
    ("PMANAGER", "Manu Manager", Role::Manager),
    ("PRESP", "Rene Responder", Role::Responder),
    ("POBS", "Otto Observer", Role::Observer),
    ("PRESTR", "Rita Restricted", Role::RestrictedAccess),
    (
        "PLIMITED",
        "Lee Limited Stakeholder",
        Role::LimitedStakeholder,
    ),
];

/// The host's login: the `demo_user` cookie names a known user.
fn logged_in(parts: &axum::http::request::Parts) -> Option<Actor> {
    let cookies = parts.headers.get_all(header::COOKIE);
    let user = cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("demo_user="))?;
    let (id, _, role) = USERS.iter().find(|(id, _, _)| *id == user)?;
    Some(Actor::new(ACCOUNT, *id, *role))
}

async fn choose() -> Html<String> {
    let mut items = String::new();
    for (id, name, role) in USERS {
        items.push_str(&format!(
            "<li><a href=\"/login?user={id}\">{name}</a> ({})</li>",
            role.as_str()
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in</title></head>\
         <body><h1>Sign in as</h1><ul>{items}</ul></body></html>"
    ))
}

async fn login(uri: axum::http::Uri) -> Response {
    let wanted = uri.query().and_then(|q| q.strip_prefix("user="));
    let Some((user, _, _)) = USERS.iter().find(|(id, _, _)| Some(*id) == wanted) else {
        return (StatusCode::BAD_REQUEST, "unknown user").into_response();
    };
    let cookie = format!("demo_user={user}; Path=/; HttpOnly; SameSite=Strict");
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/keys"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    res
}

fn seeded() -> Result<Keyring, apikeys::Error> {
    let keyring = Keyring::new(MemoryStore::new());
    for (id, _, role) in USERS {
        keyring.set_user_role(ACCOUNT, id, role)?;
    }
    let owner = Actor::new(ACCOUNT, "POWNER", Role::Owner);
    // Made and dropped: nobody sees these keys again, as with any key.
    keyring.create_general_key(&owner, "Terraform", AccessLevel::FullAccess)?;
    keyring.create_general_key(&owner, "Status dashboard", AccessLevel::ReadOnly)?;
    let responder = Actor::new(ACCOUNT, "PRESP", Role::Responder);
    keyring.create_user_token(&responder, "On-call phone")?;
    Ok(keyring)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|_| "the port must be a number")?,
        None => 0,
    };
    let keyring = Arc::new(seeded()?);
    let app = Router::new()
        .route("/", get(choose))
        .route("/login", get(login))
        .nest("/keys", Management::new(keyring).router(logged_in));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
