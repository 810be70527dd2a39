//! The audit trail (one event per management call) and the absence of keys
//! from every error, `Debug` output, audit event and serialized record.

use apikeys::{
    AccessLevel, AccountSettings, Actor, AuditAction, AuditOutcome, Error, KeyKind, Keyring,
    NewKey, Request, Role, Timestamp,
};

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

#[test]
fn every_management_call_leaves_exactly_one_event() {
    let kr = Keyring::default();
    let observer = Actor::new("acme", "POBS", Role::Observer);
    let mut expected = Vec::new();

    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let id = k.record().id.to_string();
    expected.push((AuditAction::Create, true));
    assert!(
        kr.create_general_key(&observer, "nope", AccessLevel::FullAccess)
            .is_err()
    );
    expected.push((AuditAction::Create, false));
    assert!(
        kr.create_general_key(&admin(), "", AccessLevel::FullAccess)
            .is_err()
    );
    expected.push((AuditAction::Create, false));
    kr.list(&admin()).unwrap();
    expected.push((AuditAction::List, true));
    kr.get(&admin(), &id).unwrap();
    expected.push((AuditAction::Get, true));
    kr.disable(&admin(), &id).unwrap();
    expected.push((AuditAction::Disable, true));
    assert!(kr.enable(&observer, &id).is_err());
    expected.push((AuditAction::Enable, false));
    kr.enable(&admin(), &id).unwrap();
    expected.push((AuditAction::Enable, true));
    assert!(kr.delete(&admin(), "not-an-id").is_err());
    expected.push((AuditAction::Delete, false));
    kr.delete(&admin(), &id).unwrap();
    expected.push((AuditAction::Delete, true));
    kr.set_account("acme", AccountSettings::default()).unwrap();
    expected.push((AuditAction::SetAccount, true));
    kr.set_user_role("acme", "PUSER", Role::Observer).unwrap();
    expected.push((AuditAction::SetUserRole, true));
    kr.remove_user("acme", "PUSER").unwrap();
    expected.push((AuditAction::RemoveUser, true));
    assert!(
        kr.set_user_role("acme", "bad user", Role::Observer)
            .is_err()
    );
    expected.push((AuditAction::SetUserRole, false));
    // Authentication is not a management call: no event.
    let _ = kr.authenticate(k.secret().expose(), &Request::rest("GET"));

    let trail = kr.audit_trail();
    let got: Vec<_> = trail
        .iter()
        .map(|e| (e.action, e.outcome == AuditOutcome::Allowed))
        .collect();
    assert_eq!(got, expected);

    let refused = &trail[1];
    assert_eq!(
        (refused.actor.as_str(), refused.actor_role),
        ("POBS", Some(Role::Observer))
    );
    match &refused.outcome {
        AuditOutcome::Refused { error, reason } => {
            assert_eq!(error, "not_permitted");
            assert!(reason.contains("observer"), "{reason}");
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(trail[0].key_id, Some(k.record().id));
    assert_eq!(trail[0].key_kind, Some(KeyKind::General));
    assert_eq!(trail[11].subject_user.as_deref(), Some("PUSER"));
    assert_eq!(trail[11].actor, "system");
}

#[test]
fn deleting_another_users_token_names_them_in_the_event() {
    let kr = Keyring::default();
    let t = kr
        .create_user_token(&Actor::new("acme", "PBOB", Role::Responder), "bob")
        .unwrap();
    kr.delete(&admin(), &t.record().id.to_string()).unwrap();
    let ev = kr.audit_trail().pop().unwrap();
    assert_eq!(
        (ev.action, ev.subject_user.as_deref()),
        (AuditAction::Delete, Some("PBOB"))
    );
}

/// Run a scenario touching every kind and every failure, gather every error
/// message, `Debug` output, audit event and serialized record, and look for
/// the keys (and any 8-character piece of them) in all of it.
#[test]
fn keys_appear_in_no_error_debug_audit_event_or_serialized_record() {
    let kr = Keyring::default();
    let manager = Actor::new("acme", "PMGR", Role::Manager);
    let responder = Actor::new("acme", "PRESP", Role::Responder);
    let future = Timestamp::now().saturating_add(std::time::Duration::from_secs(3600));
    let issued = vec![
        kr.create_general_key(&admin(), "ro", AccessLevel::ReadOnly)
            .unwrap(),
        kr.create(
            &admin(),
            NewKey::general("full", AccessLevel::FullAccess).expires_at(future),
        )
        .unwrap(),
        kr.create_user_token(&responder, "laptop").unwrap(),
        kr.create_integration_key(&manager, "PSVC", "datadog")
            .unwrap(),
        kr.create_routing_key(&manager, "orch", "all").unwrap(),
        kr.create_scoped_token(&manager, "closer", &["incidents.write"])
            .unwrap(),
    ];
    let mut text = Vec::new();
    for k in &issued {
        let s = k.secret().expose();
        text.push(format!("{k:?}"));
        text.push(format!("{:?}", k.secret()));
        text.push(format!("{:#?}", k.record()));
        text.push(serde_json::to_string(k.record()).unwrap());
        for req in [
            Request::rest("POST").with_scope("users.write").unwrap(),
            Request::events(),
            Request::rest("GET"),
        ] {
            match kr.authenticate(s, &req) {
                Ok(p) => text.push(format!("{p:?}")),
                Err(e) => {
                    text.push(e.to_string());
                    text.push(format!("{e:?}"));
                    text.push(e.reason());
                }
            }
        }
        // A near miss: the key with its last character changed.
        let mut near = s.to_owned();
        near.pop();
        near.push(if s.ends_with('0') { '1' } else { '0' });
        let e = kr.authenticate(&near, &Request::rest("GET")).unwrap_err();
        text.push(format!("{e} {e:?} {}", e.reason()));
        // Keys passed where ids are expected.
        let e = kr.get(&admin(), s).unwrap_err();
        text.push(format!("{e} {e:?}"));
        let e = kr.delete(&admin(), s).unwrap_err();
        text.push(format!("{e} {e:?}"));
        // A key passed as a description or a scope.
        if let Err(e) = kr.create_scoped_token(&manager, "x", &[s]) {
            text.push(format!("{e} {e:?}"));
        }
        let e: Error = s.parse::<apikeys::KeyId>().unwrap_err();
        text.push(format!("{e} {e:?}"));
        let e = Role::parse(s).unwrap_err();
        text.push(format!("{e} {e:?}"));
    }
    for id in issued.iter().map(|k| k.record().id.to_string()) {
        let _ = kr.disable(&admin(), &id);
        let _ = kr.delete(&admin(), &id);
    }
    for r in kr.list(&admin()).unwrap() {
        text.push(serde_json::to_string(&r).unwrap());
    }
    for ev in kr.audit_trail() {
        text.push(format!("{ev:?}"));
        text.push(serde_json::to_string(&ev).unwrap());
    }
    text.push(format!("{kr:?}"));
    let all = text.join("\n");
    assert!(
        all.len() > 5_000,
        "the scenario produced too little text to mean anything"
    );
    for k in &issued {
        let s = k.secret().expose();
        for w in s.as_bytes().windows(8) {
            let piece = std::str::from_utf8(w).unwrap();
            assert!(
                !all.contains(piece),
                "a piece of a {} key leaked: {piece}",
                k.record().kind
            );
        }
    }
}

/// A key pasted where an account or user id goes must not land in the audit trail.
#[test]
fn keys_passed_as_ids_are_redacted_in_the_audit_trail() {
    let kr = Keyring::default();
    let k = kr
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let s = k.secret().expose();
    let _ = kr.list(&Actor::new(s, "PUSER", Role::Admin));
    let _ = kr.list(&Actor::new("acme", s, Role::Admin));
    let _ = kr.set_user_role("acme", s, Role::Observer);
    let _ = kr.remove_user(s, "PUSER");
    let _ = kr.list(&Actor::new("bad account\n", "PUSER", Role::Admin));
    let trail = kr.audit_trail();
    let text = format!("{trail:?} {}", serde_json::to_string(&trail).unwrap());
    assert!(!text.contains(s), "a key reached the audit trail");
    assert!(text.contains("(redacted)") && text.contains("(invalid)"));
    // Ordinary ids are kept as they are.
    assert!(trail.iter().any(|e| e.actor == "PUSER"));
}
