//! `Keyring::authenticate`: every check of docs/design.md §3, in order, with its error.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use apikeys::{
    AccessLevel, AccountSettings, Actor, Api, AuthFailure, Error, KeyKind, Keyring, ManualClock,
    NewKey, Request, Role, Timestamp,
};
use common::{BrokenStore, CountingStore};

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn manager() -> Actor {
    Actor::new("acme", "PMGR1", Role::Manager)
}

fn get() -> Request {
    Request::rest("GET")
}

fn post(scope: &str) -> Request {
    Request::rest("POST").with_scope(scope).unwrap()
}

fn assert_err(r: Result<apikeys::Principal, Error>, status: u16, code: u32) -> Error {
    let e = r.unwrap_err();
    assert_eq!((e.http_status(), e.code()), (status, code), "{e:?}");
    e
}

fn unauthorized(r: Result<apikeys::Principal, Error>) -> AuthFailure {
    match assert_err(r, 401, 2006) {
        Error::Unauthorized(f) => f,
        e => panic!("expected Unauthorized, got {e:?}"),
    }
}

#[test]
fn malformed_tokens_are_unauthorized_without_touching_the_store() {
    let store = Arc::new(CountingStore::default());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let huge = "x".repeat(10 << 20);
    for t in [
        "",
        "short",
        "abcdefghij012345678+",
        "u+abc",
        &huge,
        "abcdefghij\x00123456789",
        "ééééééééééé",
    ] {
        for req in [get(), Request::events()] {
            let f = unauthorized(kr.authenticate(t, &req));
            assert!(matches!(f, AuthFailure::Malformed(_)), "{f:?}");
        }
    }
    assert_eq!(
        store.around.calls(),
        0,
        "a malformed key must never reach the store"
    );
}

#[test]
fn a_key_on_the_wrong_api_is_refused_before_the_store() {
    let store = Arc::new(CountingStore::default());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let rest = kr
        .create_general_key(&admin(), "rest", AccessLevel::FullAccess)
        .unwrap();
    let events = kr
        .create_integration_key(&manager(), "PSVC1", "events")
        .unwrap();
    let routing = kr.create_routing_key(&manager(), "orch", "events").unwrap();
    let before = store.around.finds.load(Ordering::SeqCst);
    // A REST key on the Events API: 400.
    let e = assert_err(
        kr.authenticate(rest.secret().expose(), &Request::events()),
        400,
        2006,
    );
    assert!(matches!(
        e,
        Error::WrongApi {
            key_api: Api::Rest,
            request_api: Api::Events
        }
    ));
    // An Events key on REST: 401.
    for k in [&events, &routing] {
        let e = assert_err(kr.authenticate(k.secret().expose(), &get()), 401, 2006);
        assert!(matches!(
            e,
            Error::WrongApi {
                key_api: Api::Events,
                request_api: Api::Rest
            }
        ));
    }
    assert_eq!(
        store.around.finds.load(Ordering::SeqCst),
        before,
        "the API check comes before the lookup"
    );
    // Each works on its own API.
    kr.authenticate(rest.secret().expose(), &get()).unwrap();
    let p = kr
        .authenticate(events.secret().expose(), &Request::events())
        .unwrap();
    assert_eq!(
        (p.kind(), p.target()),
        (KeyKind::Integration, Some("PSVC1"))
    );
    kr.authenticate(routing.secret().expose(), &Request::events())
        .unwrap();
}

#[test]
fn unknown_and_deleted_keys_are_unauthorized() {
    let kr = Keyring::default();
    for kind in KeyKind::ALL {
        let never = kind.generate().unwrap();
        let req = if kind.api() == Api::Rest {
            get()
        } else {
            Request::events()
        };
        assert_eq!(
            unauthorized(kr.authenticate(never.expose(), &req)),
            AuthFailure::Unknown
        );
    }
    let k = kr
        .create_general_key(&admin(), "doomed", AccessLevel::FullAccess)
        .unwrap();
    kr.delete(&admin(), &k.record().id.to_string()).unwrap();
    assert_eq!(
        unauthorized(kr.authenticate(k.secret().expose(), &get())),
        AuthFailure::Unknown
    );
}

#[test]
fn disabled_keys_are_unauthorized_until_enabled() {
    let kr = Keyring::default();
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = k.record().id.to_string();
    let rec = kr.disable(&admin(), &id).unwrap();
    let d = rec.disabled.as_ref().unwrap();
    assert_eq!(&*d.by, "PADMIN1");
    let e = kr.authenticate(k.secret().expose(), &get()).unwrap_err();
    assert_eq!(e.reason(), "disabled key");
    assert_eq!(
        e.to_string(),
        Error::Unauthorized(AuthFailure::Unknown).to_string(),
        "the client is not told why"
    );
    kr.enable(&admin(), &id).unwrap();
    kr.authenticate(k.secret().expose(), &get()).unwrap();
}

#[test]
fn expiry_follows_the_clock() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_800_000_000_000));
    let kr = Keyring::builder().clock(clock.clone()).build().unwrap();
    let t0 = clock_now(&clock);
    let k = kr
        .create(
            &admin(),
            NewKey::general("temp", AccessLevel::FullAccess)
                .expires_at(t0.saturating_add(Duration::from_secs(3600))),
        )
        .unwrap();
    kr.authenticate(k.secret().expose(), &get()).unwrap();
    clock.advance(Duration::from_secs(3599));
    kr.authenticate(k.secret().expose(), &get()).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        unauthorized(kr.authenticate(k.secret().expose(), &get())),
        AuthFailure::Expired
    );
    // An expiry in the past is refused at creation.
    let e = kr
        .create(
            &admin(),
            NewKey::general("old", AccessLevel::FullAccess).expires_at(t0),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidInput {
                field: "expires_at",
                ..
            }
        ),
        "{e:?}"
    );
}

fn clock_now(c: &ManualClock) -> Timestamp {
    apikeys::Clock::now(c)
}

#[test]
fn legacy_plans_refuse_rest_but_not_events() {
    let kr = Keyring::default();
    let rest = kr
        .create_general_key(&admin(), "rest", AccessLevel::FullAccess)
        .unwrap();
    let ev = kr
        .create_integration_key(&manager(), "PSVC1", "ev")
        .unwrap();
    kr.set_account(
        "acme",
        AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
    )
    .unwrap();
    let e = assert_err(kr.authenticate(rest.secret().expose(), &get()), 402, 2014);
    assert!(matches!(e, Error::PlanRestricted { .. }));
    kr.authenticate(ev.secret().expose(), &Request::events())
        .unwrap();
    kr.set_account("acme", AccountSettings::default()).unwrap();
    kr.authenticate(rest.secret().expose(), &get()).unwrap();
}

#[test]
fn user_tokens_stop_when_advanced_permissions_go() {
    let kr = Keyring::default();
    let t = kr
        .create_user_token(&Actor::new("acme", "PU", Role::Responder), "laptop")
        .unwrap();
    kr.authenticate(t.secret().expose(), &get()).unwrap();
    kr.set_account(
        "acme",
        AccountSettings {
            rest_api: true,
            advanced_permissions: false,
        },
    )
    .unwrap();
    assert_err(kr.authenticate(t.secret().expose(), &get()), 402, 2014);
}

#[test]
fn read_only_general_keys_read_but_never_write() {
    let kr = Keyring::default();
    let ro = kr
        .create_general_key(&admin(), "ro", AccessLevel::ReadOnly)
        .unwrap();
    let full = kr
        .create_general_key(&admin(), "full", AccessLevel::FullAccess)
        .unwrap();
    for m in ["GET", "HEAD", "get"] {
        kr.authenticate(ro.secret().expose(), &Request::rest(m))
            .unwrap();
    }
    kr.authenticate(
        ro.secret().expose(),
        &Request::rest("GET").with_scope("incidents.read").unwrap(),
    )
    .unwrap();
    for req in [
        Request::rest("POST"),
        Request::rest("DELETE"),
        Request::rest("PATCH"),
        post("incidents.write"),
        Request::rest("GET").with_scope("incidents.write").unwrap(),
        Request::rest("BREW"),
    ] {
        let e = assert_err(kr.authenticate(ro.secret().expose(), &req), 403, 2010);
        assert!(matches!(e, Error::Forbidden { .. }));
    }
    for req in [
        Request::rest("POST"),
        post("users.write"),
        Request::rest("DELETE"),
    ] {
        kr.authenticate(full.secret().expose(), &req).unwrap();
    }
}

#[test]
fn scoped_tokens_need_a_scope_they_hold() {
    let kr = Keyring::default();
    let t = kr
        .create_scoped_token(&manager(), "closer", &["incidents.write", "services.read"])
        .unwrap();
    let s = t.secret().expose();
    kr.authenticate(s, &post("incidents.write")).unwrap();
    kr.authenticate(
        s,
        &Request::rest("GET").with_scope("incidents.read").unwrap(),
    )
    .unwrap();
    kr.authenticate(
        s,
        &Request::rest("GET").with_scope("services.read").unwrap(),
    )
    .unwrap();
    for req in [
        post("services.write"),
        // A write method needs write access even when the route names a read scope.
        Request::rest("POST").with_scope("services.read").unwrap(),
        Request::rest("GET").with_scope("users.read").unwrap(),
        get(),
        Request::rest("POST"),
    ] {
        assert_err(kr.authenticate(s, &req), 403, 2010);
    }
    // ... and a write scope covers it.
    kr.authenticate(
        s,
        &Request::rest("POST").with_scope("incidents.read").unwrap(),
    )
    .unwrap();
    let p = kr.authenticate(s, &post("incidents.write")).unwrap();
    assert_eq!(p.scopes().len(), 2);
}

#[test]
fn user_tokens_act_with_the_owners_current_role() {
    let kr = Keyring::default();
    let t = kr
        .create_user_token(&Actor::new("acme", "PRESP", Role::Responder), "script")
        .unwrap();
    let s = t.secret().expose();
    let p = kr.authenticate(s, &post("incidents.write")).unwrap();
    assert_eq!(
        (p.role(), p.owner()),
        (Some(Role::Responder), Some("PRESP"))
    );
    kr.authenticate(s, &post("users:contact_methods.write"))
        .unwrap();
    kr.authenticate(s, &get()).unwrap();
    assert_err(kr.authenticate(s, &post("services.write")), 403, 2010);
    assert_err(
        kr.authenticate(s, &Request::rest("GET").with_scope("users.read").unwrap()),
        403,
        2010,
    );
    assert_err(kr.authenticate(s, &Request::rest("POST")), 403, 2010);

    // Demoted: the very next request has the new role.
    kr.set_user_role("acme", "PRESP", Role::Observer).unwrap();
    assert_err(kr.authenticate(s, &post("incidents.write")), 403, 2010);
    assert_eq!(
        kr.authenticate(s, &get()).unwrap().role(),
        Some(Role::Observer)
    );
    // Promoted to manager: writes without a scope, but not admin-only resources.
    kr.set_user_role("acme", "PRESP", Role::Manager).unwrap();
    kr.authenticate(s, &Request::rest("POST")).unwrap();
    kr.authenticate(s, &post("services.write")).unwrap();
    assert_err(kr.authenticate(s, &post("users.write")), 403, 2010);
    kr.set_user_role("acme", "PRESP", Role::Admin).unwrap();
    kr.authenticate(s, &post("users.write")).unwrap();
    // Demoted to a limited stakeholder: no access at all.
    kr.set_user_role("acme", "PRESP", Role::LimitedStakeholder)
        .unwrap();
    assert_err(kr.authenticate(s, &get()), 403, 2010);
}

#[test]
fn a_full_stakeholder_token_reads_and_writes_only_subscribers() {
    let kr = Keyring::default();
    let t = kr
        .create_user_token(&Actor::new("acme", "PSTAKE", Role::FullStakeholder), "s")
        .unwrap();
    let s = t.secret().expose();
    kr.authenticate(s, &get()).unwrap();
    kr.authenticate(s, &post("subscribers.write")).unwrap();
    assert_err(kr.authenticate(s, &post("incidents.write")), 403, 2010);
}

#[test]
fn removing_a_user_stops_their_tokens_on_the_next_request() {
    let kr = Keyring::default();
    let a = kr
        .create_user_token(&Actor::new("acme", "PLEAVER", Role::Manager), "a")
        .unwrap();
    let b = kr
        .create_user_token(&Actor::new("acme", "PLEAVER", Role::Manager), "b")
        .unwrap();
    let other = kr
        .create_user_token(&Actor::new("acme", "PSTAYER", Role::Manager), "c")
        .unwrap();
    kr.authenticate(a.secret().expose(), &get()).unwrap();
    assert_eq!(kr.remove_user("acme", "PLEAVER").unwrap(), 2);
    for t in [&a, &b] {
        let f = unauthorized(kr.authenticate(t.secret().expose(), &get()));
        assert!(
            matches!(f, AuthFailure::Disabled | AuthFailure::OwnerRemoved),
            "{f:?}"
        );
    }
    kr.authenticate(other.secret().expose(), &get()).unwrap();
    // Tokens stay disabled even if the user is restored.
    kr.set_user_role("acme", "PLEAVER", Role::Manager).unwrap();
    assert_eq!(
        unauthorized(kr.authenticate(a.secret().expose(), &get())),
        AuthFailure::Disabled
    );
    let rec = kr.get(&admin(), &a.record().id.to_string()).unwrap();
    assert_eq!(&*rec.disabled.unwrap().by, "system:offboarding");
}

#[test]
fn owner_removed_is_checked_even_before_tokens_are_disabled() {
    // A store where only the user state changed (e.g. written by another process).
    let kr = Keyring::default();
    let t = kr
        .create_user_token(&Actor::new("acme", "PX", Role::Manager), "a")
        .unwrap();
    kr.store()
        .set_user(
            "acme",
            "PX",
            apikeys::UserState {
                role: Role::Manager,
                removed: true,
            },
        )
        .unwrap();
    assert_eq!(
        unauthorized(kr.authenticate(t.secret().expose(), &get())),
        AuthFailure::OwnerRemoved
    );
}

#[test]
fn a_pepper_changes_every_digest() {
    let store = Arc::new(apikeys::MemoryStore::new());
    let a = Keyring::builder()
        .shared_store(store.clone())
        .pepper(b"pepper-one-0123456789")
        .build()
        .unwrap();
    let b = Keyring::builder()
        .shared_store(store.clone())
        .pepper(b"pepper-two-0123456789")
        .build()
        .unwrap();
    let plain = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let k = a
        .create_general_key(&admin(), "peppered", AccessLevel::FullAccess)
        .unwrap();
    a.authenticate(k.secret().expose(), &get()).unwrap();
    assert_eq!(
        unauthorized(b.authenticate(k.secret().expose(), &get())),
        AuthFailure::Unknown
    );
    assert_eq!(
        unauthorized(plain.authenticate(k.secret().expose(), &get())),
        AuthFailure::Unknown
    );
    assert!(matches!(
        Keyring::builder().pepper(b"short").build(),
        Err(Error::InvalidInput {
            field: "pepper",
            ..
        })
    ));
}

#[test]
fn store_failures_are_500_and_say_so() {
    let kr = Keyring::new(BrokenStore);
    let k = KeyKind::General.generate().unwrap();
    let e = kr.authenticate(k.expose(), &get()).unwrap_err();
    assert_eq!((e.http_status(), e.kind_name()), (500, "store"));
    assert!(e.to_string().contains("unavailable"));
    let e = kr
        .create_general_key(&admin(), "x", AccessLevel::FullAccess)
        .unwrap_err();
    assert_eq!(e.http_status(), 500);
}

#[test]
fn last_used_is_recorded_at_most_once_a_minute() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_800_000_000_000));
    let store = Arc::new(CountingStore::default());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = k.record().id.to_string();
    assert_eq!(kr.get(&admin(), &id).unwrap().last_used_at, None);
    kr.authenticate(k.secret().expose(), &get()).unwrap();
    let first = kr.get(&admin(), &id).unwrap().last_used_at.unwrap();
    assert_eq!(first, clock_now(&clock));
    let calls = store.around.calls();
    clock.advance(Duration::from_secs(30));
    for _ in 0..10 {
        kr.authenticate(k.secret().expose(), &get()).unwrap();
    }
    // Ten lookups, no write.
    assert_eq!(store.around.calls(), calls + 10);
    assert_eq!(kr.get(&admin(), &id).unwrap().last_used_at.unwrap(), first);
    clock.advance(Duration::from_secs(30));
    kr.authenticate(k.secret().expose(), &get()).unwrap();
    assert_eq!(
        kr.get(&admin(), &id).unwrap().last_used_at.unwrap(),
        clock_now(&clock)
    );
}

/// Several threads authenticate with one key while another disables it. Every
/// authentication that *starts* after `disable` returned must fail; none that
/// ended before the disable began may fail.
#[test]
fn no_authentication_succeeds_after_disable_returns() {
    for _round in 0..5 {
        let kr = Arc::new(Keyring::default());
        let k = kr
            .create_general_key(&admin(), "hot", AccessLevel::FullAccess)
            .unwrap();
        let token: Arc<str> = k.secret().expose().into();
        let disabling = Arc::new(AtomicBool::new(false));
        let disabled = Arc::new(AtomicBool::new(false));
        let late_successes = Arc::new(AtomicUsize::new(0));
        let early_failures = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (kr, token) = (kr.clone(), token.clone());
                let (disabling, disabled) = (disabling.clone(), disabled.clone());
                let (late, early, total) = (
                    late_successes.clone(),
                    early_failures.clone(),
                    total.clone(),
                );
                thread::spawn(move || {
                    let mut after = 0;
                    while after < 2_000 {
                        let started_after = disabled.load(Ordering::SeqCst);
                        let started_before_disable_began = !disabling.load(Ordering::SeqCst);
                        let ok = kr.authenticate(&token, &Request::rest("GET")).is_ok();
                        let ended_before_disable_began = !disabling.load(Ordering::SeqCst);
                        total.fetch_add(1, Ordering::Relaxed);
                        if started_after {
                            after += 1;
                            if ok {
                                late.fetch_add(1, Ordering::SeqCst);
                            }
                        } else if started_before_disable_began && ended_before_disable_began && !ok
                        {
                            early.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        disabling.store(true, Ordering::SeqCst);
        kr.disable(&admin(), &k.record().id.to_string()).unwrap();
        disabled.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(
            late_successes.load(Ordering::SeqCst),
            0,
            "an authentication succeeded after disable returned"
        );
        assert_eq!(
            early_failures.load(Ordering::SeqCst),
            0,
            "an authentication failed before the disable began"
        );
        assert!(total.load(Ordering::SeqCst) > 6_000);
    }
}
