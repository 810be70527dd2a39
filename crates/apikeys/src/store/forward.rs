//! [`forward_key_store!`](crate::forward_key_store): each [`KeyStore`]
//! method's forwarding signature, written once for every wrapper.
//!
//! [`KeyStore`]: super::KeyStore

/// Writes [`KeyStore`](crate::KeyStore) methods that hand each call on,
/// unchanged, to another store: the one place that knows every method's
/// signature, so a wrapper writes only what it does differently.
///
/// Inside an `impl KeyStore for …` block, name the receiver `self` (a macro
/// cannot see the caller's `self` unless it is handed in), then, after `=>`,
/// the store to call, then the methods to forward:
///
/// - `self => self.inner; get, list, …` calls `self.inner.get(id)` and so on;
///   any expression of a type with those methods will do (`(**self)` for a
///   smart pointer, `self.0`);
/// - `self => |method| self.on(method); get, …` first binds `method` to the
///   method's name (a `&'static str`, `"get"`), for a wrapper that tells
///   someone which call it hands on (`apikeys::testing::wrap::Wrapped`, of
///   the feature `testing`, does);
/// - `all` instead of the list forwards every method of the trait, the
///   provided ones (`insert`, `update`, …) included.
///
/// The methods written are plain calls, with no indirection added: what the
/// compiler would make of the same methods written out by hand. A method
/// left out keeps the trait's default (which may call one that is
/// forwarded: `insert` calls `insert_audited`) or is written by hand.
///
/// ```
/// use apikeys::{AuditEvent, KeyRecord, KeyStore, MemoryStore, StoreError};
///
/// /// Refuses new keys; everything else reaches the store.
/// struct ReadMostly(MemoryStore);
///
/// impl KeyStore for ReadMostly {
///     apikeys::forward_key_store! { self => self.0;
///         find_by_digest, find_by_digest_with, find_cached, find_cached_with,
///         may_block, get, list, update_audited, delete_audited, rotate,
///         successor_used, keeps_audit, append_audit, audit_records,
///         prune_audit, record_use, record_use_from, account_settings,
///         set_account_settings_audited, set_account_settings_as, user,
///         set_user_audited, set_user_as, remove_user, remove_user_as,
///         flush_writes,
///     }
///     fn insert_audited(&self, _: KeyRecord, _: Option<&AuditEvent>) -> Result<(), StoreError> {
///         Err(StoreError::Unavailable("read-mostly".into()))
///     }
///     fn insert_for_user(
///         &self,
///         _: KeyRecord,
///         _: &str,
///         _: apikeys::UserState,
///         _: &mut dyn FnMut(&apikeys::UserState) -> bool,
///         _: Option<&AuditEvent>,
///     ) -> Result<apikeys::UserInsert, StoreError> {
///         Err(StoreError::Unavailable("read-mostly".into()))
///     }
/// }
///
/// let keyring = apikeys::Keyring::new(ReadMostly(MemoryStore::new()));
/// let admin = apikeys::Actor::new("acme", "PADMIN1", apikeys::Role::Admin);
/// assert!(keyring.create_general_key(&admin, "k", apikeys::AccessLevel::FullAccess).is_err());
/// ```
#[macro_export]
macro_rules! forward_key_store {
    // The public forms.
    ($self:ident => |$name:ident| $to:expr; all) => {
        $crate::forward_key_store!(@all [$self] [$name] [$to]);
    };
    ($self:ident => $to:expr; all) => {
        $crate::forward_key_store!(@all [$self] [] [$to]);
    };
    ($self:ident => |$name:ident| $to:expr; $($method:ident),+ $(,)?) => {
        $($crate::forward_key_store!(@fn [$self] [$name] [$to] $method);)+
    };
    ($self:ident => $to:expr; $($method:ident),+ $(,)?) => {
        $($crate::forward_key_store!(@fn [$self] [] [$to] $method);)+
    };

    // Every method of the trait (the forwarding test checks this list
    // against the trait).
    (@all [$self:ident] [$($name:ident)?] [$to:expr]) => {
        $crate::forward_key_store!(@each [$self] [$($name)?] [$to]
            insert_audited insert find_by_digest find_by_digest_with
            find_cached_with find_cached may_block get list update_audited
            update delete_audited delete rotate successor_used keeps_audit
            append_audit audit_records prune_audit record_use record_use_from
            account_settings set_account_settings_audited set_account_settings
            set_account_settings_as user set_user_audited set_user_as set_user
            insert_for_user remove_user remove_user_as flush_writes);
    };
    (@each [$self:ident] $name:tt [$to:expr] $($method:ident)*) => {
        $($crate::forward_key_store!(@fn [$self] $name [$to] $method);)*
    };

    // One method each: its signature, and the call it forwards.
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] insert_audited) => {
        fn insert_audited(
            &$self,
            record: $crate::KeyRecord,
            audit: ::core::option::Option<&$crate::AuditEvent>,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "insert_audited";)?
            $to.insert_audited(record, audit)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] insert) => {
        fn insert(
            &$self,
            record: $crate::KeyRecord,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "insert";)?
            $to.insert(record)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] find_by_digest) => {
        fn find_by_digest(
            &$self,
            digest: &$crate::Digest,
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyLookup>, $crate::StoreError>
        {
            $(let $name: &'static str = "find_by_digest";)?
            $to.find_by_digest(digest)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] find_by_digest_with) => {
        fn find_by_digest_with(
            &$self,
            digest: &$crate::Digest,
            f: &mut dyn FnMut(::core::option::Option<$crate::LookupRef<'_>>),
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "find_by_digest_with";)?
            $to.find_by_digest_with(digest, f)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] find_cached_with) => {
        fn find_cached_with(
            &$self,
            digest: &$crate::Digest,
            f: &mut dyn FnMut(::core::option::Option<$crate::LookupRef<'_>>),
        ) -> bool {
            $(let $name: &'static str = "find_cached_with";)?
            $to.find_cached_with(digest, f)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] find_cached) => {
        fn find_cached(&$self, digest: &$crate::Digest) -> $crate::CachedLookup {
            $(let $name: &'static str = "find_cached";)?
            $to.find_cached(digest)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] may_block) => {
        fn may_block(&$self) -> bool {
            $(let $name: &'static str = "may_block";)?
            $to.may_block()
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] get) => {
        fn get(
            &$self,
            id: $crate::KeyId,
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyRecord>, $crate::StoreError>
        {
            $(let $name: &'static str = "get";)?
            $to.get(id)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] list) => {
        fn list(
            &$self,
            account: &str,
            filter: &$crate::KeyFilter,
        ) -> ::core::result::Result<::std::vec::Vec<$crate::KeyRecord>, $crate::StoreError> {
            $(let $name: &'static str = "list";)?
            $to.list(account, filter)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] update_audited) => {
        fn update_audited(
            &$self,
            id: $crate::KeyId,
            change: &mut dyn FnMut(&mut $crate::KeyRecord) -> $crate::Edit,
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyRecord>, $crate::StoreError>
        {
            $(let $name: &'static str = "update_audited";)?
            $to.update_audited(id, change)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] update) => {
        fn update(
            &$self,
            id: $crate::KeyId,
            change: &mut dyn FnMut(&mut $crate::KeyRecord),
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyRecord>, $crate::StoreError>
        {
            $(let $name: &'static str = "update";)?
            $to.update(id, change)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] delete_audited) => {
        fn delete_audited(
            &$self,
            id: $crate::KeyId,
            check: &mut dyn FnMut(
                &$crate::KeyRecord,
                ::core::option::Option<&$crate::UserState>,
            ) -> $crate::Edit,
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyRecord>, $crate::StoreError>
        {
            $(let $name: &'static str = "delete_audited";)?
            $to.delete_audited(id, check)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] delete) => {
        fn delete(
            &$self,
            id: $crate::KeyId,
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyRecord>, $crate::StoreError>
        {
            $(let $name: &'static str = "delete";)?
            $to.delete(id)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] rotate) => {
        fn rotate(
            &$self,
            old: $crate::KeyId,
            new: $crate::KeyRecord,
            if_unknown: $crate::UserState,
            decide: &mut dyn FnMut(
                &mut $crate::KeyRecord,
                ::core::option::Option<&$crate::UserState>,
            ) -> $crate::Edit,
        ) -> ::core::result::Result<::core::option::Option<$crate::KeyRecord>, $crate::StoreError>
        {
            $(let $name: &'static str = "rotate";)?
            $to.rotate(old, new, if_unknown, decide)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] successor_used) => {
        fn successor_used(
            &$self,
            predecessor: $crate::KeyId,
            at: $crate::Timestamp,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "successor_used";)?
            $to.successor_used(predecessor, at)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] keeps_audit) => {
        fn keeps_audit(&$self) -> bool {
            $(let $name: &'static str = "keeps_audit";)?
            $to.keeps_audit()
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] append_audit) => {
        fn append_audit(
            &$self,
            event: &$crate::AuditEvent,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "append_audit";)?
            $to.append_audit(event)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] audit_records) => {
        fn audit_records(
            &$self,
            window: &$crate::AuditWindow,
        ) -> ::core::result::Result<$crate::AuditPage, $crate::StoreError> {
            $(let $name: &'static str = "audit_records";)?
            $to.audit_records(window)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] prune_audit) => {
        fn prune_audit(
            &$self,
            before: $crate::Timestamp,
        ) -> ::core::result::Result<usize, $crate::StoreError> {
            $(let $name: &'static str = "prune_audit";)?
            $to.prune_audit(before)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] record_use) => {
        fn record_use(
            &$self,
            id: $crate::KeyId,
            at: $crate::Timestamp,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "record_use";)?
            $to.record_use(id, at)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] record_use_from) => {
        fn record_use_from(
            &$self,
            id: $crate::KeyId,
            at: $crate::Timestamp,
            place: &$crate::UsePlace,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "record_use_from";)?
            $to.record_use_from(id, at, place)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] account_settings) => {
        fn account_settings(
            &$self,
            account: &str,
        ) -> ::core::result::Result<$crate::AccountSettings, $crate::StoreError> {
            $(let $name: &'static str = "account_settings";)?
            $to.account_settings(account)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] set_account_settings_audited) => {
        fn set_account_settings_audited(
            &$self,
            account: &str,
            settings: $crate::AccountSettings,
            audit: ::core::option::Option<&$crate::AuditEvent>,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "set_account_settings_audited";)?
            $to.set_account_settings_audited(account, settings, audit)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] set_account_settings) => {
        fn set_account_settings(
            &$self,
            account: &str,
            settings: $crate::AccountSettings,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "set_account_settings";)?
            $to.set_account_settings(account, settings)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] set_account_settings_as) => {
        fn set_account_settings_as(
            &$self,
            account: &str,
            actor: ::core::option::Option<&str>,
            settings: $crate::AccountSettings,
            decide: &mut dyn FnMut(
                ::core::option::Option<&$crate::UserState>,
                &$crate::AccountSettings,
            ) -> $crate::Edit,
        ) -> ::core::result::Result<bool, $crate::StoreError> {
            $(let $name: &'static str = "set_account_settings_as";)?
            $to.set_account_settings_as(account, actor, settings, decide)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] user) => {
        fn user(
            &$self,
            account: &str,
            user: &str,
        ) -> ::core::result::Result<::core::option::Option<$crate::UserState>, $crate::StoreError>
        {
            $(let $name: &'static str = "user";)?
            $to.user(account, user)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] set_user_audited) => {
        fn set_user_audited(
            &$self,
            account: &str,
            user: &str,
            state: $crate::UserState,
            audit: ::core::option::Option<&$crate::AuditEvent>,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "set_user_audited";)?
            $to.set_user_audited(account, user, state, audit)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] set_user_as) => {
        fn set_user_as(
            &$self,
            account: &str,
            actor: ::core::option::Option<&str>,
            user: &str,
            state: $crate::UserState,
            decide: &mut dyn FnMut(&$crate::Standings) -> $crate::Edit,
        ) -> ::core::result::Result<bool, $crate::StoreError> {
            $(let $name: &'static str = "set_user_as";)?
            $to.set_user_as(account, actor, user, state, decide)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] set_user) => {
        fn set_user(
            &$self,
            account: &str,
            user: &str,
            state: $crate::UserState,
        ) -> ::core::result::Result<(), $crate::StoreError> {
            $(let $name: &'static str = "set_user";)?
            $to.set_user(account, user, state)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] insert_for_user) => {
        fn insert_for_user(
            &$self,
            record: $crate::KeyRecord,
            user: &str,
            if_unknown: $crate::UserState,
            admit: &mut dyn FnMut(&$crate::UserState) -> bool,
            audit: ::core::option::Option<&$crate::AuditEvent>,
        ) -> ::core::result::Result<$crate::UserInsert, $crate::StoreError> {
            $(let $name: &'static str = "insert_for_user";)?
            $to.insert_for_user(record, user, if_unknown, admit, audit)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] remove_user) => {
        fn remove_user(
            &$self,
            account: &str,
            user: &str,
            disabled: &$crate::Disabled,
            audit: ::core::option::Option<&$crate::AuditEvent>,
        ) -> ::core::result::Result<::std::vec::Vec<$crate::KeyRecord>, $crate::StoreError> {
            $(let $name: &'static str = "remove_user";)?
            $to.remove_user(account, user, disabled, audit)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] remove_user_as) => {
        fn remove_user_as(
            &$self,
            account: &str,
            actor: ::core::option::Option<&str>,
            user: &str,
            disabled: &$crate::Disabled,
            decide: &mut dyn FnMut(&$crate::Standings) -> $crate::Edit,
        ) -> ::core::result::Result<
            ::core::option::Option<::std::vec::Vec<$crate::KeyRecord>>,
            $crate::StoreError,
        > {
            $(let $name: &'static str = "remove_user_as";)?
            $to.remove_user_as(account, actor, user, disabled, decide)
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] flush_writes) => {
        fn flush_writes(&$self) -> ::core::result::Result<usize, $crate::StoreError> {
            $(let $name: &'static str = "flush_writes";)?
            $to.flush_writes()
        }
    };
    (@fn [$self:ident] [$($name:ident)?] [$to:expr] $other:ident) => {
        ::core::compile_error!(::core::concat!(
            "forward_key_store!: `",
            ::core::stringify!($other),
            "` is not a KeyStore method it knows (add it to the macro with the trait)"
        ));
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use crate::audit::{AuditAction, AuditOutcome, CallContext};
    use crate::key::KeyKind;
    use crate::store::record_for_tests;
    use crate::{
        AccountSettings, AuditEvent, AuditPage, AuditQuery, AuditWindow, CachedLookup, Digest,
        Disabled, Edit, KeyFilter, KeyHasher, KeyId, KeyLookup, KeyRecord, KeyStore, LookupRef,
        Role, Standings, StoreError, Timestamp, UsePlace, UserInsert, UserState,
    };

    /// A store that notes each call it gets (the method and what it was
    /// handed) and answers what no default of the trait answers.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    impl Recording {
        fn saw(&self, call: String) {
            self.0.lock().unwrap().push(call);
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn audit_id(audit: Option<&AuditEvent>) -> Option<u64> {
        audit.map(|a| a.id)
    }

    const ADMIN: UserState = UserState {
        role: Role::Admin,
        removed: false,
    };

    impl KeyStore for Recording {
        fn insert_audited(&self, r: KeyRecord, a: Option<&AuditEvent>) -> Result<(), StoreError> {
            self.saw(format!("insert_audited {:?} {:?}", r.id, audit_id(a)));
            Ok(())
        }
        fn insert(&self, r: KeyRecord) -> Result<(), StoreError> {
            self.saw(format!("insert {:?}", r.id));
            Ok(())
        }
        fn find_by_digest(&self, d: &Digest) -> Result<Option<KeyLookup>, StoreError> {
            self.saw(format!("find_by_digest {}", d.to_hex()));
            Ok(None)
        }
        fn find_by_digest_with(
            &self,
            d: &Digest,
            f: &mut dyn FnMut(Option<LookupRef<'_>>),
        ) -> Result<(), StoreError> {
            self.saw(format!("find_by_digest_with {}", d.to_hex()));
            f(None);
            Ok(())
        }
        fn find_cached_with(&self, d: &Digest, f: &mut dyn FnMut(Option<LookupRef<'_>>)) -> bool {
            self.saw(format!("find_cached_with {}", d.to_hex()));
            f(None);
            true
        }
        fn find_cached(&self, d: &Digest) -> CachedLookup {
            self.saw(format!("find_cached {}", d.to_hex()));
            CachedLookup::Known(None)
        }
        fn may_block(&self) -> bool {
            self.saw("may_block".into());
            false
        }
        fn get(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
            self.saw(format!("get {id:?}"));
            Ok(None)
        }
        fn list(&self, account: &str, f: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
            self.saw(format!("list {account} {:?}", f.owner));
            Ok(Vec::new())
        }
        fn update_audited(
            &self,
            id: KeyId,
            change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
        ) -> Result<Option<KeyRecord>, StoreError> {
            let mut r = record(id);
            let write = matches!(change(&mut r), Edit::Write(_));
            self.saw(format!("update_audited {id:?} {write}"));
            Ok(Some(r))
        }
        fn update(
            &self,
            id: KeyId,
            change: &mut dyn FnMut(&mut KeyRecord),
        ) -> Result<Option<KeyRecord>, StoreError> {
            let mut r = record(id);
            change(&mut r);
            self.saw(format!("update {id:?}"));
            Ok(Some(r))
        }
        fn delete_audited(
            &self,
            id: KeyId,
            check: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
        ) -> Result<Option<KeyRecord>, StoreError> {
            let r = record(id);
            let write = matches!(check(&r, Some(&ADMIN)), Edit::Write(_));
            self.saw(format!("delete_audited {id:?} {write}"));
            Ok(Some(r))
        }
        fn delete(&self, id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
            self.saw(format!("delete {id:?}"));
            Ok(Some(record(id)))
        }
        fn rotate(
            &self,
            old: KeyId,
            new: KeyRecord,
            if_unknown: UserState,
            decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
        ) -> Result<Option<KeyRecord>, StoreError> {
            let mut r = record(old);
            let write = matches!(decide(&mut r, None), Edit::Write(_));
            self.saw(format!(
                "rotate {old:?} {:?} {:?} {write}",
                new.id, if_unknown.role
            ));
            Ok(Some(r))
        }
        fn successor_used(&self, predecessor: KeyId, at: Timestamp) -> Result<(), StoreError> {
            self.saw(format!("successor_used {predecessor:?} {at:?}"));
            Ok(())
        }
        fn keeps_audit(&self) -> bool {
            self.saw("keeps_audit".into());
            true
        }
        fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
            self.saw(format!("append_audit {}", event.id));
            Ok(())
        }
        fn audit_records(&self, window: &AuditWindow) -> Result<AuditPage, StoreError> {
            self.saw(format!("audit_records {}", window.account));
            Ok(AuditPage {
                next_cursor: Some("next".into()),
                ..AuditPage::default()
            })
        }
        fn prune_audit(&self, before: Timestamp) -> Result<usize, StoreError> {
            self.saw(format!("prune_audit {before:?}"));
            Ok(7)
        }
        fn record_use(&self, id: KeyId, at: Timestamp) -> Result<(), StoreError> {
            self.saw(format!("record_use {id:?} {at:?}"));
            Ok(())
        }
        fn record_use_from(
            &self,
            id: KeyId,
            at: Timestamp,
            place: &UsePlace,
        ) -> Result<(), StoreError> {
            self.saw(format!("record_use_from {id:?} {at:?} {:?}", place.path));
            Ok(())
        }
        fn account_settings(&self, account: &str) -> Result<AccountSettings, StoreError> {
            self.saw(format!("account_settings {account}"));
            Ok(AccountSettings {
                rest_api: false,
                advanced_permissions: false,
            })
        }
        fn set_account_settings_audited(
            &self,
            account: &str,
            s: AccountSettings,
            a: Option<&AuditEvent>,
        ) -> Result<(), StoreError> {
            self.saw(format!(
                "set_account_settings_audited {account} {} {:?}",
                s.rest_api,
                audit_id(a)
            ));
            Ok(())
        }
        fn set_account_settings(
            &self,
            account: &str,
            s: AccountSettings,
        ) -> Result<(), StoreError> {
            self.saw(format!("set_account_settings {account} {}", s.rest_api));
            Ok(())
        }
        fn set_account_settings_as(
            &self,
            account: &str,
            actor: Option<&str>,
            s: AccountSettings,
            decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
        ) -> Result<bool, StoreError> {
            let write = matches!(decide(Some(&ADMIN), &s), Edit::Write(_));
            self.saw(format!(
                "set_account_settings_as {account} {actor:?} {} {write}",
                s.rest_api
            ));
            Ok(true)
        }
        fn user(&self, account: &str, user: &str) -> Result<Option<UserState>, StoreError> {
            self.saw(format!("user {account} {user}"));
            Ok(Some(ADMIN))
        }
        fn set_user_audited(
            &self,
            account: &str,
            user: &str,
            s: UserState,
            a: Option<&AuditEvent>,
        ) -> Result<(), StoreError> {
            self.saw(format!(
                "set_user_audited {account} {user} {:?} {:?}",
                s.role,
                audit_id(a)
            ));
            Ok(())
        }
        fn set_user_as(
            &self,
            account: &str,
            actor: Option<&str>,
            user: &str,
            s: UserState,
            decide: &mut dyn FnMut(&Standings) -> Edit,
        ) -> Result<bool, StoreError> {
            let write = matches!(decide(&Standings::default()), Edit::Write(_));
            self.saw(format!(
                "set_user_as {account} {actor:?} {user} {:?} {write}",
                s.role
            ));
            Ok(true)
        }
        fn set_user(&self, account: &str, user: &str, s: UserState) -> Result<(), StoreError> {
            self.saw(format!("set_user {account} {user} {:?}", s.role));
            Ok(())
        }
        fn insert_for_user(
            &self,
            r: KeyRecord,
            user: &str,
            if_unknown: UserState,
            admit: &mut dyn FnMut(&UserState) -> bool,
            a: Option<&AuditEvent>,
        ) -> Result<UserInsert, StoreError> {
            let admitted = admit(&if_unknown);
            self.saw(format!(
                "insert_for_user {:?} {user} {:?} {admitted} {:?}",
                r.id,
                if_unknown.role,
                audit_id(a)
            ));
            Ok(UserInsert::Refused(if_unknown))
        }
        fn remove_user(
            &self,
            account: &str,
            user: &str,
            d: &Disabled,
            a: Option<&AuditEvent>,
        ) -> Result<Vec<KeyRecord>, StoreError> {
            self.saw(format!(
                "remove_user {account} {user} {} {:?}",
                d.by,
                audit_id(a)
            ));
            Ok(vec![record(KeyId::from_u64(1))])
        }
        fn remove_user_as(
            &self,
            account: &str,
            actor: Option<&str>,
            user: &str,
            d: &Disabled,
            decide: &mut dyn FnMut(&Standings) -> Edit,
        ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
            let write = matches!(decide(&Standings::default()), Edit::Write(_));
            self.saw(format!(
                "remove_user_as {account} {actor:?} {user} {} {write}",
                d.by
            ));
            Ok(Some(Vec::new()))
        }
        fn flush_writes(&self) -> Result<usize, StoreError> {
            self.saw("flush_writes".into());
            Ok(5)
        }
    }

    fn digest() -> Digest {
        KeyHasher::sha256().digest(b"forwarded")
    }

    fn record(id: KeyId) -> KeyRecord {
        record_for_tests(id, "acme", KeyKind::General, digest())
    }

    fn event() -> AuditEvent {
        AuditEvent {
            id: 99,
            at: Timestamp::from_unix_millis(1),
            account: "acme".into(),
            actor: "PADMIN1".into(),
            actor_role: Some(Role::Admin),
            action: AuditAction::Create,
            key_kind: None,
            key_id: None,
            subject_user: None,
            changes: Vec::new(),
            context: CallContext::new(),
            outcome: AuditOutcome::Allowed,
        }
    }

    type Call = Box<dyn Fn(&dyn KeyStore)>;

    /// Every method of the trait called once through `store`, each with what
    /// the inner store must note of the call (its own method, with the
    /// arguments in their places) if the call reached it.
    fn every_call() -> Vec<(&'static str, String, Call)> {
        let id = KeyId::from_u64(7);
        let new_id = KeyId::from_u64(8);
        let at = Timestamp::from_unix_millis(1_000);
        let hex = digest().to_hex();
        let ev = event();
        let off = AccountSettings {
            rest_api: false,
            advanced_permissions: true,
        };
        let limited = UserState {
            role: Role::LimitedStakeholder,
            removed: false,
        };
        let disabled = Disabled {
            by: "PADMIN1".into(),
            at,
        };
        let place = UsePlace {
            path: Some("/here".into()),
            ..UsePlace::default()
        };
        let window = AuditQuery::account("acme").resolve(at).unwrap();
        let mut calls: Vec<(&'static str, String, Call)> = Vec::new();
        let mut add = |method: &'static str, expected: String, call: Call| {
            calls.push((method, expected, call));
        };
        let e = ev.clone();
        add(
            "insert_audited",
            format!("insert_audited {new_id:?} Some(99)"),
            Box::new(move |s| s.insert_audited(record(new_id), Some(&e)).unwrap()),
        );
        add(
            "insert",
            format!("insert {new_id:?}"),
            Box::new(move |s| s.insert(record(new_id)).unwrap()),
        );
        add(
            "find_by_digest",
            format!("find_by_digest {hex}"),
            Box::new(|s| assert!(s.find_by_digest(&digest()).unwrap().is_none())),
        );
        add(
            "find_by_digest_with",
            format!("find_by_digest_with {hex}"),
            Box::new(|s| {
                let mut lent = 0;
                s.find_by_digest_with(&digest(), &mut |f| {
                    assert!(f.is_none());
                    lent += 1;
                })
                .unwrap();
                assert_eq!(lent, 1);
            }),
        );
        add(
            "find_cached_with",
            format!("find_cached_with {hex}"),
            Box::new(|s| {
                let mut lent = 0;
                assert!(s.find_cached_with(&digest(), &mut |_| lent += 1));
                assert_eq!(lent, 1);
            }),
        );
        add(
            "find_cached",
            format!("find_cached {hex}"),
            Box::new(|s| {
                assert!(matches!(
                    s.find_cached(&digest()),
                    CachedLookup::Known(None)
                ))
            }),
        );
        add(
            "may_block",
            "may_block".into(),
            Box::new(|s| assert!(!s.may_block())),
        );
        add(
            "get",
            format!("get {id:?}"),
            Box::new(move |s| assert!(s.get(id).unwrap().is_none())),
        );
        add(
            "list",
            "list acme Some(\"PUSER1\")".into(),
            Box::new(|s| {
                let filter = KeyFilter {
                    owner: Some("PUSER1".into()),
                    ..KeyFilter::default()
                };
                assert!(s.list("acme", &filter).unwrap().is_empty());
            }),
        );
        add(
            "update_audited",
            format!("update_audited {id:?} false"),
            Box::new(move |s| {
                let r = s.update_audited(id, &mut |r| {
                    r.description = "edited".into();
                    Edit::Keep
                });
                assert_eq!(&*r.unwrap().unwrap().description, "edited");
            }),
        );
        add(
            "update",
            format!("update {id:?}"),
            Box::new(move |s| {
                let r = s.update(id, &mut |r| r.description = "edited".into());
                assert_eq!(&*r.unwrap().unwrap().description, "edited");
            }),
        );
        add(
            "delete_audited",
            format!("delete_audited {id:?} true"),
            Box::new(move |s| {
                let r = s.delete_audited(id, &mut |_, owner| {
                    assert_eq!(owner, Some(&ADMIN));
                    Edit::Write(None)
                });
                assert_eq!(r.unwrap().unwrap().id, id);
            }),
        );
        add(
            "delete",
            format!("delete {id:?}"),
            Box::new(move |s| assert_eq!(s.delete(id).unwrap().unwrap().id, id)),
        );
        add(
            "rotate",
            format!("rotate {id:?} {new_id:?} LimitedStakeholder false"),
            Box::new(move |s| {
                let r = s.rotate(id, record(new_id), limited, &mut |_, _| Edit::Keep);
                assert_eq!(r.unwrap().unwrap().id, id);
            }),
        );
        add(
            "successor_used",
            format!("successor_used {id:?} {at:?}"),
            Box::new(move |s| s.successor_used(id, at).unwrap()),
        );
        add(
            "keeps_audit",
            "keeps_audit".into(),
            Box::new(|s| assert!(s.keeps_audit())),
        );
        let e = ev.clone();
        add(
            "append_audit",
            "append_audit 99".into(),
            Box::new(move |s| s.append_audit(&e).unwrap()),
        );
        add(
            "audit_records",
            "audit_records acme".into(),
            Box::new(move |s| {
                let page = s.audit_records(&window).unwrap();
                assert_eq!(page.next_cursor.as_deref(), Some("next"));
            }),
        );
        add(
            "prune_audit",
            format!("prune_audit {at:?}"),
            Box::new(move |s| assert_eq!(s.prune_audit(at).unwrap(), 7)),
        );
        add(
            "record_use",
            format!("record_use {id:?} {at:?}"),
            Box::new(move |s| s.record_use(id, at).unwrap()),
        );
        add(
            "record_use_from",
            format!("record_use_from {id:?} {at:?} Some(\"/here\")"),
            Box::new(move |s| s.record_use_from(id, at, &place).unwrap()),
        );
        add(
            "account_settings",
            "account_settings acme".into(),
            Box::new(|s| assert!(!s.account_settings("acme").unwrap().rest_api)),
        );
        let e = ev.clone();
        add(
            "set_account_settings_audited",
            "set_account_settings_audited acme false Some(99)".into(),
            Box::new(move |s| {
                s.set_account_settings_audited("acme", off, Some(&e))
                    .unwrap()
            }),
        );
        add(
            "set_account_settings",
            "set_account_settings acme false".into(),
            Box::new(move |s| s.set_account_settings("acme", off).unwrap()),
        );
        add(
            "set_account_settings_as",
            "set_account_settings_as acme Some(\"PADMIN1\") false true".into(),
            Box::new(move |s| {
                let written =
                    s.set_account_settings_as("acme", Some("PADMIN1"), off, &mut |a, _| {
                        assert_eq!(a, Some(&ADMIN));
                        Edit::Write(None)
                    });
                assert!(written.unwrap());
            }),
        );
        add(
            "user",
            "user acme PUSER1".into(),
            Box::new(|s| assert_eq!(s.user("acme", "PUSER1").unwrap(), Some(ADMIN))),
        );
        let e = ev.clone();
        add(
            "set_user_audited",
            "set_user_audited acme PUSER1 LimitedStakeholder Some(99)".into(),
            Box::new(move |s| {
                s.set_user_audited("acme", "PUSER1", limited, Some(&e))
                    .unwrap()
            }),
        );
        add(
            "set_user_as",
            "set_user_as acme Some(\"PADMIN1\") PUSER1 LimitedStakeholder false".into(),
            Box::new(move |s| {
                let written =
                    s.set_user_as("acme", Some("PADMIN1"), "PUSER1", limited, &mut |_| {
                        Edit::Keep
                    });
                assert!(written.unwrap());
            }),
        );
        add(
            "set_user",
            "set_user acme PUSER1 LimitedStakeholder".into(),
            Box::new(move |s| s.set_user("acme", "PUSER1", limited).unwrap()),
        );
        let e = ev.clone();
        add(
            "insert_for_user",
            format!("insert_for_user {new_id:?} PUSER1 LimitedStakeholder false Some(99)"),
            Box::new(move |s| {
                let out =
                    s.insert_for_user(record(new_id), "PUSER1", limited, &mut |_| false, Some(&e));
                assert_eq!(out.unwrap(), UserInsert::Refused(limited));
            }),
        );
        let d = disabled.clone();
        add(
            "remove_user",
            "remove_user acme PUSER1 PADMIN1 Some(99)".into(),
            Box::new(move |s| {
                let out = s.remove_user("acme", "PUSER1", &d, Some(&ev));
                assert_eq!(out.unwrap().len(), 1);
            }),
        );
        add(
            "remove_user_as",
            "remove_user_as acme None PUSER1 PADMIN1 true".into(),
            Box::new(move |s| {
                let out = s.remove_user_as("acme", None, "PUSER1", &disabled, &mut |_| {
                    Edit::Write(None)
                });
                assert_eq!(out.unwrap(), Some(Vec::new()));
            }),
        );
        add(
            "flush_writes",
            "flush_writes".into(),
            Box::new(|s| assert_eq!(s.flush_writes().unwrap(), 5)),
        );
        calls
    }

    /// The methods `KeyStore` declares, read from its source.
    fn trait_methods() -> BTreeSet<String> {
        let source = include_str!("../store.rs");
        let start = source
            .find("pub trait KeyStore")
            .expect("the trait in store.rs");
        let body = &source[start..];
        let body = &body[..body.find("\n}\n").expect("the end of the trait")];
        body.lines()
            .filter_map(|l| l.strip_prefix("    fn "))
            .map(|l| l[..l.find(['(', '<']).unwrap()].to_owned())
            .collect()
    }

    #[test]
    fn the_calls_here_are_every_method_of_the_trait() {
        let called: BTreeSet<String> = every_call().iter().map(|c| c.0.to_owned()).collect();
        let declared = trait_methods();
        assert!(declared.len() > 30, "{declared:?}");
        assert_eq!(called, declared);
    }

    /// Every method forwarded, to `self.inner`.
    struct Forward {
        inner: Recording,
    }

    impl KeyStore for Forward {
        crate::forward_key_store!(self => self.inner; all);
    }

    #[test]
    fn each_forwarded_method_reaches_the_same_method_of_the_inner_store() {
        let store = Forward {
            inner: Recording::default(),
        };
        for (method, expected, call) in every_call() {
            call(&store);
            assert_eq!(store.inner.take(), vec![expected], "{method}");
        }
    }

    /// Every method forwarded, each through `on` with its name.
    struct Named {
        inner: Recording,
        names: Mutex<Vec<&'static str>>,
    }

    impl Named {
        fn on(&self, method: &'static str) -> &Recording {
            self.names.lock().unwrap().push(method);
            &self.inner
        }
    }

    impl KeyStore for Named {
        crate::forward_key_store!(self => |method| self.on(method); all);
    }

    #[test]
    fn the_named_form_hands_each_call_on_with_its_own_name() {
        let store = Named {
            inner: Recording::default(),
            names: Mutex::default(),
        };
        for (method, expected, call) in every_call() {
            call(&store);
            assert_eq!(store.inner.take(), vec![expected], "{method}");
            let names = std::mem::take(&mut *store.names.lock().unwrap());
            assert_eq!(names, vec![method]);
        }
    }

    /// A list forwards what it names, and nothing else.
    struct Some2(Recording);

    impl KeyStore for Some2 {
        crate::forward_key_store! { self => self.0;
            insert_audited, find_by_digest, get, list, update_audited, delete_audited, rotate,
            record_use, account_settings, set_account_settings_audited, set_account_settings_as,
            user, set_user_audited, set_user_as, insert_for_user, remove_user, remove_user_as,
        }
    }

    #[test]
    fn a_method_left_out_keeps_the_default() {
        let store = Some2(Recording::default());
        assert!(store.may_block(), "the trait's default");
        assert!(!store.keeps_audit(), "the trait's default");
        assert_eq!(store.flush_writes().unwrap(), 0, "the trait's default");
        assert!(store.0.take().is_empty());
        store.insert(record(KeyId::from_u64(3))).unwrap();
        let id = KeyId::from_u64(3);
        assert_eq!(
            store.0.take(),
            vec![format!("insert_audited {id:?} None")],
            "`insert` keeps its default, which calls the forwarded `insert_audited`"
        );
    }
}
