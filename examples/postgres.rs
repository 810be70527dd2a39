//! A keyring shared through PostgreSQL: two stores (as two processes or
//! machines would have), a key made through one and revoked through the
//! other, seen by both.
//!
//! ```text
//! source scripts/services.sh     # or point APIKEYS_POSTGRES_URL at your server
//! cargo run -p apikeys-examples --example postgres
//! ```

use std::time::{Duration, Instant};

use apikeys::{AccessLevel, Actor, Keyring, Request, Role};
use apikeys_postgres::PostgresStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("APIKEYS_POSTGRES_URL")
        .or_else(|_| std::env::var("APIKEYS_TEST_POSTGRES_URL"))
        .map_err(|_| "set APIKEYS_POSTGRES_URL (or source scripts/services.sh)")?;
    let schema = format!("example_{}", std::process::id());
    let web = Keyring::new(PostgresStore::options().schema(&schema).connect(&url)?);
    let admin_console = Keyring::new(PostgresStore::options().schema(&schema).connect(&url)?);
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);

    let issued = admin_console.create_general_key(&admin, "deploy bot", AccessLevel::FullAccess)?;
    let token = issued.secret().expose();
    let p = web.authenticate(token, &Request::rest("POST"))?;
    println!(
        "the web tier accepts {} (made by the admin console)",
        p.key_id()
    );

    admin_console.disable(&admin, &issued.record().id.to_string())?;
    let start = Instant::now();
    while web.authenticate(token, &Request::rest("GET")).is_ok() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("the disable never reached the web tier".into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!(
        "disabled in the admin console, refused by the web tier {:.1} ms later (LISTEN/NOTIFY)",
        start.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
