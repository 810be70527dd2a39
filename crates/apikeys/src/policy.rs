//! Who may do what: the management matrix and the grants table for user tokens.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::{Api, KeyKind};
use crate::record::{AccessLevel, KeyRecord, Scope};
use crate::request::Request;
use crate::role::{AccountSettings, Role};

/// A management action on keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Make a key.
    Create,
    /// List keys.
    List,
    /// Read one key's record.
    Get,
    /// Disable a general key.
    Disable,
    /// Enable a disabled general key.
    Enable,
    /// Delete a key for good.
    Delete,
    /// Replace a key by a new one with the same settings, the old one
    /// working on for an overlap: whoever may both create that kind of key
    /// (for that owner) and take it out of service (disable a general key,
    /// delete any other kind) may rotate it.
    Rotate,
}

crate::names::from_name!(Action, "action");

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 7] = [
        Action::Create,
        Action::List,
        Action::Get,
        Action::Disable,
        Action::Enable,
        Action::Delete,
        Action::Rotate,
    ];

    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::List => "list",
            Action::Get => "get",
            Action::Disable => "disable",
            Action::Enable => "enable",
            Action::Delete => "delete",
            Action::Rotate => "rotate",
        }
    }
}

/// Whose key an action is on, as far as the matrix cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An account-owned key (general, scoped, integration, routing).
    Account,
    /// The actor's own user token.
    OwnToken,
    /// Another user's token; that user's current role if known.
    OthersToken(Option<Role>),
}

/// The management matrix of docs/design.md §2. Default deny: anything not granted here
/// is refused, and the reason says which rule applied.
pub fn may_manage(
    actor: Role,
    action: Action,
    kind: KeyKind,
    subject: Subject,
) -> Result<(), String> {
    if action == Action::Rotate {
        // Rotating makes a key and retires one: both rules must allow it.
        let retire = if kind == KeyKind::General {
            Action::Disable
        } else {
            Action::Delete
        };
        return may_manage(actor, Action::Create, kind, subject)
            .and_then(|()| may_manage(actor, retire, kind, subject))
            .map_err(|why| format!("{why} (rotating needs both)"));
    }
    let ok = match (kind, action, subject) {
        (KeyKind::General, _, _) => actor.is_admin_or_owner(),
        (KeyKind::UserToken, Action::Create, Subject::OwnToken) => {
            actor != Role::LimitedStakeholder
        }
        (KeyKind::UserToken, Action::List | Action::Get | Action::Delete, Subject::OwnToken) => {
            true
        }
        (KeyKind::UserToken, Action::List | Action::Get, Subject::OthersToken(_)) => {
            actor.is_admin_or_owner()
        }
        (KeyKind::UserToken, Action::Delete, Subject::OthersToken(owner)) => {
            if !actor.is_admin_or_owner() {
                false
            } else {
                return match owner {
                    Some(r) if !r.is_admin_or_owner() => Ok(()),
                    Some(r) => Err(format!(
                        "a user token of a user whose role is '{r}' can only be deleted by that user"
                    )),
                    None => {
                        Err("the token's owner is unknown, so only they may delete it".to_owned())
                    }
                };
            }
        }
        (KeyKind::UserToken, _, _) => false,
        (
            KeyKind::Integration | KeyKind::Routing | KeyKind::Scoped,
            Action::Create | Action::List | Action::Get | Action::Delete,
            _,
        ) => actor.is_manager_or_above(),
        (KeyKind::Integration | KeyKind::Routing | KeyKind::Scoped, _, _) => false,
    };
    if ok {
        Ok(())
    } else {
        let whose = match subject {
            Subject::OthersToken(_) => "another user's ",
            Subject::OwnToken => "their own ",
            Subject::Account => "",
        };
        Err(format!(
            "the role '{actor}' may not {} {whose}{} keys",
            action.as_str(),
            kind.as_str().replace('_', " ")
        ))
    }
}

/// Whether an account's plan allows keys of `kind` (docs/design.md §3, step
/// 5): REST keys need the REST API, user tokens Advanced Permissions. The one
/// plan check, for making keys and for using them.
#[inline(always)]
pub(crate) fn plan_allows(settings: &AccountSettings, kind: KeyKind) -> Result<()> {
    if kind.api() == Api::Rest && !settings.rest_api {
        return Err(Error::PlanRestricted {
            feature: "the REST API",
        });
    }
    if kind == KeyKind::UserToken && !settings.advanced_permissions {
        return Err(Error::PlanRestricted {
            feature: "Advanced Permissions",
        });
    }
    Ok(())
}

/// What a key may do, checked for one request (docs/design.md §3, step 6):
/// a read-only general key only reads; a user token what its owner's role
/// (`role`, now) grants; a scoped token its scopes, intersected with what its
/// maker's role (`role`, now) may hand on ([`GrantsTable::may_delegate`]).
/// `Forbidden` says which rule refused.
#[inline]
pub(crate) fn may_request(
    grants: &GrantsTable,
    record: &KeyRecord,
    role: Option<Role>,
    request: &Request,
) -> Result<()> {
    let write = request.needs_write();
    match record.kind {
        KeyKind::General => {
            if record.access == AccessLevel::ReadOnly && write {
                return Err(Error::Forbidden {
                    reason: "this key is read-only: only GET and HEAD requests, with read scopes"
                        .to_owned(),
                });
            }
        }
        KeyKind::UserToken => {
            let role = role.unwrap_or(Role::LimitedStakeholder);
            let resource = request.scope().map(Scope::resource);
            if !grants.allows(role, resource, write) {
                let what = if write { "write" } else { "read" };
                return Err(Error::Forbidden {
                    reason: match resource {
                        Some(r) => {
                            format!("the token's owner, now '{role}', may not {what} '{r}'")
                        }
                        None => format!(
                            "the token's owner, now '{role}', may not {what} every resource; name a scope"
                        ),
                    },
                });
            }
        }
        KeyKind::Scoped => {
            let Some(scope) = request.scope() else {
                return Err(Error::Forbidden {
                    reason: "a scoped token can only be used for a request with a scope".to_owned(),
                });
            };
            let ok = record
                .scopes
                .iter()
                .any(|s| s.resource() == scope.resource() && (s.is_write() || !write));
            let what = if write { "write" } else { "read" };
            if !ok {
                return Err(Error::Forbidden {
                    reason: format!("this token lacks the scope {}.{what}", scope.resource()),
                });
            }
            // Its scopes, intersected with what its maker may do now.
            let maker = role.unwrap_or(Role::LimitedStakeholder);
            if !grants.may_delegate(maker, scope.resource(), write) {
                return Err(Error::Forbidden {
                    reason: format!(
                        "the token's maker, now '{maker}', may not {what} '{}'",
                        scope.resource()
                    ),
                });
            }
        }
        KeyKind::Integration | KeyKind::Routing => {}
    }
    Ok(())
}

/// A set of resources (`incidents`, `users:contact_methods`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceSet {
    /// Every resource.
    All,
    /// Every resource but the table's admin-only ones.
    AllButAdminOnly,
    /// Exactly these resources.
    Only(Vec<String>),
    /// No resource.
    Nothing,
}

impl ResourceSet {
    fn contains(&self, resource: &str, admin_only: &[String]) -> bool {
        match self {
            ResourceSet::All => true,
            ResourceSet::AllButAdminOnly => !admin_only.iter().any(|r| r == resource),
            ResourceSet::Only(list) => list.iter().any(|r| r == resource),
            ResourceSet::Nothing => false,
        }
    }

    /// Whether the set holds every resource that is not admin-only.
    fn covers_all_non_admin(&self) -> bool {
        matches!(self, ResourceSet::All | ResourceSet::AllButAdminOnly)
    }
}

/// What one role may read and write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGrants {
    /// Resources the role reads.
    pub read: ResourceSet,
    /// Resources the role writes.
    pub write: ResourceSet,
}

/// What each role may read and write through a user token: data, in one place.
/// [`GrantsTable::pagerduty`] is the default; an application may build its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantsTable {
    admin_only: Vec<String>,
    roles: [RoleGrants; 8],
}

/// The resources only Owners and Admins may touch in PagerDuty's table.
pub const PAGERDUTY_ADMIN_ONLY: [&str; 7] = [
    "users",
    "users:sessions",
    "ip_allow_lists",
    "session_configurations",
    "oauth_delegations",
    "licenses",
    "audit_records",
];

impl GrantsTable {
    /// A table with these admin-only resources where no role may do anything yet.
    pub fn new(admin_only: &[&str]) -> GrantsTable {
        let none = || RoleGrants {
            read: ResourceSet::Nothing,
            write: ResourceSet::Nothing,
        };
        GrantsTable {
            admin_only: admin_only.iter().map(|s| (*s).to_owned()).collect(),
            roles: std::array::from_fn(|_| none()),
        }
    }

    /// PagerDuty's table: Owner and Admin read and write everything; Manager reads
    /// everything and writes all but the admin-only resources; Responder reads all
    /// but the admin-only resources and writes `incidents`,
    /// `incident_workflows:instances`, `change_events`, `users:contact_methods`;
    /// Observer, RestrictedAccess and FullStakeholder read all but the admin-only
    /// resources (FullStakeholder also writes `subscribers`); LimitedStakeholder
    /// holds no tokens.
    pub fn pagerduty() -> GrantsTable {
        use ResourceSet::*;
        let only = |l: &[&str]| Only(l.iter().map(|s| (*s).to_owned()).collect());
        let mut t = GrantsTable::new(&PAGERDUTY_ADMIN_ONLY);
        t.set(
            Role::Owner,
            RoleGrants {
                read: All,
                write: All,
            },
        );
        t.set(
            Role::Admin,
            RoleGrants {
                read: All,
                write: All,
            },
        );
        t.set(
            Role::Manager,
            RoleGrants {
                read: All,
                write: AllButAdminOnly,
            },
        );
        t.set(
            Role::Responder,
            RoleGrants {
                read: AllButAdminOnly,
                write: only(&[
                    "incidents",
                    "incident_workflows:instances",
                    "change_events",
                    "users:contact_methods",
                ]),
            },
        );
        t.set(
            Role::Observer,
            RoleGrants {
                read: AllButAdminOnly,
                write: Nothing,
            },
        );
        t.set(
            Role::RestrictedAccess,
            RoleGrants {
                read: AllButAdminOnly,
                write: Nothing,
            },
        );
        t.set(
            Role::FullStakeholder,
            RoleGrants {
                read: AllButAdminOnly,
                write: only(&["subscribers"]),
            },
        );
        t.set(
            Role::LimitedStakeholder,
            RoleGrants {
                read: Nothing,
                write: Nothing,
            },
        );
        t
    }

    /// Replace one role's grants.
    pub fn set(&mut self, role: Role, grants: RoleGrants) -> &mut Self {
        self.roles[role as usize] = grants;
        self
    }

    /// One role's grants.
    pub fn grants(&self, role: Role) -> &RoleGrants {
        &self.roles[role as usize]
    }

    /// The admin-only resources.
    pub fn admin_only(&self) -> &[String] {
        &self.admin_only
    }

    /// Whether a user whose role is `role` may hand read (or, with `write`,
    /// write) access to `resource` to a scoped token: the role's own grants
    /// must cover it, and an admin-only resource (even to read) may be handed
    /// on only by an Owner or Admin. A scoped token never carries more than
    /// its maker may do, at creation and at every request after
    /// (docs/design.md, "Invariants").
    #[inline]
    pub fn may_delegate(&self, role: Role, resource: &str, write: bool) -> bool {
        self.allows(role, Some(resource), write)
            && (role.is_admin_or_owner() || !self.admin_only.iter().any(|r| r == resource))
    }

    /// Whether `role` may read (or, with `write`, write) `resource`; with no
    /// resource, every resource that is not admin-only.
    pub fn allows(&self, role: Role, resource: Option<&str>, write: bool) -> bool {
        let g = self.grants(role);
        let set = if write { &g.write } else { &g.read };
        match resource {
            Some(r) => set.contains(r, &self.admin_only),
            None => set.covers_all_non_admin(),
        }
    }
}

impl Default for GrantsTable {
    fn default() -> Self {
        GrantsTable::pagerduty()
    }
}
