//! [`Keyring::check_leaked`]: which pieces of text are keys of this store.

use std::collections::HashMap;

use super::Keyring;
use crate::digest::Digest;
use crate::error::Result;
use crate::key::KeyKind;
use crate::leaks::{LeakState, LeakedKey};
use crate::store::{KeyLookup, standing_user};

impl Keyring {
    /// Which of `candidates` (texts found by [`find_candidates`](crate::find_candidates),
    /// or any strings) are keys of this keyring's store, and in what state.
    ///
    /// Each string that parses as a key is digested with the keyring's
    /// [`hasher`](Keyring::hasher) and looked up by digest, the digests
    /// compared in constant time, as [`Keyring::authenticate`] does; a
    /// deleted key is not found. The answer names each key found by id,
    /// kind, account and state ([`LeakedKey`]), with the index of the string
    /// in `candidates`, never the key; strings that are not keys of the store
    /// are left out. Keys of every account are looked for.
    ///
    /// Not a management call and not a use of the key: nothing is written,
    /// no audit event is left, and `last_used_at` does not move.
    /// `Store` when the store fails.
    pub fn check_leaked(&self, candidates: &[&str]) -> Result<Vec<LeakedKey>> {
        let now = self.clock.now();
        let mut seen: HashMap<Digest, Option<KeyLookup>> = HashMap::new();
        let mut out = Vec::new();
        for (index, text) in candidates.iter().enumerate() {
            let Ok(kind) = KeyKind::parse(text) else {
                continue;
            };
            let digest = self.hasher.digest(text.as_bytes());
            let found = match seen.get(&digest) {
                Some(found) => found.clone(),
                None => {
                    let found = self.store.find_by_digest(&digest)?;
                    seen.insert(digest, found.clone());
                    found
                }
            };
            let Some(found) = found else {
                continue;
            };
            let record = &found.record;
            let matches: bool = subtle::ConstantTimeEq::ct_eq(&record.digest, &digest).into();
            if !matches || record.kind != kind {
                continue;
            }
            let disabled = record.disabled.is_some();
            let expired = record.is_expired(now);
            let rotated_out = record
                .rotation
                .as_ref()
                .is_some_and(|r| !r.works_at(now, found.last_used_at));
            let acts_through_user = matches!(kind, KeyKind::UserToken | KeyKind::Scoped);
            let user_gone = acts_through_user && found.owner.is_none_or(|o| o.removed);
            let state = if disabled {
                LeakState::Disabled
            } else if expired {
                LeakState::Expired
            } else if rotated_out {
                LeakState::Rotated
            } else if user_gone {
                LeakState::OwnerRemoved
            } else {
                LeakState::Active
            };
            // Only general keys are enabled by hand; expiry and a finished
            // rotation are for good; a user can be restored.
            let live = !expired && !rotated_out && (!disabled || kind == KeyKind::General);
            out.push(LeakedKey {
                index,
                key_id: record.id,
                kind,
                account: record.account.to_string(),
                description: record.description.to_string(),
                user: standing_user(record).map(str::to_owned),
                hint: record.hint,
                state,
                live,
            });
        }
        Ok(out)
    }
}
