//! The durable audit trail: rows of `apikeys_audit`, written in the
//! transaction of the change they record (docs/stores.md, "Audit trail").

use std::collections::HashMap;

use apikeys::store::rows::{self, id_value, millis};
use apikeys::{AuditEvent, AuditPage, AuditWindow, StoreError, Timestamp};
use postgres::{Statement, Transaction};

use crate::pool::Conn;
use crate::pool::prepared;
use crate::{POSTGRES, pg};

/// Taken before an id is drawn, held until commit: ids increase in commit
/// order, so a reader paging down by id never passes a record that commits later.
const AUDIT_LOCK: &str = "SELECT pg_advisory_xact_lock(7311529024145164)";

/// Add `event` to the trail, inside the caller's transaction (its last statement).
pub(crate) fn write_audit(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(event)
        .map_err(|e| rows::corrupt(POSTGRES, "cannot encode an audit record", e))?;
    let lock = prepared(tx, st, AUDIT_LOCK)?;
    tx.execute(&lock, &[]).map_err(pg)?;
    let s = prepared(
        tx,
        st,
        "INSERT INTO apikeys_audit (account, at, actor, action, key_id, event)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    tx.execute(
        &s,
        &[
            &event.account,
            &millis(event.at),
            &event.actor,
            &event.action.as_str(),
            &event.key_id.map(id_value),
            &json,
        ],
    )
    .map_err(pg)?;
    Ok(())
}

/// Add `event` to the trail if there is one to add.
pub(crate) fn write_some(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    event: Option<&AuditEvent>,
) -> Result<(), StoreError> {
    match event {
        Some(e) => write_audit(tx, st, e),
        None => Ok(()),
    }
}

const PAGE_SQL: &str = "
    SELECT id, event FROM apikeys_audit
    WHERE account = $1 AND at >= $2 AND at < $3
      AND ($4::bigint IS NULL OR key_id = $4)
      AND ($5::text IS NULL OR actor = $5)
      AND ($6::bigint IS NULL OR id < $6)
      AND ($7::text[] IS NULL OR action = ANY ($7))
    ORDER BY id DESC
    LIMIT $8";

/// One page of the trail, newest first.
pub(crate) fn page(conn: &mut Conn, w: &AuditWindow) -> Result<AuditPage, postgres::Error> {
    let actions: Option<Vec<&str>> =
        (!w.actions.is_empty()).then(|| w.actions.iter().map(|a| a.as_str()).collect());
    let before = w.before_id.map(|b| b.min(i64::MAX as u64) as i64);
    let rows = conn.query(
        PAGE_SQL,
        &[
            &w.account,
            &millis(w.since),
            &millis(w.until),
            &w.key_id.map(id_value),
            &w.actor,
            &before,
            &actions,
            &((w.limit + 1) as i64),
        ],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.get(0);
        let json: &str = row.get(1);
        match serde_json::from_str::<AuditEvent>(json) {
            Ok(mut e) => {
                e.id = id as u64;
                out.push(e);
            }
            // A row this version cannot read is left out rather than failing the page.
            Err(_) => continue,
        }
    }
    Ok(w.page(out))
}

/// Delete the records written before `before`.
pub(crate) fn prune(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    before: Timestamp,
) -> Result<usize, StoreError> {
    let s = prepared(tx, st, "DELETE FROM apikeys_audit WHERE at < $1")?;
    tx.execute(&s, &[&millis(before)])
        .map(|n| n as usize)
        .map_err(pg)
}
