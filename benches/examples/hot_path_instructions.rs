//! Instructions per call of the hot path, counted by callgrind: a figure that
//! other work on the machine does not move, where criterion's times do.
//!
//! ```text
//! RUSTFLAGS="--cfg rustix_use_libc" cargo build --release -p apikeys-benches \
//!     --example hot_path_instructions --target-dir target/callgrind
//! for mode in sha256_raw valid rotating metrics limited malformed; do for n in 10000 20000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='hot_path_instructions::run_*' \
//!         target/callgrind/release/examples/hot_path_instructions $mode $n 2>&1 | grep Collected
//! done; done
//! ```
//!
//! Instructions per call = (count at 20,000 − count at 10,000) / 10,000:
//! only the loops are counted (`--toggle-collect`), and the difference
//! cancels what is counted once. The pattern names this file's functions:
//! `'*run_*'` also matched glibc's `__run_exit_handlers`, whose thread-local
//! destructors' `free` costs a varying amount per run (340,000
//! instructions, so ±34 per call in the difference). Modes: `sha256_raw` (`Sha256::digest` of
//! the key, the floor), `valid` (`Keyring::authenticate`, a general key,
//! `GET`, as `hot_path/authenticate_valid`), `rotating` (the same for a key
//! in a rotation's overlap, as `hot_path/authenticate_rotating`), `metrics`
//! (`valid` on a keyring with verification metrics installed, as
//! `hot_path/authenticate_valid_metrics`), `limited`
//! (the same under PagerDuty's limits, in-process limiter, as
//! `hot_path/authenticate_limited`), `malformed` (a key the parser refuses,
//! as `hot_path/verify_malformed` but through `authenticate`). The
//! keyring has a `MemoryStore` of 1,024 keys.
//!
//! Two more modes time instead of counting (no valgrind):
//! `time N ROUNDS` runs `sha256_raw`, `valid` and `metrics` in alternating
//! rounds of N calls (the order of `valid` and `metrics` alternating too) and
//! prints the fastest round of each and the difference, so both sides of the
//! ratio come from one run; `clock N` times `Instant::now` + `elapsed`
//! alone (what a metered call adds in clock reads). docs/performance.md,
//! "Verification metrics".
//!
//! `rustix_use_libc` (and its own target directory, so the normal build is
//! not rebuilt): valgrind 3.19 stops rustix's own vDSO lookup with SIGSEGV.
//! Under valgrind SHA-256 runs without SHA-NI, so the floor counts the
//! portable code; the difference between `valid` and `rotating`, and
//! between two builds, is what the counts are for.

use std::hint::black_box;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use apikeys::{
    AccessLevel, Actor, AuthMetrics, Clock, Keyring, MemoryStore, RateLimits, Request, Role,
    Timestamp,
};
use sha2::{Digest as _, Sha256};

#[inline(never)]
fn run_sha256_raw(key: &str, n: usize) {
    for _ in 0..n {
        let out: [u8; 32] = Sha256::digest(black_box(key.as_bytes())).into();
        black_box(out);
    }
}

#[inline(never)]
fn run_authenticate(kr: &Keyring, key: &str, get: &Request, n: usize) {
    for _ in 0..n {
        assert!(kr.authenticate(black_box(key), get).is_ok());
    }
}

/// Off and on (and the SHA-256 floor) timed in alternating rounds of one run:
/// the fastest round of each, and the median of the per-round differences.
fn time(rounds: usize, n: usize) {
    let off = Keyring::new(MemoryStore::new());
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let on = Keyring::builder()
        .shared_store(off.store().clone())
        .metrics(Arc::new(AuthMetrics::new()))
        .build()
        .expect("no pepper");
    let keys: Vec<String> = (0..1024)
        .map(|i| {
            off.create_general_key(&admin, &format!("k{i}"), AccessLevel::FullAccess)
                .expect("create")
                .secret()
                .expose()
                .to_owned()
        })
        .collect();
    let key = &keys[0];
    let get = Request::rest("GET");
    assert!(off.authenticate(key, &get).is_ok() && on.authenticate(key, &get).is_ok());
    let per = |t: std::time::Duration| t.as_nanos() as f64 / n as f64;
    let (mut sha, mut a, mut b, mut diff) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let t = Instant::now();
        run_sha256_raw(key, n);
        sha.push(per(t.elapsed()));
        // Alternate which goes first.
        let (x, y) = if r % 2 == 0 { (&off, &on) } else { (&on, &off) };
        let t = Instant::now();
        run_authenticate(x, key, &get, n);
        let tx = per(t.elapsed());
        let t = Instant::now();
        run_authenticate(y, key, &get, n);
        let ty = per(t.elapsed());
        let (toff, ton) = if r % 2 == 0 { (tx, ty) } else { (ty, tx) };
        a.push(toff);
        b.push(ton);
        diff.push(ton - toff);
    }
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let mut d = diff.clone();
    d.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let (s, off_ns, on_ns) = (min(&sha), min(&a), min(&b));
    println!("rounds {rounds} x {n} calls; fastest round, ns/call:");
    println!("  sha256_raw                  {s:.1}");
    println!(
        "  authenticate_valid (off)    {off_ns:.1}  ratio to sha256_raw {:.3}",
        off_ns / s
    );
    println!(
        "  authenticate_valid_metrics  {on_ns:.1}  ratio to sha256_raw {:.3}",
        on_ns / s
    );
    println!(
        "  on - off: fastest {:.1} ns, median of rounds {:.1} ns; on/off {:.3}, off/on {:.3}",
        on_ns - off_ns,
        d[d.len() / 2],
        on_ns / off_ns,
        off_ns / on_ns
    );
}

#[inline(never)]
fn run_malformed(kr: &Keyring, get: &Request, n: usize) {
    // Right length, a '+' in the middle: refused by the parser, nothing hashed.
    for _ in 0..n {
        assert!(
            kr.authenticate(black_box("abcdefghij+123456789"), get)
                .is_err()
        );
    }
}

/// 63 ms further on at every reading (no real clock: valgrind cannot run
/// the vDSO one): the limiter takes its admit path every time, as in
/// `hot_path/authenticate_limited`.
struct TickingClock(AtomicU64);

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        let ticks = self.0.load(Ordering::Relaxed);
        self.0.store(ticks + 1, Ordering::Relaxed);
        Timestamp::from_unix_millis(1_800_000_000_000 + 63 * ticks)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "valid".into());
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    if mode == "clock" {
        // What the two clock reads of a metered call cost alone.
        let mut best = f64::INFINITY;
        for _ in 0..201 {
            let t = Instant::now();
            for _ in 0..n {
                let s = Instant::now();
                black_box(s.elapsed());
            }
            best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        println!("Instant::now + elapsed: {best:.1} ns (fastest of 201 rounds of {n})");
        return;
    }
    if mode == "time" {
        let rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(21);
        return time(rounds, n);
    }
    let kr = if mode == "metrics" {
        Keyring::builder()
            .store(MemoryStore::new())
            .metrics(Arc::new(AuthMetrics::new()))
            .build()
            .expect("no pepper")
    } else if mode == "limited" {
        Keyring::builder()
            .store(MemoryStore::new())
            .clock(TickingClock(AtomicU64::new(0)))
            .rate_limits(RateLimits::pagerduty())
            .build()
            .expect("keyring")
    } else {
        Keyring::new(MemoryStore::new())
    };
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let keys: Vec<String> = (0..1024)
        .map(|i| {
            kr.create_general_key(&admin, &format!("k{i}"), AccessLevel::FullAccess)
                .expect("create")
                .secret()
                .expose()
                .to_owned()
        })
        .collect();
    let get = Request::rest("GET");
    let key = if mode == "rotating" {
        // In its overlap: rotated with a 30-day grace, the new key not used.
        let id = kr.authenticate(&keys[1], &get).expect("valid").key_id();
        kr.rotate(&admin, &id.to_string(), Duration::from_secs(30 * 86_400))
            .expect("rotate");
        &keys[1]
    } else {
        &keys[0]
    };
    // The first call notes the key's use; the loop's calls then do not write.
    assert!(kr.authenticate(key, &get).is_ok());
    match mode.as_str() {
        "sha256_raw" => run_sha256_raw(key, n),
        "valid" | "rotating" | "metrics" | "limited" => run_authenticate(&kr, key, &get, n),
        "malformed" => run_malformed(&kr, &get, n),
        other => panic!(
            "unknown mode {other:?} (sha256_raw, valid, rotating, metrics, limited, malformed)"
        ),
    }
}
