//! `Keyring::try_authenticate`: the answer of `authenticate` when it needs no
//! I/O, `None` (left to `authenticate`) when it would.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::{
    AccessLevel, AccountSettings, Actor, Decision, Error, Keyring, Limit, LimitClass,
    LocalRateLimiter, ManualClock, MemoryStore, Principal, RateBucket, RateLimiter, RateLimits,
    Request, Role, Timestamp,
};
use common::CountingStore;

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

fn get() -> Request {
    Request::rest("GET")
}

/// What an answer shows, to compare `try_authenticate` with `authenticate`.
fn shown(r: &Result<Principal, Error>) -> String {
    match r {
        Ok(p) => format!("ok {} {:?} {:?}", p.key_id(), p.role(), p.rate_limit()),
        Err(e) => format!("err {e:?}"),
    }
}

#[test]
fn a_memory_store_answers_every_case_as_authenticate_does() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_800_000_000_000));
    let kr = Keyring::builder().clock(clock.clone()).build().unwrap();
    let general = kr
        .create_general_key(&admin(), "rw", AccessLevel::FullAccess)
        .unwrap();
    let read_only = kr
        .create_general_key(&admin(), "ro", AccessLevel::ReadOnly)
        .unwrap();
    let disabled = kr
        .create_general_key(&admin(), "off", AccessLevel::FullAccess)
        .unwrap();
    kr.disable(&admin(), &disabled.record().id.to_string())
        .unwrap();
    kr.set_user_role("acme", "PUSER1", Role::Manager).unwrap();
    let user = Actor::new("acme", "PUSER1", Role::Manager);
    let token = kr.create_user_token(&user, "laptop").unwrap();
    let gone = Actor::new("acme", "PUSER2", Role::Manager);
    kr.set_user_role("acme", "PUSER2", Role::Manager).unwrap();
    let orphan = kr.create_user_token(&gone, "old laptop").unwrap();
    kr.remove_user("acme", "PUSER2").unwrap();
    let integration = kr
        .create_integration_key(&admin(), "PSVC1", "alerts")
        .unwrap();
    let legacy_admin = Actor::new("legacy", "PADMIN1", Role::Admin);
    let legacy = kr
        .create_general_key(&legacy_admin, "legacy", AccessLevel::FullAccess)
        .unwrap();
    kr.set_account(
        "legacy",
        AccountSettings {
            rest_api: false,
            advanced_permissions: false,
        },
    )
    .unwrap();
    let write = Request::rest("POST").with_scope("incidents.write").unwrap();
    let unknown = "y_NbAkKc66ryYTWUXYEu";
    let cases: Vec<(&str, Request)> = vec![
        (general.secret().expose(), get()),
        (general.secret().expose(), write.clone()),
        (general.secret().expose(), Request::events()),
        (read_only.secret().expose(), write.clone()),
        (disabled.secret().expose(), get()),
        (token.secret().expose(), write.clone()),
        (orphan.secret().expose(), get()),
        (integration.secret().expose(), Request::events()),
        (legacy.secret().expose(), get()),
        (unknown, get()),
        ("", get()),
        ("not a key at all", get()),
        ("y_NbAkKc66ryYTWUXYE\u{e9}", get()),
    ];
    let mut answers = Vec::new();
    for (token, request) in &cases {
        let tried = kr
            .try_authenticate(token, request)
            .expect("a memory store always answers");
        let checked = kr.authenticate(token, request);
        assert_eq!(shown(&tried), shown(&checked), "{request:?}");
        answers.push(shown(&checked));
    }
    // The cases cover successes and each kind of refusal.
    let first_word = |s: &String| s.split(['(', ' ', '{']).nth(1).unwrap_or("").to_owned();
    let mut kinds: Vec<String> = answers
        .iter()
        .filter(|a| a.starts_with("err"))
        .map(first_word)
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["Forbidden", "PlanRestricted", "Unauthorized", "WrongApi"]
    );
    assert_eq!(answers.iter().filter(|a| a.starts_with("ok")).count(), 4);

    // An expired key, through the clock.
    let soon = kr
        .create(
            &admin(),
            apikeys::NewKey::general("soon", AccessLevel::FullAccess)
                .expires_at(Timestamp::from_unix_millis(1_800_000_060_000)),
        )
        .unwrap();
    clock.advance(std::time::Duration::from_secs(61));
    let tried = kr.try_authenticate(soon.secret().expose(), &get()).unwrap();
    assert!(matches!(
        tried,
        Err(Error::Unauthorized(apikeys::AuthFailure::Expired))
    ));
}

#[test]
fn a_shared_memory_store_answers_too() {
    let store: Arc<MemoryStore> = Arc::new(MemoryStore::new());
    let kr = Keyring::builder().shared_store(store).build().unwrap();
    let k = kr
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    let p = kr.try_authenticate(k.secret().expose(), &get());
    assert_eq!(p.unwrap().unwrap().key_id(), k.record().id);
}

#[test]
fn a_local_rate_limiter_is_counted_by_tries_as_by_authenticate() {
    let limits =
        RateLimits::none().with_limit(LimitClass::GeneralKey, Some(Limit::per_minute(3).unwrap()));
    let kr = Keyring::builder().rate_limits(limits).build().unwrap();
    let k = kr
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    let t = k.secret().expose();
    assert_eq!(
        kr.try_authenticate(t, &get())
            .unwrap()
            .unwrap()
            .rate_limit()
            .unwrap()
            .remaining,
        2
    );
    kr.authenticate(t, &get()).unwrap();
    kr.try_authenticate(t, &get()).unwrap().unwrap();
    assert!(matches!(
        kr.try_authenticate(t, &get()),
        Some(Err(Error::RateLimited { limit: 3, .. }))
    ));
    assert!(matches!(
        kr.authenticate(t, &get()),
        Err(Error::RateLimited { .. })
    ));
}

/// A limiter that says it may block, counting its calls.
#[derive(Default)]
struct Remote {
    inner: LocalRateLimiter,
    calls: AtomicUsize,
}

impl RateLimiter for Remote {
    fn acquire(&self, bucket: RateBucket<'_>, limit: Limit, now: Timestamp) -> Decision {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.acquire(bucket, limit, now)
    }
    fn may_block(&self) -> bool {
        true
    }
}

#[test]
fn a_limiter_that_may_block_leaves_known_keys_to_authenticate() {
    let remote = Arc::new(Remote::default());
    let kr = Keyring::builder()
        .rate_limits(RateLimits::pagerduty())
        .rate_limiter(remote.clone())
        .build()
        .unwrap();
    let k = kr
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    assert!(kr.try_authenticate(k.secret().expose(), &get()).is_none());
    // A key the store knows is not there is refused before any limiter.
    assert!(matches!(
        kr.try_authenticate("y_NbAkKc66ryYTWUXYEu", &get()),
        Some(Err(Error::Unauthorized(_)))
    ));
    assert_eq!(remote.calls.load(Ordering::SeqCst), 0, "no budget spent");
    assert!(matches!(
        kr.try_authenticate("short", &get()),
        Some(Err(Error::Unauthorized(_)))
    ));
    assert!(matches!(
        kr.try_authenticate(k.secret().expose(), &Request::events()),
        Some(Err(Error::WrongApi { .. }))
    ));
    kr.authenticate(k.secret().expose(), &get()).unwrap();
    assert_eq!(remote.calls.load(Ordering::SeqCst), 1);
    // Without limits the limiter is never asked, so nothing blocks.
    let free = Keyring::builder()
        .rate_limiter(Arc::new(Remote::default()))
        .build()
        .unwrap();
    let k = free
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    assert!(free.try_authenticate(k.secret().expose(), &get()).is_some());
}

#[test]
fn a_store_that_keeps_the_default_is_never_asked_on_a_try() {
    let store = Arc::new(CountingStore::default());
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let k = kr
        .create_general_key(&admin(), "k", AccessLevel::FullAccess)
        .unwrap();
    let before = store.around.calls();
    assert!(kr.try_authenticate(k.secret().expose(), &get()).is_none());
    assert!(
        kr.try_authenticate("y_NbAkKc66ryYTWUXYEu", &get())
            .is_none()
    );
    assert_eq!(
        store.around.calls(),
        before,
        "the default never touches the store"
    );
    kr.authenticate(k.secret().expose(), &get()).unwrap();
    assert_eq!(store.around.finds.load(Ordering::SeqCst), 1);
}

#[test]
fn may_block_says_whether_authenticate_can_wait_on_io() {
    use apikeys::{Keyring, MemoryStore, RateLimits};
    assert!(!Keyring::new(MemoryStore::new()).may_block());
    let limited = Keyring::builder()
        .rate_limits(RateLimits::pagerduty())
        .build()
        .unwrap();
    assert!(
        !limited.may_block(),
        "the in-process limiter counts in memory"
    );
    // A store that does not say otherwise may block: the safe default.
    assert!(Keyring::new(CountingStore::default()).may_block());
}

#[test]
fn flush_on_the_memory_store_writes_nothing_and_says_so() {
    assert_eq!(apikeys::Keyring::default().flush().unwrap(), 0);
}
