//! Leaked keys: [`Keyring::check_leaked`] (which pieces of text are keys of
//! this store) and [`Keyring::report_leaked`] (what a reported leak does:
//! docs/design.md §10).

use arcstr::ArcStr;
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::{Draft, Keyring};
use crate::audit::{AuditAction, AuditOutcome, CallContext};
use crate::digest::Digest;
use crate::error::Result;
use crate::key::KeyKind;
use crate::leaks::{LeakState, LeakedKey};
use crate::record::{Disabled, KeyRecord, Timestamp};
use crate::store::{Edit, KeyLookup, standing_user};

/// Who [`Keyring::report_leaked`] records as having disabled a leaked key
/// (`KeyRecord::disabled.by`).
pub const LEAK_REPORT: &str = "system:leak";

/// What [`Keyring::report_leaked`] does with a key that still works, or
/// could work again without a new key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakAction {
    /// Disable it (`disabled.by` = [`LEAK_REPORT`]): it stops working at
    /// once, its record stays (with the leak in the audit trail), and a
    /// repeated report is recognised. The default.
    #[default]
    Disable,
    /// Delete it for good: its record goes too.
    Delete,
}

impl LeakAction {
    /// Both actions, the default first.
    pub const ALL: [LeakAction; 2] = [LeakAction::Disable, LeakAction::Delete];

    /// `"disable"` or `"delete"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeakAction::Disable => "disable",
            LeakAction::Delete => "delete",
        }
    }
}

crate::names::from_name!(LeakAction, "action");

impl fmt::Display for LeakAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Keyring::report_leaked`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakOutcome {
    /// Not a key of this store: not shaped like any kind of key, or no key
    /// has its digest (a deleted key included). Nothing was done.
    NotAKey,
    /// A live key, disabled now (with one audit record).
    Disabled,
    /// A live key, deleted now (with one audit record).
    Deleted,
    /// Disabled by an earlier leak report: nothing written.
    AlreadyReported,
    /// A key that can never work again — expired, rotated out, or a kind
    /// that is never enabled again disabled (offboarding) —: left as it is.
    NotLive,
    /// Found, then deleted by another call before this one could act.
    Gone,
}

impl LeakOutcome {
    /// The snake_case name, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeakOutcome::NotAKey => "not_a_key",
            LeakOutcome::Disabled => "disabled",
            LeakOutcome::Deleted => "deleted",
            LeakOutcome::AlreadyReported => "already_reported",
            LeakOutcome::NotLive => "not_live",
            LeakOutcome::Gone => "gone",
        }
    }
}

impl fmt::Display for LeakOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of [`Keyring::report_leaked`]. Never holds the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeakVerdict {
    /// What was found and done.
    pub outcome: LeakOutcome,
    /// The key found (as [`Keyring::check_leaked`] describes it, in its
    /// state before this call; `index` 0), unless [`LeakOutcome::NotAKey`].
    pub key: Option<LeakedKey>,
}

impl LeakVerdict {
    /// Whether the reported text is a key of this store, in any state — a
    /// "true positive" for a scanner that reported it.
    pub fn true_positive(&self) -> bool {
        self.outcome != LeakOutcome::NotAKey
    }
}

/// One piece of text looked up as a key: its description and what the
/// store answered.
struct Found {
    leak: LeakedKey,
    lookup: KeyLookup,
}

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
            if let Some(found) = self.find_leaked(index, text, now, &mut seen)? {
                out.push(found.leak);
            }
        }
        Ok(out)
    }

    /// `text` as a key of the store, if it is one (looked up once per digest).
    fn find_leaked(
        &self,
        index: usize,
        text: &str,
        now: Timestamp,
        seen: &mut HashMap<Digest, Option<KeyLookup>>,
    ) -> Result<Option<Found>> {
        let Ok(kind) = KeyKind::parse(text) else {
            return Ok(None);
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
            return Ok(None);
        };
        let record = &found.record;
        let matches: bool = subtle::ConstantTimeEq::ct_eq(&record.digest, &digest).into();
        if !matches || record.kind != kind {
            return Ok(None);
        }
        let disabled = record.disabled.is_some();
        let expired = record.is_expired(now);
        let rotated_out = rotated_out(record, now, found.last_used_at);
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
        let leak = LeakedKey {
            index,
            key_id: record.id,
            kind,
            account: record.account.to_string(),
            description: record.description.to_string(),
            user: standing_user(record).map(str::to_owned),
            hint: record.hint,
            state,
            live: is_live(record, now, found.last_used_at),
        };
        Ok(Some(Found {
            leak,
            lookup: found,
        }))
    }

    /// A key was reported leaked (by a secret scanner, a user, a log
    /// review): treat it as compromised (docs/design.md §10).
    ///
    /// `token` is looked up by digest like [`Keyring::check_leaked`]. A key
    /// that still works, or could work again without a new key (a disabled
    /// general key can be enabled), is taken out of service at once —
    /// disabled, with `disabled.by` = [`LEAK_REPORT`], or deleted, as
    /// `action` says — by the application (actor `system`), in one step of
    /// the store decided on the row it changes, with one audit record
    /// (action `disable` or `delete`, with the change `leaked` → `true`)
    /// whose [`CallContext`] is `report`
    /// (build it with [`CallContext::report_url`] and
    /// [`CallContext::report_source`]). A general key someone else disabled
    /// is marked disabled by the leak (its `disabled` moves to
    /// [`LEAK_REPORT`] and now): enabling it again is then a decision
    /// taken knowing of the leak.
    ///
    /// Idempotent: a key already disabled by a leak report is left as it is
    /// ([`LeakOutcome::AlreadyReported`], nothing written); two reports of
    /// the same key at once disable it once and leave one record. Keys that
    /// can never work again (expired, rotated out, a token disabled for
    /// good) are left as they are ([`LeakOutcome::NotLive`]). Never a use of
    /// the key (`last_used_at` stays).
    ///
    /// The verdict never holds the key; nothing here logs it. `Store` when
    /// the store fails (nothing half-written; the call may be repeated).
    pub fn report_leaked(
        &self,
        token: &str,
        report: &CallContext,
        action: LeakAction,
    ) -> Result<LeakVerdict> {
        let now = self.clock.now();
        let Some(found) = self.find_leaked(0, token, now, &mut HashMap::new())? else {
            return Ok(LeakVerdict {
                outcome: LeakOutcome::NotAKey,
                key: None,
            });
        };
        let Found { leak, lookup } = found;
        let audit_action = match action {
            LeakAction::Disable => AuditAction::Disable,
            LeakAction::Delete => AuditAction::Delete,
        };
        let mut draft = Draft::system(&leak.account, audit_action);
        draft.context = report.clone();
        draft.key_id = Some(leak.key_id);
        draft.key_kind = Some(leak.kind);
        let last_used = lookup.last_used_at;
        let id = leak.key_id;
        let mut decided = LeakOutcome::Gone;
        let result = match action {
            LeakAction::Disable => {
                let by: ArcStr = LEAK_REPORT.into();
                self.store
                    .update_audited(id, &mut |r| {
                        draft.changes.clear();
                        decided = leak_decision(r, now, last_used);
                        if decided != LeakOutcome::Disabled {
                            return Edit::Keep;
                        }
                        draft.note(r);
                        let before = r.disabled.as_ref().map(|d| d.by.to_string());
                        if before.is_none() {
                            draft.changed("disabled", Some("false".into()), Some("true".into()));
                        }
                        draft.changed("disabled_by", before, Some(LEAK_REPORT.to_owned()));
                        draft.changed("leaked", None, Some("true".into()));
                        r.disabled = Some(Box::new(Disabled {
                            by: by.clone(),
                            at: now,
                        }));
                        Edit::Write(Some(Box::new(draft.allowed(now))))
                    })
                    .map(|r| r.is_some())
            }
            LeakAction::Delete => self
                .store
                .delete_audited(id, &mut |r, _owner| {
                    draft.changes.clear();
                    decided = match leak_decision(r, now, last_used) {
                        LeakOutcome::Disabled => LeakOutcome::Deleted,
                        other => other,
                    };
                    if decided != LeakOutcome::Deleted {
                        return Edit::Keep;
                    }
                    draft.note(r);
                    draft.changed("deleted", Some("false".into()), Some("true".into()));
                    draft.changed("leaked", None, Some("true".into()));
                    Edit::Write(Some(Box::new(draft.allowed(now))))
                })
                .map(|r| r.is_some()),
        };
        match result {
            Ok(still_there) => {
                if !still_there {
                    decided = LeakOutcome::Gone;
                }
                if matches!(decided, LeakOutcome::Disabled | LeakOutcome::Deleted) {
                    // Only a change is recorded: a repeated report leaves no record.
                    let at = draft.at.unwrap_or(now);
                    self.audit.record(draft.event(at, AuditOutcome::Allowed));
                }
                Ok(LeakVerdict {
                    outcome: decided,
                    key: Some(leak),
                })
            }
            Err(e) => {
                let e = crate::Error::from(e);
                draft.changes.clear();
                let event = draft.event(
                    now,
                    AuditOutcome::Refused {
                        error: e.kind_name().to_owned(),
                        reason: e.to_string(),
                    },
                );
                if self.store.keeps_audit() {
                    // Best effort, as for every refused call.
                    let _ = self.store.append_audit(&event);
                }
                self.audit.record(event);
                Err(e)
            }
        }
    }
}

/// Whether a rotation has taken `record` out of service.
fn rotated_out(record: &KeyRecord, now: Timestamp, last_used: Option<Timestamp>) -> bool {
    record
        .rotation
        .as_ref()
        .is_some_and(|r| !r.works_at(now, last_used))
}

/// Whether `record` works now or could again without a new key: not
/// expired, not rotated out, and not disabled — but a disabled general key,
/// which can be enabled.
fn is_live(record: &KeyRecord, now: Timestamp, last_used: Option<Timestamp>) -> bool {
    !record.is_expired(now)
        && !rotated_out(record, now, last_used)
        && (record.disabled.is_none() || record.kind == KeyKind::General)
}

/// What a leak report does to `record` as the store holds it now:
/// [`LeakOutcome::Disabled`] (take it out of service),
/// [`LeakOutcome::AlreadyReported`] or [`LeakOutcome::NotLive`].
fn leak_decision(record: &KeyRecord, now: Timestamp, last_used: Option<Timestamp>) -> LeakOutcome {
    if record
        .disabled
        .as_ref()
        .is_some_and(|d| &*d.by == LEAK_REPORT)
    {
        LeakOutcome::AlreadyReported
    } else if is_live(record, now, last_used) {
        LeakOutcome::Disabled
    } else {
        LeakOutcome::NotLive
    }
}
