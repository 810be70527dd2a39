//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::Disabled;
use apikeys::{
    AccessLevel, AccountSettings, ApiVersion, Digest, KeyFilter, KeyHasher, KeyId, KeyKind,
    KeyLookup, KeyRecord, KeyStore, MemoryStore, StoreError, Timestamp, UserInsert, UserState,
};

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
    }
}

/// A store that counts calls before handing them to a `MemoryStore`.
#[derive(Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub calls: AtomicUsize,
    pub finds: AtomicUsize,
}

impl CountingStore {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl KeyStore for CountingStore {
    fn insert(&self, r: KeyRecord) -> Result<(), StoreError> {
        self.tick();
        self.inner.insert(r)
    }
    fn find_by_digest(&self, d: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        self.tick();
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find_by_digest(d)
    }
    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.tick();
        self.inner.get(id)
    }
    fn list(&self, a: &str, f: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.tick();
        self.inner.list(a, f)
    }
    fn update(
        &self,
        id: KeyId,
        c: &mut dyn FnMut(&mut KeyRecord),
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.tick();
        self.inner.update(id, c)
    }
    fn delete(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.tick();
        self.inner.delete(id)
    }
    fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError> {
        self.tick();
        self.inner.record_use(id, at)
    }
    fn account_settings(&self, a: &str) -> Result<AccountSettings, StoreError> {
        self.tick();
        self.inner.account_settings(a)
    }
    fn set_account_settings(&self, a: &str, s: AccountSettings) -> Result<(), StoreError> {
        self.tick();
        self.inner.set_account_settings(a, s)
    }
    fn user(&self, a: &str, u: &str) -> Result<Option<UserState>, StoreError> {
        self.tick();
        self.inner.user(a, u)
    }
    fn set_user(&self, a: &str, u: &str, s: UserState) -> Result<(), StoreError> {
        self.tick();
        self.inner.set_user(a, u, s)
    }
    fn insert_for_user(
        &self,
        r: KeyRecord,
        u: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
    ) -> Result<UserInsert, StoreError> {
        self.tick();
        self.inner.insert_for_user(r, u, if_unknown, admit)
    }
    fn remove_user(&self, a: &str, u: &str, d: &Disabled) -> Result<Vec<KeyRecord>, StoreError> {
        self.tick();
        self.inner.remove_user(a, u, d)
    }
}

/// A store that fails every call, to check errors surface as `Store` (500).
pub struct BrokenStore;

impl KeyStore for BrokenStore {
    fn insert(&self, _: KeyRecord) -> Result<(), StoreError> {
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
    fn update(
        &self,
        _: KeyId,
        _: &mut dyn FnMut(&mut KeyRecord),
    ) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn delete(&self, _: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn record_use(&self, _: KeyId, _: Timestamp) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn account_settings(&self, _: &str) -> Result<AccountSettings, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn set_account_settings(&self, _: &str, _: AccountSettings) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn user(&self, _: &str, _: &str) -> Result<Option<UserState>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn set_user(&self, _: &str, _: &str, _: UserState) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn insert_for_user(
        &self,
        _: KeyRecord,
        _: &str,
        _: UserState,
        _: &mut dyn FnMut(&UserState) -> bool,
    ) -> Result<UserInsert, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn remove_user(&self, _: &str, _: &str, _: &Disabled) -> Result<Vec<KeyRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

pub fn shared<S: KeyStore + 'static>(s: S) -> Arc<S> {
    Arc::new(s)
}
