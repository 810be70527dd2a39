//! What the API says about a key: never its digest, never the key (only
//! the answer that makes one holds it, once).

use apikeys::{AccessLevel, Action, KeyKind, KeyRecord, Permissions, Timestamp};
use serde_json::{Map, Value, json};

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// One key's record as the API shows it (PagerDuty-like names).
pub(crate) fn key(r: &KeyRecord, now: Timestamp) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id.to_string()));
    m.insert("type".into(), json!(r.kind.as_str()));
    m.insert("summary".into(), json!(r.description.as_ref()));
    m.insert("description".into(), json!(r.description.as_ref()));
    m.insert("access_level".into(), json!(r.access.as_str()));
    m.insert("read_only".into(), json!(r.access == AccessLevel::ReadOnly));
    m.insert("api_version".into(), json!(r.api_version.as_str()));
    m.insert("created_at".into(), time(Some(r.created_at)));
    m.insert("created_by".into(), json!(r.created_by.as_str()));
    m.insert("owner".into(), json!(r.owner.as_deref()));
    let target = r.target.as_deref();
    match r.kind {
        KeyKind::Integration => m.insert("service_id".into(), json!(target)),
        KeyKind::Routing => m.insert("orchestration_id".into(), json!(target)),
        _ => None,
    };
    if r.kind == KeyKind::Scoped {
        let scopes: Vec<String> = r.scopes.iter().map(ToString::to_string).collect();
        m.insert("scopes".into(), json!(scopes));
    }
    m.insert("disabled".into(), json!(r.disabled.is_some()));
    m.insert(
        "disabled_by".into(),
        json!(r.disabled.as_ref().map(|d| d.by.as_str())),
    );
    m.insert(
        "disabled_at".into(),
        time(r.disabled.as_ref().map(|d| d.at)),
    );
    m.insert("last_used_at".into(), time(r.last_used_at));
    m.insert(
        "last_used_from".into(),
        r.last_used_from.as_ref().map_or(
            Value::Null,
            |p| json!({ "remote_address": p.remote_address, "method": p.method, "path": p.path }),
        ),
    );
    m.insert("expires_at".into(), time(r.expires_at));
    m.insert("expired".into(), json!(r.is_expired(now)));
    m.insert("hint".into(), json!(r.hint.as_str()));
    m.insert(
        "rotation".into(),
        r.rotation.as_ref().map_or(Value::Null, |rot| {
            json!({
                "rotated_from": rot.rotated_from.map(|i| i.to_string()),
                "rotated_to": rot.rotated_to.map(|i| i.to_string()),
                "rotated_at": time(rot.rotated_at),
                "overlap_until": time(rot.overlap_until),
                "successor_used_at": time(rot.successor_used_at),
                "overlapping": rot.overlapping(now, r.last_used_at),
                "works": rot.works_at(now, r.last_used_at),
            })
        }),
    );
    Value::Object(m)
}

/// What the actor may do ([`Permissions`]), for the page's buttons.
pub(crate) fn permissions(actor: &apikeys::Actor, p: &Permissions) -> Value {
    let names = |a: &[Action]| -> Vec<&'static str> { a.iter().map(|a| a.as_str()).collect() };
    let mut keys = Map::new();
    for (kind, actions) in &p.keys {
        keys.insert(kind.as_str().into(), json!(names(actions)));
    }
    json!({
        "user": {
            "account": actor.account,
            "id": actor.user,
            "role": p.role.map(|r| r.as_str()),
        },
        "may": {
            "keys": keys,
            "others_tokens": names(&p.others_tokens),
            "audit_records": p.audit_records,
        },
    })
}
