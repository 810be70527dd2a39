//! The principal cache: what the binding keeps so that the hot path
//! (`authenticate`) answers a number instead of building objects.
//!
//! A principal is the same for every request made with one key by one role,
//! as long as the key's identity fields stay the same. `Slots` gives each
//! such key a slot; `authenticate` answers the handle `slot * 16 + role`, and
//! the JavaScript layer (`principals.js`) keeps one frozen principal object
//! per handle. Every call still runs every check in the core, so the cache
//! only saves building an object; it never decides anything. Each slot also
//! keeps the key's record as of its latest authentication, which a
//! principal's `record` reads.
//!
//! Failed authentications are answered the same way: as the number of an
//! error template (`Errors`), which the JavaScript layer turns into the
//! `Error` it throws.

use std::sync::{Mutex, MutexGuard, PoisonError};

use napi::bindgen_prelude::{Either, Null};

use crate::types::{Principal, Role};

type CoreResult<T> = apikeys::Result<T>;

/// The slots of the keys a keyring object has authenticated (see the module's
/// documentation).
///
/// Each slot keeps the core's principal of the key's latest authentication,
/// for its record: the core answers the store's own `Arc` of the record, so
/// the same record is the same address, and holding the principal keeps that
/// address from being reused. The id table's entry for the key holds that
/// address beside the slot, so a call whose record is at the kept address
/// reads that one entry and nothing else: not the kept principal, and not the
/// record's identity fields (the same record has the same fields, so their
/// fingerprint is computed only for a record at another address). Only a
/// record the store replaced (a last use a durable store wrote, a
/// description, a rotation…) is fingerprinted and taken, by a reference
/// count, never a copy. Comparing the records' fields instead read the kept
/// record and both descriptions on every call, and fingerprinting every call
/// read the account's text: memory accesses `7aa1ce6` did not all make,
/// cache misses over many keys (docs/performance.md, "Bindings: 7aa1ce6 vs
/// f5ccbb6, same session").
#[derive(Default)]
pub(crate) struct Slots {
    by_id: IdTable,
    kept: Vec<apikeys::Principal>,
}

/// Handles are `slot * 16 + role`; `NO_ROLE` is the role part for keys that are not user tokens.
pub(crate) const NO_ROLE: u32 = 15;
/// Answers with this bit set are error templates, not handles (see [`Errors`]).
pub(crate) const ERROR_BIT: u32 = 1 << 31;
const MAX_SLOTS: usize = (ERROR_BIT >> 4) as usize;
/// What `_tryAuthenticate` answers when only `authenticate` can: neither a
/// handle (below [`ERROR_BIT`]) nor an error template (below `ERROR_BIT |
/// MAX_TEMPLATES`).
pub(crate) const WOULD_BLOCK: u32 = u32::MAX;

/// Key id → (slot, fingerprint of the identity fields the slot was made for,
/// address of the record the slot keeps): an open-addressing table with the
/// entries inline, so that a lookup costs one memory access (a `HashMap`
/// costs two: control bytes, then the entry). Key ids are 64 random bits, so
/// their low bits index the table directly. An entry is 32 bytes, two to a
/// cache line, so that no entry straddles two.
#[derive(Default)]
struct IdTable {
    entries: Vec<Entry>,
    len: usize,
}

#[derive(Clone, Copy, Default)]
#[repr(align(32))]
struct Entry {
    id: u64,
    print: u64,
    /// The address of the record the slot's kept principal holds.
    rec: usize,
    /// The slot plus one; 0 marks an empty entry.
    slot: u32,
}

impl IdTable {
    /// The index of `id`'s entry, if it has one.
    fn find(&self, id: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.entries.len() - 1;
        let mut i = id as usize & mask;
        loop {
            let e = &self.entries[i];
            if e.slot == 0 {
                return None;
            }
            if e.id == id {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[cfg(test)]
    fn get(&self, id: u64) -> Option<(u32, u64)> {
        self.find(id)
            .map(|i| (self.entries[i].slot - 1, self.entries[i].print))
    }

    fn insert(&mut self, id: u64, slot: u32, print: u64, rec: usize) {
        if (self.len + 1) * 2 > self.entries.len() {
            let old = std::mem::take(&mut self.entries);
            self.entries = vec![Entry::default(); (old.len() * 2).max(64)];
            self.len = 0;
            for e in old.into_iter().filter(|e| e.slot != 0) {
                self.put(e);
            }
        }
        self.put(Entry {
            id,
            print,
            rec,
            slot: slot + 1,
        });
    }

    fn put(&mut self, entry: Entry) {
        let mask = self.entries.len() - 1;
        let mut i = entry.id as usize & mask;
        loop {
            let e = &mut self.entries[i];
            if e.slot == 0 {
                *e = entry;
                self.len += 1;
                return;
            }
            if e.id == entry.id {
                *e = entry;
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

/// A digest (FNV-1a) of what a principal shows but the role, to notice a
/// record whose identity changed under the same id.
fn fingerprint(r: &apikeys::KeyRecord) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h = (h ^ 0xff).wrapping_mul(PRIME);
    };
    eat(r.kind.as_str().as_bytes());
    eat(r.access.as_str().as_bytes());
    eat(r.account.as_bytes());
    eat(r.owner.as_deref().unwrap_or("\u{0}none").as_bytes());
    eat(r.target.as_deref().unwrap_or("\u{0}none").as_bytes());
    for scope in r.scopes.iter() {
        eat(scope.resource().as_bytes());
        eat(if scope.is_write() { b"w" } else { b"r" });
    }
    h
}

impl Slots {
    /// The handle of a principal, its slot made (or its record brought up to
    /// date) as needed.
    pub(crate) fn handle(&mut self, p: &apikeys::Principal) -> CoreResult<u32> {
        let rec = p.record();
        let addr = std::ptr::from_ref(rec).addr();
        let found = self.by_id.find(rec.id.as_u64());
        // The common case: the record the slot keeps, at the same address,
        // so the same fields (see `Slots`). One memory access: the entry.
        if let Some(i) = found {
            let e = &self.by_id.entries[i];
            if e.rec == addr {
                let role = p.role().map_or(NO_ROLE, |r| r as u32);
                return Ok((e.slot - 1) << 4 | role);
            }
        }
        let print = fingerprint(rec);
        let slot = match found {
            Some(i) if self.by_id.entries[i].print == print => {
                // Another record of the same identity (the store replaced
                // it): keep it, by its reference count.
                let e = &mut self.by_id.entries[i];
                e.rec = addr;
                let s = e.slot - 1;
                self.kept[s as usize] = p.clone();
                s
            }
            _ => {
                if self.kept.len() >= MAX_SLOTS {
                    return Err(apikeys::Error::Store(apikeys::StoreError::Unavailable(
                        "too many distinct keys authenticated by this keyring object".into(),
                    )));
                }
                let s = self.kept.len() as u32;
                self.kept.push(p.clone());
                self.by_id.insert(rec.id.as_u64(), s, print, addr);
                s
            }
        };
        let role = p.role().map_or(NO_ROLE, |r| r as u32);
        Ok(slot << 4 | role)
    }

    /// The principal object for a handle (`rateLimit` null).
    pub(crate) fn principal(&self, handle: u32) -> Option<Principal> {
        if handle & ERROR_BIT != 0 {
            return None;
        }
        let rec = self.kept.get((handle >> 4) as usize)?.record();
        let role = match handle & 15 {
            NO_ROLE => None,
            r => Some(
                apikeys::Role::ALL
                    .into_iter()
                    .find(|x| *x as u32 == r)
                    .map(Role::from)?,
            ),
        };
        Some(principal_of(rec, role))
    }

    /// The key's record as of its latest authentication, for a handle: in
    /// the principal of that authentication (`record()`), shared, not copied.
    pub(crate) fn record(&self, handle: u32) -> Option<apikeys::Principal> {
        if handle & ERROR_BIT != 0 {
            return None;
        }
        self.kept.get((handle >> 4) as usize).cloned()
    }
}

/// What an authentication error looks like in JavaScript: `[code, message,
/// status, pdCode, reason, field]`. Failed authentications are answered as a
/// template number rather than thrown from Rust: the JavaScript layer builds
/// and throws the `Error` itself, which costs about half as much as a native
/// throw. Templates are kept per distinct error (at most [`MAX_TEMPLATES`];
/// past that, and for rate limits, whose `retryAfter` changes with every call,
/// the error is thrown from Rust as before).
pub(crate) type ErrorTemplate = (String, String, u32, u32, String, Option<String>);

const MAX_TEMPLATES: usize = 4096;

/// The error templates of a keyring object.
#[derive(Default)]
pub(crate) struct Errors {
    ids: std::collections::HashMap<(String, String, String), u32>,
    templates: Vec<ErrorTemplate>,
}

impl Errors {
    /// The template number of `e`, if it can have one.
    pub(crate) fn intern(&mut self, e: &apikeys::Error) -> Option<u32> {
        if matches!(e, apikeys::Error::RateLimited { .. }) {
            return None;
        }
        let code = crate::error::code_for_kind_name(e.kind_name());
        let message = crate::error::message(e);
        let reason = e.reason();
        let key = (format!("{code}/{}", e.http_status()), message, reason);
        if let Some(&id) = self.ids.get(&key) {
            return Some(id);
        }
        if self.templates.len() >= MAX_TEMPLATES {
            return None;
        }
        let id = self.templates.len() as u32;
        let field = match e {
            apikeys::Error::InvalidInput { field, .. } => Some((*field).to_owned()),
            _ => None,
        };
        self.templates.push((
            code.to_owned(),
            key.1.clone(),
            u32::from(e.http_status()),
            e.code(),
            key.2.clone(),
            field,
        ));
        self.ids.insert(key, id);
        Some(id)
    }

    /// The template numbered `id`.
    pub(crate) fn template(&self, id: u32) -> Option<ErrorTemplate> {
        self.templates.get(id as usize).cloned()
    }
}

fn principal_of(rec: &apikeys::KeyRecord, role: Option<Role>) -> Principal {
    Principal {
        key_id: rec.id.to_string(),
        kind: rec.kind.into(),
        account: rec.account.to_string(),
        owner: rec.owner.as_deref().map(str::to_owned),
        role,
        access: rec.access.into(),
        scopes: rec.scopes.iter().map(ToString::to_string).collect(),
        target: rec.target.as_deref().map(str::to_owned),
        rate_limit: Either::B(Null),
        record: (),
    }
}

/// The lock of a cache: a panic while it was held leaves nothing half-done
/// that a later call could trip on (each update is one assignment).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys::AccessLevel as CoreAccess;

    fn setup() -> (apikeys::Keyring, apikeys::Actor) {
        let k = apikeys::Keyring::new(apikeys::MemoryStore::new());
        (
            k,
            apikeys::Actor::new("acme", "PADMIN1", apikeys::Role::Admin),
        )
    }

    #[test]
    fn the_id_table_finds_every_id_through_growth_and_collisions() {
        let mut t = IdTable::default();
        assert_eq!(t.get(7), None);
        // Ids sharing their low bits probe past each other.
        let ids: Vec<u64> = (0..5000u64)
            .map(|i| {
                if i % 2 == 0 {
                    i << 40
                } else {
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                }
            })
            .collect();
        for (n, &id) in ids.iter().enumerate() {
            t.insert(id, n as u32, id ^ 1, 0);
        }
        for (n, &id) in ids.iter().enumerate() {
            assert_eq!(t.get(id), Some((n as u32, id ^ 1)));
        }
        assert_eq!(t.get(12345), None);
        t.insert(ids[3], 99, 5, 0);
        assert_eq!(t.get(ids[3]), Some((99, 5)));
        assert_eq!(t.len, ids.len());
    }

    /// A general key of `access` made by the admin of [`setup`].
    fn general(k: &apikeys::Keyring, access: CoreAccess) -> apikeys::IssuedKey {
        let admin = apikeys::Actor::new("acme", "PADMIN1", apikeys::Role::Admin);
        k.create_general_key(&admin, "a key", access)
            .expect("an admin makes general keys")
    }

    /// The principal of a REST `GET` with `issued`.
    fn principal(k: &apikeys::Keyring, issued: &apikeys::IssuedKey) -> apikeys::Principal {
        k.authenticate(issued.secret().expose(), &apikeys::Request::rest("GET"))
            .expect("the key is good")
    }

    #[test]
    fn one_key_and_role_always_get_the_same_handle() {
        let (k, _) = setup();
        let a = general(&k, CoreAccess::FullAccess);
        let b = general(&k, CoreAccess::ReadOnly);
        let mut slots = Slots::default();
        let ha = slots.handle(&principal(&k, &a)).unwrap();
        let hb = slots.handle(&principal(&k, &b)).unwrap();
        assert_ne!(ha, hb);
        assert_eq!(ha & 15, NO_ROLE);
        for _ in 0..3 {
            assert_eq!(slots.handle(&principal(&k, &a)).unwrap(), ha);
        }
        let p = slots.principal(hb).unwrap();
        assert_eq!(p.key_id, b.record().id.to_string());
        assert!(matches!(p.access, crate::types::AccessLevel::ReadOnly));
        assert!(slots.principal(hb + 16).is_none());
    }

    #[test]
    fn a_slot_keeps_the_record_of_the_latest_authentication() {
        let (k, admin) = setup();
        let a = general(&k, CoreAccess::FullAccess);
        let mut slots = Slots::default();
        let p = principal(&k, &a);
        let h = slots.handle(&p).unwrap();
        // The store's record itself, shared: no copy.
        let kept = slots.record(h).unwrap();
        assert!(std::ptr::eq(kept.record(), p.record()));
        // Later calls with the record unchanged keep the same handle and the
        // same record. Its address moves once at most: from the store's own
        // `Arc` to this thread's copy of it, which the core's principal holds
        // from the record's second authentication on (keyring/replica.rs);
        // from then on it is kept as it is.
        for _ in 0..2 {
            assert_eq!(slots.handle(&principal(&k, &a)).unwrap(), h);
            assert_eq!(*slots.record(h).unwrap().record(), *kept.record());
        }
        let settled = slots.record(h).unwrap();
        for _ in 0..3 {
            assert_eq!(slots.handle(&principal(&k, &a)).unwrap(), h);
            assert!(std::ptr::eq(
                slots.record(h).unwrap().record(),
                settled.record()
            ));
        }
        // A record the store replaced (here: rotated, so the old key is in
        // its overlap) is taken at the next authentication; the handle stays.
        let id = a.record().id.to_string();
        k.rotate(&admin, &id, std::time::Duration::from_secs(3600))
            .unwrap();
        assert!(slots.record(h).unwrap().record().rotation.is_none());
        let rotated = principal(&k, &a);
        assert!(rotated.record().rotation.is_some());
        assert_eq!(slots.handle(&rotated).unwrap(), h);
        let now = slots.record(h).unwrap();
        assert!(std::ptr::eq(now.record(), rotated.record()));
        assert_eq!(*now.record(), *rotated.record());
        // So is one disabled and enabled again: the same fields, another record.
        k.disable(&admin, &id).unwrap();
        k.enable(&admin, &id).unwrap();
        let again = principal(&k, &a);
        assert!(!std::ptr::eq(again.record(), rotated.record()));
        assert_eq!(slots.handle(&again).unwrap(), h);
        assert!(std::ptr::eq(
            slots.record(h).unwrap().record(),
            again.record()
        ));
        // The kept principal's record stays valid while the slot holds it,
        // even once the store dropped its own (so its address is never reused).
        drop((p, rotated, again));
        assert_eq!(slots.record(h).unwrap().record().id, a.record().id);
        assert!(slots.record(h | ERROR_BIT).is_none());
        assert!(slots.record(h + 16).is_none());
    }

    #[test]
    fn a_new_role_is_a_new_handle_and_a_changed_record_a_new_slot() {
        let (k, admin) = setup();
        let t = k.create_user_token(&admin, "t").unwrap();
        let get = apikeys::Request::rest("GET");
        let mut slots = Slots::default();
        let as_admin = slots
            .handle(&k.authenticate(t.secret().expose(), &get).unwrap())
            .unwrap();
        k.set_user_role("acme", "PADMIN1", apikeys::Role::Observer)
            .unwrap();
        let as_observer = slots
            .handle(&k.authenticate(t.secret().expose(), &get).unwrap())
            .unwrap();
        assert_eq!(as_admin >> 4, as_observer >> 4);
        assert_ne!(as_admin, as_observer);
        assert!(matches!(
            slots.principal(as_observer).unwrap().role,
            Some(Role::Observer)
        ));
        assert!(matches!(
            slots.principal(as_admin).unwrap().role,
            Some(Role::Admin)
        ));

        // A record whose identity fields differ (as a store shared with other
        // code might hand back) gets a slot of its own.
        let p = k.authenticate(t.secret().expose(), &get).unwrap();
        let mut changed = p.record().clone();
        changed.scopes = vec![apikeys::Scope::parse("incidents.read").unwrap()].into();
        let id = p.record().id;
        slots
            .by_id
            .insert(id.as_u64(), as_admin >> 4, fingerprint(&changed), 0);
        let again = slots.handle(&p).unwrap();
        assert_ne!(again >> 4, as_admin >> 4);
        assert!(slots.principal(again).unwrap().scopes.is_empty());
    }
}
