//! Where records live: the [`KeyStore`] trait and the in-memory [`MemoryStore`].
//!
//! A store keeps [`KeyRecord`]s (never keys), each account's
//! [`AccountSettings`] and, for users who own tokens, a [`UserState`]. Every
//! write happens whole or not at all, and a write that has returned is seen by
//! every later read of the same store.
//!
//! For writing a store of your own: [`check_immutable`] is the rule every
//! [`KeyStore::update`] applies, [`cache`] holds the pieces the durable stores
//! are built from (a hot-path cache, a queue of last uses), [`rows`] how they
//! keep a record in a database row and read it back, and the `testing`
//! feature's `apikeys::testing::conformance` checks that a store behaves like
//! the others.

use std::sync::Arc;

use crate::audit::{AuditEvent, AuditPage, AuditWindow};
use crate::digest::Digest;
use crate::error::StoreError;
use crate::key::KeyKind;
use crate::record::{Disabled, KeyId, KeyRecord, Timestamp};
use crate::role::{AccountSettings, UserState};

pub mod cache;
mod forward;
mod memory;
pub mod rows;

pub use memory::MemoryStore;

/// What the hot path needs about a key, fetched in one lookup by digest.
#[derive(Clone, Debug)]
pub struct KeyLookup {
    /// The record.
    pub record: Arc<KeyRecord>,
    /// The freshest known last use (a store may track it apart from the record).
    pub last_used_at: Option<crate::record::Timestamp>,
    /// Its account's current settings.
    pub account: AccountSettings,
    /// The current state of the user a token acts through: for a user token
    /// its owner, for a scoped token the user who made it ([`standing_user`]);
    /// `None` for other kinds, and when the store knows nothing of that user.
    pub owner: Option<UserState>,
}

impl KeyLookup {
    /// This lookup, borrowed: what [`KeyStore::find_by_digest_with`] hands over.
    pub fn view(&self) -> LookupRef<'_> {
        LookupRef {
            record: &self.record,
            last_used_at: self.last_used_at,
            account: self.account,
            owner: self.owner,
        }
    }
}

/// A [`KeyLookup`] borrowed from the store for the length of one call
/// ([`KeyStore::find_by_digest_with`]): the hot path reads the record in
/// place and clones its `Arc` (a write to the record's reference count) only
/// when it keeps the record.
#[derive(Clone, Copy, Debug)]
pub struct LookupRef<'a> {
    /// The record.
    pub record: &'a Arc<KeyRecord>,
    /// The freshest known last use (a store may track it apart from the record).
    pub last_used_at: Option<crate::record::Timestamp>,
    /// Its account's current settings.
    pub account: AccountSettings,
    /// As [`KeyLookup::owner`].
    pub owner: Option<UserState>,
}

impl LookupRef<'_> {
    /// An owned [`KeyLookup`] (clones the record's `Arc`).
    pub fn to_lookup(&self) -> KeyLookup {
        KeyLookup {
            record: self.record.clone(),
            last_used_at: self.last_used_at,
            account: self.account,
            owner: self.owner,
        }
    }
}

/// The user whose standing bounds what `record` may do, if any: a user
/// token's owner, or the user who made a scoped token. Stores join this
/// user's [`UserState`] into [`KeyLookup::owner`], and
/// [`KeyStore::remove_user`] disables the keys it names (docs/design.md,
/// "Invariants").
pub fn standing_user(record: &KeyRecord) -> Option<&str> {
    match record.kind {
        KeyKind::UserToken => record.owner.as_deref(),
        KeyKind::Scoped => Some(&record.created_by),
        _ => None,
    }
}

/// What [`KeyStore::insert_for_user`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserInsert {
    /// The record is stored; this is the user's standing it was admitted on.
    Inserted(UserState),
    /// The user's standing did not admit the record: nothing was written.
    Refused(UserState),
}

/// The standings a change made for a person is decided on
/// ([`KeyStore::set_user_as`], [`KeyStore::remove_user_as`]), read in the
/// change's own atomic step. `None`: the store knows nothing of that user
/// (or, for `actor`, the system makes the change). When the actor changes
/// their own standing, both are the same user's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standings {
    /// The state of the user making the change.
    pub actor: Option<UserState>,
    /// The state of the user the change is about, as it is before the change.
    pub subject: Option<UserState>,
}

/// What a change decided, having seen the record it would change
/// ([`KeyStore::update_audited`], [`KeyStore::delete_audited`],
/// [`KeyStore::rotate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Write the change, and with it, in the same transaction, this audit
    /// record (stores that keep an audit trail: [`KeyStore::keeps_audit`]).
    Write(Option<Box<AuditEvent>>),
    /// Write nothing: the record stays as it was (the caller knows why).
    Keep,
}

/// What a store can say about a digest from memory alone: the answer of
/// [`KeyStore::find_cached`].
#[derive(Clone, Debug)]
pub enum CachedLookup {
    /// The answer [`KeyStore::find_by_digest`] would give now: the lookup, or
    /// `None` when the store knows for certain that no key has this digest.
    Known(Option<KeyLookup>),
    /// Answering would need I/O (a database or network read): call
    /// [`KeyStore::find_by_digest`], off any event loop. This never means
    /// "not found".
    WouldBlock,
}

/// Which records [`KeyStore::list`] returns. The default matches every record of the account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only keys of this kind.
    pub kind: Option<KeyKind>,
    /// Only keys owned by this user.
    pub owner: Option<String>,
}

impl KeyFilter {
    /// Whether `r` passes the filter.
    pub fn matches(&self, r: &KeyRecord) -> bool {
        self.kind.is_none_or(|k| r.kind == k)
            && self
                .owner
                .as_deref()
                .is_none_or(|o| r.owner.as_deref() == Some(o))
    }
}

/// Storage for key records, account settings and user states.
///
/// Implementations must be safe to share between threads, make every write
/// whole or not at all, and make a write that has returned visible to every
/// later call. [`KeyStore::find_by_digest`] is the hot path.
pub trait KeyStore: Send + Sync {
    /// Add a record and, in the same transaction, `audit` (when the store
    /// keeps an audit trail). Refuses (with [`StoreError::Duplicate`]) a
    /// record whose id or digest is already stored, writing nothing.
    fn insert_audited(
        &self,
        record: KeyRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError>;

    /// [`KeyStore::insert_audited`] without an audit record.
    fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.insert_audited(record, None)
    }

    /// The hot path: the record with this digest, with its account's settings and
    /// (for user tokens) its owner's state, in one lookup.
    fn find_by_digest(&self, digest: &Digest) -> Result<Option<KeyLookup>, StoreError>;

    /// [`KeyStore::find_by_digest`], the answer lent to `f` instead of
    /// returned: `f` is called exactly once when the answer is `Ok` (and not
    /// at all on an error), with the same answer `find_by_digest` would give.
    /// A store can then let `f` read the record where it lies, under
    /// whatever guard protects it, with no reference count written
    /// ([`MemoryStore`] does). `f` must not call the store.
    ///
    /// The default calls `find_by_digest` and lends its answer.
    fn find_by_digest_with(
        &self,
        digest: &Digest,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> Result<(), StoreError> {
        let found = self.find_by_digest(digest)?;
        f(found.as_ref().map(KeyLookup::view));
        Ok(())
    }

    /// [`KeyStore::find_cached`], the answer lent to `f` as in
    /// [`KeyStore::find_by_digest_with`]: `true` after calling `f` once with
    /// what [`CachedLookup::Known`] would hold, `false` (without calling
    /// `f`) where `find_cached` answers [`CachedLookup::WouldBlock`].
    ///
    /// The default calls `find_cached` and lends its answer.
    fn find_cached_with(&self, digest: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
        match self.find_cached(digest) {
            CachedLookup::Known(found) => {
                f(found.as_ref().map(KeyLookup::view));
                true
            }
            CachedLookup::WouldBlock => false,
        }
    }

    /// [`KeyStore::find_by_digest`] from memory only, for a caller that must
    /// not wait (an event loop): never does I/O, never blocks on anything but
    /// a short in-memory lock.
    ///
    /// [`CachedLookup::Known`] must be exactly what `find_by_digest` would
    /// answer at this moment (a write that has returned is seen, so a disabled
    /// or deleted key is never answered from an older copy); when the store
    /// cannot be sure of that without reading, it answers
    /// [`CachedLookup::WouldBlock`]. A store that answers `Known` must also
    /// make [`KeyStore::record_use`] return without I/O (the keyring calls it
    /// right after, on the same thread).
    ///
    /// The default answers `WouldBlock` every time, which is always correct.
    /// [`MemoryStore`] always answers (a miss included); the durable stores
    /// answer from their [`cache::LookupCache`] and say `WouldBlock` on a miss
    /// or while the cache is off.
    fn find_cached(&self, digest: &Digest) -> CachedLookup {
        let _ = digest;
        CachedLookup::WouldBlock
    }

    /// Whether a call may wait on I/O (a disk or network read), so that a
    /// caller that must not wait (an event loop) should move it to a thread
    /// (after trying [`KeyStore::find_cached`]). The default, `true`, is
    /// always safe; [`MemoryStore`] answers `false`.
    fn may_block(&self) -> bool {
        true
    }

    /// The record with this id.
    fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// The records of `account` that pass `filter`, oldest first.
    fn list(&self, account: &str, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError>;

    /// Change one record atomically: `change` sees the current record, edits
    /// it and decides ([`Edit`]); no other write to it happens in between, so
    /// a permission check inside `change` is made on the very row it
    /// changes. On [`Edit::Write`] the edited record is written with its
    /// audit record in one transaction, and returned; on [`Edit::Keep`]
    /// nothing is written and the record is returned as it is. `None` if
    /// there is no record with this id. The id, digest, account, kind and
    /// owner cannot change: if `change` touched one, nothing is written and
    /// the answer is [`StoreError::Immutable`] (see [`check_immutable`]).
    fn update_audited(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// [`KeyStore::update_audited`] with a change that always writes, without
    /// an audit record.
    fn update(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord),
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.update_audited(id, &mut |r| {
            change(r);
            Edit::Write(None)
        })
    }

    /// Remove a record for good, atomically with `check`'s decision on it
    /// and on the current state of its owner (a user token's owner; `None`
    /// for other kinds and for an owner the store does not know), both read
    /// in the same atomic step as the delete (no [`KeyStore::set_user`] lands
    /// in between): on [`Edit::Write`] it is deleted (with the audit record,
    /// in one transaction) and returned; on [`Edit::Keep`] nothing is
    /// written and the record is returned as it is. `None` if there was none.
    fn delete_audited(
        &self,
        id: KeyId,
        check: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// Remove a record for good. Returns it, or `None` if there was none.
    fn delete(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.delete_audited(id, &mut |_, _| Edit::Write(None))
    }

    /// Rotate in **one atomic step**: read the record `old`, let `decide` see
    /// it (and edit it: the keyring sets its [`Rotation`](crate::Rotation))
    /// together with the standing of `new`'s [`standing_user`] (`None` for a
    /// key without one; `if_unknown` when the store knows nothing of that
    /// user), and on [`Edit::Write`] write the edited `old`, insert `new`
    /// (and store `if_unknown` for a user it did not know), and the audit
    /// record, in one transaction, like [`KeyStore::insert_for_user`]: no
    /// [`KeyStore::remove_user`] lands between the read and the insert.
    /// Returns `old` as it is now (edited, or as it was on [`Edit::Keep`]),
    /// or `None` when there is no such record. Refuses a duplicate id or
    /// digest of `new` like [`KeyStore::insert`].
    fn rotate(
        &self,
        old: KeyId,
        new: KeyRecord,
        if_unknown: UserState,
        decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// Note that the key that replaced `predecessor` in a rotation was used
    /// at `at`: sets the predecessor's
    /// [`Rotation::successor_used_at`](crate::Rotation::successor_used_at)
    /// if it is not set yet. Called by the keyring on the new key's first use
    /// (like [`KeyStore::record_use`], it must not wait on I/O when the store
    /// answered from [`KeyStore::find_cached`]; durable stores queue it with
    /// the last uses). The default writes at once through
    /// [`KeyStore::update_audited`].
    fn successor_used(&self, predecessor: KeyId, at: Timestamp) -> Result<(), StoreError> {
        self.update_audited(predecessor, &mut |r| {
            if r.rotation
                .as_mut()
                .is_some_and(|rot| rot.note_successor_use(at))
            {
                Edit::Write(None)
            } else {
                Edit::Keep
            }
        })
        .map(|_| ())
    }

    /// Whether the store keeps the audit trail itself, durably, each record
    /// in the transaction of its change (SQLite, PostgreSQL). When it does
    /// not (the default; [`MemoryStore`]), the keyring's
    /// [`AuditSink`](crate::AuditSink) is the trail.
    fn keeps_audit(&self) -> bool {
        false
    }

    /// Add an audit record that goes with no change (a refused call). The
    /// default, for stores that keep no trail, drops it.
    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let _ = event;
        Ok(())
    }

    /// A page of the audit trail, newest first (stores that keep one).
    fn audit_records(&self, window: &AuditWindow) -> Result<AuditPage, StoreError> {
        let _ = window;
        Ok(AuditPage::default())
    }

    /// Delete the audit records written before `before`; say how many.
    fn prune_audit(&self, before: Timestamp) -> Result<usize, StoreError> {
        let _ = before;
        Ok(0)
    }

    /// Note that the key was used at `at` (never moves `last_used_at` back).
    /// The keyring calls this at most about once a minute per key.
    fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError>;

    /// [`KeyStore::record_use`] from `place`: the store keeps the place with
    /// the time ([`KeyRecord::last_used_from`]), written as the last use is
    /// (queued by the durable stores, never a write per request), and answers
    /// it from [`KeyStore::get`] and [`KeyStore::list`]. The default keeps
    /// the time only.
    fn record_use_from(
        &self,
        id: KeyId,
        at: Timestamp,
        place: &crate::record::UsePlace,
    ) -> Result<(), StoreError> {
        let _ = place;
        self.record_use(id, at)
    }

    /// The account's settings (the default for an account never configured).
    fn account_settings(&self, account: &str) -> Result<AccountSettings, StoreError>;

    /// Set the account's settings, with `audit` in the same transaction.
    fn set_account_settings_audited(
        &self,
        account: &str,
        settings: AccountSettings,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError>;

    /// Set the account's settings.
    fn set_account_settings(
        &self,
        account: &str,
        settings: AccountSettings,
    ) -> Result<(), StoreError> {
        self.set_account_settings_audited(account, settings, None)
    }

    /// [`KeyStore::set_account_settings_audited`] decided in **one atomic
    /// step** with reading what the decision depends on (docs/design.md §2
    /// "Users and the account", and "Invariants"). `actor` is the user of
    /// `account` making the change, or `None` for a change the system makes.
    /// The store reads `actor`'s stored state (`None` when it knows nothing
    /// of them, or there is no actor) and the account's current settings, and
    /// hands both to `decide`; no [`KeyStore::set_user`],
    /// [`KeyStore::remove_user`] or other change of the actor's standing, and
    /// no other change of the settings, lands between that read and the
    /// write. `decide` builds the audit record there, so what it says the
    /// change replaced is what was there when it was written. On [`Edit::Write`] the settings are written with its audit
    /// record, in one transaction, and the answer is `true`; on
    /// [`Edit::Keep`] nothing is written and the answer is `false`.
    ///
    /// There is no default: a store that cannot read and write in one step
    /// would let a user who lost their standing change the account.
    fn set_account_settings_as(
        &self,
        account: &str,
        actor: Option<&str>,
        settings: AccountSettings,
        decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError>;

    /// What is known of a user, if anything.
    fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError>;

    /// Set what is known of a user, with `audit` in the same transaction.
    fn set_user_audited(
        &self,
        account: &str,
        user: &str,
        state: UserState,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError>;

    /// [`KeyStore::set_user_audited`] decided in **one atomic step** with
    /// reading the standings the decision depends on (docs/design.md §2
    /// "Users and the account", and "Invariants"). `actor` is the user of
    /// `account` making the change (it may be `user`), or `None` for a change
    /// the system makes. The store reads the stored states of `actor` and of
    /// `user` ([`Standings`]) and hands them to `decide`; no
    /// [`KeyStore::set_user`], [`KeyStore::remove_user`] or other decided
    /// change of either user lands between that read and the write. On [`Edit::Write`] `state` is stored for `user` with its audit
    /// record, in one transaction, and the answer is `true`; on [`Edit::Keep`]
    /// nothing is written and the answer is `false`. The audit record is
    /// built by `decide`, so what it says the change replaced is what was
    /// there when it was written.
    ///
    /// There is no default: a store that cannot read and write in one step
    /// would let a change decided on a standing that has since changed land
    /// (an admin demoting a user just made an owner).
    fn set_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        state: UserState,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<bool, StoreError>;

    /// Set what is known of a user.
    fn set_user(&self, account: &str, user: &str, state: UserState) -> Result<(), StoreError> {
        self.set_user_audited(account, user, state, None)
    }

    /// Add `record`, a key that acts through `user`'s standing (a user token
    /// of `user`, or a scoped token `user` made), in **one atomic step** with
    /// reading that standing (docs/design.md, "Invariants").
    ///
    /// Reads the state of `user` in the record's account; if the store knows
    /// nothing of the user, the state is `if_unknown`. Then `admit` decides on
    /// that state: when it says no, nothing at all is written and the answer
    /// is [`UserInsert::Refused`]; when it says yes, the record is stored (and
    /// `if_unknown` too, if the user was unknown) and the answer is
    /// [`UserInsert::Inserted`]. No [`KeyStore::set_user`] or
    /// [`KeyStore::remove_user`] may land between the read and the insert:
    /// an offboarding that returned is never undone by a racing insert, and a
    /// token inserted before it is disabled by it. Refuses a duplicate id or
    /// digest like [`KeyStore::insert`]. `audit` is written with the record,
    /// in the same transaction.
    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        audit: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError>;

    /// Offboard `user` of `account` in **one atomic step**: mark them removed
    /// (keeping their role; a user the store did not know is stored as a
    /// removed [`Role::LimitedStakeholder`]) and disable, recording
    /// `disabled`, every key whose [`standing_user`] they are (their user
    /// tokens and the scoped tokens they made) that is not disabled yet.
    /// Returns the records it disabled, as they are now. `audit` is written
    /// in the same transaction.
    ///
    /// [`Role::LimitedStakeholder`]: crate::Role::LimitedStakeholder
    fn remove_user(
        &self,
        account: &str,
        user: &str,
        disabled: &Disabled,
        audit: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError>;

    /// [`KeyStore::remove_user`] decided in **one atomic step** with reading
    /// the standings the decision depends on, like [`KeyStore::set_user_as`]
    /// (`actor`: the user making the change, `None` for the system): `decide` sees the stored
    /// states of `actor` and `user`; on [`Edit::Write`] the offboarding of
    /// [`KeyStore::remove_user`] is done with its audit record in one
    /// transaction and the records it disabled are returned; on
    /// [`Edit::Keep`] nothing is written and the answer is `None`.
    ///
    /// There is no default, for the reason given at [`KeyStore::set_user_as`].
    fn remove_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        disabled: &Disabled,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError>;

    /// Write out whatever the store holds back (queued last-use times), and
    /// say how many it wrote. Stores that write everything at once keep the
    /// default, which writes nothing and answers 0.
    fn flush_writes(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// The rule every [`KeyStore::update`] applies: `after` (the record as the
/// change left it) must keep `before`'s id, digest, account, kind and owner.
///
/// These fields are what the store indexes a record by and what decides whom a
/// key acts for, so a store refuses the whole update, writing nothing, when
/// one differs: [`StoreError::Immutable`] names the first that does. Every
/// other field (description, disabled, expiry, last use, …) may change.
///
/// ```
/// use apikeys::store::check_immutable;
/// use apikeys::{KeyKind, StoreError};
/// # let before = apikeys::testing::sample_record("acme", KeyKind::UserToken);
///
/// let mut after = before.clone();
/// after.description = "renamed".into();
/// assert!(check_immutable(&before, &after).is_ok());
///
/// after.owner = Some("PSOMEONE_ELSE".into());
/// assert!(matches!(
///     check_immutable(&before, &after),
///     Err(StoreError::Immutable { field: "owner" })
/// ));
/// ```
pub fn check_immutable(before: &KeyRecord, after: &KeyRecord) -> Result<(), StoreError> {
    let field = if before.id != after.id {
        "id"
    } else if before.digest != after.digest {
        "digest"
    } else if before.account != after.account {
        "account"
    } else if before.kind != after.kind {
        "kind"
    } else if before.owner != after.owner {
        "owner"
    } else {
        return Ok(());
    };
    Err(StoreError::Immutable { field })
}

/// A record as a keyring would store it, for tests: the given id, account,
/// kind and digest; user tokens owned by `PUSER1`; no scopes, target or use.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn record_for_tests(
    id: KeyId,
    account: &str,
    kind: KeyKind,
    digest: Digest,
) -> KeyRecord {
    KeyRecord {
        id,
        account: account.into(),
        kind,
        description: "test key".into(),
        access: crate::record::AccessLevel::FullAccess,
        owner: (kind == KeyKind::UserToken).then(|| "PUSER1".into()),
        target: None,
        scopes: Box::new([]),
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        created_by: "PADMIN1".into(),
        api_version: crate::record::ApiVersion::V2,
        disabled: None,
        last_used_at: None,
        expires_at: None,
        hint: crate::key::Hint::of("abcd"),
        digest,
        rotation: None,
        last_used_from: None,
    }
}

// Plain calls through the pointer, no more than written by hand would be
// (the hot path's `find_by_digest_with` and `find_cached_with` go this way).
// The provided methods that only call another (`insert`, `update`, `delete`,
// `set_account_settings`, `set_user`) keep the trait's default.
impl<S: KeyStore + ?Sized> KeyStore for Arc<S> {
    crate::forward_key_store! { self => (**self);
        insert_audited, find_by_digest, find_cached, find_by_digest_with, find_cached_with,
        may_block, get, list, update_audited, delete_audited, rotate, successor_used,
        keeps_audit, append_audit, audit_records, prune_audit, record_use, record_use_from,
        account_settings, set_account_settings_audited, set_account_settings_as, user,
        set_user_as, remove_user_as, set_user_audited, flush_writes, insert_for_user,
        remove_user,
    }
}

/// The state [`KeyStore::remove_user`] stores for a user: `known` marked
/// removed, or a removed [`Role::LimitedStakeholder`](crate::Role) when the
/// store knew nothing of them.
pub fn removed_state(known: Option<UserState>) -> UserState {
    UserState {
        role: known.map_or(crate::role::Role::LimitedStakeholder, |s| s.role),
        removed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::KeyHasher;
    use crate::record::{AccessLevel, Disabled};

    fn token() -> KeyRecord {
        record_for_tests(
            KeyId::from_u64(7),
            "acme",
            KeyKind::UserToken,
            KeyHasher::sha256().digest(b"a key"),
        )
    }

    fn refused(before: &KeyRecord, change: impl FnOnce(&mut KeyRecord)) -> &'static str {
        let mut after = before.clone();
        change(&mut after);
        match check_immutable(before, &after) {
            Err(StoreError::Immutable { field }) => field,
            other => panic!("expected Immutable, got {other:?}"),
        }
    }

    #[test]
    fn check_immutable_names_each_field_that_may_not_change() {
        let r = token();
        assert_eq!(refused(&r, |x| x.id = KeyId::from_u64(8)), "id");
        assert_eq!(
            refused(&r, |x| x.digest = KeyHasher::sha256().digest(b"another")),
            "digest"
        );
        assert_eq!(refused(&r, |x| x.account = "other".into()), "account");
        assert_eq!(refused(&r, |x| x.kind = KeyKind::General), "kind");
        assert_eq!(refused(&r, |x| x.owner = Some("PUSER2".into())), "owner");
        assert_eq!(refused(&r, |x| x.owner = None), "owner");
        let mut general = token();
        general.kind = KeyKind::General;
        general.owner = None;
        assert_eq!(
            refused(&general, |x| x.owner = Some("PUSER1".into())),
            "owner"
        );
    }

    #[test]
    fn check_immutable_names_the_first_changed_field() {
        let r = token();
        assert_eq!(
            refused(&r, |x| {
                x.owner = None;
                x.kind = KeyKind::General;
                x.account = "other".into();
            }),
            "account"
        );
    }

    #[test]
    fn check_immutable_allows_every_other_change() {
        let r = token();
        let mut after = r.clone();
        after.description = "renamed".into();
        after.access = AccessLevel::ReadOnly;
        after.disabled = Some(
            Disabled {
                by: "PADMIN1".into(),
                at: Timestamp::from_unix_millis(1_700_000_001_000),
            }
            .into(),
        );
        after.last_used_at = Some(Timestamp::from_unix_millis(1_700_000_002_000));
        after.expires_at = Some(Timestamp::from_unix_millis(1_800_000_000_000));
        after.owner = Some("PUSER1".into()); // the same owner, written again
        assert!(check_immutable(&r, &after).is_ok());
        assert!(check_immutable(&r, &r.clone()).is_ok());
    }
}
