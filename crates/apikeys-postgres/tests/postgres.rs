//! `PostgresStore` against a real PostgreSQL server: the conformance suite,
//! migrations, the cache's invalidation (same store, another store, another
//! process, through LISTEN/NOTIFY), lost connections, last uses, and SIGKILL.
//!
//! Needs `APIKEYS_TEST_POSTGRES_URL` (see the crate docs): these tests fail,
//! never skip, without it. `bash scripts/test.sh` starts a server and sets it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::testing::{sample_record, unique_account};
use apikeys::{
    AccessLevel, Actor, Error, KeyKind, KeyStore, Keyring, Request, Role, StoreError, Timestamp,
};
use apikeys_postgres::{PostgresOptions, PostgresStore};

fn url() -> String {
    std::env::var("APIKEYS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "APIKEYS_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a real server. \
             Run `bash scripts/test.sh`, or `source scripts/services.sh` in bash first."
        )
    })
}

/// A schema no other test uses.
fn fresh_schema() -> String {
    let n = apikeys::KeyId::generate().unwrap().as_u64();
    format!("t_{n:016x}")
}

fn store_in(schema: &str, options: PostgresOptions) -> PostgresStore {
    options.schema(schema).connect(&url()).unwrap()
}

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn raw() -> postgres::Client {
    postgres::Client::connect(&url(), postgres::NoTls).unwrap()
}

#[test]
fn postgres_store_passes_the_conformance_suite() {
    apikeys::testing::conformance(|| {
        store_in(&fresh_schema(), PostgresStore::options().pool_size(4))
    });
}

#[test]
fn postgres_store_without_cache_passes_the_conformance_suite() {
    apikeys::testing::conformance(|| {
        store_in(
            &fresh_schema(),
            PostgresStore::options().pool_size(4).cache(false),
        )
    });
}

#[test]
fn keys_survive_reconnecting() {
    let schema = fresh_schema();
    let token = {
        let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
        let issued = kr
            .create_general_key(&admin(), "CI bot", AccessLevel::ReadOnly)
            .unwrap();
        issued.secret().expose().to_owned()
    };
    let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
    kr.authenticate(&token, &Request::rest("GET")).unwrap();
}

#[test]
fn the_schema_version_is_recorded_and_a_newer_database_is_refused() {
    let schema = fresh_schema();
    drop(store_in(&schema, PostgresStore::options()));
    // Connecting again migrates nothing.
    drop(store_in(&schema, PostgresStore::options()));
    let mut c = raw();
    let v: i32 = c
        .query_one(
            &format!("SELECT version FROM {schema}.apikeys_schema_version"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, apikeys_postgres::SCHEMA_VERSION);
    c.execute(
        &format!("UPDATE {schema}.apikeys_schema_version SET version = version + 1"),
        &[],
    )
    .unwrap();
    match PostgresStore::options().schema(&schema).connect(&url()) {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_unreachable_server_is_a_clear_store_error() {
    let r = PostgresStore::options()
        .connect_timeout(Duration::from_secs(2))
        .connect("postgres://nobody@127.0.0.1:1/none");
    match r {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("cannot connect"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn wait_until_refused(kr: &Keyring, token: &str) {
    let start = Instant::now();
    loop {
        match kr.authenticate(token, &Request::rest("GET")) {
            Err(Error::Unauthorized(_)) => return,
            Ok(_) | Err(Error::Store(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a change made elsewhere was never seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_until_accepted(kr: &Keyring, token: &str) {
    let start = Instant::now();
    while kr.authenticate(token, &Request::rest("GET")).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a change made elsewhere was never seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn changes_through_another_store_reach_a_warm_cache() {
    let schema = fresh_schema();
    let a = Keyring::new(store_in(&schema, PostgresStore::options()));
    let b = Keyring::new(store_in(&schema, PostgresStore::options()));
    let issued = a
        .create_general_key(&admin(), "shared", AccessLevel::FullAccess)
        .unwrap();
    let token = issued.secret().expose();
    let id = issued.record().id.to_string();
    for _ in 0..3 {
        b.authenticate(token, &Request::rest("GET")).unwrap();
    }
    a.disable(&admin(), &id).unwrap();
    wait_until_refused(&b, token);
    a.enable(&admin(), &id).unwrap();
    wait_until_accepted(&b, token);
    a.set_account(
        "acme",
        apikeys::AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
    )
    .unwrap();
    let start = Instant::now();
    while !matches!(
        b.authenticate(token, &Request::rest("GET")),
        Err(Error::PlanRestricted { .. })
    ) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "plan change never seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    a.set_account("acme", apikeys::AccountSettings::default())
        .unwrap();
    wait_until_accepted(&b, token);
    // SQL by hand fires the same triggers.
    raw()
        .execute(&format!("DELETE FROM {schema}.apikeys_keys"), &[])
        .unwrap();
    wait_until_refused(&b, token);
}

#[test]
fn writes_through_the_same_store_reach_a_warm_cache_at_once() {
    let schema = fresh_schema();
    let store = std::sync::Arc::new(store_in(&schema, PostgresStore::options()));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let issued = kr
        .create_general_key(&admin(), "warm", AccessLevel::FullAccess)
        .unwrap();
    let token = issued.secret().expose();
    let id = issued.record().id.to_string();
    kr.authenticate(token, &Request::rest("GET")).unwrap();
    assert!(store.cached_keys() >= 1, "a used key is cached");
    kr.disable(&admin(), &id).unwrap();
    assert!(matches!(
        kr.authenticate(token, &Request::rest("GET")),
        Err(Error::Unauthorized(_))
    ));
    kr.enable(&admin(), &id).unwrap();
    kr.authenticate(token, &Request::rest("GET")).unwrap();
    kr.set_user_role("acme", "PUSER1", Role::Manager).unwrap();
    let user = Actor::new("acme", "PUSER1", Role::Manager);
    let ut = kr.create_user_token(&user, "laptop").unwrap();
    let ut = ut.secret().expose();
    let write = Request::rest("POST").with_scope("incidents.write").unwrap();
    kr.authenticate(ut, &write).unwrap();
    kr.set_user_role("acme", "PUSER1", Role::Observer).unwrap();
    assert!(matches!(
        kr.authenticate(ut, &write),
        Err(Error::Forbidden { .. })
    ));
    kr.delete(&admin(), &id).unwrap();
    assert!(matches!(
        kr.authenticate(token, &Request::rest("GET")),
        Err(Error::Unauthorized(_))
    ));
}

/// Cut every connection the stores of `schema` hold (pool and listeners).
fn cut_connections(schema: &str) {
    let n = raw()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name = $1",
            &[&format!("apikeys/{schema}")],
        )
        .unwrap();
    assert!(n > 0, "no connection to cut");
}

#[test]
fn lost_connections_give_a_clear_error_then_reconnect() {
    let schema = fresh_schema();
    let a = Keyring::new(store_in(&schema, PostgresStore::options()));
    let b = Keyring::new(store_in(&schema, PostgresStore::options()));
    let issued = a
        .create_general_key(&admin(), "survivor", AccessLevel::FullAccess)
        .unwrap();
    let token = issued.secret().expose().to_owned();
    let id = issued.record().id.to_string();
    b.authenticate(&token, &Request::rest("GET")).unwrap();

    cut_connections(&schema);
    // A disable while b's listener is down: b must still come to refuse the key.
    let mut disabled = false;
    for _ in 0..3 {
        match a.disable(&admin(), &id) {
            Ok(_) => {
                disabled = true;
                break;
            }
            Err(e) => {
                assert_eq!(e.http_status(), 500);
                assert!(e.to_string().contains("PostgreSQL"), "{e}");
            }
        }
    }
    assert!(disabled, "the store never reconnected");
    wait_until_refused(&b, &token);

    // Reads retry on a fresh connection.
    cut_connections(&schema);
    let listed = a.list(&admin()).unwrap();
    assert!(listed.iter().any(|r| r.id.to_string() == id));
    // Writes work again.
    let mut again = None;
    for _ in 0..3 {
        if let Ok(k) = a.create_general_key(&admin(), "after the cut", AccessLevel::FullAccess) {
            again = Some(k);
            break;
        }
    }
    let again = again.expect("the store never reconnected");
    b.authenticate(again.secret().expose(), &Request::rest("GET"))
        .unwrap();
}

#[test]
fn last_uses_are_queued_then_written_by_flush_and_on_drop() {
    let schema = fresh_schema();
    let acct = unique_account("used");
    let r = sample_record(&acct, KeyKind::General);
    let t1 = Timestamp::from_unix_millis(1_700_000_100_000);
    let t2 = Timestamp::from_unix_millis(1_700_000_200_000);
    {
        let store = store_in(
            &schema,
            PostgresStore::options().flush_interval(Duration::from_secs(3600)),
        );
        store.insert(r.clone()).unwrap();
        store.record_use(r.id, t1).unwrap();
        let other = store_in(&schema, PostgresStore::options());
        assert_eq!(other.get(r.id).unwrap().unwrap().last_used_at, None);
        assert_eq!(store.flush().unwrap(), 1);
        assert_eq!(other.get(r.id).unwrap().unwrap().last_used_at, Some(t1));
        assert_eq!(store.flush().unwrap(), 0);
        store.record_use(r.id, t2).unwrap();
    }
    let store = store_in(&schema, PostgresStore::options());
    assert_eq!(store.get(r.id).unwrap().unwrap().last_used_at, Some(t2));
}

// ---- across processes ----

/// Helper run in a child process: authenticates the token until it is refused.
#[test]
#[ignore = "helper: run by another test in a child process"]
fn child_watch_token() {
    let (Ok(schema), Ok(token)) = (
        std::env::var("APIKEYS_CHILD_SCHEMA"),
        std::env::var("APIKEYS_CHILD_TOKEN"),
    ) else {
        return;
    };
    let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
    kr.authenticate(&token, &Request::rest("GET")).unwrap();
    println!("READY");
    let start = Instant::now();
    while kr.authenticate(&token, &Request::rest("GET")).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("REFUSED");
}

#[test]
fn a_disable_in_another_process_is_seen() {
    let schema = fresh_schema();
    let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
    let issued = kr
        .create_general_key(&admin(), "shared", AccessLevel::FullAccess)
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_watch_token", "--ignored", "--nocapture"])
        .env("APIKEYS_CHILD_SCHEMA", &schema)
        .env("APIKEYS_CHILD_TOKEN", issued.secret().expose())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().any(|l| l.unwrap() == "READY"));
    kr.disable(&admin(), &issued.record().id.to_string())
        .unwrap();
    assert!(
        lines.any(|l| l.unwrap() == "REFUSED"),
        "the other process never refused the disabled key"
    );
    assert!(child.wait().unwrap().success());
}

/// Helper run in a child process: creates keys in a loop, printing each once
/// its create has returned, until killed.
#[test]
#[ignore = "helper: run by another test in a child process"]
fn child_create_keys_forever() {
    let Ok(schema) = std::env::var("APIKEYS_CHILD_SCHEMA") else {
        return;
    };
    use std::io::Write;
    let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
    let mut out = std::io::stdout().lock();
    for i in 0..100_000 {
        let issued = kr
            .create_general_key(&admin(), &format!("crash {i}"), AccessLevel::FullAccess)
            .unwrap();
        kr.authenticate(issued.secret().expose(), &Request::rest("GET"))
            .unwrap();
        writeln!(
            out,
            "KEY {} {}",
            issued.record().id,
            issued.secret().expose()
        )
        .unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn keys_survive_sigkill_at_random_moments() {
    let schema = fresh_schema();
    drop(store_in(&schema, PostgresStore::options()));
    let mut printed: Vec<(String, String)> = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_create_keys_forever",
                "--ignored",
                "--nocapture",
            ])
            .env("APIKEYS_CHILD_SCHEMA", &schema)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let mut p = l.strip_prefix("KEY ")?.split(' ');
                    Some((p.next()?.to_owned(), p.next()?.to_owned()))
                })
                .collect::<Vec<_>>()
        });
        let r = apikeys::KeyId::generate().unwrap().as_u64();
        std::thread::sleep(Duration::from_millis(50 + (r ^ round) % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        printed.extend(reader.join().unwrap());
        eprintln!("round {round}: {} keys printed so far", printed.len());
        let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
        for (id, token) in &printed {
            let p = kr
                .authenticate(token, &Request::rest("GET"))
                .unwrap_or_else(|e| panic!("key {id} printed before the kill is lost: {e}"));
            assert_eq!(&p.key_id().to_string(), id);
        }
    }
    assert!(
        !printed.is_empty(),
        "the child printed no key before being killed"
    );
}
