//! What `RestAuthLayer` costs per request, in-process (no socket, no runtime):
//! the same axum route with and without the layer, and the layer's parts.
//!
//! `cargo bench -p apikeys-http --bench layer`

use std::hint::black_box;

use apikeys::Request;
use apikeys_http::rest_token;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

mod app;

fn routes(c: &mut Criterion) {
    let mut apps = app::apps(false);
    let key = apps.key.clone();
    for app in [
        &mut apps.plain,
        &mut apps.route_layer,
        &mut apps.pass_layer,
        &mut apps.service,
    ] {
        assert_eq!(app::serve(app, app::request(&key)), 200);
    }
    let mut g = c.benchmark_group("axum_route");
    let cases: [(&str, &mut axum::Router); 4] = [
        ("plain", &mut apps.plain),
        ("route_layer_rest_auth", &mut apps.route_layer),
        ("route_layer_pass", &mut apps.pass_layer),
        ("get_service_rest_auth", &mut apps.service),
    ];
    for (name, app) in cases {
        g.bench_function(name, |b| {
            b.iter_batched(
                || app::request(&key),
                |req| app::serve(app, req),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("layer_parts");
    let req = app::request(&key);
    g.bench_function("rest_token", |b| {
        b.iter(|| rest_token(black_box(req.headers())).map(str::len))
    });
    let request = Request::rest("GET")
        .with_scope("incidents.read")
        .expect("scope");
    g.bench_function("authenticate", |b| {
        b.iter(|| apps.keyring.authenticate(black_box(&key), &request).is_ok())
    });
    let principal = apps.keyring.authenticate(&key, &request).expect("valid");
    g.bench_function("extensions_insert_principal", |b| {
        b.iter_batched(
            http::Extensions::new,
            |mut e| {
                e.insert(principal.clone());
                e
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, routes);
criterion_main!(benches);
