//! Per-request time of the same axum route with and without `RestAuthLayer`,
//! in-process (no socket): many short batches, alternating between the
//! cases, and the fastest batch of each case reported next to the median.
//! Other load on the machine only ever adds time, so the fastest batches are
//! the steadiest figure on a shared machine; the median shows how much noise
//! there was.
//!
//! `cargo bench -p apikeys-http --bench layer_floor [-- ROUNDS]`

use std::time::Instant;

mod app;

const BATCH: usize = 1000;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let mut apps = app::apps(false);
    let key = apps.key.clone();
    let mut cases: [(&str, &mut axum::Router, Vec<f64>); 4] = [
        ("plain", &mut apps.plain, Vec::new()),
        ("route_layer_rest_auth", &mut apps.route_layer, Vec::new()),
        ("route_layer_pass", &mut apps.pass_layer, Vec::new()),
        ("get_service_rest_auth", &mut apps.service, Vec::new()),
    ];
    for (_, router, _) in &mut cases {
        for _ in 0..BATCH {
            assert_eq!(app::serve(router, app::request(&key)), 200);
        }
    }
    for round in 0..rounds {
        let n = cases.len();
        for j in 0..n {
            let (_, router, times) = &mut cases[(j + round) % n];
            let reqs: Vec<_> = (0..BATCH).map(|_| app::request(&key)).collect();
            let t = Instant::now();
            for req in reqs {
                std::hint::black_box(app::serve(router, req));
            }
            times.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    let stats: Vec<(&str, f64, f64)> = cases
        .iter_mut()
        .map(|(name, _, times)| {
            times.sort_by(f64::total_cmp);
            (*name, times[0], times[times.len() / 2])
        })
        .collect();
    let (_, plain_min, plain_median) = stats[0];
    println!("{rounds} alternating batches of {BATCH} requests per case (ns per request):");
    for (name, min, median) in stats {
        println!(
            "{name:24} fastest {min:7.1} (+{:6.1})  median {median:7.1} (+{:6.1})",
            min - plain_min,
            median - plain_median
        );
    }
    // The layer's parts, the same way.
    let request = apikeys::Request::rest("GET")
        .with_scope("incidents.read")
        .expect("scope");
    let req = app::request(&key);
    let mut parts = [("rest_token", Vec::new()), ("authenticate", Vec::new())];
    for _ in 0..rounds {
        for (name, times) in &mut parts {
            let t = Instant::now();
            for _ in 0..BATCH {
                if *name == "rest_token" {
                    std::hint::black_box(apikeys_http::rest_token(std::hint::black_box(
                        req.headers(),
                    )))
                    .expect("a key");
                } else {
                    std::hint::black_box(
                        apps.keyring
                            .authenticate(std::hint::black_box(&key), &request),
                    )
                    .expect("valid");
                }
            }
            times.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    for (name, mut times) in parts {
        times.sort_by(f64::total_cmp);
        println!(
            "{name:24} fastest {:7.1}           median {:7.1}",
            times[0],
            times[times.len() / 2]
        );
    }
}
