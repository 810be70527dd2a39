//! One rate-limit decision three ways, in the same run: the in-process
//! limiter, the Redis limiter (one loopback round trip per request), and the
//! Redis limiter with leases (a round trip per lease, the rest in memory).
//!
//! `cargo bench -p apikeys-redis` uses `APIKEYS_TEST_REDIS_URL` (`source
//! scripts/redis.sh` sets it), or starts a `redis-server` on a free loopback
//! port. With neither, it measures the in-process limiter alone and says so:
//! a bench is not a test, and does not fail for want of a server.
//!
//! Admitted requests: 1,024 keys in turn (the in-process and exact limiters
//! as before: a limit never reached, in a 1 ms window; the leasing limiter
//! with a 200 ms window, as it leases nothing under 20 ms), and one hot key.
//! Refused requests: one key whose budget (1 a minute) is spent.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::{Decision, KeyId, Limit, LocalRateLimiter, RateBucket, RateLimiter, Timestamp};
use apikeys_redis::{LeaseOptions, RedisRateLimiter};
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

/// The key of the refused-request benches (none of the 1,024 others).
const SPENT_KEY: u64 = 1 << 40;

/// Time `acquire` on key `i % keys` (or [`SPENT_KEY`]) for i = 1, 2, …,
/// checking every answer is `admit`.
fn run(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    l: &dyn RateLimiter,
    lim: Limit,
    keys: u64,
    admit: bool,
) {
    let mut i = 0u64;
    g.bench_function(name, |b| {
        b.iter(|| {
            i += 1;
            let key = if admit { i % keys } else { SPENT_KEY };
            let d = l.acquire(RateBucket::Key(KeyId::from_u64(key)), lim, Timestamp::now());
            assert_eq!(matches!(d, Decision::Allowed(_)), admit, "{name}: {d:?}");
            black_box(d)
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limiter");
    // A limit never reached, so every call takes the admit path.
    let never = Limit::new(u32::MAX, Duration::from_millis(1)).unwrap();
    let never_leased = Limit::new(u32::MAX, Duration::from_millis(200)).unwrap();
    let spent = Limit::per_minute(1).unwrap();
    let local = LocalRateLimiter::new();
    run(&mut g, "local_acquire", &local, never, 1024, true);
    local.acquire(
        RateBucket::Key(KeyId::from_u64(SPENT_KEY)),
        spent,
        Timestamp::now(),
    );
    run(&mut g, "local_refused", &local, spent, 1, false);
    let Some((url, child)) = server() else {
        eprintln!(
            "rate_limiter/redis_*: skipped (APIKEYS_TEST_REDIS_URL is not set \
             and no redis-server could be started; `source scripts/redis.sh` first)"
        );
        g.finish();
        return;
    };
    let prefix = |what: &str| format!("bench:{}:{what}:", KeyId::generate().unwrap());
    let exact = RedisRateLimiter::builder(&url)
        .prefix(&prefix("exact"))
        .build()
        .unwrap();
    let leasing = RedisRateLimiter::builder(&url)
        .prefix(&prefix("lease"))
        .lease(LeaseOptions::default())
        .build()
        .unwrap();
    run(&mut g, "redis_acquire_loopback", &exact, never, 1024, true);
    let before = (leasing.redis_calls(), std::time::Instant::now());
    run(
        &mut g,
        "redis_lease_acquire_loopback",
        &leasing,
        never_leased,
        1024,
        true,
    );
    let many = leasing.redis_calls() - before.0;
    run(
        &mut g,
        "redis_lease_acquire_one_key",
        &leasing,
        never_leased,
        1,
        true,
    );
    let one = leasing.redis_calls() - before.0 - many;
    exact.acquire(
        RateBucket::Key(KeyId::from_u64(SPENT_KEY)),
        spent,
        Timestamp::now(),
    );
    run(&mut g, "redis_refused_loopback", &exact, spent, 1, false);
    leasing.acquire(
        RateBucket::Key(KeyId::from_u64(SPENT_KEY)),
        spent,
        Timestamp::now(),
    );
    run(
        &mut g,
        "redis_lease_refused_loopback",
        &leasing,
        spent,
        1,
        false,
    );
    g.finish();
    eprintln!(
        "leasing limiter: {many} Redis calls over 1,024 keys, {one} on one key, in {:.1?}",
        before.1.elapsed()
    );
    let answered = exact.fallback_count() == 0 && leasing.fallback_count() == 0;
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
