//! `SqliteStore`: the conformance suite, durability, the cache's invalidation
//! (within a process, across stores on one file, and across processes), last
//! uses, and crash safety under SIGKILL. The checks shared with other durable
//! stores are in `apikeys::testing::durable`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apikeys::testing::{durable, sample_record, unique_account};
use apikeys::{
    AccessLevel, Actor, KeyKind, KeyStore, Keyring, Request, Role, StoreError, Timestamp,
};
use apikeys_sqlite::SqliteStore;

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    apikeys::testing::conformance(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SqliteStore::open(dir.path().join(format!("conf-{i}.db"))).unwrap()
    });
}

#[test]
fn sqlite_store_without_cache_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    apikeys::testing::conformance(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SqliteStore::options()
            .cache(false)
            .open(dir.path().join(format!("conf-{i}.db")))
            .unwrap()
    });
}

#[test]
fn keys_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    durable::keys_survive_reopening(|| SqliteStore::open(dir.path().join("keys.db")).unwrap());
}

#[test]
fn the_schema_version_is_recorded_and_a_newer_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(user_version(&path), apikeys_sqlite::SCHEMA_VERSION);
    // Reopening an up-to-date file migrates nothing and keeps the version.
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(user_version(&path), apikeys_sqlite::SCHEMA_VERSION);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", apikeys_sqlite::SCHEMA_VERSION + 1)
        .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn changes_through_another_store_on_the_same_file_reach_a_warm_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    durable::changes_through_another_store_reach_a_warm_cache(
        &Keyring::new(SqliteStore::open(&path).unwrap()),
        &Keyring::new(SqliteStore::open(&path).unwrap()),
        || {
            // SQL by hand is logged by the triggers too.
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute("DELETE FROM apikeys_keys", []).unwrap();
        },
    );
}

#[test]
fn other_processes_uses_and_inserts_leave_the_cache_warm_but_changes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = Arc::new(
        SqliteStore::options()
            .poll_interval(Duration::from_millis(5))
            .open(&path)
            .unwrap(),
    );
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let issued = kr
        .create_general_key(&admin(), "warm", AccessLevel::FullAccess)
        .unwrap();
    let token = issued.secret().expose();
    kr.authenticate(token, &Request::rest("GET")).unwrap();
    assert_eq!(store.cached_keys(), 1);

    // Another connection writes a last use and a new key: wait until this
    // store's watcher has certainly looked at the file since (a change it must
    // act on, made after them, is seen), and check the key stayed cached.
    other
        .record_use(issued.record().id, Timestamp::now())
        .unwrap();
    other.flush().unwrap();
    other
        .insert(sample_record(&unique_account("x"), KeyKind::General))
        .unwrap();
    let marker = sample_record("acme", KeyKind::General);
    kr.store().insert(marker.clone()).unwrap();
    kr.store().find_by_digest(&marker.digest).unwrap().unwrap();
    other
        .update(marker.id, &mut |r| r.description = "changed".into())
        .unwrap();
    let start = Instant::now();
    while &*kr
        .store()
        .find_by_digest(&marker.digest)
        .unwrap()
        .unwrap()
        .record
        .description
        != "changed"
    {
        assert!(start.elapsed() < Duration::from_secs(60), "never seen");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        store.cached_keys(),
        2,
        "only the changed key was dropped (and read again)"
    );

    // An account change drops everything.
    other
        .set_account_settings("acme", apikeys::AccountSettings::default())
        .unwrap();
    let start = Instant::now();
    while store.cached_keys() != 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "never seen");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn writes_through_the_same_store_reach_a_warm_cache_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("k.db")).unwrap());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    durable::writes_through_the_same_store_reach_a_warm_cache_at_once(&kr, || store.cached_keys());
}

#[test]
fn try_authenticate_answers_only_from_a_warm_cache() {
    let dir = tempfile::tempdir().unwrap();
    let kr = Keyring::new(SqliteStore::open(dir.path().join("k.db")).unwrap());
    durable::try_authenticate_answers_only_from_a_warm_cache(&kr);
    let kr = Keyring::new(
        SqliteStore::options()
            .cache(false)
            .open(dir.path().join("off.db"))
            .unwrap(),
    );
    durable::try_authenticate_without_a_cache_leaves_every_key(&kr);
}

#[test]
fn a_warm_cache_lends_in_place() {
    let dir = tempfile::tempdir().unwrap();
    durable::a_warm_cache_lends_in_place(&Keyring::new(
        SqliteStore::open(dir.path().join("k.db")).unwrap(),
    ));
}

#[test]
fn a_try_notes_a_use_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(
        SqliteStore::options()
            .flush_interval(Duration::from_secs(3600))
            .open(&path)
            .unwrap(),
    );
    let clock = apikeys::ManualClock::new(Timestamp::from_unix_millis(1_800_000_000_000));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let issued = kr
        .create_general_key(&admin(), "used", AccessLevel::FullAccess)
        .unwrap();
    let id = issued.record().id;
    let t = issued.secret().expose();
    kr.authenticate(t, &Request::rest("GET")).unwrap();
    assert_eq!(store.flush().unwrap(), 1);
    let first = store.get(id).unwrap().unwrap().last_used_at.unwrap();
    clock.advance(Duration::from_secs(120));
    // A use noted on the try, seen at once through this store, not written.
    assert!(
        kr.try_authenticate(t, &Request::rest("GET"))
            .unwrap()
            .is_ok()
    );
    let noted = store.get(id).unwrap().unwrap().last_used_at.unwrap();
    assert!(noted > first);
    let other = SqliteStore::open(&path).unwrap();
    assert_eq!(other.get(id).unwrap().unwrap().last_used_at, Some(first));
    assert_eq!(store.flush().unwrap(), 1);
    assert_eq!(other.get(id).unwrap().unwrap().last_used_at, Some(noted));
}

#[test]
fn last_uses_are_queued_then_written_by_flush_and_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    durable::last_uses_wait_for_flush_or_drop(
        || {
            SqliteStore::options()
                .flush_interval(Duration::from_secs(3600))
                .open(&path)
                .unwrap()
        },
        || SqliteStore::open(&path).unwrap(),
    );
}

#[test]
fn the_keyring_records_a_use_without_writing_on_the_hot_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(
        SqliteStore::options()
            .flush_interval(Duration::from_secs(3600))
            .open(&path)
            .unwrap(),
    );
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let issued = kr
        .create_general_key(&admin(), "used", AccessLevel::FullAccess)
        .unwrap();
    for _ in 0..5 {
        kr.authenticate(issued.secret().expose(), &Request::rest("GET"))
            .unwrap();
    }
    let id = issued.record().id;
    // Seen at once through this store, though not yet written.
    assert!(store.get(id).unwrap().unwrap().last_used_at.is_some());
    let other = SqliteStore::open(&path).unwrap();
    assert_eq!(other.get(id).unwrap().unwrap().last_used_at, None);
    assert_eq!(store.flush().unwrap(), 1, "five uses, one write");
    assert!(other.get(id).unwrap().unwrap().last_used_at.is_some());
}

#[test]
fn an_unopenable_path_is_a_clear_store_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("keys.db");
    match SqliteStore::open(&path) {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("cannot open"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---- across processes ----

durable::child_helpers!(|path: &str| Keyring::new(SqliteStore::open(path).unwrap()));

#[test]
fn a_disable_in_another_process_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    durable::a_disable_in_another_process_is_seen(
        &Keyring::new(SqliteStore::open(&path).unwrap()),
        &path,
    );
}

#[test]
fn keys_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    durable::keys_survive_sigkill(5, 20..400, &path, || {
        let store = SqliteStore::open(&path).unwrap();
        store.integrity_check().unwrap();
        Keyring::new(store)
    });
}

#[test]
fn a_version_1_file_is_migrated_on_open_and_keeps_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let r = sample_record(&unique_account("old"), KeyKind::General);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert(r.clone()).unwrap();
    }
    // Turn it back into what version 1 wrote: no change log, no audit trail.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE apikeys_audit; ALTER TABLE apikeys_keys DROP COLUMN last_used_from;
         DROP TRIGGER apikeys_keys_updated; DROP TRIGGER apikeys_keys_deleted;
         DROP TRIGGER apikeys_accounts_inserted; DROP TRIGGER apikeys_accounts_updated;
         DROP TRIGGER apikeys_accounts_deleted; DROP TRIGGER apikeys_users_inserted;
         DROP TRIGGER apikeys_users_updated; DROP TRIGGER apikeys_users_deleted;
         DROP TABLE apikeys_changes; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get(r.id).unwrap(), Some(r.clone()));
    store
        .update(r.id, &mut |x| x.description = "logged".into())
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (version, logged): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), count(*) FROM apikeys_changes",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(version, apikeys_sqlite::SCHEMA_VERSION);
    assert_eq!(logged, 1, "the migrated file logs changes");
    assert!(store.keeps_audit());
    let q = apikeys::AuditQuery::account(&r.account)
        .resolve(Timestamp::now())
        .unwrap();
    assert!(
        store.audit_records(&q).unwrap().records.is_empty(),
        "the migrated file has an (empty) audit trail"
    );
}

/// `Keyring::flush` reaches the store: a queued last use is on disk afterwards,
/// where another store on the same file reads it.
#[test]
fn keyring_flush_writes_queued_last_uses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let kr = apikeys::Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let admin = apikeys::Actor::new("acme", "PADMIN", apikeys::Role::Admin);
    let k = kr
        .create_general_key(&admin, "ci", apikeys::AccessLevel::FullAccess)
        .unwrap();
    kr.authenticate(k.secret().expose(), &apikeys::Request::rest("GET"))
        .unwrap();
    assert_eq!(kr.flush().unwrap(), 1, "one queued use written");
    assert_eq!(kr.flush().unwrap(), 0, "nothing left");
    let other = SqliteStore::open(&path).unwrap();
    let rec = apikeys::KeyStore::get(&other, k.record().id)
        .unwrap()
        .unwrap();
    assert!(
        rec.last_used_at.is_some(),
        "the use was not written by flush"
    );
}

// ---- the authorization invariants (docs/design.md, "Invariants") ----

#[test]
fn no_sequence_of_calls_breaks_the_authorization_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("seq.db")).unwrap());
    apikeys::testing::invariants::sequences(store, 32);
}

#[test]
fn check_then_write_races_never_break_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("race.db")).unwrap());
    apikeys::testing::invariants::races(store, 40);
}

#[test]
fn rotation_races_between_two_stores_on_one_file_never_break_them() {
    // Two store objects on one file: two connections, serialized only by
    // SQLite's own locks (BEGIN IMMEDIATE), as two processes would be.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotation-race.db");
    let first = Keyring::new(SqliteStore::open(&path).unwrap());
    let second = Keyring::new(SqliteStore::open(&path).unwrap());
    apikeys::testing::invariants::rotation_races(&first, &second, 60);
}

#[test]
fn user_role_races_between_two_stores_on_one_file_never_break_them() {
    // Two store objects on one file: the decision of a change made for a
    // person and its write are one BEGIN IMMEDIATE transaction.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user-race.db");
    apikeys::testing::invariants::user_role_races(
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(SqliteStore::open(&path).unwrap()),
        60,
    );
}

// ---- paths that are not files, and a log deleted under the store ----

#[test]
fn a_sqlite_keyring_may_block() {
    let dir = tempfile::tempdir().unwrap();
    let kr = Keyring::new(SqliteStore::open(dir.path().join("k.db")).unwrap());
    assert!(kr.may_block(), "a cold lookup reads the file");
}

#[test]
fn an_empty_or_memory_path_is_refused_and_says_why() {
    for path in ["", " ", ":memory:", "file::memory:?cache=shared"] {
        match SqliteStore::open(path) {
            Err(StoreError::Unavailable(msg)) => {
                assert!(msg.contains("is not a file"), "{path:?}: {msg}");
                assert!(
                    !msg.contains("WAL"),
                    "{path:?} must not blame WAL mode: {msg}"
                );
            }
            other => panic!("{path:?}: expected Unavailable, got {other:?}"),
        }
    }
}

/// What another SQLite library in the same process does when it closes the
/// file (Python's sqlite3, say): it deletes the write-ahead log under the
/// store. The store must refuse to write (a clear error), never write to the
/// deleted log and lose the change.
#[test]
fn a_write_ahead_log_deleted_under_the_store_is_a_clear_error_not_a_lost_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let issued = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = issued.record().id.to_string();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::remove_file(&wal).unwrap();
    let err = kr.disable(&admin(), &id).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.http_status(), 500, "{msg}");
    assert!(
        msg.contains("write-ahead log") && msg.contains("same process"),
        "{msg}"
    );
    assert!(!msg.contains(issued.secret().expose()));
    // Nothing was claimed done: the caller knows the disable did not happen,
    // and the cache no longer answers for the file.
    assert!(!store.cache_enabled());
    assert!(
        kr.create_general_key(&admin(), "ci 2", AccessLevel::FullAccess)
            .is_err()
    );
    // A store opened again writes to the file's log, and the disable lands.
    drop(kr);
    drop(store);
    let kr = Keyring::new(SqliteStore::open(&path).unwrap());
    kr.disable(&admin(), &id).unwrap();
    let again = Keyring::new(SqliteStore::open(&path).unwrap());
    assert_eq!(
        again
            .authenticate(issued.secret().expose(), &Request::rest("GET"))
            .unwrap_err()
            .http_status(),
        401
    );
}

#[test]
fn rotation_and_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lifecycle.db");
    apikeys::testing::lifecycle::run_all(&|clock, quiet| {
        Keyring::builder()
            .store(SqliteStore::open(&path).unwrap())
            .clock(clock)
            .rotation_quiet(quiet)
            .build()
            .unwrap()
    });
}

#[test]
fn a_rotation_and_its_end_are_seen_by_another_process_store() {
    // Two stores on one file stand for two processes (each polls the file's
    // changes); the cross-process check proper is a_disable_in_another_process_is_seen.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    let a = Keyring::new(SqliteStore::open(&path).unwrap());
    let b = Keyring::new(SqliteStore::open(&path).unwrap());
    let old = a
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    // b caches the old key.
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
    let seen = b.get(&admin(), &old.record().id.to_string()).unwrap();
    assert_eq!(seen.rotated_to(), Some(new.record().id));
    b.authenticate(old.secret().expose(), &Request::rest("GET"))
        .expect("the overlap runs");
    a.end_rotation(&admin(), &old.record().id.to_string())
        .unwrap();
    durable::wait_until_refused(&b, old.secret().expose());
    b.authenticate(new.secret().expose(), &Request::rest("GET"))
        .expect("the new key works on");
}

#[test]
fn every_committed_change_keeps_exactly_one_audit_record_through_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-crash.db");
    drop(SqliteStore::open(&path).unwrap());
    let place = path.to_str().unwrap().to_owned();
    durable::audit_survives_sigkill(5, 30..400, &place, || {
        Keyring::new(SqliteStore::open(&path).unwrap())
    });
}

#[test]
fn a_change_whose_audit_record_cannot_be_written_is_not_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-fails.db");
    let kr = Keyring::new(SqliteStore::open(&path).unwrap());
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = k.record().id.to_string();
    // From now on every audit insert fails, as a full disk would.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON apikeys_audit
             BEGIN SELECT RAISE(ABORT, 'the audit trail is down'); END;",
        )
        .unwrap();
    assert!(matches!(
        kr.disable(&admin(), &id),
        Err(apikeys::Error::Store(_))
    ));
    assert!(
        kr.get(&admin(), &id).unwrap().disabled.is_none(),
        "disabled without a record"
    );
    kr.authenticate(k.secret().expose(), &Request::rest("GET"))
        .expect("still enabled");
    assert!(kr.rotate(&admin(), &id, Duration::from_secs(60)).is_err());
    assert!(kr.get(&admin(), &id).unwrap().rotated_to().is_none());
    assert_eq!(
        kr.list(&admin()).unwrap().len(),
        1,
        "no new key without its record"
    );
    assert!(kr.delete(&admin(), &id).is_err());
    assert!(
        kr.create_general_key(&admin(), "x", AccessLevel::FullAccess)
            .is_err()
    );
    assert!(kr.set_user_role("acme", "PUSER", Role::Observer).is_err());
    assert_eq!(kr.user("acme", "PUSER").unwrap(), None);
    kr.authenticate(k.secret().expose(), &Request::rest("GET"))
        .expect("the key is untouched");
}

// ---- store errors keep SQLite's error as their source ----

/// The `rusqlite::Error` a store error was caused by, if any.
fn rusqlite_source(e: &StoreError) -> Option<&rusqlite::Error> {
    std::error::Error::source(e)?.downcast_ref()
}

#[test]
fn a_file_that_is_not_a_database_is_unavailable_with_sqlites_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    std::fs::write(&path, [b'x'; 4096]).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    let source = rusqlite_source(&err).expect("the rusqlite error");
    assert_eq!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase),
        "{source:?}"
    );
    match &err {
        StoreError::Unavailable(why) => {
            assert!(why.starts_with("SQLite: "), "{why}");
            assert!(why.contains(&source.to_string()), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // The keyring's error is transparent: the same source below it.
    let err = apikeys::Error::from(err);
    let source = std::error::Error::source(&err).expect("the rusqlite error");
    assert!(source.is::<rusqlite::Error>(), "{source:?}");
}

#[test]
fn a_failed_write_keeps_sqlites_error_and_never_prints_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = SqliteStore::open(&path).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_accounts BEFORE INSERT ON apikeys_accounts
             BEGIN SELECT RAISE(ABORT, 'no new accounts here'); END;",
        )
        .unwrap();
    let err = store
        .set_account_settings("acct-7f3e9", apikeys::AccountSettings::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let source = rusqlite_source(&err).expect("the rusqlite error");
    assert_eq!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation),
        "{source:?}"
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(text.contains("no new accounts here"), "{text}");
        assert!(!text.contains("acct-7f3e9"), "{text}");
    }
}

#[test]
fn a_rotation_end_in_another_process_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotation-process.db");
    durable::a_rotation_end_in_another_process_is_seen(
        &Keyring::new(SqliteStore::open(&path).unwrap()),
        &path,
    );
}
