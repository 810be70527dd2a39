//! The audit trail: one [`AuditEvent`] per management call, allowed or refused.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::key::KeyKind;
use crate::record::{KeyId, Timestamp};
use crate::role::Role;

/// What was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A key was asked for.
    Create,
    /// The keys were listed.
    List,
    /// One key's record was read.
    Get,
    /// A key was disabled.
    Disable,
    /// A key was enabled.
    Enable,
    /// A key was deleted.
    Delete,
    /// An account's settings were set.
    SetAccount,
    /// A user's role was set.
    SetUserRole,
    /// A user was removed (their tokens disabled).
    RemoveUser,
}

crate::names::from_name!(AuditAction, "action");

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 9] = [
        AuditAction::Create,
        AuditAction::List,
        AuditAction::Get,
        AuditAction::Disable,
        AuditAction::Enable,
        AuditAction::Delete,
        AuditAction::SetAccount,
        AuditAction::SetUserRole,
        AuditAction::RemoveUser,
    ];

    /// The snake_case name, as serialized (`"create"`, `"set_user_role"` …).
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::List => "list",
            AuditAction::Get => "get",
            AuditAction::Disable => "disable",
            AuditAction::Enable => "enable",
            AuditAction::Delete => "delete",
            AuditAction::SetAccount => "set_account",
            AuditAction::SetUserRole => "set_user_role",
            AuditAction::RemoveUser => "remove_user",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Done.
    Allowed,
    /// Refused or failed: the error's name (`"not_permitted"` …) and message.
    Refused {
        /// The error's snake_case name.
        error: String,
        /// The error's message (never contains a key).
        reason: String,
    },
}

impl AuditOutcome {
    /// `"allowed"` or `"refused"`, as serialized in `outcome`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Refused { .. } => "refused",
        }
    }
}

/// One management call. Never holds a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: Timestamp,
    /// The account acted in.
    pub account: String,
    /// The acting user (`"system"` for calls the application makes itself:
    /// account settings, role changes, removals).
    pub actor: String,
    /// The actor's role, when there is an actor.
    pub actor_role: Option<Role>,
    /// What was asked for.
    pub action: AuditAction,
    /// The kind of key, where one is concerned.
    pub key_kind: Option<KeyKind>,
    /// The key, where one is concerned and known.
    pub key_id: Option<KeyId>,
    /// The user acted upon (role changes, removals, another user's token).
    pub subject_user: Option<String>,
    /// Allowed, or refused and why.
    #[serde(flatten)]
    pub outcome: AuditOutcome,
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Take one event. Must not block for long: it runs inside management calls.
    fn record(&self, event: AuditEvent);

    /// The events this sink still holds, oldest first (empty for sinks that
    /// forward events elsewhere).
    fn events(&self) -> Vec<AuditEvent> {
        Vec::new()
    }
}

/// An in-memory sink keeping the most recent events (10,000 by default): the default sink.
#[derive(Debug)]
pub struct MemoryAuditLog {
    events: Mutex<VecDeque<AuditEvent>>,
    capacity: usize,
}

impl MemoryAuditLog {
    /// A log keeping the last `capacity` events.
    pub fn with_capacity(capacity: usize) -> MemoryAuditLog {
        MemoryAuditLog {
            events: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }
}

impl Default for MemoryAuditLog {
    fn default() -> Self {
        MemoryAuditLog::with_capacity(10_000)
    }
}

impl AuditSink for MemoryAuditLog {
    fn record(&self, event: AuditEvent) {
        let mut q = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(event);
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_match_their_serialized_form() {
        use AuditAction::*;
        for a in [
            Create,
            List,
            Get,
            Disable,
            Enable,
            Delete,
            SetAccount,
            SetUserRole,
            RemoveUser,
        ] {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }
}
