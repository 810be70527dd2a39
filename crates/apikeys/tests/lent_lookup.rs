//! Every store that wraps another hands the keyring's lent lookup
//! (`find_by_digest_with`, `find_cached_with`) on to the inner store's own,
//! instead of falling back to the trait's default (which would call
//! `find_by_digest` and clone the record's `Arc`: a write to memory every
//! core reads, the thing issue 14 removed; docs/design.md §6). A
//! `MemoryStore` lends in place, so a callback that sees a reference count
//! of 1 was lent by the inner store itself.

mod common;

use std::sync::{Arc, Mutex};

use apikeys::store::{CachedLookup, LookupRef};
use apikeys::testing::wrap::{Around, Wrapped};
use apikeys::webhooks::OutboxStore;
use apikeys::{AccessLevel, Actor, Digest, KeyKind, KeyStore, Keyring, MemoryStore, Request, Role};
use common::{CountingStore, record};

/// The reference counts the lent records had, one per call of the callback.
fn lent_counts(s: &dyn KeyStore, d: &Digest) -> (Vec<usize>, Vec<usize>) {
    let mut by_digest = Vec::new();
    s.find_by_digest_with(d, &mut |f| {
        by_digest.push(Arc::strong_count(f.expect("found").record))
    })
    .unwrap();
    let mut cached = Vec::new();
    let answered = s.find_cached_with(d, &mut |f| {
        cached.push(Arc::strong_count(f.expect("found").record))
    });
    assert_eq!(
        answered,
        !cached.is_empty(),
        "true exactly when f was called"
    );
    (by_digest, cached)
}

/// Lets the inner store answer from memory, in place.
struct Lends;

impl Around for Lends {
    fn find_cached(&self, d: &Digest, inner: &dyn KeyStore) -> CachedLookup {
        inner.find_cached(d)
    }
    fn find_cached_with(
        &self,
        d: &Digest,
        inner: &dyn KeyStore,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> bool {
        inner.find_cached_with(d, f)
    }
}

/// Lets the inner store answer from memory, but only says `find_cached`.
struct OwnedOnly;

impl Around for OwnedOnly {
    fn find_cached(&self, d: &Digest, inner: &dyn KeyStore) -> CachedLookup {
        inner.find_cached(d)
    }
}

/// The names of the calls that reached the store.
#[derive(Default)]
struct Names(Mutex<Vec<&'static str>>);

impl Around for Names {
    fn before(&self, method: &'static str) {
        self.0.lock().unwrap().push(method);
    }
}

#[test]
fn the_memory_store_itself_lends_in_place() {
    let s = MemoryStore::new();
    let t = record("acme", KeyKind::General);
    s.insert(t.clone()).unwrap();
    assert_eq!(lent_counts(&s, &t.digest), (vec![1], vec![1]));
}

#[test]
fn a_wrapped_store_forwards_the_lent_lookup_to_the_inner_store() {
    let t = record("acme", KeyKind::General);
    let plain = Wrapped::new(MemoryStore::new(), ());
    plain.insert(t.clone()).unwrap();
    // `()` never answers from memory (the trait's own safe answer).
    assert_eq!(lent_counts(&plain, &t.digest), (vec![1], vec![]));

    let lends = Wrapped::new(MemoryStore::new(), Lends);
    lends.insert(t.clone()).unwrap();
    assert_eq!(lent_counts(&lends, &t.digest), (vec![1], vec![1]));

    // An `Around` that only says `find_cached` is lent that answer (an owned
    // clone, so a count of 2): consistent with what it said, never stale.
    let owned = Wrapped::new(MemoryStore::new(), OwnedOnly);
    owned.insert(t.clone()).unwrap();
    assert_eq!(lent_counts(&owned, &t.digest), (vec![1], vec![2]));
}

#[test]
fn an_outbox_store_and_an_arc_forward_the_lent_lookup() {
    let t = record("acme", KeyKind::General);
    let outbox = OutboxStore::new(MemoryStore::new());
    outbox.insert(t.clone()).unwrap();
    assert_eq!(lent_counts(&outbox, &t.digest), (vec![1], vec![1]));

    let shared: Arc<dyn KeyStore> =
        Arc::new(OutboxStore::new(Wrapped::new(MemoryStore::new(), Lends)));
    shared.insert(t.clone()).unwrap();
    assert_eq!(lent_counts(&shared, &t.digest), (vec![1], vec![1]));
}

#[test]
fn a_miss_is_lent_as_none_through_every_wrapper() {
    let absent = record("acme", KeyKind::General).digest;
    let stores: Vec<Box<dyn KeyStore>> = vec![
        Box::new(MemoryStore::new()),
        Box::new(Wrapped::new(MemoryStore::new(), Lends)),
        Box::new(OutboxStore::new(MemoryStore::new())),
    ];
    for s in &stores {
        let mut seen = Vec::new();
        s.find_by_digest_with(&absent, &mut |f| seen.push(f.is_none()))
            .unwrap();
        assert!(s.find_cached_with(&absent, &mut |f| seen.push(f.is_none())));
        assert_eq!(seen, vec![true, true], "each call lends one miss");
    }
}

#[test]
fn authenticate_reaches_the_inner_stores_lent_lookup_through_two_wrappers() {
    let inner = Wrapped::new(MemoryStore::new(), Names::default());
    let store = Arc::new(OutboxStore::new(Wrapped::new(inner, ())));
    let kr = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let key = kr
        .create_general_key(&admin, "k", AccessLevel::FullAccess)
        .unwrap();
    let names = &store.inner().inner.around.0;
    names.lock().unwrap().clear();
    kr.authenticate(key.secret().expose(), &Request::rest("GET"))
        .unwrap();
    let seen = names.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|m| **m == "find_by_digest_with").count(),
        1,
        "{seen:?}"
    );
    assert!(!seen.contains(&"find_by_digest"), "no fallback: {seen:?}");
}

#[test]
fn the_counting_store_counts_a_lent_lookup_as_a_find() {
    let s = CountingStore::default();
    let t = record("acme", KeyKind::General);
    s.insert(t.clone()).unwrap();
    s.find_by_digest_with(&t.digest, &mut |f| assert!(f.is_some()))
        .unwrap();
    s.find_by_digest(&t.digest).unwrap();
    assert_eq!(s.around.finds.load(std::sync::atomic::Ordering::SeqCst), 2);
    // It never answers from memory: the lent cached call says so, and `f`
    // is not called.
    assert!(!s.find_cached_with(&t.digest, &mut |_| panic!("not lent")));
}
