//! One rate-limit decision through Redis on loopback, beside the in-process
//! limiter, in the same run.
//!
//! `cargo bench -p apikeys-redis` (uses `APIKEYS_TEST_REDIS_URL`, or starts a
//! `redis-server` on a free loopback port).

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use apikeys::{KeyId, Limit, LocalRateLimiter, RateBucket, RateLimiter, Timestamp};
use apikeys_redis::RedisRateLimiter;
use criterion::{Criterion, criterion_group, criterion_main};

fn server() -> (String, Option<Child>) {
    if let Ok(url) = std::env::var("APIKEYS_TEST_REDIS_URL") {
        return (url, None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (format!("redis://127.0.0.1:{port}/"), Some(child))
}

fn bench(c: &mut Criterion) {
    let (url, child) = server();
    let redis = RedisRateLimiter::builder(&url)
        .prefix(&format!("bench:{}:", KeyId::generate().unwrap()))
        .build()
        .unwrap();
    let local = LocalRateLimiter::new();
    // A limit that is never reached, so every call takes the admit path.
    let lim = Limit::new(u32::MAX, Duration::from_millis(1)).unwrap();
    let mut g = c.benchmark_group("rate_limiter");
    let mut i = 0u64;
    g.bench_function("local_acquire", |b| {
        b.iter(|| {
            i += 1;
            black_box(local.acquire(
                RateBucket::Key(KeyId::from_u64(i % 1024)),
                lim,
                Timestamp::now(),
            ))
        })
    });
    g.bench_function("redis_acquire_loopback", |b| {
        b.iter(|| {
            i += 1;
            black_box(redis.acquire(
                RateBucket::Key(KeyId::from_u64(i % 1024)),
                lim,
                Timestamp::now(),
            ))
        })
    });
    g.finish();
    assert_eq!(
        redis.fallback_count(),
        0,
        "Redis must have answered every call"
    );
    if let Some(mut c) = child {
        let _ = c.kill();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
