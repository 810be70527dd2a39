//! Rate limits in `authenticate`: exact sliding windows, shared budgets,
//! overrides, and refused requests that spend nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use apikeys::{
    AccessLevel, Actor, Error, IssuedKey, Keyring, Limit, LimitClass, ManualClock, RateLimits,
    Request, Role, Timestamp,
};

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn keyring(limits: RateLimits) -> (Keyring, ManualClock) {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_800_000_000_000));
    let kr = Keyring::builder()
        .clock(clock.clone())
        .rate_limits(limits)
        .build()
        .unwrap();
    (kr, clock)
}

fn get() -> Request {
    Request::rest("GET")
}

fn admitted(kr: &Keyring, k: &IssuedKey, req: &Request) -> bool {
    match kr.authenticate(k.secret().expose(), req) {
        Ok(_) => true,
        Err(Error::RateLimited { .. }) => false,
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[test]
fn pagerduty_numbers_are_one_call_away() {
    let l = RateLimits::pagerduty();
    assert_eq!(
        l.limit(LimitClass::GeneralKey),
        Some(Limit::per_minute(960).unwrap())
    );
    assert_eq!(
        l.limit(LimitClass::User),
        Some(Limit::per_minute(960).unwrap())
    );
    assert_eq!(
        l.limit(LimitClass::ScopedAccount),
        Some(Limit::per_minute(960).unwrap())
    );
    assert_eq!(
        l.limit(LimitClass::EventsKey),
        Some(Limit::new(120, Duration::from_secs(60)).unwrap())
    );
}

#[test]
fn without_limits_nobody_meets_a_429() {
    let kr = Keyring::default();
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    for _ in 0..5_000 {
        let p = kr.authenticate(k.secret().expose(), &get()).unwrap();
        assert!(p.rate_limit().is_none());
    }
}

#[test]
fn exactly_the_limit_in_any_window_and_the_window_slides() {
    let (kr, clock) = keyring(RateLimits::pagerduty());
    let k = kr
        .create_integration_key(&Actor::new("acme", "PM", Role::Manager), "PSVC", "dd")
        .unwrap();
    let ev = Request::events();
    // 120 spread over the first 30 s: all admitted, the 121st refused.
    for i in 0..120 {
        assert!(admitted(&kr, &k, &ev), "request {i}");
        clock.advance(Duration::from_millis(250));
    }
    // now = 30 s after the first request
    match kr.authenticate(k.secret().expose(), &ev) {
        Err(Error::RateLimited { retry_after, limit }) => {
            assert_eq!(limit, 120);
            // The first admission (at 0 s) leaves the window at 60 s: 30 s from now.
            assert_eq!(retry_after, Duration::from_secs(30));
        }
        r => panic!("{r:?}"),
    }
    // Just before the first admission leaves the window: still refused.
    clock.advance(Duration::from_millis(29_999));
    assert!(!admitted(&kr, &k, &ev));
    // At 60 s exactly one slot frees (the request at 0 s), then the next at 60.25 s.
    clock.advance(Duration::from_millis(1));
    assert!(admitted(&kr, &k, &ev));
    assert!(!admitted(&kr, &k, &ev));
    clock.advance(Duration::from_millis(250));
    assert!(admitted(&kr, &k, &ev));
    assert!(!admitted(&kr, &k, &ev));
}

/// A burst at the end of one window and another at the start of the next must
/// not add up to more than the limit within any window (a fixed-window counter
/// or a token bucket would admit nearly twice the limit here).
#[test]
fn bursts_across_a_window_edge_never_exceed_the_limit() {
    let limits = RateLimits::none().with_limit(
        LimitClass::GeneralKey,
        Some(Limit::new(50, Duration::from_secs(10)).unwrap()),
    );
    let (kr, clock) = keyring(limits);
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let mut times = Vec::new();
    let mut t = 0u64;
    // Two seconds of hammering every 10 ms around 10 s, then more.
    for step in 0..3_000 {
        if admitted(&kr, &k, &get()) {
            times.push(t);
        }
        let dt = if step % 7 == 0 { 37 } else { 10 };
        clock.advance(Duration::from_millis(dt));
        t += dt;
    }
    assert!(times.len() > 200, "the test must cover several windows");
    // In every window (a, a + 10 s], at most 50 admissions; and windows that
    // start at an admission are full whenever requests kept coming.
    for (i, &a) in times.iter().enumerate() {
        let n = times[i..].iter().take_while(|&&x| x < a + 10_000).count();
        assert!(n <= 50, "{n} admissions in the 10 s from {a} ms");
    }
}

#[test]
fn a_users_tokens_share_one_budget_and_two_users_do_not() {
    let limits =
        RateLimits::none().with_limit(LimitClass::User, Some(Limit::per_minute(10).unwrap()));
    let (kr, _clock) = keyring(limits);
    let alice = Actor::new("acme", "PALICE", Role::Manager);
    let a1 = kr.create_user_token(&alice, "one").unwrap();
    let a2 = kr.create_user_token(&alice, "two").unwrap();
    let bob = kr
        .create_user_token(&Actor::new("acme", "PBOB", Role::Manager), "bob")
        .unwrap();
    for i in 0..10 {
        assert!(admitted(&kr, if i % 2 == 0 { &a1 } else { &a2 }, &get()));
    }
    assert!(!admitted(&kr, &a1, &get()));
    assert!(!admitted(&kr, &a2, &get()));
    for _ in 0..10 {
        assert!(admitted(&kr, &bob, &get()));
    }
    assert!(!admitted(&kr, &bob, &get()));
}

#[test]
fn scoped_tokens_share_their_accounts_budget() {
    let limits = RateLimits::none().with_limit(
        LimitClass::ScopedAccount,
        Some(Limit::per_minute(4).unwrap()),
    );
    let (kr, _clock) = keyring(limits);
    let m = Actor::new("acme", "PM", Role::Manager);
    let s1 = kr
        .create_scoped_token(&m, "a", &["incidents.read"])
        .unwrap();
    let s2 = kr
        .create_scoped_token(&m, "b", &["incidents.read"])
        .unwrap();
    let other = kr
        .create_scoped_token(
            &Actor::new("globex", "PG", Role::Manager),
            "c",
            &["incidents.read"],
        )
        .unwrap();
    let req = Request::rest("GET").with_scope("incidents.read").unwrap();
    for k in [&s1, &s2, &s1, &s2] {
        assert!(admitted(&kr, k, &req));
    }
    assert!(!admitted(&kr, &s1, &req));
    assert!(admitted(&kr, &other, &req));
}

#[test]
fn refused_requests_spend_no_budget() {
    let limits =
        RateLimits::none().with_limit(LimitClass::GeneralKey, Some(Limit::per_minute(3).unwrap()));
    let (kr, _clock) = keyring(limits);
    let ro = kr
        .create_general_key(&admin(), "ro", AccessLevel::ReadOnly)
        .unwrap();
    for _ in 0..100 {
        let e = kr
            .authenticate(ro.secret().expose(), &Request::rest("POST"))
            .unwrap_err();
        assert_eq!(e.http_status(), 403);
    }
    kr.disable(&admin(), &ro.record().id.to_string()).unwrap();
    for _ in 0..100 {
        assert_eq!(
            kr.authenticate(ro.secret().expose(), &get())
                .unwrap_err()
                .http_status(),
            401
        );
    }
    kr.enable(&admin(), &ro.record().id.to_string()).unwrap();
    for _ in 0..3 {
        assert!(admitted(&kr, &ro, &get()));
    }
    assert!(!admitted(&kr, &ro, &get()));
}

#[test]
fn successes_carry_limit_remaining_and_reset() {
    let (kr, _clock) = keyring(RateLimits::pagerduty());
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    for i in 0..5u32 {
        let p = kr.authenticate(k.secret().expose(), &get()).unwrap();
        let s = p.rate_limit().unwrap();
        assert_eq!((s.limit, s.remaining), (960, 959 - i));
        assert_eq!(s.reset, Duration::from_secs(60));
    }
}

#[test]
fn limits_change_per_account_and_per_key() {
    let (kr0, _) = keyring(RateLimits::none());
    let k = kr0
        .create_general_key(&admin(), "special", AccessLevel::FullAccess)
        .unwrap();
    let other = kr0
        .create_general_key(&admin(), "plain", AccessLevel::FullAccess)
        .unwrap();
    let g = kr0
        .create_general_key(
            &Actor::new("globex", "PG", Role::Owner),
            "globex",
            AccessLevel::FullAccess,
        )
        .unwrap();
    let limits = RateLimits::pagerduty()
        .with_account_limit(
            "acme",
            LimitClass::GeneralKey,
            Some(Limit::per_minute(2).unwrap()),
        )
        .with_key_limit(k.record().id, Some(Limit::per_minute(5).unwrap()));
    let kr = Keyring::builder()
        .shared_store(kr0.store().clone())
        .rate_limits(limits)
        .build()
        .unwrap();
    let count = |key: &IssuedKey| (0..20).filter(|_| admitted(&kr, key, &get())).count();
    assert_eq!(count(&k), 5, "the key's own limit wins");
    assert_eq!(
        count(&other),
        2,
        "the account's limit applies to its other keys"
    );
    assert_eq!(count(&g), 20, "other accounts keep the default (960)");
    let unlimited = RateLimits::pagerduty().with_key_limit(other.record().id, None);
    let kr = Keyring::builder()
        .shared_store(kr0.store().clone())
        .rate_limits(unlimited)
        .build()
        .unwrap();
    for _ in 0..2_000 {
        kr.authenticate(other.secret().expose(), &get()).unwrap();
    }
}

#[test]
fn rejections_are_counted_per_key() {
    let limits =
        RateLimits::none().with_limit(LimitClass::GeneralKey, Some(Limit::per_minute(1).unwrap()));
    let (kr, _clock) = keyring(limits);
    let a = kr
        .create_general_key(&admin(), "a", AccessLevel::FullAccess)
        .unwrap();
    let b = kr
        .create_general_key(&admin(), "b", AccessLevel::FullAccess)
        .unwrap();
    for _ in 0..4 {
        admitted(&kr, &a, &get());
    }
    admitted(&kr, &b, &get());
    let mut expected = vec![(a.record().id, 3)];
    expected.sort();
    assert_eq!(kr.rate_limit_rejections(), expected);
}

#[test]
fn threads_hammering_one_key_get_exactly_the_limit() {
    let limits = RateLimits::none().with_limit(
        LimitClass::GeneralKey,
        Some(Limit::new(500, Duration::from_secs(3600)).unwrap()),
    );
    let kr = Arc::new(Keyring::builder().rate_limits(limits).build().unwrap());
    let k = kr
        .create_general_key(&admin(), "hot", AccessLevel::FullAccess)
        .unwrap();
    let token: Arc<str> = k.secret().expose().into();
    let ok = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (kr, token, ok) = (kr.clone(), token.clone(), ok.clone());
            thread::spawn(move || {
                for _ in 0..1_000 {
                    match kr.authenticate(&token, &Request::rest("GET")) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(Error::RateLimited { .. }) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 500);
    assert_eq!(kr.rate_limit_rejections(), vec![(k.record().id, 3_500)]);
}
