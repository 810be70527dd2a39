//! Every refusal an adapter can send, as this crate renders it, in
//! `tests/refusals.json`: the status, the kind, every header in order
//! (`name: value`) and the body. The Python and Node binding tests render the same situations
//! through their adapters and compare with this file byte for byte
//! (`bindings/python/tests/test_http_refusals.py`,
//! `bindings/node/__test__/refusals.test.js`), so a rendering of their own
//! cannot creep back in.
//!
//! The file is checked here: when a rendering changes on purpose, write it
//! again with `APIKEYS_BLESS=1 cargo test -p apikeys-http --test refusals`.

use std::collections::BTreeMap;
use std::time::Duration;

use apikeys::{AccessLevel, AccountSettings, Actor, Error, Keyring, MemoryStore, Request, Role};
use apikeys_http::{
    Rejection, declared_length, routing_key, token_from_authorizations,
    token_from_joined_authorization,
};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/refusals.json");

fn error_of<T: std::fmt::Debug>(r: apikeys::Result<T>) -> Rejection {
    Rejection::from_error(&r.expect_err("the call is refused"))
}

/// Each case by the name the binding tests know it by. The keyring's
/// refusals come from a real keyring, in the situations the binding tests
/// set up the same way (so the messages are the core's own).
fn cases() -> BTreeMap<&'static str, Rejection> {
    let kr = Keyring::new(MemoryStore::new());
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let observer = Actor::new("acme", "POBSERVER1", Role::Observer);
    let read_only = kr
        .create_general_key(&admin, "read only", AccessLevel::ReadOnly)
        .unwrap();
    let integration = kr
        .create_integration_key(&admin, "PSERVICE1", "Datadog")
        .unwrap();
    let legacy = Actor::new("legacy", "PADMIN2", Role::Admin);
    let legacy_key = kr
        .create_general_key(&legacy, "old plan", AccessLevel::FullAccess)
        .unwrap();
    kr.set_account(
        "legacy",
        AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
    )
    .unwrap();
    let ro = read_only.secret().expose();
    let post = Request::rest("POST").with_scope("incidents.write").unwrap();

    let mut c = BTreeMap::new();
    c.insert(
        "unauthorized",
        error_of(kr.authenticate("not-a-key", &Request::rest("GET"))),
    );
    c.insert(
        "wrong_api_rest_key_on_events",
        error_of(kr.authenticate(ro, &Request::events())),
    );
    c.insert(
        "wrong_api_events_key_on_rest",
        error_of(kr.authenticate(integration.secret().expose(), &Request::rest("GET"))),
    );
    c.insert("forbidden", error_of(kr.authenticate(ro, &post)));
    c.insert(
        "plan_restricted",
        error_of(kr.authenticate(legacy_key.secret().expose(), &Request::rest("GET"))),
    );
    c.insert(
        "invalid_input",
        error_of(Request::rest("GET").with_scope("incidents")),
    );
    c.insert(
        "not_permitted",
        error_of(kr.create_general_key(&observer, "nope", AccessLevel::FullAccess)),
    );
    c.insert("not_found", error_of(kr.get(&admin, "P0000000000000")));
    c.insert(
        "rate_limited",
        Rejection::from_error(&Error::RateLimited {
            retry_after: Duration::from_millis(1500),
            limit: 960,
        }),
    );
    c.insert(
        "rate_limited_whole_minute",
        Rejection::from_error(&Error::RateLimited {
            retry_after: Duration::from_secs(60),
            limit: 120,
        }),
    );
    c.insert(
        "store",
        Rejection::from_error(&Error::Store(apikeys::StoreError::Unavailable(
            "connection to 10.0.0.1 refused".into(),
        ))),
    );
    c.insert("internal", Rejection::from_error(&Error::Random));

    let refusal = |r: Result<&str, Rejection>| r.expect_err("refused");
    c.insert("missing_key", refusal(token_from_authorizations([])));
    c.insert(
        "malformed_authorization",
        refusal(token_from_authorizations([&b"Basic abc"[..]])),
    );
    c.insert(
        "duplicate_authorization",
        refusal(token_from_authorizations([&b"Bearer a"[..], b"Bearer b"])),
    );
    c.insert(
        "duplicate_authorization_joined",
        refusal(token_from_joined_authorization(Some(b"Bearer a,Bearer b"))),
    );
    c.insert(
        "body_too_large",
        declared_length(b"65537", 65536).unwrap_err(),
    );
    c.insert(
        "invalid_content_length",
        declared_length(b"-1", 65536).unwrap_err(),
    );
    let body = |b: &[u8]| routing_key(b).unwrap_err();
    c.insert("not_an_object", body(b"[1]"));
    c.insert("not_json", body(b"{\"routing_key\":"));
    c.insert("routing_key_not_a_string", body(b"{\"routing_key\":12}"));
    c.insert(
        "missing_routing_key",
        body(b"{\"event_action\":\"trigger\"}"),
    );
    let deep = format!("{{\"p\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    c.insert("too_deep", body(deep.as_bytes()));
    c.insert("unreadable_body", Rejection::unreadable_body());
    c.insert(
        "misconfigured",
        Rejection::misconfigured("the route declares two scopes"),
    );
    c
}

fn rendered() -> String {
    let table: BTreeMap<&str, serde_json::Value> = cases()
        .into_iter()
        .map(|(name, r)| {
            let plain = r.refusal();
            let headers: Vec<String> = plain
                .headers
                .iter()
                .map(|(n, v)| format!("{}: {}", n, v.to_str().expect("ASCII header values")))
                .collect();
            let body = std::str::from_utf8(&plain.body).expect("a UTF-8 body");
            let value = serde_json::json!({
                "status": plain.status.as_u16(),
                "kind": r.kind(),
                "headers": headers,
                "body": body,
            });
            (name, value)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&table).expect("JSON");
    text.push('\n');
    text
}

#[test]
fn every_refusal_renders_as_the_table_says() {
    let now = rendered();
    if std::env::var_os("APIKEYS_BLESS").is_some() {
        std::fs::write(FILE, &now).expect("write tests/refusals.json");
        return;
    }
    let kept = std::fs::read_to_string(FILE).unwrap_or_default();
    assert!(
        kept == now,
        "tests/refusals.json is not what this crate renders; if the change is meant, \
         run APIKEYS_BLESS=1 cargo test -p apikeys-http --test refusals and commit the file \
         (the Python and Node tests compare their adapters with it)\n{now}"
    );
}

#[test]
fn no_refusal_shows_an_internal_detail_and_each_kind_is_covered() {
    let table = cases();
    for (name, r) in &table {
        let body = String::from_utf8(r.body().to_vec()).unwrap();
        assert!(!body.contains("10.0.0.1"), "{name}: {body}");
        if r.status().is_server_error() {
            assert!(body.contains("an internal error occurred"), "{name}");
        }
    }
    let kinds: std::collections::BTreeSet<&str> = table.values().map(Rejection::kind).collect();
    for kind in [
        "unauthorized",
        "wrong_api",
        "forbidden",
        "plan_restricted",
        "not_permitted",
        "not_found",
        "rate_limited",
        "invalid_input",
        "store",
        "random",
        "missing_key",
        "malformed_authorization",
        "duplicate_authorization",
        "body_too_large",
        "invalid_body",
        "missing_routing_key",
        "misconfigured",
    ] {
        assert!(kinds.contains(kind), "no case of {kind}");
    }
}
