//! The hot path: SHA-256 alone (the floor) beside verification and authentication,
//! in one run so the ratios compare like with like.
//!
//! `cargo bench -p apikeys-benches --bench hot_path`

use std::hint::black_box;
use std::time::{Duration, Instant};

use apikeys::{KeyHasher, KeyKind, KeyStore, Request};
use apikeys_benches::{fixture, next_index};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

const KEYS: usize = 1_000_000;
/// How many distinct keys the hot benches cycle through: a busy service sees a
/// working set of active keys, not a uniform draw over every key ever made.
/// (`verify_valid_scattered` walks all 1,000,000 instead.)
const ACTIVE: usize = 1_024;

/// Parse, digest, one store lookup, constant-time compare: what verifying a key costs.
#[inline]
fn verify(store: &dyn KeyStore, hasher: &KeyHasher, token: &str) -> bool {
    let Ok(_kind) = KeyKind::parse(token) else {
        return false;
    };
    let d = hasher.digest(token.as_bytes());
    match store.find_by_digest(&d) {
        Ok(Some(found)) => found.record.digest.ct_eq(&d).into(),
        _ => false,
    }
}

fn hot_path(c: &mut Criterion) {
    // APIKEYS_BENCH_KEYS overrides the store size (for quick profiling runs).
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
    let unknown: Vec<String> = (0..1024)
        .map(|_| KeyKind::General.generate().unwrap().expose().to_owned())
        .collect();
    let get = Request::rest("GET");

    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("sha256_raw", |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            let out: [u8; 32] = Sha256::digest(black_box(active[i].as_bytes())).into();
            black_box(out)
        })
    });
    g.bench_function("key_digest", |b| {
        // What apikeys itself spends on hashing a key (one-block SHA-256 fast path).
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            black_box(hasher.digest(black_box(active[i].as_bytes())))
        })
    });
    g.bench_function("verify_valid", |b| {
        b.iter(|| {
            i = (i + 1) % ACTIVE;
            assert!(verify(store, &hasher, black_box(&active[i])));
        })
    });
    g.bench_function("verify_valid_one_key", |b| {
        let key = &active[0];
        b.iter(|| assert!(verify(store, &hasher, black_box(key))))
    });
    g.bench_function("authenticate_valid_one_key", |b| {
        let key = &active[0];
        b.iter(|| assert!(fx.keyring.authenticate(black_box(key), &get).is_ok()))
    });
    g.bench_function("authenticate_valid", |b| {
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
    g.bench_function("verify_malformed", |b| {
        // Right length, a '+' in the middle: refused by the parser, nothing hashed.
        let bad = "abcdefghij+123456789";
        b.iter(|| assert!(!verify(store, &hasher, black_box(bad))))
    });
    g.bench_function("verify_unknown", |b| {
        b.iter(|| {
            i = next_index(i, unknown.len());
            assert!(!verify(store, &hasher, black_box(&unknown[i])));
        })
    });
    g.finish();

    // Two threads verifying against one store, beside one thread doing the same.
    // Each reports elements (verifications) per second; the ratio is the scaling.
    let mut g = c.benchmark_group("threads");
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(format!("verify_valid_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let keys = &active;
                        let hasher = &hasher;
                        s.spawn(move || {
                            let mut j = t * ACTIVE / 2;
                            for _ in 0..iters {
                                j = (j + 1) % ACTIVE;
                                assert!(verify(store, hasher, black_box(&keys[j])));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = hot_path
}
criterion_main!(benches);
