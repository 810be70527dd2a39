//! The hot path: SHA-256 alone (the floor) beside verification and
//! authentication, all in one run so the ratios compare like with like.
//!
//! `cargo bench -p apikeys-benches --bench hot_path`
//!
//! The store holds 1,000,000 general keys (`APIKEYS_BENCH_KEYS` changes that).
//! Three access patterns:
//! - `verify_valid`, `authenticate_valid`, `authenticate_rotating`,
//!   `authenticate_limited*`: one key, again and again — its data is in cache, as the floor's input is, so the
//!   difference is the work apikeys adds. `authenticate_rotating` is a general
//!   key in a rotation's overlap (rotated with a 30-day grace, its successor
//!   never used): beside `authenticate_valid`, it reads off what the rotation
//!   check adds. `authenticate_valid_metrics` is `authenticate_valid` on a
//!   keyring with verification metrics installed (`KeyringBuilder::metrics`):
//!   beside `authenticate_valid` (metrics off), it reads off what counting
//!   the answer and timing it costs. `authenticate_limited` is a general
//!   key under PagerDuty's limits with the in-process limiter (its own budget);
//!   `…_user_token` counts in its owner's budget and `…_scoped` in its
//!   account's (those buckets are found by hashing their names);
//! - `…_1024_active`: 1,024 keys spread over the store, in turn (a busy
//!   service's working set); adds the cache misses of reaching their records;
//! - `verify_valid_scattered`: every key of the store in a scattered order:
//!   each lookup goes to main memory.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apikeys::{
    AccessLevel, Actor, AuthMetrics, Clock, KeyHasher, KeyKind, KeyStore, Keyring, RateLimits,
    Request, Role, SystemClock, Timestamp,
};
use apikeys_benches::{ACCOUNT, admin, fixture, next_index};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

const KEYS: usize = 1_000_000;
const ACTIVE: usize = 1_024;

/// Parse, digest, one store lookup, constant-time compare: what verifying a
/// key costs. The record is read where it lies, as `Keyring::authenticate`
/// reads it (`find_by_digest_with`: no reference count written).
#[inline]
fn verify(store: &dyn KeyStore, hasher: &KeyHasher, token: &str) -> bool {
    let Ok(_kind) = KeyKind::parse(token) else {
        return false;
    };
    let d = hasher.digest(token.as_bytes());
    let mut ok = false;
    let found = store.find_by_digest_with(&d, &mut |found| {
        ok = found.is_some_and(|f| f.record.digest.ct_eq(&d).into());
    });
    found.is_ok() && ok
}

/// A clock 63 ms further on at every reading: one key read in a loop then makes
/// at most 953 requests per simulated minute, just under PagerDuty's 960, so the
/// limiter takes its admit path every time (with the real clock the loop would
/// exhaust the budget within a millisecond and measure refusals). It reads the
/// real clock too, so it costs what [`SystemClock`] costs, plus a plain load
/// and store (no atomic read-modify-write: only one thread reads it).
struct TickingClock(AtomicU64);

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        let ticks = self.0.load(Ordering::Relaxed);
        self.0.store(ticks + 1, Ordering::Relaxed);
        Timestamp::from_unix_millis(SystemClock.now().unix_millis() + 63 * ticks)
    }
}

/// Authenticate on a keyring with limits and read the status in place, as a
/// server does when it sets the `ratelimit-*` headers.
#[inline(always)]
fn limited_remaining(keyring: &Keyring, token: &str, request: &Request) {
    let r = keyring.authenticate(token, request);
    let remaining = r
        .as_ref()
        .ok()
        .and_then(|p| p.rate_limit())
        .map(|s| s.remaining);
    assert!(black_box(remaining).is_some());
}

fn hot_path(c: &mut Criterion) {
    let keys = std::env::var("APIKEYS_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KEYS);
    let fx = fixture(keys.max(ACTIVE));
    let hasher = KeyHasher::sha256();
    let store: &dyn KeyStore = &*fx.store;
    let n = fx.keys.len();
    // Every 977th key: spread over the whole store, not its first inserts.
    let active: Vec<String> = (0..ACTIVE).map(|j| fx.keys[j * 977 % n].clone()).collect();
    let one = &active[0];
    let unknown: Vec<String> = (0..ACTIVE)
        .map(|_| KeyKind::General.generate().unwrap().expose().to_owned())
        .collect();
    let limited = Keyring::builder()
        .shared_store(fx.store.clone())
        .clock(TickingClock(AtomicU64::new(0)))
        .rate_limits(RateLimits::pagerduty())
        .build()
        .unwrap();
    let get = Request::rest("GET");
    let manager = Actor::new(ACCOUNT, "PBENCHMANAGER", Role::Manager);
    let user_token = limited.create_user_token(&manager, "bench").unwrap();
    let scoped = limited
        .create_scoped_token(&manager, "bench", &["incidents.read"])
        .unwrap();
    let read_incidents = Request::rest("GET").with_scope("incidents.read").unwrap();
    // A key in its overlap: rotated with a long grace, its successor not used.
    let rotating = fx
        .keyring
        .create_general_key(&admin(), "bench rotating", AccessLevel::FullAccess)
        .unwrap();
    let _successor = fx
        .keyring
        .rotate(
            &admin(),
            &rotating.record().id.to_string(),
            Duration::from_secs(30 * 86_400),
        )
        .unwrap();
    let rotating = rotating.secret().expose();
    assert!(
        fx.keyring
            .authenticate(rotating, &get)
            .unwrap()
            .record()
            .rotated_to()
            .is_some()
    );

    // The same store, with verification metrics on.
    let metrics = Arc::new(AuthMetrics::new());
    let metered = Keyring::builder()
        .shared_store(fx.store.clone())
        .metrics(metrics.clone())
        .build()
        .unwrap();

    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sha256_raw", |b| {
        b.iter(|| {
            let out: [u8; 32] = Sha256::digest(black_box(one.as_bytes())).into();
            black_box(out)
        })
    });
    g.bench_function("key_digest", |b| {
        b.iter(|| black_box(hasher.digest(black_box(one.as_bytes()))))
    });
    g.bench_function("verify_valid", |b| {
        b.iter(|| assert!(verify(store, &hasher, black_box(one))))
    });
    g.bench_function("authenticate_valid", |b| {
        b.iter(|| assert!(fx.keyring.authenticate(black_box(one), &get).is_ok()))
    });
    g.bench_function("authenticate_valid_metrics", |b| {
        b.iter(|| assert!(metered.authenticate(black_box(one), &get).is_ok()))
    });
    g.bench_function("authenticate_rotating", |b| {
        b.iter(|| assert!(fx.keyring.authenticate(black_box(rotating), &get).is_ok()))
    });
    g.bench_function("authenticate_limited", |b| {
        b.iter(|| limited_remaining(&limited, black_box(one), &get))
    });
    g.bench_function("authenticate_limited_user_token", |b| {
        let token = user_token.secret().expose();
        b.iter(|| limited_remaining(&limited, black_box(token), &get))
    });
    g.bench_function("authenticate_limited_scoped", |b| {
        let token = scoped.secret().expose();
        b.iter(|| limited_remaining(&limited, black_box(token), &read_incidents))
    });
    g.bench_function("verify_malformed", |b| {
        // Right length, a '+' in the middle: refused by the parser, nothing hashed.
        let bad = "abcdefghij+123456789";
        b.iter(|| assert!(!verify(store, &hasher, black_box(bad))))
    });
    let mut i = 0;
    g.bench_function("verify_unknown", |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            assert!(!verify(store, &hasher, black_box(&unknown[i])));
        })
    });
    g.bench_function("sha256_raw_1024_active", |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            let out: [u8; 32] = Sha256::digest(black_box(active[i].as_bytes())).into();
            black_box(out)
        })
    });
    g.bench_function("verify_valid_1024_active", |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            assert!(verify(store, &hasher, black_box(&active[i])));
        })
    });
    g.bench_function("authenticate_valid_1024_active", |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            assert!(fx.keyring.authenticate(black_box(&active[i]), &get).is_ok())
        })
    });
    g.bench_function("verify_valid_scattered", |b| {
        b.iter(|| {
            i = next_index(i, n);
            assert!(verify(store, &hasher, black_box(&fx.keys[i])));
        })
    });
    g.finish();
    // Only when its bench ran (a filter such as `-- threads` skips it).
    if metrics.snapshot().total() == 0 {
        eprintln!("authenticate_valid_metrics did not run (filtered out)");
    }

    // Two threads verifying against one store, beside one thread doing the same.
    // Each reports elements (verifications) per second; the ratio is the scaling.
    // Three workloads: the 1,024 active keys (`verify_valid`), one key both
    // threads share (`verify_hot`: the worst case for any shared write on the
    // read path) and keys scattered over the whole store (`verify_scattered`:
    // every lookup goes to memory); and `authenticate_hot`, the whole
    // authentication of the one shared key.
    let mut g = c.benchmark_group("threads");
    let hot = vec![one.clone()];
    let workloads: [(&str, &[String]); 4] = [
        ("verify_valid", &active),
        ("verify_hot", &hot),
        ("verify_scattered", &fx.keys),
        // The whole `Keyring::authenticate` on the one shared key: its
        // `Principal` keeps the record, so this adds the one shared write
        // that remains, the record's reference count.
        ("authenticate_hot", &hot),
    ];
    let (keyring, get) = (&fx.keyring, &get);
    for (name, keys) in workloads {
        let whole = name.starts_with("authenticate");
        for threads in [1usize, 2] {
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_function(format!("{name}_{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let hasher = &hasher;
                            s.spawn(move || {
                                let len = keys.len();
                                let mut j = t * len / 2;
                                for _ in 0..iters {
                                    j = if len > ACTIVE {
                                        next_index(j, len)
                                    } else {
                                        (j + 1) % len
                                    };
                                    let token = black_box(&keys[j]);
                                    if whole {
                                        assert!(keyring.authenticate(token, get).is_ok());
                                    } else {
                                        assert!(verify(store, hasher, token));
                                    }
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = hot_path
}
criterion_main!(benches);
