//! A dudect-style check that comparing digests takes the same time whatever
//! the digests hold: Welch's t-test between two classes of inputs, timed in a
//! random interleaving. |t| < 4.5 means no leak was found.
//!
//! Ignored by default (it is a measurement, about a second in release mode). Run:
//! `cargo test --release -p apikeys --test constant_time -- --ignored --nocapture`

use std::hint::black_box;
use std::time::Instant;

use apikeys::Digest;
use subtle::ConstantTimeEq;

/// Comparisons per timed sample (one `Instant` pair costs more than one comparison).
const INNER: usize = 16;
/// Timed samples per class pair: 500,000 samples x 16 = 8,000,000 comparisons.
const SAMPLES: usize = 500_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough to interleave the classes unpredictably for the CPU.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Welch's t between the timings of `f(base, class0)` and `f(base, class1)`.
fn welch_t(
    f: impl Fn(&Digest, &Digest) -> bool,
    base: &Digest,
    class0: &Digest,
    class1: &Digest,
) -> f64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut times: [Vec<f64>; 2] = [Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES)];
    // Warm up.
    for _ in 0..10_000 {
        black_box(f(black_box(base), black_box(class0)));
    }
    for _ in 0..2 * SAMPLES {
        let c = (rng.next() >> 63) as usize;
        // Copy the input into the same place for both classes, so that only its
        // contents differ, not its address or cache-line alignment.
        let probe: Digest = black_box(if c == 0 { *class0 } else { *class1 });
        let t0 = Instant::now();
        for _ in 0..INNER {
            black_box(f(black_box(base), black_box(&probe)));
        }
        times[c].push(t0.elapsed().as_nanos() as f64);
    }
    // Crop the slowest 5% of all samples (interrupts, preemption), as dudect does.
    let mut all: Vec<f64> = times.iter().flatten().copied().collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let cut = all[all.len() * 95 / 100];
    let stats = |v: &Vec<f64>| {
        let kept: Vec<f64> = v.iter().copied().filter(|&x| x <= cut).collect();
        let n = kept.len() as f64;
        let mean = kept.iter().sum::<f64>() / n;
        let var = kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var, n)
    };
    let (m0, v0, n0) = stats(&times[0]);
    let (m1, v1, n1) = stats(&times[1]);
    let t = (m0 - m1) / (v0 / n0 + v1 / n1).sqrt();
    println!(
        "    class 0: {:.2} ns/cmp, class 1: {:.2} ns/cmp, samples {n0}+{n1}, t = {t:.2}",
        m0 / INNER as f64,
        m1 / INNER as f64
    );
    t
}

fn digests() -> (Digest, Digest, Digest, Digest) {
    let base = apikeys::KeyHasher::sha256().digest(b"some key");
    let mut first = *base.as_bytes();
    first[0] ^= 0x80;
    let mut last = *base.as_bytes();
    last[31] ^= 0x01;
    (
        base,
        base,
        Digest::from_bytes(first),
        Digest::from_bytes(last),
    )
}

fn ct(a: &Digest, b: &Digest) -> bool {
    a.ct_eq(b).into()
}

/// An early-exit comparison, byte by byte: what the check must catch.
fn leaky(a: &Digest, b: &Digest) -> bool {
    for (x, y) in a.as_bytes().iter().zip(b.as_bytes()) {
        if black_box(*x) != black_box(*y) {
            return false;
        }
    }
    true
}

#[test]
#[ignore = "a timing measurement: run with --release --ignored --nocapture"]
fn digest_comparison_is_constant_time() {
    let (base, same, first, last) = digests();
    println!("ct_eq, matching vs differing at the first byte:");
    let t1 = welch_t(ct, &base, &same, &first);
    println!("ct_eq, differing at the first vs the last byte:");
    let t2 = welch_t(ct, &base, &first, &last);
    println!("early-exit comparison (the leak the check must see), first vs last byte:");
    let t3 = welch_t(leaky, &base, &first, &last);
    assert!(
        t3.abs() > 4.5,
        "the harness failed to see a known leak (t = {t3:.2}); its verdicts mean nothing"
    );
    assert!(
        t1.abs() < 4.5,
        "matching vs non-matching digests take different times: t = {t1:.2}"
    );
    assert!(
        t2.abs() < 4.5,
        "where digests differ changes the time: t = {t2:.2}"
    );
}
