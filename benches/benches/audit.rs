//! `Keyring::audit_records` on a durable trail of 1,000,000 records: one page
//! (at most 100 records, newest first) of one account in a 1-day window,
//! and the same filtered by key id and by action, on SQLite and PostgreSQL.
//!
//! Each for a typical and for a large account (below): `account_day` (the
//! default query: the last day), `key_day` and `action_day` (the same, of
//! one key; of `rotate` records only), `account_day_month_ago` (a day 30
//! days back), `account_31_days` (the widest window); and for the large
//! account `account_31_days_month_ago` (the widest window, a month back)
//! and `account_31_days_page_10` (the last 31 days' tenth page, by cursor).
//!
//! ```text
//! source scripts/services.sh   # starts PostgreSQL, sets APIKEYS_TEST_POSTGRES_URL
//! cargo bench -p apikeys-benches --bench audit
//! ```
//!
//! Without `APIKEYS_TEST_POSTGRES_URL` the PostgreSQL rows are left out (and say so).
//! `APIKEYS_BENCH_AUDIT_RECORDS` changes the trail's size.
//!
//! The trail: 1,000,000 records over the 60 days before 2026-12-01T00:00Z,
//! ids in time order, as a trail is written. 10% belong to one large
//! account (`acct0000`: 100,000 records, about 1,700 a day, 500 keys, so a
//! day's page is full); the rest are spread over 999 accounts (about 900
//! records each, 15 a day, 20 keys). Actions: create 30%, rotate 15%,
//! disable 10%, delete 10%, enable 5%, set_user_role 5%, end_rotation 3%,
//! remove_user 2%, set_account 1%, refused calls 19%. The keyring's clock
//! stands at the end of the trail, so a query without `since` asks for its
//! last day (the default window).
//!
//! The rows are written with SQL straight into `apikeys_audit` (each event
//! encoded with `serde_json`, as the stores encode it), in one transaction
//! (SQLite) or one `COPY` (PostgreSQL, then `VACUUM ANALYZE`, as autovacuum
//! would after so many inserts).
//! The SQLite file is kept under `target/apikeys-bench-audit/`, named by the
//! fixture's version, its size and a hash of the store's schema, so a rerun
//! opens it at once; a new schema or fixture builds a new file (and removes
//! the old ones).

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apikeys::store::rows::{id_value, millis};
use apikeys::{
    AuditAction, AuditEvent, AuditOutcome, AuditQuery, CallContext, Clock, FieldChange, KeyId,
    KeyKind, KeyStore, Keyring, Role, Timestamp,
};
use apikeys_postgres::PostgresStore;
use apikeys_sqlite::SqliteStore;
use criterion::{Criterion, criterion_group, criterion_main};

/// Bump when the generated records change: cached files of older versions are rebuilt.
const FIXTURE_VERSION: u32 = 1;
const RECORDS: u64 = 1_000_000;
const ACCOUNTS: u64 = 1_000;
const DAYS: u64 = 60;
const DAY_MS: u64 = 86_400_000;
/// 2026-12-01T00:00:00Z: the trail ends here; the keyring's clock stands here.
const END_MS: u64 = 1_796_083_200_000;
/// The large account (10% of the records) and a typical one.
const LARGE: u64 = 0;
const TYPICAL: u64 = 500;

/// The trail's last moment, always.
struct Fixed(Timestamp);

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        self.0
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn account_name(a: u64) -> String {
    format!("acct{a:04}")
}

fn keys_of(a: u64) -> u64 {
    if a == LARGE { 500 } else { 20 }
}

fn key_of(a: u64, k: u64) -> KeyId {
    KeyId::from_u64(splitmix((a << 32) | k))
}

/// Record `i` of `n` (its id is `i + 1`).
fn event(i: u64, n: u64) -> AuditEvent {
    let r = splitmix(i ^ 0x5EED);
    let a = if r % 10 == 0 {
        LARGE
    } else {
        1 + (r >> 8) % (ACCOUNTS - 1)
    };
    let start = END_MS - DAYS * DAY_MS;
    let at = Timestamp::from_unix_millis(start + i * (DAYS * DAY_MS) / n);
    let key = key_of(a, (r >> 20) % keys_of(a));
    let user = format!("PU{a:04}{:04}", (r >> 32) % if a == LARGE { 50 } else { 5 });
    let context = CallContext::new()
        .request_id(&format!("req-{:016x}", splitmix(r)))
        .remote_address(&format!(
            "10.{}.{}.{}",
            a % 250,
            (r >> 44) % 250,
            (r >> 52) % 250
        ));
    let mut e = AuditEvent {
        id: 0,
        at,
        account: account_name(a),
        actor: user.clone(),
        actor_role: Some(Role::Admin),
        action: AuditAction::Create,
        key_kind: Some(KeyKind::General),
        key_id: Some(key),
        subject_user: None,
        changes: Vec::new(),
        context,
        outcome: AuditOutcome::Allowed,
    };
    let change = |f: &str, b: &str, v: &str| FieldChange::new(f, Some(b.into()), Some(v.into()));
    match (r >> 40) % 100 {
        0..30 => {}
        30..40 => {
            e.action = AuditAction::Disable;
            e.changes = vec![change("disabled", "false", "true")];
        }
        40..45 => {
            e.action = AuditAction::Enable;
            e.changes = vec![change("disabled", "true", "false")];
        }
        45..55 => {
            e.action = AuditAction::Delete;
            e.changes = vec![change("deleted", "false", "true")];
        }
        55..70 => {
            e.action = AuditAction::Rotate;
            let until = (at.unix_millis() + 7 * DAY_MS).to_string();
            e.changes = vec![
                FieldChange::new("rotated_to", None, Some(key_of(a, 1 << 20 | i).to_string())),
                FieldChange::new("overlap_until", None, Some(until)),
            ];
        }
        70..73 => {
            e.action = AuditAction::EndRotation;
            e.changes = vec![change("overlap_until", "1796000000000", "1795000000000")];
        }
        73..78 => {
            e.action = AuditAction::SetUserRole;
            e.actor = "system".into();
            e.actor_role = None;
            e.key_kind = None;
            e.key_id = None;
            e.subject_user = Some(user);
            e.changes = vec![change("role", "user", "manager")];
        }
        78..80 => {
            e.action = AuditAction::RemoveUser;
            e.actor = "system".into();
            e.actor_role = None;
            e.key_kind = None;
            e.key_id = None;
            e.subject_user = Some(user);
            e.changes = vec![change("removed", "false", "true")];
        }
        80..81 => {
            e.action = AuditAction::SetAccount;
            e.actor = "system".into();
            e.actor_role = None;
            e.key_kind = None;
            e.key_id = None;
            e.changes = vec![change("rest_api", "false", "true")];
        }
        _ => {
            e.action = [
                AuditAction::Get,
                AuditAction::List,
                AuditAction::Create,
                AuditAction::Delete,
                AuditAction::Rotate,
            ][((r >> 48) % 5) as usize];
            e.actor_role = Some(Role::Responder);
            e.outcome = AuditOutcome::Refused {
                error: "not_permitted".into(),
                reason: "a responder may not manage this account's general keys".into(),
            };
        }
    }
    e
}

fn records() -> u64 {
    std::env::var("APIKEYS_BENCH_AUDIT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RECORDS)
}

/// The columns of `apikeys_audit` as the stores write them (the id is the
/// row's number, 1 up, in time order).
fn row(i: u64, n: u64) -> (String, i64, String, &'static str, Option<i64>, String) {
    let e = event(i, n);
    let json = serde_json::to_string(&e).expect("encode");
    (
        e.account,
        millis(e.at),
        e.actor,
        e.action.as_str(),
        e.key_id.map(id_value),
        json,
    )
}

fn stable_hash(s: &str) -> u64 {
    // FNV-1a: the same on every build, unlike std's hasher.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn schema_of(conn: &rusqlite::Connection) -> String {
    let mut st = conn
        .prepare("SELECT coalesce(sql, '') FROM sqlite_master ORDER BY type, name")
        .expect("schema");
    let rows = st.query_map([], |r| r.get::<_, String>(0)).expect("schema");
    rows.map(|r| r.expect("schema"))
        .collect::<Vec<_>>()
        .join(";\n")
}

/// `target/` (the bench runs as `target/<profile>/deps/audit-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The SQLite file with the trail: the cached one, or a new one.
fn sqlite_fixture(n: u64) -> PathBuf {
    let scratch = tempfile::tempdir().expect("temp dir");
    let fresh = scratch.path().join("schema.db");
    drop(SqliteStore::open(&fresh).expect("open"));
    let schema = schema_of(&rusqlite::Connection::open(&fresh).expect("open"));
    let dir = target_dir().join("apikeys-bench-audit");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let name = format!(
        "audit-v{FIXTURE_VERSION}-{n}-{:016x}.db",
        stable_hash(&schema)
    );
    let path = dir.join(&name);
    if path.exists() {
        eprintln!("audit: SQLite trail cached at {}", path.display());
        return path;
    }
    // Older fixtures take half a gigabyte each: keep only the one in use.
    for old in std::fs::read_dir(&dir).expect("fixture dir").flatten() {
        let f = old.file_name();
        if f.to_string_lossy().starts_with("audit-") {
            let _ = std::fs::remove_file(old.path());
        }
    }
    let t = Instant::now();
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    drop(SqliteStore::open(&tmp).expect("open"));
    let mut conn = rusqlite::Connection::open(&tmp).expect("open");
    conn.execute_batch("PRAGMA synchronous = OFF")
        .expect("pragma");
    let tx = conn.transaction().expect("begin");
    {
        let mut st = tx
            .prepare(
                "INSERT INTO apikeys_audit (id, account, at, actor, action, key_id, event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        for i in 0..n {
            let (account, at, actor, action, key_id, json) = row(i, n);
            st.execute(rusqlite::params![
                (i + 1) as i64,
                account,
                at,
                actor,
                action,
                key_id,
                json
            ])
            .expect("insert");
        }
    }
    tx.commit().expect("commit");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);
    std::fs::rename(&tmp, &path).expect("rename");
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.tmp{ext}")));
    }
    eprintln!(
        "audit: SQLite trail of {n} records built in {:.1} s at {}",
        t.elapsed().as_secs_f64(),
        path.display()
    );
    path
}

/// Write the trail into `schema` (made by the store) with one `COPY`.
fn postgres_fixture(url: &str, schema: &str, n: u64) {
    let t = Instant::now();
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let mut w = client
        .copy_in(&format!(
            "COPY {schema}.apikeys_audit (id, account, at, actor, action, key_id, event)
             FROM STDIN WITH (FORMAT csv)"
        ))
        .expect("copy");
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let (account, at, actor, action, key_id, json) = row(i, n);
        let key = key_id.map(|k| k.to_string()).unwrap_or_default();
        writeln!(
            buf,
            "{},{},{at},{},{action},{key},{}",
            i + 1,
            quote(&account),
            quote(&actor),
            quote(&json)
        )
        .expect("write");
        if buf.len() > (1 << 20) {
            w.write_all(&buf).expect("copy");
            buf.clear();
        }
    }
    w.write_all(&buf).expect("copy");
    w.finish().expect("copy");
    client
        .execute(
            &format!("SELECT setval('{schema}.apikeys_audit_id_seq', $1)"),
            &[&(n as i64)],
        )
        .expect("sequence");
    client
        .batch_execute(&format!("VACUUM ANALYZE {schema}.apikeys_audit"))
        .expect("vacuum");
    eprintln!(
        "audit: PostgreSQL trail of {n} records written in {:.1} s (schema {schema})",
        t.elapsed().as_secs_f64()
    );
}

fn keyring(store: impl KeyStore + 'static) -> Keyring {
    Keyring::builder()
        .store(store)
        .clock(Fixed(Timestamp::from_unix_millis(END_MS)))
        .build()
        .expect("keyring")
}

/// The pages measured: (name, query).
fn queries() -> Vec<(&'static str, AuditQuery)> {
    let page = |a: u64| AuditQuery {
        limit: 100,
        ..AuditQuery::account(&account_name(a))
    };
    let mut out = Vec::new();
    for (suffix, a) in [("typical", TYPICAL), ("large", LARGE)] {
        let name = |what: &str| -> &'static str { format!("{what}_{suffix}").leak() };
        out.push((name("account_day"), page(a)));
        out.push((
            name("key_day"),
            AuditQuery {
                key_id: Some(key_of(a, 7)),
                ..page(a)
            },
        ));
        out.push((
            name("action_day"),
            AuditQuery {
                actions: vec![AuditAction::Rotate],
                ..page(a)
            },
        ));
        // A day a month back: newer records of the account come first by id.
        let until = Timestamp::from_unix_millis(END_MS - 30 * DAY_MS);
        out.push((
            name("account_day_month_ago"),
            AuditQuery {
                until: Some(until),
                ..page(a)
            },
        ));
        // The widest window a query may ask for: 31 days, up to now (the
        // default `until` is just after now).
        out.push((
            name("account_31_days"),
            AuditQuery {
                since: Some(Timestamp::from_unix_millis(END_MS + 1 - 31 * DAY_MS)),
                ..page(a)
            },
        ));
    }
    // The widest window, a month back, of the large account: its records
    // newer than the window (half the trail's) come first by id.
    out.push((
        "account_31_days_month_ago_large",
        AuditQuery {
            since: Some(Timestamp::from_unix_millis(END_MS - 60 * DAY_MS)),
            until: Some(Timestamp::from_unix_millis(END_MS - 29 * DAY_MS)),
            ..page(LARGE)
        },
    ));
    out
}

/// The 31-day query of the large account, at its tenth page (the cursor of
/// the ninth): how a page deep into a wide window costs.
fn deep_page(kr: &Keyring) -> AuditQuery {
    let mut q = queries()
        .into_iter()
        .find(|(n, _)| *n == "account_31_days_large")
        .expect("query")
        .1;
    for _ in 0..9 {
        q.cursor = kr.audit_records(&q).expect("page").next_cursor;
        assert!(q.cursor.is_some(), "the window holds ten pages");
    }
    q
}

fn bench_pages(c: &mut Criterion, group: &str, kr: &Keyring) {
    let mut queries = queries();
    queries.push(("account_31_days_page_10_large", deep_page(kr)));
    // The first call of each (the file or server cache may be cold), and what a page holds.
    for (name, q) in &queries {
        let t = Instant::now();
        let p = kr.audit_records(q).expect("page");
        eprintln!(
            "audit: {group}/{name}: {} records{}, first call {:.2} ms",
            p.records.len(),
            if p.next_cursor.is_some() {
                " (more follow)"
            } else {
                ""
            },
            t.elapsed().as_secs_f64() * 1e3
        );
        assert!(
            !p.records.is_empty(),
            "{name}: an empty page measures nothing"
        );
    }
    let mut g = c.benchmark_group(group);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(30);
    for (name, q) in &queries {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(kr.audit_records(black_box(q)).expect("page")))
        });
    }
    g.finish();
}

fn audit(c: &mut Criterion) {
    let n = records();
    let path = sqlite_fixture(n);
    bench_pages(
        c,
        "audit_sqlite",
        &keyring(SqliteStore::open(&path).expect("open")),
    );

    let Ok(url) = std::env::var("APIKEYS_TEST_POSTGRES_URL") else {
        eprintln!(
            "APIKEYS_TEST_POSTGRES_URL is not set: PostgreSQL left out (source scripts/services.sh)"
        );
        return;
    };
    let schema = format!("bench_audit_{}", std::process::id());
    let store = PostgresStore::options()
        .schema(&schema)
        .connect(&url)
        .expect("connect");
    postgres_fixture(&url, &schema, n);
    bench_pages(c, "audit_postgres", &keyring(store));
}

criterion_group!(benches, audit);
criterion_main!(benches);
