//! The store conformance suite (feature `testing`).
//!
//! Every [`KeyStore`] must behave the same way. A store crate runs the whole
//! suite from one test:
//!
//! ```
//! use apikeys::MemoryStore;
//!
//! apikeys::testing::conformance(MemoryStore::new);
//! ```
//!
//! [`conformance`] gives every check in [`CHECKS`] a fresh store from
//! `make_store`, and names the check that failed. Each check also works on a
//! store that already holds other data (the checks use accounts of their own),
//! so a slow-to-create store may be shared. The checks read back after every
//! write, so a store with a cache in front of it is checked for stale reads too:
//! each write is preceded by a lookup that warms such a cache.
//!
//! A store that keeps its data outside the process also runs the checks of
//! [`durable`]: keys surviving a reopen and a SIGKILL, changes made through
//! another store or process reaching a warm cache, last uses written on flush.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::{AuditAction, AuditEvent, AuditOutcome, AuditQuery};
use crate::digest::KeyHasher;
use crate::error::StoreError;
use crate::key::{Hint, KeyKind};
use crate::record::Rotation;
use crate::record::{AccessLevel, Disabled, KeyId, KeyRecord, Scope, Timestamp};
use crate::role::{AccountSettings, Role, UserState};
use crate::store::{Edit, KeyFilter, KeyStore, Standings, UserInsert, record_for_tests};

pub mod durable;
pub mod invariants;
pub mod lifecycle;
pub mod wrap;

/// One check of the suite: its name and the function that runs it on a store.
pub type Check = (&'static str, fn(&dyn KeyStore));

/// Every check, in the order [`conformance`] runs them.
pub const CHECKS: &[Check] = &[
    ("insert_then_get_and_find", insert_then_get_and_find),
    ("duplicates_are_refused", duplicates_are_refused),
    ("unknown_ids_and_digests", unknown_ids_and_digests),
    (
        "list_filters_by_account_kind_owner",
        list_filters_by_account_kind_owner,
    ),
    ("update_is_seen_at_once", update_is_seen_at_once),
    (
        "update_refuses_immutable_fields",
        update_refuses_immutable_fields,
    ),
    ("delete_is_seen_at_once", delete_is_seen_at_once),
    ("record_use_never_moves_back", record_use_never_moves_back),
    ("account_settings", account_settings),
    ("user_roles_and_removal", user_roles_and_removal),
    (
        "concurrent_inserts_and_lookups",
        concurrent_inserts_and_lookups,
    ),
    (
        "concurrent_updates_are_atomic",
        concurrent_updates_are_atomic,
    ),
    ("concurrent_duplicate_inserts", concurrent_duplicate_inserts),
    (
        "lookups_never_go_back_during_updates",
        lookups_never_go_back_during_updates,
    ),
    (
        "insert_for_user_decides_on_the_standing",
        insert_for_user_decides_on_the_standing,
    ),
    (
        "remove_user_disables_what_acts_through_them",
        remove_user_disables_what_acts_through_them,
    ),
    (
        "remove_user_and_insert_for_user_never_interleave",
        remove_user_and_insert_for_user_never_interleave,
    ),
    (
        "an_edit_that_keeps_writes_nothing",
        an_edit_that_keeps_writes_nothing,
    ),
    (
        "writes_carry_their_audit_record",
        writes_carry_their_audit_record,
    ),
    ("rotate_is_one_atomic_step", rotate_is_one_atomic_step),
    (
        "delete_decides_on_the_owner_standing_it_holds",
        delete_decides_on_the_owner_standing_it_holds,
    ),
    ("successor_used_is_set_once", successor_used_is_set_once),
    (
        "decided_user_and_account_changes",
        decided_user_and_account_changes,
    ),
];

/// Run every check in [`CHECKS`], each on a fresh store from `make_store`.
///
/// Panics, naming the check, at the first one that fails.
pub fn conformance<S: KeyStore>(make_store: impl Fn() -> S) {
    for (name, check) in CHECKS {
        let store = make_store();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&store))) {
            eprintln!("store conformance check `{name}` failed");
            resume_unwind(panic);
        }
    }
}

/// An account name no other check (or earlier run on a shared store) uses.
pub fn unique_account(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let r = KeyId::generate().map(KeyId::as_u64).unwrap_or(0);
    format!("{prefix}-{}-{n}-{r:x}", std::process::id())
}

/// A record as a keyring would hand it to a store, for a fresh key of `kind`
/// in `account` (user tokens are owned by `PUSER1`).
pub fn sample_record(account: &str, kind: KeyKind) -> KeyRecord {
    let secret = kind.generate().expect("the OS random source works");
    let id = KeyId::generate().expect("the OS random source works");
    let digest = KeyHasher::sha256().digest(secret.expose().as_bytes());
    let mut r = record_for_tests(id, account, kind, digest);
    r.description = "conformance key".into();
    r.hint = Hint::of(secret.expose());
    if matches!(kind, KeyKind::Integration | KeyKind::Routing) {
        r.target = Some("PSERVICE1".into());
    }
    if kind == KeyKind::Scoped {
        r.scopes = ["incidents.write", "users:contact_methods.read"]
            .map(|s| Scope::parse(s).expect("valid scope"))
            .into();
    }
    r
}

fn ok<T>(r: Result<T, StoreError>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what} failed: {e}"))
}

/// Insert, then read back by id and by digest: every field survives.
pub fn insert_then_get_and_find(store: &dyn KeyStore) {
    let acct = unique_account("insert");
    for kind in [
        KeyKind::General,
        KeyKind::UserToken,
        KeyKind::Scoped,
        KeyKind::Integration,
        KeyKind::Routing,
    ] {
        let mut r = sample_record(&acct, kind);
        r.description = format!("a {kind} key: ünïcode ✓ 'quoted'").into();
        r.access = AccessLevel::ReadOnly;
        r.expires_at = Some(Timestamp::from_unix_millis(1_900_000_000_000));
        ok(store.insert(r.clone()), "insert");
        assert_eq!(ok(store.get(r.id), "get").as_ref(), Some(&r), "get");
        let found = ok(store.find_by_digest(&r.digest), "find").expect("inserted key is found");
        assert_eq!(*found.record, r, "find_by_digest returns the record");
        assert_eq!(found.last_used_at, None);
        assert_eq!(found.account, AccountSettings::default());
        assert_eq!(found.owner, None, "an unknown owner has no state");
    }
    // A record inserted already disabled, and with a last use, keeps both.
    let mut r = sample_record(&acct, KeyKind::General);
    r.disabled = Some(
        Disabled {
            by: "PADMIN1".into(),
            at: Timestamp::from_unix_millis(1_700_000_000_500),
        }
        .into(),
    );
    r.last_used_at = Some(Timestamp::from_unix_millis(1_700_000_000_700));
    ok(store.insert(r.clone()), "insert");
    assert_eq!(ok(store.get(r.id), "get").as_ref(), Some(&r));
    let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
    assert_eq!(found.record.disabled, r.disabled);
    assert_eq!(
        found.last_used_at.max(found.record.last_used_at),
        r.last_used_at
    );
}

/// A second record with a stored id or digest is refused, and the first is kept.
pub fn duplicates_are_refused(store: &dyn KeyStore) {
    let acct = unique_account("dup");
    let first = sample_record(&acct, KeyKind::General);
    ok(store.insert(first.clone()), "insert");

    let mut same_id = sample_record(&acct, KeyKind::General);
    same_id.id = first.id;
    match store.insert(same_id.clone()) {
        Err(StoreError::Duplicate { field: "id" }) => {}
        other => panic!("same id: expected Duplicate {{ field: \"id\" }}, got {other:?}"),
    }
    assert!(ok(store.find_by_digest(&same_id.digest), "find").is_none());

    let mut same_digest = sample_record(&acct, KeyKind::General);
    same_digest.digest = first.digest;
    match store.insert(same_digest.clone()) {
        Err(StoreError::Duplicate { field: "digest" }) => {}
        other => panic!("same digest: expected Duplicate {{ field: \"digest\" }}, got {other:?}"),
    }
    assert!(ok(store.get(same_digest.id), "get").is_none());

    assert_eq!(ok(store.get(first.id), "get"), Some(first.clone()));
    assert_eq!(
        ok(store.list(&acct, &KeyFilter::default()), "list"),
        vec![first.clone()]
    );
    let found = ok(store.find_by_digest(&first.digest), "find").expect("found");
    assert_eq!(found.record.id, first.id);
}

/// Unknown ids and digests give `None`, not errors.
pub fn unknown_ids_and_digests(store: &dyn KeyStore) {
    let r = sample_record(&unique_account("unknown"), KeyKind::General);
    assert!(ok(store.find_by_digest(&r.digest), "find").is_none());
    assert!(ok(store.get(r.id), "get").is_none());
    assert!(
        ok(
            store.update(r.id, &mut |r| r.description = "x".into()),
            "update"
        )
        .is_none()
    );
    assert!(ok(store.delete(r.id), "delete").is_none());
    ok(
        store.record_use(r.id, Timestamp::from_unix_millis(1)),
        "record_use of an unknown id",
    );
    assert!(ok(store.list(&r.account, &KeyFilter::default()), "list").is_empty());
    assert!(ok(store.get(r.id), "get").is_none());
}

/// `list` returns one account's records, oldest first, filtered by kind and owner.
pub fn list_filters_by_account_kind_owner(store: &dyn KeyStore) {
    let acct = unique_account("list");
    let other = unique_account("list-other");
    let mut mine = Vec::new();
    let kinds = [
        KeyKind::General,
        KeyKind::UserToken,
        KeyKind::Integration,
        KeyKind::UserToken,
        KeyKind::Scoped,
        KeyKind::Routing,
        KeyKind::UserToken,
    ];
    // Inserted newest first, with two records sharing a creation time.
    for (i, kind) in kinds.iter().enumerate().rev() {
        let mut r = sample_record(&acct, *kind);
        r.created_at = Timestamp::from_unix_millis(1_700_000_000_000 + (i as u64 / 2) * 1000);
        if i == 3 {
            r.owner = Some("PUSER2".into());
        }
        ok(store.insert(r.clone()), "insert");
        mine.push(r);
        ok(
            store.insert(sample_record(&other, *kind)),
            "insert in another account",
        );
    }
    mine.sort_by_key(|r| (r.created_at, r.id));

    let all = ok(store.list(&acct, &KeyFilter::default()), "list");
    assert_eq!(
        all, mine,
        "the account's records only, by creation time then id"
    );

    let tokens = ok(
        store.list(
            &acct,
            &KeyFilter {
                kind: Some(KeyKind::UserToken),
                owner: None,
            },
        ),
        "list",
    );
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|r| r.kind == KeyKind::UserToken));

    let puser1 = KeyFilter {
        kind: None,
        owner: Some("PUSER1".into()),
    };
    let owned = ok(store.list(&acct, &puser1), "list");
    assert_eq!(owned.len(), 2);
    assert!(owned.iter().all(|r| r.owner.as_deref() == Some("PUSER1")));

    let both = KeyFilter {
        kind: Some(KeyKind::General),
        owner: Some("PUSER1".into()),
    };
    assert!(ok(store.list(&acct, &both), "list").is_empty());
    assert!(
        ok(
            store.list(&unique_account("none"), &KeyFilter::default()),
            "list"
        )
        .is_empty()
    );
}

/// An update returns the new record and every later read sees it, by id, by
/// digest and in `list`; other records are untouched.
pub fn update_is_seen_at_once(store: &dyn KeyStore) {
    let acct = unique_account("update");
    let r = sample_record(&acct, KeyKind::General);
    let bystander = sample_record(&acct, KeyKind::General);
    ok(store.insert(r.clone()), "insert");
    ok(store.insert(bystander.clone()), "insert");
    // Warm any cache.
    for _ in 0..3 {
        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
    }

    let disabled = Disabled {
        by: "PADMIN1".into(),
        at: Timestamp::from_unix_millis(1_700_000_001_000),
    };
    let who = |d: Option<&Disabled>| d.map(|d| (d.by.clone(), d.at));
    let mut seen = None;
    let new = ok(
        store.update(r.id, &mut |rec| {
            seen = Some(rec.clone());
            rec.disabled = Some(disabled.clone().into());
            rec.description = "renamed".into();
            rec.expires_at = Some(Timestamp::from_unix_millis(1_800_000_000_000));
        }),
        "update",
    )
    .expect("the record exists");
    assert_eq!(
        seen.as_ref(),
        Some(&r),
        "the change sees the current record"
    );
    assert_eq!(
        new.disabled.as_ref().map(|d| (d.by.clone(), d.at)),
        who(Some(&disabled))
    );
    assert_eq!(&*new.description, "renamed");

    let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
    assert_eq!(
        found.record.disabled.as_ref().map(|d| (d.by.clone(), d.at)),
        who(Some(&disabled)),
        "a disable is seen at once by the hot path"
    );
    assert_eq!(&*found.record.description, "renamed");
    assert_eq!(ok(store.get(r.id), "get"), Some(new.clone()));
    assert_eq!(
        ok(store.list(&acct, &KeyFilter::default()), "list")
            .into_iter()
            .find(|x| x.id == r.id),
        Some(new)
    );

    // And back again.
    ok(store.update(r.id, &mut |rec| rec.disabled = None), "update").expect("exists");
    let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
    assert!(found.record.disabled.is_none(), "an enable is seen at once");

    assert_eq!(ok(store.get(bystander.id), "get"), Some(bystander));
}

/// Changing the id, digest, account, kind or owner (giving a key an owner,
/// taking it away, or handing it to another user) is refused with
/// [`StoreError::Immutable`] naming the field, and writes nothing, also when
/// the same change edits other fields too; writing a field back unchanged is
/// allowed.
pub fn update_refuses_immutable_fields(store: &dyn KeyStore) {
    let acct = unique_account("immutable");
    let token = sample_record(&acct, KeyKind::UserToken);
    let general = sample_record(&acct, KeyKind::General);
    ok(store.insert(token.clone()), "insert");
    ok(store.insert(general.clone()), "insert");
    let other_digest = sample_record(&acct, KeyKind::UserToken).digest;
    type Change = Box<dyn Fn(&mut KeyRecord)>;
    let changes: Vec<(&KeyRecord, &str, Change)> = vec![
        (
            &token,
            "id",
            Box::new(|x| x.id = KeyId::from_u64(x.id.as_u64() ^ 1)),
        ),
        (&token, "digest", Box::new(move |x| x.digest = other_digest)),
        (
            &token,
            "account",
            Box::new(|x| x.account = "someone-else".into()),
        ),
        (&token, "kind", Box::new(|x| x.kind = KeyKind::General)),
        (
            &token,
            "owner",
            Box::new(|x| x.owner = Some("PUSER9".into())),
        ),
        (&token, "owner", Box::new(|x| x.owner = None)),
        (
            &general,
            "owner",
            Box::new(|x| x.owner = Some("PUSER1".into())),
        ),
    ];
    for (r, field, change) in &changes {
        // Warm any cache, so a refused write that leaked into it would show.
        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
        for also_rename in [false, true] {
            let result = store.update(r.id, &mut |x| {
                if also_rename {
                    x.description = "must not stick".into();
                }
                change(x);
            });
            match result {
                Err(StoreError::Immutable { field: f }) => assert_eq!(
                    f, *field,
                    "changing {field} of a {} key names the field",
                    r.kind
                ),
                other => panic!(
                    "changing {field} of a {} key: expected Immutable, got {other:?}",
                    r.kind
                ),
            }
            assert_eq!(
                ok(store.get(r.id), "get").as_ref(),
                Some(*r),
                "a refused update of {field} wrote nothing"
            );
            let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
            assert_eq!(
                &*found.record, *r,
                "a refused update of {field} is not looked up"
            );
        }
    }
    assert!(ok(store.find_by_digest(&other_digest), "find").is_none());
    assert!(
        ok(store.list(&acct, &KeyFilter::default()), "list")
            .iter()
            .all(|x| x.owner.as_deref() != Some("PUSER9")),
        "no record was handed to another owner"
    );
    // The same values written back are no change.
    let same = ok(
        store.update(token.id, &mut |x| {
            x.owner = Some("PUSER1".into());
            x.account = token.account.clone();
            x.kind = KeyKind::UserToken;
            x.description = "renamed".into();
        }),
        "update",
    )
    .expect("exists");
    assert_eq!(&*same.description, "renamed");
    assert_eq!(same.owner, token.owner);
}

/// A delete returns the record and every later read misses it; its digest may
/// be stored again afterwards.
pub fn delete_is_seen_at_once(store: &dyn KeyStore) {
    let acct = unique_account("delete");
    let r = sample_record(&acct, KeyKind::Integration);
    let keep = sample_record(&acct, KeyKind::Integration);
    ok(store.insert(r.clone()), "insert");
    ok(store.insert(keep.clone()), "insert");
    for _ in 0..3 {
        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
    }
    assert_eq!(ok(store.delete(r.id), "delete"), Some(r.clone()));
    assert!(
        ok(store.find_by_digest(&r.digest), "find").is_none(),
        "a delete is seen at once by the hot path"
    );
    assert!(ok(store.get(r.id), "get").is_none());
    assert_eq!(
        ok(store.list(&acct, &KeyFilter::default()), "list"),
        vec![keep.clone()]
    );
    assert!(ok(store.delete(r.id), "delete again").is_none());
    assert!(ok(store.update(r.id, &mut |_| {}), "update").is_none());

    let mut again = sample_record(&acct, KeyKind::Integration);
    again.digest = r.digest;
    ok(store.insert(again.clone()), "insert a deleted digest again");
    let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
    assert_eq!(found.record.id, again.id);
    assert!(ok(store.find_by_digest(&keep.digest), "find").is_some());
}

/// `record_use` is seen by `get`, `find_by_digest` and `list`, and never moves back.
pub fn record_use_never_moves_back(store: &dyn KeyStore) {
    let acct = unique_account("used");
    let r = sample_record(&acct, KeyKind::General);
    ok(store.insert(r.clone()), "insert");
    let last = |store: &dyn KeyStore| {
        let by_id = ok(store.get(r.id), "get").expect("exists").last_used_at;
        let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
        let by_digest = found.last_used_at.max(found.record.last_used_at);
        let listed = ok(store.list(&acct, &KeyFilter::default()), "list")[0].last_used_at;
        assert_eq!(by_id, by_digest, "get and find_by_digest agree");
        assert_eq!(by_id, listed, "get and list agree");
        by_id
    };
    assert_eq!(last(store), None);
    let t1 = Timestamp::from_unix_millis(1_700_000_100_000);
    let t0 = Timestamp::from_unix_millis(1_700_000_050_000);
    let t2 = Timestamp::from_unix_millis(1_700_000_200_000);
    ok(store.record_use(r.id, t1), "record_use");
    assert_eq!(last(store), Some(t1));
    ok(store.record_use(r.id, t0), "record_use earlier");
    assert_eq!(
        last(store),
        Some(t1),
        "an earlier use does not move it back"
    );
    ok(store.record_use(r.id, t2), "record_use");
    assert_eq!(last(store), Some(t2));
    // An update keeps the last use.
    let updated = ok(
        store.update(r.id, &mut |x| x.description = "still used".into()),
        "update",
    )
    .expect("exists");
    assert_eq!(updated.last_used_at, Some(t2));
    assert_eq!(last(store), Some(t2));
}

/// Accounts never configured have every feature; settings are per account and
/// reach the hot path at once.
pub fn account_settings(store: &dyn KeyStore) {
    let acct = unique_account("settings");
    let other = unique_account("settings-other");
    assert_eq!(
        ok(store.account_settings(&acct), "account_settings"),
        AccountSettings::default()
    );
    let r = sample_record(&acct, KeyKind::General);
    let o = sample_record(&other, KeyKind::General);
    ok(store.insert(r.clone()), "insert");
    ok(store.insert(o.clone()), "insert");
    for _ in 0..3 {
        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
    }
    for settings in [
        AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
        AccountSettings {
            rest_api: true,
            advanced_permissions: false,
        },
        AccountSettings {
            rest_api: false,
            advanced_permissions: false,
        },
        AccountSettings::default(),
    ] {
        ok(store.set_account_settings(&acct, settings), "set");
        assert_eq!(ok(store.account_settings(&acct), "get"), settings);
        let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
        assert_eq!(
            found.account, settings,
            "settings reach the hot path at once"
        );
        let found = ok(store.find_by_digest(&o.digest), "find").expect("found");
        assert_eq!(
            found.account,
            AccountSettings::default(),
            "other accounts untouched"
        );
    }
    assert_eq!(
        ok(store.account_settings(&other), "get"),
        AccountSettings::default()
    );
}

/// User roles and removal are stored per account and reach the owner's tokens at once.
pub fn user_roles_and_removal(store: &dyn KeyStore) {
    let acct = unique_account("users");
    let other = unique_account("users-other");
    assert_eq!(ok(store.user(&acct, "PUSER1"), "user"), None);
    let t = sample_record(&acct, KeyKind::UserToken);
    let general = sample_record(&acct, KeyKind::General);
    ok(store.insert(t.clone()), "insert");
    ok(store.insert(general.clone()), "insert");
    ok(
        store.set_user(
            &acct,
            "PUSER1",
            UserState {
                role: Role::Admin,
                removed: false,
            },
        ),
        "set_user",
    );
    for _ in 0..3 {
        let found = ok(store.find_by_digest(&t.digest), "find").expect("found");
        assert_eq!(found.owner.map(|u| u.role), Some(Role::Admin));
    }
    for state in [
        UserState {
            role: Role::Observer,
            removed: false,
        },
        UserState {
            role: Role::LimitedStakeholder,
            removed: false,
        },
        UserState {
            role: Role::Observer,
            removed: true,
        },
        UserState {
            role: Role::Owner,
            removed: false,
        },
    ] {
        ok(store.set_user(&acct, "PUSER1", state), "set_user");
        assert_eq!(ok(store.user(&acct, "PUSER1"), "user"), Some(state));
        let found = ok(store.find_by_digest(&t.digest), "find").expect("found");
        assert_eq!(
            found.owner,
            Some(state),
            "a role change or removal reaches the hot path at once"
        );
    }
    assert_eq!(ok(store.user(&other, "PUSER1"), "user"), None);
    assert_eq!(ok(store.user(&acct, "PUSER2"), "user"), None);
    for role in Role::ALL {
        let s = UserState {
            role,
            removed: false,
        };
        ok(store.set_user(&other, "PUSER7", s), "set_user");
        assert_eq!(ok(store.user(&other, "PUSER7"), "user"), Some(s));
    }
    let found = ok(store.find_by_digest(&general.digest), "find").expect("found");
    assert_eq!(
        found.owner, None,
        "keys without an owner have no owner state"
    );
}

/// Several threads insert and look up at once; every insert is found.
pub fn concurrent_inserts_and_lookups(store: &dyn KeyStore) {
    let acct = unique_account("threads");
    let per_thread = 40;
    let threads = 4;
    let all: Vec<Vec<KeyRecord>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let acct = &acct;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for _ in 0..per_thread {
                        let r = sample_record(acct, KeyKind::General);
                        ok(store.insert(r.clone()), "insert");
                        let found = ok(store.find_by_digest(&r.digest), "find");
                        assert_eq!(found.map(|f| f.record.id), Some(r.id), "own insert found");
                        mine.push(r);
                    }
                    for r in &mine {
                        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let listed = ok(store.list(&acct, &KeyFilter::default()), "list");
    assert_eq!(listed.len(), threads * per_thread);
    let ids: HashSet<u64> = listed.iter().map(|r| r.id.as_u64()).collect();
    for r in all.iter().flatten() {
        assert!(ids.contains(&r.id.as_u64()));
        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
    }
}

/// Concurrent read-modify-write updates of one record lose nothing.
pub fn concurrent_updates_are_atomic(store: &dyn KeyStore) {
    let acct = unique_account("atomic");
    let mut r = sample_record(&acct, KeyKind::General);
    r.description = "0".into();
    ok(store.insert(r.clone()), "insert");
    let (threads, each) = (4, 15);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..each {
                    ok(
                        store.update(r.id, &mut |x| {
                            let n: u64 = x.description.parse().expect("a number");
                            x.description = (n + 1).to_string().into();
                        }),
                        "update",
                    )
                    .expect("exists");
                    assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
                }
            });
        }
    });
    let got = ok(store.get(r.id), "get").expect("exists");
    assert_eq!(&*got.description, (threads * each).to_string().as_str());
    let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
    assert_eq!(found.record.description, got.description);
}

/// Of several threads inserting the same digest at once, exactly one succeeds.
pub fn concurrent_duplicate_inserts(store: &dyn KeyStore) {
    let acct = unique_account("race");
    for _ in 0..3 {
        let base = sample_record(&acct, KeyKind::General);
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let mut r = sample_record(&acct, KeyKind::General);
                    r.digest = base.digest;
                    s.spawn(move || match store.insert(r) {
                        Ok(()) => 1,
                        Err(StoreError::Duplicate { field: "digest" }) => 0,
                        Err(e) => panic!("expected Ok or Duplicate digest, got {e}"),
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        assert_eq!(wins, 1, "exactly one insert of a digest wins");
        assert!(ok(store.find_by_digest(&base.digest), "find").is_some());
    }
}

/// While one thread updates records, lookups by digest in other threads never
/// see an older version after a newer one, and the writer sees each of its
/// updates at once (a cache filled by a racing reader must not bring old data back).
pub fn lookups_never_go_back_during_updates(store: &dyn KeyStore) {
    let acct = unique_account("monotonic");
    let records: Vec<KeyRecord> = (0..4)
        .map(|_| {
            let mut r = sample_record(&acct, KeyKind::General);
            r.description = "0".into();
            ok(store.insert(r.clone()), "insert");
            r
        })
        .collect();
    let version = |store: &dyn KeyStore, r: &KeyRecord| -> u64 {
        let found = ok(store.find_by_digest(&r.digest), "find").expect("found");
        found.record.description.parse().expect("a number")
    };
    let rounds = 100u64;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let mut seen = vec![0u64; records.len()];
                while !done.load(Ordering::Acquire) {
                    for (i, r) in records.iter().enumerate() {
                        let v = version(store, r);
                        assert!(v >= seen[i], "a lookup went back from {} to {v}", seen[i]);
                        seen[i] = v;
                    }
                }
            });
        }
        s.spawn(|| {
            // Stops the readers however this thread ends (a failed assert too).
            struct Done<'a>(&'a std::sync::atomic::AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                }
            }
            let _done = Done(&done);
            for n in 1..=rounds {
                for r in &records {
                    ok(
                        store.update(r.id, &mut |x| x.description = n.to_string().into()),
                        "update",
                    )
                    .expect("exists");
                    assert_eq!(version(store, r), n, "an update is seen at once");
                }
            }
        });
    });
    for r in &records {
        assert_eq!(version(store, r), rounds);
    }
}

fn active(role: Role) -> UserState {
    UserState {
        role,
        removed: false,
    }
}

/// A scoped token record made by `maker`.
fn scoped_by(account: &str, maker: &str) -> KeyRecord {
    let mut r = sample_record(account, KeyKind::Scoped);
    r.created_by = maker.into();
    r
}

/// [`KeyStore::insert_for_user`]: decides on the stored standing (the
/// `if_unknown` state only for an unknown user, then stored), writes nothing
/// when refused, never changes a stored role, and joins a scoped token's
/// maker into the hot path's `owner`.
pub fn insert_for_user_decides_on_the_standing(store: &dyn KeyStore) {
    let acct = unique_account("standing");
    // Unknown user: `if_unknown` is what admit sees, and it is stored.
    let t = sample_record(&acct, KeyKind::UserToken);
    let mut seen = Vec::new();
    let out = ok(
        store.insert_for_user(
            t.clone(),
            "PUSER1",
            active(Role::Responder),
            &mut |s| {
                seen.push(*s);
                true
            },
            None,
        ),
        "insert_for_user",
    );
    assert_eq!(out, UserInsert::Inserted(active(Role::Responder)));
    assert_eq!(seen, [active(Role::Responder)]);
    assert_eq!(
        ok(store.user(&acct, "PUSER1"), "user"),
        Some(active(Role::Responder))
    );
    let found = ok(store.find_by_digest(&t.digest), "find").expect("inserted");
    assert_eq!(found.owner, Some(active(Role::Responder)));

    // Known user: the stored state decides; a claimed role is never stored.
    ok(
        store.set_user(&acct, "PUSER1", active(Role::Observer)),
        "set_user",
    );
    let t2 = sample_record(&acct, KeyKind::UserToken);
    let out = ok(
        store.insert_for_user(
            t2.clone(),
            "PUSER1",
            active(Role::Owner),
            &mut |s| s.role == Role::Observer,
            None,
        ),
        "insert_for_user",
    );
    assert_eq!(out, UserInsert::Inserted(active(Role::Observer)));
    assert_eq!(
        ok(store.user(&acct, "PUSER1"), "user"),
        Some(active(Role::Observer))
    );

    // Refused: nothing written, neither the key nor an unknown user.
    let t3 = sample_record(&acct, KeyKind::UserToken);
    let out = ok(
        store.insert_for_user(
            t3.clone(),
            "PUSER1",
            active(Role::Owner),
            &mut |_| false,
            None,
        ),
        "insert_for_user",
    );
    assert_eq!(out, UserInsert::Refused(active(Role::Observer)));
    assert!(ok(store.get(t3.id), "get").is_none());
    assert!(ok(store.find_by_digest(&t3.digest), "find").is_none());
    let mut t4 = sample_record(&acct, KeyKind::UserToken);
    t4.owner = Some("PNOBODY".into());
    let out = ok(
        store.insert_for_user(
            t4.clone(),
            "PNOBODY",
            active(Role::Admin),
            &mut |_| false,
            None,
        ),
        "insert_for_user",
    );
    assert_eq!(out, UserInsert::Refused(active(Role::Admin)));
    assert_eq!(ok(store.user(&acct, "PNOBODY"), "user"), None);
    assert!(ok(store.get(t4.id), "get").is_none());

    // Duplicates are refused as by insert, and write nothing.
    let mut dup = sample_record(&acct, KeyKind::UserToken);
    dup.id = t.id;
    assert!(matches!(
        store.insert_for_user(dup, "PUSER1", active(Role::Owner), &mut |_| true, None),
        Err(StoreError::Duplicate { .. })
    ));

    // A scoped token's `owner` in the hot path is its maker's standing.
    let s = scoped_by(&acct, "PMAKER");
    let out = ok(
        store.insert_for_user(
            s.clone(),
            "PMAKER",
            active(Role::Manager),
            &mut |_| true,
            None,
        ),
        "insert_for_user",
    );
    assert_eq!(out, UserInsert::Inserted(active(Role::Manager)));
    let found = ok(store.find_by_digest(&s.digest), "find").expect("inserted");
    assert_eq!(found.owner, Some(active(Role::Manager)));
    ok(
        store.set_user(&acct, "PMAKER", active(Role::Responder)),
        "set_user",
    );
    let found = ok(store.find_by_digest(&s.digest), "find").expect("inserted");
    assert_eq!(
        found.owner,
        Some(active(Role::Responder)),
        "a maker's demotion reaches their scoped tokens at once"
    );
}

/// [`KeyStore::remove_user`]: marks the user removed (also one the store did
/// not know), disables their user tokens and the scoped tokens they made,
/// and nobody else's keys.
pub fn remove_user_disables_what_acts_through_them(store: &dyn KeyStore) {
    let acct = unique_account("offboard");
    let other_acct = unique_account("offboard-other");
    let mine = sample_record(&acct, KeyKind::UserToken);
    let made = scoped_by(&acct, "PUSER1");
    let mut someone_elses = sample_record(&acct, KeyKind::UserToken);
    someone_elses.owner = Some("PUSER2".into());
    let scoped_by_other = scoped_by(&acct, "PUSER2");
    let mut general = sample_record(&acct, KeyKind::General);
    general.created_by = "PUSER1".into();
    let elsewhere = sample_record(&other_acct, KeyKind::UserToken);
    for (r, user) in [
        (&mine, "PUSER1"),
        (&made, "PUSER1"),
        (&someone_elses, "PUSER2"),
        (&scoped_by_other, "PUSER2"),
        (&elsewhere, "PUSER1"),
    ] {
        let out = ok(
            store.insert_for_user(r.clone(), user, active(Role::Manager), &mut |_| true, None),
            "insert_for_user",
        );
        assert!(matches!(out, UserInsert::Inserted(_)));
    }
    ok(store.insert(general.clone()), "insert");
    // Warm a cache, if any.
    for r in [&mine, &made, &someone_elses, &general] {
        assert!(ok(store.find_by_digest(&r.digest), "find").is_some());
    }
    let by = Disabled {
        by: "system:offboarding".into(),
        at: Timestamp::from_unix_millis(1_700_000_100_000),
    };
    let disabled = ok(store.remove_user(&acct, "PUSER1", &by, None), "remove_user");
    let mut ids: Vec<KeyId> = disabled.iter().map(|r| r.id).collect();
    ids.sort();
    let mut want = vec![mine.id, made.id];
    want.sort();
    assert_eq!(
        ids, want,
        "their user tokens and scoped tokens, nothing else"
    );
    for r in &disabled {
        assert_eq!(r.disabled.as_deref(), Some(&by));
    }
    assert_eq!(
        ok(store.user(&acct, "PUSER1"), "user"),
        Some(UserState {
            role: Role::Manager,
            removed: true
        })
    );
    for r in [&mine, &made] {
        let found = ok(store.find_by_digest(&r.digest), "find").expect("still stored");
        assert!(found.record.disabled.is_some(), "disabled at once");
        assert_eq!(found.owner.map(|o| o.removed), Some(true));
    }
    for r in [&someone_elses, &scoped_by_other, &general, &elsewhere] {
        let found = ok(store.find_by_digest(&r.digest), "find").expect("still stored");
        assert!(found.record.disabled.is_none(), "other keys untouched");
    }
    assert_eq!(
        ok(store.user(&other_acct, "PUSER1"), "user"),
        Some(active(Role::Manager))
    );
    // Again: nothing left to disable.
    assert!(ok(store.remove_user(&acct, "PUSER1", &by, None), "remove_user").is_empty());
    // A user never seen is stored as removed, so they cannot make keys later.
    assert!(ok(store.remove_user(&acct, "PGHOST", &by, None), "remove_user").is_empty());
    assert_eq!(
        ok(store.user(&acct, "PGHOST"), "user"),
        Some(UserState {
            role: Role::LimitedStakeholder,
            removed: true
        })
    );
    let mut late = sample_record(&acct, KeyKind::UserToken);
    late.owner = Some("PGHOST".into());
    let out = ok(
        store.insert_for_user(
            late,
            "PGHOST",
            active(Role::Owner),
            &mut |s| !s.removed,
            None,
        ),
        "insert_for_user",
    );
    assert!(matches!(
        out,
        UserInsert::Refused(UserState { removed: true, .. })
    ));
}

/// Two threads, one inserting tokens through a user's standing (admitted
/// only while the user is not removed), one removing the user: after both
/// return, every token that was inserted is disabled. Many rounds.
pub fn remove_user_and_insert_for_user_never_interleave(store: &dyn KeyStore) {
    let acct = unique_account("race");
    let by = Disabled {
        by: "system:offboarding".into(),
        at: Timestamp::from_unix_millis(1_700_000_100_000),
    };
    for round in 0..40 {
        let user = format!("PRACE{round}");
        let barrier = std::sync::Barrier::new(2);
        let inserted: Vec<KeyRecord> = std::thread::scope(|s| {
            let maker = s.spawn(|| {
                barrier.wait();
                let mut mine = Vec::new();
                for i in 0..4 {
                    let mut r = if i % 2 == 0 {
                        let mut r = sample_record(&acct, KeyKind::UserToken);
                        r.owner = Some(user.as_str().into());
                        r
                    } else {
                        scoped_by(&acct, &user)
                    };
                    r.created_by = user.as_str().into();
                    let out = ok(
                        store.insert_for_user(
                            r.clone(),
                            &user,
                            active(Role::Manager),
                            &mut |s| !s.removed,
                            None,
                        ),
                        "insert_for_user",
                    );
                    if matches!(out, UserInsert::Inserted(_)) {
                        mine.push(r);
                    }
                }
                mine
            });
            barrier.wait();
            ok(store.remove_user(&acct, &user, &by, None), "remove_user");
            maker.join().expect("maker thread")
        });
        for r in &inserted {
            let found = ok(store.find_by_digest(&r.digest), "find").expect("stored");
            assert!(
                found.record.disabled.is_some() && found.owner.is_some_and(|o| o.removed),
                "round {round}: a token inserted around an offboarding survived it"
            );
        }
    }
}

/// An audit record of `action` on `key` in `account`, as a keyring makes one.
pub fn sample_event(account: &str, action: AuditAction, key: Option<KeyId>) -> AuditEvent {
    AuditEvent {
        id: 0,
        at: Timestamp::now(),
        account: account.to_owned(),
        actor: "PADMIN1".to_owned(),
        actor_role: Some(Role::Admin),
        action,
        key_kind: None,
        key_id: key,
        subject_user: None,
        changes: vec![crate::audit::FieldChange::new(
            "disabled",
            Some("false".into()),
            Some("true".into()),
        )],
        context: crate::audit::CallContext::default(),
        outcome: AuditOutcome::Allowed,
    }
}

/// The audit records a store keeps for `account`, newest first (empty for
/// stores that keep none).
fn trail(store: &dyn KeyStore, account: &str) -> Vec<AuditEvent> {
    let mut q = AuditQuery::account(account);
    q.limit = 1000;
    let w = q.resolve(Timestamp::now()).expect("a valid query");
    ok(store.audit_records(&w), "audit_records").records
}

/// An edit that answers [`Edit::Keep`] writes nothing: not the record, not
/// its audit record; a delete that keeps deletes nothing.
pub fn an_edit_that_keeps_writes_nothing(store: &dyn KeyStore) {
    let acct = unique_account("keep");
    let r = sample_record(&acct, KeyKind::General);
    ok(store.insert(r.clone()), "insert");
    let _ = store.find_by_digest(&r.digest);
    let ev = sample_event(&acct, AuditAction::Disable, Some(r.id));
    let got = ok(
        store.update_audited(r.id, &mut |x| {
            x.description = "changed".into();
            let _ = &ev;
            Edit::Keep
        }),
        "update_audited",
    )
    .expect("the record exists");
    assert_eq!(&*got.description, "conformance key");
    let now = ok(store.get(r.id), "get").expect("still there");
    assert_eq!(&*now.description, "conformance key", "a kept edit wrote");
    let kept = ok(store.delete_audited(r.id, &mut |_, _| Edit::Keep), "delete");
    assert!(kept.is_some());
    assert!(
        ok(store.get(r.id), "get").is_some(),
        "a kept delete deleted"
    );
    assert!(
        ok(store.find_by_digest(&r.digest), "find").is_some(),
        "a kept delete removed the key from lookups"
    );
    assert!(trail(store, &acct).is_empty(), "a kept edit left a record");
}

/// For a store that keeps an audit trail, every write hands its record to
/// the trail in the same step, newest first with increasing ids; a write
/// that fails leaves none.
pub fn writes_carry_their_audit_record(store: &dyn KeyStore) {
    if !store.keeps_audit() {
        return;
    }
    let acct = unique_account("trail");
    let r = sample_record(&acct, KeyKind::General);
    let ev = |a| sample_event(&acct, a, Some(r.id));
    ok(
        store.insert_audited(r.clone(), Some(&ev(AuditAction::Create))),
        "insert",
    );
    // A duplicate insert fails and leaves no record.
    assert!(
        store
            .insert_audited(r.clone(), Some(&ev(AuditAction::Create)))
            .is_err()
    );
    ok(
        store.update_audited(r.id, &mut |x| {
            x.description = "renamed".into();
            Edit::Write(Some(Box::new(ev(AuditAction::Disable))))
        }),
        "update",
    );
    ok(
        store.set_user_audited(
            &acct,
            "PUSER1",
            active(Role::Manager),
            Some(&sample_event(&acct, AuditAction::SetUserRole, None)),
        ),
        "set_user",
    );
    ok(
        store.set_account_settings_audited(
            &acct,
            AccountSettings::default(),
            Some(&sample_event(&acct, AuditAction::SetAccount, None)),
        ),
        "set_account_settings",
    );
    let t = sample_record(&acct, KeyKind::UserToken);
    ok(
        store.insert_for_user(
            t.clone(),
            "PUSER1",
            active(Role::Manager),
            &mut |_| true,
            Some(&sample_event(&acct, AuditAction::Create, Some(t.id))),
        ),
        "insert_for_user",
    );
    // Refused: nothing written, no record.
    let t2 = sample_record(&acct, KeyKind::UserToken);
    ok(
        store.insert_for_user(
            t2,
            "PUSER1",
            active(Role::Manager),
            &mut |_| false,
            Some(&sample_event(&acct, AuditAction::Create, None)),
        ),
        "insert_for_user",
    );
    let by = Disabled {
        by: "system:offboarding".into(),
        at: Timestamp::now(),
    };
    ok(
        store.remove_user(
            &acct,
            "PUSER1",
            &by,
            Some(&sample_event(&acct, AuditAction::RemoveUser, None)),
        ),
        "remove_user",
    );
    ok(
        store.delete_audited(r.id, &mut |_, _| {
            Edit::Write(Some(Box::new(ev(AuditAction::Delete))))
        }),
        "delete",
    );
    ok(
        store.append_audit(&sample_event(&acct, AuditAction::Get, None)),
        "append",
    );
    let recs = trail(store, &acct);
    let actions: Vec<AuditAction> = recs.iter().rev().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::Create,
            AuditAction::Disable,
            AuditAction::SetUserRole,
            AuditAction::SetAccount,
            AuditAction::Create,
            AuditAction::RemoveUser,
            AuditAction::Delete,
            AuditAction::Get,
        ]
    );
    assert!(recs.windows(2).all(|w| w[0].id > w[1].id && w[1].id > 0));
    let first = recs.last().expect("a record");
    assert_eq!(first.key_id, Some(r.id));
    assert_eq!(first.changes.len(), 1);
    assert_eq!(first.changes[0].before_value.as_deref(), Some("false"));
    // Paging by cursor, one at a time, sees each once.
    let mut q = AuditQuery::account(&acct);
    q.limit = 3;
    let mut seen = Vec::new();
    loop {
        let w = q.resolve(Timestamp::now()).expect("query");
        let page = ok(store.audit_records(&w), "page");
        seen.extend(page.records.iter().map(|e| e.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, recs.iter().map(|e| e.id).collect::<Vec<_>>());
    // Retention.
    let later = Timestamp::now().saturating_add(std::time::Duration::from_secs(1));
    assert!(ok(store.prune_audit(later), "prune") >= recs.len());
    assert!(trail(store, &acct).is_empty());
}

/// `rotate` edits the old record and inserts the new one together, or does
/// neither: on [`Edit::Keep`], and when the new key clashes with a stored one.
pub fn rotate_is_one_atomic_step(store: &dyn KeyStore) {
    let acct = unique_account("rotate");
    let old = sample_record(&acct, KeyKind::General);
    ok(store.insert(old.clone()), "insert");
    let _ = store.find_by_digest(&old.digest);
    let mark = |x: &mut KeyRecord, to: KeyId| {
        x.rotation = Some(Box::new(Rotation {
            rotated_to: Some(to),
            overlap_until: Some(Timestamp::now()),
            quiet_ms: 1,
            ..Rotation::default()
        }));
    };
    // Keep: nothing.
    let new = sample_record(&acct, KeyKind::General);
    let got = ok(
        store.rotate(
            old.id,
            new.clone(),
            active(Role::Admin),
            &mut |x, standing| {
                assert!(standing.is_none(), "a general key has no standing user");
                mark(x, new.id);
                Edit::Keep
            },
        ),
        "rotate",
    )
    .expect("old exists");
    assert!(got.rotation.is_none());
    assert!(
        ok(store.get(new.id), "get").is_none(),
        "Keep inserted the new key"
    );
    assert!(
        ok(store.get(old.id), "get")
            .expect("old")
            .rotation
            .is_none()
    );
    // A clash: the new key has the digest of a stored one; nothing changes.
    let mut clash = sample_record(&acct, KeyKind::General);
    clash.digest = old.digest;
    assert!(matches!(
        store.rotate(old.id, clash.clone(), active(Role::Admin), &mut |x, _| {
            mark(x, clash.id);
            Edit::Write(None)
        }),
        Err(StoreError::Duplicate { .. })
    ));
    assert!(ok(store.get(clash.id), "get").is_none());
    assert!(
        ok(store.get(old.id), "get")
            .expect("old")
            .rotation
            .is_none(),
        "a failed rotation left the old key marked"
    );
    // Write: both.
    let got = ok(
        store.rotate(old.id, new.clone(), active(Role::Admin), &mut |x, _| {
            mark(x, new.id);
            Edit::Write(None)
        }),
        "rotate",
    )
    .expect("old exists");
    assert_eq!(got.rotated_to(), Some(new.id));
    assert_eq!(
        ok(store.get(old.id), "get").expect("old").rotated_to(),
        Some(new.id)
    );
    let found = ok(store.find_by_digest(&old.digest), "find").expect("old still found");
    assert_eq!(
        found.record.rotated_to(),
        Some(new.id),
        "a cached lookup is stale"
    );
    assert!(ok(store.find_by_digest(&new.digest), "find").is_some());
    // No such record.
    let ghost = sample_record(&acct, KeyKind::General);
    let other = sample_record(&acct, KeyKind::General);
    assert!(
        ok(
            store.rotate(ghost.id, other.clone(), active(Role::Admin), &mut |_, _| {
                Edit::Write(None)
            }),
            "rotate",
        )
        .is_none()
    );
    assert!(ok(store.get(other.id), "get").is_none());
    // A user token: the owner's standing is read in the step, and an
    // unknown owner is stored with the state given.
    let tok = sample_record(&acct, KeyKind::UserToken);
    ok(store.insert(tok.clone()), "insert");
    let mut tok2 = sample_record(&acct, KeyKind::UserToken);
    tok2.owner = tok.owner.clone();
    let mut seen = None;
    ok(
        store.rotate(
            tok.id,
            tok2.clone(),
            active(Role::Observer),
            &mut |x, standing| {
                seen = standing.copied();
                mark(x, tok2.id);
                Edit::Write(None)
            },
        ),
        "rotate token",
    );
    assert_eq!(seen, Some(active(Role::Observer)));
    assert_eq!(
        ok(store.user(&acct, "PUSER1"), "user"),
        Some(active(Role::Observer)),
        "the unknown owner's state is stored"
    );
}

/// `delete_audited` hands its check the owner's standing and holds it: a
/// role change of the owner waits until the delete is decided.
pub fn delete_decides_on_the_owner_standing_it_holds(store: &dyn KeyStore) {
    let acct = unique_account("delete-standing");
    ok(
        store.set_user(&acct, "PUSER1", active(Role::Responder)),
        "set_user",
    );
    let tok = sample_record(&acct, KeyKind::UserToken);
    ok(store.insert(tok.clone()), "insert");
    let _ = store.find_by_digest(&tok.digest);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut promoter = None;
        let got = ok(
            store.delete_audited(tok.id, &mut |_, owner| {
                assert_eq!(owner.copied(), Some(active(Role::Responder)));
                // A promotion now must wait for this delete to be decided.
                promoter = Some(s.spawn(|| {
                    store
                        .set_user(&acct, "PUSER1", active(Role::Admin))
                        .expect("set_user");
                    done.store(true, Ordering::SeqCst);
                }));
                std::thread::sleep(std::time::Duration::from_millis(150));
                assert!(
                    !done.load(Ordering::SeqCst),
                    "the owner's role changed while a delete was deciding on it"
                );
                Edit::Write(None)
            }),
            "delete",
        );
        assert!(got.is_some());
        promoter.expect("spawned").join().expect("the promoter");
    });
    assert!(ok(store.get(tok.id), "get").is_none());
    assert_eq!(
        ok(store.user(&acct, "PUSER1"), "user"),
        Some(active(Role::Admin))
    );
    // A general key has no owner: `None`.
    let g = sample_record(&acct, KeyKind::General);
    ok(store.insert(g.clone()), "insert");
    ok(
        store.delete_audited(g.id, &mut |_, owner| {
            assert!(owner.is_none());
            Edit::Write(None)
        }),
        "delete",
    );
}

/// `successor_used` sets the old key's `successor_used_at` once; later uses
/// do not move it; a key without a rotation is left alone.
pub fn successor_used_is_set_once(store: &dyn KeyStore) {
    let acct = unique_account("successor");
    let mut old = sample_record(&acct, KeyKind::General);
    old.rotation = Some(Box::new(Rotation {
        rotated_to: Some(KeyId::from_u64(9)),
        overlap_until: Some(Timestamp::from_unix_millis(9_000_000_000_000)),
        quiet_ms: 60_000,
        ..Rotation::default()
    }));
    ok(store.insert(old.clone()), "insert");
    let plain = sample_record(&acct, KeyKind::General);
    ok(store.insert(plain.clone()), "insert");
    let _ = store.find_by_digest(&old.digest);
    let t1 = Timestamp::from_unix_millis(1_800_000_000_000);
    let t2 = Timestamp::from_unix_millis(1_800_000_100_000);
    ok(store.successor_used(old.id, t1), "successor_used");
    ok(store.successor_used(old.id, t2), "successor_used");
    ok(store.successor_used(plain.id, t1), "successor_used");
    ok(store.flush_writes(), "flush");
    let got = ok(store.get(old.id), "get").expect("old");
    assert_eq!(got.rotation.and_then(|r| r.successor_used_at), Some(t1));
    let found = ok(store.find_by_digest(&old.digest), "find").expect("found");
    assert_eq!(
        found
            .record
            .rotation
            .as_ref()
            .and_then(|r| r.successor_used_at),
        Some(t1),
        "the lookup (a cache) did not see the successor's use"
    );
    assert!(
        ok(store.get(plain.id), "get")
            .expect("plain")
            .rotation
            .is_none()
    );
}

/// [`KeyStore::set_user_as`], [`KeyStore::remove_user_as`] and
/// [`KeyStore::set_account_settings_as`]: `decide` sees the stored
/// standings (`None` for a user the store does not know, or no actor) and
/// the settings the write would replace; on [`Edit::Keep`] nothing at all
/// is written (no user, no settings, no key disabled, no audit record, no
/// row stored for an unknown actor or subject); on [`Edit::Write`] the
/// change and its record are written, an unknown actor is still not stored,
/// and the hot path sees the new standing at once.
pub fn decided_user_and_account_changes(store: &dyn KeyStore) {
    let acct = unique_account("decided");
    ok(
        store.set_user(&acct, "PADMIN", active(Role::Admin)),
        "set_user",
    );
    ok(
        store.set_user(&acct, "PRESP", active(Role::Responder)),
        "set_user",
    );
    let mut token = sample_record(&acct, KeyKind::UserToken);
    token.owner = Some("PRESP".into());
    ok(store.insert(token.clone()), "insert");
    let _ = ok(store.find_by_digest(&token.digest), "find"); // warm a cache
    let event = |action| Some(Box::new(sample_event(&acct, action, None)));
    let mut seen = Vec::new();

    // set_user_as: the standings seen; Keep writes nothing.
    let observer = active(Role::Observer);
    let wrote = ok(
        store.set_user_as(&acct, Some("PADMIN"), "PRESP", observer, &mut |s| {
            seen.push(*s);
            Edit::Keep
        }),
        "set_user_as",
    );
    assert!(!wrote, "a kept change said it wrote");
    assert_eq!(
        seen.last(),
        Some(&Standings {
            actor: Some(active(Role::Admin)),
            subject: Some(active(Role::Responder)),
        })
    );
    assert_eq!(
        ok(store.user(&acct, "PRESP"), "user"),
        Some(active(Role::Responder))
    );
    // Unknown actor and subject: seen as None, and a refusal stores neither.
    let wrote = ok(
        store.set_user_as(&acct, Some("PNOBODY"), "PNEW", observer, &mut |s| {
            seen.push(*s);
            Edit::Keep
        }),
        "set_user_as",
    );
    assert!(!wrote);
    assert_eq!(seen.last(), Some(&Standings::default()));
    assert_eq!(
        ok(store.user(&acct, "PNOBODY"), "user"),
        None,
        "a refusal stored its actor"
    );
    assert_eq!(
        ok(store.user(&acct, "PNEW"), "user"),
        None,
        "a refusal stored its subject"
    );
    // Written: the subject's new state, not the unknown actor.
    let wrote = ok(
        store.set_user_as(&acct, Some("PNOBODY"), "PNEW", observer, &mut |_| {
            Edit::Write(event(AuditAction::SetUserRole))
        }),
        "set_user_as",
    );
    assert!(wrote);
    assert_eq!(ok(store.user(&acct, "PNEW"), "user"), Some(observer));
    assert_eq!(
        ok(store.user(&acct, "PNOBODY"), "user"),
        None,
        "an unknown actor was stored"
    );
    // The actor changing themselves sees their state twice; the system, none.
    ok(
        store.set_user_as(&acct, Some("PRESP"), "PRESP", observer, &mut |s| {
            seen.push(*s);
            Edit::Keep
        }),
        "set_user_as",
    );
    assert_eq!(
        seen.last(),
        Some(&Standings {
            actor: Some(active(Role::Responder)),
            subject: Some(active(Role::Responder)),
        })
    );
    let wrote = ok(
        store.set_user_as(&acct, None, "PRESP", observer, &mut |s| {
            seen.push(*s);
            Edit::Write(event(AuditAction::SetUserRole))
        }),
        "set_user_as",
    );
    assert!(wrote);
    assert_eq!(seen.last().map(|s| s.actor), Some(None));
    let found = ok(store.find_by_digest(&token.digest), "find").expect("the token");
    assert_eq!(
        found.owner,
        Some(observer),
        "the hot path missed a decided role change"
    );

    // remove_user_as: Keep disables nothing and removes no one.
    let by = Disabled {
        by: "system:offboarding".into(),
        at: Timestamp::now(),
    };
    let out = ok(
        store.remove_user_as(&acct, Some("PADMIN"), "PRESP", &by, &mut |s| {
            seen.push(*s);
            Edit::Keep
        }),
        "remove_user_as",
    );
    assert!(out.is_none(), "a kept removal said it removed");
    assert_eq!(
        seen.last(),
        Some(&Standings {
            actor: Some(active(Role::Admin)),
            subject: Some(observer),
        })
    );
    assert_eq!(ok(store.user(&acct, "PRESP"), "user"), Some(observer));
    let now = ok(store.get(token.id), "get").expect("the token");
    assert!(now.disabled.is_none(), "a kept removal disabled a key");
    let out = ok(
        store.remove_user_as(&acct, Some("PADMIN"), "PRESP", &by, &mut |_| {
            Edit::Write(event(AuditAction::RemoveUser))
        }),
        "remove_user_as",
    )
    .expect("written");
    assert_eq!(out.iter().map(|r| r.id).collect::<Vec<_>>(), vec![token.id]);
    assert_eq!(
        ok(store.user(&acct, "PRESP"), "user"),
        Some(UserState {
            role: Role::Observer,
            removed: true
        })
    );
    let found = ok(store.find_by_digest(&token.digest), "find").expect("the token");
    assert!(found.record.disabled.is_some() && found.owner.is_some_and(|o| o.removed));
    // An unknown subject is stored removed; an unknown actor is not stored.
    let out = ok(
        store.remove_user_as(&acct, Some("PNOBODY2"), "PGONE", &by, &mut |s| {
            seen.push(*s);
            Edit::Write(event(AuditAction::RemoveUser))
        }),
        "remove_user_as",
    );
    assert_eq!(out.map(|v| v.len()), Some(0));
    assert_eq!(seen.last(), Some(&Standings::default()));
    assert_eq!(
        ok(store.user(&acct, "PGONE"), "user"),
        Some(crate::store::removed_state(None))
    );
    assert_eq!(ok(store.user(&acct, "PNOBODY2"), "user"), None);

    // set_account_settings_as: the actor and the settings replaced.
    let off = AccountSettings {
        rest_api: false,
        advanced_permissions: true,
    };
    let mut before_seen = Vec::new();
    let wrote = ok(
        store.set_account_settings_as(&acct, Some("PADMIN"), off, &mut |a, b| {
            before_seen.push((a.copied(), *b));
            Edit::Keep
        }),
        "set_account_settings_as",
    );
    assert!(!wrote);
    assert_eq!(
        before_seen.last(),
        Some(&(Some(active(Role::Admin)), AccountSettings::default()))
    );
    assert_eq!(
        ok(store.account_settings(&acct), "settings"),
        AccountSettings::default()
    );
    let wrote = ok(
        store.set_account_settings_as(&acct, Some("PNOBODY3"), off, &mut |a, b| {
            before_seen.push((a.copied(), *b));
            Edit::Write(event(AuditAction::SetAccount))
        }),
        "set_account_settings_as",
    );
    assert!(wrote);
    assert_eq!(
        before_seen.last(),
        Some(&(None, AccountSettings::default()))
    );
    assert_eq!(ok(store.account_settings(&acct), "settings"), off);
    assert_eq!(ok(store.user(&acct, "PNOBODY3"), "user"), None);
    ok(
        store.set_account_settings_as(&acct, None, off, &mut |a, b| {
            before_seen.push((a.copied(), *b));
            Edit::Keep
        }),
        "set_account_settings_as",
    );
    assert_eq!(before_seen.last(), Some(&(None, off)));
    let found = ok(store.find_by_digest(&token.digest), "find").expect("the token");
    assert_eq!(
        found.account, off,
        "the hot path missed a decided plan change"
    );

    // The trail holds the written changes' records only, in order.
    if store.keeps_audit() {
        let actions: Vec<AuditAction> =
            trail(store, &acct).iter().rev().map(|e| e.action).collect();
        assert_eq!(
            actions,
            vec![
                AuditAction::SetUserRole,
                AuditAction::SetUserRole,
                AuditAction::RemoveUser,
                AuditAction::RemoveUser,
                AuditAction::SetAccount,
            ]
        );
    }
}
