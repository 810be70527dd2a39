//! The tables, the triggers that feed other processes' caches, their
//! migrations, and the schema version check.

use apikeys::StoreError;
use postgres::Client;

use crate::pg;

/// The newest schema version this crate knows.
pub const SCHEMA_VERSION: i32 = 3;

/// Migrations, in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE apikeys_keys (
        id           bigint PRIMARY KEY,  -- the key id's 64 bits
        digest       bytea NOT NULL,
        account      text NOT NULL,
        kind         text NOT NULL,
        owner        text,
        created_at   bigint NOT NULL,     -- unix milliseconds
        last_used_at bigint,              -- unix milliseconds
        record       text NOT NULL,       -- the KeyRecord as JSON, without last_used_at
        CONSTRAINT apikeys_keys_digest_key UNIQUE (digest)
    );
    CREATE INDEX apikeys_keys_account ON apikeys_keys (account, created_at);
    CREATE TABLE apikeys_accounts (
        account              text PRIMARY KEY,
        rest_api             boolean NOT NULL,
        advanced_permissions boolean NOT NULL
    );
    CREATE TABLE apikeys_users (
        account text NOT NULL,
        user_id text NOT NULL,
        role    text NOT NULL,
        removed boolean NOT NULL,
        PRIMARY KEY (account, user_id)
    );
    -- Change feed for the caches of every process: a changed or deleted key
    -- sends its digest (hex); account, user or bulk changes send '*'.
    CREATE FUNCTION apikeys_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('apikeys_changes_' || TG_TABLE_SCHEMA, encode(OLD.digest, 'hex'));
        RETURN NULL;
    END $$;
    CREATE FUNCTION apikeys_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('apikeys_changes_' || TG_TABLE_SCHEMA, '*');
        RETURN NULL;
    END $$;
    CREATE TRIGGER apikeys_keys_changed AFTER UPDATE OF record, digest, account, owner OR DELETE
        ON apikeys_keys FOR EACH ROW EXECUTE FUNCTION apikeys_notify_key();
    CREATE TRIGGER apikeys_keys_truncated AFTER TRUNCATE
        ON apikeys_keys FOR EACH STATEMENT EXECUTE FUNCTION apikeys_notify_all();
    CREATE TRIGGER apikeys_accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON apikeys_accounts FOR EACH STATEMENT EXECUTE FUNCTION apikeys_notify_all();
    CREATE TRIGGER apikeys_users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON apikeys_users FOR EACH STATEMENT EXECUTE FUNCTION apikeys_notify_all();
",
    "
    -- The audit trail: one row per management call that changed something
    -- (written in the change's own transaction) or was refused. Ids are
    -- drawn under a transaction-scoped advisory lock, so they increase in
    -- commit order and a page read by id never skips a record.
    CREATE TABLE apikeys_audit (
        id      bigserial PRIMARY KEY,
        account text NOT NULL,
        at      bigint NOT NULL,   -- unix milliseconds
        actor   text NOT NULL,
        action  text NOT NULL,
        key_id  bigint,            -- the key id's 64 bits
        event   text NOT NULL      -- the AuditEvent as JSON
    );
    -- A page is read over its window (account or key, then time) from the
    -- index: account and at bound the scan, id, actor and action are
    -- filtered and sorted in it, and only the page's own rows are fetched.
    -- `at` alone serves pruning.
    CREATE INDEX apikeys_audit_account ON apikeys_audit (account, at, id, actor, action);
    CREATE INDEX apikeys_audit_key ON apikeys_audit (account, key_id, at, id, actor, action);
    CREATE INDEX apikeys_audit_at ON apikeys_audit (at);
    -- Where a key was last used from (JSON), written with last_used_at and,
    -- like it, watched by no trigger: it changes no cached answer.
    ALTER TABLE apikeys_keys ADD COLUMN last_used_from text;
",
    "
    -- Lifecycle webhooks (docs/webhooks.md): the outbox (IF NOT EXISTS: a
    -- database set back to an older version by hand keeps it). When the outbox is
    -- on (apikeys_outbox_settings), every change that makes events writes
    -- them here in its own transaction, next to its audit record. Delivery
    -- workers of any process claim rows with FOR UPDATE SKIP LOCKED and a
    -- lease (lease, locked_until), then mark them delivered, due again
    -- later, or dead (kept).
    CREATE TABLE IF NOT EXISTS apikeys_outbox (
        seq          bigserial PRIMARY KEY,
        event_id     text NOT NULL UNIQUE,  -- the webhook-id
        type         text NOT NULL,         -- key.created ...
        account      text NOT NULL,
        key_id       bigint,                -- the key id's 64 bits
        at           bigint NOT NULL,       -- unix milliseconds
        payload      text NOT NULL,         -- the body sent, exactly
        status       text NOT NULL DEFAULT 'pending',  -- pending, delivered, dead
        attempts     integer NOT NULL DEFAULT 0,
        next_at      bigint NOT NULL,       -- not tried before (unix ms)
        lease        text,                  -- the current claim's token
        locked_until bigint,                -- its lease runs out (unix ms)
        delivered_to text NOT NULL DEFAULT '[]',  -- endpoint names (JSON)
        last_error   text
    );
    CREATE INDEX IF NOT EXISTS apikeys_outbox_due ON apikeys_outbox (status, next_at);
    -- One key.expiring per key and expiry.
    CREATE TABLE IF NOT EXISTS apikeys_outbox_expiring (
        key_id     bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (key_id, expires_at)
    );
    -- Whether changes write events: a property of the database, so that
    -- every process writing to it does (one that did not would lose events).
    CREATE TABLE IF NOT EXISTS apikeys_outbox_settings (
        id      integer PRIMARY KEY CHECK (id = 1),
        enabled boolean NOT NULL
    );
    INSERT INTO apikeys_outbox_settings (id, enabled) VALUES (1, false)
        ON CONFLICT (id) DO NOTHING;
",
];

pub(crate) fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(pg)?;
    // One migrator at a time, whichever process gets here first.
    tx.batch_execute("SELECT pg_advisory_xact_lock(7311529024145163)")
        .map_err(pg)?;
    if let Some(s) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
            .map_err(pg)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS apikeys_schema_version (version integer NOT NULL)",
    )
    .map_err(pg)?;
    let version: i32 = tx
        .query_opt("SELECT max(version) FROM apikeys_schema_version", &[])
        .map_err(pg)?
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(
            format!(
                "PostgreSQL: the database has apikeys schema version {version}, written by a newer \
             apikeys-postgres (this one knows up to {SCHEMA_VERSION}); upgrade it"
            )
            .into(),
        ));
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).map_err(pg)?;
        tx.execute("DELETE FROM apikeys_schema_version", &[])
            .map_err(pg)?;
        tx.execute(
            "INSERT INTO apikeys_schema_version (version) VALUES ($1)",
            &[&(v as i32 + 1)],
        )
        .map_err(pg)?;
    }
    tx.commit().map_err(pg)
}
