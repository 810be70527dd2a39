//! Changing users and the account's plan as a person (`set_user_role_as`,
//! `remove_user_as`, `set_account_as`): the rule of docs/design.md §2
//! ("Users and the account") decided on the actor's stored standing, and
//! every call, allowed or refused, recorded with the actor.

use apikeys::{
    AccountSettings, Actor, AuditAction, AuditOutcome, Error, Keyring, MemoryStore, Role,
};

fn keyring() -> Keyring {
    let kr = Keyring::new(MemoryStore::new());
    for (user, role) in [
        ("POWNER", Role::Owner),
        ("PADMIN", Role::Admin),
        ("PMGR", Role::Manager),
        ("PRESP", Role::Responder),
        ("POWNER2", Role::Owner),
    ] {
        kr.set_user_role("acme", user, role).unwrap();
    }
    kr
}

fn as_(user: &str, role: Role) -> Actor {
    Actor::new("acme", user, role)
}

fn refused(r: Result<impl std::fmt::Debug, Error>, why: &str) {
    match r {
        Err(Error::NotPermitted { reason }) => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected NotPermitted ({why}), got {other:?}"),
    }
}

fn role_of(kr: &Keyring, user: &str) -> Option<(Role, bool)> {
    kr.user("acme", user).unwrap().map(|s| (s.role, s.removed))
}

#[test]
fn owners_and_admins_change_roles_and_only_an_owner_touches_an_owner() {
    let kr = keyring();
    let owner = as_("POWNER", Role::Owner);
    let admin = as_("PADMIN", Role::Admin);
    // An admin changes a manager and a responder, and makes an admin.
    kr.set_user_role_as(&admin, "PMGR", Role::Responder)
        .unwrap();
    kr.set_user_role_as(&admin, "PNEW", Role::Admin).unwrap();
    assert_eq!(role_of(&kr, "PMGR"), Some((Role::Responder, false)));
    assert_eq!(role_of(&kr, "PNEW"), Some((Role::Admin, false)));
    // But never makes, changes or removes an owner.
    refused(
        kr.set_user_role_as(&admin, "PRESP", Role::Owner),
        "only an owner",
    );
    refused(
        kr.set_user_role_as(&admin, "POWNER2", Role::Admin),
        "only an owner",
    );
    refused(kr.remove_user_as(&admin, "POWNER2"), "only an owner");
    assert_eq!(role_of(&kr, "PRESP"), Some((Role::Responder, false)));
    assert_eq!(role_of(&kr, "POWNER2"), Some((Role::Owner, false)));
    // An owner does all three.
    kr.set_user_role_as(&owner, "PRESP", Role::Owner).unwrap();
    kr.set_user_role_as(&owner, "POWNER2", Role::Admin).unwrap();
    assert_eq!(kr.remove_user_as(&owner, "POWNER2").unwrap(), 0);
    assert_eq!(role_of(&kr, "PRESP"), Some((Role::Owner, false)));
    assert_eq!(role_of(&kr, "POWNER2"), Some((Role::Admin, true)));
}

#[test]
fn other_roles_removed_users_and_stale_actors_may_not() {
    let kr = keyring();
    for role in [
        Role::Manager,
        Role::Responder,
        Role::Observer,
        Role::RestrictedAccess,
    ] {
        kr.set_user_role("acme", "PSOME", role).unwrap();
        let actor = as_("PSOME", role);
        refused(
            kr.set_user_role_as(&actor, "PRESP", Role::Manager),
            "may not change users' roles",
        );
        refused(
            kr.remove_user_as(&actor, "PRESP"),
            "may not change users' roles",
        );
        refused(
            kr.set_account_as(&actor, AccountSettings::default()),
            "may not change the account's plan",
        );
    }
    // A stale actor: says Admin, stored as Responder (demoted).
    kr.set_user_role("acme", "PADMIN", Role::Responder).unwrap();
    let stale = as_("PADMIN", Role::Admin);
    refused(
        kr.set_user_role_as(&stale, "PMGR", Role::Admin),
        "may not change users' roles",
    );
    refused(
        kr.remove_user_as(&stale, "PMGR"),
        "may not change users' roles",
    );
    // A removed owner may do nothing.
    kr.remove_user("acme", "POWNER2").unwrap();
    let gone = as_("POWNER2", Role::Owner);
    refused(kr.set_user_role_as(&gone, "PMGR", Role::Admin), "removed");
    refused(
        kr.set_account_as(&gone, AccountSettings::default()),
        "removed",
    );
    assert_eq!(role_of(&kr, "PMGR"), Some((Role::Manager, false)));
    // Bad ids are input errors, not a change.
    assert!(matches!(
        kr.set_user_role_as(&as_("POWNER", Role::Owner), "", Role::Admin),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn each_call_is_recorded_with_its_actor_allowed_or_refused() {
    let kr = keyring();
    let admin = as_("PADMIN", Role::Admin);
    let before = kr.audit_trail().len();
    kr.set_user_role_as(&admin, "PMGR", Role::Responder)
        .unwrap();
    refused(kr.remove_user_as(&admin, "POWNER"), "only an owner");
    let plan = AccountSettings {
        rest_api: false,
        ..AccountSettings::default()
    };
    kr.set_account_as(&admin, plan).unwrap();
    assert!(!kr.account("acme").unwrap().rest_api);
    let trail = kr.audit_trail();
    let new: Vec<_> = trail[before..].iter().collect();
    assert_eq!(new.len(), 3, "{new:#?}");
    for e in &new {
        assert_eq!(e.actor, "PADMIN");
        assert_eq!(e.actor_role, Some(Role::Admin));
        assert_eq!(e.account, "acme");
    }
    assert_eq!(new[0].action, AuditAction::SetUserRole);
    assert_eq!(new[0].subject_user.as_deref(), Some("PMGR"));
    assert_eq!(new[0].outcome, AuditOutcome::Allowed);
    assert!(new[0].changes.iter().any(|c| c.field == "role"
        && c.before_value.as_deref() == Some(Role::Manager.as_str())
        && c.value.as_deref() == Some(Role::Responder.as_str())));
    assert_eq!(new[1].action, AuditAction::RemoveUser);
    assert!(matches!(new[1].outcome, AuditOutcome::Refused { .. }));
    assert!(new[1].changes.is_empty());
    assert_eq!(new[2].action, AuditAction::SetAccount);
    assert_eq!(new[2].outcome, AuditOutcome::Allowed);
}
