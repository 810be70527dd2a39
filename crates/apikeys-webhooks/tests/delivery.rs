//! Delivery against a real local receiver (tests/common): events of every
//! type from keyring calls, signed; a receiver that fails, hangs, closes the
//! connection and comes back; dead rows; `key.expiring` once per key; the
//! outbox written in the change's transaction on SQLite (and migrated onto
//! an existing file).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apikeys::webhooks::{Finish, OutboxStore, events_for};
use apikeys::{
    AccessLevel, Actor, CallContext, Clock, KeyStore, Keyring, LeakAction, LeakOutcome,
    ManualClock, MemoryStore, NewKey, Role, Timestamp,
};
use apikeys_sqlite::SqliteStore;
use apikeys_webhooks::{
    Deliverer, Endpoint, EventType, Outbox, OutboxStatus, WebhookError, WorkerOptions,
};
use common::{Behave, Receiver};
use serde_json::Value;

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn fast() -> WorkerOptions {
    WorkerOptions::default()
        .poll_interval(Duration::from_millis(10))
        .timeout(Duration::from_millis(400))
        .backoff_base(Duration::from_millis(20))
        .backoff_max(Duration::from_millis(100))
        .lease(Duration::from_secs(5))
}

fn endpoint(r: &Receiver) -> Endpoint {
    Endpoint::new("ops", &r.url, &r.secret_text).unwrap()
}

/// Every management call that makes an event, once; returns the secrets
/// issued (none may appear in a payload) and the expected (type, key id).
fn lifecycle(kr: &Keyring) -> (Vec<String>, Vec<(EventType, Option<String>)>) {
    let a = admin();
    let mut secrets = Vec::new();
    let mut want = Vec::new();
    let k = kr
        .create_general_key(&a, "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = k.record().id.to_string();
    secrets.push(k.secret().expose().to_owned());
    want.push((EventType::KeyCreated, Some(id.clone())));
    kr.disable(&a, &id).unwrap();
    want.push((EventType::KeyDisabled, Some(id.clone())));
    kr.disable(&a, &id).unwrap(); // already disabled: no event
    kr.enable(&a, &id).unwrap();
    want.push((EventType::KeyEnabled, Some(id.clone())));
    let new = kr.rotate(&a, &id, Duration::from_secs(3600)).unwrap();
    secrets.push(new.secret().expose().to_owned());
    want.push((EventType::KeyRotated, Some(id.clone())));
    kr.end_rotation(&a, &id).unwrap();
    want.push((EventType::KeyRotationEnded, Some(id.clone())));
    kr.delete(&a, &id).unwrap();
    want.push((EventType::KeyDeleted, Some(id.clone())));
    // A reported leak: key.leaked, then what the report did (disabled).
    let leaked = kr
        .create_general_key(&a, "pasted in a gist", AccessLevel::ReadOnly)
        .unwrap();
    let leaked_id = leaked.record().id.to_string();
    secrets.push(leaked.secret().expose().to_owned());
    want.push((EventType::KeyCreated, Some(leaked_id.clone())));
    let report = CallContext::new()
        .report_url("https://gist.example/1")
        .report_source("gist");
    let verdict = kr
        .report_leaked(leaked.secret().expose(), &report, LeakAction::Disable)
        .unwrap();
    assert_eq!(verdict.outcome, LeakOutcome::Disabled);
    want.push((EventType::KeyLeaked, Some(leaked_id.clone())));
    want.push((EventType::KeyDisabled, Some(leaked_id.clone())));
    // Reported again: nothing changes, no event.
    let again = kr
        .report_leaked(leaked.secret().expose(), &report, LeakAction::Disable)
        .unwrap();
    assert_eq!(again.outcome, LeakOutcome::AlreadyReported);
    // Refused calls make no event.
    let observer = Actor::new("acme", "POBS", Role::Observer);
    assert!(kr.delete(&observer, &new.record().id.to_string()).is_err());
    let u = Actor::new("acme", "PUSER7", Role::Responder);
    let t = kr.create_user_token(&u, "laptop").unwrap();
    secrets.push(t.secret().expose().to_owned());
    want.push((EventType::KeyCreated, Some(t.record().id.to_string())));
    kr.set_user_role("acme", "PUSER7", Role::Manager).unwrap(); // no event
    kr.remove_user("acme", "PUSER7").unwrap();
    want.push((EventType::UserRemoved, None));
    (secrets, want)
}

fn received_events(r: &Receiver) -> Vec<(EventType, Option<String>, Value)> {
    let mut seen = HashMap::new();
    for g in r.got() {
        if g.answer == Behave::Ok {
            seen.insert(g.id.clone(), g.body.clone());
        }
    }
    let mut out: Vec<(String, Value)> = seen
        .into_values()
        .map(|b| {
            let v: Value = serde_json::from_str(&b).unwrap();
            (v["timestamp"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter()
        .map(|(_, v)| {
            let t: EventType = v["type"].as_str().unwrap().parse().unwrap();
            let k = v["data"]["key_id"].as_str().map(str::to_owned);
            (t, k, v)
        })
        .collect()
}

fn wait_delivered(outbox: &dyn Outbox, n: usize) {
    let start = std::time::Instant::now();
    loop {
        let rows = outbox.outbox_rows(None, 10_000).unwrap();
        let done = rows
            .iter()
            .filter(|r| r.status != OutboxStatus::Pending)
            .count();
        if rows.len() >= n && done == rows.len() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{done} of {} rows finished after 60 s: {:?}",
            rows.len(),
            rows.iter()
                .filter(|r| r.status == OutboxStatus::Pending)
                .map(|r| (&r.event_type, r.attempts, &r.last_error))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_lifecycle_event_reaches_the_receiver_signed_without_a_secret_in_it() {
    let r = Receiver::start();
    let store = Arc::new(OutboxStore::new(MemoryStore::new()));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let (secrets, want) = lifecycle(&kr);
    let worker = Deliverer::new(store.clone(), vec![endpoint(&r)], fast())
        .unwrap()
        .start()
        .unwrap();
    wait_delivered(&*store, want.len());
    worker.stop();
    let got = received_events(&r);
    let types: Vec<_> = got.iter().map(|(t, k, _)| (*t, k.clone())).collect();
    // The same events, each once (the receiver never failed), in order.
    let mut a = types.clone();
    let mut b = want.clone();
    a.sort_by_key(|x| format!("{x:?}"));
    b.sort_by_key(|x| format!("{x:?}"));
    assert_eq!(a, b);
    assert!(r.got().iter().all(|g| g.valid), "every signature verifies");
    assert_eq!(r.got().len(), want.len(), "nothing sent twice");
    for (t, _, v) in &got {
        let body = v.to_string();
        for s in &secrets {
            assert!(!body.contains(s.as_str()), "{t}: a key in {body}");
        }
        assert!(!body.contains("digest"), "{body}");
        assert_eq!(v["data"]["account"], "acme");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        match t {
            EventType::UserRemoved => {
                assert_eq!(v["data"]["user"], "PUSER7");
                assert_eq!(v["data"]["actor"], "system");
            }
            EventType::KeyRotated => {
                assert!(v["data"]["new_key_id"].is_string(), "{body}");
                assert!(v["data"]["overlap_until"].is_string(), "{body}");
            }
            EventType::KeyLeaked => {
                assert_eq!(v["data"]["actor"], "system", "{body}");
                assert_eq!(v["data"]["kind"], "general", "{body}");
            }
            EventType::KeyDisabled if v["data"]["actor"] == "system" => {
                assert_eq!(v["data"]["kind"], "general", "{body}");
            }
            EventType::KeyCreated if v["data"]["kind"] == "user_token" => {
                assert_eq!(v["data"]["owner"], "PUSER7", "{body}");
            }
            _ => {
                assert_eq!(v["data"]["actor"], "PADMIN1", "{body}");
                assert_eq!(v["data"]["kind"], "general", "{body}");
            }
        }
    }
}

#[test]
fn a_receiver_that_fails_hangs_and_closes_gets_every_event_with_the_same_id_on_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::options()
            .outbox(true)
            .open(dir.path().join("k.db"))
            .unwrap(),
    );
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let r = Receiver::start();
    // Down for a while: errors, a request that outlasts the timeout, a
    // connection closed without an answer, then back.
    r.script(&[
        Behave::Status(500),
        Behave::Status(503),
        Behave::Hang(Duration::from_millis(1500)),
        Behave::Close,
        Behave::Status(500),
        Behave::Hang(Duration::from_millis(1500)),
        Behave::Close,
        Behave::Status(502),
    ]);
    let mut ids = Vec::new();
    for i in 0..6 {
        let k = kr
            .create_general_key(&admin(), &format!("k{i}"), AccessLevel::ReadOnly)
            .unwrap();
        ids.push(k.record().id.to_string());
    }
    let worker = Deliverer::new(store.clone(), vec![endpoint(&r)], fast().batch(2))
        .unwrap()
        .start()
        .unwrap();
    // Changes made while the receiver is down are delivered too.
    for id in &ids {
        kr.disable(&admin(), id).unwrap();
    }
    wait_delivered(&*store, 12);
    worker.stop();
    let rows = store.outbox_rows(None, 100).unwrap();
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter().all(|r| r.status == OutboxStatus::Delivered),
        "{rows:?}"
    );
    let accepted = r.accepted();
    for row in &rows {
        assert_eq!(accepted.get(&row.event_id), Some(&1), "{}", row.event_id);
    }
    let got = r.got();
    assert!(got.iter().all(|g| g.valid), "every attempt is signed");
    assert_eq!(got.len(), 12 + 8, "one more request per scripted failure");
    // A retried event is the same event: same id, same body.
    let mut bodies: HashMap<&str, &str> = HashMap::new();
    for g in &got {
        let b = bodies.entry(&g.id).or_insert(&g.body);
        assert_eq!(*b, g.body.as_str());
    }
    let retried = rows.iter().filter(|r| r.attempts > 1).count();
    assert!(retried >= 1, "some rows were retried");
    assert_eq!(r.overlaps(), 0);
}

#[test]
fn a_receiver_down_for_good_leaves_dead_rows_that_stay_queryable() {
    let r = Receiver::start();
    r.default(Behave::Status(500));
    let store = Arc::new(OutboxStore::new(MemoryStore::new()));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    kr.create_general_key(&admin(), "x", AccessLevel::ReadOnly)
        .unwrap();
    let d = Deliverer::new(store.clone(), vec![endpoint(&r)], fast().max_attempts(3)).unwrap();
    let start = std::time::Instant::now();
    while store
        .outbox_rows(Some(OutboxStatus::Dead), 10)
        .unwrap()
        .is_empty()
    {
        d.run_once().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    let dead = store.outbox_rows(Some(OutboxStatus::Dead), 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("ops: HTTP 500"));
    assert_eq!(r.got().len(), 3);
    // A dead row is never sent again.
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(d.run_once().unwrap().claimed, 0);
    assert_eq!(r.got().len(), 3);
}

#[test]
fn an_event_older_than_the_max_age_dies_at_its_next_failure() {
    let r = Receiver::start();
    r.default(Behave::Close);
    let clock = ManualClock::new(Timestamp::now());
    let store = Arc::new(OutboxStore::new(MemoryStore::new()));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    kr.create_general_key(&admin(), "x", AccessLevel::ReadOnly)
        .unwrap();
    let d = Deliverer::new(
        store.clone(),
        vec![endpoint(&r)],
        fast().max_age(Duration::from_secs(3600)),
    )
    .unwrap()
    .clock(Arc::new(clock.clone()));
    assert_eq!(d.run_once().unwrap().retried, 1);
    clock.advance(Duration::from_secs(3601));
    assert_eq!(d.run_once().unwrap().dead, 1);
    let dead = store.outbox_rows(Some(OutboxStatus::Dead), 10).unwrap();
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("ops: connection"),
        "{dead:?}"
    );
    assert!(!dead[0].last_error.as_deref().unwrap().contains("127.0.0.1"));
}

#[test]
fn endpoints_get_only_the_events_they_asked_for_and_a_retry_skips_those_that_accepted() {
    let ok = Receiver::start();
    let flaky = Receiver::start();
    flaky.script(&[Behave::Status(500)]);
    let store = Arc::new(OutboxStore::new(MemoryStore::new()));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let k = kr
        .create_general_key(&admin(), "x", AccessLevel::ReadOnly)
        .unwrap();
    kr.disable(&admin(), &k.record().id.to_string()).unwrap();
    let a = Endpoint::new("all", &ok.url, &ok.secret_text).unwrap();
    let b = Endpoint::new("disables", &flaky.url, &flaky.secret_text)
        .unwrap()
        .events(&[EventType::KeyDisabled]);
    let d = Deliverer::new(store.clone(), vec![a, b], fast()).unwrap();
    let start = std::time::Instant::now();
    while !store
        .outbox_rows(Some(OutboxStatus::Pending), 10)
        .unwrap()
        .is_empty()
    {
        d.run_once().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    assert_eq!(ok.got().len(), 2, "created and disabled, once each");
    let f = flaky.got();
    assert_eq!(f.len(), 2, "disabled, failed then retried");
    assert!(f.iter().all(|g| g.body.contains("key.disabled")));
    let rows = store.outbox_rows(None, 10).unwrap();
    assert_eq!(rows[1].delivered_to, vec!["all", "disables"]);
    assert_eq!(rows[0].delivered_to, vec!["all"]);
}

#[test]
fn key_expiring_is_sent_once_per_key_and_expiry_however_many_workers_scan() {
    let r = Receiver::start();
    let clock = ManualClock::new(Timestamp::now());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::options().outbox(true).open(&path).unwrap());
    let other = Arc::new(SqliteStore::open(&path).unwrap());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let now = clock.now();
    let day = Duration::from_secs(86_400);
    let soon = kr
        .create(
            &admin(),
            NewKey::general("soon", AccessLevel::ReadOnly).expires_at(now.saturating_add(3 * day)),
        )
        .unwrap();
    let later = kr
        .create(
            &admin(),
            NewKey::general("later", AccessLevel::ReadOnly)
                .expires_at(now.saturating_add(30 * day)),
        )
        .unwrap();
    kr.create_general_key(&admin(), "never", AccessLevel::ReadOnly)
        .unwrap();
    let opts = fast()
        .expiring_ahead(Some(7 * day))
        .expiring_every(Duration::ZERO);
    let d1 = Deliverer::new(store.clone(), vec![endpoint(&r)], opts.clone())
        .unwrap()
        .clock(Arc::new(clock.clone()));
    let d2 = Deliverer::new(other.clone(), vec![endpoint(&r)], opts)
        .unwrap()
        .clock(Arc::new(clock.clone()));
    let expiring = |r: &Receiver| -> Vec<String> {
        received_events(r)
            .into_iter()
            .filter(|(t, _, _)| *t == EventType::KeyExpiring)
            .map(|(_, k, _)| k.unwrap())
            .collect()
    };
    let mut scanned = 0;
    for _ in 0..5 {
        scanned += d1.run_once().unwrap().expiring;
        scanned += d2.run_once().unwrap().expiring;
    }
    assert_eq!(scanned, 1);
    assert_eq!(expiring(&r), vec![soon.record().id.to_string()]);
    let v = &received_events(&r)
        .into_iter()
        .find(|(t, _, _)| *t == EventType::KeyExpiring)
        .unwrap()
        .2;
    assert!(v["data"]["expires_at"].as_str().unwrap().ends_with('Z'));
    // 25 days on, the other key is due; the first is not sent again.
    clock.advance(25 * day);
    for _ in 0..5 {
        d1.run_once().unwrap();
        d2.run_once().unwrap();
    }
    let mut got = expiring(&r);
    got.sort();
    let mut want = vec![soon.record().id.to_string(), later.record().id.to_string()];
    want.sort();
    assert_eq!(got, want);
    // Nothing more: each key had its one notice, and expired keys get none.
    clock.advance(10 * day);
    d1.run_once().unwrap();
    assert_eq!(expiring(&r).len(), 2);
}

#[test]
fn the_sqlite_outbox_is_written_in_the_changes_transaction_only_when_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    assert!(!store.outbox_enabled().unwrap());
    kr.create_general_key(&admin(), "before", AccessLevel::ReadOnly)
        .unwrap();
    assert!(store.outbox_rows(None, 10).unwrap().is_empty(), "off: none");
    // Turned on by another process's store: this one writes events too.
    let other = SqliteStore::options().outbox(true).open(&path).unwrap();
    assert!(store.outbox_enabled().unwrap());
    let k = kr
        .create_general_key(&admin(), "after", AccessLevel::ReadOnly)
        .unwrap();
    let rows = store.outbox_rows(None, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_type, EventType::KeyCreated);
    assert_eq!(rows[0].key_id, Some(k.record().id));
    // A change that fails writes no event: a duplicate insert.
    let dup = k.record().clone();
    assert!(store.insert_audited(dup, None).is_err());
    let mut audit = kr.audit_trail().pop().unwrap();
    audit.key_id = Some(k.record().id);
    assert_eq!(events_for(&audit).len(), 1);
    assert!(
        store
            .insert_audited(k.record().clone(), Some(&audit))
            .is_err()
    );
    assert_eq!(store.outbox_rows(None, 10).unwrap().len(), 1);
    other.set_outbox(false).unwrap();
    kr.disable(&admin(), &k.record().id.to_string()).unwrap();
    assert_eq!(store.outbox_rows(None, 10).unwrap().len(), 1, "off again");
}

#[test]
fn a_lost_lease_is_not_finished_and_the_row_goes_to_whoever_holds_it() {
    let shared = Arc::new(OutboxStore::new(MemoryStore::new()));
    let kr = Keyring::builder()
        .shared_store(shared.clone())
        .build()
        .unwrap();
    kr.create_general_key(&admin(), "x", AccessLevel::ReadOnly)
        .unwrap();
    let now = Timestamp::now();
    let a = shared.claim(now, Duration::from_secs(1), 10).unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        shared
            .claim(now, Duration::from_secs(1), 10)
            .unwrap()
            .is_empty(),
        "held"
    );
    let later = now.saturating_add(Duration::from_secs(2));
    let b = shared.claim(later, Duration::from_secs(1), 10).unwrap();
    assert_eq!(b.len(), 1, "the lease ran out: claimed again");
    assert_eq!(b[0].row.attempts, 2);
    let done = Finish::Delivered {
        delivered_to: vec!["ops".into()],
    };
    assert!(
        !shared.finish(&a[0], &done, later).unwrap(),
        "a's lease is lost"
    );
    assert!(shared.finish(&b[0], &done, later).unwrap());
}

#[test]
fn a_deliverer_needs_endpoints_with_distinct_names() {
    let store: Arc<dyn Outbox> = Arc::new(OutboxStore::new(MemoryStore::new()));
    assert_eq!(
        Deliverer::new(store.clone(), vec![], WorkerOptions::default()).unwrap_err(),
        WebhookError::NoEndpoints
    );
    let s = apikeys_webhooks::SigningSecret::generate().unwrap();
    let e = Endpoint::new("a", "http://127.0.0.1:1/", &s).unwrap();
    assert!(matches!(
        Deliverer::new(store, vec![e.clone(), e], WorkerOptions::default()),
        Err(WebhookError::InvalidName { .. })
    ));
}

#[test]
fn two_sqlite_stores_on_one_file_share_the_outbox_without_sending_an_event_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let a = Arc::new(SqliteStore::options().outbox(true).open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    let kr = Keyring::builder().shared_store(a.clone()).build().unwrap();
    for i in 0..40 {
        kr.create_general_key(&admin(), &format!("k{i}"), AccessLevel::ReadOnly)
            .unwrap();
    }
    let r = Receiver::start();
    r.hold(Duration::from_millis(3));
    r.script(&[Behave::Status(500); 5]);
    let workers: Vec<_> = [a.clone() as Arc<dyn Outbox>, b.clone(), a.clone(), b]
        .into_iter()
        .map(|o| {
            Deliverer::new(o, vec![endpoint(&r)], fast().batch(3))
                .unwrap()
                .start()
                .unwrap()
        })
        .collect();
    wait_delivered(&*a, 40);
    workers.into_iter().for_each(|w| w.stop());
    let accepted = r.accepted();
    for row in a.outbox_rows(None, 100).unwrap() {
        assert_eq!(accepted.get(&row.event_id), Some(&1), "{}", row.event_id);
    }
    assert_eq!(r.overlaps(), 0);
    assert_eq!(r.got().len(), 45);
}

#[test]
fn a_v3_sqlite_file_migrates_to_v4_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let id = {
        let kr = Keyring::new(SqliteStore::open(&path).unwrap());
        let k = kr
            .create_general_key(&admin(), "old", AccessLevel::ReadOnly)
            .unwrap();
        kr.disable(&admin(), &k.record().id.to_string()).unwrap();
        k.record().id
    };
    let audits = |p: &std::path::Path| -> i64 {
        rusqlite::Connection::open(p)
            .unwrap()
            .query_row("SELECT count(*) FROM apikeys_audit", [], |r| r.get(0))
            .unwrap()
    };
    let before = audits(&path);
    // Back to schema v3 exactly: v4 only added the outbox's tables.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE apikeys_outbox; DROP TABLE apikeys_outbox_expiring;
             DROP TABLE apikeys_outbox_settings; PRAGMA user_version = 3;",
        )
        .unwrap();
    let store = Arc::new(SqliteStore::options().outbox(true).open(&path).unwrap());
    let v: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 4);
    assert_eq!(apikeys_sqlite::SCHEMA_VERSION, 4);
    assert!(store.get(id).unwrap().unwrap().disabled.is_some(), "kept");
    assert_eq!(audits(&path), before, "the audit trail is kept");
    assert!(store.outbox_rows(None, 10).unwrap().is_empty());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    kr.enable(&admin(), &id.to_string()).unwrap();
    let rows = store.outbox_rows(None, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_type, EventType::KeyEnabled);
}

#[test]
fn the_in_memory_outbox_store_passes_the_store_conformance_suite() {
    apikeys::testing::conformance(|| OutboxStore::new(MemoryStore::new()));
}

#[test]
fn a_lease_shorter_than_a_request_is_refused() {
    let store: Arc<dyn Outbox> = Arc::new(OutboxStore::new(MemoryStore::new()));
    let s = apikeys_webhooks::SigningSecret::generate().unwrap();
    let e = Endpoint::new("a", "http://127.0.0.1:1/", &s).unwrap();
    let opts = WorkerOptions::default()
        .timeout(Duration::from_secs(2))
        .lease(Duration::from_secs(2));
    let err = Deliverer::new(store.clone(), vec![e.clone()], opts).unwrap_err();
    assert!(
        matches!(&err, WebhookError::InvalidOption { field: "lease", reason } if reason.contains("2250 ms")),
        "{err}"
    );
    let ok = WorkerOptions::default()
        .timeout(Duration::from_secs(2))
        .lease(Duration::from_millis(2250));
    assert!(Deliverer::new(store, vec![e], ok).is_ok());
}
