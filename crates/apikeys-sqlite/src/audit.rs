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
    // Its webhook events, in the same transaction (docs/webhooks.md).
    crate::outbox::write_events(conn, event)
}

/// Add `event` to the trail if there is one to add.
pub(crate) fn write_some(conn: &Connection, event: Option<&AuditEvent>) -> Result<(), StoreError> {
    match event {
        Some(e) => write_audit(conn, e),
        None => Ok(()),
    }
}

/// A page's ids, then its records. The ids come from one covering index
/// read over the window only (`apikeys_audit_account`: account, at, actor,
/// action and the rowid; `apikeys_audit_key`: the same with the key id after
/// the account, when a key is asked for), and only the page's own rows are
/// read from the table: a page costs the account's (or key's) records in the
/// window, however long the trail is and however far back the window lies.
/// Sorting the window's ids is the price of that: a 31-day window of an
/// account with tens of thousands of records in it is the slowest page
/// (docs/performance.md, "Rotation and the audit trail").
macro_rules! page_sql {
    ($key:literal) => {
        concat!(
            "SELECT id, event FROM apikeys_audit WHERE id IN (
                SELECT id FROM apikeys_audit
                WHERE account = ?1 AND at >= ?2 AND at < ?3",
            $key,
            "
                  AND (?5 IS NULL OR actor = ?5)
                  AND (?6 IS NULL OR id < ?6)
                  AND (?7 IS NULL OR action IN (SELECT value FROM json_each(?7)))
                ORDER BY id DESC
                LIMIT ?8)
             ORDER BY id DESC"
        )
    };
}

/// A page of an account's records (`?4`, the key, is not asked for).
pub(crate) const PAGE_SQL: &str = page_sql!("");
/// A page of one key's records: a query of its own, so the key's index is used.
pub(crate) const KEY_PAGE_SQL: &str = page_sql!(" AND key_id = ?4");

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
    let sql = if w.key_id.is_some() {
        KEY_PAGE_SQL
    } else {
        PAGE_SQL
    };
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
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
    let mut out = Vec::with_capacity(w.limit + 1);
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

#[cfg(test)]
mod tests {
    use super::{KEY_PAGE_SQL, PAGE_SQL};

    /// What SQLite plans for `sql`, one step a line.
    fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let steps = st
            .query_map([rusqlite::types::Null; 8], |r| r.get::<_, String>(3))
            .expect("explain")
            .map(|s| s.expect("step"))
            .collect::<Vec<_>>();
        steps.join("\n")
    }

    /// Pages read the window from a covering index (never the whole
    /// account, never the table but for the page's own rows).
    #[test]
    fn pages_read_the_window_from_a_covering_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = rusqlite::Connection::open(dir.path().join("plan.db")).expect("open");
        crate::schema::migrate(&mut conn).expect("migrate");
        for (sql, index) in [
            (PAGE_SQL, "apikeys_audit_account"),
            (KEY_PAGE_SQL, "apikeys_audit_key"),
        ] {
            let p = plan(&conn, sql);
            assert!(
                p.contains(&format!("COVERING INDEX {index} (account=? AND"))
                    && p.contains("at>? AND at<?)"),
                "{p}"
            );
            assert!(p.contains("USING INTEGER PRIMARY KEY (rowid=?)"), "{p}");
            assert!(!p.contains("SCAN apikeys_audit"), "{p}");
        }
    }
}
