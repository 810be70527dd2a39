//! The webhook outbox (docs/webhooks.md): events written in the transaction
//! of their change ([`write_events`], called with the audit record), and the
//! [`Outbox`] a delivery worker drains. One writer at a time: every claim and
//! every finish is a `BEGIN IMMEDIATE` transaction on the writer connection.

use std::time::Duration;

use apikeys::store::rows::{self, id_value, millis};
use apikeys::webhooks::{
    Claimed, Finish, Outbox, OutboxColumns, OutboxRow, OutboxStatus, WebhookEvent, encode_names,
    events_for, expiring_due, expiring_event, lease_until, new_lease,
};
use apikeys::{AuditEvent, StoreError, Timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{Inner, SQLITE, SqliteStore, lock, unavailable};

const ROW_COLUMNS: &str = "seq, event_id, type, account, key_id, at, payload, status, attempts, \
                           next_at, delivered_to, last_error";

/// Whether the file's outbox is on.
fn enabled(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT enabled FROM apikeys_outbox_settings WHERE id = 1")
        .map_err(unavailable)?
        .query_row([], |r| r.get::<_, bool>(0))
        .optional()
        .map_err(unavailable)?
        .unwrap_or(false))
}

fn insert_event(conn: &Connection, e: &WebhookEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO apikeys_outbox (event_id, type, account, key_id, at, payload, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
    )
    .map_err(unavailable)?
    .execute(params![
        e.id,
        e.event_type.as_str(),
        e.account,
        e.key_id.map(id_value),
        millis(e.at),
        e.payload
    ])
    .map_err(unavailable)?;
    Ok(())
}

/// Write the events `audit`'s change makes ([`events_for`]) into the outbox,
/// inside the caller's transaction (the change's), when the outbox is on.
pub(crate) fn write_events(conn: &Connection, audit: &AuditEvent) -> Result<(), StoreError> {
    let events = events_for(audit);
    if events.is_empty() || !enabled(conn)? {
        return Ok(());
    }
    events.iter().try_for_each(|e| insert_event(conn, e))
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxColumns> {
    Ok(OutboxColumns {
        seq: r.get(0)?,
        event_id: r.get(1)?,
        event_type: r.get(2)?,
        account: r.get(3)?,
        key_id: r.get(4)?,
        at: r.get(5)?,
        payload: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        next_at: r.get(9)?,
        delivered_to: r.get(10)?,
        last_error: r.get(11)?,
    })
}

impl Inner {
    /// One `BEGIN IMMEDIATE` transaction for the outbox alone: it changes no
    /// key, so the lookup cache is not fenced.
    fn outbox_write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        self.wal_check()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let out = f(&tx)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}

impl SqliteStore {
    /// Turn the outbox on or off **for the file** (every process writing to
    /// it, from its next write): on, every change that makes webhook events
    /// writes them into the outbox in its own transaction. Off, none are
    /// written (those already there stay).
    pub fn set_outbox(&self, on: bool) -> Result<(), StoreError> {
        self.inner.outbox_write(|tx| {
            tx.execute(
                "UPDATE apikeys_outbox_settings SET enabled = ?1 WHERE id = 1",
                [on],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }
}

impl Outbox for SqliteStore {
    fn outbox_enabled(&self) -> Result<bool, StoreError> {
        enabled(&*self.inner.reader()?)
    }

    fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let token = new_lease();
        let until = lease_until(now, lease);
        let mut rows = self.inner.outbox_write(|tx| {
            let sql = format!(
                "UPDATE apikeys_outbox SET lease = ?1, locked_until = ?2, attempts = attempts + 1
                 WHERE seq IN (
                     SELECT seq FROM apikeys_outbox
                     WHERE status = 'pending' AND next_at <= ?3
                       AND (locked_until IS NULL OR locked_until <= ?3)
                     ORDER BY seq LIMIT ?4)
                 RETURNING {ROW_COLUMNS}"
            );
            let mut stmt = tx.prepare_cached(&sql).map_err(unavailable)?;
            let raw = stmt
                .query_map(
                    params![token, millis(until), millis(now), limit.min(10_000) as i64],
                    read_row,
                )
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(raw)
        })?;
        rows.sort_by_key(|r| r.seq);
        rows.into_iter()
            .map(|r| {
                Ok(Claimed {
                    row: r.decode(SQLITE)?,
                    lease: token.clone(),
                })
            })
            .collect()
    }

    fn finish(&self, claimed: &Claimed, how: &Finish, _now: Timestamp) -> Result<bool, StoreError> {
        let (status, delivered_to, next_at, error) = how.columns();
        self.inner.outbox_write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE apikeys_outbox
                     SET status = ?3, delivered_to = ?4, next_at = coalesce(?5, next_at),
                         last_error = ?6, lease = NULL, locked_until = NULL
                     WHERE seq = ?1 AND lease = ?2",
                )
                .map_err(unavailable)?
                .execute(params![
                    claimed.row.seq as i64,
                    claimed.lease,
                    status,
                    encode_names(delivered_to),
                    next_at.map(millis),
                    error
                ])
                .map_err(unavailable)?;
            Ok(n == 1)
        })
    }

    fn enqueue_expiring(&self, now: Timestamp, ahead: Duration) -> Result<usize, StoreError> {
        let until = now.saturating_add(ahead);
        self.inner.outbox_write(|tx| {
            if !enabled(tx)? {
                return Ok(0);
            }
            let due = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT record, last_used_at FROM apikeys_keys
                         WHERE json_extract(record, '$.expires_at') > ?1
                           AND json_extract(record, '$.expires_at') <= ?2",
                    )
                    .map_err(unavailable)?;
                stmt.query_map(params![millis(now), millis(until)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?
            };
            let mut n = 0;
            for (json, used) in due {
                let r = rows::decode_record(SQLITE, &json, used)?;
                let (true, Some(exp)) = (expiring_due(&r, now, ahead), r.expires_at) else {
                    continue;
                };
                let fresh = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO apikeys_outbox_expiring (key_id, expires_at)
                         VALUES (?1, ?2)",
                    )
                    .map_err(unavailable)?
                    .execute(params![id_value(r.id), millis(exp)])
                    .map_err(unavailable)?;
                if fresh == 1 {
                    insert_event(tx, &expiring_event(&r, now))?;
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    fn outbox_rows(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.inner.reader()?;
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM apikeys_outbox
             WHERE (?1 IS NULL OR status = ?1) ORDER BY seq LIMIT ?2"
        );
        let raw = conn
            .prepare_cached(&sql)
            .map_err(unavailable)?
            .query_map(
                params![
                    status.map(OutboxStatus::as_str),
                    limit.min(i64::MAX as usize) as i64
                ],
                read_row,
            )
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        raw.into_iter().map(|r| r.decode(SQLITE)).collect()
    }

    fn prune_delivered(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.outbox_write(|tx| {
            tx.execute(
                "DELETE FROM apikeys_outbox WHERE status = 'delivered' AND at < ?1",
                [millis(before)],
            )
            .map_err(unavailable)
        })
    }
}
