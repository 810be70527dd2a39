//! The secret-scanning receiver on the durable stores: the checks of
//! `scanning.rs` on SQLite and PostgreSQL (the audit records read back from
//! the store's own trail, written in the transaction of each change), and on
//! PostgreSQL two receivers over two stores of one database — two processes
//! — delivering the same report at once.
//!
//! The PostgreSQL tests need `APIKEYS_TEST_POSTGRES_URL` and fail, never
//! skip, without it (`bash scripts/test.sh`, or `source scripts/services.sh`
//! in bash first).

mod scanning_support;

use std::sync::{Arc, Barrier};

use apikeys::{Clock, Keyring, LEAK_REPORT, ManualClock, Timestamp};
use apikeys_postgres::PostgresStore;
use apikeys_sqlite::SqliteStore;
use scanning_support::scenarios;
use scanning_support::*;

struct SharedClock(Arc<ManualClock>);

impl Clock for SharedClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

/// A keyring over a new SQLite file (kept until the test ends).
fn sqlite(clock: Option<Arc<ManualClock>>) -> (tempfile::TempDir, Arc<Keyring>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("keys.db")).unwrap();
    let mut b = Keyring::builder().store(store);
    if let Some(c) = clock {
        b = b.clock(SharedClock(c));
    }
    (dir, Arc::new(b.build().unwrap()))
}

fn pg_url() -> String {
    std::env::var("APIKEYS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "APIKEYS_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a real server. \
             Run `bash scripts/test.sh`, or `source scripts/services.sh` in bash first."
        )
    })
}

fn fresh_schema() -> String {
    format!("t_{:016x}", apikeys::KeyId::generate().unwrap().as_u64())
}

fn pg_store(schema: &str) -> PostgresStore {
    PostgresStore::options()
        .schema(schema)
        .pool_size(6)
        .connect(&pg_url())
        .unwrap()
}

/// A keyring over a new PostgreSQL schema.
fn postgres(clock: Option<Arc<ManualClock>>) -> Arc<Keyring> {
    let mut b = Keyring::builder().store(pg_store(&fresh_schema()));
    if let Some(c) = clock {
        b = b.clock(SharedClock(c));
    }
    Arc::new(b.build().unwrap())
}

#[test]
fn sqlite_live_keys_are_disabled_once_with_their_report() {
    let (_dir, keyring) = sqlite(None);
    assert!(keyring.store().keeps_audit());
    scenarios::live_keys_are_disabled_once_with_their_report(keyring);
}

#[test]
fn sqlite_badly_signed_reports_disable_nothing() {
    let (_dir, keyring) = sqlite(None);
    scenarios::badly_signed_reports_disable_nothing(keyring);
}

#[test]
fn sqlite_concurrent_deliveries_disable_once() {
    let (_dir, keyring) = sqlite(None);
    scenarios::concurrent_deliveries_disable_once(keyring, 10, 4);
}

#[test]
fn sqlite_states_answer_as_decided() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let (_dir, keyring) = sqlite(Some(clock.clone()));
    scenarios::states_answer_as_decided(keyring, &clock);
}

#[test]
fn sqlite_delete_action_deletes_once() {
    let (_dir, keyring) = sqlite(None);
    scenarios::delete_action_deletes_once(keyring);
}

/// A disable by a report survives reopening the file, with its record.
#[test]
fn sqlite_a_reported_key_stays_disabled_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let signer = Signer::new("github-1");
    let (token, id) = {
        let keyring = Arc::new(Keyring::new(SqliteStore::open(&path).unwrap()));
        let keys = live_keys(&keyring);
        let res =
            receiver(keyring.clone(), &signer).handle(signer.request(&report(&[&keys.tokens[0]])));
        assert_eq!(labels(res.body()), ["true_positive"]);
        (keys.tokens[0].clone(), keys.ids[0])
    };
    let keyring = Arc::new(Keyring::new(SqliteStore::open(&path).unwrap()));
    assert!(!works(&keyring, &token));
    let r = record(&keyring, id).unwrap();
    assert_eq!(r.disabled.as_ref().map(|d| &*d.by), Some(LEAK_REPORT));
    let records = leak_records(&keyring);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].context.report_url.as_deref(), Some(URL));
    // And a new receiver over the reopened file answers the same.
    let res = receiver(keyring.clone(), &signer).handle(signer.request(&report(&[&token])));
    assert_eq!(labels(res.body()), ["true_positive"]);
    assert_eq!(leak_records(&keyring).len(), 1);
}

#[test]
fn postgres_live_keys_are_disabled_once_with_their_report() {
    let keyring = postgres(None);
    assert!(keyring.store().keeps_audit());
    scenarios::live_keys_are_disabled_once_with_their_report(keyring);
}

#[test]
fn postgres_badly_signed_reports_disable_nothing() {
    scenarios::badly_signed_reports_disable_nothing(postgres(None));
}

#[test]
fn postgres_concurrent_deliveries_disable_once() {
    scenarios::concurrent_deliveries_disable_once(postgres(None), 10, 4);
}

#[test]
fn postgres_states_answer_as_decided() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let keyring = postgres(Some(clock.clone()));
    scenarios::states_answer_as_decided(keyring, &clock);
}

#[test]
fn postgres_delete_action_deletes_once() {
    scenarios::delete_action_deletes_once(postgres(None));
}

/// Two receivers over two stores of one database (two processes), each
/// getting the same report at the same moment, round after round: each key
/// disabled once, one record, the same answer from both.
#[test]
fn postgres_two_processes_delivered_the_same_report_at_once_disable_once() {
    let schema = fresh_schema();
    let a = Arc::new(Keyring::new(pg_store(&schema)));
    let b = Arc::new(Keyring::new(pg_store(&schema)));
    let signer = Signer::new("github-1");
    let receivers = [
        Arc::new(receiver(a.clone(), &signer)),
        Arc::new(receiver(b.clone(), &signer)),
    ];
    for round in 0..15 {
        let keys = live_keys(&a);
        let tokens: Vec<&str> = keys.tokens.iter().map(String::as_str).collect();
        let body = report(&tokens);
        let before = leak_records(&a).len();
        let barrier = Barrier::new(4);
        let answers: Vec<Vec<u8>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let scanning = receivers[i % 2].clone();
                    let request = signer.request(&body);
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let res = scanning.handle(request);
                        assert_eq!(res.status(), 200);
                        res.into_body()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for a in &answers {
            assert_eq!(
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(&answers[0]),
                "round {round}"
            );
        }
        assert_eq!(labels(&answers[0]), vec!["true_positive"; 5]);
        let records = leak_records(&b);
        assert_eq!(
            records.len() - before,
            5,
            "round {round}: {:#?}",
            &records[before..]
        );
        // The store that disabled a key refuses it at once; the other one
        // (another process) sees the change through its change feed, within
        // the documented delay (docs/stores.md): poll for it, bounded.
        for t in &keys.tokens {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while works(&a, t) || works(&b, t) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round}: a reported key still works after 5 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}
