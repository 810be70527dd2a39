//! The durable audit trail: rows of `apikeys_audit`, written in the
//! transaction of the change they record (docs/stores.md, "Audit trail").

use apikeys::store::rows::{self, id_value, millis};
use apikeys::{AuditEvent, AuditPage, AuditWindow, StoreError, Timestamp};
use rusqlite::{Connection, params};

use crate::{SQLITE, unavailable};

/// Add `event` to the trail, inside the caller's transaction.
pub(crate) fn write_audit(conn: &Connection, event: &AuditEvent) -> Result<(), StoreError> {
    let json = serde_json::to_string(event)
        .map_err(|e| rows::corrupt(SQLITE, "cannot encode an audit record", e))?;
    conn.prepare_cached(
        "INSERT INTO apikeys_audit (account, at, actor, action, key_id, event)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(unavailable)?
    .execute(params![
        event.account,
        millis(event.at),
        event.actor,
        event.action.as_str(),
        event.key_id.map(id_value),
        json
    ])
    .map_err(unavailable)?;
    Ok(())
}

/// Add `event` to the trail if there is one to add.
pub(crate) fn write_some(conn: &Connection, event: Option<&AuditEvent>) -> Result<(), StoreError> {
    match event {
        Some(e) => write_audit(conn, e),
        None => Ok(()),
    }
}

/// One page of the trail, newest first.
pub(crate) fn page(conn: &Connection, w: &AuditWindow) -> Result<AuditPage, StoreError> {
    let actions = (!w.actions.is_empty()).then(|| {
        serde_json::Value::Array(
            w.actions
                .iter()
                .map(|a| serde_json::Value::String(a.as_str().to_owned()))
                .collect(),
        )
        .to_string()
    });
    let before = w.before_id.map(|b| b.min(i64::MAX as u64) as i64);
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, event FROM apikeys_audit
             WHERE account = ?1 AND at >= ?2 AND at < ?3
               AND (?4 IS NULL OR key_id = ?4)
               AND (?5 IS NULL OR actor = ?5)
               AND (?6 IS NULL OR id < ?6)
               AND (?7 IS NULL OR action IN (SELECT value FROM json_each(?7)))
             ORDER BY id DESC
             LIMIT ?8",
        )
        .map_err(unavailable)?;
    let found = stmt
        .query_map(
            params![
                w.account,
                millis(w.since),
                millis(w.until),
                w.key_id.map(id_value),
                w.actor,
                before,
                actions,
                (w.limit + 1) as i64
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .map_err(unavailable)?;
    let mut out = Vec::new();
    for row in found {
        let (id, json) = row.map_err(unavailable)?;
        let mut e: AuditEvent = serde_json::from_str(&json)
            .map_err(|e| rows::corrupt(SQLITE, "cannot decode an audit record", e))?;
        e.id = id as u64;
        out.push(e);
    }
    Ok(w.page(out))
}

/// Delete the records written before `before`.
pub(crate) fn prune(conn: &Connection, before: Timestamp) -> Result<usize, StoreError> {
    conn.execute("DELETE FROM apikeys_audit WHERE at < ?1", [millis(before)])
        .map_err(unavailable)
}
