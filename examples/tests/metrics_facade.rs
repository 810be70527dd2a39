//! Verification metrics through the `metrics` crate facade, rendered by
//! `metrics-exporter-prometheus` as the http_incidents example's `/metrics`
//! does: the final answer of each authentication, by kind and outcome, and
//! a latency histogram whose counts equal the counter's (docs/design.md §12).

use std::sync::Arc;
use std::time::Duration;

use apikeys::{
    AccessLevel, Actor, AuthMetrics, Keyring, LATENCY_BUCKETS, Limit, LimitClass, RateLimits,
    Request, Role,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

#[test]
fn the_final_answers_reach_prometheus_text_with_static_labels() {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("apikeys_authentication_duration_seconds".into()),
            &LATENCY_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let core = Arc::new(AuthMetrics::new().forwarding());
    let kr = Keyring::builder()
        .rate_limits(RateLimits::none().with_limit(
            LimitClass::GeneralKey,
            Some(Limit::new(2, Duration::from_secs(60)).unwrap()),
        ))
        .metrics(core.clone())
        .build()
        .unwrap();
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let full = kr
        .create_general_key(&admin, "full", AccessLevel::FullAccess)
        .unwrap();
    let ro = kr
        .create_general_key(&admin, "ro", AccessLevel::ReadOnly)
        .unwrap();
    let get = Request::rest("GET");
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..3 {
            let _ = kr.authenticate(full.secret().expose(), &get); // ok, ok, rate_limited
        }
        let _ = kr.authenticate(ro.secret().expose(), &Request::rest("POST")); // forbidden
        let _ = kr.authenticate(full.secret().expose(), &Request::events()); // wrong_api
        let _ = kr.authenticate("Token token=oops", &get); // malformed
    });
    handle.run_upkeep();
    let text = handle.render();

    let expected = [
        ("general", "ok", 2.0),
        ("general", "rate_limited", 1.0),
        ("general", "forbidden", 1.0),
        ("general", "wrong_api", 1.0),
        ("malformed", "unauthorized", 1.0),
    ];
    for (kind, outcome, n) in expected {
        let labels = format!("{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
        assert_eq!(
            sample(&text, &format!("apikeys_authentications_total{labels}")),
            Some(n),
            "{kind}/{outcome} in\n{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("apikeys_authentication_duration_seconds_count{labels}")
            ),
            Some(n),
            "histogram count of {kind}/{outcome}"
        );
        let inf = format!(
            "apikeys_authentication_duration_seconds_bucket{{kind=\"{kind}\",outcome=\"{outcome}\",le=\"+Inf\"}}"
        );
        assert_eq!(sample(&text, &inf), Some(n), "{inf}");
    }
    // "ok" is counted for admitted requests only: the refused third is not.
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("apikeys_authentications_total{"))
            .count(),
        expected.len(),
        "{text}"
    );
    // The facade and the core's own counts agree.
    assert_eq!(core.snapshot().total(), 6);
    for k in [&full, &ro] {
        let token = k.secret().expose();
        assert!(!text.contains(token) && !text.contains(&token[..10]));
    }
    assert!(!text.contains("oops"));
}

#[test]
fn with_no_recorder_the_facade_drops_them_and_the_core_still_counts() {
    let core = Arc::new(AuthMetrics::new().forwarding());
    let kr = Keyring::builder().metrics(core.clone()).build().unwrap();
    let _ = kr.authenticate("x", &Request::rest("GET"));
    assert_eq!(core.snapshot().total(), 1);
}
