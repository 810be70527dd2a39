//! The whole management matrix of docs/design.md §2: every role × every action × whose
//! key, against an expected table written out here (not computed by the code
//! under test).

mod common;

use apikeys::{AccessLevel, AccountSettings, Actor, Error, KeyKind, KeyRecord, Keyring, Role};

/// Role order of the flag strings below.
const ROLES: [Role; 8] = [
    Role::Owner,
    Role::Admin,
    Role::Manager,
    Role::Responder,
    Role::Observer,
    Role::RestrictedAccess,
    Role::FullStakeholder,
    Role::LimitedStakeholder,
];

/// One flag per role in `ROLES` order: `Y` allowed, `.` refused with `NotPermitted`.
/// Written out by hand from docs/design.md §2.
const EXPECTED: &[(&str, &str)] = &[
    //                                      O A M R O R F L
    ("general create", /*              */ "YY......"),
    ("general list", /*                */ "YY......"),
    ("general get", /*                 */ "YY......"),
    ("general disable", /*             */ "YY......"),
    ("general enable", /*              */ "YY......"),
    ("general delete", /*              */ "YY......"),
    ("user_token create own", /*       */ "YYYYYYY."),
    ("user_token list own", /*         */ "YYYYYYYY"),
    ("user_token get own", /*          */ "YYYYYYYY"),
    ("user_token delete own", /*       */ "YYYYYYYY"),
    ("user_token list other", /*       */ "YY......"),
    ("user_token get other", /*        */ "YY......"),
    ("user_token delete other's owner", "........"),
    ("user_token delete other's admin", "........"),
    ("user_token delete other's user", "YY......"),
    ("user_token delete other's limited_user", "YY......"),
    ("user_token delete other's observer", "YY......"),
    ("user_token delete other's restricted_access", "YY......"),
    ("user_token delete other's read_only_user", "YY......"),
    (
        "user_token delete other's read_only_limited_user",
        "YY......",
    ),
    ("integration create", /*          */ "YYY....."),
    ("integration list", /*            */ "YYY....."),
    ("integration get", /*             */ "YYY....."),
    ("integration delete", /*          */ "YYY....."),
    ("routing create", /*              */ "YYY....."),
    ("routing list", /*                */ "YYY....."),
    ("routing get", /*                 */ "YYY....."),
    ("routing delete", /*              */ "YYY....."),
    ("scoped create", /*               */ "YYY....."),
    ("scoped list", /*                 */ "YYY....."),
    ("scoped get", /*                  */ "YYY....."),
    ("scoped delete", /*               */ "YYY....."),
];

fn expected(case: &str, role: Role) -> bool {
    let flags = EXPECTED
        .iter()
        .find(|(c, _)| *c == case)
        .unwrap_or_else(|| panic!("no row {case}"))
        .1;
    let i = ROLES.iter().position(|&r| r == role).unwrap();
    flags.as_bytes()[i] == b'Y'
}

fn owner() -> Actor {
    Actor::new("acme", "POWNER", Role::Owner)
}

fn actor(role: Role) -> Actor {
    Actor::new("acme", format!("P-{role}"), role)
}

/// Make a key of `kind` owned by the account (or, for user tokens, by `user` with `role`).
fn fixture(kr: &Keyring, kind: KeyKind, token_owner: Option<(&str, Role)>) -> KeyRecord {
    let o = owner();
    match kind {
        KeyKind::General => kr.create_general_key(&o, "fixture", AccessLevel::FullAccess),
        KeyKind::UserToken => {
            let (user, role) = token_owner.unwrap();
            // A limited stakeholder cannot make a token: make it as a responder, then demote.
            let make_as = if role == Role::LimitedStakeholder {
                Role::Responder
            } else {
                role
            };
            let r = kr.create_user_token(&Actor::new("acme", user, make_as), "fixture");
            kr.set_user_role("acme", user, role).unwrap();
            r
        }
        KeyKind::Integration => kr.create_integration_key(&o, "PSERVICE1", "fixture"),
        KeyKind::Routing => kr.create_routing_key(&o, "global-orch", "fixture"),
        KeyKind::Scoped => kr.create_scoped_token(&o, "fixture", &["incidents.write"]),
    }
    .unwrap()
    .record()
    .clone()
}

/// Ok → true, NotPermitted → false; anything else fails the test.
fn outcome<T>(case: &str, role: Role, r: Result<T, Error>) -> bool {
    match r {
        Ok(_) => true,
        Err(Error::NotPermitted { .. }) => false,
        Err(e) => panic!("{case} as {role}: unexpected error {e:?}"),
    }
}

fn check(case: &str, role: Role, got: bool, failures: &mut Vec<String>) {
    let want = expected(case, role);
    if got != want {
        failures.push(format!(
            "{case} as {role}: expected {}, got {}",
            yn(want),
            yn(got)
        ));
    }
}

fn yn(b: bool) -> &'static str {
    if b { "allowed" } else { "refused" }
}

#[test]
fn every_role_every_action_every_kind_matches_the_design_table() {
    let mut failures = Vec::new();
    for role in ROLES {
        let kr = Keyring::default();
        let me = actor(role);
        for kind in [
            KeyKind::General,
            KeyKind::Integration,
            KeyKind::Routing,
            KeyKind::Scoped,
        ] {
            let name = kind.as_str();
            let create = match kind {
                KeyKind::General => kr.create_general_key(&me, "mine", AccessLevel::ReadOnly),
                KeyKind::Integration => kr.create_integration_key(&me, "PSERVICE1", "mine"),
                KeyKind::Routing => kr.create_routing_key(&me, "orch", "mine"),
                _ => kr.create_scoped_token(&me, "mine", &["incidents.read"]),
            };
            check(
                &format!("{name} create"),
                role,
                outcome(name, role, create),
                &mut failures,
            );

            let key = fixture(&kr, kind, None);
            let id = key.id.to_string();
            let listed = kr.list(&me).unwrap().iter().any(|r| r.id == key.id);
            check(&format!("{name} list"), role, listed, &mut failures);
            check(
                &format!("{name} get"),
                role,
                outcome(name, role, kr.get(&me, &id)),
                &mut failures,
            );
            if kind == KeyKind::General {
                check(
                    &format!("{name} disable"),
                    role,
                    outcome(name, role, kr.disable(&me, &id)),
                    &mut failures,
                );
                // Enable needs a disabled key whatever the previous row did.
                kr.disable(&owner(), &id).unwrap();
                check(
                    &format!("{name} enable"),
                    role,
                    outcome(name, role, kr.enable(&me, &id)),
                    &mut failures,
                );
            } else {
                // Disable/enable are for general keys only: a clear input error for every role.
                for r in [kr.disable(&me, &id), kr.enable(&me, &id)] {
                    assert!(
                        matches!(
                            r,
                            Err(Error::InvalidInput {
                                field: "key_id",
                                ..
                            })
                        ),
                        "{name} disable as {role}: {r:?}"
                    );
                }
            }
            check(
                &format!("{name} delete"),
                role,
                outcome(name, role, kr.delete(&me, &id)),
                &mut failures,
            );
        }

        // User tokens: one's own.
        check(
            "user_token create own",
            role,
            outcome("ut", role, kr.create_user_token(&me, "mine")),
            &mut failures,
        );
        let own = fixture(&kr, KeyKind::UserToken, Some((&me.user, role)));
        let own_id = own.id.to_string();
        let listed = kr.list(&me).unwrap().iter().any(|r| r.id == own.id);
        check("user_token list own", role, listed, &mut failures);
        check(
            "user_token get own",
            role,
            outcome("ut", role, kr.get(&me, &own_id)),
            &mut failures,
        );
        check(
            "user_token delete own",
            role,
            outcome("ut", role, kr.delete(&me, &own_id)),
            &mut failures,
        );

        // Other users' tokens, for every role the other user may have.
        let other = fixture(&kr, KeyKind::UserToken, Some(("POTHER", Role::Responder)));
        let listed = kr.list(&me).unwrap().iter().any(|r| r.id == other.id);
        check("user_token list other", role, listed, &mut failures);
        check(
            "user_token get other",
            role,
            outcome("ut", role, kr.get(&me, &other.id.to_string())),
            &mut failures,
        );
        for other_role in ROLES {
            let user = format!("POTHER-{other_role}");
            let t = fixture(&kr, KeyKind::UserToken, Some((&user, other_role)));
            let case = format!("user_token delete other's {other_role}");
            check(
                &case,
                role,
                outcome(&case, role, kr.delete(&me, &t.id.to_string())),
                &mut failures,
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_other_users_current_role_decides_not_the_role_at_creation() {
    let kr = Keyring::default();
    let admin = actor(Role::Admin);
    let t = fixture(&kr, KeyKind::UserToken, Some(("PBOB", Role::Responder)));
    kr.set_user_role("acme", "PBOB", Role::Admin).unwrap();
    assert!(matches!(
        kr.delete(&admin, &t.id.to_string()),
        Err(Error::NotPermitted { .. })
    ));
    kr.set_user_role("acme", "PBOB", Role::Observer).unwrap();
    kr.delete(&admin, &t.id.to_string()).unwrap();
}

#[test]
fn user_tokens_need_advanced_permissions_and_rest_keys_need_the_rest_api() {
    let kr = Keyring::default();
    let me = actor(Role::Responder);
    kr.set_account(
        "acme",
        AccountSettings {
            rest_api: true,
            advanced_permissions: false,
        },
    )
    .unwrap();
    let e = kr.create_user_token(&me, "laptop").unwrap_err();
    assert!(
        matches!(e, Error::PlanRestricted { .. }) && e.http_status() == 402 && e.code() == 2014,
        "{e:?}"
    );
    kr.set_account(
        "acme",
        AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        },
    )
    .unwrap();
    for e in [
        kr.create_general_key(&owner(), "x", AccessLevel::FullAccess)
            .unwrap_err(),
        kr.create_scoped_token(&owner(), "x", &["incidents.read"])
            .unwrap_err(),
        kr.create_user_token(&me, "x").unwrap_err(),
    ] {
        assert!(matches!(e, Error::PlanRestricted { .. }), "{e:?}");
    }
    // Events keys are still made on a legacy plan.
    kr.create_integration_key(&owner(), "PSVC", "still fine")
        .unwrap();
}

#[test]
fn keys_of_another_account_behave_as_if_they_did_not_exist() {
    let kr = Keyring::default();
    let theirs = kr
        .create_general_key(
            &Actor::new("globex", "PG", Role::Owner),
            "theirs",
            AccessLevel::FullAccess,
        )
        .unwrap();
    let id = theirs.record().id.to_string();
    let me = owner();
    for r in [
        kr.get(&me, &id),
        kr.disable(&me, &id),
        kr.enable(&me, &id),
        kr.delete(&me, &id),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::NotFound { .. }) && e.http_status() == 404 && e.code() == 2100,
            "{e:?}"
        );
    }
    assert!(kr.list(&me).unwrap().is_empty());
    // And the key still works for its own account.
    kr.get(&Actor::new("globex", "PG", Role::Owner), &id)
        .unwrap();
}

#[test]
fn a_removed_user_cannot_make_a_token_until_restored() {
    let kr = Keyring::default();
    let me = actor(Role::Manager);
    kr.create_user_token(&me, "first").unwrap();
    kr.remove_user("acme", &me.user).unwrap();
    assert!(matches!(
        kr.create_user_token(&me, "again"),
        Err(Error::NotPermitted { .. })
    ));
    kr.set_user_role("acme", &me.user, Role::Manager).unwrap();
    kr.create_user_token(&me, "again").unwrap();
}
