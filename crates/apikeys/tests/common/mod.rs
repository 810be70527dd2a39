//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::store::{Edit, Standings};
use apikeys::testing::wrap::{Around, Wrapped};
use apikeys::{
    AccessLevel, AccountSettings, ApiVersion, Digest, KeyFilter, KeyHasher, KeyId, KeyKind,
    KeyLookup, KeyRecord, KeyStore, MemoryStore, StoreError, Timestamp, UserInsert, UserState,
};
use apikeys::{AuditEvent, Disabled};

/// A record as a store would receive it, for a fresh key of `kind`.
pub fn record(account: &str, kind: KeyKind) -> KeyRecord {
    let secret = kind.generate().unwrap();
    KeyRecord {
        id: KeyId::generate().unwrap(),
        account: account.into(),
        kind,
        description: "test key".into(),
        access: AccessLevel::FullAccess,
        owner: (kind == KeyKind::UserToken).then(|| "PUSER1".into()),
        target: None,
        scopes: Box::new([]),
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        created_by: "PADMIN1".into(),
        api_version: ApiVersion::V2,
        disabled: None,
        last_used_at: None,
        expires_at: None,
        hint: apikeys::Hint::of(secret.expose()),
        digest: KeyHasher::sha256().digest(secret.expose().as_bytes()),
        rotation: None,
        last_used_from: None,
    }
}

/// What [`CountingStore`] counts: every call that reaches the store, and
/// the lookups by digest among them.
#[derive(Default)]
pub struct Counts {
    pub calls: AtomicUsize,
    pub finds: AtomicUsize,
}

impl Counts {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Around for Counts {
    fn before(&self, method: &'static str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if method == "find_by_digest" || method == "find_by_digest_with" {
            self.finds.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A store that counts calls before handing them to a `MemoryStore`
/// (`store.around.calls()`, `store.around.finds`). It never answers from
/// memory (`find_cached` is the trait's default), so every lookup is counted.
pub type CountingStore = Wrapped<MemoryStore, Counts>;

/// A store that fails every call, to check errors surface as `Store` (500).
pub struct BrokenStore;

impl KeyStore for BrokenStore {
    fn insert_audited(&self, _: KeyRecord, _: Option<&AuditEvent>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn find_by_digest(&self, _: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn get(&self, _: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn list(&self, _: &str, _: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn update_audited(
        &self,
        _: KeyId,
        _: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn delete_audited(
        &self,
        _: KeyId,
        _: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn rotate(
        &self,
        _: KeyId,
        _: KeyRecord,
        _: UserState,
        _: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn record_use(&self, _: KeyId, _: Timestamp) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn account_settings(&self, _: &str) -> Result<AccountSettings, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn set_account_settings_audited(
        &self,
        _: &str,
        _: AccountSettings,
        _: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn user(&self, _: &str, _: &str) -> Result<Option<UserState>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn set_user_audited(
        &self,
        _: &str,
        _: &str,
        _: UserState,
        _: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn insert_for_user(
        &self,
        _: KeyRecord,
        _: &str,
        _: UserState,
        _: &mut dyn FnMut(&UserState) -> bool,
        _: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn remove_user(
        &self,
        _: &str,
        _: &str,
        _: &Disabled,
        _: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn set_account_settings_as(
        &self,
        _: &str,
        _: Option<&str>,
        _: AccountSettings,
        _: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn set_user_as(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: UserState,
        _: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn remove_user_as(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &Disabled,
        _: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

pub fn shared<S: KeyStore + 'static>(s: S) -> Arc<S> {
    Arc::new(s)
}
