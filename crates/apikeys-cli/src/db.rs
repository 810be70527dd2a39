//! Which database, and opening it: SQLite by default, PostgreSQL for a
//! `postgres://` URL; a keyring over it; and the store `verify` uses, which
//! notes no use.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apikeys::store::{Edit, LookupRef, Standings};
use apikeys::{
    AccountSettings, AuditEvent, AuditPage, AuditWindow, CachedLookup, Digest, Disabled, KeyFilter,
    KeyId, KeyLookup, KeyRecord, KeyStore, Keyring, StoreError, Timestamp, UsePlace, UserInsert,
    UserState,
};
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
    fn insert_audited(&self, r: KeyRecord, a: Option<&AuditEvent>) -> Result<(), StoreError> {
        self.0.insert_audited(r, a)
    }
    fn find_by_digest(&self, d: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        self.0.find_by_digest(d)
    }
    fn find_cached(&self, d: &Digest) -> CachedLookup {
        self.0.find_cached(d)
    }
    fn find_by_digest_with(
        &self,
        d: &Digest,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        self.0.find_by_digest_with(d, f)
    }
    fn find_cached_with(&self, d: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        self.0.find_cached_with(d, f)
    }
    fn may_block(&self) -> bool {
        self.0.may_block()
    }
    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.0.get(id)
    }
    fn list(&self, account: &str, f: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.0.list(account, f)
    }
    fn update_audited(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.0.update_audited(id, change)
    }
    fn delete_audited(
        &self,
        id: KeyId,
        check: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.0.delete_audited(id, check)
    }
    fn rotate(
        &self,
        old: KeyId,
        new: KeyRecord,
        if_unknown: UserState,
        decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.0.rotate(old, new, if_unknown, decide)
    }
    fn successor_used(&self, _predecessor: KeyId, _at: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    fn keeps_audit(&self) -> bool {
        self.0.keeps_audit()
    }
    fn append_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        self.0.append_audit(e)
    }
    fn audit_records(&self, w: &AuditWindow) -> Result<AuditPage, StoreError> {
        self.0.audit_records(w)
    }
    fn prune_audit(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.0.prune_audit(before)
    }
    fn record_use(&self, _id: KeyId, _at: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    fn record_use_from(&self, _id: KeyId, _at: Timestamp, _p: &UsePlace) -> Result<(), StoreError> {
        Ok(())
    }
    fn account_settings(&self, account: &str) -> Result<AccountSettings, StoreError> {
        self.0.account_settings(account)
    }
    fn set_account_settings_audited(
        &self,
        account: &str,
        s: AccountSettings,
        a: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.0.set_account_settings_audited(account, s, a)
    }
    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
        self.0.user(account, user)
    }
    fn set_user_audited(
        &self,
        account: &str,
        user: &str,
        s: UserState,
        a: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.0.set_user_audited(account, user, s, a)
    }
    fn insert_for_user(
        &self,
        r: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        a: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        self.0.insert_for_user(r, user, if_unknown, admit, a)
    }
    fn remove_user(
        &self,
        account: &str,
        user: &str,
        d: &Disabled,
        a: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.0.remove_user(account, user, d, a)
    }
    fn flush_writes(&self) -> Result<usize, StoreError> {
        self.0.flush_writes()
    }
    fn set_account_settings_as(
        &self,
        account: &str,
        actor: Option<&str>,
        settings: AccountSettings,
        decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError> {
        self.0
            .set_account_settings_as(account, actor, settings, decide)
    }
    fn set_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        state: UserState,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<bool, StoreError> {
        self.0.set_user_as(account, actor, user, state, decide)
    }
    fn remove_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        disabled: &Disabled,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        self.0
            .remove_user_as(account, actor, user, disabled, decide)
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
