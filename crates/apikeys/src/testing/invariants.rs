//! The authorization invariants of docs/design.md ("Invariants"), checked
//! through a [`Keyring`] on any store (feature `testing`).
//!
//! Rule-by-rule tests check each rule on its own; these check *sequences*
//! and *races*, where the escalations an outside review found lived:
//!
//! - [`sequences`]: a stateful property test. Random sequences of role
//!   changes, removals, creations by stale or wrong actors, disables,
//!   enables, deletions and cross-account attempts run against a keyring and
//!   a small reference model; after every step every key is tried on a set of
//!   requests and must be admitted exactly when the model says so, and every
//!   user's stored standing must equal the model's.
//! - [`races`]: concurrency loops for each check-then-write of the keyring
//!   (offboarding against token creation, disable against authenticate,
//!   delete against enable), many rounds, zero violations.
//!
//! A store crate calls both from its tests:
//!
//! ```
//! use std::sync::Arc;
//! use apikeys::testing::invariants;
//!
//! let store = Arc::new(apikeys::MemoryStore::new());
//! invariants::sequences(store.clone(), 8);
//! invariants::races(store, 5);
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::unique_account;
use crate::error::Error;
use crate::key::KeyKind;
use crate::keyring::Keyring;
use crate::record::AccessLevel;
use crate::request::Request;
use crate::role::{Actor, Role, UserState};
use crate::store::KeyStore;

/// The users a sequence acts with.
const USERS: usize = 4;

/// The resources a sequence's scopes and requests name; `users` and
/// `audit_records` are admin-only in PagerDuty's table.
const RESOURCES: [&str; 5] = [
    "incidents",
    "users",
    "audit_records",
    "subscribers",
    "services",
];

/// One step of a sequence. Actors name a user by index and *claim* a role,
/// which may be stale or forged: the keyring must decide on the stored one.
#[derive(Clone, Debug)]
enum Op {
    SetRole(usize, Role),
    Remove(usize),
    UserToken(usize, Role),
    Scoped(usize, Role, Vec<(usize, bool)>),
    General(usize, Role, bool),
    Disable(usize, Role, usize),
    Enable(usize, Role, usize),
    Delete(usize, Role, usize),
    /// An actor of another account (claiming any role) tries the key.
    Foreign(Role, usize),
}

fn role() -> impl Strategy<Value = Role> {
    proptest::sample::select(Role::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let key = 0..64usize;
    let scopes = proptest::collection::vec((0..RESOURCES.len(), any::<bool>()), 1..3);
    prop_oneof![
        3 => (user.clone(), role()).prop_map(|(u, r)| Op::SetRole(u, r)),
        1 => user.clone().prop_map(Op::Remove),
        3 => (user.clone(), role()).prop_map(|(u, r)| Op::UserToken(u, r)),
        3 => (user.clone(), role(), scopes).prop_map(|(u, r, s)| Op::Scoped(u, r, s)),
        2 => (user.clone(), role(), any::<bool>()).prop_map(|(u, r, ro)| Op::General(u, r, ro)),
        1 => (user.clone(), role(), key.clone()).prop_map(|(u, r, k)| Op::Disable(u, r, k)),
        1 => (user.clone(), role(), key.clone()).prop_map(|(u, r, k)| Op::Enable(u, r, k)),
        2 => (user, role(), key.clone()).prop_map(|(u, r, k)| Op::Delete(u, r, k)),
        1 => (role(), key).prop_map(|(r, k)| Op::Foreign(r, k)),
    ]
}

/// What the model knows of one key.
struct ModelKey {
    token: String,
    id: String,
    kind: KeyKind,
    read_only: bool,
    /// The user it acts through (user token owner, scoped token maker).
    through: Option<usize>,
    scopes: Vec<(usize, bool)>,
    disabled: bool,
    deleted: bool,
}

/// The reference model: each user's stored standing, and the keys.
#[derive(Default)]
struct Model {
    users: HashMap<usize, UserState>,
    keys: Vec<ModelKey>,
}

fn admin_only(resource: usize) -> bool {
    matches!(RESOURCES[resource], "users" | "audit_records")
}

/// PagerDuty's grants, written out again on their own for the model.
fn grants(role: Role, resource: usize, write: bool) -> bool {
    use Role::*;
    let name = RESOURCES[resource];
    match (role, write) {
        (Owner | Admin, _) => true,
        (Manager, false) => true,
        (Manager, true) => !admin_only(resource),
        (Responder | Observer | RestrictedAccess | FullStakeholder, false) => !admin_only(resource),
        (Responder, true) => name == "incidents",
        (FullStakeholder, true) => name == "subscribers",
        _ => false,
    }
}

/// What a user with `role` may hand to a scoped token (and what the token
/// may still do once its maker has that role).
fn delegable(role: Role, resource: usize, write: bool) -> bool {
    grants(role, resource, write) && (!admin_only(resource) || role.is_admin_or_owner())
}

/// The requests every key is tried on after each step: method, scope.
const REQUESTS: [(&str, Option<(usize, bool)>); 9] = [
    ("GET", None),
    ("POST", None),
    ("GET", Some((0, false))),
    ("POST", Some((0, true))),
    ("GET", Some((1, false))),
    ("POST", Some((1, true))),
    ("GET", Some((2, false))),
    ("POST", Some((3, true))),
    ("GET", Some((4, false))),
];

fn request(method: &str, scope: Option<(usize, bool)>) -> Request {
    let r = Request::rest(method);
    match scope {
        None => r,
        Some((res, w)) => r
            .with_scope(&format!(
                "{}.{}",
                RESOURCES[res],
                if w { "write" } else { "read" }
            ))
            .expect("valid scope"),
    }
}

impl Model {
    /// The standing a management call by `user` claiming `claimed` is decided on.
    fn standing(&self, user: usize, claimed: Role) -> UserState {
        self.users.get(&user).copied().unwrap_or(UserState {
            role: claimed,
            removed: false,
        })
    }

    /// Whether `key` must be admitted for `method` with `scope`.
    fn admits(&self, key: &ModelKey, method: &str, scope: Option<(usize, bool)>) -> bool {
        if key.disabled || key.deleted {
            return false;
        }
        let write = method != "GET" || scope.is_some_and(|(_, w)| w);
        let through = key.through.and_then(|u| self.users.get(&u).copied());
        match key.kind {
            KeyKind::General => !(key.read_only && write),
            KeyKind::UserToken => match through {
                Some(UserState {
                    role,
                    removed: false,
                }) => match scope {
                    Some((res, _)) => grants(role, res, write),
                    // Without a scope: every resource that is not admin-only.
                    None => (0..RESOURCES.len())
                        .filter(|&r| !admin_only(r))
                        .all(|r| grants(role, r, write)),
                },
                _ => false,
            },
            KeyKind::Scoped => match (through, scope) {
                (
                    Some(UserState {
                        role,
                        removed: false,
                    }),
                    Some((res, _)),
                ) => {
                    key.scopes.iter().any(|&(r, w)| r == res && (w || !write))
                        && delegable(role, res, write)
                }
                _ => false,
            },
            _ => false,
        }
    }
}

fn actor(account: &str, user: usize, role: Role) -> Actor {
    Actor::new(account, format!("PUSER{user}"), role)
}

fn fail(step: usize, op: &Op, what: String) -> TestCaseError {
    TestCaseError::fail(format!("after step {step} ({op:?}): {what}"))
}

/// Run one sequence against a keyring on `store`; fail at the first step
/// after which an invariant does not hold.
fn run(store: &Arc<dyn KeyStore>, ops: &[Op]) -> Result<(), TestCaseError> {
    let keyring = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let acct = unique_account("seq");
    let foreign = unique_account("seq-foreign");
    let mut m = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::SetRole(u, r) => {
                keyring
                    .set_user_role(&acct, &format!("PUSER{u}"), *r)
                    .map_err(|e| fail(step, op, format!("set_user_role failed: {e}")))?;
                m.users.insert(
                    *u,
                    UserState {
                        role: *r,
                        removed: false,
                    },
                );
            }
            Op::Remove(u) => {
                keyring
                    .remove_user(&acct, &format!("PUSER{u}"))
                    .map_err(|e| fail(step, op, format!("remove_user failed: {e}")))?;
                let role = m.users.get(u).map_or(Role::LimitedStakeholder, |s| s.role);
                m.users.insert(
                    *u,
                    UserState {
                        role,
                        removed: true,
                    },
                );
                for k in &mut m.keys {
                    if k.through == Some(*u)
                        && matches!(k.kind, KeyKind::UserToken | KeyKind::Scoped)
                    {
                        k.disabled = true;
                    }
                }
            }
            Op::UserToken(u, claimed) | Op::Scoped(u, claimed, _) | Op::General(u, claimed, _) => {
                let s = m.standing(*u, *claimed);
                let a = actor(&acct, *u, *claimed);
                let (kind, expect, result) = match op {
                    Op::UserToken(..) => (
                        KeyKind::UserToken,
                        !s.removed && s.role != Role::LimitedStakeholder,
                        keyring.create_user_token(&a, "seq token"),
                    ),
                    Op::Scoped(_, _, scopes) => {
                        let names: Vec<String> = scopes
                            .iter()
                            .map(|&(r, w)| {
                                format!("{}.{}", RESOURCES[r], if w { "write" } else { "read" })
                            })
                            .collect();
                        (
                            KeyKind::Scoped,
                            !s.removed
                                && s.role.is_manager_or_above()
                                && scopes.iter().all(|&(r, w)| delegable(s.role, r, w)),
                            keyring.create_scoped_token(&a, "seq scoped", &names),
                        )
                    }
                    _ => {
                        let ro = matches!(op, Op::General(_, _, true));
                        let access = if ro {
                            AccessLevel::ReadOnly
                        } else {
                            AccessLevel::FullAccess
                        };
                        (
                            KeyKind::General,
                            !s.removed && s.role.is_admin_or_owner(),
                            keyring.create_general_key(&a, "seq general", access),
                        )
                    }
                };
                match (expect, result) {
                    (true, Ok(issued)) => {
                        let through = matches!(kind, KeyKind::UserToken | KeyKind::Scoped);
                        if through {
                            m.users.entry(*u).or_insert(s);
                        }
                        let scopes = match op {
                            Op::Scoped(_, _, sc) => sc.clone(),
                            _ => Vec::new(),
                        };
                        m.keys.push(ModelKey {
                            token: issued.secret().expose().to_owned(),
                            id: issued.record().id.to_string(),
                            kind,
                            read_only: matches!(op, Op::General(_, _, true)),
                            through: through.then_some(*u),
                            scopes,
                            disabled: false,
                            deleted: false,
                        });
                    }
                    (false, Err(Error::NotPermitted { .. })) => {}
                    (true, Err(e)) => {
                        return Err(fail(step, op, format!("refused, should succeed: {e}")));
                    }
                    (false, Ok(_)) => {
                        return Err(fail(step, op, "succeeded, should be refused".into()));
                    }
                    (false, Err(e)) => {
                        return Err(fail(step, op, format!("wrong refusal: {e}")));
                    }
                }
            }
            Op::Disable(u, claimed, k) | Op::Enable(u, claimed, k) | Op::Delete(u, claimed, k) => {
                if m.keys.is_empty() {
                    continue;
                }
                let i = k % m.keys.len();
                let s = m.standing(*u, *claimed);
                let a = actor(&acct, *u, *claimed);
                let key = &m.keys[i];
                let owner_standing = key.through.and_then(|o| m.users.get(&o).copied());
                let may = !s.removed
                    && match (op, key.kind) {
                        (Op::Disable(..) | Op::Enable(..), KeyKind::General) => {
                            s.role.is_admin_or_owner()
                        }
                        (Op::Disable(..) | Op::Enable(..), _) => false,
                        (_, KeyKind::General) => s.role.is_admin_or_owner(),
                        (_, KeyKind::Scoped) => s.role.is_manager_or_above(),
                        (_, KeyKind::UserToken) if key.through == Some(*u) => true,
                        (_, KeyKind::UserToken) => {
                            s.role.is_admin_or_owner()
                                && owner_standing.is_some_and(|o| !o.role.is_admin_or_owner())
                        }
                        _ => false,
                    };
                let result = match op {
                    Op::Disable(..) => keyring.disable(&a, &key.id),
                    Op::Enable(..) => keyring.enable(&a, &key.id),
                    _ => keyring.delete(&a, &key.id),
                };
                match (key.deleted, may, result) {
                    (true, _, Err(Error::NotFound { .. })) => {}
                    (true, _, Ok(_)) => {
                        return Err(fail(step, op, "a deleted key was found".into()));
                    }
                    (false, true, Ok(_)) => {
                        let key = &mut m.keys[i];
                        match op {
                            Op::Disable(..) => key.disabled = true,
                            Op::Enable(..) => key.disabled = false,
                            _ => key.deleted = true,
                        }
                    }
                    (false, false, Ok(_)) => {
                        return Err(fail(step, op, "allowed, should be refused".into()));
                    }
                    (false, true, Err(e)) => {
                        return Err(fail(step, op, format!("refused, should succeed: {e}")));
                    }
                    (_, _, Err(Error::NotPermitted { .. } | Error::InvalidInput { .. })) => {}
                    (_, _, Err(e)) => return Err(fail(step, op, format!("wrong refusal: {e}"))),
                }
            }
            Op::Foreign(r, k) => {
                // (d): a key of one account is invisible from every other.
                let a = Actor::new(foreign.as_str(), "PUSER0", *r);
                let listed = keyring
                    .list(&a)
                    .map_err(|e| fail(step, op, format!("foreign list failed: {e}")))?;
                if !listed.is_empty() {
                    return Err(fail(step, op, "another account's list shows keys".into()));
                }
                if let Some(key) = m.keys.get(k % m.keys.len().max(1)) {
                    for result in [
                        keyring.get(&a, &key.id),
                        keyring.disable(&a, &key.id),
                        keyring.enable(&a, &key.id),
                        keyring.delete(&a, &key.id),
                    ] {
                        if !matches!(result, Err(Error::NotFound { .. })) {
                            return Err(fail(
                                step,
                                op,
                                format!("another account reached a key: {result:?}"),
                            ));
                        }
                    }
                }
            }
        }
        // (c): stored standings change only as the model says.
        for u in 0..USERS {
            let stored = keyring
                .user(&acct, &format!("PUSER{u}"))
                .map_err(|e| fail(step, op, format!("user failed: {e}")))?;
            if stored != m.users.get(&u).copied() {
                return Err(fail(
                    step,
                    op,
                    format!(
                        "PUSER{u}'s stored standing is {stored:?}, expected {:?}",
                        m.users.get(&u)
                    ),
                ));
            }
        }
        // (a), (b): every key admits exactly what its standing allows now.
        for key in &m.keys {
            for (method, scope) in REQUESTS {
                let want = m.admits(key, method, scope);
                let got = keyring.authenticate(&key.token, &request(method, scope));
                if let Ok(p) = &got {
                    if p.account() != acct {
                        return Err(fail(step, op, "a principal of the wrong account".into()));
                    }
                }
                if got.is_ok() != want {
                    return Err(fail(
                        step,
                        op,
                        format!(
                            "{} key {} on {method} {scope:?}: expected {}, got {got:?}",
                            key.kind,
                            key.id,
                            if want { "admitted" } else { "refused" },
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The stateful property test: `cases` random sequences of up to 40 steps
/// on a keyring over `store` (each case in accounts of its own, so a slow
/// store may be shared). Panics with the shrunk failing sequence.
pub fn sequences(store: Arc<dyn KeyStore>, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(op(), 1..40);
    if let Err(e) = runner.run(&strategy, |ops| run(&store, &ops)) {
        panic!("authorization invariant broken: {e}");
    }
}

/// The concurrency loops, `rounds` rounds each, on keyrings over `store`:
///
/// - offboarding against token creation: a user makes user and scoped
///   tokens while another thread removes them; once both returned, no token
///   of theirs authenticates and their standing is removed;
/// - disable against authenticate: no authentication that starts after
///   `disable` returned succeeds;
/// - delete against enable: once both returned, the key is gone for good
///   (never authenticates, never found, never re-enabled).
///
/// Panics at the first violation, naming the loop and round.
pub fn races(store: Arc<dyn KeyStore>, rounds: usize) {
    let keyring = Keyring::builder()
        .shared_store(store)
        .build()
        .expect("a keyring");
    offboarding_against_creation(&keyring, rounds);
    disable_against_authenticate(&keyring, rounds);
    delete_against_enable(&keyring, rounds);
}

fn offboarding_against_creation(keyring: &Keyring, rounds: usize) {
    let acct = unique_account("race-offboard");
    let get = Request::rest("GET")
        .with_scope("incidents.read")
        .expect("valid scope");
    for round in 0..rounds {
        let user = format!("PRACER{round}");
        // Odd rounds: a user the keyring does not know yet, whose first
        // token stores their standing, racing the offboarding that stores it too.
        if round % 2 == 0 {
            keyring
                .set_user_role(&acct, &user, Role::Manager)
                .expect("set_user_role");
        }
        let barrier = std::sync::Barrier::new(2);
        let made: Vec<String> = std::thread::scope(|s| {
            let maker = s.spawn(|| {
                let a = Actor::new(acct.as_str(), user.as_str(), Role::Manager);
                barrier.wait();
                let mut made = Vec::new();
                for i in 0..6 {
                    let issued = if i % 2 == 0 {
                        keyring.create_user_token(&a, "racing")
                    } else {
                        keyring.create_scoped_token(&a, "racing", &["incidents.read"])
                    };
                    match issued {
                        Ok(k) => made.push(k.secret().expose().to_owned()),
                        Err(Error::NotPermitted { .. }) => {}
                        Err(e) => panic!("offboarding race, round {round}: create failed: {e}"),
                    }
                }
                made
            });
            barrier.wait();
            keyring.remove_user(&acct, &user).expect("remove_user");
            maker.join().expect("maker thread")
        });
        for token in &made {
            assert!(
                keyring.authenticate(token, &get).is_err(),
                "offboarding race, round {round}: a token made around remove_user works after it"
            );
        }
        assert!(
            keyring
                .user(&acct, &user)
                .expect("user")
                .is_some_and(|s| s.removed),
            "offboarding race, round {round}: the user was restored"
        );
    }
}

fn disable_against_authenticate(keyring: &Keyring, rounds: usize) {
    let acct = unique_account("race-disable");
    let admin = Actor::new(acct.as_str(), "PADMIN", Role::Admin);
    let get = Request::rest("GET");
    for round in 0..rounds {
        let issued = keyring
            .create_general_key(&admin, "racing", AccessLevel::FullAccess)
            .expect("create");
        let token = issued.secret().expose();
        let id = issued.record().id.to_string();
        let disabled = AtomicBool::new(false);
        let late_successes = AtomicUsize::new(0);
        let attempts = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    loop {
                        let after = disabled.load(Ordering::SeqCst);
                        let ok = keyring.authenticate(token, &get).is_ok();
                        attempts.fetch_add(1, Ordering::Relaxed);
                        if after {
                            if ok {
                                late_successes.fetch_add(1, Ordering::SeqCst);
                            }
                            break;
                        }
                    }
                });
            }
            while attempts.load(Ordering::Relaxed) < 20 {
                std::thread::yield_now();
            }
            keyring.disable(&admin, &id).expect("disable");
            disabled.store(true, Ordering::SeqCst);
        });
        assert_eq!(
            late_successes.load(Ordering::SeqCst),
            0,
            "disable race, round {round}: a key worked after disable returned"
        );
    }
}

fn delete_against_enable(keyring: &Keyring, rounds: usize) {
    let acct = unique_account("race-delete");
    let admin = Actor::new(acct.as_str(), "PADMIN", Role::Admin);
    let get = Request::rest("GET");
    for round in 0..rounds {
        let issued = keyring
            .create_general_key(&admin, "racing", AccessLevel::FullAccess)
            .expect("create");
        let token = issued.secret().expose();
        let id = issued.record().id.to_string();
        keyring.disable(&admin, &id).expect("disable");
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..4 {
                    match keyring.enable(&admin, &id) {
                        Ok(_) | Err(Error::NotFound { .. }) => {}
                        Err(e) => panic!("delete race, round {round}: enable failed: {e}"),
                    }
                }
            });
            barrier.wait();
            keyring.delete(&admin, &id).expect("delete");
        });
        assert!(
            keyring.authenticate(token, &get).is_err(),
            "delete race, round {round}: a deleted key works"
        );
        assert!(
            matches!(keyring.get(&admin, &id), Err(Error::NotFound { .. })),
            "delete race, round {round}: a deleted key came back"
        );
        assert!(matches!(
            keyring.enable(&admin, &id),
            Err(Error::NotFound { .. })
        ));
    }
}
