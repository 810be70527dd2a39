//! One rate-limit decision through Redis on loopback, beside the in-process
//! limiter, in the same run.
//!
//! `cargo bench -p apikeys-redis` uses `APIKEYS_TEST_REDIS_URL` (`source
//! scripts/redis.sh` sets it), or starts a `redis-server` on a free loopback
//! port. With neither, it measures the in-process limiter alone and says so:
//! a bench is not a test, and does not fail for want of a server.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::{KeyId, Limit, LocalRateLimiter, RateBucket, RateLimiter, Timestamp};
use apikeys_redis::RedisRateLimiter;
use criterion::{Criterion, criterion_group, criterion_main};

/// A Redis to measure against: the URL, and the server if this bench started it.
fn server() -> Option<(String, Option<Child>)> {
    if let Ok(url) = std::env::var("APIKEYS_TEST_REDIS_URL") {
        return Some((url, None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut child = Command::new("redis-server")
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
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((format!("redis://127.0.0.1:{port}/"), Some(child)))
}

fn bench(c: &mut Criterion) {
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
    let Some((url, child)) = server() else {
        eprintln!(
            "rate_limiter/redis_acquire_loopback: skipped (APIKEYS_TEST_REDIS_URL is not set \
             and no redis-server could be started; `source scripts/redis.sh` first)"
        );
        g.finish();
        return;
    };
    let redis = RedisRateLimiter::builder(&url)
        .prefix(&format!("bench:{}:", KeyId::generate().unwrap()))
        .build()
        .unwrap();
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
    let answered = redis.fallback_count() == 0;
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(answered, "Redis must have answered every call");
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
