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

#[test]
fn bad_ids_are_refused_as_input_before_any_decision_and_never_reach_the_trail() {
    let kr = keyring();
    let owner = as_("POWNER", Role::Owner);
    let key = kr
        .create_general_key(&owner, "ci", apikeys::AccessLevel::FullAccess)
        .unwrap();
    let pasted = key.secret().expose().to_owned();
    let long = "P".repeat(10_000);
    let bad_users = ["", " PRESP", "PRE\nSP", "PRE\u{0}SP", long.as_str()];
    for user in bad_users {
        for r in [
            kr.set_user_role_as(&owner, user, Role::Admin).map(|_| 0),
            kr.remove_user_as(&owner, user),
        ] {
            assert!(
                matches!(r, Err(Error::InvalidInput { field: "user", .. })),
                "{:?}: {r:?}",
                user.get(..20)
            );
        }
    }
    let bad_actors = [
        Actor::new("", "POWNER", Role::Owner),
        Actor::new("acme", "", Role::Owner),
        Actor::new("acme\t", "POWNER", Role::Owner),
        Actor::new("acme", long.as_str(), Role::Owner),
    ];
    for actor in &bad_actors {
        for r in [
            kr.set_user_role_as(actor, "PRESP", Role::Observer)
                .map(|_| 0),
            kr.remove_user_as(actor, "PRESP"),
            kr.set_account_as(actor, AccountSettings::default())
                .map(|_| 0),
        ] {
            assert!(matches!(r, Err(Error::InvalidInput { .. })), "{r:?}");
        }
    }
    // A key pasted where a user id goes, in a refused call: the record
    // names it "(redacted)".
    refused(
        kr.set_user_role_as(&as_("PADMIN", Role::Admin), &pasted, Role::Owner),
        "only an owner",
    );
    // Nothing changed, and no record holds the pasted key.
    assert_eq!(role_of(&kr, "PRESP"), Some((Role::Responder, false)));
    assert_eq!(kr.account("acme").unwrap(), AccountSettings::default());
    let trail = kr.audit_trail();
    let text = format!("{trail:?} {}", serde_json::to_string(&trail).unwrap());
    assert!(!text.contains(&pasted), "a key reached the audit trail");
    assert!(text.contains("(redacted)") && text.contains("(invalid)"));
    assert!(
        trail
            .iter()
            .filter(|e| e.actor != "system" && e.action != AuditAction::Create)
            .all(|e| e.outcome != AuditOutcome::Allowed || e.subject_user.is_none()),
        "no change was allowed"
    );
}

// ---- a change landing between the decision and the write ----
//
// The decision of a `*_as` call and its write are one atomic step of the
// store (docs/design.md, "Invariants"): a change of either user's standing
// (or of the plan) that lands while the call is in flight is either wholly
// before the decision or wholly after the write. These tests put such a
// change at the worst moment: just before the call's first write reaches
// the store, after everything the keyring may have read on its own.

mod interleaved {
    use std::sync::{Arc, Mutex, PoisonError};

    use apikeys::testing::wrap::{Around, Wrapped};
    use apikeys::{
        AccountSettings, AuditAction, AuditEvent, AuditOutcome, Error, Keyring, MemoryStore, Role,
    };

    use super::{as_, refused};

    /// The store methods that write a user's standing or the plan, whatever
    /// their name.
    const WRITES: [&str; 6] = [
        "set_user_audited",
        "set_user_as",
        "remove_user",
        "remove_user_as",
        "set_account_settings_audited",
        "set_account_settings_as",
    ];

    type Step = Box<dyn FnOnce() + Send>;

    /// Runs `step` (once) when the wrapped keyring's call first writes.
    #[derive(Default)]
    struct Meanwhile(Mutex<Option<Step>>);

    impl Around for Meanwhile {
        fn before(&self, method: &'static str) {
            if WRITES.contains(&method) {
                let step = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(step) = step {
                    step();
                }
            }
        }
    }

    /// Two keyrings on one store: `acting` (whose first write lets
    /// `meanwhile` run first) and `other` (which makes that change).
    struct Setup {
        acting: Keyring,
        other: Arc<Keyring>,
        store: Arc<Wrapped<Arc<MemoryStore>, Meanwhile>>,
    }

    fn setup() -> Setup {
        let inner = Arc::new(MemoryStore::new());
        let other = Arc::new(Keyring::new(inner.clone()));
        for (user, role) in [
            ("POWNER", Role::Owner),
            ("PADMIN", Role::Admin),
            ("PRESP", Role::Responder),
            ("PMGR", Role::Manager),
        ] {
            other.set_user_role("acme", user, role).unwrap();
        }
        let store = Arc::new(Wrapped::new(inner, Meanwhile::default()));
        let acting = Keyring::builder()
            .shared_store(store.clone())
            .build()
            .unwrap();
        Setup {
            acting,
            other,
            store,
        }
    }

    impl Setup {
        fn meanwhile(&self, step: impl FnOnce(&Keyring) + Send + 'static) {
            let other = self.other.clone();
            *self.store.around.0.lock().unwrap() = Some(Box::new(move || step(&other)));
        }

        fn state(&self, user: &str) -> Option<(Role, bool)> {
            super::role_of(&self.other, user)
        }

        /// The acting keyring's one new record.
        fn last(&self) -> AuditEvent {
            self.acting.audit_trail().pop().expect("a record")
        }
    }

    fn role_change(e: &AuditEvent) -> (Option<&str>, Option<&str>) {
        let c = e
            .changes
            .iter()
            .find(|c| c.field == "role")
            .expect("a role change");
        (c.before_value.as_deref(), c.value.as_deref())
    }

    #[test]
    fn an_admin_never_demotes_a_user_promoted_to_owner_meanwhile() {
        let s = setup();
        s.meanwhile(|o| {
            o.set_user_role_as(&as_("POWNER", Role::Owner), "PRESP", Role::Owner)
                .unwrap()
        });
        let admin = as_("PADMIN", Role::Admin);
        refused(
            s.acting.set_user_role_as(&admin, "PRESP", Role::Observer),
            "only an owner",
        );
        assert_eq!(s.state("PRESP"), Some((Role::Owner, false)));
        let e = s.last();
        assert!(matches!(e.outcome, AuditOutcome::Refused { .. }), "{e:?}");
        assert!(e.changes.is_empty());
    }

    #[test]
    fn an_admin_never_removes_a_user_promoted_to_owner_meanwhile() {
        let s = setup();
        s.meanwhile(|o| o.set_user_role("acme", "PRESP", Role::Owner).unwrap());
        refused(
            s.acting
                .remove_user_as(&as_("PADMIN", Role::Admin), "PRESP"),
            "only an owner",
        );
        assert_eq!(s.state("PRESP"), Some((Role::Owner, false)));
    }

    /// One call of an admin, on a keyring.
    type Call = Box<dyn Fn(&Keyring) -> Result<(), Error>>;

    /// Each call of an admin, by name.
    fn admin_calls() -> Vec<(&'static str, Call)> {
        let admin = || as_("PADMIN", Role::Admin);
        vec![
            (
                "set_user_role_as",
                Box::new(move |k: &Keyring| k.set_user_role_as(&admin(), "PMGR", Role::Admin)),
            ),
            (
                "remove_user_as",
                Box::new(move |k: &Keyring| k.remove_user_as(&admin(), "PMGR").map(|_| ())),
            ),
            (
                "set_account_as",
                Box::new(move |k: &Keyring| {
                    k.set_account_as(
                        &admin(),
                        AccountSettings {
                            rest_api: false,
                            advanced_permissions: false,
                        },
                    )
                }),
            ),
        ]
    }

    /// Nothing an admin call would have changed has changed.
    fn untouched(s: &Setup, call: &str) {
        assert_eq!(
            s.state("PMGR"),
            Some((Role::Manager, false)),
            "{call}: a stale admin changed a user"
        );
        assert_eq!(
            s.other.account("acme").unwrap(),
            AccountSettings::default(),
            "{call}: a stale admin changed the plan"
        );
    }

    #[test]
    fn an_admin_demoted_meanwhile_changes_nothing() {
        for (call, run) in admin_calls() {
            let s = setup();
            s.meanwhile(|o| {
                o.set_user_role_as(&as_("POWNER", Role::Owner), "PADMIN", Role::Responder)
                    .unwrap()
            });
            match run(&s.acting) {
                Err(Error::NotPermitted { reason }) => {
                    assert!(
                        reason.contains(&format!("'{}' may not", Role::Responder)),
                        "{call}: {reason}"
                    )
                }
                other => panic!("{call}: expected NotPermitted, got {other:?}"),
            }
            untouched(&s, call);
            let e = s.last();
            assert!(matches!(e.outcome, AuditOutcome::Refused { .. }), "{call}");
            assert_eq!(
                e.actor_role,
                Some(Role::Responder),
                "{call}: the role decided on"
            );
        }
    }

    #[test]
    fn an_admin_removed_meanwhile_changes_nothing() {
        for (call, run) in admin_calls() {
            let s = setup();
            s.meanwhile(|o| {
                o.remove_user("acme", "PADMIN").unwrap();
            });
            match run(&s.acting) {
                Err(Error::NotPermitted { reason }) => {
                    assert!(reason.contains("removed"), "{call}: {reason}")
                }
                other => panic!("{call}: expected NotPermitted, got {other:?}"),
            }
            untouched(&s, call);
            assert_eq!(
                s.last().actor_role,
                None,
                "{call}: a removed actor has no role"
            );
        }
    }

    #[test]
    fn the_record_shows_the_role_the_write_replaced() {
        let s = setup();
        s.meanwhile(|o| o.set_user_role("acme", "PRESP", Role::Manager).unwrap());
        s.acting
            .set_user_role_as(&as_("POWNER", Role::Owner), "PRESP", Role::Observer)
            .unwrap();
        assert_eq!(s.state("PRESP"), Some((Role::Observer, false)));
        let e = s.last();
        assert_eq!(e.outcome, AuditOutcome::Allowed);
        assert_eq!(
            role_change(&e),
            (Some(Role::Manager.as_str()), Some(Role::Observer.as_str()))
        );
    }

    #[test]
    fn the_record_shows_a_removal_the_write_undid() {
        let s = setup();
        s.meanwhile(|o| {
            o.remove_user("acme", "PRESP").unwrap();
        });
        s.acting
            .set_user_role_as(&as_("PADMIN", Role::Admin), "PRESP", Role::Observer)
            .unwrap();
        let e = s.last();
        assert_eq!(
            role_change(&e),
            (
                Some(Role::Responder.as_str()),
                Some(Role::Observer.as_str())
            )
        );
        assert!(
            e.changes.iter().any(|c| c.field == "removed"
                && c.before_value.as_deref() == Some("true")
                && c.value.as_deref() == Some("false")),
            "{e:?}"
        );
    }

    #[test]
    fn the_record_shows_the_plan_the_write_replaced() {
        let s = setup();
        s.meanwhile(|o| {
            o.set_account(
                "acme",
                AccountSettings {
                    rest_api: false,
                    advanced_permissions: true,
                },
            )
            .unwrap()
        });
        s.acting
            .set_account_as(
                &as_("PADMIN", Role::Admin),
                AccountSettings {
                    rest_api: false,
                    advanced_permissions: false,
                },
            )
            .unwrap();
        let e = s.last();
        assert_eq!(e.action, AuditAction::SetAccount);
        let fields: Vec<_> = e
            .changes
            .iter()
            .map(|c| {
                (
                    c.field.as_str(),
                    c.before_value.as_deref(),
                    c.value.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            vec![("advanced_permissions", Some("true"), Some("false"))],
            "rest_api was already off when the plan was written"
        );
    }

    #[test]
    fn the_record_shows_whether_a_removed_user_was_removed_already() {
        let s = setup();
        s.meanwhile(|o| {
            o.remove_user("acme", "PRESP").unwrap();
        });
        assert_eq!(
            s.acting
                .remove_user_as(&as_("PADMIN", Role::Admin), "PRESP")
                .unwrap(),
            0
        );
        let e = s.last();
        assert!(
            e.changes.iter().any(|c| c.field == "removed"
                && c.before_value.as_deref() == Some("true")
                && c.value.as_deref() == Some("true")),
            "{e:?}"
        );
    }
}
