//! The escalations an outside review found, each replayed as it was reported
//! (docs/design.md §6). The same invariants are checked over random
//! sequences by `tests/invariants.rs`; these name each case.

use apikeys::{AccessLevel, Actor, Error, Keyring, MemoryStore, Request, Role, UserState};

fn get(scope: &str) -> Request {
    Request::rest("GET").with_scope(scope).unwrap()
}

fn post(scope: &str) -> Request {
    Request::rest("POST").with_scope(scope).unwrap()
}

#[test]
fn a_manager_cannot_mint_a_scope_beyond_their_own_grants() {
    let kr = Keyring::new(MemoryStore::new());
    let manager = Actor::new("acme", "PMANAGER", Role::Manager);
    for scope in [
        "users.write",
        "ip_allow_lists.write",
        "audit_records.read",
        "users:sessions.read",
    ] {
        match kr.create_scoped_token(&manager, "x", &["incidents.write", scope]) {
            Err(Error::NotPermitted { reason }) => {
                assert!(reason.contains(scope), "names the scope: {reason}")
            }
            other => panic!("{scope}: expected NotPermitted, got {other:?}"),
        }
    }
    // Within their grants it works, and an admin may hand on admin-only scopes.
    kr.create_scoped_token(&manager, "ok", &["incidents.write", "services.read"])
        .unwrap();
    let admin = Actor::new("acme", "PADMIN", Role::Admin);
    let t = kr
        .create_scoped_token(&admin, "audit reader", &["audit_records.read"])
        .unwrap();
    kr.authenticate(t.secret().expose(), &get("audit_records.read"))
        .unwrap();
    // Nothing was stored for the refused attempts.
    assert_eq!(kr.list(&admin).unwrap().len(), 2);
}

#[test]
fn a_scoped_token_follows_its_maker_down_and_out() {
    let kr = Keyring::new(MemoryStore::new());
    let manager = Actor::new("acme", "PMANAGER", Role::Manager);
    let t = kr
        .create_scoped_token(&manager, "closer", &["incidents.write", "services.write"])
        .unwrap();
    let token = t.secret().expose();
    kr.authenticate(token, &post("services.write")).unwrap();
    // Demoted to responder: the token keeps what a responder may still do.
    kr.set_user_role("acme", "PMANAGER", Role::Responder)
        .unwrap();
    kr.authenticate(token, &post("incidents.write")).unwrap();
    let e = kr.authenticate(token, &post("services.write")).unwrap_err();
    assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
    // Promoted again: back.
    kr.set_user_role("acme", "PMANAGER", Role::Manager).unwrap();
    kr.authenticate(token, &post("services.write")).unwrap();
    // Removed: the token stops at once and is disabled, and stays so.
    assert_eq!(kr.remove_user("acme", "PMANAGER").unwrap(), 1);
    let e = kr.authenticate(token, &get("incidents.read")).unwrap_err();
    assert_eq!(e.http_status(), 401);
    let admin = Actor::new("acme", "PADMIN", Role::Admin);
    let rec = kr.get(&admin, &t.record().id.to_string()).unwrap();
    assert_eq!(rec.disabled.unwrap().by.as_str(), "system:offboarding");
    kr.set_user_role("acme", "PMANAGER", Role::Manager).unwrap();
    assert_eq!(
        kr.authenticate(token, &get("incidents.read"))
            .unwrap_err()
            .http_status(),
        401
    );
}

#[test]
fn a_stale_actor_never_raises_a_stored_role() {
    let kr = Keyring::new(MemoryStore::new());
    let resp = Actor::new("acme", "PRESP", Role::Responder);
    let old = kr.create_user_token(&resp, "old").unwrap();
    kr.set_user_role("acme", "PRESP", Role::Observer).unwrap();
    // The application still holds an actor saying "owner".
    let stale = Actor::new("acme", "PRESP", Role::Owner);
    let new = kr.create_user_token(&stale, "new").unwrap();
    assert_eq!(
        kr.user("acme", "PRESP").unwrap(),
        Some(UserState {
            role: Role::Observer,
            removed: false
        })
    );
    for t in [&old, &new] {
        let e = kr
            .authenticate(t.secret().expose(), &post("incidents.write"))
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden { .. }), "{e:?}");
        let p = kr
            .authenticate(t.secret().expose(), &get("incidents.read"))
            .unwrap();
        assert_eq!(p.role(), Some(Role::Observer));
    }
    // Every other management call is decided on the stored role too.
    assert!(matches!(
        kr.create_general_key(&stale, "x", AccessLevel::FullAccess),
        Err(Error::NotPermitted { .. })
    ));
    assert!(matches!(
        kr.create_scoped_token(&stale, "x", &["incidents.read"]),
        Err(Error::NotPermitted { .. })
    ));
    assert_eq!(kr.list(&stale).unwrap().len(), 2, "only their own tokens");
}

#[test]
fn a_removed_user_can_do_nothing_and_a_never_seen_one_stays_out() {
    let kr = Keyring::new(MemoryStore::new());
    let admin = Actor::new("acme", "PADMIN", Role::Admin);
    let g = kr
        .create_general_key(&admin, "ci", AccessLevel::FullAccess)
        .unwrap();
    kr.remove_user("acme", "PADMIN").unwrap();
    let id = g.record().id.to_string();
    for result in [
        kr.create_general_key(&admin, "x", AccessLevel::FullAccess)
            .map(|_| ()),
        kr.create_user_token(&admin, "x").map(|_| ()),
        kr.disable(&admin, &id).map(|_| ()),
        kr.delete(&admin, &id).map(|_| ()),
        kr.list(&admin).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::NotPermitted { .. })),
            "{result:?}"
        );
    }
    // General keys belong to the account: the admin's removal leaves them working.
    kr.authenticate(g.secret().expose(), &Request::rest("GET"))
        .unwrap();
    // Offboarding a user the keyring never saw still keeps them out.
    kr.remove_user("acme", "PGHOST").unwrap();
    let ghost = Actor::new("acme", "PGHOST", Role::Owner);
    assert!(matches!(
        kr.create_user_token(&ghost, "x"),
        Err(Error::NotPermitted { .. })
    ));
}
