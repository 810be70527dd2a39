//! Keys that survive a restart: a keyring on a SQLite file.
//!
//! `cargo run -p apikeys-examples --example persistent [path/to/keys.db]`
//!
//! Creates a key, drops the keyring (its store writes what it queued and
//! closes the file), opens the file again as a new process would, and checks
//! that the key still verifies, and that a disable made before the restart
//! still holds after it.

use apikeys::{AccessLevel, Actor, Keyring, Request, Role};
use apikeys_sqlite::SqliteStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("apikeys-persistent-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("keys.db"));
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);

    // First run: create two keys, disable one.
    let (token, revoked) = {
        let keyring = Keyring::new(SqliteStore::open(&path)?);
        let issued = keyring.create_general_key(&admin, "CI bot", AccessLevel::ReadOnly)?;
        let other = keyring.create_general_key(&admin, "old laptop", AccessLevel::FullAccess)?;
        keyring.disable(&admin, &other.record().id.to_string())?;
        println!("created {} in {}", issued.record().id, path.display());
        (
            issued.secret().expose().to_owned(),
            other.secret().expose().to_owned(),
        )
    }; // dropped: the store flushes and closes

    // "Restart": a new keyring on the same file.
    let keyring = Keyring::new(SqliteStore::open(&path)?);
    let principal = keyring.authenticate(&token, &Request::rest("GET"))?;
    println!("after reopening, {} still verifies", principal.key_id());
    let refused = keyring.authenticate(&revoked, &Request::rest("GET"));
    assert_eq!(refused.map_err(|e| e.http_status()).err(), Some(401));
    println!("and the key disabled before the restart is still refused (401)");
    drop(keyring);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
