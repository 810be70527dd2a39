//! What the in-process rate limiter adds to `authenticate`, timed so that other
//! work on the machine hardly moves the figures: each case runs in batches of
//! 2,000 calls and the fastest batch of 3,000 counts (a batch that another
//! process interrupted is slower, never faster). Criterion's `hot_path` bench
//! reports means instead, which move with the machine's load.
//!
//! `cargo run --release -p apikeys-benches --example limiter_overhead`
//!
//! Prints, per round, ns per call for: SHA-256 alone (`sha256_raw`), a general
//! key without limits (`valid`) and with PagerDuty's limits (`limited`), and a
//! user token and a scoped token without and with limits. The store holds
//! 10,000 general keys; every case uses one key again and again, as the
//! `hot_path` bench's one-key cases do.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use apikeys::{Actor, Clock, Keyring, RateLimits, Request, Role, SystemClock, Timestamp};
use apikeys_benches::{ACCOUNT, fixture};
use sha2::{Digest as _, Sha256};

/// As in the `hot_path` bench: 63 ms further on at every reading, so one key
/// stays just under 960 a minute and the limiter always admits.
struct TickingClock(AtomicU64);

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        let ticks = self.0.load(Ordering::Relaxed);
        self.0.store(ticks + 1, Ordering::Relaxed);
        Timestamp::from_unix_millis(SystemClock.now().unix_millis() + 63 * ticks)
    }
}

/// Nanoseconds per call of the fastest batch.
fn fastest(mut f: impl FnMut()) -> f64 {
    const BATCH: u32 = 2_000;
    let mut best = f64::MAX;
    for _ in 0..3_000 {
        let t = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    best
}

/// Authenticate and read the rate-limit status in place (as the bench does).
fn limited(kr: &Keyring, token: &str, req: &Request) {
    let r = kr.authenticate(black_box(token), req);
    let remaining = r
        .as_ref()
        .ok()
        .and_then(|p| p.rate_limit())
        .map(|s| s.remaining);
    assert!(black_box(remaining).is_some());
}

fn main() {
    let fx = fixture(10_000);
    let one = fx.keys[0].clone();
    let kr = Keyring::builder()
        .shared_store(fx.store.clone())
        .clock(TickingClock(AtomicU64::new(0)))
        .rate_limits(RateLimits::pagerduty())
        .build()
        .expect("no pepper");
    let get = Request::rest("GET");
    let read = Request::rest("GET")
        .with_scope("incidents.read")
        .expect("a valid scope");
    let manager = Actor::new(ACCOUNT, "PBENCHMANAGER", Role::Manager);
    let user = kr.create_user_token(&manager, "bench").expect("created");
    let scoped = kr
        .create_scoped_token(&manager, "bench", &["incidents.read"])
        .expect("created");
    let (user, scoped) = (user.secret().expose(), scoped.secret().expose());
    let plain = &fx.keyring;
    for round in 1..=3 {
        let raw = fastest(|| {
            let out: [u8; 32] = Sha256::digest(black_box(one.as_bytes())).into();
            black_box(out);
        });
        let valid = fastest(|| assert!(plain.authenticate(black_box(&one), &get).is_ok()));
        let lim = fastest(|| limited(&kr, &one, &get));
        let user0 = fastest(|| assert!(plain.authenticate(black_box(user), &get).is_ok()));
        let user1 = fastest(|| limited(&kr, user, &get));
        let scoped0 = fastest(|| assert!(plain.authenticate(black_box(scoped), &read).is_ok()));
        let scoped1 = fastest(|| limited(&kr, scoped, &read));
        println!(
            "round {round}: sha256_raw {raw:.1} | general key: valid {valid:.1}, limited {lim:.1} \
             (+{:.1}, {:.2}x sha256_raw) | user token {user0:.1} -> {user1:.1} (+{:.1}) | \
             scoped {scoped0:.1} -> {scoped1:.1} (+{:.1})",
            lim - valid,
            lim / raw,
            user1 - user0,
            scoped1 - scoped0
        );
    }
}
