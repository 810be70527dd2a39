//! A store that hands every call on to another (feature `testing`), for tests
//! that need to watch or slow down what a keyring asks of its store.
//!
//! [`Wrapped`] forwards each [`KeyStore`] method to its `inner` store, and
//! first tells its [`Around`] which method is called; `Around` also decides
//! what the wrapper says of itself where a store answers for what it is
//! ([`KeyStore::find_cached`], [`KeyStore::may_block`]). A test writes only
//! what differs:
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use apikeys::testing::wrap::{Around, Wrapped};
//! use apikeys::{Keyring, MemoryStore};
//!
//! /// Counts the calls that reach the store.
//! #[derive(Default)]
//! struct Count(AtomicUsize);
//!
//! impl Around for Count {
//!     fn before(&self, _method: &'static str) {
//!         self.0.fetch_add(1, Ordering::SeqCst);
//!     }
//! }
//!
//! let store = std::sync::Arc::new(Wrapped::new(MemoryStore::new(), Count::default()));
//! let keyring = Keyring::builder().shared_store(store.clone()).build().unwrap();
//! assert!(keyring.authenticate("too short", &apikeys::Request::rest("GET")).is_err());
//! assert_eq!(store.around.0.load(Ordering::SeqCst), 0, "a malformed key never reaches the store");
//! ```

use crate::digest::Digest;
use crate::error::StoreError;
use crate::store::{CachedLookup, KeyLookup, KeyStore, LookupRef};

/// What a [`Wrapped`] store does around the calls it hands on. Every method
/// has a default: `()` is a plain forwarder.
pub trait Around: Send + Sync {
    /// Called before every call that does the store's work, with the
    /// [`KeyStore`] method's name (`"find_by_digest"`, `"find_by_digest_with"`
    /// (the keyring's lookup), `"rotate"` …): every method but
    /// [`KeyStore::find_cached`], [`KeyStore::find_cached_with`], [`KeyStore::may_block`],
    /// [`KeyStore::keeps_audit`] and [`KeyStore::flush_writes`], which say
    /// what the store is or hold nothing back here. A default method of the
    /// trait that calls another (`insert` → `insert_audited`) is counted once.
    fn before(&self, method: &'static str) {
        let _ = method;
    }

    /// Called before [`KeyStore::find_by_digest`] or
    /// [`KeyStore::find_by_digest_with`] hands `digest` on (after
    /// [`Around::before`]); it may wait.
    fn before_lookup(&self, digest: &Digest) {
        let _ = digest;
    }

    /// What [`KeyStore::find_cached`] answers. The default,
    /// [`CachedLookup::WouldBlock`], is the trait's own (always correct):
    /// the keyring then calls [`KeyStore::find_by_digest`]. Answer
    /// `inner.find_cached(digest)` to let the inner store answer from memory.
    fn find_cached(&self, digest: &Digest, inner: &dyn KeyStore) -> CachedLookup {
        let _ = (digest, inner);
        CachedLookup::WouldBlock
    }

    /// What [`KeyStore::find_cached_with`] answers. The default lends what
    /// [`Around::find_cached`] answers (so a wrapper that only says
    /// `find_cached` stays consistent); answer
    /// `inner.find_cached_with(digest, f)` to let the inner store lend its
    /// record in place.
    fn find_cached_with(
        &self,
        digest: &Digest,
        inner: &dyn KeyStore,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> bool {
        match self.find_cached(digest, inner) {
            CachedLookup::Known(found) => {
                f(found.as_ref().map(KeyLookup::view));
                true
            }
            CachedLookup::WouldBlock => false,
        }
    }

    /// What [`KeyStore::may_block`] answers: by default `true`, the trait's
    /// own safe answer.
    fn may_block(&self, inner: &dyn KeyStore) -> bool {
        let _ = inner;
        true
    }
}

impl Around for () {}

/// A [`KeyStore`] that hands every call to `inner`, telling `around` first.
#[derive(Debug, Default)]
pub struct Wrapped<S, A> {
    /// The store that does the work.
    pub inner: S,
    /// What happens around each call.
    pub around: A,
}

impl<S: KeyStore, A: Around> Wrapped<S, A> {
    /// `inner`, with `around` told of every call.
    pub fn new(inner: S, around: A) -> Self {
        Wrapped { inner, around }
    }

    fn on(&self, method: &'static str) -> &S {
        self.around.before(method);
        &self.inner
    }
}

impl<S: KeyStore, A: Around> KeyStore for Wrapped<S, A> {
    crate::forward_key_store! { self => |method| self.on(method);
        insert_audited, get, list, update_audited, delete_audited, rotate, successor_used,
        append_audit, audit_records, prune_audit, record_use, record_use_from, account_settings,
        set_account_settings_audited, set_account_settings_as, user, set_user_as, remove_user_as,
        set_user_audited, insert_for_user, remove_user,
    }
    // What the store is, or holds back: not told to `around`.
    crate::forward_key_store! { self => self.inner; keeps_audit, flush_writes }

    fn find_by_digest(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError> {
        let inner = self.on("find_by_digest");
        self.around.before_lookup(digest);
        inner.find_by_digest(digest)
    }
    fn find_cached(&self, digest: &Digest) -> CachedLookup {
        self.around.find_cached(digest, &self.inner)
    }
    fn find_by_digest_with(
        &self,
        digest: &Digest,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        let inner = self.on("find_by_digest_with");
        self.around.before_lookup(digest);
        inner.find_by_digest_with(digest, f)
    }
    fn find_cached_with(&self, digest: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        self.around.find_cached_with(digest, &self.inner, f)
    }
    fn may_block(&self) -> bool {
        self.around.may_block(&self.inner)
    }
}
