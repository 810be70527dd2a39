//! `Keyring::authenticate` on each store, in one run so the ratios compare like
//! with like: `MemoryStore`, then SQLite and PostgreSQL warm (answered by their
//! in-process cache) and cold (cache off: every call reads the database).
//!
//! ```text
//! source scripts/services.sh   # starts PostgreSQL, sets APIKEYS_TEST_POSTGRES_URL
//! cargo bench -p apikeys-sqlite --bench authenticate
//! ```
//!
//! Without `APIKEYS_TEST_POSTGRES_URL` the PostgreSQL rows are left out (and say so).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use apikeys::{AccessLevel, Actor, KeyStore, Keyring, MemoryStore, Request, Role};
use apikeys_postgres::PostgresStore;
use apikeys_sqlite::SqliteStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Keys in each store, and how many of them the benches cycle through.
const KEYS: usize = 2_000;
const ACTIVE: usize = 256;

fn tokens(kr: &Keyring) -> Vec<String> {
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    (0..KEYS)
        .map(|i| {
            kr.create_general_key(&admin, &format!("bench {i}"), AccessLevel::FullAccess)
                .expect("create")
                .secret()
                .expose()
                .to_owned()
        })
        .take(ACTIVE)
        .collect()
}

fn bench_store(c: &mut Criterion, group: &str, name: &str, store: impl KeyStore + 'static) {
    let kr = Keyring::new(store);
    let tokens = tokens(&kr);
    let get = Request::rest("GET");
    // Warm whatever cache there is.
    for t in &tokens {
        kr.authenticate(t, &get).expect("valid key");
    }
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            black_box(kr.authenticate(black_box(&tokens[i]), &get)).expect("valid key");
        })
    });
    g.finish();
}

fn fresh_schema() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn authenticate(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = std::env::var("APIKEYS_TEST_POSTGRES_URL").ok();
    if pg.is_none() {
        eprintln!(
            "APIKEYS_TEST_POSTGRES_URL is not set: PostgreSQL left out (source scripts/services.sh)"
        );
    }

    bench_store(c, "authenticate_warm", "memory", MemoryStore::new());
    bench_store(
        c,
        "authenticate_warm",
        "sqlite_cached",
        SqliteStore::open(dir.path().join("warm.db")).expect("open"),
    );
    if let Some(url) = &pg {
        bench_store(
            c,
            "authenticate_warm",
            "postgres_cached",
            PostgresStore::options()
                .schema(&fresh_schema())
                .connect(url)
                .expect("connect"),
        );
    }

    bench_store(c, "authenticate_cold", "memory", MemoryStore::new());
    bench_store(
        c,
        "authenticate_cold",
        "sqlite_uncached",
        SqliteStore::options()
            .cache(false)
            .open(dir.path().join("cold.db"))
            .expect("open"),
    );
    if let Some(url) = &pg {
        bench_store(
            c,
            "authenticate_cold",
            "postgres_uncached",
            PostgresStore::options()
                .cache(false)
                .schema(&fresh_schema())
                .connect(url)
                .expect("connect"),
        );
    }
}

criterion_group!(benches, authenticate);
criterion_main!(benches);
