//! Heap allocations per request through the same axum route with and without
//! `RestAuthLayer`, counted by an instrumented allocator (in-process, no
//! socket; the request is built outside the counted region).
//!
//! `cargo bench -p apikeys-http --bench layer_allocs`
//!
//! With arguments `CASE COUNT` it only serves COUNT requests through one case,
//! for a profiler, with a stopped clock (`valgrind --tool=callgrind <bench binary> route_layer_rest_auth 20000`).

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

mod app;

const N: usize = 10_000;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let profile = (args.next(), args.next());
    let mut apps = app::apps(profile.0.is_some());
    let key = apps.key.clone();
    let cases: [(&str, &mut axum::Router); 4] = [
        ("plain", &mut apps.plain),
        ("route_layer_rest_auth", &mut apps.route_layer),
        ("route_layer_pass", &mut apps.pass_layer),
        ("get_service_rest_auth", &mut apps.service),
    ];
    if let (Some(only), Some(count)) = profile {
        let count: usize = count.parse().expect("COUNT is a number");
        let (_, router) = cases
            .into_iter()
            .find(|(n, _)| *n == only)
            .expect("CASE is one of the cases");
        for _ in 0..count {
            std::hint::black_box(app::serve(router, app::request(&key)));
        }
        return;
    }
    for (name, router) in cases {
        assert_eq!(app::serve(router, app::request(&key)), 200);
        let reqs: Vec<_> = (0..N).map(|_| app::request(&key)).collect();
        let region = Region::new(GLOBAL);
        for req in reqs {
            // Dropping the request (inside) frees what the caller allocated:
            // count allocations, not frees.
            std::hint::black_box(app::serve(router, req));
        }
        let s = region.change();
        println!(
            "{name:24} {:5.1} allocations, {:6.0} bytes per request",
            s.allocations as f64 / N as f64,
            s.bytes_allocated as f64 / N as f64
        );
    }
}
