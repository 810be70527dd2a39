//! Shared fixtures for the criterion benchmarks in `benches/`.
//!
//! Run them with `cargo bench -p apikeys-benches`.

use std::sync::Arc;

use apikeys::{
    AccessLevel, Actor, KeyHasher, KeyId, KeyKind, KeyRecord, KeyStore, Keyring, MemoryStore, Role,
    Timestamp,
};

/// A store full of general keys, and the keys.
pub struct Fixture {
    /// The store.
    pub store: Arc<MemoryStore>,
    /// A keyring over it.
    pub keyring: Keyring,
    /// Every key in the store, in insertion order.
    pub keys: Vec<String>,
}

/// The account every fixture key belongs to.
pub const ACCOUNT: &str = "acme";

/// A record for `key` as the keyring would make it.
pub fn record_for(key: &str, hasher: &KeyHasher) -> KeyRecord {
    KeyRecord {
        id: KeyId::generate().expect("randomness"),
        account: ACCOUNT.into(),
        kind: KeyKind::parse(key).expect("well-formed"),
        description: "bench key".into(),
        access: AccessLevel::FullAccess,
        owner: None,
        target: None,
        scopes: Box::new([]),
        created_at: Timestamp::now(),
        created_by: "PADMIN1".into(),
        api_version: apikeys::ApiVersion::V2,
        disabled: None,
        last_used_at: None,
        expires_at: None,
        hint: apikeys::Hint::of(key),
        digest: hasher.digest(key.as_bytes()),
        rotation: None,
        last_used_from: None,
    }
}

/// `n` general keys inserted straight into a `MemoryStore` (the keyring's own
/// create path, with its audit event per key, is not what is measured here).
pub fn fixture(n: usize) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    store.reserve(n);
    let hasher = KeyHasher::sha256();
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let s = KeyKind::General.generate().expect("randomness");
        store
            .insert(record_for(s.expose(), &hasher))
            .expect("fresh key");
        keys.push(s.expose().to_owned());
    }
    let keyring = Keyring::builder()
        .shared_store(store.clone())
        .build()
        .expect("no pepper");
    Fixture {
        store,
        keyring,
        keys,
    }
}

/// An admin of the fixture account.
pub fn admin() -> Actor {
    Actor::new(ACCOUNT, "PADMIN1", Role::Admin)
}

/// A cheap, deterministic permutation step over `0..n` (n a power of two is
/// not required): visits keys in a scattered order so lookups do not ride the
/// cache the way a sequential walk would.
#[inline]
pub fn next_index(i: usize, n: usize) -> usize {
    (i + 7_919_993) % n
}
