//! The Redis limiter against a real Redis: exact limits across threads and
//! processes, correct retry times, the keyring's 429, and the fallback when
//! Redis goes away.
//!
//! Needs `APIKEYS_TEST_REDIS_URL` (set by `scripts/redis.sh`, which
//! `scripts/test.sh` sources) and `redis-server` on the PATH for the outage
//! test; without them these tests fail, they never skip.

mod common;

use common::{Server, free_port};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use apikeys::{
    AccessLevel, Actor, Decision, Error, KeyId, Keyring, Limit, LimitClass, RateBucket,
    RateLimiter, RateLimits, Request, Role, Timestamp,
};
use apikeys_redis::{Fallback, RedisRateLimiter};

fn url() -> String {
    std::env::var("APIKEYS_TEST_REDIS_URL")
        .expect("APIKEYS_TEST_REDIS_URL is not set: run `bash scripts/test.sh`, or `source scripts/redis.sh` first")
}

/// A key prefix no other test (or earlier run) uses.
fn fresh_prefix() -> String {
    format!("apikeys-test:{}:", KeyId::generate().unwrap())
}

fn limiter(prefix: &str) -> RedisRateLimiter {
    RedisRateLimiter::builder(&url())
        .prefix(prefix)
        .build()
        .unwrap()
}

fn now() -> Timestamp {
    Timestamp::now()
}

#[test]
fn admits_exactly_the_limit_and_says_when_to_retry() {
    let l = limiter(&fresh_prefix());
    let b = RateBucket::Key(KeyId::from_u64(1));
    let lim = Limit::new(5, Duration::from_secs(30)).unwrap();
    for i in 0..5u32 {
        match l.acquire(b, lim, now()) {
            Decision::Allowed(s) => assert_eq!((s.limit, s.remaining), (5, 4 - i)),
            d => panic!("{d:?}"),
        }
    }
    match l.acquire(b, lim, now()) {
        Decision::Limited { limit, retry_after } => {
            assert_eq!(limit, 5);
            assert!(
                retry_after > Duration::from_secs(29) && retry_after <= Duration::from_secs(30),
                "{retry_after:?}"
            );
        }
        d => panic!("{d:?}"),
    }
    // Another bucket is untouched.
    assert!(matches!(
        l.acquire(RateBucket::Account("acme"), lim, now()),
        Decision::Allowed(_)
    ));
    assert!(!l.is_degraded());
    assert_eq!(l.fallback_count(), 0);
}

/// A bucket whose limit changes (keys with different overrides sharing a
/// user's budget, or processes configured differently) keeps every admission
/// until it leaves the window, as the in-process limiter does: lowering the
/// limit and raising it again never admits more than the higher limit.
#[test]
fn a_changed_limit_keeps_every_admission_in_the_window() {
    let l = limiter(&fresh_prefix());
    let b = RateBucket::Key(KeyId::from_u64(3));
    let ten = Limit::new(10, Duration::from_secs(30)).unwrap();
    let three = Limit::new(3, Duration::from_secs(30)).unwrap();
    for _ in 0..10 {
        assert!(matches!(l.acquire(b, ten, now()), Decision::Allowed(_)));
    }
    match l.acquire(b, three, now()) {
        Decision::Limited { limit, retry_after } => {
            assert_eq!(limit, 3);
            assert!(retry_after <= Duration::from_secs(30), "{retry_after:?}");
        }
        d => panic!("{d:?}"),
    }
    assert!(
        matches!(l.acquire(b, ten, now()), Decision::Limited { .. }),
        "the ten admissions still count under the limit of ten"
    );
    assert_eq!(l.fallback_count(), 0);
}

#[test]
fn the_window_slides_on_the_servers_clock() {
    let l = limiter(&fresh_prefix());
    let b = RateBucket::Key(KeyId::from_u64(2));
    let lim = Limit::new(2, Duration::from_millis(300)).unwrap();
    assert!(matches!(l.acquire(b, lim, now()), Decision::Allowed(_)));
    assert!(matches!(l.acquire(b, lim, now()), Decision::Allowed(_)));
    let Decision::Limited { retry_after, .. } = l.acquire(b, lim, now()) else {
        panic!("third admitted")
    };
    thread::sleep(retry_after + Duration::from_millis(20));
    assert!(matches!(l.acquire(b, lim, now()), Decision::Allowed(_)));
}

#[test]
fn threads_together_get_exactly_the_limit() {
    let l = Arc::new(limiter(&fresh_prefix()));
    let ok = Arc::new(AtomicUsize::new(0));
    let lim = Limit::new(300, Duration::from_secs(3600)).unwrap();
    let hs: Vec<_> = (0..6)
        .map(|_| {
            let (l, ok) = (l.clone(), ok.clone());
            thread::spawn(move || {
                for _ in 0..100 {
                    if let Decision::Allowed(_) =
                        l.acquire(RateBucket::Account("shared"), lim, now())
                    {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 300);
}

/// Run in a child process by `several_processes_together_admit_no_more_than_the_limit`.
#[test]
#[ignore = "a worker for the multi-process test"]
fn child_worker() {
    let Ok(prefix) = std::env::var("APIKEYS_CHILD_PREFIX") else {
        return;
    };
    let l = limiter(&prefix);
    let lim = Limit::new(250, Duration::from_secs(3600)).unwrap();
    let (mut admitted, mut max_retry, mut min_retry) = (0u32, 0u128, u128::MAX);
    for _ in 0..200 {
        match l.acquire(RateBucket::Key(KeyId::from_u64(42)), lim, now()) {
            Decision::Allowed(_) => admitted += 1,
            Decision::Limited { retry_after, .. } => {
                max_retry = max_retry.max(retry_after.as_millis());
                min_retry = min_retry.min(retry_after.as_millis());
            }
        }
    }
    println!(
        "RESULT admitted={admitted} min_retry_ms={min_retry} max_retry_ms={max_retry} fallbacks={}",
        l.fallback_count()
    );
}

#[test]
fn several_processes_together_admit_no_more_than_the_limit() {
    let prefix = fresh_prefix();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_worker",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("APIKEYS_CHILD_PREFIX", &prefix)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    let mut limited_seen = false;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        // The libtest harness may print the test name on the same line first.
        let line = text
            .lines()
            .find_map(|l| l.find("RESULT ").map(|i| &l[i..]))
            .unwrap_or_else(|| panic!("no result in {text}"));
        let field = |name: &str| -> u128 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        total += field("admitted");
        assert_eq!(field("fallbacks"), 0, "Redis was up: no fallback");
        if field("admitted") < 200 {
            limited_seen = true;
            // Retry times point at when the oldest admission leaves the hour-long window.
            let (lo, hi) = (field("min_retry_ms"), field("max_retry_ms"));
            assert!(
                lo > 3_500_000 && hi <= 3_600_000,
                "retry times {lo}..{hi} ms"
            );
        }
    }
    assert_eq!(
        total, 250,
        "4 processes x 200 attempts against a limit of 250"
    );
    assert!(limited_seen);
}

#[test]
fn the_keyring_answers_429_with_redis_limits() {
    let limits =
        RateLimits::none().with_limit(LimitClass::GeneralKey, Some(Limit::per_minute(3).unwrap()));
    let kr = Keyring::builder()
        .rate_limits(limits)
        .rate_limiter(Arc::new(limiter(&fresh_prefix())))
        .build()
        .unwrap();
    let k = kr
        .create_general_key(
            &Actor::new("acme", "PADMIN", Role::Admin),
            "ci",
            AccessLevel::FullAccess,
        )
        .unwrap();
    for i in 0..3u32 {
        let p = kr
            .authenticate(k.secret().expose(), &Request::rest("GET"))
            .unwrap();
        assert_eq!(p.rate_limit().unwrap().remaining, 2 - i);
    }
    let e = kr
        .authenticate(k.secret().expose(), &Request::rest("GET"))
        .unwrap_err();
    assert!(matches!(e, Error::RateLimited { limit: 3, .. }), "{e:?}");
    assert_eq!((e.http_status(), e.code()), (429, 2020));
}

#[test]
fn a_keyring_with_redis_limits_leaves_tries_to_authenticate() {
    let limits =
        RateLimits::none().with_limit(LimitClass::GeneralKey, Some(Limit::per_minute(3).unwrap()));
    let redis = limiter(&fresh_prefix());
    assert!(redis.may_block());
    let kr = Keyring::builder()
        .rate_limits(limits)
        .rate_limiter(Arc::new(redis))
        .build()
        .unwrap();
    let k = kr
        .create_general_key(
            &Actor::new("acme", "PADMIN", Role::Admin),
            "ci",
            AccessLevel::FullAccess,
        )
        .unwrap();
    let t = k.secret().expose();
    assert!(kr.try_authenticate(t, &Request::rest("GET")).is_none());
    assert!(
        kr.try_authenticate("malformed", &Request::rest("GET"))
            .is_some()
    );
    // The tries spent nothing: all three requests are admitted.
    for i in 0..3u32 {
        let p = kr.authenticate(t, &Request::rest("GET")).unwrap();
        assert_eq!(p.rate_limit().unwrap().remaining, 2 - i);
        assert!(kr.try_authenticate(t, &Request::rest("GET")).is_none());
    }
}

#[test]
fn redis_stopped_mid_run_falls_back_to_local_limits_and_recovers() {
    let port = free_port();
    let server = Server::start(port);
    let reported = Arc::new(AtomicUsize::new(0));
    let r = reported.clone();
    let l = RedisRateLimiter::builder(&format!("redis://127.0.0.1:{port}/"))
        .retry_interval(Duration::from_millis(100))
        .on_degraded(move |_| {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let b = RateBucket::Key(KeyId::from_u64(9));
    let lim = Limit::new(20, Duration::from_secs(3600)).unwrap();
    for _ in 0..10 {
        assert!(matches!(l.acquire(b, lim, now()), Decision::Allowed(_)));
    }
    server.stop();
    // Redis is gone: no panic, the local limiter takes over, and it is reported.
    let mut admitted_during_outage = 0;
    for _ in 0..100 {
        if let Decision::Allowed(_) = l.acquire(b, lim, now()) {
            admitted_during_outage += 1;
        }
    }
    assert!(l.is_degraded());
    assert_eq!(l.fallback_count(), 100);
    assert_eq!(
        reported.load(Ordering::SeqCst),
        1,
        "reported once per outage"
    );
    assert!(l.last_error().unwrap().contains("Redis"));
    // The documented bound: this process alone admits at most the limit.
    assert_eq!(admitted_during_outage, 20);

    // Redis comes back on the same port: after the retry interval, Redis decides again.
    let server = Server::start(port);
    thread::sleep(Duration::from_millis(150));
    assert!(matches!(l.acquire(b, lim, now()), Decision::Allowed(_)));
    assert!(!l.is_degraded());
    assert_eq!(l.last_error(), None);
    server.stop();
}

#[test]
fn fail_closed_and_fail_open_are_explicit_choices() {
    let port = free_port(); // nothing listens here
    let url = format!("redis://127.0.0.1:{port}/");
    let b = RateBucket::Account("acme");
    let lim = Limit::per_minute(5).unwrap();
    let deny = RedisRateLimiter::builder(&url)
        .fallback(Fallback::Deny)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            deny.acquire(b, lim, now()),
            Decision::Limited { .. }
        ));
    }
    let allow = RedisRateLimiter::builder(&url)
        .fallback(Fallback::Allow)
        .build()
        .unwrap();
    for _ in 0..10 {
        assert!(matches!(allow.acquire(b, lim, now()), Decision::Allowed(_)));
    }
    assert!(deny.is_degraded() && allow.is_degraded());
    assert_eq!(allow.fallback_count(), 10);
    assert!(RedisRateLimiter::connect(&url).is_err());
    assert!(RedisRateLimiter::builder("not a url").build().is_err());
}
