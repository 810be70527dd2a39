//! The webhook outbox (docs/webhooks.md): events written in the transaction
//! of their change ([`write_events`], called with the audit record), and the
//! [`Outbox`] delivery workers drain. Workers of several processes share it:
//! a claim takes due rows `FOR UPDATE SKIP LOCKED` and leases them
//! (`lease`, `locked_until`), so no two claims hold the same row at once.

use std::collections::HashMap;
use std::time::Duration;

use apikeys::store::rows::{self, id_value, millis};
use apikeys::webhooks::{
    Claimed, Finish, Outbox, OutboxColumns, OutboxRow, OutboxStatus, WebhookEvent, encode_names,
    events_for, expiring_due, expiring_event, lease_until, new_lease,
};
use apikeys::{AuditEvent, StoreError, Timestamp};
use postgres::{GenericClient, Row, Statement, Transaction};

use crate::pool::prepared;
use crate::{Inner, POSTGRES, PostgresStore, pg};

const ENABLED_SQL: &str = "SELECT enabled FROM apikeys_outbox_settings WHERE id = 1";

const INSERT_SQL: &str =
    "INSERT INTO apikeys_outbox (event_id, type, account, key_id, at, payload, next_at)
     VALUES ($1, $2, $3, $4, $5, $6, $5)";

fn insert_event(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    e: &WebhookEvent,
) -> Result<(), StoreError> {
    let s = prepared(tx, st, INSERT_SQL)?;
    tx.execute(
        &s,
        &[
            &e.id,
            &e.event_type.as_str(),
            &e.account,
            &e.key_id.map(id_value),
            &millis(e.at),
            &e.payload,
        ],
    )
    .map_err(pg)?;
    Ok(())
}

fn enabled(client: &mut impl GenericClient) -> Result<bool, StoreError> {
    Ok(client
        .query_opt(ENABLED_SQL, &[])
        .map_err(pg)?
        .is_some_and(|r| r.get::<_, bool>(0)))
}

/// Write the events `audit`'s change makes ([`events_for`]) into the outbox,
/// inside the caller's transaction (the change's), when the outbox is on.
pub(crate) fn write_events(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<&'static str, Statement>,
    audit: &AuditEvent,
) -> Result<(), StoreError> {
    let events = events_for(audit);
    if events.is_empty() {
        return Ok(());
    }
    let s = prepared(tx, st, ENABLED_SQL)?;
    let on = tx
        .query_opt(&s, &[])
        .map_err(pg)?
        .is_some_and(|r| r.get::<_, bool>(0));
    if !on {
        return Ok(());
    }
    events.iter().try_for_each(|e| insert_event(tx, st, e))
}

const ROW_COLUMNS: &str = "seq, event_id, type, account, key_id, at, payload, status, attempts, \
                           next_at, delivered_to, last_error";

fn columns(r: &Row) -> OutboxColumns {
    OutboxColumns {
        seq: r.get(0),
        event_id: r.get(1),
        event_type: r.get(2),
        account: r.get(3),
        key_id: r.get(4),
        at: r.get(5),
        payload: r.get(6),
        status: r.get(7),
        attempts: i64::from(r.get::<_, i32>(8)),
        next_at: r.get(9),
        delivered_to: r.get(10),
        last_error: r.get(11),
    }
}

impl Inner {
    /// One transaction for the outbox alone: it changes no key, so the
    /// lookup cache is not fenced.
    fn outbox_write<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction().map_err(pg)?;
        let out = f(&mut tx)?;
        tx.commit().map_err(pg)?;
        Ok(out)
    }
}

impl PostgresStore {
    /// Turn the outbox on or off **for the database** (every process writing
    /// to it, from its next write): on, every change that makes webhook events
    /// writes them into the outbox in its own transaction. Off, none are
    /// written (those already there stay).
    pub fn set_outbox(&self, on: bool) -> Result<(), StoreError> {
        self.inner.outbox_write(|tx| {
            tx.execute(
                "UPDATE apikeys_outbox_settings SET enabled = $1 WHERE id = 1",
                &[&on],
            )
            .map_err(pg)?;
            Ok(())
        })
    }
}

impl Outbox for PostgresStore {
    fn outbox_enabled(&self) -> Result<bool, StoreError> {
        let mut conn = self.inner.conn()?;
        enabled(&mut conn.client)
    }

    fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let token = new_lease();
        let until = lease_until(now, lease);
        let sql = format!(
            "WITH due AS (
                 SELECT seq FROM apikeys_outbox
                 WHERE status = 'pending' AND next_at <= $3
                   AND (locked_until IS NULL OR locked_until <= $3)
                 ORDER BY seq LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE apikeys_outbox o
             SET lease = $1, locked_until = $2, attempts = o.attempts + 1
             FROM due WHERE o.seq = due.seq
             RETURNING {}",
            ROW_COLUMNS
                .split(", ")
                .map(|c| format!("o.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = self.inner.outbox_write(|tx| {
            tx.query(
                &sql,
                &[
                    &token,
                    &millis(until),
                    &millis(now),
                    &(limit.min(10_000) as i64),
                ],
            )
            .map_err(pg)
        })?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    row: columns(r).decode(POSTGRES)?,
                    lease: token.clone(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|c| c.row.seq);
        Ok(out)
    }

    fn finish(&self, claimed: &Claimed, how: &Finish, _now: Timestamp) -> Result<bool, StoreError> {
        let (status, delivered_to, next_at, error) = how.columns();
        self.inner.outbox_write(|tx| {
            let n = tx
                .execute(
                    "UPDATE apikeys_outbox
                     SET status = $3, delivered_to = $4, next_at = coalesce($5, next_at),
                         last_error = $6, lease = NULL, locked_until = NULL
                     WHERE seq = $1 AND lease = $2",
                    &[
                        &(claimed.row.seq as i64),
                        &claimed.lease,
                        &status,
                        &encode_names(delivered_to),
                        &next_at.map(millis),
                        &error,
                    ],
                )
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    fn enqueue_expiring(&self, now: Timestamp, ahead: Duration) -> Result<usize, StoreError> {
        let until = now.saturating_add(ahead);
        self.inner.outbox_write(|tx| {
            if !enabled(tx)? {
                return Ok(0);
            }
            let due = tx
                .query(
                    "SELECT record, last_used_at FROM apikeys_keys
                     WHERE (record::jsonb ->> 'expires_at')::bigint > $1
                       AND (record::jsonb ->> 'expires_at')::bigint <= $2",
                    &[&millis(now), &millis(until)],
                )
                .map_err(pg)?;
            let mut n = 0;
            let mut st = HashMap::new();
            for row in due {
                let json: String = row.get(0);
                let used: Option<i64> = row.get(1);
                let r = rows::decode_record(POSTGRES, &json, used)?;
                let (true, Some(exp)) = (expiring_due(&r, now, ahead), r.expires_at) else {
                    continue;
                };
                // Concurrent scans by other workers wait on this row's
                // insert and then do nothing: one notice per key and expiry.
                let fresh = tx
                    .execute(
                        "INSERT INTO apikeys_outbox_expiring (key_id, expires_at)
                         VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&id_value(r.id), &millis(exp)],
                    )
                    .map_err(pg)?;
                if fresh == 1 {
                    insert_event(tx, &mut st, &expiring_event(&r, now))?;
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
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM apikeys_outbox
             WHERE ($1::text IS NULL OR status = $1) ORDER BY seq LIMIT $2"
        );
        let mut conn = self.inner.conn()?;
        let rows = conn
            .client
            .query(
                &sql,
                &[
                    &status.map(OutboxStatus::as_str),
                    &(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .map_err(pg)?;
        rows.iter().map(|r| columns(r).decode(POSTGRES)).collect()
    }

    fn prune_delivered(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.outbox_write(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM apikeys_outbox WHERE status = 'delivered' AND at < $1",
                    &[&millis(before)],
                )
                .map_err(pg)?;
            Ok(n as usize)
        })
    }
}
