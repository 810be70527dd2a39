//! `SqliteStore`: the conformance suite, durability, the cache's invalidation
//! (within a process, across stores on one file, and across processes), last
//! uses, and crash safety under SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::testing::{sample_record, unique_account};
use apikeys::{
    AccessLevel, Actor, Error, KeyKind, KeyStore, Keyring, Request, Role, StoreError, Timestamp,
};
use apikeys_sqlite::SqliteStore;

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
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
    let path = dir.path().join("keys.db");
    let (token, id) = {
        let kr = Keyring::new(SqliteStore::open(&path).unwrap());
        let issued = kr
            .create_general_key(&admin(), "CI bot", AccessLevel::ReadOnly)
            .unwrap();
        kr.set_user_role("acme", "PUSER1", Role::Observer).unwrap();
        (
            issued.secret().expose().to_owned(),
            issued.record().id.to_string(),
        )
    };
    let kr = Keyring::new(SqliteStore::open(&path).unwrap());
    let p = kr.authenticate(&token, &Request::rest("GET")).unwrap();
    assert_eq!(p.key_id().to_string(), id);
    assert_eq!(
        kr.user("acme", "PUSER1").unwrap().unwrap().role,
        Role::Observer
    );
    assert!(matches!(
        kr.authenticate(&token, &Request::rest("POST")),
        Err(Error::Forbidden { .. })
    ));
}

#[test]
fn the_schema_version_is_recorded_and_a_newer_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite_version(&path);
    assert_eq!(conn, apikeys_sqlite::SCHEMA_VERSION);
    // Reopening an up-to-date file migrates nothing and keeps the version.
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(rusqlite_version(&path), apikeys_sqlite::SCHEMA_VERSION);
    set_user_version(&path, apikeys_sqlite::SCHEMA_VERSION + 1);
    match SqliteStore::open(&path) {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn rusqlite_version(path: &std::path::Path) -> i64 {
    // Read through the store's own connection type would hide it; ask sqlite directly.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_read_user_version",
            "--ignored",
            "--nocapture",
        ])
        .env("APIKEYS_CHILD_DB", path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("USER_VERSION "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no version in {text}"))
}

fn set_user_version(path: &std::path::Path, v: i64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_set_user_version",
            "--ignored",
            "--nocapture",
        ])
        .env("APIKEYS_CHILD_DB", path)
        .env("APIKEYS_CHILD_VERSION", v.to_string())
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Helper run in a child process (not a test on its own).
#[test]
#[ignore = "helper: run by another test in a child process"]
fn child_read_user_version() {
    let Ok(path) = std::env::var("APIKEYS_CHILD_DB") else {
        return;
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    println!("USER_VERSION {v}");
}

/// Helper run in a child process (not a test on its own).
#[test]
#[ignore = "helper: run by another test in a child process"]
fn child_set_user_version() {
    let Ok(path) = std::env::var("APIKEYS_CHILD_DB") else {
        return;
    };
    let v: i64 = std::env::var("APIKEYS_CHILD_VERSION")
        .unwrap()
        .parse()
        .unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", v).unwrap();
}

#[test]
fn a_disable_through_another_store_on_the_same_file_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let a = Keyring::new(SqliteStore::open(&path).unwrap());
    let b = Keyring::new(SqliteStore::open(&path).unwrap());
    let issued = a
        .create_general_key(&admin(), "shared", AccessLevel::FullAccess)
        .unwrap();
    let token = issued.secret().expose();
    let id = issued.record().id.to_string();
    // b caches the key.
    for _ in 0..3 {
        b.authenticate(token, &Request::rest("GET")).unwrap();
    }
    a.disable(&admin(), &id).unwrap();
    // No timing assumption: wait until b refuses it, however long that takes.
    wait_until_refused(&b, token);
    a.enable(&admin(), &id).unwrap();
    wait_until_accepted(&b, token);
    a.delete(&admin(), &id).unwrap();
    wait_until_refused(&b, token);
}

#[test]
fn other_processes_uses_and_inserts_leave_the_cache_warm_but_changes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = std::sync::Arc::new(
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

    // SQL by hand is logged by the triggers too.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DELETE FROM apikeys_keys", []).unwrap();
    wait_until_refused(&kr, token);
    // An account change drops everything.
    kr.create_general_key(&admin(), "again", AccessLevel::FullAccess)
        .map(|k| {
            kr.authenticate(k.secret().expose(), &Request::rest("GET"))
                .unwrap()
        })
        .unwrap();
    assert!(store.cached_keys() >= 1);
    other
        .set_account_settings("acme", apikeys::AccountSettings::default())
        .unwrap();
    let start = Instant::now();
    while store.cached_keys() != 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "never seen");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_until_refused(kr: &Keyring, token: &str) {
    let start = Instant::now();
    loop {
        match kr.authenticate(token, &Request::rest("GET")) {
            Err(Error::Unauthorized(_)) => return,
            Ok(_) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a change by another store was never seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_until_accepted(kr: &Keyring, token: &str) {
    let start = Instant::now();
    while kr.authenticate(token, &Request::rest("GET")).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "a change by another store was never seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn writes_through_the_same_store_reach_a_warm_cache_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path().join("k.db")).unwrap());
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
    kr.set_account(
        "acme",
        apikeys::AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
    )
    .unwrap();
    assert!(matches!(
        kr.authenticate(token, &Request::rest("GET")),
        Err(Error::PlanRestricted { .. })
    ));
    kr.set_account("acme", apikeys::AccountSettings::default())
        .unwrap();
    kr.authenticate(token, &Request::rest("GET")).unwrap();

    // A user token stops working at once when its owner is demoted or removed.
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
    kr.remove_user("acme", "PUSER1").unwrap();
    assert!(matches!(
        kr.authenticate(ut, &Request::rest("GET")),
        Err(Error::Unauthorized(_))
    ));

    kr.delete(&admin(), &id).unwrap();
    assert!(matches!(
        kr.authenticate(token, &Request::rest("GET")),
        Err(Error::Unauthorized(_))
    ));
}

#[test]
fn last_uses_are_queued_then_written_by_flush_and_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let acct = unique_account("used");
    let r = sample_record(&acct, KeyKind::General);
    let t1 = Timestamp::from_unix_millis(1_700_000_100_000);
    let t2 = Timestamp::from_unix_millis(1_700_000_200_000);
    {
        let store = SqliteStore::options()
            .flush_interval(Duration::from_secs(3600))
            .open(&path)
            .unwrap();
        store.insert(r.clone()).unwrap();
        store.record_use(r.id, t1).unwrap();
        // Not written yet: a second store on the file does not see it.
        let other = SqliteStore::open(&path).unwrap();
        assert_eq!(other.get(r.id).unwrap().unwrap().last_used_at, None);
        assert_eq!(store.flush().unwrap(), 1);
        assert_eq!(other.get(r.id).unwrap().unwrap().last_used_at, Some(t1));
        assert_eq!(store.flush().unwrap(), 0, "nothing left to write");
        store.record_use(r.id, t2).unwrap();
        // Dropped here: the queued use is written.
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get(r.id).unwrap().unwrap().last_used_at, Some(t2));
}

#[test]
fn the_keyring_records_a_use_without_writing_on_the_hot_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = std::sync::Arc::new(
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

/// Helper run in a child process: authenticates the token in a loop and
/// prints when it is first refused after being accepted, then exits.
#[test]
#[ignore = "helper: run by another test in a child process"]
fn child_watch_token() {
    let (Ok(path), Ok(token)) = (
        std::env::var("APIKEYS_CHILD_DB"),
        std::env::var("APIKEYS_CHILD_TOKEN"),
    ) else {
        return;
    };
    let kr = Keyring::new(SqliteStore::open(path).unwrap());
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let kr = Keyring::new(SqliteStore::open(&path).unwrap());
    let issued = kr
        .create_general_key(&admin(), "shared", AccessLevel::FullAccess)
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_watch_token", "--ignored", "--nocapture"])
        .env("APIKEYS_CHILD_DB", &path)
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

/// Helper run in a child process: creates keys in a loop, printing each
/// once its create has returned, until killed.
#[test]
#[ignore = "helper: run by another test in a child process"]
fn child_create_keys_forever() {
    let Ok(path) = std::env::var("APIKEYS_CHILD_DB") else {
        return;
    };
    use std::io::Write;
    let kr = Keyring::new(SqliteStore::open(path).unwrap());
    let mut out = std::io::stdout().lock();
    for i in 0..100_000 {
        let issued = kr
            .create_general_key(&admin(), &format!("crash {i}"), AccessLevel::FullAccess)
            .unwrap();
        // A use too, so queued last-use writes race the kill as well.
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut printed: Vec<(String, String)> = Vec::new();
    for round in 0..5u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_create_keys_forever",
                "--ignored",
                "--nocapture",
            ])
            .env("APIKEYS_CHILD_DB", &path)
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
        // A random moment: 20 to 400 ms in (the kill may land mid-write).
        let r = apikeys::KeyId::generate().unwrap().as_u64();
        std::thread::sleep(Duration::from_millis(20 + (r ^ round) % 380));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        printed.extend(reader.join().unwrap());
        eprintln!("round {round}: {} keys printed so far", printed.len());

        let store = SqliteStore::open(&path).unwrap();
        store.integrity_check().unwrap();
        let kr = Keyring::new(store);
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

#[test]
fn a_version_1_file_is_migrated_on_open_and_keeps_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let r = sample_record(&unique_account("old"), KeyKind::General);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert(r.clone()).unwrap();
    }
    // Turn it back into what version 1 wrote: no change log.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER apikeys_keys_updated; DROP TRIGGER apikeys_keys_deleted;
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
}

/// `Keyring::flush` reaches the store: a queued last use is on disk afterwards,
/// where another store on the same file reads it.
#[test]
fn keyring_flush_writes_queued_last_uses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
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
    kr.flush().unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let rec = apikeys::KeyStore::get(&other, k.record().id)
        .unwrap()
        .unwrap();
    assert!(
        rec.last_used_at.is_some(),
        "the use was not written by flush"
    );
}
