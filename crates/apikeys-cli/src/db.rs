//! Which database, and opening it: SQLite by default, PostgreSQL for a
//! `postgres://` URL; a keyring over it; and the store `verify` uses, which
//! notes no use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apikeys::{KeyId, KeyStore, Keyring, StoreError, Timestamp, UsePlace};
use apikeys_postgres::PostgresStore;
use apikeys_sqlite::SqliteStore;

use crate::Failure;

/// The environment variable naming the database when `--db` is not given.
pub(crate) const DATABASE_ENV: &str = "APIKEYS_DATABASE_URL";
/// The environment variable holding the pepper, when keys are digested under one.
pub(crate) const PEPPER_ENV: &str = "APIKEYS_PEPPER";
/// The database when neither `--db` nor the environment names one.
pub(crate) const DEFAULT_DB: &str = "apikeys.db";

/// Where the keys are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Db {
    Sqlite(PathBuf),
    /// A PostgreSQL URL (never printed: it may hold a password).
    Postgres(String),
}

impl Db {
    /// `--db`, else `APIKEYS_DATABASE_URL`, else `./apikeys.db`.
    pub(crate) fn choose(flag: Option<&str>) -> Db {
        let given = match flag {
            Some(f) => f.to_owned(),
            None => std::env::var(DATABASE_ENV)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| DEFAULT_DB.to_owned()),
        };
        if given.starts_with("postgres://") || given.starts_with("postgresql://") {
            Db::Postgres(given)
        } else {
            Db::Sqlite(PathBuf::from(given))
        }
    }

    /// For messages: the SQLite path, or "the PostgreSQL database" (a URL may hold a password).
    pub(crate) fn describe(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("the SQLite database {}", p.display()),
            Db::Postgres(_) => "the PostgreSQL database".to_owned(),
        }
    }
}

/// Open the store. A SQLite file that does not exist is made only when
/// `may_create` (commands that write the first records); for every other
/// command it is an error, so that a mistyped path is not a new, empty database.
pub(crate) fn open_store(
    db: &Db,
    may_create: bool,
    connect_timeout: Duration,
    schema: Option<&str>,
) -> Result<Arc<dyn KeyStore>, Failure> {
    let cannot = |e: StoreError| Failure::error(format!("cannot open {}: {e}", db.describe()));
    match db {
        Db::Sqlite(path) => {
            if schema.is_some() {
                return Err(Failure::error(
                    "--schema is for PostgreSQL; a SQLite database has no schemas",
                ));
            }
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {
                    return Err(Failure::error(format!(
                        "{} is a directory, not a database file",
                        path.display()
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !may_create {
                        return Err(Failure::error(format!(
                            "no database at {} (give --db PATH or set {DATABASE_ENV}; \
                             only 'create', 'account set', 'user set-role' and 'user remove' make a new one)",
                            path.display()
                        )));
                    }
                }
                Err(e) => {
                    return Err(Failure::error(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            }
            // No cache: a command makes a few calls and exits.
            let store = SqliteStore::options()
                .cache(false)
                .open(path)
                .map_err(cannot)?;
            Ok(Arc::new(store))
        }
        Db::Postgres(url) => {
            let mut options = PostgresStore::options()
                .cache(false)
                .pool_size(2)
                .connect_timeout(connect_timeout);
            if let Some(s) = schema {
                options = options.schema(s);
            }
            let store = options.connect(url).map_err(cannot)?;
            Ok(Arc::new(store))
        }
    }
}

/// A keyring over `store`, with the pepper of `APIKEYS_PEPPER` when it is set.
pub(crate) fn keyring(store: Arc<dyn KeyStore>) -> Result<Keyring, Failure> {
    let mut builder = Keyring::builder().shared_store(store);
    if let Some(pepper) = std::env::var_os(PEPPER_ENV).filter(|p| !p.is_empty()) {
        let pepper = pepper
            .into_string()
            .map_err(|_| Failure::error(format!("{PEPPER_ENV} is not valid UTF-8 text")))?;
        builder = builder.pepper(pepper.as_bytes());
    }
    builder
        .build()
        .map_err(|e| Failure::error(format!("{PEPPER_ENV}: {e}")))
}

/// The store `verify` checks through: every call goes to the real store but
/// the notes of a use (`last_used_at`, a rotation's successor first used),
/// so that checking a key by hand does not make it look in use.
pub(crate) struct NoUseNoted(pub(crate) Arc<dyn KeyStore>);

impl KeyStore for NoUseNoted {
    apikeys::forward_key_store! { self => self.0;
        insert_audited, find_by_digest, find_cached, find_by_digest_with, find_cached_with,
        may_block, get, list, update_audited, delete_audited, rotate, keeps_audit, append_audit,
        audit_records, prune_audit, account_settings, set_account_settings_audited, user,
        set_user_audited, insert_for_user, remove_user, flush_writes, set_account_settings_as,
        set_user_as, remove_user_as,
    }
    // The notes of a use: not written.
    fn successor_used(&self, _predecessor: KeyId, _at: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    fn record_use(&self, _id: KeyId, _at: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    fn record_use_from(&self, _id: KeyId, _at: Timestamp, _p: &UsePlace) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `verify`'s wrapper hands the lent lookup to the real store's own (a
    /// `MemoryStore` lends in place: a reference count of 1), instead of the
    /// trait's default, which clones the record.
    #[test]
    fn no_use_noted_forwards_the_lent_lookup() {
        use apikeys::{KeyHasher, KeyKind, MemoryStore};
        let keyring = apikeys::Keyring::new(MemoryStore::new());
        let admin = apikeys::Actor::new("acme", "PADMIN1", apikeys::Role::Admin);
        let key = keyring
            .create_general_key(&admin, "k", apikeys::AccessLevel::FullAccess)
            .unwrap();
        let digest = KeyHasher::sha256().digest(key.secret().expose().as_bytes());
        let store = NoUseNoted(keyring.store().clone());
        let mut counts = Vec::new();
        store
            .find_by_digest_with(&digest, &mut |f| {
                let f = f.expect("found");
                assert_eq!(f.record.kind, KeyKind::General);
                counts.push(Arc::strong_count(f.record));
            })
            .unwrap();
        assert!(store.find_cached_with(&digest, &mut |f| {
            counts.push(Arc::strong_count(f.expect("found").record))
        }));
        assert_eq!(counts, vec![1, 1]);
    }

    #[test]
    fn postgres_urls_and_paths_are_told_apart() {
        assert_eq!(
            Db::choose(Some("postgres://u:p@h/db")),
            Db::Postgres("postgres://u:p@h/db".into())
        );
        assert_eq!(
            Db::choose(Some("postgresql://h/db")),
            Db::Postgres("postgresql://h/db".into())
        );
        assert_eq!(Db::choose(Some("x.db")), Db::Sqlite("x.db".into()));
        assert!(
            !Db::Postgres("postgres://u:hunter22@h/db".into())
                .describe()
                .contains("hunter22")
        );
    }
}
