//! The hot path: [`Keyring::authenticate`] and [`Keyring::try_authenticate`],
//! in the order of docs/design.md §3.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Keyring, LAST_USED_GRANULARITY};
use crate::digest::Digest;
use crate::error::{AuthFailure, Error, Result};
use crate::key::KeyKind;
use crate::policy::{may_request, plan_allows};
use crate::ratelimit::RateLimitStatus;
use crate::record::{AccessLevel, KeyId, KeyRecord, Scope, Timestamp, UsePlace};
use crate::request::Request;
use crate::role::{Role, UserState};
use crate::store::LookupRef;

/// Who a request was authenticated as.
#[derive(Clone, Debug)]
pub struct Principal {
    record: Arc<KeyRecord>,
    role: Option<Role>,
    rate_limit: Option<RateLimitStatus>,
}

impl Principal {
    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.record.id
    }
    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.record.kind
    }
    /// The account.
    pub fn account(&self) -> &str {
        &self.record.account
    }
    /// The owner of a user token.
    pub fn owner(&self) -> Option<&str> {
        self.record.owner.as_deref()
    }
    /// For a user token: the role it acted with (its owner's role at this request).
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    /// Full access or read-only.
    pub fn access(&self) -> AccessLevel {
        self.record.access
    }
    /// The scopes of a scoped token.
    pub fn scopes(&self) -> &[Scope] {
        &self.record.scopes
    }
    /// The service or orchestration of an Events key.
    pub fn target(&self) -> Option<&str> {
        self.record.target.as_deref()
    }
    /// The whole record as it was at this request.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }
    /// Where this request stands against its rate limit (`None` when the
    /// keyring has no rate limits).
    pub fn rate_limit(&self) -> Option<&RateLimitStatus> {
        self.rate_limit.as_ref()
    }
}

/// Where a request came from, as an adapter knows it, borrowed: nothing is
/// copied unless the keyring writes it as the place of the key's last use
/// ([`Keyring::authenticate_from`]).
#[derive(Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The caller's address (a `&str`, a `SocketAddr` …).
    pub remote_address: Option<&'a dyn std::fmt::Display>,
    /// The request's path (its query string is dropped when kept).
    pub path: Option<&'a str>,
}

impl std::fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field(
                "remote_address",
                &self.remote_address.map(|a| a.to_string()),
            )
            .field("path", &self.path)
            .finish()
    }
}

impl Origin<'_> {
    fn place(&self, method: crate::request::Method) -> UsePlace {
        let addr = self.remote_address.map(|a| a.to_string());
        UsePlace::new(addr.as_deref(), Some(method.as_str()), self.path)
    }
}

/// Which place, if any, the last use is noted from.
#[derive(Clone, Copy)]
enum Whence<'a> {
    Unknown,
    Place(&'a UsePlace),
    Origin(&'a Origin<'a>),
}

impl<'a> Whence<'a> {
    #[inline(always)]
    fn of(request: &'a Request) -> Whence<'a> {
        match request.place() {
            Some(p) => Whence::Place(p),
            None => Whence::Unknown,
        }
    }

    #[inline(always)]
    fn or(self, origin: &'a Origin<'a>) -> Whence<'a> {
        match self {
            Whence::Unknown => Whence::Origin(origin),
            w => w,
        }
    }
}

/// A request that passed every check but the rate limit.
struct Vetted {
    record: Arc<KeyRecord>,
    role: Option<Role>,
    last_used_at: Option<Timestamp>,
    now: Timestamp,
}

impl Keyring {
    /// Check a presented key against a request.
    ///
    /// In this order (cheap checks first): the token parses (`Unauthorized`, no
    /// store access); its kind belongs to the request's API (`WrongApi`); a key
    /// with its digest exists and the digests match in constant time
    /// (`Unauthorized`); it is not disabled, not expired and its owner is not
    /// removed (`Unauthorized`); the account's plan allows it (`PlanRestricted`);
    /// what the key may do covers the request (`Forbidden`).
    pub fn authenticate(&self, token: &str, request: &Request) -> Result<Principal> {
        // Metrics count the final answer (docs/design.md §12).
        if let Some(m) = &self.metrics {
            let started = Instant::now();
            let answer = self.authenticate_at(token, request, Whence::of(request));
            m.observe(token, &answer, started);
            return answer;
        }
        self.authenticate_at(token, request, Whence::of(request))
    }

    /// [`Keyring::authenticate`] for a request that came from `origin`: the
    /// key remembers it as the place of its last use when that is written
    /// (at most once a minute per key; [`KeyRecord::last_used_from`]).
    /// Nothing is copied unless it is written, so an adapter passes the
    /// origin of every request at no cost. A place set on the request
    /// ([`Request::with_place`]) wins.
    pub fn authenticate_from(
        &self,
        token: &str,
        request: &Request,
        origin: &Origin<'_>,
    ) -> Result<Principal> {
        let whence = Whence::of(request).or(origin);
        if let Some(m) = &self.metrics {
            let started = Instant::now();
            let answer = self.authenticate_at(token, request, whence);
            m.observe(token, &answer, started);
            return answer;
        }
        self.authenticate_at(token, request, whence)
    }

    #[inline(always)]
    fn authenticate_at(
        &self,
        token: &str,
        request: &Request,
        whence: Whence<'_>,
    ) -> Result<Principal> {
        let (kind, digest) = self.parse_for(token, request)?;
        // The store lends its answer: the record is read in place, and its
        // `Arc` cloned only for a request that passes (docs/design.md §6).
        let mut vetted = None;
        self.store.find_by_digest_with(&digest, &mut |found| {
            vetted = Some(self.vet(kind, &digest, found, request));
        })?;
        let vetted = Self::lent(vetted)?;
        // Only a request that would otherwise succeed spends budget.
        let rate_limit = match &self.limits {
            None => None,
            Some(enforcer) => match enforcer.admit(&vetted.record, vetted.now) {
                Ok(status) => status,
                Err((limit, retry_after)) => {
                    return Err(self.rate_limited(&vetted.record, limit, retry_after));
                }
            },
        };
        Ok(self.finish(vetted, rate_limit, whence, request))
    }

    /// [`Keyring::authenticate`] if it can be answered without waiting on
    /// I/O, for a caller that must not wait (an event loop): `None` when it
    /// cannot, and then the caller runs `authenticate` where waiting is fine
    /// (a worker thread). `None` never means "refused".
    ///
    /// `Some(answer)` is exactly what `authenticate` would answer now, from
    /// the same checks in the same order, with the same effects (a request
    /// admitted spends rate-limit budget and notes the key's use). Malformed
    /// keys and keys of the wrong API are always answered. The rest is
    /// answered when the store knows the key from memory
    /// ([`KeyStore::find_cached`](crate::KeyStore::find_cached): always for a [`MemoryStore`](crate::MemoryStore), on a cache
    /// hit for the durable stores) and the rate limiter, if limits are set,
    /// can count this request without waiting ([`RateLimiter::try_acquire`](crate::RateLimiter::try_acquire):
    /// always for the in-process limiter; for a leasing Redis limiter while
    /// its lease lasts; never for the exact Redis limiter).
    pub fn try_authenticate(&self, token: &str, request: &Request) -> Option<Result<Principal>> {
        // `None` is no answer: the `authenticate` that follows counts it.
        if let Some(m) = &self.metrics {
            let started = Instant::now();
            let answer = self.try_authenticate_at(token, request, Whence::of(request))?;
            m.observe(token, &answer, started);
            return Some(answer);
        }
        self.try_authenticate_at(token, request, Whence::of(request))
    }

    /// [`Keyring::try_authenticate`] for a request that came from `origin`
    /// (see [`Keyring::authenticate_from`]).
    pub fn try_authenticate_from(
        &self,
        token: &str,
        request: &Request,
        origin: &Origin<'_>,
    ) -> Option<Result<Principal>> {
        let whence = Whence::of(request).or(origin);
        if let Some(m) = &self.metrics {
            let started = Instant::now();
            let answer = self.try_authenticate_at(token, request, whence)?;
            m.observe(token, &answer, started);
            return Some(answer);
        }
        self.try_authenticate_at(token, request, whence)
    }

    #[inline(always)]
    fn try_authenticate_at(
        &self,
        token: &str,
        request: &Request,
        whence: Whence<'_>,
    ) -> Option<Result<Principal>> {
        let (kind, digest) = match self.parse_for(token, request) {
            Ok(parsed) => parsed,
            Err(e) => return Some(Err(e)),
        };
        let mut vetted = None;
        if !self.store.find_cached_with(&digest, &mut |found| {
            vetted = Some(self.vet(kind, &digest, found, request));
        }) {
            return None;
        }
        let vetted = match Self::lent(vetted) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let rate_limit = match &self.limits {
            None => None,
            // `None`: only a call that may wait can count it; nothing was spent.
            Some(enforcer) => match enforcer.try_admit(&vetted.record, vetted.now)? {
                Ok(status) => status,
                Err((limit, retry_after)) => {
                    return Some(Err(self.rate_limited(&vetted.record, limit, retry_after)));
                }
            },
        };
        Some(Ok(self.finish(vetted, rate_limit, whence, request)))
    }

    /// The checks before the store: the token parses and belongs to the
    /// request's API. Returns its kind and digest.
    #[inline(always)]
    fn parse_for(&self, token: &str, request: &Request) -> Result<(KeyKind, Digest)> {
        let kind =
            KeyKind::parse(token).map_err(|m| Error::Unauthorized(AuthFailure::Malformed(m)))?;
        if kind.api() != request.api() {
            return Err(Error::WrongApi {
                key_api: kind.api(),
                request_api: request.api(),
            });
        }
        Ok((kind, self.hasher.digest(token.as_bytes())))
    }

    /// What the store's lookup lent: a store that never called back (against
    /// [`KeyStore::find_by_digest_with`](crate::KeyStore::find_by_digest_with)'s
    /// contract) has not vouched for the key, which is then refused.
    #[inline(always)]
    fn lent(vetted: Option<Result<Vetted>>) -> Result<Vetted> {
        // `unwrap_or_else`: an eager default would be built and dropped on
        // every call (an `Error`'s drop glue: 17 instructions, callgrind).
        vetted.unwrap_or_else(|| Err(Error::Unauthorized(AuthFailure::Unknown)))
    }

    /// The checks after the store, on what it `found` for `digest`, up to
    /// (not including) the rate limit. Reads the record in place; clones its
    /// `Arc` only when every check passed.
    #[inline(always)]
    fn vet(
        &self,
        kind: KeyKind,
        digest: &Digest,
        found: Option<LookupRef<'_>>,
        request: &Request,
    ) -> Result<Vetted> {
        let Some(found) = found else {
            return Err(Error::Unauthorized(AuthFailure::Unknown));
        };
        let record: &KeyRecord = found.record;
        let matches: bool = subtle::ConstantTimeEq::ct_eq(&record.digest, digest).into();
        if !matches || record.kind != kind {
            return Err(Error::Unauthorized(AuthFailure::Unknown));
        }
        if record.disabled.is_some() {
            return Err(Error::Unauthorized(AuthFailure::Disabled));
        }
        let now = self.clock.now();
        if record.is_expired(now) {
            return Err(Error::Unauthorized(AuthFailure::Expired));
        }
        // Keys never rotated pay one test of a null pointer here.
        if let Some(rotation) = &record.rotation {
            if !rotation.works_at(now, found.last_used_at) {
                return Err(Error::Unauthorized(AuthFailure::Rotated));
            }
        }
        // User and scoped tokens act through a user's standing (the owner's,
        // the maker's): gone or unknown, the key does not work.
        let standing = if matches!(kind, KeyKind::UserToken | KeyKind::Scoped) {
            match found.owner {
                Some(UserState {
                    role,
                    removed: false,
                }) => Some(role),
                _ => return Err(Error::Unauthorized(AuthFailure::OwnerRemoved)),
            }
        } else {
            None
        };
        plan_allows(&found.account, kind)?;
        // A full-access general key may make any request: the common case
        // skips the rules for the other kinds.
        if kind != KeyKind::General || record.access != AccessLevel::FullAccess {
            may_request(&self.grants, record, standing, request)?;
        }
        Ok(Vetted {
            role: if kind == KeyKind::UserToken {
                standing
            } else {
                None
            },
            last_used_at: found.last_used_at,
            record: super::replica::keep(found.record),
            now,
        })
    }

    /// An admitted request: note the key's use, make its principal.
    #[inline(always)]
    fn finish(
        &self,
        v: Vetted,
        rate_limit: Option<RateLimitStatus>,
        whence: Whence<'_>,
        request: &Request,
    ) -> Principal {
        if v.last_used_at
            .is_none_or(|t| v.now.saturating_since(t) >= LAST_USED_GRANULARITY)
        {
            // Best effort: failing to note the use must not refuse a valid request.
            let _ = match whence {
                Whence::Unknown => self.store.record_use(v.record.id, v.now),
                Whence::Place(p) => self.store.record_use_from(v.record.id, v.now, p),
                Whence::Origin(o) => {
                    let place = o.place(request.method());
                    self.store.record_use_from(v.record.id, v.now, &place)
                }
            };
            // A rotation's new key, first seen in use: the old key's quiet
            // period may start (docs/design.md, "Rotation").
            if v.last_used_at.is_none() {
                if let Some(old) = v.record.rotated_from() {
                    let _ = self.store.successor_used(old, v.now);
                }
            }
        }
        Principal {
            record: v.record,
            role: v.role,
            rate_limit,
        }
    }

    #[cold]
    fn rate_limited(&self, record: &KeyRecord, limit: u32, retry_after: Duration) -> Error {
        self.rejections.count(record.id);
        Error::RateLimited { retry_after, limit }
    }
}
