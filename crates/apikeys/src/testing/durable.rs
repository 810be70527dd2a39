//! Checks for durable stores that one store object cannot show (feature `testing`).
//!
//! The [conformance suite](super::conformance) checks one store on its own. A
//! store that keeps its data outside the process must also show that keys
//! survive closing it (and a SIGKILL mid-write), that a change made through
//! another store on the same data (or in another process) reaches a warm
//! cache, and that last uses are queued until flushed. These functions hold
//! those checks; a store crate's tests open the stores and call them:
//!
//! ```no_run
//! # use apikeys::{Keyring, MemoryStore};
//! # fn open() -> MemoryStore { MemoryStore::new() }
//! use apikeys::testing::durable;
//!
//! durable::keys_survive_reopening(open);
//! durable::changes_through_another_store_reach_a_warm_cache(
//!     &Keyring::new(open()),
//!     &Keyring::new(open()),
//!     || { /* DELETE FROM apikeys_keys, by hand */ },
//! );
//! ```
//!
//! ## Child processes
//! The cross-process checks run a helper test of the same test binary in a
//! child process. [`child_helpers!`] declares those helpers, given how to open
//! a keyring on the store at a *place* (a file, a schema: whatever the parent
//! passes); run on their own (`cargo test -- --ignored`) they do nothing:
//!
//! ```no_run
//! # use apikeys::{Keyring, MemoryStore};
//! # fn open(_: &str) -> MemoryStore { MemoryStore::new() }
//! use apikeys::testing::durable;
//!
//! durable::child_helpers!(|place: &str| Keyring::new(open(place)));
//!
//! #[test]
//! fn a_disable_in_another_process_is_seen() {
//!     let place = "…"; // a fresh file or schema
//!     durable::a_disable_in_another_process_is_seen(&Keyring::new(open(place)), place);
//! }
//! ```
//!
//! Every wait here is for an outcome, never for a fixed time: a check fails
//! only if what it waits for has not happened after a minute.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{sample_record, unique_account};
use crate::error::Error;
use crate::key::KeyKind;
use crate::keyring::{Keyring, Principal};
use crate::record::{AccessLevel, KeyId, Timestamp};
use crate::request::Request;
use crate::role::{AccountSettings, Actor, Role};
use crate::store::KeyStore;

/// How long a wait may take before the check fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// The environment variable naming the child's store place.
const PLACE_VAR: &str = "APIKEYS_CHILD_PLACE";
/// The environment variable holding the token a watcher child checks.
const TOKEN_VAR: &str = "APIKEYS_CHILD_TOKEN";

fn admin(account: &str) -> Actor {
    Actor::new(account, "PADMIN1", Role::Admin)
}

fn get() -> Request {
    Request::rest("GET")
}

/// Authenticate `token` (a REST `GET`) every 2 ms until `done` accepts the
/// answer; panics, saying `what` and the last answer, after a minute.
pub fn wait_for(
    keyring: &Keyring,
    token: &str,
    what: &str,
    done: impl Fn(&Result<Principal, Error>) -> bool,
) {
    let start = Instant::now();
    loop {
        let answer = keyring.authenticate(token, &get());
        if done(&answer) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{what} was never seen (last answer: {:?})",
            answer.map(|p| p.key_id())
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Wait until `keyring` refuses `token` as [`Error::Unauthorized`] (a
/// disable or delete made elsewhere has reached it).
pub fn wait_until_refused(keyring: &Keyring, token: &str) {
    wait_for(keyring, token, "a disable or delete made elsewhere", |a| {
        matches!(a, Err(Error::Unauthorized(_)))
    });
}

/// Wait until `keyring` accepts `token` again (an enable made elsewhere has reached it).
pub fn wait_until_accepted(keyring: &Keyring, token: &str) {
    wait_for(keyring, token, "an enable made elsewhere", Result::is_ok);
}

/// Keys, user roles and access levels written through one store are there
/// when the store is opened again (`open` is called twice, each store dropped
/// before the next opens).
pub fn keys_survive_reopening<S: KeyStore + 'static>(open: impl Fn() -> S) {
    let acct = unique_account("reopen");
    let (token, id) = {
        let kr = Keyring::new(open());
        let issued = kr
            .create_general_key(&admin(&acct), "CI bot", AccessLevel::ReadOnly)
            .expect("create");
        kr.set_user_role(&acct, "PUSER1", Role::Observer)
            .expect("set_user_role");
        (issued.secret().expose().to_owned(), issued.record().id)
    };
    let kr = Keyring::new(open());
    let p = kr.authenticate(&token, &get()).expect("the key survived");
    assert_eq!(p.key_id(), id);
    assert_eq!(
        kr.user(&acct, "PUSER1").expect("user").map(|u| u.role),
        Some(Role::Observer),
        "the user's role survived"
    );
    assert!(
        matches!(
            kr.authenticate(&token, &Request::rest("POST")),
            Err(Error::Forbidden { .. })
        ),
        "the key is still read-only"
    );
}

/// Through one store with a warm cache, every change is seen by the very next
/// `authenticate`: disable, enable, a plan without REST, a demoted or removed
/// token owner, delete. `cached_keys` is the store's count of cached
/// lookups (to prove the cache was warm).
pub fn writes_through_the_same_store_reach_a_warm_cache_at_once(
    keyring: &Keyring,
    cached_keys: impl Fn() -> usize,
) {
    let kr = keyring;
    let acct = unique_account("warm");
    let admin = admin(&acct);
    let refused = |token: &str, request: &Request| kr.authenticate(token, request).unwrap_err();
    let issued = kr
        .create_general_key(&admin, "warm", AccessLevel::FullAccess)
        .expect("create");
    let token = issued.secret().expose();
    let id = issued.record().id.to_string();
    kr.authenticate(token, &get()).expect("valid");
    assert!(cached_keys() >= 1, "a used key is cached");

    kr.disable(&admin, &id).expect("disable");
    assert!(matches!(refused(token, &get()), Error::Unauthorized(_)));
    kr.enable(&admin, &id).expect("enable");
    kr.authenticate(token, &get()).expect("enabled again");

    let legacy = AccountSettings {
        rest_api: false,
        advanced_permissions: true,
    };
    kr.set_account(&acct, legacy).expect("set_account");
    assert!(matches!(
        refused(token, &get()),
        Error::PlanRestricted { .. }
    ));
    kr.set_account(&acct, AccountSettings::default())
        .expect("set_account");
    kr.authenticate(token, &get()).expect("REST allowed again");

    // A user token stops working at once when its owner is demoted or removed.
    kr.set_user_role(&acct, "PUSER1", Role::Manager)
        .expect("set_user_role");
    let user = Actor::new(&acct, "PUSER1", Role::Manager);
    let ut = kr.create_user_token(&user, "laptop").expect("create");
    let ut = ut.secret().expose();
    let write = Request::rest("POST")
        .with_scope("incidents.write")
        .expect("valid scope");
    kr.authenticate(ut, &write)
        .expect("a manager writes incidents");
    kr.set_user_role(&acct, "PUSER1", Role::Observer)
        .expect("set_user_role");
    assert!(matches!(refused(ut, &write), Error::Forbidden { .. }));
    kr.remove_user(&acct, "PUSER1").expect("remove_user");
    assert!(matches!(refused(ut, &get()), Error::Unauthorized(_)));

    kr.delete(&admin, &id).expect("delete");
    assert!(matches!(refused(token, &get()), Error::Unauthorized(_)));
}

/// [`Keyring::try_authenticate`] on a keyring over a durable store with its
/// cache on: a key never looked up is left to `authenticate` (`None`), as is
/// a well-formed key that does not exist (misses are not cached); malformed
/// keys and keys of the wrong API are answered; once `authenticate` has seen
/// a key it is answered exactly like `authenticate`. After each change through
/// the same store (disable, a plan without REST, a demoted or removed owner,
/// delete) the try is refused or left to `authenticate`, never a stale success.
pub fn try_authenticate_answers_only_from_a_warm_cache(keyring: &Keyring) {
    let kr = keyring;
    let acct = unique_account("try");
    let admin = admin(&acct);
    let not_ok = |token: &str, request: &Request, what: &str| {
        if let Some(Ok(p)) = kr.try_authenticate(token, request) {
            panic!("{what}: a stale success for {}", p.key_id());
        }
    };
    // After `authenticate` the key is cached, but the notice of a write made
    // just before (PostgreSQL's NOTIFY of this store's own write arrives
    // asynchronously) may still drop it: then the try is left to
    // `authenticate` once more. It must end up answered, and never refused.
    let warm = |token: &str, request: &Request, what: &str| {
        for _ in 0..400 {
            kr.authenticate(token, request).expect(what);
            match kr.try_authenticate(token, request) {
                Some(Ok(p)) => return p,
                Some(Err(e)) => panic!("{what}: refused from the cache: {e}"),
                None => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        panic!("{what}: never answered from the cache");
    };
    let issued = kr
        .create_general_key(&admin, "try", AccessLevel::FullAccess)
        .expect("create");
    let token = issued.secret().expose();
    let id = issued.record().id;
    assert!(
        kr.try_authenticate(token, &get()).is_none(),
        "cold: left to authenticate"
    );
    assert!(matches!(
        kr.try_authenticate("not a key", &get()),
        Some(Err(Error::Unauthorized(_)))
    ));
    assert!(matches!(
        kr.try_authenticate(token, &Request::events()),
        Some(Err(Error::WrongApi { .. }))
    ));
    // The same key with its last character changed: well-formed, unknown.
    let last = if token.ends_with('a') { "b" } else { "a" };
    let unknown = format!("{}{last}", &token[..token.len() - 1]);
    assert_eq!(KeyKind::parse(&unknown), Ok(KeyKind::General));
    assert!(kr.authenticate(&unknown, &get()).is_err());
    assert!(
        kr.try_authenticate(&unknown, &get()).is_none(),
        "a miss is never 'not found'"
    );

    assert_eq!(warm(token, &get(), "warm").key_id(), id);

    kr.disable(&admin, &id.to_string()).expect("disable");
    not_ok(token, &get(), "disabled");
    assert!(kr.authenticate(token, &get()).is_err());
    assert!(matches!(
        kr.try_authenticate(token, &get()),
        Some(Err(Error::Unauthorized(_))) | None
    ));
    kr.enable(&admin, &id.to_string()).expect("enable");
    warm(token, &get(), "enabled again");

    let legacy = AccountSettings {
        rest_api: false,
        advanced_permissions: true,
    };
    kr.set_account(&acct, legacy).expect("set_account");
    not_ok(token, &get(), "a plan without REST");
    kr.set_account(&acct, AccountSettings::default())
        .expect("set_account");

    kr.set_user_role(&acct, "PUSER1", Role::Manager)
        .expect("set_user_role");
    let user = Actor::new(&acct, "PUSER1", Role::Manager);
    let ut = kr.create_user_token(&user, "laptop").expect("create");
    let ut = ut.secret().expose();
    let write = Request::rest("POST")
        .with_scope("incidents.write")
        .expect("valid scope");
    warm(ut, &write, "a manager writes");
    kr.set_user_role(&acct, "PUSER1", Role::Observer)
        .expect("set_user_role");
    not_ok(ut, &write, "a demoted owner");
    kr.remove_user(&acct, "PUSER1").expect("remove_user");
    not_ok(ut, &get(), "a removed owner");

    kr.authenticate(token, &get()).expect("valid");
    kr.delete(&admin, &id.to_string()).expect("delete");
    not_ok(token, &get(), "deleted");
}

/// A warm cache lends its answer in place: the keyring's lookup
/// ([`KeyStore::find_by_digest_with`], [`KeyStore::find_cached_with`]) reads
/// the cached record without cloning its `Arc` (a write to memory every core
/// reads: issue 14, docs/design.md §6), so the callback sees a reference
/// count of 1 where the owned [`KeyStore::find_by_digest`] holds 2; and a
/// key disabled through the store is lent disabled at once.
pub fn a_warm_cache_lends_in_place(keyring: &Keyring) {
    let kr = keyring;
    let acct = unique_account("lend");
    let admin = admin(&acct);
    let issued = kr
        .create_general_key(&admin, "lend", AccessLevel::FullAccess)
        .expect("create");
    let token = issued.secret().expose();
    let digest = kr.hasher().digest(token.as_bytes());
    let store = kr.store();
    let cached_count = || {
        let mut counts = Vec::new();
        let answered = store.find_cached_with(&digest, &mut |f| {
            counts.push(std::sync::Arc::strong_count(f.expect("cached").record))
        });
        assert_eq!(answered, counts.len() == 1, "true exactly when lent once");
        counts.first().copied()
    };
    // Warm (a notice of the store's own write may drop the entry once more).
    let mut warm = false;
    for _ in 0..400 {
        drop(kr.authenticate(token, &get()).expect("valid"));
        if cached_count().is_some() {
            warm = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(warm, "never cached");
    assert_eq!(cached_count(), Some(1), "find_cached_with lends in place");
    let mut lent = Vec::new();
    store
        .find_by_digest_with(&digest, &mut |f| {
            lent.push(std::sync::Arc::strong_count(f.expect("found").record))
        })
        .expect("lookup");
    assert_eq!(lent, vec![1], "find_by_digest_with lends a hit in place");
    let owned = store
        .find_by_digest(&digest)
        .expect("lookup")
        .expect("found");
    assert_eq!(
        std::sync::Arc::strong_count(&owned.record),
        2,
        "an owned clone"
    );
    drop(owned);
    kr.disable(&admin, &issued.record().id.to_string())
        .expect("disable");
    let mut disabled = Vec::new();
    store
        .find_by_digest_with(&digest, &mut |f| {
            disabled.push(f.expect("found").record.disabled.is_some())
        })
        .expect("lookup");
    assert_eq!(
        disabled,
        vec![true],
        "a write that returned is lent at once"
    );
    store.find_cached_with(&digest, &mut |f| {
        assert!(
            f.expect("found").record.disabled.is_some(),
            "never the old copy"
        )
    });
}

/// [`Keyring::try_authenticate`] on a keyring over a durable store with its
/// cache off: even a key `authenticate` has just accepted is left to
/// `authenticate` (`None`), since nothing can answer from memory.
pub fn try_authenticate_without_a_cache_leaves_every_key(keyring: &Keyring) {
    let admin = admin(&unique_account("nocache"));
    let issued = keyring
        .create_general_key(&admin, "k", AccessLevel::FullAccess)
        .expect("create");
    let token = issued.secret().expose();
    keyring.authenticate(token, &get()).expect("valid");
    assert!(
        keyring.try_authenticate(token, &get()).is_none(),
        "no cache: left to authenticate"
    );
}

/// `a` and `b` are two stores on the same data. A key that `b` has cached is
/// refused there once disabled through `a`, accepted once enabled, refused
/// for a plan without REST and accepted once it is back, and refused once
/// deleted; then a key deleted by `delete_all_by_hand` (SQL that deletes every
/// key, not through a store) is refused by `b` too.
pub fn changes_through_another_store_reach_a_warm_cache(
    a: &Keyring,
    b: &Keyring,
    delete_all_by_hand: impl FnOnce(),
) {
    let acct = unique_account("shared");
    let admin = admin(&acct);
    let issued = a
        .create_general_key(&admin, "shared", AccessLevel::FullAccess)
        .expect("create");
    let token = issued.secret().expose();
    let id = issued.record().id.to_string();
    for _ in 0..3 {
        b.authenticate(token, &get()).expect("b sees a's key");
    }
    a.disable(&admin, &id).expect("disable");
    wait_until_refused(b, token);
    a.enable(&admin, &id).expect("enable");
    wait_until_accepted(b, token);
    let legacy = AccountSettings {
        rest_api: false,
        advanced_permissions: true,
    };
    a.set_account(&acct, legacy).expect("set_account");
    wait_for(b, token, "a plan change made elsewhere", |r| {
        matches!(r, Err(Error::PlanRestricted { .. }))
    });
    a.set_account(&acct, AccountSettings::default())
        .expect("set_account");
    wait_until_accepted(b, token);
    a.delete(&admin, &id).expect("delete");
    wait_until_refused(b, token);

    let again = a
        .create_general_key(&admin, "by hand", AccessLevel::FullAccess)
        .expect("create");
    let token = again.secret().expose();
    b.authenticate(token, &get()).expect("b sees a's key");
    delete_all_by_hand();
    wait_until_refused(b, token);
}

/// Last uses are queued in memory and written by `flush_writes` and on drop.
/// `open_slow` opens a store that would not write them on its own for a
/// long time (an hour's flush interval); `open` any other store on the same data.
pub fn last_uses_wait_for_flush_or_drop<S: KeyStore>(
    open_slow: impl Fn() -> S,
    open: impl Fn() -> S,
) {
    let r = sample_record(&unique_account("used"), KeyKind::General);
    let t1 = Timestamp::from_unix_millis(1_700_000_100_000);
    let t2 = Timestamp::from_unix_millis(1_700_000_200_000);
    let written = |store: &S| store.get(r.id).expect("get").expect("exists").last_used_at;
    {
        let store = open_slow();
        store.insert(r.clone()).expect("insert");
        store.record_use(r.id, t1).expect("record_use");
        assert_eq!(written(&store), Some(t1), "seen at once through the store");
        let other = open();
        assert_eq!(written(&other), None, "not written before a flush");
        store.flush_writes().expect("flush");
        assert_eq!(written(&other), Some(t1), "written by the flush");
        store.record_use(r.id, t2).expect("record_use");
        // Dropped here: the queued use is written.
    }
    assert_eq!(written(&open()), Some(t2), "written on drop");
}

/// The helper test that runs [`child_watch_token`].
const WATCH_HELPER: &str = "apikeys_child_watch_token";
/// The helper test that runs [`child_create_keys_until_killed`].
const CREATE_HELPER: &str = "apikeys_child_create_keys_until_killed";
/// The helper test that runs [`child_manage_keys_until_killed`].
const MANAGE_HELPER: &str = "apikeys_child_manage_keys_until_killed";

/// Declares the helper tests that the cross-process checks run in child
/// processes: `apikeys_child_watch_token`,
/// `apikeys_child_create_keys_until_killed` and
/// `apikeys_child_manage_keys_until_killed`, all `#[ignore]`d. Give it a
/// function (or closure without captures) from a place (`&str`: a file path,
/// a schema name) to a [`Keyring`] on the store there, and
/// use it once in a test file, outside any function.
#[doc(inline)]
pub use crate::__apikeys_durable_child_helpers as child_helpers;

/// See [`child_helpers!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __apikeys_durable_child_helpers {
    ($open:expr) => {
        #[test]
        #[ignore = "helper: run by another test in a child process"]
        fn apikeys_child_watch_token() {
            if let Some(place) = $crate::testing::durable::child_place() {
                let open: fn(&str) -> $crate::Keyring = $open;
                $crate::testing::durable::child_watch_token(&open(&place));
            }
        }

        #[test]
        #[ignore = "helper: run by another test in a child process"]
        fn apikeys_child_manage_keys_until_killed() {
            if let Some(place) = $crate::testing::durable::child_place() {
                let open: fn(&str) -> $crate::Keyring = $open;
                $crate::testing::durable::child_manage_keys_until_killed(&open(&place));
            }
        }

        #[test]
        #[ignore = "helper: run by another test in a child process"]
        fn apikeys_child_create_keys_until_killed() {
            if let Some(place) = $crate::testing::durable::child_place() {
                let open: fn(&str) -> $crate::Keyring = $open;
                $crate::testing::durable::child_create_keys_until_killed(&open(&place));
            }
        }
    };
}

/// A command that runs the helper test `test` of this test binary in a
/// child process, with `place` for [`child_place`] and its standard output piped.
fn child(test: &str, place: &OsStr) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut c = Command::new(exe);
    c.args([test, "--ignored", "--nocapture"])
        .env(PLACE_VAR, place)
        .stdout(Stdio::piped());
    c
}

/// In a helper test of [`child_helpers!`]: the place its parent passed, or
/// `None` when the helper was run on its own (it then does nothing).
pub fn child_place() -> Option<String> {
    std::env::var(PLACE_VAR).ok()
}

/// The child side of [`a_disable_in_another_process_is_seen`]: authenticates
/// the token its parent gave, prints `READY`, then authenticates it every
/// 200 µs until it is refused and prints `REFUSED` (each at the end of a line).
pub fn child_watch_token(keyring: &Keyring) {
    let token = std::env::var(TOKEN_VAR).expect("the parent passes a token");
    keyring.authenticate(&token, &get()).expect("a valid key");
    println!("READY");
    let start = Instant::now();
    while keyring.authenticate(&token, &get()).is_ok() {
        assert!(start.elapsed() < PATIENCE, "never refused");
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("REFUSED");
}

/// Creates a key through `keyring` (a store at `place`), hands it to a child
/// process that watches it through its own store at `place` (the helper of
/// [`child_helpers!`]), disables the key once the child has it cached, and
/// checks that the child comes to refuse it.
pub fn a_disable_in_another_process_is_seen(keyring: &Keyring, place: impl AsRef<OsStr>) {
    let acct = unique_account("process");
    let issued = keyring
        .create_general_key(&admin(&acct), "shared", AccessLevel::FullAccess)
        .expect("create");
    let mut child = child(WATCH_HELPER, place.as_ref())
        .env(TOKEN_VAR, issued.secret().expose())
        .spawn()
        .expect("spawn the watcher");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    assert!(
        lines.by_ref().any(|l| l.ends_with("READY")),
        "the watcher never got ready"
    );
    keyring
        .disable(&admin(&acct), &issued.record().id.to_string())
        .expect("disable");
    assert!(
        lines.any(|l| l.ends_with("REFUSED")),
        "the other process never refused the disabled key"
    );
    assert!(child.wait().expect("wait").success());
}

/// Rotates a key through `keyring` (a store at `place`), hands the old key
/// to a child process that watches it through its own store at `place` (the
/// helper of [`child_helpers!`]), checks the child still accepts it while the
/// overlap runs, then ends the rotation and checks that the child comes to
/// refuse it; the new key works in this process throughout.
pub fn a_rotation_end_in_another_process_is_seen(keyring: &Keyring, place: impl AsRef<OsStr>) {
    let acct = unique_account("rotation-process");
    let admin = admin(&acct);
    let old = keyring
        .create_general_key(&admin, "rotated", AccessLevel::FullAccess)
        .expect("create");
    let old_id = old.record().id.to_string();
    let new = keyring
        .rotate(&admin, &old_id, Duration::from_secs(3600))
        .expect("rotate");
    let mut child = child(WATCH_HELPER, place.as_ref())
        .env(TOKEN_VAR, old.secret().expose())
        .spawn()
        .expect("spawn the watcher");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    assert!(
        lines.by_ref().any(|l| l.ends_with("READY")),
        "the other process did not accept the old key during the overlap"
    );
    keyring
        .authenticate(new.secret().expose(), &get())
        .expect("the new key works");
    keyring.end_rotation(&admin, &old_id).expect("end_rotation");
    assert!(
        lines.any(|l| l.ends_with("REFUSED")),
        "the other process never refused the old key after the rotation ended"
    );
    assert!(child.wait().expect("wait").success());
    keyring
        .authenticate(new.secret().expose(), &get())
        .expect("the new key works on");
}

/// The child side of [`keys_survive_sigkill`]: creates keys (and uses each
/// once, so queued last-use writes race the kill too) until killed, printing
/// `KEY <id> <token>` once each create has returned.
pub fn child_create_keys_until_killed(keyring: &Keyring) {
    let admin = admin(&unique_account("crash"));
    let mut out = std::io::stdout().lock();
    for i in 0..100_000 {
        let issued = keyring
            .create_general_key(&admin, &format!("crash {i}"), AccessLevel::FullAccess)
            .expect("create");
        keyring
            .authenticate(issued.secret().expose(), &get())
            .expect("valid");
        writeln!(
            out,
            "KEY {} {}",
            issued.record().id,
            issued.secret().expose()
        )
        .expect("stdout");
        out.flush().expect("stdout");
    }
}

/// `rounds` times: runs a child process that creates keys in the store at
/// `place` (the helper of [`child_helpers!`]), kills it with SIGKILL at a
/// random moment `kill_after_ms` milliseconds after its first key (so the
/// kill may land mid-write), then opens the data again with `reopen` and checks that every
/// key the child printed, in every round so far, still authenticates.
/// `reopen` may run the store's own integrity checks first.
pub fn keys_survive_sigkill(
    rounds: u64,
    kill_after_ms: Range<u64>,
    place: impl AsRef<OsStr>,
    mut reopen: impl FnMut() -> Keyring,
) {
    assert!(!kill_after_ms.is_empty(), "an empty range of kill moments");
    let mut printed: Vec<(String, String)> = Vec::new();
    for round in 0..rounds {
        let mut child = child(CREATE_HELPER, place.as_ref())
            .spawn()
            .expect("spawn the creator");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (first_key, started) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    // The test harness may print on the same line first.
                    let mut p = l[l.find("KEY ")? + 4..].split(' ');
                    let _ = first_key.send(());
                    Some((p.next()?.to_owned(), p.next()?.to_owned()))
                })
                .collect::<Vec<_>>()
        });
        // The kill lands at a random moment once the child is writing (its
        // start-up and connection are not what is being tested, nor how long
        // a loaded machine takes to its first commit).
        if started.recv_timeout(PATIENCE).is_err() {
            let _ = child.kill();
            panic!("the child never made a key");
        }
        let r = KeyId::generate()
            .expect("the OS random source works")
            .as_u64();
        let spread = kill_after_ms.end - kill_after_ms.start;
        std::thread::sleep(Duration::from_millis(kill_after_ms.start + r % spread));
        child.kill().expect("SIGKILL the creator");
        child.wait().expect("wait");
        printed.extend(reader.join().expect("the reader thread"));
        eprintln!("round {round}: {} keys printed so far", printed.len());

        let kr = reopen();
        for (id, token) in &printed {
            let p = kr
                .authenticate(token, &get())
                .unwrap_or_else(|e| panic!("key {id} printed before the kill is lost: {e}"));
            assert_eq!(&p.key_id().to_string(), id);
        }
    }
    assert!(
        !printed.is_empty(),
        "the child printed no key before being killed"
    );
}

/// The child side of [`audit_survives_sigkill`]: prints `ACCOUNT <name>`,
/// then makes a stream of management calls in that account — create,
/// disable, enable, rotate, end the rotation, delete, refused calls — until
/// killed, printing `WRITING` once its first call has committed.
pub fn child_manage_keys_until_killed(keyring: &Keyring) {
    let acct = unique_account("audit-crash");
    let admin = admin(&acct);
    let observer = Actor::new(acct.as_str(), "POBS", Role::Observer);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ACCOUNT {acct}").expect("stdout");
    out.flush().expect("stdout");
    for i in 0..100_000 {
        let k = keyring
            .create_general_key(&admin, &format!("crash {i}"), AccessLevel::FullAccess)
            .expect("create");
        if i == 0 {
            writeln!(out, "WRITING").expect("stdout");
            out.flush().expect("stdout");
        }
        let id = k.record().id.to_string();
        keyring.disable(&admin, &id).expect("disable");
        let _ = keyring.enable(&observer, &id); // refused, and recorded
        if i % 2 == 0 {
            keyring.enable(&admin, &id).expect("enable");
            let new = keyring
                .rotate(&admin, &id, Duration::from_secs(3600))
                .expect("rotate");
            if i % 4 == 0 {
                keyring.end_rotation(&admin, &id).expect("end");
                keyring
                    .delete(&admin, &new.record().id.to_string())
                    .expect("delete");
            }
        }
        keyring
            .set_user_role(&acct, "PUSER", Role::Responder)
            .expect("role");
    }
}

/// `rounds` times: runs a child that streams management calls into the
/// store at `place` (the helper of [`child_helpers!`]), kills it with
/// SIGKILL at a random moment `kill_after_ms` in, reopens with `reopen`, and
/// checks the trail against the keys: every key there has exactly one
/// allowed record that made it (a create, or a rotation naming it); every
/// key such a record made is there, unless exactly one delete record says
/// it was deleted; each key's disabled state and rotation agree with its
/// records; no record id repeats.
pub fn audit_survives_sigkill(
    rounds: u64,
    kill_after_ms: Range<u64>,
    place: impl AsRef<OsStr>,
    mut reopen: impl FnMut() -> Keyring,
) {
    use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery};
    use std::collections::{HashMap, HashSet};
    assert!(!kill_after_ms.is_empty(), "an empty range of kill moments");
    for round in 0..rounds {
        let mut child = child(MANAGE_HELPER, place.as_ref())
            .spawn()
            .expect("spawn the manager");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let acct = lines
                .by_ref()
                .find_map(|l| Some(l[l.find("ACCOUNT ")? + 8..].trim().to_owned()));
            let _ = tx.send(acct);
            let writing = lines.by_ref().any(|l| l.contains("WRITING"));
            let _ = tx.send(writing.then(String::new));
            lines.for_each(drop);
        });
        // The kill lands at a random moment once the child is writing (its
        // start-up, connection and migration are not what is being tested,
        // nor how long a loaded machine takes to its first commit).
        let acct = match rx.recv_timeout(PATIENCE) {
            Ok(Some(acct)) => acct,
            _ => {
                let _ = child.kill();
                panic!("the child never said its account");
            }
        };
        if !matches!(rx.recv_timeout(PATIENCE), Ok(Some(_))) {
            let _ = child.kill();
            panic!("the child never wrote");
        }
        let r = KeyId::generate()
            .expect("the OS random source works")
            .as_u64();
        let spread = kill_after_ms.end - kill_after_ms.start;
        std::thread::sleep(Duration::from_millis(kill_after_ms.start + r % spread));
        child.kill().expect("SIGKILL the manager");
        child.wait().expect("wait");
        reader.join().expect("the reader thread");
        let kr = reopen();
        let mut records: Vec<AuditEvent> = Vec::new();
        let mut q = AuditQuery::account(&acct);
        q.limit = 1000;
        loop {
            let page = kr.audit_records(&q).expect("audit_records");
            records.extend(page.records);
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let ids: HashSet<u64> = records.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), records.len(), "a record id repeats");
        let allowed = |a: AuditAction| {
            records
                .iter()
                .filter(move |e| e.action == a && e.outcome == AuditOutcome::Allowed)
        };
        let value = |e: &AuditEvent, field: &str| {
            e.changes
                .iter()
                .find(|c| c.field == field)
                .and_then(|c| c.value.clone())
        };
        // Which records made which keys, and which deleted them.
        let mut made: HashMap<String, usize> = HashMap::new();
        for e in allowed(AuditAction::Create) {
            let id = e.key_id.expect("a create names its key").to_string();
            *made.entry(id).or_default() += 1;
        }
        for e in allowed(AuditAction::Rotate) {
            let to = value(e, "rotated_to").expect("a rotation names its new key");
            *made.entry(to).or_default() += 1;
        }
        let mut deleted: HashMap<String, usize> = HashMap::new();
        for e in allowed(AuditAction::Delete) {
            let id = e.key_id.expect("a delete names its key").to_string();
            *deleted.entry(id).or_default() += 1;
        }
        let keys = kr.list(&admin(&acct)).expect("list");
        let present: HashSet<String> = keys.iter().map(|k| k.id.to_string()).collect();
        for k in &keys {
            let id = k.id.to_string();
            assert_eq!(
                made.get(&id),
                Some(&1),
                "key {id}: the records that made it"
            );
            assert!(
                !deleted.contains_key(&id),
                "key {id} is there, but a record deleted it"
            );
            // Disabled iff its last disable-or-enable that changed it says so.
            let last = records
                .iter()
                .filter(|e| {
                    e.key_id == Some(k.id)
                        && e.outcome == AuditOutcome::Allowed
                        && matches!(e.action, AuditAction::Disable | AuditAction::Enable)
                        && !e.changes.is_empty()
                })
                .max_by_key(|e| e.id);
            let disabled = last.is_some_and(|e| e.action == AuditAction::Disable);
            assert_eq!(k.disabled.is_some(), disabled, "key {id}'s disabled state");
            let rotations = allowed(AuditAction::Rotate)
                .filter(|e| e.key_id == Some(k.id))
                .count();
            assert_eq!(
                usize::from(k.rotated_to().is_some()),
                rotations,
                "key {id}'s rotation"
            );
            let ends = allowed(AuditAction::EndRotation)
                .filter(|e| e.key_id == Some(k.id))
                .count();
            assert!(ends <= 1, "key {id} has {ends} end_rotation records");
        }
        for (id, n) in &made {
            if !present.contains(id) {
                assert_eq!(
                    deleted.get(id),
                    Some(&1),
                    "key {id} was made ({n} records) and is gone without exactly one delete record"
                );
            }
        }
        for id in deleted.keys() {
            assert!(
                !present.contains(id),
                "key {id} has a delete record but is there"
            );
        }
        eprintln!(
            "round {round}: {} records, {} keys, {} made, {} deleted",
            records.len(),
            keys.len(),
            made.len(),
            deleted.len()
        );
        assert!(
            !records.is_empty(),
            "the child wrote no record before the kill"
        );
    }
}
