//! The authorization invariants (docs/design.md, "Invariants") on the
//! `MemoryStore`: the stateful property test and the concurrency loops of
//! `apikeys::testing::invariants`. The durable stores run the same two in
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
