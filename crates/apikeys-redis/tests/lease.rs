//! The leasing Redis limiter against a real Redis: no window ever admits more
//! than the limit across four processes, leases never starve another process,
//! unused leases come back (given back, or when they expire), and the
//! fallback applies when Redis goes away.
//!
//! Needs `APIKEYS_TEST_REDIS_URL` (set by `scripts/redis.sh`, which
//! `scripts/test.sh` sources) and `redis-server` on the PATH for the outage
//! test; without them these tests fail, they never skip.

mod common;

use common::{Server, free_port};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apikeys::{Decision, KeyId, Limit, RateBucket, RateLimiter, Timestamp};
use apikeys_redis::{Fallback, LeaseOptions, RedisRateLimiter};

fn url() -> String {
    std::env::var("APIKEYS_TEST_REDIS_URL")
        .expect("APIKEYS_TEST_REDIS_URL is not set: run `bash scripts/test.sh`, or `source scripts/redis.sh` first")
}

/// A key prefix no other test (or earlier run) uses.
fn fresh_prefix() -> String {
    format!("apikeys-test:{}:", KeyId::generate().unwrap())
}

fn leasing(prefix: &str, options: LeaseOptions) -> RedisRateLimiter {
    RedisRateLimiter::builder(&url())
        .prefix(prefix)
        .lease(options)
        .build()
        .unwrap()
}

fn exact(prefix: &str) -> RedisRateLimiter {
    RedisRateLimiter::builder(&url())
        .prefix(prefix)
        .build()
        .unwrap()
}

/// Leases that outlive any pause of a loaded machine: these tests count
/// admissions, not time.
fn long_leases() -> LeaseOptions {
    LeaseOptions::default().with_max_duration(Duration::from_secs(10))
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Wall-clock microseconds: the clock Redis's `TIME` reads on this machine.
fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn admitted(l: &RedisRateLimiter, b: RateBucket<'_>, lim: Limit) -> bool {
    matches!(l.acquire(b, lim, now()), Decision::Allowed(_))
}

/// Requests until the first refusal; how many were admitted.
fn until_refused(l: &RedisRateLimiter, b: RateBucket<'_>, lim: Limit) -> u32 {
    let mut n = 0;
    while admitted(l, b, lim) {
        n += 1;
        assert!(n <= lim.requests(), "admitted more than the limit");
    }
    n
}

#[test]
fn one_process_spends_leases_locally_and_admits_exactly_the_limit() {
    let l = leasing(&fresh_prefix(), long_leases());
    let b = RateBucket::Key(KeyId::from_u64(1));
    let lim = Limit::new(200, Duration::from_secs(60)).unwrap();
    for i in 0..200u32 {
        match l.acquire(b, lim, now()) {
            // Alone on the bucket, the estimate is exact: what Redis had
            // left after the lease, plus the lease's unspent admissions.
            Decision::Allowed(s) => assert_eq!((s.limit, s.remaining), (200, 199 - i), "{i}"),
            d => panic!("request {i}: {d:?}"),
        }
    }
    let calls = l.redis_calls();
    let Decision::Limited { retry_after, .. } = l.acquire(b, lim, now()) else {
        panic!("201st admitted")
    };
    assert!(retry_after <= Duration::from_secs(61), "{retry_after:?}");
    // The refusal is remembered: more refusals cost no round trip.
    for _ in 0..50 {
        assert!(!admitted(&l, b, lim));
    }
    assert_eq!(l.redis_calls(), calls + 1);
    // Leases grow 1, 2, 4, … (each spent within its life), capped by a
    // quarter of what remains: far fewer calls than requests.
    assert!(calls < 40, "{calls} Redis calls for 200 admissions");
    assert_eq!(l.fallback_count(), 0);
}

#[test]
fn try_acquire_answers_from_a_lease_or_a_refusal_and_leaves_the_rest() {
    let l = leasing(&fresh_prefix(), long_leases());
    let b = RateBucket::Account("acme");
    let lim = Limit::new(100, Duration::from_secs(60)).unwrap();
    assert!(l.may_block());
    assert_eq!(l.try_acquire(b, lim, now()), None, "nothing leased yet");
    assert_eq!(l.redis_calls(), 0);
    assert!(admitted(&l, b, lim)); // a lease of 1: the request itself
    assert!(admitted(&l, b, lim)); // a lease of 2: one left
    assert!(matches!(
        l.try_acquire(b, lim, now()),
        Some(Decision::Allowed(_))
    ));
    assert_eq!(l.try_acquire(b, lim, now()), None, "the lease is spent");
    assert_eq!(l.redis_calls(), 2);

    let one = Limit::new(1, Duration::from_secs(60)).unwrap();
    let c = RateBucket::Account("globex");
    assert!(admitted(&l, c, one));
    assert!(!admitted(&l, c, one));
    assert!(matches!(
        l.try_acquire(c, one, now()),
        Some(Decision::Limited { limit: 1, .. })
    ));

    // Without leases, every decision is Redis's.
    let e = exact(&fresh_prefix());
    assert_eq!(e.try_acquire(b, lim, now()), None);
    assert!(admitted(&e, b, lim));
    assert_eq!(e.try_acquire(b, lim, now()), None);
}

/// A process that holds a lease takes only a share of what remains: the
/// others are admitted while Redis has budget, and a low limit is never
/// leased at all, so it behaves exactly as one round trip per request.
#[test]
fn leases_never_starve_another_process() {
    let options = long_leases();
    for requests in [1u32, 2, 5, 7, 40, 960] {
        let prefix = fresh_prefix();
        let b = RateBucket::Key(KeyId::from_u64(7));
        let lim = Limit::new(requests, Duration::from_secs(60)).unwrap();
        let a = leasing(&prefix, options);
        let x = (requests / 4).max(1);
        for _ in 0..x {
            assert!(admitted(&a, b, lim), "limit {requests}");
        }
        // Three other processes take turns until a round refuses all of them:
        // then none of them holds an unspent admission.
        let others: Vec<_> = (0..3).map(|_| leasing(&prefix, options)).collect();
        let mut theirs = 0;
        loop {
            let round = others.iter().filter(|l| admitted(l, b, lim)).count();
            if round == 0 {
                break;
            }
            theirs += round as u32;
            assert!(theirs <= requests);
        }
        // What `a` still holds is what it alone can spend now.
        let held = until_refused(&a, b, lim);
        assert_eq!(
            x + theirs + held,
            requests,
            "limit {requests}: every admission is spent by someone, none twice"
        );
        assert!(
            f64::from(held) <= options.share() * f64::from(requests),
            "limit {requests}: an idle lease held {held}"
        );
        if requests < 8 {
            assert_eq!(held, 0, "limit {requests} is never leased");
        }
    }
}

/// A lease is spent only during its life (measured from before its call was
/// sent); after that the next request asks Redis, which first takes the
/// unspent admissions back.
#[test]
fn a_lease_is_not_spent_after_its_life() {
    let options = LeaseOptions::default().with_max_duration(Duration::from_secs(2));
    let l = leasing(&fresh_prefix(), options);
    let b = RateBucket::Key(KeyId::from_u64(3));
    let lim = Limit::new(100, Duration::from_secs(60)).unwrap();
    assert_eq!(options.duration(lim), Duration::from_secs(2));
    for _ in 0..8 {
        assert!(admitted(&l, b, lim));
    }
    // 1 + 2 + 4 + 8 reserved, 8 spent: 7 left, for two seconds.
    assert!(matches!(
        l.try_acquire(b, lim, now()),
        Some(Decision::Allowed(_))
    ));
    thread::sleep(Duration::from_millis(2100));
    assert_eq!(l.try_acquire(b, lim, now()), None, "spent after its life");
    let calls = l.redis_calls();
    assert!(admitted(&l, b, lim));
    assert_eq!(l.redis_calls(), calls + 1);
    // The 6 unspent came back: exactly a hundred in all.
    assert_eq!(10 + until_refused(&l, b, lim), 100);
}

#[test]
fn unused_leases_are_given_back_on_release_and_on_drop() {
    for drop_it in [false, true] {
        let prefix = fresh_prefix();
        let b = RateBucket::User {
            account: "acme",
            user: "PUSER",
        };
        let lim = Limit::new(40, Duration::from_secs(60)).unwrap();
        let a = leasing(&prefix, long_leases());
        for _ in 0..10 {
            assert!(admitted(&a, b, lim));
        }
        // 1 + 2 + 4 + 8 reserved, 10 spent: `a` holds 5 it has not spent.
        let other = exact(&prefix);
        if drop_it {
            drop(a);
        } else {
            a.release_leases();
            // Released leases are not spent any more: `a` asks Redis again.
            assert_eq!(a.try_acquire(b, lim, now()), None);
        }
        assert_eq!(until_refused(&other, b, lim), 30, "drop: {drop_it}");
    }
}

#[test]
fn exact_and_leasing_processes_share_one_bucket() {
    let prefix = fresh_prefix();
    let b = RateBucket::Key(KeyId::from_u64(5));
    let lim = Limit::new(150, Duration::from_secs(60)).unwrap();
    let (e, l) = (exact(&prefix), leasing(&prefix, long_leases()));
    let (mut by_e, mut by_l) = (0, 0);
    loop {
        let (ae, al) = (admitted(&e, b, lim), admitted(&l, b, lim));
        by_e += u32::from(ae);
        by_l += u32::from(al);
        if !ae && !al {
            break;
        }
    }
    assert_eq!(by_e + by_l, 150, "exact {by_e}, leasing {by_l}");
    assert!(by_e >= 50, "the exact process is not starved: {by_e}");
}

/// A lease reserved under one limit is spent only for requests under that
/// limit (keys with different overrides share a user's bucket): a lower
/// limit sees every reserved admission in the window.
#[test]
fn a_lease_is_spent_only_under_its_own_limit() {
    let l = leasing(&fresh_prefix(), long_leases());
    let b = RateBucket::User {
        account: "acme",
        user: "PUSER",
    };
    let hundred = Limit::new(100, Duration::from_secs(60)).unwrap();
    let ten = Limit::new(10, Duration::from_secs(60)).unwrap();
    for _ in 0..12 {
        assert!(admitted(&l, b, hundred));
    }
    // 1 + 2 + 4 + 8 reserved, 12 spent: the lease has 3 left, but not for a
    // request under the limit of ten. That one asks Redis (giving the 3
    // back first), which counts 12.
    let calls = l.redis_calls();
    assert!(!admitted(&l, b, ten));
    assert_eq!(l.redis_calls(), calls + 1);
    assert!(matches!(
        l.try_acquire(b, ten, now()),
        Some(Decision::Limited { limit: 10, .. })
    ));
    // Back under the limit of a hundred: exactly a hundred in all.
    assert_eq!(12 + until_refused(&l, b, hundred), 100);
}

// ---------------------------------------------------------------------------
// Four processes

/// The limits the four processes hammer, one key each: (requests, window ms).
const HAMMERED: [(u32, u64); 5] = [(1, 150), (2, 200), (5, 250), (40, 500), (960, 1000)];

/// Run in a child process by the four-process tests.
#[test]
#[ignore = "a worker for the multi-process lease tests"]
fn lease_child() {
    let Ok(job) = std::env::var("APIKEYS_LEASE_CHILD") else {
        return;
    };
    let prefix = std::env::var("APIKEYS_LEASE_PREFIX").unwrap();
    match job.as_str() {
        "hammer" => hammer(&prefix),
        "die" => die_holding_a_lease(&prefix),
        other => panic!("unknown job {other}"),
    }
}

fn hammer(prefix: &str) {
    let index: u64 = std::env::var("APIKEYS_LEASE_INDEX")
        .unwrap()
        .parse()
        .unwrap();
    let run = Duration::from_millis(
        std::env::var("APIKEYS_LEASE_RUN_MS")
            .unwrap()
            .parse()
            .unwrap(),
    );
    // Each process keeps its own pace: steady (fast, slower, slow), or in
    // bursts with pauses longer than any lease's life, so that leases are
    // also taken and then left to expire half spent.
    let pause = [20u64, 100, 1000, 20][index as usize % 4];
    let bursty = index % 4 == 3;
    let mut rounds = 0u64;
    let l = leasing(prefix, LeaseOptions::default());
    let limits: Vec<_> = HAMMERED
        .iter()
        .map(|&(n, ms)| Limit::new(n, Duration::from_millis(ms)).unwrap())
        .collect();
    let mut out = String::new();
    let start = Instant::now();
    while start.elapsed() < run {
        for (i, lim) in limits.iter().enumerate() {
            let b = RateBucket::Key(KeyId::from_u64(100 + i as u64));
            let before = wall_us();
            let d = l.acquire(b, *lim, now());
            let after = wall_us();
            if let Decision::Allowed(_) = d {
                out.push_str(&format!("ADM {i} {before} {after}\n"));
            }
        }
        rounds += 1;
        if bursty && rounds % 25 == 0 {
            thread::sleep(Duration::from_millis(150));
        } else {
            thread::sleep(Duration::from_micros(pause));
        }
    }
    print!("{out}");
    println!(
        "RESULT redis_calls={} fallbacks={}",
        l.redis_calls(),
        l.fallback_count()
    );
}

fn child(job: &str, prefix: &str, index: usize, run_ms: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lease_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("APIKEYS_LEASE_CHILD", job)
        .env("APIKEYS_LEASE_PREFIX", prefix)
        .env("APIKEYS_LEASE_INDEX", index.to_string())
        .env("APIKEYS_LEASE_RUN_MS", run_ms.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The most admissions whose `[before, after]` lies inside one window
/// `(a - window, a]`, over every `a`. Each admission was decided somewhere in
/// its interval, so this never exceeds what some window really admitted.
fn most_in_a_window(adm: &[(u64, u64)], window_us: u64) -> usize {
    adm.iter()
        .map(|&(_, a)| {
            adm.iter()
                .filter(|&&(before, after)| before + window_us > a && after <= a)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Four processes hammer five keys (limits 1, 2, 5, 40 and 960 per short
/// window) with leases, each at its own pace, recording when every admission
/// was decided. Across all of them, every sliding window holds at most the
/// limit (in whole milliseconds, as the limiters count: the window checked is
/// 1 ms shorter).
#[test]
fn four_processes_never_admit_more_than_the_limit_in_any_window() {
    let prefix = fresh_prefix();
    let run_ms = 3000;
    let children: Vec<Child> = (0..4)
        .map(|i| child("hammer", &prefix, i, run_ms))
        .collect();
    let mut adm: Vec<Vec<(u64, u64)>> = vec![Vec::new(); HAMMERED.len()];
    let mut per_process = Vec::new();
    let mut calls = 0u64;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let mut mine = [0u32; HAMMERED.len()];
        let mut result = None;
        for line in text.lines() {
            // The libtest harness may print the test name on the same line first.
            if let Some(i) = line.find("ADM ") {
                let f: Vec<u64> = line[i + 4..]
                    .split_whitespace()
                    .map(|w| w.parse().unwrap())
                    .collect();
                adm[f[0] as usize].push((f[1], f[2]));
                mine[f[0] as usize] += 1;
            } else if let Some(i) = line.find("RESULT ") {
                result = Some(line[i..].to_owned());
            }
        }
        let result = result.unwrap_or_else(|| panic!("no result in {text}"));
        let field = |name: &str| -> u64 {
            result
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(field("fallbacks"), 0, "Redis was up: no fallback");
        calls += field("redis_calls");
        per_process.push(mine);
    }
    let mut report = Vec::new();
    for (i, &(limit, window_ms)) in HAMMERED.iter().enumerate() {
        let most = most_in_a_window(&adm[i], window_ms * 1000 - 1000);
        report.push(format!(
            "{limit}/{window_ms}ms: {} admitted, at most {most} in a window, per process {:?}",
            adm[i].len(),
            per_process.iter().map(|p| p[i]).collect::<Vec<_>>()
        ));
        assert!(
            most <= limit as usize,
            "limit {limit} per {window_ms} ms: {most} admissions in one window"
        );
        // The run spans several windows: the budget was used, not hoarded.
        assert!(adm[i].len() >= limit as usize, "{}", report[i]);
    }
    let total: usize = adm.iter().map(Vec::len).sum();
    eprintln!(
        "{}\n{total} admissions, {calls} Redis calls",
        report.join("\n")
    );
    // The key with room for everyone: every process was admitted (who wins
    // a freed slot of a low limit is a race, as without leases; that leases
    // never starve anyone is checked exactly by `leases_never_starve_another_process`).
    for p in &per_process {
        assert!(p[4] > 0, "{p:?}");
    }
}

/// Four processes each hold a lease when three of them die (no release, no
/// drop): their unused admissions stay counted, but no longer than a
/// window after their lease could last have been used.
fn die_holding_a_lease(prefix: &str) {
    let l = leasing(
        prefix,
        LeaseOptions::default().with_max_duration(Duration::from_millis(300)),
    );
    let (b, lim) = dying_bucket();
    let mut last_call_ms = 0;
    for _ in 0..8 {
        let calls = l.redis_calls();
        assert!(admitted(&l, b, lim));
        if l.redis_calls() > calls {
            last_call_ms = wall_us() / 1000;
        }
    }
    println!("RESULT last_call_ms={last_call_ms}");
    std::process::abort();
}

fn dying_bucket() -> (RateBucket<'static>, Limit) {
    (
        RateBucket::Key(KeyId::from_u64(77)),
        Limit::new(64, Duration::from_secs(4)).unwrap(),
    )
}

#[test]
fn a_process_that_dies_holding_a_lease_blocks_no_longer_than_its_life() {
    let prefix = fresh_prefix();
    let out = child("die", &prefix, 0, 0).wait_with_output().unwrap();
    assert!(!out.status.success(), "the child aborts");
    let text = String::from_utf8_lossy(&out.stdout);
    let last_call_ms: u64 = text
        .lines()
        .find_map(|l| l.find("last_call_ms=").map(|i| &l[i + 13..]))
        .unwrap_or_else(|| panic!("no result in {text}"))
        .trim()
        .parse()
        .unwrap();
    let (b, lim) = dying_bucket();
    let life_ms = LeaseOptions::default()
        .with_max_duration(Duration::from_millis(300))
        .duration(lim)
        .as_millis() as u64;
    assert_eq!(life_ms, 300);
    let window_ms = lim.window().as_millis() as u64;
    let sleep_until = |ms: u64| {
        let now = wall_us() / 1000;
        if ms > now {
            thread::sleep(Duration::from_millis(ms - now));
        }
    };
    let other = exact(&prefix);
    // The lease's life is over, but what the dead process reserved still
    // counts: it spent 8 and held more.
    sleep_until(last_call_ms + life_ms + 1000);
    let first = until_refused(&other, b, lim);
    assert!(first < 64 - 8, "the dead lease held nothing? {first}");
    // A window after the lease's life, all of it is back (and this process's
    // own admissions are still in their window).
    sleep_until(last_call_ms + life_ms + window_ms + 500);
    let second = until_refused(&other, b, lim);
    assert!(
        second >= 64 - first,
        "{first} then {second}: the dead lease still counts"
    );
}

// ---------------------------------------------------------------------------
// Redis away

#[test]
fn redis_killed_mid_run_the_fallback_applies_and_leases_resume_after() {
    let port = free_port();
    let server = Server::start(port);
    let reported = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = reported.clone();
    let l = RedisRateLimiter::builder(&format!("redis://127.0.0.1:{port}/"))
        .retry_interval(Duration::from_millis(100))
        .lease(long_leases())
        .on_degraded(move |_| {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let b = RateBucket::Key(KeyId::from_u64(9));
    let lim = Limit::new(100, Duration::from_secs(3600)).unwrap();
    for _ in 0..5 {
        assert!(admitted(&l, b, lim)); // leases of 1, 2 and 4: two left
    }
    server.stop();
    // What is left of the lease was reserved before Redis went away and is
    // spent; then the first call to Redis fails and the fallback (the
    // in-process limiter) decides, as without leases.
    let (mut from_lease, mut by_fallback) = (0, 0);
    for _ in 0..300 {
        let fallbacks = l.fallback_count();
        let ok = admitted(&l, b, lim);
        if l.fallback_count() == fallbacks {
            assert!(ok);
            from_lease += 1;
        } else if ok {
            by_fallback += 1;
        }
    }
    assert!(from_lease <= 2, "{from_lease}");
    assert_eq!(
        by_fallback, 100,
        "this process alone admits at most the limit"
    );
    assert_eq!(l.fallback_count(), 300 - from_lease);
    assert!(l.is_degraded());
    assert_eq!(reported.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(l.last_error().unwrap().contains("Redis"));

    // Redis is back (empty): after the retry interval Redis decides again,
    // and leases grow again.
    let server = Server::start(port);
    thread::sleep(Duration::from_millis(150));
    let calls = l.redis_calls();
    for _ in 0..20 {
        assert!(admitted(&l, b, lim));
    }
    assert!(!l.is_degraded());
    assert!(l.redis_calls() - calls < 20);
    server.stop();
}

#[test]
fn fail_closed_and_fail_open_hold_with_leases() {
    let url = format!("redis://127.0.0.1:{}/", free_port()); // nothing listens here
    let b = RateBucket::Account("acme");
    let lim = Limit::per_minute(5).unwrap();
    for (fallback, admits) in [(Fallback::Deny, false), (Fallback::Allow, true)] {
        let l = RedisRateLimiter::builder(&url)
            .fallback(fallback)
            .lease(LeaseOptions::default())
            .build()
            .unwrap();
        for _ in 0..10 {
            assert_eq!(admitted(&l, b, lim), admits, "{fallback:?}");
        }
        assert!(l.is_degraded());
        assert_eq!(l.fallback_count(), 10);
        // During the outage, the fallback decides without waiting.
        assert!(l.try_acquire(b, lim, now()).is_some());
    }
}

#[test]
fn lease_options_are_clamped_and_sized_per_limit() {
    let o = LeaseOptions::default();
    assert_eq!(
        (o.max_size(), o.max_duration(), o.share()),
        (64, Duration::from_secs(1), 0.25)
    );
    let o = o.with_max_size(0).with_share(f64::NAN).with_share(7.0);
    assert_eq!((o.max_size(), o.share()), (1, 1.0));
    assert_eq!(
        LeaseOptions::default().with_max_size(u32::MAX).max_size(),
        LeaseOptions::MAX_SIZE
    );
    let d =
        |ms| LeaseOptions::default().duration(Limit::new(10, Duration::from_millis(ms)).unwrap());
    assert_eq!(d(60_000), Duration::from_secs(1));
    assert_eq!(d(1000), Duration::from_millis(100));
    assert_eq!(d(20), Duration::from_millis(2));
    assert_eq!(
        d(19),
        Duration::ZERO,
        "windows under 20 ms are never leased"
    );
}

/// `Keyring::try_authenticate` answers from a lease: the first request of a
/// hot key takes a lease through `authenticate` (a round trip), the next ones
/// are answered on the spot, without waiting, exactly as `authenticate` would
/// (same budget, same refusals), and once the budget is spent the refusal is
/// answered on the spot too. With the exact limiter every known key needs a
/// round trip: `None`.
#[test]
fn try_authenticate_answers_from_a_lease_and_never_from_the_exact_limiter() {
    use std::sync::Arc;

    use apikeys::{AccessLevel, Actor, Keyring, LimitClass, RateLimits, Request, Role};

    let limits = RateLimits::none().with_limit(
        LimitClass::GeneralKey,
        Some(Limit::new(40, Duration::from_secs(10)).unwrap()),
    );
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let get = Request::rest("GET");

    let leased = Keyring::builder()
        .rate_limits(limits.clone())
        .rate_limiter(Arc::new(leasing(&fresh_prefix(), LeaseOptions::default())))
        .build()
        .unwrap();
    let key = leased
        .create_general_key(&admin, "hot", AccessLevel::FullAccess)
        .unwrap();
    let token = key.secret().expose();
    assert!(leased.may_block());
    leased.authenticate(token, &get).unwrap();
    let mut answered = 1;
    let mut tried = 0;
    while answered < 40 {
        match leased.try_authenticate(token, &get) {
            Some(Ok(p)) => {
                tried += 1;
                assert_eq!(p.rate_limit().unwrap().limit, 40);
            }
            Some(Err(e)) => panic!("refused within the limit: {e}"),
            None => {
                leased.authenticate(token, &get).unwrap();
            }
        }
        answered += 1;
    }
    assert!(tried > 0, "no request was answered from the lease");
    // The 41st, whichever way it is asked, is refused.
    match leased.try_authenticate(token, &get) {
        Some(r) => assert_eq!(r.unwrap_err().http_status(), 429),
        None => assert_eq!(
            leased.authenticate(token, &get).unwrap_err().http_status(),
            429
        ),
    }

    let exact_kr = Keyring::builder()
        .rate_limits(limits)
        .rate_limiter(Arc::new(exact(&fresh_prefix())))
        .build()
        .unwrap();
    let key = exact_kr
        .create_general_key(&admin, "hot", AccessLevel::FullAccess)
        .unwrap();
    exact_kr.authenticate(key.secret().expose(), &get).unwrap();
    assert!(
        exact_kr
            .try_authenticate(key.secret().expose(), &get)
            .is_none()
    );
    // A malformed key needs no limiter at all.
    assert_eq!(
        exact_kr
            .try_authenticate("not a key", &get)
            .unwrap()
            .unwrap_err()
            .http_status(),
        401
    );
}
