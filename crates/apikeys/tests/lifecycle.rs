//! Rotation and the audit trail on the in-memory store (the same checks run
//! on SQLite and PostgreSQL from their crates).

use apikeys::testing::lifecycle;
use apikeys::{Keyring, MemoryStore};

fn keyring(clock: apikeys::ManualClock, quiet: std::time::Duration) -> Keyring {
    Keyring::builder()
        .store(MemoryStore::new())
        .clock(clock)
        .rotation_quiet(quiet)
        .build()
        .unwrap()
}

#[test]
fn rotation_and_audit_on_the_memory_store() {
    lifecycle::run_all(&keyring);
}
