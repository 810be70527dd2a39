//! The authorization invariants (docs/design.md, "Invariants") on the
//! `MemoryStore`: the stateful property test and the concurrency loops of
//! `apikeys::testing::invariants`, and its rotation races. The durable stores run the same in
//! their own tests.

use std::sync::Arc;

use apikeys::MemoryStore;
use apikeys::testing::invariants;

#[test]
fn no_sequence_of_calls_breaks_the_authorization_invariants() {
    invariants::sequences(Arc::new(MemoryStore::new()), 256);
}

#[test]
fn check_then_write_races_never_break_them() {
    invariants::races(Arc::new(MemoryStore::new()), 150);
}

#[test]
fn rotation_races_never_break_them() {
    // Two keyrings on one store: two callers, each with its own audit sink
    // (the loops read both).
    let store: Arc<dyn apikeys::KeyStore> = Arc::new(MemoryStore::new());
    let keyring = || {
        apikeys::Keyring::builder()
            .shared_store(store.clone())
            .build()
            .expect("a keyring")
    };
    invariants::rotation_races(&keyring(), &keyring(), 150);
}

#[test]
fn user_role_races_never_break_them() {
    // Two keyrings (each with its own audit sink; the loops read both) on
    // one store.
    let store: Arc<dyn apikeys::KeyStore> = Arc::new(MemoryStore::new());
    invariants::user_role_races(store.clone(), store, 1000);
}
