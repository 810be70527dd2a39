//! Verification metrics (docs/design.md §12): every authentication's
//! final answer counted once, with the right kind and outcome, from any
//! number of threads; the latency histogram agrees with the counts; nothing
//! of a key in a label.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use apikeys::{
    AccessLevel, AccountSettings, Actor, AuthMetrics, AuthOutcome, KIND_LABELS, Keyring,
    LATENCY_BUCKETS, Limit, LimitClass, ManualClock, MetricsSnapshot, Origin, RateLimits, Request,
    Role, Timestamp,
};

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn metered(limits: Option<RateLimits>) -> (Keyring, Arc<AuthMetrics>) {
    let m = Arc::new(AuthMetrics::new());
    let mut b = Keyring::builder()
        .clock(ManualClock::new(Timestamp::from_unix_millis(
            1_800_000_000_000,
        )))
        .metrics(m.clone());
    if let Some(l) = limits {
        b = b.rate_limits(l);
    }
    (b.build().unwrap(), m)
}

/// (kind, outcome, count) of every series, to compare whole snapshots.
fn counts(s: &MetricsSnapshot) -> Vec<(&'static str, &'static str, u64)> {
    s.series
        .iter()
        .map(|s| (s.kind, s.outcome, s.count))
        .collect()
}

fn assert_consistent(s: &MetricsSnapshot) {
    for series in &s.series {
        assert_eq!(series.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert!(
            series.buckets.windows(2).all(|w| w[0] <= w[1]),
            "cumulative"
        );
        assert_eq!(
            *series.buckets.last().unwrap(),
            series.count,
            "+Inf = count"
        );
        assert!(series.sum_seconds >= 0.0 && series.sum_seconds.is_finite());
        assert!(KIND_LABELS.contains(&series.kind), "{}", series.kind);
        assert!(series.outcome.parse::<AuthOutcome>().is_ok());
    }
}

#[test]
fn each_final_answer_is_counted_once_with_its_kind_and_outcome() {
    let limits = RateLimits::none().with_limit(
        LimitClass::GeneralKey,
        Some(Limit::new(1, Duration::from_secs(60)).unwrap()),
    );
    let (kr, m) = metered(Some(limits));
    let manager = Actor::new("acme", "PMANAGER1", Role::Manager);
    let full = kr
        .create_general_key(&admin(), "full", AccessLevel::FullAccess)
        .unwrap();
    let ro = kr
        .create_general_key(&admin(), "ro", AccessLevel::ReadOnly)
        .unwrap();
    let ev = kr.create_integration_key(&manager, "PSVC1", "ev").unwrap();
    let tok = kr.create_user_token(&manager, "mine").unwrap();
    assert_eq!(m.snapshot().total(), 0, "management calls are not counted");

    let get = Request::rest("GET");
    let post = Request::rest("POST");
    // ok, then rate_limited: the same valid key, refused by its limit — the
    // final answer, never "ok" first.
    kr.authenticate(full.secret().expose(), &get).unwrap();
    let e = kr.authenticate(full.secret().expose(), &get).unwrap_err();
    assert_eq!(e.kind_name(), "rate_limited");
    // forbidden: a read-only key's write (refused before its limit is counted).
    let e = kr.authenticate(ro.secret().expose(), &post).unwrap_err();
    assert_eq!(e.kind_name(), "forbidden");
    // wrong_api: an Events key on REST.
    let e = kr.authenticate(ev.secret().expose(), &get).unwrap_err();
    assert_eq!(e.kind_name(), "wrong_api");
    // unauthorized: malformed (no kind), unknown (its format's kind), disabled.
    kr.authenticate("not a key at all", &get).unwrap_err();
    let unknown = apikeys::KeyKind::Scoped.generate().unwrap();
    kr.authenticate(unknown.expose(), &get).unwrap_err();
    kr.disable(&admin(), &ro.record().id.to_string()).unwrap();
    kr.authenticate(ro.secret().expose(), &get).unwrap_err();
    // ok on the Events API, through try_authenticate and authenticate_from.
    kr.try_authenticate(ev.secret().expose(), &Request::events())
        .unwrap()
        .unwrap();
    kr.authenticate_from(
        tok.secret().expose(),
        &get,
        &Origin {
            remote_address: Some(&"10.0.0.1"),
            path: Some("/incidents"),
        },
    )
    .unwrap();
    // plan_restricted: user tokens need Advanced Permissions.
    kr.set_account(
        "acme",
        AccountSettings {
            rest_api: true,
            advanced_permissions: false,
        },
    )
    .unwrap();
    let e = kr.authenticate(tok.secret().expose(), &get).unwrap_err();
    assert_eq!(e.kind_name(), "plan_restricted");

    let snap = m.snapshot();
    assert_consistent(&snap);
    assert_eq!(
        counts(&snap),
        vec![
            ("general", "ok", 1),
            ("general", "unauthorized", 1),
            ("general", "forbidden", 1),
            ("general", "rate_limited", 1),
            ("user_token", "ok", 1),
            ("user_token", "plan_restricted", 1),
            ("scoped", "unauthorized", 1),
            ("integration", "ok", 1),
            ("integration", "wrong_api", 1),
            ("malformed", "unauthorized", 1),
        ]
    );
    assert_eq!(snap.total(), 10);
    assert!(std::ptr::eq(kr.metrics().unwrap().as_ref(), m.as_ref()));
}

#[test]
fn a_store_failure_is_counted_as_store_and_a_try_that_would_wait_not_at_all() {
    let m = Arc::new(AuthMetrics::new());
    let kr = Keyring::builder()
        .store(common::BrokenStore)
        .metrics(m.clone())
        .build()
        .unwrap();
    let token = apikeys::KeyKind::General.generate().unwrap();
    let get = Request::rest("GET");
    // The broken store knows nothing from memory: the try answers `None`.
    assert!(kr.try_authenticate(token.expose(), &get).is_none());
    assert_eq!(m.snapshot().total(), 0, "no answer, nothing counted");
    let e = kr.authenticate(token.expose(), &get).unwrap_err();
    assert_eq!((e.kind_name(), e.http_status()), ("store", 500));
    // A malformed token never reaches the store: answered by the try.
    assert!(kr.try_authenticate("bad", &get).unwrap().is_err());
    assert_eq!(
        counts(&m.snapshot()),
        vec![("general", "store", 1), ("malformed", "unauthorized", 1)]
    );
}

#[test]
fn a_try_that_answers_counts_once() {
    // The in-memory store always answers: each try counts exactly once, like
    // the call it stands for.
    let (kr, m) = metered(None);
    let k = kr
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    let get = Request::rest("GET");
    assert!(kr.try_authenticate(k.secret().expose(), &get).is_some());
    assert!(
        kr.try_authenticate_from("x", &get, &Origin::default())
            .is_some()
    );
    assert_eq!(
        counts(&m.snapshot()),
        vec![("general", "ok", 1), ("malformed", "unauthorized", 1)]
    );
}

#[test]
fn without_metrics_nothing_is_counted_and_none_is_installed() {
    let kr = Keyring::default();
    assert!(kr.metrics().is_none());
    let _ = kr.authenticate("x", &Request::rest("GET"));
    let m = AuthMetrics::new();
    assert_eq!(m.snapshot(), MetricsSnapshot::default());
    assert_eq!(m.snapshot().total(), 0);
    assert!(m.snapshot().series("general", "ok").is_none());
}

#[test]
fn installed_twice_the_last_wins_and_one_metrics_serves_two_keyrings() {
    let first = Arc::new(AuthMetrics::new());
    let second = Arc::new(AuthMetrics::new());
    let a = Keyring::builder()
        .metrics(first.clone())
        .metrics(second.clone())
        .build()
        .unwrap();
    let b = Keyring::builder().metrics(second.clone()).build().unwrap();
    let get = Request::rest("GET");
    let _ = a.authenticate("x", &get);
    let _ = b.authenticate("y", &get);
    assert_eq!(first.snapshot().total(), 0);
    assert_eq!(
        counts(&second.snapshot()),
        vec![("malformed", "unauthorized", 2)]
    );
}

#[test]
fn concurrent_authentications_add_up_exactly() {
    let (kr, m) = metered(None);
    let kr = Arc::new(kr);
    let keys: Vec<String> = (0..4)
        .map(|i| {
            kr.create_general_key(&admin(), &format!("k{i}"), AccessLevel::FullAccess)
                .unwrap()
                .secret()
                .expose()
                .to_owned()
        })
        .collect();
    let keys = Arc::new(keys);
    const THREADS: usize = 8;
    const CALLS: usize = 2_000;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let kr = kr.clone();
            let keys = keys.clone();
            thread::spawn(move || {
                let get = Request::rest("GET");
                for i in 0..CALLS {
                    if (i + t) % 3 == 0 {
                        assert!(kr.authenticate("garbage", &get).is_err());
                    } else {
                        kr.authenticate(&keys[(i + t) % keys.len()], &get).unwrap();
                    }
                }
            })
        })
        .collect();
    // Snapshots taken meanwhile never go back and always agree with themselves.
    let mut last = 0;
    while !handles.iter().all(|h| h.is_finished()) {
        let s = m.snapshot();
        assert_consistent(&s);
        assert!(s.total() >= last, "a snapshot went back");
        last = s.total();
    }
    for h in handles {
        h.join().unwrap();
    }
    let expected_bad: u64 = (0..THREADS)
        .map(|t| (0..CALLS).filter(|i| (i + t) % 3 == 0).count() as u64)
        .sum();
    let snap = m.snapshot();
    assert_consistent(&snap);
    assert_eq!(
        counts(&snap),
        vec![
            ("general", "ok", (THREADS * CALLS) as u64 - expected_bad),
            ("malformed", "unauthorized", expected_bad),
        ]
    );
}

#[test]
fn no_key_material_reaches_a_label_or_debug() {
    let (kr, m) = metered(None);
    let k = kr
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    let token = k.secret().expose().to_owned();
    let get = Request::rest("GET");
    kr.authenticate(&token, &get).unwrap();
    // Near misses too: the key with a character changed, and longer.
    let mut near = token.clone();
    near.replace_range(19..20, if token.ends_with('a') { "b" } else { "a" });
    let _ = kr.authenticate(&near, &get);
    let _ = kr.authenticate(&format!("{token}x"), &get);
    let snap = m.snapshot();
    let text = format!("{snap:?} {m:?}");
    for needle in [&token[..], &token[..8], &token[12..], &near[..]] {
        assert!(!text.contains(needle), "{text}");
    }
    for s in &snap.series {
        assert!(KIND_LABELS.contains(&s.kind));
    }
}

#[test]
fn latency_is_measured_in_real_time() {
    let (kr, m) = metered(None);
    let get = Request::rest("GET");
    for _ in 0..100 {
        let _ = kr.authenticate("nope", &get);
    }
    let snap = m.snapshot();
    let s = snap.series("malformed", "unauthorized").unwrap();
    assert_eq!(s.count, 100);
    // Real time, not the keyring's (manual, frozen) clock: above zero, and
    // a malformed token is refused well under the top bucket (1 s) each.
    assert!(
        s.sum_seconds > 0.0 && s.sum_seconds < 100.0,
        "{}",
        s.sum_seconds
    );
}
