//! `MemoryStore`: duplicates, lookups, atomic updates, concurrency.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use apikeys::{
    AccountSettings, KeyFilter, KeyKind, KeyStore, MemoryStore, Role, StoreError, Timestamp,
    UserState,
};
use common::record;
use proptest::prelude::*;

#[test]
fn refuses_a_duplicate_id_or_digest_and_keeps_the_first() {
    let s = MemoryStore::new();
    let a = record("acme", KeyKind::General);
    s.insert(a.clone()).unwrap();
    let mut same_id = record("acme", KeyKind::General);
    same_id.id = a.id;
    assert!(matches!(
        s.insert(same_id.clone()),
        Err(StoreError::Duplicate { field: "id" })
    ));
    let mut same_digest = record("acme", KeyKind::General);
    same_digest.digest = a.digest;
    assert!(matches!(
        s.insert(same_digest.clone()),
        Err(StoreError::Duplicate { field: "digest" })
    ));
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(a.id).unwrap().unwrap(), a);
    assert!(s.find_by_digest(&same_id.digest).unwrap().is_none());
    assert!(s.get(same_digest.id).unwrap().is_none());
}

#[test]
fn finds_by_digest_with_settings_and_owner_state() {
    let s = MemoryStore::new();
    let t = record("acme", KeyKind::UserToken);
    s.insert(t.clone()).unwrap();
    let found = s.find_by_digest(&t.digest).unwrap().unwrap();
    assert_eq!(*found.record, t);
    assert_eq!(found.account, AccountSettings::default());
    assert_eq!(found.owner, None);
    s.set_user(
        "acme",
        "PUSER1",
        UserState {
            role: Role::Responder,
            removed: false,
        },
    )
    .unwrap();
    s.set_account_settings(
        "acme",
        AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
    )
    .unwrap();
    let found = s.find_by_digest(&t.digest).unwrap().unwrap();
    assert_eq!(
        found.owner,
        Some(UserState {
            role: Role::Responder,
            removed: false
        })
    );
    assert!(!found.account.rest_api);
    // Another account's settings are untouched.
    assert_eq!(
        s.account_settings("other").unwrap(),
        AccountSettings::default()
    );
}

#[test]
fn update_changes_one_record_and_refuses_immutable_fields() {
    let s = MemoryStore::new();
    let a = record("acme", KeyKind::General);
    s.insert(a.clone()).unwrap();
    let after = s
        .update(a.id, &mut |r| r.description = "renamed".into())
        .unwrap()
        .unwrap();
    assert_eq!(&*after.description, "renamed");
    assert_eq!(
        &*s.find_by_digest(&a.digest)
            .unwrap()
            .unwrap()
            .record
            .description,
        "renamed"
    );
    let other = record("acme", KeyKind::General);
    assert!(matches!(
        s.update(a.id, &mut |r| r.digest = other.digest),
        Err(StoreError::Immutable { field: "digest" })
    ));
    assert!(matches!(
        s.update(a.id, &mut |r| r.account = "evil".into()),
        Err(StoreError::Immutable { field: "account" })
    ));
    assert!(matches!(
        s.update(a.id, &mut |r| r.kind = KeyKind::Scoped),
        Err(StoreError::Immutable { field: "kind" })
    ));
    // Nothing of the refused changes stuck.
    assert_eq!(&*s.get(a.id).unwrap().unwrap().description, "renamed");
    assert!(s.update(other.id, &mut |_| {}).unwrap().is_none());
}

#[test]
fn delete_removes_from_every_index_and_slots_are_reused() {
    let s = MemoryStore::new();
    let a = record("acme", KeyKind::General);
    s.insert(a.clone()).unwrap();
    assert_eq!(s.delete(a.id).unwrap().unwrap().id, a.id);
    assert!(s.get(a.id).unwrap().is_none());
    assert!(s.find_by_digest(&a.digest).unwrap().is_none());
    assert!(s.delete(a.id).unwrap().is_none());
    // The same id and digest can be stored again after a delete.
    s.insert(a.clone()).unwrap();
    assert!(s.find_by_digest(&a.digest).unwrap().is_some());
}

#[test]
fn list_filters_by_account_kind_and_owner() {
    let s = MemoryStore::new();
    for _ in 0..5 {
        s.insert(record("acme", KeyKind::General)).unwrap();
        s.insert(record("acme", KeyKind::UserToken)).unwrap();
        s.insert(record("globex", KeyKind::General)).unwrap();
    }
    assert_eq!(s.list("acme", &KeyFilter::default()).unwrap().len(), 10);
    assert_eq!(s.list("globex", &KeyFilter::default()).unwrap().len(), 5);
    assert_eq!(s.list("nobody", &KeyFilter::default()).unwrap().len(), 0);
    let tokens = s
        .list(
            "acme",
            &KeyFilter {
                kind: Some(KeyKind::UserToken),
                owner: None,
            },
        )
        .unwrap();
    assert!(tokens.len() == 5 && tokens.iter().all(|r| r.kind == KeyKind::UserToken));
    let mine = s
        .list(
            "acme",
            &KeyFilter {
                kind: None,
                owner: Some("PUSER1".into()),
            },
        )
        .unwrap();
    assert_eq!(mine.len(), 5);
}

#[test]
fn record_use_never_moves_back() {
    let s = MemoryStore::new();
    let a = record("acme", KeyKind::General);
    s.insert(a.clone()).unwrap();
    s.record_use(a.id, Timestamp::from_unix_millis(2_000))
        .unwrap();
    s.record_use(a.id, Timestamp::from_unix_millis(1_000))
        .unwrap();
    assert_eq!(
        s.get(a.id).unwrap().unwrap().last_used_at,
        Some(Timestamp::from_unix_millis(2_000))
    );
    assert_eq!(
        s.find_by_digest(&a.digest).unwrap().unwrap().last_used_at,
        Some(Timestamp::from_unix_millis(2_000))
    );
}

#[test]
fn account_names_are_interned() {
    let s = MemoryStore::new();
    let a = record("acme", KeyKind::General);
    let b = record("acme", KeyKind::General);
    s.insert(a.clone()).unwrap();
    s.insert(b.clone()).unwrap();
    let ra = s.find_by_digest(&a.digest).unwrap().unwrap().record;
    let rb = s.find_by_digest(&b.digest).unwrap().unwrap().record;
    assert!(apikeys::ArcStr::ptr_eq(&ra.account, &rb.account));
}

#[test]
fn concurrent_inserts_and_lookups_stay_correct() {
    let s = Arc::new(MemoryStore::new());
    let per_thread = 2_000;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..per_thread {
                    let r = record(&format!("acct{}", t % 2), KeyKind::General);
                    s.insert(r.clone()).unwrap();
                    mine.push(r);
                    // Every record inserted so far by this thread is found, with its own id.
                    let probe = &mine[i / 2];
                    let found = s.find_by_digest(&probe.digest).unwrap().unwrap();
                    assert_eq!(found.record.id, probe.id);
                }
                mine
            })
        })
        .collect();
    let all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(s.len(), 4 * per_thread);
    let ids: HashSet<_> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), all.len());
    for r in &all {
        assert_eq!(s.get(r.id).unwrap().unwrap().digest, r.digest);
    }
    assert_eq!(
        s.list("acct0", &KeyFilter::default()).unwrap().len(),
        2 * per_thread
    );
}

/// `find_by_digest_with` lends the store's own `Arc`: no clone is made (the
/// store's is the only strong count while the callback reads it), where
/// `find_by_digest` hands out a clone.
#[test]
fn a_lent_lookup_clones_no_reference_count() {
    let s = MemoryStore::new();
    let t = record("acme", KeyKind::General);
    s.insert(t.clone()).unwrap();
    let mut counts = Vec::new();
    s.find_by_digest_with(&t.digest, &mut |f| {
        counts.push(Arc::strong_count(f.expect("found").record))
    })
    .unwrap();
    assert!(s.find_cached_with(&t.digest, &mut |f| {
        counts.push(Arc::strong_count(f.expect("found").record))
    }));
    assert_eq!(counts, vec![1, 1], "lent in place, never cloned");
    let owned = s.find_by_digest(&t.digest).unwrap().unwrap();
    assert_eq!(
        Arc::strong_count(&owned.record),
        2,
        "the owned lookup holds a clone"
    );
    let mut missing = Vec::new();
    let other = record("acme", KeyKind::General);
    s.find_by_digest_with(&other.digest, &mut |f| missing.push(f.is_none()))
        .unwrap();
    assert_eq!(missing, vec![true], "a miss is lent as None, once");
}

/// The hot path reads a record in place, under a shard lock whose readers
/// each take one of eight sub-locks: every write must still be seen by every
/// lookup that starts after it returned, from more reader threads than there
/// are sub-locks, through both lending calls (`find_by_digest_with`,
/// `find_cached_with`). Each write is numbered (the record's description
/// and the owner's role, written in turn), each reader notes how many writes
/// had returned before its lookup began and checks that the lookup saw at
/// least that many; after the delete returned, nothing is found.
#[test]
fn a_lookup_lent_in_place_sees_every_write_that_returned_before_it() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const READERS: usize = 10;
    const WRITES: u64 = 100;
    fn role_of(n: u64) -> Role {
        [Role::Observer, Role::Responder][(n % 2) as usize]
    }
    let s = Arc::new(MemoryStore::new());
    let t = record("acme", KeyKind::UserToken);
    s.insert(t.clone()).unwrap();
    let state = |n: u64| UserState {
        role: role_of(n),
        removed: false,
    };
    s.set_user("acme", "PUSER1", state(0)).unwrap();
    s.update(t.id, &mut |r| r.description = "0".into()).unwrap();
    // Writes that have returned: 2 per step (description, then role).
    let returned = Arc::new(AtomicU64::new(0));
    let deleting = Arc::new(AtomicBool::new(false));
    let deleted = Arc::new(AtomicBool::new(false));
    let stale = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let (s, returned, deleting, deleted, stale) = (
                s.clone(),
                returned.clone(),
                deleting.clone(),
                deleted.clone(),
                stale.clone(),
            );
            let digest = t.digest;
            thread::spawn(move || {
                let mut lookups = 0u64;
                loop {
                    let gone = deleted.load(Ordering::SeqCst);
                    let before = returned.load(Ordering::SeqCst);
                    let mut seen = None;
                    let mut lend = |f: Option<apikeys::LookupRef<'_>>| {
                        seen = Some(f.map(|f| {
                            let v: u64 = f.record.description.parse().unwrap();
                            (v, f.owner.map(|o| o.role))
                        }));
                    };
                    if i % 2 == 0 {
                        s.find_by_digest_with(&digest, &mut lend).unwrap();
                    } else {
                        assert!(
                            s.find_cached_with(&digest, &mut lend),
                            "memory always answers"
                        );
                    }
                    let seen = seen.expect("called back exactly once");
                    lookups += 1;
                    match seen {
                        None if gone => return lookups,
                        // Gone before the delete began: nothing deleted it.
                        None if !deleting.load(Ordering::SeqCst) => {
                            stale.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {}
                        // Found after the delete returned.
                        Some(_) if gone => {
                            stale.fetch_add(1, Ordering::SeqCst);
                        }
                        Some((v, role)) => {
                            // Step n writes the description n (write 2n − 1), then
                            // the role of n (write 2n). So `before` writes returned
                            // means descriptions up to ⌈before/2⌉, and when `before`
                            // is even and the description seen is still before/2,
                            // that step's role, and no later one, is the owner's.
                            let roles_done = before / 2;
                            let missed_description = v < before.div_ceil(2);
                            let missed_role = before % 2 == 0
                                && v == roles_done
                                && role != Some(role_of(roles_done));
                            if missed_description || missed_role {
                                stale.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for n in 1..=WRITES {
        s.update(t.id, &mut |r| r.description = n.to_string().into())
            .unwrap();
        returned.fetch_add(1, Ordering::SeqCst);
        s.set_user("acme", "PUSER1", state(n)).unwrap();
        returned.fetch_add(1, Ordering::SeqCst);
        if n % 16 == 0 {
            thread::yield_now();
        }
    }
    deleting.store(true, Ordering::SeqCst);
    s.delete(t.id).unwrap();
    deleted.store(true, Ordering::SeqCst);
    let lookups: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(
        stale.load(Ordering::SeqCst),
        0,
        "a lookup missed a write that had returned before it began"
    );
    assert!(
        lookups >= READERS as u64,
        "every reader looked at least once"
    );
}

#[test]
fn concurrent_inserts_of_one_id_admit_exactly_one() {
    let s = Arc::new(MemoryStore::new());
    let template = record("acme", KeyKind::General);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let mut r = record("acme", KeyKind::General);
            r.id = template.id;
            thread::spawn(move || s.insert(r).is_ok())
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&ok| ok)
        .count();
    assert_eq!(wins, 1);
    assert_eq!(s.len(), 1);
}

#[test]
fn concurrent_updates_are_atomic() {
    let s = Arc::new(MemoryStore::new());
    let a = record("acme", KeyKind::General);
    s.insert(a.clone()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            thread::spawn(move || {
                for _ in 0..500 {
                    s.update(a.id, &mut |r| {
                        let n: u32 = r.description.trim_start_matches("n=").parse().unwrap_or(0);
                        r.description = format!("n={}", n + 1).into();
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(&*s.get(a.id).unwrap().unwrap().description, "n=2000");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A random sequence of inserts and deletes leaves exactly the expected records findable.
    #[test]
    fn inserts_and_deletes_match_a_model(ops in prop::collection::vec((any::<bool>(), 0usize..16), 1..80)) {
        let s = MemoryStore::new();
        let pool: Vec<_> = (0..16).map(|_| record("acme", KeyKind::General)).collect();
        let mut model = HashSet::new();
        for (insert, i) in ops {
            let r = &pool[i];
            if insert {
                let ok = s.insert(r.clone()).is_ok();
                prop_assert_eq!(ok, model.insert(i));
            } else {
                let gone = s.delete(r.id).unwrap().is_some();
                prop_assert_eq!(gone, model.remove(&i));
            }
        }
        prop_assert_eq!(s.len(), model.len());
        for (i, r) in pool.iter().enumerate() {
            prop_assert_eq!(s.find_by_digest(&r.digest).unwrap().is_some(), model.contains(&i));
            prop_assert_eq!(s.get(r.id).unwrap().is_some(), model.contains(&i));
        }
    }
}
