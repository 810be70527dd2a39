//! Verification metrics allocate nothing per authentication: the same number
//! of allocations (none, for a valid key from memory) with metrics off, on,
//! and on with the `metrics` facade forwarding to no recorder (its keys are
//! static; a recorder's own storage is its own). docs/design.md §12.

use std::alloc::System;
use std::sync::Arc;

use apikeys::{AccessLevel, Actor, AuthMetrics, Keyring, Request, Role};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made by `n` authentications of `token` and of a malformed token.
fn allocations(kr: &Keyring, token: &str, n: usize) -> usize {
    let get = Request::rest("GET");
    // Warm: the first use is written, thread slots and static keys are made.
    for _ in 0..3 {
        assert!(kr.authenticate(token, &get).is_ok());
        assert!(kr.authenticate("malformed", &get).is_err());
    }
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        assert!(kr.authenticate(token, &get).is_ok());
        let _ = kr.authenticate("malformed", &get);
    }
    region.change().allocations
}

#[test]
fn metrics_add_no_allocation_per_authentication() {
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let plain = Keyring::default();
    let core = Arc::new(AuthMetrics::new());
    let metered = Keyring::builder()
        .shared_store(plain.store().clone())
        .metrics(core.clone())
        .build()
        .unwrap();
    let forwarding = Keyring::builder()
        .shared_store(plain.store().clone())
        .metrics(Arc::new(AuthMetrics::new().forwarding()))
        .build()
        .unwrap();
    let key = plain
        .create_general_key(&admin, "k", AccessLevel::FullAccess)
        .unwrap();
    let token = key.secret().expose();
    // The allocator counts every thread's allocations, and the keyring's
    // background threads (the last-use flusher, the coarse clock) may
    // allocate during a window: take the fewest of five windows. An
    // allocation per authentication would be in every window (1,000 or more).
    let fewest = |kr: &Keyring| (0..5).map(|_| allocations(kr, token, 1_000)).min().unwrap();
    let off = fewest(&plain);
    let on = fewest(&metered);
    let facade = fewest(&forwarding);
    // A refusal builds its error (the malformed token's): the same count in all three.
    assert_eq!(
        (on, facade),
        (off, off),
        "off {off}, on {on}, facade {facade}"
    );
    assert_eq!(core.snapshot().total(), 5 * 2_006);
}
