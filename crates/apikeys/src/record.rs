//! [`KeyRecord`]: everything kept about a key, and never the key itself.

use std::fmt;
use std::num::NonZeroU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arcstr::ArcStr;
use rand_core::TryRng;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::key::{Hint, KeyKind};

/// A key's public identifier: `P` then 13 characters of Crockford base32
/// (64 random bits). Unique, URL-safe, and unrelated to the key itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u64);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl KeyId {
    /// A fresh random id.
    pub fn generate() -> Result<KeyId, getrandom::Error> {
        let mut b = [0u8; 8];
        getrandom::SysRng.try_fill_bytes(&mut b)?;
        Ok(KeyId(u64::from_le_bytes(b)))
    }

    /// The id with these 64 bits (for stores that keep the number).
    pub const fn from_u64(v: u64) -> KeyId {
        KeyId(v)
    }

    /// The 64 bits.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Parse the text form (`P` + 13 characters). Lowercase letters are accepted.
    pub fn parse(s: &str) -> Option<KeyId> {
        let b = s.as_bytes();
        if b.len() != 14 || b[0] != b'P' {
            return None;
        }
        let mut v: u64 = 0;
        for (i, &c) in b[1..].iter().enumerate() {
            let c = c.to_ascii_uppercase();
            let d = CROCKFORD.iter().position(|&x| x == c)? as u64;
            // The first character holds the top 4 bits only.
            if i == 0 && d > 15 {
                return None;
            }
            v = (v << 5) | d;
        }
        Some(KeyId(v))
    }

    fn encode(self) -> [u8; 14] {
        let mut out = [0u8; 14];
        out[0] = b'P';
        let mut v = self.0;
        for i in (1..14).rev() {
            out[i] = CROCKFORD[(v & 31) as usize];
            v >>= 5;
        }
        out
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.encode();
        f.write_str(std::str::from_utf8(&e).unwrap_or("P?"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl std::str::FromStr for KeyId {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<KeyId, crate::Error> {
        KeyId::parse(s).ok_or_else(|| {
            crate::Error::invalid(
                "key_id",
                "must be 'P' followed by 13 characters of Crockford base32".to_owned(),
            )
        })
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a key id"))
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC. Serialized as that integer.
///
/// Never zero (times before 1 ms after the epoch are clamped to it), so that an
/// `Option<Timestamp>` takes no more room than a `Timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(NonZeroU64);

impl Timestamp {
    /// The time `ms` milliseconds after the Unix epoch (at least 1).
    pub const fn from_unix_millis(ms: u64) -> Timestamp {
        match NonZeroU64::new(ms) {
            Some(v) => Timestamp(v),
            None => Timestamp(NonZeroU64::MIN),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0.get()
    }

    /// The current system time.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// RFC 3339 in UTC with milliseconds (`2026-12-02T01:02:03.456Z`), as
    /// audit records write times.
    pub fn to_rfc3339(self) -> String {
        crate::audit::rfc3339(self.unix_millis())
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.unix_millis())
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp::from_unix_millis(
            self.unix_millis()
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.unix_millis().saturating_sub(earlier.unix_millis()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.unix_millis())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Timestamp::from_unix_millis(u64::deserialize(d)?))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp::from_unix_millis(d.as_millis().min(u64::MAX as u128) as u64),
            Err(_) => Timestamp::from_unix_millis(0),
        }
    }
}

/// What a general access key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// Any method on any resource.
    #[default]
    FullAccess,
    /// `GET` and `HEAD` only.
    ReadOnly,
}

crate::names::from_name!(AccessLevel, "access");
crate::names::from_name!(ApiVersion, "api_version");

impl AccessLevel {
    /// Both levels.
    pub const ALL: [AccessLevel; 2] = [AccessLevel::FullAccess, AccessLevel::ReadOnly];

    /// `"full_access"` or `"read_only"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessLevel::FullAccess => "full_access",
            AccessLevel::ReadOnly => "read_only",
        }
    }
}

/// The API version a key was made for. PagerDuty's REST API is at v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ApiVersion {
    /// Version 2.
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl ApiVersion {
    /// Every version.
    pub const ALL: [ApiVersion; 1] = [ApiVersion::V2];

    /// `"v2"`.
    pub const fn as_str(self) -> &'static str {
        "v2"
    }
}

/// One scope: a resource (`incidents`, or `parent:child`) and read or write access.
///
/// Text form: `incidents.read`, `incidents.write`, `users:contact_methods.write`.
/// Resource segments are lowercase ASCII letters, digits and `_`, starting with
/// a letter, at most 64 bytes each; at most one `:`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    resource: Box<str>,
    write: bool,
}

impl Scope {
    /// Parse `resource.read` / `resource.write`.
    pub fn parse(s: &str) -> Result<Scope, crate::Error> {
        let bad = |why: &str| {
            crate::Error::invalid("scope", format!("{why} (expected e.g. 'incidents.write')"))
        };
        let (resource, access) = s
            .rsplit_once('.')
            .ok_or_else(|| bad("no '.read' or '.write' suffix"))?;
        let write = match access {
            "read" => false,
            "write" => true,
            _ => return Err(bad("the suffix must be '.read' or '.write'")),
        };
        let mut segments = 0;
        for seg in resource.split(':') {
            segments += 1;
            let b = seg.as_bytes();
            if b.is_empty() || b.len() > 64 {
                return Err(bad("each resource name is 1 to 64 characters"));
            }
            if !b[0].is_ascii_lowercase()
                || !b
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
            {
                return Err(bad(
                    "resource names are lowercase letters, digits and '_', starting with a letter",
                ));
            }
        }
        if segments > 2 {
            return Err(bad("at most one ':' (parent:child)"));
        }
        Ok(Scope {
            resource: resource.into(),
            write,
        })
    }

    /// The resource (`incidents`, `users:contact_methods`).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Whether this is a `.write` scope.
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// Whether holding `self` grants `wanted` (`x.write` implies `x.read`).
    pub fn grants(&self, wanted: &Scope) -> bool {
        self.resource == wanted.resource && (self.write || !wanted.write)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.resource,
            if self.write { "write" } else { "read" }
        )
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl std::str::FromStr for Scope {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Scope, crate::Error> {
        Scope::parse(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Who disabled a key, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    /// The user who disabled it (`"system:offboarding"` when its owner was removed).
    pub by: ArcStr,
    /// When.
    pub at: Timestamp,
}

/// Everything kept about one key. No field ever holds the key: only its
/// [`Digest`] and a four-character [`Hint`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public, unique, URL-safe id; not derived from the key.
    pub id: KeyId,
    /// The account the key belongs to.
    pub account: ArcStr,
    /// Which kind of key.
    pub kind: KeyKind,
    /// A human description ("CI bot").
    pub description: Box<str>,
    /// Full access or read-only (meaningful for general keys; others are `FullAccess`).
    pub access: AccessLevel,
    /// The user a [`KeyKind::UserToken`] belongs to.
    pub owner: Option<ArcStr>,
    /// The service ([`KeyKind::Integration`]) or orchestration ([`KeyKind::Routing`]).
    pub target: Option<ArcStr>,
    /// The scopes of a [`KeyKind::Scoped`] token.
    pub scopes: Box<[Scope]>,
    /// When it was made.
    pub created_at: Timestamp,
    /// The user who made it.
    pub created_by: ArcStr,
    /// The API version it was made for (`"v2"`).
    pub api_version: ApiVersion,
    /// Set while the key is disabled (boxed: most keys are not, and a record stays small).
    pub disabled: Option<Box<Disabled>>,
    /// The last successful authentication (coalesced to about a minute).
    pub last_used_at: Option<Timestamp>,
    /// Where the key was last used from, when the caller said
    /// ([`Request::with_place`](crate::Request::with_place)); written with
    /// `last_used_at`, as often and no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_from: Option<Box<UsePlace>>,
    /// After this time the key no longer works.
    pub expires_at: Option<Timestamp>,
    /// The key's last four characters, for display.
    pub hint: Hint,
    /// SHA-256 or HMAC-SHA-256 of the key.
    pub digest: Digest,
    /// The key's place in a rotation, if it was ever rotated or made by one
    /// (boxed: most keys never are, and a record stays small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Box<Rotation>>,
}

impl KeyRecord {
    /// Whether the key is expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// The key this one replaced, if a rotation made it.
    pub fn rotated_from(&self) -> Option<KeyId> {
        self.rotation.as_ref().and_then(|r| r.rotated_from)
    }

    /// The key that replaces this one, if it was rotated.
    pub fn rotated_to(&self) -> Option<KeyId> {
        self.rotation.as_ref().and_then(|r| r.rotated_to)
    }
}

/// The longest remote address a [`UsePlace`] keeps, in bytes.
pub const MAX_PLACE_ADDRESS_BYTES: usize = 64;
/// The longest path a [`UsePlace`] keeps, in bytes (longer ones are cut).
pub const MAX_PLACE_PATH_BYTES: usize = 256;

/// Where a request came from and what it asked for: the remote address, the
/// method and the path. Never holds a key: values shaped like one, or with
/// control characters, are not kept, and the query string is dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsePlace {
    /// The caller's network address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// The HTTP method (`"GET"` …; `"POST"` for the Events API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request's path, without its query string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl UsePlace {
    /// A place from what an adapter knows of a request (each part optional).
    pub fn new(remote_address: Option<&str>, method: Option<&str>, path: Option<&str>) -> UsePlace {
        UsePlace {
            remote_address: remote_address.and_then(|a| clean_place(a, MAX_PLACE_ADDRESS_BYTES)),
            method: method.and_then(|m| clean_place(m, 16)),
            path: path
                .map(|p| p.split(['?', '#']).next().unwrap_or(""))
                .and_then(|p| clean_place(p, MAX_PLACE_PATH_BYTES)),
        }
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.remote_address.is_none() && self.method.is_none() && self.path.is_none()
    }
}

fn clean_place(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    // A key pasted where an address or path goes (`/keys/<key>`) is not kept.
    if s.split(['/', '=', '&', ':', ' '])
        .any(|part| KeyKind::parse(part).is_ok())
    {
        return Some("(redacted)".to_owned());
    }
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_owned())
}

/// A key's place in a rotation (docs/design.md, "Rotation").
///
/// On the key being replaced (`rotated_to` set) it says until when that key
/// still works: until [`Rotation::overlap_until`] at the latest, and no
/// longer once traffic has moved — the new key has been used
/// ([`Rotation::successor_used_at`]) and this key has then gone unused for
/// [`Rotation::quiet_ms`]. On the new key only `rotated_from` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Rotation {
    /// The key this one replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<KeyId>,
    /// The key that replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<KeyId>,
    /// When this key was rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<Timestamp>,
    /// The latest moment this (replaced) key works: the rotation's grace,
    /// never later than the key's own expiry; moved to the moment of
    /// [`Keyring::end_rotation`](crate::Keyring::end_rotation) when that ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_until: Option<Timestamp>,
    /// How long this key must go unused, after the new key's first use, for
    /// the overlap to end early (milliseconds).
    #[serde(default)]
    pub quiet_ms: u64,
    /// When the new key was first seen in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor_used_at: Option<Timestamp>,
}

/// How far behind the real last use a stored `last_used_at` may be: uses are
/// written at most once a minute per key, and durable stores queue them. The
/// quiet period of a rotation counts from the stored last use plus this, so
/// that an overlap never ends while the old key is still in use.
pub(crate) const LAST_USE_SLACK: Duration = Duration::from_secs(120);

impl Rotation {
    /// Whether a key with this rotation still works at `now`, given its last
    /// use as the store knows it. A key that is not being replaced (no
    /// `rotated_to`) always does, as far as its rotation goes.
    #[inline]
    pub fn works_at(&self, now: Timestamp, last_used: Option<Timestamp>) -> bool {
        if self.rotated_to.is_none() {
            return true;
        }
        if self.overlap_until.is_some_and(|u| now >= u) {
            return false;
        }
        match self.successor_used_at {
            None => true,
            Some(moved) => {
                // Quiet since the later of: the new key's first use, and this
                // key's last use (give or take how late a last use is written).
                let last = last_used.map(|t| t.saturating_add(LAST_USE_SLACK));
                let quiet_from = last.map_or(moved, |t| t.max(moved));
                now < quiet_from.saturating_add(Duration::from_millis(self.quiet_ms))
            }
        }
    }

    /// Note the new key's first use at `at`, unless one is noted already;
    /// says whether it changed anything (what `successor_used` writes).
    pub fn note_successor_use(&mut self, at: Timestamp) -> bool {
        if self.successor_used_at.is_some() {
            return false;
        }
        self.successor_used_at = Some(at);
        true
    }

    /// Whether the overlap of this (replaced) key is still running at `now`:
    /// it has a successor and still works. `false` for a key that is not being replaced.
    pub fn overlapping(&self, now: Timestamp, last_used: Option<Timestamp>) -> bool {
        self.rotated_to.is_some() && self.works_at(now, last_used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_round_trip_and_are_url_safe() {
        for _ in 0..1000 {
            let id = KeyId::generate().unwrap();
            let s = id.to_string();
            assert_eq!(s.len(), 14);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(KeyId::parse(&s), Some(id));
            assert_eq!(
                KeyId::parse(&s.to_lowercase().replacen('p', "P", 1)),
                Some(id)
            );
        }
        for v in [0, 1, u64::MAX] {
            assert_eq!(KeyId::parse(&KeyId(v).to_string()), Some(KeyId(v)));
        }
    }

    #[test]
    fn bad_key_ids_are_refused() {
        for s in [
            "",
            "P",
            "PABC",
            "X0000000000000",
            "PZZZZZZZZZZZZZ",
            "P000000000000U",
            "P0000000000000 ",
        ] {
            assert_eq!(KeyId::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn scopes_parse_and_imply() {
        let w = Scope::parse("incidents.write").unwrap();
        let r = Scope::parse("incidents.read").unwrap();
        assert!(w.grants(&r) && w.grants(&w) && r.grants(&r));
        assert!(!r.grants(&w));
        assert_eq!(
            Scope::parse("users:contact_methods.write")
                .unwrap()
                .resource(),
            "users:contact_methods"
        );
        for bad in [
            "",
            "incidents",
            "incidents.delete",
            ".read",
            "Incidents.read",
            "a:b:c.read",
            "in cidents.read",
            "incidents.read\0",
            "1x.read",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_convert() {
        let t = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        assert_eq!(
            t.saturating_add(Duration::from_secs(1)).unix_millis(),
            1_700_000_001_123
        );
    }
}
