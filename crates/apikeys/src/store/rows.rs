//! Building blocks for a store that keeps records in database rows: how a
//! [`KeyRecord`] becomes a row and back, and the errors a row can raise.
//!
//! The durable stores (`apikeys-sqlite`, `apikeys-postgres`) both keep a key
//! as one row of `apikeys_keys`:
//!
//! | column | holds | written by |
//! |---|---|---|
//! | `id` | the [`KeyId`]'s 64 bits as a signed 64-bit integer ([`id_value`], [`key_id`]) | insert |
//! | `digest`, `account`, `kind`, `owner` | the searched fields, copied out of the record | insert |
//! | `created_at` | unix milliseconds ([`millis`]) | insert |
//! | `record` | the whole record as JSON, without `last_used_at` ([`encode_record`]) | insert, update |
//! | `last_used_at` | unix milliseconds, or `NULL` | last-use flushes, update |
//!
//! The last use lives in a column of its own so that the batched last-use
//! writes of a [`UseQueue`] touch neither the record nor
//! the change triggers that watch it; [`decode_record`] puts it back, and a
//! store then merges the uses still queued in memory ([`UseQueue::merge`]).
//! The key itself is never stored: a record holds its digest and hint only.
//!
//! A lookup by digest joins the key's row with its account's settings and
//! the state of its standing user ([`standing_user`]); [`LookupRow`] turns
//! that joined row into the [`KeyLookup`] the hot path answers with.
//!
//! ```
//! use apikeys::store::rows::{decode_record, encode_record, id_value, key_id, millis};
//! # let record = apikeys::testing::sample_record("acme", apikeys::KeyKind::General);
//!
//! let json = encode_record("MyDb", &record)?;
//! let used = apikeys::Timestamp::from_unix_millis(1_700_000_000_000);
//! // ... INSERT (id_value(record.id), json, millis(used)) ...
//! let back = decode_record("MyDb", &json, Some(millis(used)))?;
//! assert_eq!(back.id, key_id(id_value(record.id)));
//! assert_eq!(back.last_used_at, Some(used));
//! # Ok::<(), apikeys::StoreError>(())
//! ```
//!
//! Every function that can fail takes the store's name (`"SQLite"`,
//! `"PostgreSQL"`), which starts its error messages.
//!
//! [`UseQueue`]: super::cache::UseQueue
//! [`UseQueue::merge`]: super::cache::UseQueue::merge
//! [`standing_user`]: super::standing_user

use std::error::Error;
use std::sync::Arc;

use super::KeyLookup;
use super::cache::UseQueue;
use crate::error::StoreError;
use crate::record::{KeyId, KeyRecord, Timestamp, UsePlace};
use crate::role::{AccountSettings, Role, UserState};

/// A [`StoreError::Unavailable`] saying that `store` failed with `e`, which
/// it keeps as its [`source`](std::error::Error::source).
///
/// `e`'s own text goes into the message: pass an error that never quotes a
/// query's parameter values (SQLite's do not; PostgreSQL's server errors may,
/// in their `DETAIL`, so `apikeys-postgres` writes its messages without it).
pub fn unavailable(store: &str, e: impl Error + Send + Sync + 'static) -> StoreError {
    let message = format!("{store}: {e}");
    StoreError::unavailable(message, e)
}

/// A [`StoreError::Corrupt`] saying that `store` could not read or write
/// `what` because of `e`, which it keeps as its
/// [`source`](std::error::Error::source).
pub fn corrupt(store: &str, what: &str, e: impl Error + Send + Sync + 'static) -> StoreError {
    let message = format!("{store}: {what}: {e}");
    StoreError::corrupt(message, e)
}

/// A key id as the signed 64-bit integer a database column holds (the same
/// 64 bits; [`key_id`] is the way back).
pub fn id_value(id: KeyId) -> i64 {
    id.as_u64() as i64
}

/// The key id that [`id_value`] stored as `value`.
pub fn key_id(value: i64) -> KeyId {
    KeyId::from_u64(value as u64)
}

/// A time as unix milliseconds for a 64-bit integer column (times past the
/// year 292 million are stored as the largest value).
pub fn millis(t: Timestamp) -> i64 {
    t.unix_millis().min(i64::MAX as u64) as i64
}

/// The time a millisecond column holds: `None` for `NULL`, and for zero or
/// less (never a time a keyring writes).
pub fn timestamp(ms: Option<i64>) -> Option<Timestamp> {
    ms.filter(|&m| m > 0)
        .map(|m| Timestamp::from_unix_millis(m as u64))
}

/// The record as the JSON of its `record` column: its serde form without
/// `last_used_at`, which has a column of its own.
pub fn encode_record(store: &str, r: &KeyRecord) -> Result<String, StoreError> {
    let mut r = r.clone();
    r.last_used_at = None;
    r.last_used_from = None;
    serde_json::to_string(&r).map_err(|e| corrupt(store, "cannot encode a record", e))
}

/// A [`UsePlace`] as the JSON of a `last_used_from` column (kept apart from
/// the record, like `last_used_at`, so writing it changes no cached answer).
pub fn encode_place(store: &str, p: &UsePlace) -> Result<String, StoreError> {
    serde_json::to_string(p).map_err(|e| corrupt(store, "cannot encode a place", e))
}

/// The place a `last_used_from` column holds (`None` for `NULL`, and for
/// JSON this version cannot read: a place is informative, never a reason to
/// fail a read).
pub fn decode_place(json: Option<&str>) -> Option<Box<UsePlace>> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .map(Box::new)
}

/// The record of a row: its `record` column's JSON, with the later of the
/// last use in the JSON and the one of the `last_used_at` column.
pub fn decode_record(
    store: &str,
    json: &str,
    last_used: Option<i64>,
) -> Result<KeyRecord, StoreError> {
    let mut r: KeyRecord =
        serde_json::from_str(json).map_err(|e| corrupt(store, "cannot decode a record", e))?;
    r.last_used_at = r.last_used_at.max(timestamp(last_used));
    Ok(r)
}

/// A user's state from the `role` and `removed` columns of `apikeys_users`.
pub fn user_state(store: &str, role: &str, removed: bool) -> Result<UserState, StoreError> {
    Ok(UserState {
        role: Role::parse(role).map_err(|e| corrupt(store, "bad role", e))?,
        removed,
    })
}

/// One row of a lookup by digest: the key's `record` and `last_used_at`,
/// joined (left) with its account's settings and its standing user's state,
/// each `None` where the joined row is missing.
#[derive(Clone, Copy, Debug)]
pub struct LookupRow<'a> {
    /// The `record` column.
    pub record: &'a str,
    /// The `last_used_at` column.
    pub last_used_at: Option<i64>,
    /// `apikeys_accounts.rest_api`.
    pub rest_api: Option<bool>,
    /// `apikeys_accounts.advanced_permissions`.
    pub advanced_permissions: Option<bool>,
    /// `apikeys_users.role` of the standing user.
    pub role: Option<&'a str>,
    /// `apikeys_users.removed` of the standing user.
    pub removed: Option<bool>,
}

impl LookupRow<'_> {
    /// The [`KeyLookup`] this row says: the record (with the uses queued in
    /// `uses` merged in, and its last use moved to
    /// [`KeyLookup::last_used_at`]), the account's settings (the defaults
    /// for an account never configured), and the standing user's state
    /// (`None` for a user never stored).
    pub fn decode(self, store: &str, uses: &UseQueue) -> Result<KeyLookup, StoreError> {
        let mut record = decode_record(store, self.record, self.last_used_at)?;
        uses.merge(&mut record);
        let last_used_at = record.last_used_at.take();
        let owner = match (self.role, self.removed) {
            (Some(role), Some(removed)) => Some(user_state(store, role, removed)?),
            _ => None,
        };
        let defaults = AccountSettings::default();
        Ok(KeyLookup {
            record: Arc::new(record),
            last_used_at,
            account: AccountSettings {
                rest_api: self.rest_api.unwrap_or(defaults.rest_api),
                advanced_permissions: self
                    .advanced_permissions
                    .unwrap_or(defaults.advanced_permissions),
            },
            owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::KeyHasher;
    use crate::key::KeyKind;
    use crate::store::record_for_tests;

    fn token() -> KeyRecord {
        record_for_tests(
            KeyId::from_u64(u64::MAX - 6),
            "acme",
            KeyKind::UserToken,
            KeyHasher::sha256().digest(b"a key"),
        )
    }

    #[test]
    fn ids_survive_the_signed_column_all_64_bits() {
        for v in [0, 1, i64::MAX as u64, 1 << 63, u64::MAX] {
            let id = KeyId::from_u64(v);
            assert_eq!(key_id(id_value(id)), id);
        }
        assert!(id_value(KeyId::from_u64(u64::MAX)) < 0);
    }

    #[test]
    fn times_are_milliseconds_and_nothing_at_or_below_zero() {
        let t = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(millis(t), 1_700_000_000_123);
        assert_eq!(timestamp(Some(millis(t))), Some(t));
        assert_eq!(millis(Timestamp::from_unix_millis(u64::MAX)), i64::MAX);
        assert_eq!(timestamp(None), None);
        assert_eq!(timestamp(Some(0)), None);
        assert_eq!(timestamp(Some(-5)), None);
    }

    #[test]
    fn the_json_leaves_the_last_use_to_its_column_and_takes_the_later() {
        let mut r = token();
        let early = Timestamp::from_unix_millis(1_700_000_001_000);
        let late = Timestamp::from_unix_millis(1_700_000_002_000);
        r.last_used_at = Some(late);
        let json = encode_record("T", &r).unwrap();
        assert!(!json.contains("1700000002000"), "{json}");
        assert_eq!(decode_record("T", &json, None).unwrap().last_used_at, None);
        let back = decode_record("T", &json, Some(millis(early))).unwrap();
        assert_eq!(back.last_used_at, Some(early));
        r.last_used_at = None;
        let mut expected = r.clone();
        expected.last_used_at = Some(early);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn bad_rows_are_corrupt_and_name_the_store() {
        match decode_record("TheDb", "{not json", None) {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.starts_with("TheDb: cannot decode a record: "), "{m}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        match user_state("TheDb", "emperor", false) {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.starts_with("TheDb: bad role: "), "{m}");
                assert!(m.source().is_some_and(|e| e.is::<crate::Error>()));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let e = decode_record("TheDb", "[]", None).unwrap_err();
        let source = Error::source(&e).expect("the JSON error");
        assert!(source.is::<serde_json::Error>(), "{source:?}");
        assert_eq!(
            user_state("TheDb", "observer", true).unwrap(),
            UserState {
                role: Role::Observer,
                removed: true
            }
        );
    }

    #[test]
    fn a_lookup_row_fills_in_defaults_and_merges_queued_uses() {
        let r = token();
        let json = encode_record("T", &r).unwrap();
        let uses = UseQueue::default();
        let row = LookupRow {
            record: &json,
            last_used_at: Some(1_700_000_001_000),
            rest_api: None,
            advanced_permissions: None,
            role: None,
            removed: None,
        };
        let plain = row.decode("T", &uses).unwrap();
        assert_eq!(plain.record.last_used_at, None, "moved to the lookup");
        assert_eq!(
            plain.last_used_at,
            Some(Timestamp::from_unix_millis(1_700_000_001_000))
        );
        assert_eq!(plain.account, AccountSettings::default());
        assert_eq!(plain.owner, None);

        uses.push(r.id, Timestamp::from_unix_millis(1_700_000_009_000));
        let joined = LookupRow {
            rest_api: Some(false),
            advanced_permissions: Some(true),
            role: Some("admin"),
            removed: Some(false),
            ..row
        }
        .decode("T", &uses)
        .unwrap();
        assert_eq!(
            joined.last_used_at,
            Some(Timestamp::from_unix_millis(1_700_000_009_000))
        );
        assert_eq!(
            joined.account,
            AccountSettings {
                rest_api: false,
                advanced_permissions: true
            }
        );
        assert_eq!(
            joined.owner,
            Some(UserState {
                role: Role::Admin,
                removed: false
            })
        );
        assert!(matches!(
            LookupRow {
                removed: None,
                ..row
            }
            .decode("T", &uses),
            Ok(KeyLookup { owner: None, .. })
        ));
    }
}
