//! The quickstart: the life of a few keys, on the in-memory store.
//!
//! Run it with `cargo run --example quickstart`.

use apikeys::{AccessLevel, Actor, Keyring, MemoryStore, Principal, Request, Role};

fn show(step: &str, outcome: Result<Principal, apikeys::Error>) {
    match outcome {
        Ok(p) => println!(
            "  {step:<58} -> allowed ({} key {}, role {})",
            p.kind(),
            p.key_id(),
            p.role().map_or("-", |r| r.as_str())
        ),
        Err(e) => println!(
            "  {step:<58} -> {} {} ({})",
            e.http_status(),
            e.kind_name(),
            e
        ),
    }
}

fn main() -> Result<(), apikeys::Error> {
    let keyring = Keyring::new(MemoryStore::new());
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let manager = Actor::new("acme", "PMANAGER1", Role::Manager);
    let responder = Actor::new("acme", "PRESP1", Role::Responder);

    println!("1. An admin makes a read-only general access key. It is shown once:");
    let issued = keyring.create_general_key(&admin, "CI bot", AccessLevel::ReadOnly)?;
    let token = issued.secret().expose();
    let id = issued.record().id.to_string();
    println!(
        "  key {token}  (id {id}, stored: digest + hint …{})",
        issued.record().hint
    );
    show(
        "GET /incidents",
        keyring.authenticate(token, &Request::rest("GET")),
    );
    show(
        "POST /incidents (incidents.write)",
        keyring.authenticate(token, &Request::rest("POST").with_scope("incidents.write")?),
    );

    println!("2. The admin disables the key, then enables it again:");
    keyring.disable(&admin, &id)?;
    show(
        "GET /incidents while disabled",
        keyring.authenticate(token, &Request::rest("GET")),
    );
    keyring.enable(&admin, &id)?;
    show(
        "GET /incidents after enabling",
        keyring.authenticate(token, &Request::rest("GET")),
    );

    println!("3. A manager makes an integration key for a service:");
    let events = keyring.create_integration_key(&manager, "PSERVICE1", "Datadog")?;
    show(
        "send an event (Events API)",
        keyring.authenticate(events.secret().expose(), &Request::events()),
    );
    show(
        "GET /incidents with it (REST API)",
        keyring.authenticate(events.secret().expose(), &Request::rest("GET")),
    );

    println!("4. A responder makes a personal user token:");
    let mine = keyring.create_user_token(&responder, "laptop script")?;
    let t = mine.secret().expose();
    show(
        "POST /incidents (incidents.write)",
        keyring.authenticate(t, &Request::rest("POST").with_scope("incidents.write")?),
    );
    show(
        "POST /services (services.write)",
        keyring.authenticate(t, &Request::rest("POST").with_scope("services.write")?),
    );

    println!("5. The responder is demoted to observer:");
    keyring.set_user_role("acme", "PRESP1", Role::Observer)?;
    show(
        "POST /incidents (incidents.write)",
        keyring.authenticate(t, &Request::rest("POST").with_scope("incidents.write")?),
    );
    show(
        "GET /incidents",
        keyring.authenticate(t, &Request::rest("GET")),
    );

    println!("6. The user leaves the company:");
    let disabled = keyring.remove_user("acme", "PRESP1")?;
    println!("  {disabled} token(s) disabled");
    show(
        "GET /incidents",
        keyring.authenticate(t, &Request::rest("GET")),
    );

    println!("7. The audit trail:");
    for e in keyring.audit_trail() {
        let outcome = match &e.outcome {
            apikeys::AuditOutcome::Allowed => "allowed".to_owned(),
            apikeys::AuditOutcome::Refused { error, .. } => format!("refused: {error}"),
        };
        println!(
            "  {:?} by {} ({}) on {} -> {outcome}",
            e.action,
            e.actor,
            e.actor_role.map_or("-", |r| r.as_str()),
            e.key_id.map_or_else(
                || e.subject_user.clone().unwrap_or_default(),
                |k| k.to_string()
            ),
        );
    }
    Ok(())
}
