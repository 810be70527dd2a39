//! `PostgresStore` against a real PostgreSQL server: the conformance suite,
//! migrations, the cache's invalidation (same store, another store, another
//! process, through LISTEN/NOTIFY), lost connections, last uses, and SIGKILL.
//!
//! Needs `APIKEYS_TEST_POSTGRES_URL` (see the crate docs): these tests fail,
//! never skip, without it. `bash scripts/test.sh` starts a server and sets it.
//! The checks shared with other durable stores are in `apikeys::testing::durable`.

use std::sync::Arc;
use std::time::Duration;

use apikeys::testing::durable;
use apikeys::{AccessLevel, Actor, Keyring, Request, Role, StoreError};
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
    durable::keys_survive_reopening(|| store_in(&schema, PostgresStore::options()));
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

#[test]
fn changes_through_another_store_reach_a_warm_cache() {
    let schema = fresh_schema();
    durable::changes_through_another_store_reach_a_warm_cache(
        &Keyring::new(store_in(&schema, PostgresStore::options())),
        &Keyring::new(store_in(&schema, PostgresStore::options())),
        || {
            // SQL by hand fires the same triggers.
            raw()
                .execute(&format!("DELETE FROM {schema}.apikeys_keys"), &[])
                .unwrap();
        },
    );
}

#[test]
fn writes_through_the_same_store_reach_a_warm_cache_at_once() {
    let store = Arc::new(store_in(&fresh_schema(), PostgresStore::options()));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    durable::writes_through_the_same_store_reach_a_warm_cache_at_once(&kr, || store.cached_keys());
}

#[test]
fn try_authenticate_answers_only_from_a_warm_cache() {
    let kr = Keyring::new(store_in(&fresh_schema(), PostgresStore::options()));
    durable::try_authenticate_answers_only_from_a_warm_cache(&kr);
    let kr = Keyring::new(store_in(
        &fresh_schema(),
        PostgresStore::options().cache(false),
    ));
    durable::try_authenticate_without_a_cache_leaves_every_key(&kr);
}

#[test]
fn a_warm_cache_lends_in_place() {
    durable::a_warm_cache_lends_in_place(&Keyring::new(store_in(
        &fresh_schema(),
        PostgresStore::options(),
    )));
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
    durable::wait_until_refused(&b, &token);

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
    durable::last_uses_wait_for_flush_or_drop(
        || {
            store_in(
                &schema,
                PostgresStore::options().flush_interval(Duration::from_secs(3600)),
            )
        },
        || store_in(&schema, PostgresStore::options()),
    );
}

// ---- across processes ----

durable::child_helpers!(|schema: &str| Keyring::new(store_in(schema, PostgresStore::options())));

#[test]
fn a_disable_in_another_process_is_seen() {
    let schema = fresh_schema();
    durable::a_disable_in_another_process_is_seen(
        &Keyring::new(store_in(&schema, PostgresStore::options())),
        &schema,
    );
}

#[test]
fn keys_survive_sigkill_at_random_moments() {
    let schema = fresh_schema();
    drop(store_in(&schema, PostgresStore::options()));
    durable::keys_survive_sigkill(3, 50..450, &schema, || {
        Keyring::new(store_in(&schema, PostgresStore::options()))
    });
}

// ---- the authorization invariants (docs/design.md, "Invariants") ----

#[test]
fn no_sequence_of_calls_breaks_the_authorization_invariants() {
    let store = Arc::new(store_in(&fresh_schema(), PostgresStore::options()));
    apikeys::testing::invariants::sequences(store, 24);
}

#[test]
fn check_then_write_races_never_break_them() {
    let store = Arc::new(store_in(&fresh_schema(), PostgresStore::options()));
    apikeys::testing::invariants::races(store, 40);
}

#[test]
fn rotation_races_between_two_stores_never_break_them() {
    // Two store objects (two pools) on one schema, as two processes: only
    // PostgreSQL's row locks serialize them.
    let schema = fresh_schema();
    let first = Keyring::new(store_in(&schema, PostgresStore::options()));
    let second = Keyring::new(store_in(&schema, PostgresStore::options()));
    apikeys::testing::invariants::rotation_races(&first, &second, 60);
}

#[test]
fn user_role_races_between_two_stores_never_break_them() {
    // Two pools on one schema, as two processes: only the user rows' (and
    // the account row's) locks serialize a decision with the changes that
    // race it.
    let schema = fresh_schema();
    apikeys::testing::invariants::user_role_races(
        Arc::new(store_in(&schema, PostgresStore::options())),
        Arc::new(store_in(&schema, PostgresStore::options())),
        60,
    );
}

#[test]
fn rotation_and_the_audit_trail() {
    let schema = fresh_schema();
    apikeys::testing::lifecycle::run_all(&|clock, quiet| {
        Keyring::builder()
            .store(store_in(&schema, PostgresStore::options()))
            .clock(clock)
            .rotation_quiet(quiet)
            .build()
            .unwrap()
    });
}

#[test]
fn every_committed_change_keeps_exactly_one_audit_record_through_sigkill() {
    let schema = fresh_schema();
    drop(store_in(&schema, PostgresStore::options()));
    durable::audit_survives_sigkill(3, 50..450, &schema, || {
        Keyring::new(store_in(&schema, PostgresStore::options()))
    });
}

#[test]
fn a_rotation_and_its_end_are_seen_by_another_store() {
    let schema = fresh_schema();
    let a = Keyring::new(store_in(&schema, PostgresStore::options()));
    let b = Keyring::new(store_in(&schema, PostgresStore::options()));
    let old = a
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    b.authenticate(old.secret().expose(), &Request::rest("GET"))
        .unwrap();
    let new = a
        .rotate(
            &admin(),
            &old.record().id.to_string(),
            Duration::from_secs(3600),
        )
        .unwrap();
    durable::wait_until_accepted(&b, new.secret().expose());
    assert_eq!(
        b.get(&admin(), &old.record().id.to_string())
            .unwrap()
            .rotated_to(),
        Some(new.record().id)
    );
    b.authenticate(old.secret().expose(), &Request::rest("GET"))
        .expect("the overlap runs");
    a.end_rotation(&admin(), &old.record().id.to_string())
        .unwrap();
    durable::wait_until_refused(&b, old.secret().expose());
    b.authenticate(new.secret().expose(), &Request::rest("GET"))
        .expect("the new key works on");
}

#[test]
fn a_change_whose_audit_record_cannot_be_written_is_not_made() {
    let schema = fresh_schema();
    let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = k.record().id.to_string();
    raw()
        .batch_execute(&format!(
            "CREATE FUNCTION {schema}.fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'the audit trail is down'; END $$;
             CREATE TRIGGER fail_audit BEFORE INSERT ON {schema}.apikeys_audit
             FOR EACH ROW EXECUTE FUNCTION {schema}.fail_audit();"
        ))
        .unwrap();
    assert!(matches!(
        kr.disable(&admin(), &id),
        Err(apikeys::Error::Store(_))
    ));
    assert!(
        kr.get(&admin(), &id).unwrap().disabled.is_none(),
        "disabled without a record"
    );
    assert!(kr.rotate(&admin(), &id, Duration::from_secs(60)).is_err());
    assert!(kr.get(&admin(), &id).unwrap().rotated_to().is_none());
    assert_eq!(
        kr.list(&admin()).unwrap().len(),
        1,
        "no new key without its record"
    );
    assert!(kr.delete(&admin(), &id).is_err());
    assert!(kr.set_user_role("acme", "PUSER", Role::Observer).is_err());
    assert_eq!(kr.user("acme", "PUSER").unwrap(), None);
    kr.authenticate(k.secret().expose(), &Request::rest("GET"))
        .expect("the key is untouched");
}

// ---- store errors keep the driver's error as their source ----

#[test]
fn a_refused_connection_keeps_the_drivers_error_as_its_source() {
    let err = PostgresStore::options()
        .connect_timeout(Duration::from_secs(2))
        .connect("postgres://nobody@127.0.0.1:1/none")
        .unwrap_err();
    match &err {
        StoreError::Unavailable(why) => {
            assert!(why.contains("cannot connect"), "{why}");
            assert!(why.contains("refused"), "it says why: {why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let source = std::error::Error::source(&err).expect("the driver's error");
    let pg = source
        .downcast_ref::<postgres::Error>()
        .expect("a postgres::Error");
    let io = std::error::Error::source(pg)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .expect("the socket's error below it");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    // The keyring's error is transparent: the same source below it.
    let err = apikeys::Error::from(err);
    let source = std::error::Error::source(&err).expect("the driver's error");
    assert!(source.is::<postgres::Error>(), "{source:?}");
}

#[test]
fn a_server_error_keeps_its_source_and_never_prints_the_rows_values() {
    let schema = fresh_schema();
    let store = store_in(&schema, PostgresStore::options());
    raw()
        .batch_execute(&format!(
            "ALTER TABLE {schema}.apikeys_accounts
             ADD CONSTRAINT no_probes CHECK (account NOT LIKE 'probe-%')"
        ))
        .unwrap();
    let err = apikeys::KeyStore::set_account_settings(
        &store,
        "probe-4c1d",
        apikeys::AccountSettings::default(),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let source = std::error::Error::source(&err).expect("the driver's error");
    let pg = source
        .downcast_ref::<postgres::Error>()
        .expect("a postgres::Error");
    assert_eq!(
        pg.code(),
        Some(&postgres::error::SqlState::CHECK_VIOLATION),
        "{pg:?}"
    );
    // The server's DETAIL quotes the row: the source keeps it, the text not.
    let detail = pg.as_db_error().and_then(|db| db.detail()).unwrap_or("");
    assert!(detail.contains("probe-4c1d"), "{pg:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            text.contains("no_probes") && text.contains("23514"),
            "{text}"
        );
        assert!(!text.contains("probe-4c1d"), "{text}");
    }
}

#[test]
fn a_version_1_database_is_migrated_on_connect_and_keeps_its_keys() {
    let schema = fresh_schema();
    let kr = Keyring::new(store_in(&schema, PostgresStore::options()));
    let k = kr
        .create_general_key(&admin(), "old", AccessLevel::FullAccess)
        .unwrap();
    drop(kr);
    // Back to what version 1 wrote: no audit trail, no place of last use.
    raw()
        .batch_execute(&format!(
            "DROP TABLE {schema}.apikeys_audit;
             ALTER TABLE {schema}.apikeys_keys DROP COLUMN last_used_from;
             UPDATE {schema}.apikeys_schema_version SET version = 1;"
        ))
        .unwrap();
    let store = store_in(&schema, PostgresStore::options());
    let kr = Keyring::new(store);
    kr.authenticate(k.secret().expose(), &Request::rest("GET"))
        .expect("the key survives the migration");
    kr.disable(&admin(), &k.record().id.to_string()).unwrap();
    let page = kr
        .audit_records(&apikeys::AuditQuery::account("acme"))
        .unwrap();
    assert_eq!(page.records.len(), 1, "the migrated database keeps a trail");
    let version: i32 = raw()
        .query_one(
            &format!("SELECT version FROM {schema}.apikeys_schema_version"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, apikeys_postgres::SCHEMA_VERSION);
}

#[test]
fn a_rotation_end_in_another_process_is_seen() {
    let schema = fresh_schema();
    durable::a_rotation_end_in_another_process_is_seen(
        &Keyring::new(store_in(&schema, PostgresStore::options())),
        &schema,
    );
}
