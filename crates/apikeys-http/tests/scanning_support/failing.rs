//! A store whose writes fail on demand (a database that went away), over a
//! `MemoryStore`.

use std::sync::atomic::{AtomicBool, Ordering};

use apikeys::store::{Edit, KeyStore, MemoryStore};
use apikeys::{KeyId, KeyRecord, StoreError, UserState};

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
    apikeys::forward_key_store! { self => self.inner;
        insert_audited, find_by_digest, find_cached, find_by_digest_with, find_cached_with, get,
        list, rotate, record_use, account_settings, set_account_settings_audited, user,
        set_user_audited, insert_for_user, remove_user, set_account_settings_as, set_user_as,
        remove_user_as,
    }
    fn may_block(&self) -> bool {
        false
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
}
