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

/// design.md §2's order: the key before the actor's standing. A removed
/// actor asking for a key that does not exist is told it does not exist; for
/// one that does, that they may do nothing.
#[test]
fn a_removed_actor_meets_not_found_before_not_permitted() {
    use apikeys::{AccessLevel, Actor, Error, Role};
    let kr = Keyring::default();
    let owner = Actor::new("acme", "POWNER", Role::Owner);
    let k = kr
        .create_general_key(&owner, "ci", AccessLevel::FullAccess)
        .unwrap();
    kr.set_user_role("acme", "POWNER", Role::Owner).unwrap();
    kr.remove_user("acme", "POWNER").unwrap();
    let id = k.record().id.to_string();
    for call in [
        &|kr: &Keyring, id: &str| kr.get(&owner, id).map(|_| ()) as Result<(), Error>,
        &|kr: &Keyring, id: &str| kr.disable(&owner, id).map(|_| ()),
        &|kr: &Keyring, id: &str| kr.delete(&owner, id).map(|_| ()),
        &|kr: &Keyring, id: &str| {
            kr.rotate(&owner, id, std::time::Duration::from_secs(60))
                .map(|_| ())
        },
        &|kr: &Keyring, id: &str| kr.end_rotation(&owner, id).map(|_| ()),
    ] as [&dyn Fn(&Keyring, &str) -> Result<(), Error>; 5]
    {
        assert!(matches!(
            call(&kr, "P0000000000000"),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(call(&kr, &id), Err(Error::NotPermitted { .. })));
    }
    assert!(matches!(kr.list(&owner), Err(Error::NotPermitted { .. })));
}
