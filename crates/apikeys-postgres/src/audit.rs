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
    // Its webhook events, in the same transaction (docs/webhooks.md).
    crate::outbox::write_events(tx, st, event)
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

/// A page's ids, then its records. The ids come from an index read over
/// the window only (`apikeys_audit_account`: account, at, then id, actor and
/// action to filter and sort in the index; `apikeys_audit_key`: the same with
/// the key id after the account, when a key is asked for), and only the
/// page's own rows are fetched: a page costs the account's (or key's)
/// records in the window, however long the trail is and however far back
/// the window lies. `OFFSET 0` keeps the window's read planned on its own:
/// without it the planner may walk the whole trail newest first by id,
/// expecting the account's records to turn up soon, which they do not when
/// the window lies in the past (0.4 s at 1,000,000 records). Two statements,
/// with and without the key, so that a prepared statement's plan always
/// fits its filters.
macro_rules! page_sql {
    ($key:literal) => {
        concat!(
            "SELECT id, event FROM apikeys_audit WHERE id IN (
                SELECT id FROM (
                    SELECT id FROM apikeys_audit
                    WHERE account = $1 AND at >= $2 AND at < $3",
            $key,
            "
                      AND ($4::text IS NULL OR actor = $4)
                      AND ($5::bigint IS NULL OR id < $5)
                      AND ($6::text[] IS NULL OR action = ANY ($6))
                    OFFSET 0) AS w
                ORDER BY id DESC
                LIMIT $7)
             ORDER BY id DESC"
        )
    };
}

/// A page of an account's records.
const PAGE_SQL: &str = page_sql!("");
/// A page of one key's records.
const KEY_PAGE_SQL: &str = page_sql!(" AND key_id = $8");

/// One page of the trail, newest first.
pub(crate) fn page(conn: &mut Conn, w: &AuditWindow) -> Result<AuditPage, postgres::Error> {
    let actions: Option<Vec<&str>> =
        (!w.actions.is_empty()).then(|| w.actions.iter().map(|a| a.as_str()).collect());
    let before = w.before_id.map(|b| b.min(i64::MAX as u64) as i64);
    let limit = (w.limit + 1) as i64;
    let since = millis(w.since);
    let until = millis(w.until);
    let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
        &w.account, &since, &until, &w.actor, &before, &actions, &limit,
    ];
    let key = w.key_id.map(id_value);
    let sql = match &key {
        Some(k) => {
            args.push(k);
            KEY_PAGE_SQL
        }
        None => PAGE_SQL,
    };
    let rows = conn.query(sql, &args)?;
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
