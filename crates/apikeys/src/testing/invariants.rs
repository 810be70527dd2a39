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
//! - [`rotation_races`]: the same for rotation, on two keyrings over the same
//!   data (two store objects of a database: two processes, as far as its
//!   locks know): rotate against rotate, offboarding, disable and delete;
//!   `end_rotation` against the keys' use. Each round's outcome is checked
//!   on the store's records and its audit trail.
//! - [`user_role_races`]: the same for the changes made for a person
//!   (roles, removals, the plan) against the promotion of their subject to
//!   Owner and against the actor's own demotion or removal; each round's
//!   outcome is checked on the users' states and on the chain of their
//!   audit records.
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
use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery, MAX_AUDIT_PAGE};
use crate::clock::Clock as _;
use crate::error::Error;
use crate::key::KeyKind;
use crate::keyring::{IssuedKey, Keyring};
use crate::record::{AccessLevel, KeyId};
use crate::request::Request;
use crate::role::{AccountSettings, Actor, Role, UserState};
use crate::store::{KeyStore, standing_user};

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
        let a = Actor::new(acct.as_str(), user.as_str(), Role::Manager);
        let (made, _) = released_together(
            AT_ONCE,
            || {
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
            },
            || keyring.remove_user(&acct, &user).expect("remove_user"),
        );
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
        released_together(
            AT_ONCE,
            || {
                for _ in 0..4 {
                    match keyring.enable(&admin, &id) {
                        Ok(_) | Err(Error::NotFound { .. }) => {}
                        Err(e) => panic!("delete race, round {round}: enable failed: {e}"),
                    }
                }
            },
            || keyring.delete(&admin, &id).expect("delete"),
        );
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

/// The grace of every rotation in [`rotation_races`]: long enough that no
/// overlap ends by itself during a round.
const RACE_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The concurrency loops of rotation (docs/design.md §8), `rounds` rounds
/// each. `first` and `second` are keyrings on the same data: for a durable
/// store, two store objects on the same database (two processes, as far as
/// the store's locking knows); for one that keeps no trail of its own, the
/// same keyring twice or two on one shared store. Each round starts its two
/// sides together (a barrier), one on each keyring, and checks the store's
/// records and its audit trail once both returned:
///
/// - rotate against rotate: exactly one succeeds; the other is refused
///   (`InvalidInput`, field `key_id`) naming the successor; exactly one new
///   key exists, linked both ways; exactly one allowed rotate record;
/// - rotate against `remove_user` of the user a token acts through (their
///   user token, or a scoped token they made, rotated by them): either the
///   rotation came first and the offboarding disabled both tokens, or the
///   offboarding came first and the rotation is refused (`NotPermitted`, the
///   user was removed) — never a working successor of a removed user;
/// - rotate against disable: both succeed; the old key stays disabled
///   (a rotation never undoes a disable), the new one works;
/// - rotate against delete: the old key is gone; either the rotation came
///   first (the deleted record names the successor, which works) or it is
///   refused (`NotFound`) and made no key;
/// - `end_rotation` against the use of both keys: no use of the old key that
///   starts after `end_rotation` returned succeeds, the new key always works,
///   and the end is never undone by the write of the new key's first use.
///
/// Where both orders can happen, the loops count them and, over 20 rounds
/// or more, fail if one was never seen (the loop would not be testing the
/// race). Panics at the first violation, naming the loop and round.
///
/// Each loop was seen to fail once the serialization it checks was taken
/// out of a store: the memory store's shard lock (disable) and account lock
/// (double rotation, offboarding); PostgreSQL's `FOR UPDATE` on the key row
/// (double rotation, disable, delete, end against use) and on the user row
/// (offboarding); SQLite's `BEGIN IMMEDIATE` (every loop); SQLite's read of
/// the old key inside the transaction that notes its successor's first use
/// (end against use).
pub fn rotation_races(first: &Keyring, second: &Keyring, rounds: usize) {
    rotate_against_rotate(first, second, rounds);
    rotate_against_offboarding(first, second, rounds);
    rotate_against_disable(first, second, rounds);
    rotate_against_delete(first, second, rounds);
    end_rotation_against_use(first, second, rounds);
}

/// What one side of a race does between the barrier and its call: sleep
/// (coarse waits, [`together`]) or spin (finer, [`together_fine`]). A zero
/// of either starts the side at once.
#[derive(Clone, Copy)]
enum Stagger {
    Sleep(std::time::Duration),
    Spin(usize),
}

impl Stagger {
    /// `self` for the first side and nothing for the second when `first`,
    /// the other way round otherwise.
    fn on_first(self, first: bool) -> (Stagger, Stagger) {
        let none = Stagger::Spin(0);
        if first { (self, none) } else { (none, self) }
    }

    fn pause(self) {
        match self {
            Stagger::Sleep(wait) => {
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
            }
            Stagger::Spin(spins) => {
                for _ in 0..spins {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// Both sides of a race started at once.
const AT_ONCE: (Stagger, Stagger) = (Stagger::Spin(0), Stagger::Spin(0));

/// Runs `a` and `b` on two threads released together by a barrier, each
/// side first pausing as its [`Stagger`] says; answers what both returned
/// (a panic on either side is the caller's).
fn released_together<A: Send, B: Send>(
    (stagger_a, stagger_b): (Stagger, Stagger),
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    let barrier = std::sync::Barrier::new(2);
    let side = |stagger: Stagger| {
        barrier.wait();
        stagger.pause();
    };
    std::thread::scope(|s| {
        let ta = s.spawn(|| {
            side(stagger_a);
            a()
        });
        let tb = s.spawn(|| {
            side(stagger_b);
            b()
        });
        (
            ta.join().expect("first side"),
            tb.join().expect("second side"),
        )
    })
}

/// Runs `a` and `b` on two threads released together by a barrier. Left
/// alone, one side of a race tends to win nearly every round (its call is
/// shorter); so in most rounds one side, in turn, waits a little after the
/// barrier (from 20 µs to 3 ms, more in later rounds of the cycle), and the
/// loops see both orders and the moments in between. A third of the rounds
/// start both sides at once.
fn together<A: Send, B: Send>(
    round: usize,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    const WAIT_US: [u64; 6] = [0, 0, 20, 200, 1000, 3000];
    let wait = std::time::Duration::from_micros(WAIT_US[(round / 2) % WAIT_US.len()]);
    released_together(Stagger::Sleep(wait).on_first(round % 2 == 0), a, b)
}

/// The end of a race loop: print how often `race` saw each of its two
/// orders (`names`) and, over 20 rounds or more, fail if one never was (the
/// loop would not be testing the race).
fn both_orders_seen(race: &str, seen: [usize; 2], rounds: usize, names: [&str; 2]) {
    eprintln!(
        "{race}: {} {} times, {} {} times",
        names[0], seen[0], names[1], seen[1]
    );
    if rounds >= 20 {
        assert!(
            seen[0] > 0 && seen[1] > 0,
            "{race}: in {rounds} rounds, {} {} times and {} {} times: the loop did not test both orders",
            names[0],
            seen[0],
            names[1],
            seen[1]
        );
    }
}

/// One loop of [`rotation_races`]: its name, its keyrings and account, and
/// how often each of its two orders was seen.
struct Race<'a> {
    name: &'static str,
    first: &'a Keyring,
    second: &'a Keyring,
    account: String,
    admin: Actor,
    get: Request,
    orders: [usize; 2],
}

impl<'a> Race<'a> {
    fn new(name: &'static str, first: &'a Keyring, second: &'a Keyring) -> Self {
        let account = unique_account("race-rotation");
        let admin = Actor::new(account.as_str(), "PADMIN", Role::Admin);
        Race {
            name,
            first,
            second,
            account,
            admin,
            get: Request::rest("GET"),
            orders: [0; 2],
        }
    }

    /// A fresh general key, its id, and the id as text.
    fn general_key(&self) -> (IssuedKey, KeyId, String) {
        let k = self
            .first
            .create_general_key(&self.admin, "racing", AccessLevel::FullAccess)
            .expect("create");
        let id = k.record().id;
        (k, id, id.to_string())
    }

    /// Whether `token` authenticates through `kr`.
    fn works(&self, kr: &Keyring, token: &IssuedKey) -> bool {
        kr.authenticate(token.secret().expose(), &self.get).is_ok()
    }

    /// The keys of the account that a rotation made from `old`.
    fn successors_of(&self, old: KeyId) -> Vec<KeyId> {
        self.first
            .list(&self.admin)
            .expect("list")
            .iter()
            .filter(|r| r.rotated_from() == Some(old))
            .map(|r| r.id)
            .collect()
    }

    /// How many audit records of `action` on key `id` were allowed and how
    /// many refused: from the store's trail once, or from each keyring's sink.
    fn trail(&self, id: KeyId, action: AuditAction) -> (usize, usize) {
        let once = self.first.store().keeps_audit() || std::ptr::eq(self.first, self.second);
        let keyrings: &[&Keyring] = if once {
            &[self.first]
        } else {
            &[self.first, self.second]
        };
        let (mut allowed, mut refused) = (0, 0);
        for kr in keyrings {
            let mut q = AuditQuery::account(&self.account);
            q.key_id = Some(id);
            q.actions = vec![action];
            q.limit = MAX_AUDIT_PAGE;
            loop {
                let page = kr.audit_records(&q).expect("audit_records");
                for e in &page.records {
                    match e.outcome {
                        AuditOutcome::Allowed => allowed += 1,
                        AuditOutcome::Refused { .. } => refused += 1,
                    }
                }
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
        }
        (allowed, refused)
    }

    /// Count the order of one round (0 or 1, as named by [`Race::done`]).
    fn saw(&mut self, order: usize) {
        self.orders[order] += 1;
    }

    /// Print the orders seen and, over 20 rounds or more, fail if one never was.
    fn done(self, rounds: usize, names: [&str; 2]) {
        both_orders_seen(self.name, self.orders, rounds, names);
    }
}

fn rotate_against_rotate(first: &Keyring, second: &Keyring, rounds: usize) {
    let mut race = Race::new("double rotation", first, second);
    for round in 0..rounds {
        let (old, old_id, id) = race.general_key();
        let (a, b) = together(
            round,
            || first.rotate(&race.admin, &id, RACE_GRACE),
            || second.rotate(&race.admin, &id, RACE_GRACE),
        );
        let (winner, new, refusal) = match (a, b) {
            (Ok(new), Err(e)) => (0, new, e),
            (Err(e), Ok(new)) => (1, new, e),
            (a, b) => panic!(
                "double rotation, round {round}: expected exactly one rotation to succeed, got {:?} and {:?}",
                a.map(|k| k.record().id),
                b.map(|k| k.record().id)
            ),
        };
        race.saw(winner);
        let new_id = new.record().id;
        match &refusal {
            Error::InvalidInput {
                field: "key_id",
                reason,
            } if reason.contains(&new_id.to_string()) => {}
            e => panic!(
                "double rotation, round {round}: the second rotation must be refused naming the successor {new_id}, got {e:?}"
            ),
        }
        assert_eq!(
            race.successors_of(old_id),
            vec![new_id],
            "double rotation, round {round}: exactly one new key"
        );
        assert_eq!(
            first.list(&race.admin).expect("list").len(),
            2 * (round + 1),
            "double rotation, round {round}: a key too many in the account"
        );
        assert_eq!(
            first.get(&race.admin, &id).expect("get").rotated_to(),
            Some(new_id),
            "double rotation, round {round}: the old key names another successor"
        );
        for (name, key) in [("old", &old), ("new", &new)] {
            assert!(
                race.works(second, key),
                "double rotation, round {round}: the {name} key does not work during the overlap"
            );
        }
        assert_eq!(
            race.trail(old_id, AuditAction::Rotate),
            (1, 1),
            "double rotation, round {round}: (allowed, refused) rotate records of the key"
        );
    }
    race.done(rounds, ["the first keyring won", "the second won"]);
}

fn rotate_against_offboarding(first: &Keyring, second: &Keyring, rounds: usize) {
    let mut race = Race::new("offboarding against rotation", first, second);
    let acct = race.account.clone();
    for round in 0..rounds {
        let user = format!("PROTATE{round}");
        first
            .set_user_role(&acct, &user, Role::Manager)
            .expect("set_user_role");
        let owner = Actor::new(acct.as_str(), user.as_str(), Role::Manager);
        // Even rounds their user token, odd rounds a scoped token they made:
        // both act through their standing, and only they may rotate them.
        let token = if round % 2 == 0 {
            first.create_user_token(&owner, "racing")
        } else {
            first.create_scoped_token(&owner, "racing", &["incidents.read"])
        }
        .expect("create");
        let old_id = token.record().id;
        let id = old_id.to_string();
        let (rotated, removed) = together(
            round,
            || first.rotate(&owner, &id, RACE_GRACE),
            || second.remove_user(&acct, &user),
        );
        let disabled = removed.expect("remove_user");
        let new = match rotated {
            Ok(new) => {
                race.saw(0);
                assert_eq!(
                    disabled, 2,
                    "offboarding against rotation, round {round}: the rotation came first, so the offboarding must disable both tokens"
                );
                Some(new)
            }
            Err(Error::NotPermitted { reason }) if reason.contains("removed") => {
                race.saw(1);
                None
            }
            Err(e) => panic!("offboarding against rotation, round {round}: rotate failed: {e}"),
        };
        assert_eq!(
            race.successors_of(old_id),
            new.iter().map(|k| k.record().id).collect::<Vec<_>>(),
            "offboarding against rotation, round {round}: a successor the caller was not given, or none for one it was"
        );
        for kr in [first, second] {
            let listed = kr.list(&race.admin).expect("list");
            for r in listed
                .iter()
                .filter(|r| standing_user(r) == Some(user.as_str()))
            {
                assert!(
                    r.disabled.is_some(),
                    "offboarding against rotation, round {round}: a token of the removed user is enabled ({})",
                    r.id
                );
            }
            for key in std::iter::once(&token).chain(new.as_ref()) {
                let scoped = Request::rest("GET")
                    .with_scope("incidents.read")
                    .expect("valid scope");
                assert!(
                    kr.authenticate(key.secret().expose(), &scoped).is_err(),
                    "offboarding against rotation, round {round}: a token of the removed user works"
                );
            }
        }
        assert!(
            first
                .user(&acct, &user)
                .expect("user")
                .is_some_and(|s| s.removed),
            "offboarding against rotation, round {round}: the user was restored"
        );
        assert_eq!(
            race.trail(old_id, AuditAction::Rotate),
            if new.is_some() { (1, 0) } else { (0, 1) },
            "offboarding against rotation, round {round}: (allowed, refused) rotate records"
        );
    }
    race.done(
        rounds,
        ["the rotation came first", "the offboarding came first"],
    );
}

fn rotate_against_disable(first: &Keyring, second: &Keyring, rounds: usize) {
    let mut race = Race::new("disable against rotation", first, second);
    for round in 0..rounds {
        let (old, old_id, id) = race.general_key();
        let (rotated, disabled) = together(
            round,
            || first.rotate(&race.admin, &id, RACE_GRACE),
            || second.disable(&race.admin, &id),
        );
        let new = rotated.unwrap_or_else(|e| {
            panic!(
                "disable against rotation, round {round}: a disabled key may be rotated, got {e}"
            )
        });
        let as_disabled = disabled.expect("disable");
        race.saw(usize::from(as_disabled.rotated_to().is_none()));
        let new_id = new.record().id;
        let rec = first.get(&race.admin, &id).expect("get");
        assert!(
            rec.disabled.is_some(),
            "disable against rotation, round {round}: the rotation undid the disable"
        );
        assert_eq!(
            rec.rotated_to(),
            Some(new_id),
            "disable against rotation, round {round}: the disable undid the rotation"
        );
        assert_eq!(race.successors_of(old_id), vec![new_id]);
        assert!(
            !race.works(second, &old),
            "disable against rotation, round {round}: the disabled key works"
        );
        assert!(
            race.works(first, &new),
            "disable against rotation, round {round}: the new key does not work"
        );
        assert_eq!(race.trail(old_id, AuditAction::Rotate), (1, 0));
        assert_eq!(race.trail(old_id, AuditAction::Disable), (1, 0));
    }
    race.done(
        rounds,
        ["the rotation came first", "the disable came first"],
    );
}

fn rotate_against_delete(first: &Keyring, second: &Keyring, rounds: usize) {
    let mut race = Race::new("delete against rotation", first, second);
    for round in 0..rounds {
        let (old, old_id, id) = race.general_key();
        let (rotated, deleted) = together(
            round,
            || first.rotate(&race.admin, &id, RACE_GRACE),
            || second.delete(&race.admin, &id),
        );
        let gone = deleted.expect("delete");
        let new = match rotated {
            Ok(new) => {
                race.saw(0);
                assert_eq!(
                    gone.rotated_to(),
                    Some(new.record().id),
                    "delete against rotation, round {round}: a rotation of a key already deleted"
                );
                assert!(
                    race.works(first, &new),
                    "delete against rotation, round {round}: the new key does not work"
                );
                Some(new.record().id)
            }
            Err(Error::NotFound { .. }) => {
                race.saw(1);
                assert_eq!(gone.rotated_to(), None);
                None
            }
            Err(e) => panic!("delete against rotation, round {round}: rotate failed: {e}"),
        };
        assert_eq!(
            race.successors_of(old_id),
            new.into_iter().collect::<Vec<_>>(),
            "delete against rotation, round {round}: a successor the caller was not given"
        );
        assert!(
            matches!(first.get(&race.admin, &id), Err(Error::NotFound { .. })),
            "delete against rotation, round {round}: the deleted key came back"
        );
        for kr in [first, second] {
            assert!(
                !race.works(kr, &old),
                "delete against rotation, round {round}: the deleted key works"
            );
        }
        assert_eq!(
            race.trail(old_id, AuditAction::Rotate).0,
            usize::from(new.is_some()),
            "delete against rotation, round {round}: allowed rotate records"
        );
        assert_eq!(race.trail(old_id, AuditAction::Delete), (1, 0));
    }
    race.done(rounds, ["the rotation came first", "the delete came first"]);
}

fn end_rotation_against_use(first: &Keyring, second: &Keyring, rounds: usize) {
    let mut race = Race::new("end_rotation against use", first, second);
    for round in 0..rounds {
        let (old, old_id, id) = race.general_key();
        let new = first.rotate(&race.admin, &id, RACE_GRACE).expect("rotate");
        let ended = AtomicBool::new(false);
        let late_successes = AtomicUsize::new(0);
        let (end, ()) = together(
            round,
            || {
                let rec = first.end_rotation(&race.admin, &id);
                ended.store(true, Ordering::SeqCst);
                rec
            },
            || {
                // The new key's first use (written by a flush of the other
                // store) races the end; the old key is tried through the
                // keyring that ends it, whose cache that write reaches at once.
                loop {
                    let after = ended.load(Ordering::SeqCst);
                    assert!(
                        race.works(second, &new),
                        "end_rotation against use, round {round}: the new key failed"
                    );
                    second.flush().expect("flush");
                    let old_ok = race.works(first, &old);
                    if after {
                        if old_ok {
                            late_successes.fetch_add(1, Ordering::SeqCst);
                        }
                        break;
                    }
                }
            },
        );
        let end = end.expect("end_rotation");
        first.flush().expect("flush");
        second.flush().expect("flush");
        let end_rot = end.rotation.as_deref().expect("the ended rotation");
        race.saw(usize::from(end_rot.successor_used_at.is_none()));
        assert_eq!(
            late_successes.load(Ordering::SeqCst),
            0,
            "end_rotation against use, round {round}: the old key worked after end_rotation returned"
        );
        let rec = first.get(&race.admin, &id).expect("get");
        let rot = rec.rotation.as_deref().expect("the rotation");
        assert_eq!(
            rot.overlap_until, end_rot.overlap_until,
            "end_rotation against use, round {round}: the end of the overlap was undone"
        );
        assert!(
            rot.successor_used_at.is_some(),
            "end_rotation against use, round {round}: the new key's first use was lost"
        );
        assert!(
            !race.works(first, &old),
            "end_rotation against use, round {round}: the old key works after its end"
        );
        assert_eq!(race.trail(old_id, AuditAction::EndRotation), (1, 0));
    }
    race.done(
        rounds,
        ["the new key's use came first", "the end came first"],
    );
}

/// A clock that moves on by a millisecond at every reading, shared by the
/// keyrings of [`user_role_races`]: the allowed records of changes that
/// wait on one another (they lock a user in common) are stamped inside the
/// store's atomic step, so their times are the order the changes were
/// written in.
#[derive(Clone)]
struct Ticks(Arc<std::sync::atomic::AtomicU64>);

impl crate::clock::Clock for Ticks {
    fn now(&self) -> crate::record::Timestamp {
        crate::record::Timestamp::from_unix_millis(self.0.fetch_add(1, Ordering::SeqCst))
    }
}

/// The concurrency loops of the changes made for a person
/// (`set_user_role_as`, `remove_user_as`, `set_account_as`; docs/design.md
/// §2 "Users and the account", and "Invariants"), `rounds` rounds each.
/// `first` and `second` are stores on the same data: for a durable store,
/// two store objects on the same database (two processes, as far as its
/// locking knows); otherwise the same store twice. Each loop runs one
/// keyring on each, sharing one clock that ticks at every reading; each
/// round starts its two sides together (a barrier, one side staggered, as
/// in [`rotation_races`]) and checks, once both returned, the users' states,
/// the plan and the audit trail (the store's, or both keyrings' sinks):
///
/// - an admin changing or removing a responder while an owner promotes them
///   to Owner: the admin's call is either written first (and then the
///   promotion) or refused (`NotPermitted`, only an owner…); the user ends
///   an Owner, never changed by a non-owner once an Owner;
/// - an admin's change (a role, a removal, the plan) while an owner demotes
///   that admin to Responder: the change is either written before the
///   demotion or refused (`NotPermitted`, the role may not…), and then
///   changed nothing;
/// - the same while the admin is removed, by the system (`remove_user`) or
///   by an owner (`remove_user_as`): written before the removal, or refused
///   (`NotPermitted`, removed).
///
/// In every round the allowed records of each user, in the order they were
/// written, form a chain: each one's `changes` start from the state the one
/// before left (the role, whether removed), and the last leaves the state
/// the store holds; an allowed plan change's record shows the plan it
/// replaced. There is exactly one record (allowed or refused) of each call. Both orders must be seen over 20 rounds or more
/// (as in [`rotation_races`]). Panics at the first violation, naming the
/// loop and round.
///
/// Each loop was seen to fail, on the memory store, SQLite (two store
/// objects on one file) and PostgreSQL (two pools on one schema), with the
/// keyring's decision moved back out of the store's atomic step (the
/// standings read before the store call, the records' `changes` from that
/// read too, or from the store's); and with the serialization taken out of
/// a store: the memory store's account lock in the decided calls,
/// PostgreSQL's `FOR UPDATE` on the user and account rows.
/// The memory store's window is a microsecond or two wide: its test runs
/// 1,000 rounds, and a third of the rounds stagger a side by a few hundred
/// to a few thousand spins, to sweep the moments in between.
pub fn user_role_races(first: Arc<dyn KeyStore>, second: Arc<dyn KeyStore>, rounds: usize) {
    let ticks = Ticks(Arc::new(std::sync::atomic::AtomicU64::new(
        crate::clock::SystemClock.now().unix_millis(),
    )));
    let keyring = |store: Arc<dyn KeyStore>| {
        Keyring::builder()
            .shared_store(store)
            .clock(ticks.clone())
            .build()
            .expect("a keyring")
    };
    let (a, b) = (keyring(first), keyring(second));
    admin_against_promotion(&a, &b, rounds);
    admin_against_losing_admin(&a, &b, rounds, Loss::Demoted);
    admin_against_losing_admin(&a, &b, rounds, Loss::Removed);
}

/// [`together`] in two rounds of three; in the third, one side (in turn)
/// first spins a few hundred to a few thousand times, a different number
/// each round: the moments between a call's reading and its write in
/// memory are a microsecond or two wide, finer than [`together`]'s waits.
fn together_fine<A: Send, B: Send>(
    round: usize,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if round % 3 != 2 {
        return together(round, a, b);
    }
    let spins = (round.wrapping_mul(7919) % 97) * 40;
    released_together(Stagger::Spin(spins).on_first((round / 3) % 2 == 0), a, b)
}

/// One loop of [`user_role_races`]: its keyrings and account.
struct UserRace<'a> {
    name: &'static str,
    first: &'a Keyring,
    second: &'a Keyring,
    account: String,
    owner: Actor,
    admin: Actor,
    orders: [usize; 2],
}

impl<'a> UserRace<'a> {
    fn new(name: &'static str, first: &'a Keyring, second: &'a Keyring) -> Self {
        let account = unique_account("race-users");
        first
            .set_user_role(&account, "POWNER", Role::Owner)
            .expect("an owner");
        first
            .set_user_role(&account, "PADMIN", Role::Admin)
            .expect("an admin");
        UserRace {
            name,
            first,
            second,
            owner: Actor::new(account.as_str(), "POWNER", Role::Owner),
            admin: Actor::new(account.as_str(), "PADMIN", Role::Admin),
            account,
            orders: [0; 2],
        }
    }

    /// The records of user and plan changes in the account stamped at
    /// `since` or later, in the order they were stamped: from the store's
    /// trail, or from both keyrings' sinks.
    fn records(&self, since: crate::record::Timestamp) -> Vec<AuditEvent> {
        let keyrings: &[&Keyring] = if self.first.store().keeps_audit() {
            &[self.first]
        } else {
            &[self.first, self.second]
        };
        let mut out = Vec::new();
        for kr in keyrings {
            let mut q = AuditQuery::account(&self.account);
            q.actions = vec![
                AuditAction::SetUserRole,
                AuditAction::RemoveUser,
                AuditAction::SetAccount,
            ];
            q.since = Some(since);
            q.until = Some(crate::record::Timestamp::from_unix_millis(
                since.unix_millis() + 24 * 3600 * 1000,
            ));
            q.limit = MAX_AUDIT_PAGE;
            loop {
                let page = kr.audit_records(&q).expect("audit_records");
                out.extend(page.records);
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
        }
        out.sort_by_key(|e| (e.at, e.id));
        out
    }

    fn state(&self, user: &str) -> Option<UserState> {
        self.first.user(&self.account, user).expect("user")
    }

    fn saw(&mut self, order: usize) {
        self.orders[order] += 1;
    }

    fn done(self, rounds: usize, names: [&str; 2]) {
        both_orders_seen(self.name, self.orders, rounds, names);
    }
}

/// A record's change of `field`: (before, after).
fn change<'e>(e: &'e AuditEvent, field: &str) -> Option<(Option<&'e str>, Option<&'e str>)> {
    e.changes
        .iter()
        .find(|c| c.field == field)
        .map(|c| (c.before_value.as_deref(), c.value.as_deref()))
}

/// Check that the allowed records of `user`'s role and removal, in the
/// order they were written, each start from the state the one before left,
/// from `start` (the state before the first) to the state the store holds
/// now; and that no non-owner changed an Owner or made one.
fn check_user_chain(
    race: &str,
    round: usize,
    records: &[AuditEvent],
    user: &str,
    start: Option<UserState>,
    now: Option<UserState>,
) {
    let mut state = start;
    for e in records
        .iter()
        .filter(|e| e.outcome == AuditOutcome::Allowed && e.subject_user.as_deref() == Some(user))
    {
        let before_role = state.map(|s| s.role.as_str());
        let was_removed = state.is_some_and(|s| s.removed);
        match e.action {
            AuditAction::SetUserRole => {
                let (from, to) = change(e, "role").unwrap_or_else(|| {
                    panic!("{race}, round {round}: a role record without its change: {e:?}")
                });
                assert_eq!(
                    from, before_role,
                    "{race}, round {round}: {user}'s role record starts from a role it did not replace: {e:?}"
                );
                let removed = change(e, "removed");
                assert_eq!(
                    removed,
                    was_removed.then_some((Some("true"), Some("false"))),
                    "{race}, round {round}: {user}'s record says nothing true of the removal it undid: {e:?}"
                );
                let role = to
                    .and_then(|r| Role::parse(r).ok())
                    .unwrap_or_else(|| panic!("{race}, round {round}: an unknown role in {e:?}"));
                if e.actor != "system" && e.actor_role != Some(Role::Owner) {
                    assert!(
                        from != Some(Role::Owner.as_str()) && role != Role::Owner,
                        "{race}, round {round}: a non-owner changed an owner or made one: {e:?}"
                    );
                }
                state = Some(UserState {
                    role,
                    removed: false,
                });
            }
            AuditAction::RemoveUser => {
                let was = if was_removed { "true" } else { "false" };
                assert_eq!(
                    change(e, "removed"),
                    Some((Some(was), Some("true"))),
                    "{race}, round {round}: {user}'s removal record says nothing true of what it replaced: {e:?}"
                );
                if e.actor != "system" && e.actor_role != Some(Role::Owner) {
                    assert_ne!(
                        before_role,
                        Some(Role::Owner.as_str()),
                        "{race}, round {round}: a non-owner removed an owner: {e:?}"
                    );
                }
                state = Some(crate::store::removed_state(state));
            }
            _ => {}
        }
    }
    assert_eq!(
        state, now,
        "{race}, round {round}: {user}'s records do not end in the state the store holds"
    );
}

/// The records of one call: the actor's records of `action` about
/// `subject` (`None`: the plan), allowed and refused.
fn of_call<'r>(
    records: &'r [AuditEvent],
    actor: &str,
    action: AuditAction,
    subject: Option<&str>,
) -> Vec<&'r AuditEvent> {
    records
        .iter()
        .filter(|e| e.actor == actor && e.action == action && e.subject_user.as_deref() == subject)
        .collect()
}

fn admin_against_promotion(first: &Keyring, second: &Keyring, rounds: usize) {
    let mut race = UserRace::new("an admin against a promotion to owner", first, second);
    let name = race.name;
    for round in 0..rounds {
        let since = first.now();
        let user = format!("PU{round}");
        first
            .set_user_role(&race.account, &user, Role::Responder)
            .expect("a responder");
        let removing = round % 4 >= 2;
        let (a, b) = together_fine(
            round,
            || {
                if removing {
                    first.remove_user_as(&race.admin, &user).map(|_| ())
                } else {
                    first.set_user_role_as(&race.admin, &user, Role::Observer)
                }
            },
            || second.set_user_role_as(&race.owner, &user, Role::Owner),
        );
        if let Err(e) = b {
            panic!("{name}, round {round}: the owner's promotion failed: {e:?}");
        }
        let admin_won = match a {
            Ok(()) => true,
            Err(Error::NotPermitted { reason }) if reason.contains("only an owner") => false,
            other => panic!(
                "{name}, round {round}: the admin's call must be written or refused as not an owner's, got {other:?}"
            ),
        };
        race.saw(usize::from(!admin_won));
        let now = race.state(&user);
        assert_eq!(
            now,
            Some(UserState {
                role: Role::Owner,
                removed: false
            }),
            "{name}, round {round}: the promoted user must end an owner (admin's call allowed: {admin_won})"
        );
        let records = race.records(since);
        check_user_chain(name, round, &records, &user, None, now);
        let action = if removing {
            AuditAction::RemoveUser
        } else {
            AuditAction::SetUserRole
        };
        let mine = of_call(&records, "PADMIN", action, Some(&user));
        assert_eq!(
            mine.len(),
            1,
            "{name}, round {round}: one record of the admin's call: {mine:?}"
        );
        assert_eq!(
            mine[0].outcome == AuditOutcome::Allowed,
            admin_won,
            "{name}, round {round}: the record says otherwise than the call: {:?}",
            mine[0]
        );
        assert_eq!(
            of_call(&records, "POWNER", AuditAction::SetUserRole, Some(&user)).len(),
            1,
            "{name}, round {round}: one record of the owner's call"
        );
    }
    race.done(rounds, ["admin's change first", "admin's change refused"]);
}

/// How the admin loses their standing in [`admin_against_losing_admin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// An owner makes them a Responder.
    Demoted,
    /// They are removed: by the system, or by an owner (in turn).
    Removed,
}

fn admin_against_losing_admin(first: &Keyring, second: &Keyring, rounds: usize, loss: Loss) {
    let name = match loss {
        Loss::Demoted => "an admin's change against their demotion",
        Loss::Removed => "an admin's change against their removal",
    };
    let mut race = UserRace::new(name, first, second);
    let plan_off = AccountSettings {
        rest_api: false,
        advanced_permissions: false,
    };
    for round in 0..rounds {
        let since = first.now();
        let user = format!("PX{round}");
        // The round's starting point: the admin an admin again, the subject
        // a responder, the plan the default.
        first
            .set_user_role(&race.account, "PADMIN", Role::Admin)
            .expect("an admin");
        first
            .set_user_role(&race.account, &user, Role::Responder)
            .expect("a responder");
        first
            .set_account(&race.account, AccountSettings::default())
            .expect("the plan");
        let call = round % 3;
        let by_system = (round / 3) % 2 == 0;
        let (a, b) = together_fine(
            round,
            || match call {
                0 => first.set_user_role_as(&race.admin, &user, Role::Admin),
                1 => first.remove_user_as(&race.admin, &user).map(|_| ()),
                _ => first.set_account_as(&race.admin, plan_off),
            },
            || match loss {
                Loss::Demoted => second.set_user_role_as(&race.owner, "PADMIN", Role::Responder),
                Loss::Removed if by_system => {
                    second.remove_user(&race.account, "PADMIN").map(|_| ())
                }
                Loss::Removed => second.remove_user_as(&race.owner, "PADMIN").map(|_| ()),
            },
        );
        if let Err(e) = b {
            panic!("{name}, round {round}: the admin's loss of standing failed: {e:?}");
        }
        let why = match loss {
            Loss::Demoted => "may not",
            Loss::Removed => "removed",
        };
        let allowed = match a {
            Ok(()) => true,
            Err(Error::NotPermitted { reason }) if reason.contains(why) => false,
            other => panic!(
                "{name}, round {round}: the admin's call must be written or refused ({why}), got {other:?}"
            ),
        };
        race.saw(usize::from(!allowed));
        let records = race.records(since);
        let (action, subject) = match call {
            0 => (AuditAction::SetUserRole, Some(user.as_str())),
            1 => (AuditAction::RemoveUser, Some(user.as_str())),
            _ => (AuditAction::SetAccount, None),
        };
        let mine = of_call(&records, "PADMIN", action, subject);
        assert_eq!(
            mine.len(),
            1,
            "{name}, round {round}: one record of the admin's call: {mine:?}"
        );
        let mine = mine[0];
        assert_eq!(
            mine.outcome == AuditOutcome::Allowed,
            allowed,
            "{name}, round {round}: the record says otherwise than the call: {mine:?}"
        );
        // The moment the admin lost their standing: the record of that write.
        let lost = records
            .iter()
            .find(|e| {
                e.outcome == AuditOutcome::Allowed
                    && e.subject_user.as_deref() == Some("PADMIN")
                    && e.actor != "PADMIN"
                    && match loss {
                        Loss::Demoted => {
                            e.action == AuditAction::SetUserRole && e.actor == "POWNER"
                        }
                        Loss::Removed => e.action == AuditAction::RemoveUser,
                    }
            })
            .unwrap_or_else(|| panic!("{name}, round {round}: no record of the admin's loss"));
        if allowed {
            assert!(
                mine.at < lost.at,
                "{name}, round {round}: an allowed write committed after its actor lost admin: {mine:?} after {lost:?}"
            );
            assert_eq!(mine.actor_role, Some(Role::Admin), "{name}, round {round}");
        } else {
            assert_eq!(
                mine.actor_role,
                match loss {
                    Loss::Demoted => Some(Role::Responder),
                    Loss::Removed => None,
                },
                "{name}, round {round}: the refused record names the standing decided on"
            );
            assert!(mine.changes.is_empty(), "{name}, round {round}: {mine:?}");
        }
        // What the admin's call may have changed, and the records of it.
        let user_now = race.state(&user);
        check_user_chain(name, round, &records, &user, None, user_now);
        let settings = first.account(&race.account).expect("account");
        if call == 2 && allowed {
            assert_eq!(settings, plan_off, "{name}, round {round}");
            assert_eq!(
                change(mine, "rest_api"),
                Some((Some("true"), Some("false")))
            );
            assert_eq!(
                change(mine, "advanced_permissions"),
                Some((Some("true"), Some("false")))
            );
        } else {
            assert_eq!(
                settings,
                AccountSettings::default(),
                "{name}, round {round}: the plan changed without an allowed change of it"
            );
        }
        let expected_user = match (call, allowed) {
            (0, true) => Role::Admin,
            _ => Role::Responder,
        };
        assert_eq!(
            user_now,
            Some(UserState {
                role: expected_user,
                removed: call == 1 && allowed
            }),
            "{name}, round {round}: the subject's state"
        );
        // The admin's own chain, from the round's start.
        let admin_before = state_before_first(&records, "PADMIN");
        check_user_chain(
            name,
            round,
            &records,
            "PADMIN",
            admin_before,
            race.state("PADMIN"),
        );
    }
    race.done(rounds, ["admin's change first", "admin's change refused"]);
}

/// The state `user` had before their first allowed record among `records`,
/// as that record says (the chain from there on is checked).
fn state_before_first(records: &[AuditEvent], user: &str) -> Option<UserState> {
    let e = records
        .iter()
        .find(|e| e.outcome == AuditOutcome::Allowed && e.subject_user.as_deref() == Some(user))?;
    let role = change(e, "role")?.0.and_then(|r| Role::parse(r).ok())?;
    Some(UserState {
        role,
        removed: change(e, "removed").is_some(),
    })
}
