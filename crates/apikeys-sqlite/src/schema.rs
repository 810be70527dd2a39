//! The tables, their migrations, and the schema version check.

use apikeys::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use crate::unavailable;

/// The newest schema version this crate knows (SQLite's `user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// Migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE apikeys_keys (
        id           INTEGER PRIMARY KEY,  -- the key id's 64 bits
        digest       BLOB NOT NULL,
        account      TEXT NOT NULL,
        kind         TEXT NOT NULL,
        owner        TEXT,
        created_at   INTEGER NOT NULL,     -- unix milliseconds
        last_used_at INTEGER,              -- unix milliseconds
        record       TEXT NOT NULL         -- the KeyRecord as JSON, without last_used_at
    );
    CREATE UNIQUE INDEX apikeys_keys_digest ON apikeys_keys (digest);
    CREATE INDEX apikeys_keys_account ON apikeys_keys (account, created_at);
    CREATE TABLE apikeys_accounts (
        account              TEXT PRIMARY KEY,
        rest_api             INTEGER NOT NULL,
        advanced_permissions INTEGER NOT NULL
    );
    CREATE TABLE apikeys_users (
        account TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role    TEXT NOT NULL,
        removed INTEGER NOT NULL,
        PRIMARY KEY (account, user_id)
    );
",
    "
    -- The change log other processes read when the file's data_version moves:
    -- a changed or deleted key logs its digest; an account or user change logs
    -- NULL (anything may have changed). Written by triggers, so SQL by hand is
    -- logged too; last-use writes (only last_used_at) and inserts are not,
    -- as they cannot make a cached answer wrong. The newest 10,000 are kept.
    CREATE TABLE apikeys_changes (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        digest BLOB
    );
    CREATE TRIGGER apikeys_keys_updated AFTER UPDATE OF record, digest, account, owner
    ON apikeys_keys BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (old.digest);
    END;
    CREATE TRIGGER apikeys_keys_deleted AFTER DELETE ON apikeys_keys BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (old.digest);
    END;
    CREATE TRIGGER apikeys_accounts_inserted AFTER INSERT ON apikeys_accounts BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_accounts_updated AFTER UPDATE ON apikeys_accounts BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_accounts_deleted AFTER DELETE ON apikeys_accounts BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_users_inserted AFTER INSERT ON apikeys_users BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_users_updated AFTER UPDATE ON apikeys_users BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_users_deleted AFTER DELETE ON apikeys_users BEGIN
        INSERT INTO apikeys_changes (digest) VALUES (NULL);
    END;
    CREATE TRIGGER apikeys_changes_pruned AFTER INSERT ON apikeys_changes BEGIN
        DELETE FROM apikeys_changes WHERE seq <= new.seq - 10000;
    END;
",
    "
    -- The audit trail: one row per management call that changed something
    -- (written in the change's own transaction) or was refused. `id` orders
    -- the trail and is the cursor of its pages; the event is its JSON.
    CREATE TABLE apikeys_audit (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        at      INTEGER NOT NULL,  -- unix milliseconds
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        key_id  INTEGER,           -- the key id's 64 bits
        event   TEXT NOT NULL      -- the AuditEvent as JSON
    );
    -- A page is read over its window (account or key, then time), from
    -- the index alone but for the page's own rows: account and at bound
    -- the scan, actor and action are filtered in the index, the rowid (id)
    -- orders the page. `at` alone serves pruning.
    CREATE INDEX apikeys_audit_account ON apikeys_audit (account, at, actor, action);
    CREATE INDEX apikeys_audit_key ON apikeys_audit (account, key_id, at, actor, action);
    CREATE INDEX apikeys_audit_at ON apikeys_audit (at);
    -- Where a key was last used from (JSON), written with last_used_at and,
    -- like it, watched by no trigger: it changes no cached answer.
    ALTER TABLE apikeys_keys ADD COLUMN last_used_from TEXT;
",
    "
    -- Lifecycle webhooks (docs/webhooks.md): the outbox (IF NOT EXISTS: a
    -- database set back to an older version by hand keeps it). When the outbox is
    -- on (apikeys_outbox_settings), every change that makes events writes
    -- them here in its own transaction, next to its audit record; delivery
    -- workers claim rows (a lease: lease, locked_until) and mark them
    -- delivered, or due again later, or dead (kept).
    CREATE TABLE IF NOT EXISTS apikeys_outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id     TEXT NOT NULL UNIQUE,  -- the webhook-id
        type         TEXT NOT NULL,         -- key.created ...
        account      TEXT NOT NULL,
        key_id       INTEGER,               -- the key id's 64 bits
        at           INTEGER NOT NULL,      -- unix milliseconds
        payload      TEXT NOT NULL,         -- the body sent, exactly
        status       TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, dead
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      INTEGER NOT NULL,      -- not tried before (unix ms)
        lease        TEXT,                  -- the current claim's token
        locked_until INTEGER,               -- its lease runs out (unix ms)
        delivered_to TEXT NOT NULL DEFAULT '[]',  -- endpoint names (JSON)
        last_error   TEXT
    );
    CREATE INDEX IF NOT EXISTS apikeys_outbox_due ON apikeys_outbox (status, next_at);
    -- One key.expiring per key and expiry.
    CREATE TABLE IF NOT EXISTS apikeys_outbox_expiring (
        key_id     INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (key_id, expires_at)
    ) WITHOUT ROWID;
    -- Whether changes write events: a property of the file, so that every
    -- process writing to it does (one that did not would lose events).
    CREATE TABLE IF NOT EXISTS apikeys_outbox_settings (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        enabled INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO apikeys_outbox_settings (id, enabled) VALUES (1, 0);
",
];

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // WAL is a property of the file: set once, kept by every later open.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(
            format!("SQLite: cannot switch the file to WAL mode (it is in {mode} mode)").into(),
        ));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(
            format!(
                "SQLite: the file has schema version {version}, written by a newer apikeys-sqlite \
             (this one knows up to {SCHEMA_VERSION}); upgrade it"
            )
            .into(),
        ));
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.pragma_update(None, "user_version", v as i64 + 1)
            .map_err(unavailable)?;
    }
    tx.commit().map_err(unavailable)
}
