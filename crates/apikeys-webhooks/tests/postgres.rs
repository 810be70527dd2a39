//! The outbox on a real PostgreSQL server: two workers (two pools, as two
//! processes would have) drain one outbox without delivering an event twice
//! at once and without losing one; SIGKILL mid-change and mid-delivery; an
//! existing database migrates to schema v3 and keeps its data.
//!
//! Needs `APIKEYS_TEST_POSTGRES_URL` (`source scripts/services.sh`): these
//! tests fail, never skip, without it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apikeys::{AccessLevel, Actor, AuditEvent, KeyStore, Keyring, Role};
use apikeys_postgres::PostgresStore;
use apikeys_webhooks::{
    Deliverer, Endpoint, EventType, Outbox, OutboxStatus, SendError, Transport, UreqTransport,
};
use common::crash::{self, PLACE, SECRET, URL};
use common::{Behave, Receiver};

fn url() -> String {
    std::env::var("APIKEYS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "APIKEYS_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a real server. \
             Run `bash scripts/test.sh`, or `source scripts/services.sh` in bash first."
        )
    })
}

fn fresh_schema() -> String {
    let n = apikeys::KeyId::generate().unwrap().as_u64();
    format!("w_{n:016x}")
}

fn store(schema: &str, outbox: bool) -> PostgresStore {
    PostgresStore::options()
        .schema(schema)
        .pool_size(4)
        .outbox(outbox)
        .connect(&url())
        .unwrap()
}

fn raw(schema: &str) -> postgres::Client {
    let mut c = postgres::Client::connect(&url(), postgres::NoTls).unwrap();
    c.batch_execute(&format!("SET search_path TO {schema}"))
        .unwrap();
    c
}

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn trail(schema: &str) -> Vec<AuditEvent> {
    raw(schema)
        .query("SELECT event FROM apikeys_audit", &[])
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
}

#[test]
#[ignore = "a helper: run by the SIGKILL tests in a child process"]
fn child_manage() {
    let Ok(schema) = std::env::var(PLACE) else {
        return;
    };
    crash::manage_until_killed(&Keyring::new(store(&schema, true)));
}

#[test]
#[ignore = "a helper: run by the SIGKILL tests in a child process"]
fn child_deliver() {
    let Ok(schema) = std::env::var(PLACE) else {
        return;
    };
    crash::deliver_until_killed(Arc::new(store(&schema, false)));
}

/// Counts the requests one worker sent.
struct Counting(Arc<AtomicUsize>, UreqTransport);

impl Transport for Counting {
    fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(), SendError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1.post(url, headers, body)
    }
}

#[test]
fn postgres_two_workers_drain_one_outbox_never_sending_an_event_twice_at_once() {
    let schema = fresh_schema();
    let a = Arc::new(store(&schema, true));
    let b = Arc::new(store(&schema, false)); // another pool, as another process
    let kr = Keyring::builder().shared_store(a.clone()).build().unwrap();
    for i in 0..100 {
        let k = kr
            .create_general_key(&admin(), &format!("k{i}"), AccessLevel::ReadOnly)
            .unwrap();
        kr.disable(&admin(), &k.record().id.to_string()).unwrap();
    }
    let r = Receiver::start();
    r.hold(Duration::from_millis(3));
    r.script(&[Behave::Status(500); 20]);
    let mut workers = Vec::new();
    let mut counts = Vec::new();
    for outbox in [
        a.clone() as Arc<dyn Outbox>,
        b.clone(),
        a.clone(),
        b.clone(),
    ] {
        let n = Arc::new(AtomicUsize::new(0));
        counts.push(n.clone());
        let t = Arc::new(Counting(n, UreqTransport::new(Duration::from_secs(2))));
        let e = Endpoint::new("ops", &r.url, &r.secret_text).unwrap();
        let opts = crash::crash_options()
            .timeout(Duration::from_secs(2))
            .lease(Duration::from_secs(10));
        workers.push(
            Deliverer::new(outbox, vec![e], opts)
                .unwrap()
                .transport(t)
                .start()
                .unwrap(),
        );
    }
    let start = Instant::now();
    while !a
        .outbox_rows(Some(OutboxStatus::Pending), 1)
        .unwrap()
        .is_empty()
    {
        assert!(start.elapsed() < Duration::from_secs(60), "not drained");
        std::thread::sleep(Duration::from_millis(20));
    }
    workers.into_iter().for_each(|w| w.stop());
    let rows = a.outbox_rows(None, 1000).unwrap();
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(|r| r.status == OutboxStatus::Delivered));
    let accepted = r.accepted();
    for row in &rows {
        assert_eq!(
            accepted.get(&row.event_id),
            Some(&1),
            "{} accepted other than once",
            row.event_id
        );
    }
    assert_eq!(
        r.overlaps(),
        0,
        "two workers sent one event at the same time"
    );
    assert!(r.got().iter().all(|g| g.valid));
    assert_eq!(r.got().len(), 220, "200 events, 20 failed attempts retried");
    let sent: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    eprintln!("requests per worker: {sent:?}");
    assert!(
        sent.iter().filter(|n| **n > 0).count() >= 2,
        "the work was shared: {sent:?}"
    );
}

#[test]
fn postgres_changes_and_their_events_survive_sigkill_together() {
    let schema = fresh_schema();
    drop(store(&schema, true));
    for _ in 0..3 {
        let child = crash::spawn("child_manage", &[(PLACE, &schema)]);
        crash::kill_within(child, 500..2500);
    }
    let s = store(&schema, false);
    let rows = s.outbox_rows(None, usize::MAX).unwrap();
    crash::changes_match_events(&trail(&schema), &rows);
}

#[test]
fn postgres_a_delivery_worker_killed_mid_stream_loses_nothing() {
    let schema = fresh_schema();
    let s = Arc::new(store(&schema, true));
    let kr = Keyring::builder().shared_store(s.clone()).build().unwrap();
    for i in 0..30 {
        let k = kr
            .create_general_key(&admin(), &format!("k{i}"), AccessLevel::ReadOnly)
            .unwrap();
        kr.disable(&admin(), &k.record().id.to_string()).unwrap();
    }
    let r = Receiver::start();
    r.hold(Duration::from_millis(20));
    let child = crash::spawn(
        "child_deliver",
        &[(PLACE, &schema), (URL, &r.url), (SECRET, &r.secret_text)],
    );
    r.wait_for(
        Duration::from_secs(30),
        "the child's first deliveries",
        |g| g.len() >= 8,
    );
    crash::kill_within(child, 1..40);
    let e = Endpoint::new("ops", &r.url, &r.secret_text).unwrap();
    let d = Deliverer::new(s.clone(), vec![e], crash::crash_options()).unwrap();
    let start = Instant::now();
    while !s
        .outbox_rows(Some(OutboxStatus::Pending), 1)
        .unwrap()
        .is_empty()
    {
        d.run_once().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert!(start.elapsed() < Duration::from_secs(30), "not drained");
    }
    let rows = s.outbox_rows(None, 1000).unwrap();
    assert_eq!(rows.len(), 60);
    let accepted = r.accepted();
    for row in &rows {
        assert_eq!(row.status, OutboxStatus::Delivered);
        assert!(
            accepted.contains_key(&row.event_id),
            "lost {}",
            row.event_id
        );
    }
    assert_eq!(r.overlaps(), 0);
}

#[test]
fn postgres_a_v2_database_migrates_to_v3_and_keeps_its_data() {
    let schema = fresh_schema();
    let (id, audits) = {
        let s = store(&schema, false);
        let kr = Keyring::new(s);
        let k = kr
            .create_general_key(&admin(), "old", AccessLevel::ReadOnly)
            .unwrap();
        kr.disable(&admin(), &k.record().id.to_string()).unwrap();
        (k.record().id, trail(&schema).len())
    };
    // Back to schema v2 exactly: v3 only added the outbox's tables.
    raw(&schema)
        .batch_execute(
            "DROP TABLE apikeys_outbox, apikeys_outbox_expiring, apikeys_outbox_settings;
             UPDATE apikeys_schema_version SET version = 2;",
        )
        .unwrap();
    let s = Arc::new(store(&schema, true));
    let v: i32 = raw(&schema)
        .query_one("SELECT max(version) FROM apikeys_schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, apikeys_postgres::SCHEMA_VERSION);
    assert_eq!(v, 3);
    let r = s.get(id).unwrap().expect("the key is kept");
    assert!(r.disabled.is_some());
    assert_eq!(trail(&schema).len(), audits, "the audit trail is kept");
    assert!(s.outbox_rows(None, 10).unwrap().is_empty());
    let kr = Keyring::builder().shared_store(s.clone()).build().unwrap();
    kr.enable(&admin(), &id.to_string()).unwrap();
    let rows = s.outbox_rows(None, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_type, EventType::KeyEnabled);
}
