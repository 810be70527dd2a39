//! A store whose writes fail on demand (a database that went away), over a
//! `MemoryStore`.

use std::sync::atomic::{AtomicBool, Ordering};

use apikeys::AuditEvent;
use apikeys::store::{
    CachedLookup, Edit, KeyFilter, KeyLookup, KeyStore, LookupRef, MemoryStore, Standings,
    UserInsert,
};
use apikeys::{
    AccountSettings, Digest, Disabled, KeyId, KeyRecord, StoreError, Timestamp, UserState,
};

#[derive(Default)]
pub struct FailingStore {
    inner: MemoryStore,
    failing: AtomicBool,
}

impl FailingStore {
    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable(
                "the test's database is away".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl KeyStore for FailingStore {
    fn insert_audited(&self, r: KeyRecord, e: Option<&AuditEvent>) -> Result<(), StoreError> {
        self.inner.insert_audited(r, e)
    }
    fn find_by_digest(&self, d: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        self.inner.find_by_digest(d)
    }
    fn find_cached(&self, d: &Digest) -> CachedLookup {
        self.inner.find_cached(d)
    }
    fn find_by_digest_with(
        &self,
        d: &Digest,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        self.inner.find_by_digest_with(d, f)
    }
    fn find_cached_with(&self, d: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        self.inner.find_cached_with(d, f)
    }
    fn may_block(&self) -> bool {
        false
    }
    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id)
    }
    fn list(&self, a: &str, f: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list(a, f)
    }
    fn update_audited(
        &self,
        id: KeyId,
        c: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.update_audited(id, c)
    }
    fn delete_audited(
        &self,
        id: KeyId,
        c: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.delete_audited(id, c)
    }
    fn rotate(
        &self,
        old: KeyId,
        new: KeyRecord,
        if_unknown: UserState,
        decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.rotate(old, new, if_unknown, decide)
    }
    fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError> {
        self.inner.record_use(id, at)
    }
    fn account_settings(&self, a: &str) -> Result<AccountSettings, StoreError> {
        self.inner.account_settings(a)
    }
    fn set_account_settings_audited(
        &self,
        a: &str,
        s: AccountSettings,
        e: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.set_account_settings_audited(a, s, e)
    }
    fn user(&self, a: &str, u: &str) -> Result<Option<UserState>, StoreError> {
        self.inner.user(a, u)
    }
    fn set_user_audited(
        &self,
        a: &str,
        u: &str,
        s: UserState,
        e: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.set_user_audited(a, u, s, e)
    }
    fn insert_for_user(
        &self,
        r: KeyRecord,
        u: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        e: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        self.inner.insert_for_user(r, u, if_unknown, admit, e)
    }
    fn remove_user(
        &self,
        a: &str,
        u: &str,
        d: &Disabled,
        e: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.remove_user(a, u, d, e)
    }
    fn set_account_settings_as(
        &self,
        account: &str,
        actor: Option<&str>,
        settings: AccountSettings,
        decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError> {
        self.inner
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
        self.inner.set_user_as(account, actor, user, state, decide)
    }
    fn remove_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        disabled: &Disabled,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        self.inner
            .remove_user_as(account, actor, user, disabled, decide)
    }
}
