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

/// What one actor may do, as the matrix (docs/design.md §2), the grants
/// table (§4) and the account's plan decide it on the role the keyring
/// stores for them now: for a page that offers only the buttons a role may
/// use ([`crate::Keyring::permissions`]). Every call is still decided on
/// its own by the keyring; this is a summary, never a substitute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    /// The role the calls are decided on; `None` for a removed user, who may do nothing.
    pub role: Option<Role>,
    /// Per kind of key, what the actor may do to the account's keys of that
    /// kind (for user tokens: to their own), in [`Action::ALL`]'s order.
    pub keys: Vec<(KeyKind, Vec<Action>)>,
    /// What the actor may do to other users' tokens whose owner is neither
    /// an Owner nor an Admin (the matrix protects those).
    pub others_tokens: Vec<Action>,
    /// Whether the actor may read the account's audit trail (`audit_records.read`).
    pub audit_records: bool,
}

impl Permissions {
    /// Everything `role` may do in an account with `settings` under `grants`
    /// (`None`: a removed user, nothing).
    pub fn of(role: Option<Role>, settings: &AccountSettings, grants: &GrantsTable) -> Self {
        let Some(role) = role else {
            return Permissions {
                role: None,
                keys: KeyKind::ALL.iter().map(|&k| (k, Vec::new())).collect(),
                others_tokens: Vec::new(),
                audit_records: false,
            };
        };
        let allowed = |kind: KeyKind, subject: Subject| -> Vec<Action> {
            Action::ALL
                .into_iter()
                .filter(|&a| {
                    // Disable and enable are for general keys only.
                    if matches!(a, Action::Disable | Action::Enable) && kind != KeyKind::General {
                        return false;
                    }
                    // Making a key (or a rotation's new one) needs the plan.
                    if matches!(a, Action::Create | Action::Rotate)
                        && plan_allows(settings, kind).is_err()
                    {
                        return false;
                    }
                    may_manage(role, a, kind, subject).is_ok()
                })
                .collect()
        };
        let keys = KeyKind::ALL
            .iter()
            .map(|&k| {
                let subject = if k == KeyKind::UserToken {
                    Subject::OwnToken
                } else {
                    Subject::Account
                };
                (k, allowed(k, subject))
            })
            .collect();
        Permissions {
            role: Some(role),
            keys,
            others_tokens: allowed(
                KeyKind::UserToken,
                Subject::OthersToken(Some(Role::Observer)),
            ),
            audit_records: grants.allows(role, Some("audit_records"), false),
        }
    }

    /// Whether the actor may do `action` to keys of `kind` (their own, for user tokens).
    pub fn may(&self, kind: KeyKind, action: Action) -> bool {
        self.keys
            .iter()
            .any(|(k, actions)| *k == kind && actions.contains(&action))
    }

    /// The actions allowed on keys of `kind` (their own, for user tokens).
    pub fn actions(&self, kind: KeyKind) -> &[Action] {
        self.keys
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, a)| a.as_slice())
    }
}

impl crate::Keyring {
    /// What `actor` may do now ([`Permissions`]), decided on the role the
    /// keyring stores for them (the `Actor`'s own role only for a user it
    /// has never stored; nothing for a removed user) and on their account's
    /// plan. `InvalidInput` for a malformed account or user id.
    pub fn permissions(&self, actor: &crate::Actor) -> Result<Permissions> {
        crate::keyring::validate_id("account", &actor.account)?;
        crate::keyring::validate_id("user", &actor.user)?;
        let role = match self.standing_of(actor) {
            Ok(s) => Some(s.role),
            Err(Error::NotPermitted { .. }) => None,
            Err(e) => return Err(e),
        };
        let settings = self.store().account_settings(&actor.account)?;
        Ok(Permissions::of(role, &settings, self.grants()))
    }

    /// A page of the actor's account's audit trail ([`crate::Keyring::audit_records`])
    /// if the actor's stored role has the `audit_records.read` grant
    /// (docs/design.md §4, §9): Owner, Admin and Manager in the default table.
    /// The query's account is the actor's, whatever it says.
    /// `NotPermitted` otherwise (a removed user too).
    pub fn audit_records_as(
        &self,
        actor: &crate::Actor,
        query: &crate::AuditQuery,
    ) -> Result<crate::AuditPage> {
        let permissions = self.permissions(actor)?;
        if !permissions.audit_records {
            return Err(Error::NotPermitted {
                reason: match permissions.role {
                    Some(r) => {
                        format!("the role '{r}' may not read the audit trail (audit_records.read)")
                    }
                    None => "this user was removed from the account".to_owned(),
                },
            });
        }
        let mut query = query.clone();
        query.account.clone_from(&actor.account);
        self.audit_records(&query)
    }
}

#[cfg(test)]
mod permission_tests {
    use super::*;
    use crate::{AccessLevel, Actor, AuditQuery, Keyring, MemoryStore};

    #[test]
    fn permissions_follow_the_matrix_role_by_role() {
        let all = AccountSettings::default();
        let g = GrantsTable::pagerduty();
        let owner = Permissions::of(Some(Role::Owner), &all, &g);
        assert_eq!(owner.actions(KeyKind::General), &Action::ALL);
        assert!(owner.audit_records);
        assert!(owner.may(KeyKind::UserToken, Action::Rotate));
        assert!(!owner.may(KeyKind::UserToken, Action::Disable));
        assert_eq!(
            owner.others_tokens,
            vec![Action::List, Action::Get, Action::Delete]
        );
        let manager = Permissions::of(Some(Role::Manager), &all, &g);
        assert!(manager.actions(KeyKind::General).is_empty());
        assert!(manager.may(KeyKind::Integration, Action::Create));
        // The default table lets a manager read everything, the trail included.
        assert!(manager.audit_records);
        assert!(manager.others_tokens.is_empty());
        let observer = Permissions::of(Some(Role::Observer), &all, &g);
        assert!(observer.actions(KeyKind::General).is_empty());
        assert!(observer.may(KeyKind::UserToken, Action::Create));
        assert!(!observer.audit_records);
        let limited = Permissions::of(Some(Role::LimitedStakeholder), &all, &g);
        assert!(!limited.may(KeyKind::UserToken, Action::Create));
        assert!(limited.may(KeyKind::UserToken, Action::Delete));
        let removed = Permissions::of(None, &all, &g);
        assert!(KeyKind::ALL.iter().all(|&k| removed.actions(k).is_empty()));
        assert!(!removed.audit_records);
        // Every summary agrees with the matrix it summarises.
        for role in Role::ALL {
            let p = Permissions::of(Some(role), &all, &g);
            for kind in KeyKind::ALL {
                let subject = if kind == KeyKind::UserToken {
                    Subject::OwnToken
                } else {
                    Subject::Account
                };
                for a in [Action::List, Action::Get, Action::Delete] {
                    assert_eq!(
                        p.may(kind, a),
                        may_manage(role, a, kind, subject).is_ok(),
                        "{role} {a:?} {kind}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_plan_takes_away_making_keys_only() {
        let g = GrantsTable::pagerduty();
        let legacy = AccountSettings {
            rest_api: true,
            advanced_permissions: false,
        };
        let p = Permissions::of(Some(Role::Admin), &legacy, &g);
        assert!(!p.may(KeyKind::UserToken, Action::Create));
        assert!(!p.may(KeyKind::UserToken, Action::Rotate));
        assert!(p.may(KeyKind::UserToken, Action::Delete));
        assert!(p.may(KeyKind::General, Action::Create));
    }

    #[test]
    fn permissions_use_the_stored_role_and_refuse_the_removed() {
        let k = Keyring::new(MemoryStore::new());
        k.set_user_role("acme", "PBOB", Role::Observer).unwrap();
        // Bob claims to be an admin; the keyring knows better.
        let bob = Actor::new("acme", "PBOB", Role::Admin);
        let p = k.permissions(&bob).unwrap();
        assert_eq!(p.role, Some(Role::Observer));
        assert!(!p.may(KeyKind::General, Action::Create));
        let e = k
            .audit_records_as(&bob, &AuditQuery::account("acme"))
            .unwrap_err();
        assert_eq!(e.http_status(), 403);
        k.remove_user("acme", "PBOB").unwrap();
        assert_eq!(k.permissions(&bob).unwrap().role, None);
        // Unknown users act with their own role.
        let ann = Actor::new("acme", "PANN", Role::Admin);
        assert_eq!(k.permissions(&ann).unwrap().role, Some(Role::Admin));
        assert!(
            k.permissions(&Actor::new("acme", " ", Role::Admin))
                .is_err()
        );
    }

    #[test]
    fn audit_records_as_reads_only_the_actors_account() {
        let k = Keyring::new(MemoryStore::new());
        let ann = Actor::new("acme", "PANN", Role::Admin);
        let eve = Actor::new("evil", "PEVE", Role::Admin);
        k.create_general_key(&ann, "CI", AccessLevel::ReadOnly)
            .unwrap();
        k.create_general_key(&eve, "other", AccessLevel::ReadOnly)
            .unwrap();
        // Eve asks for acme's records and gets her own account's.
        let page = k
            .audit_records_as(&eve, &AuditQuery::account("acme"))
            .unwrap();
        assert!(!page.records.is_empty());
        assert!(page.records.iter().all(|r| r.account == "evil"));
        let page = k
            .audit_records_as(&ann, &AuditQuery::account("acme"))
            .unwrap();
        assert!(page.records.iter().all(|r| r.account == "acme"));
    }
}
