//! Roles, actors, account settings and what is known about users.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user's role in an account, with PagerDuty's REST names.
///
/// | variant | prints as | also parses from |
/// |---|---|---|
/// | `Owner` | `owner` | |
/// | `Admin` | `admin` | `global_admin` |
/// | `Manager` | `user` | `manager` |
/// | `Responder` | `limited_user` | `responder` |
/// | `Observer` | `observer` | |
/// | `RestrictedAccess` | `restricted_access` | |
/// | `FullStakeholder` | `read_only_user` | |
/// | `LimitedStakeholder` | `read_only_limited_user` | |
///
/// Unknown strings are an error, never a default role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// The account owner.
    Owner = 0,
    /// An administrator (`admin`, `global_admin`).
    Admin = 1,
    /// A manager (`user` in PagerDuty's REST API).
    Manager = 2,
    /// A responder (`limited_user`).
    Responder = 3,
    /// An observer.
    Observer = 4,
    /// Restricted access.
    RestrictedAccess = 5,
    /// A full stakeholder (`read_only_user`).
    FullStakeholder = 6,
    /// A limited stakeholder (`read_only_limited_user`).
    LimitedStakeholder = 7,
}

impl Role {
    /// Every role, from the most to the least powerful.
    pub const ALL: [Role; 8] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Responder,
        Role::Observer,
        Role::RestrictedAccess,
        Role::FullStakeholder,
        Role::LimitedStakeholder,
    ];

    /// PagerDuty's REST name for the role.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "user",
            Role::Responder => "limited_user",
            Role::Observer => "observer",
            Role::RestrictedAccess => "restricted_access",
            Role::FullStakeholder => "read_only_user",
            Role::LimitedStakeholder => "read_only_limited_user",
        }
    }

    /// Parse a role name (see the table above). Exact, lowercase names only.
    pub fn parse(s: &str) -> Result<Role, crate::Error> {
        Ok(match s {
            "owner" => Role::Owner,
            "admin" | "global_admin" => Role::Admin,
            "user" | "manager" => Role::Manager,
            "limited_user" | "responder" => Role::Responder,
            "observer" => Role::Observer,
            "restricted_access" => Role::RestrictedAccess,
            "read_only_user" => Role::FullStakeholder,
            "read_only_limited_user" => Role::LimitedStakeholder,
            _ => {
                return Err(crate::Error::invalid(
                    "role",
                    "unknown role; expected one of owner, admin, user (manager), limited_user (responder), observer, restricted_access, read_only_user, read_only_limited_user".to_owned(),
                ));
            }
        })
    }

    /// Owner, Admin or Manager.
    pub const fn is_manager_or_above(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Manager)
    }

    /// Owner or Admin.
    pub const fn is_admin_or_owner(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub(crate) const fn from_u8(v: u8) -> Option<Role> {
        match v {
            0 => Some(Role::Owner),
            1 => Some(Role::Admin),
            2 => Some(Role::Manager),
            3 => Some(Role::Responder),
            4 => Some(Role::Observer),
            5 => Some(Role::RestrictedAccess),
            6 => Some(Role::FullStakeholder),
            7 => Some(Role::LimitedStakeholder),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Role, crate::Error> {
        Role::parse(s)
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Role::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Who asks for a management action: a user of an account, with their role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The account the user acts in.
    pub account: String,
    /// The user's id.
    pub user: String,
    /// The user's role in that account, as the application knows it now.
    pub role: Role,
    /// How the call reached the application (request id, address, the
    /// caller's key's last four characters), for the audit record.
    #[serde(default)]
    pub context: crate::audit::CallContext,
}

impl Actor {
    /// An actor.
    pub fn new(account: impl Into<String>, user: impl Into<String>, role: Role) -> Actor {
        Actor {
            account: account.into(),
            user: user.into(),
            role,
            context: crate::audit::CallContext::default(),
        }
    }

    /// The same actor, calling with this context (kept in audit records).
    pub fn with_context(mut self, context: crate::audit::CallContext) -> Actor {
        self.context = context;
        self
    }
}

/// What an account's plan includes. An account never configured has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountSettings {
    /// The REST API. `false` on a legacy plan: REST keys can neither be made nor
    /// used there (Events keys still work).
    pub rest_api: bool,
    /// Advanced Permissions, needed to make and use user tokens.
    pub advanced_permissions: bool,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            rest_api: true,
            advanced_permissions: true,
        }
    }
}

/// What the store knows of a user who owns (or owned) user tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserState {
    /// The user's current role.
    pub role: Role,
    /// Set when the user was removed from the account: their tokens stop working.
    pub removed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_aliases_parse() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
            assert_eq!(Role::from_u8(r as u8), Some(r));
        }
        assert_eq!(Role::parse("global_admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("manager").unwrap(), Role::Manager);
        assert_eq!(Role::parse("responder").unwrap(), Role::Responder);
    }

    #[test]
    fn unknown_role_strings_are_errors() {
        for s in ["", "Owner", "ADMIN", "superuser", "admin ", "stakeholder"] {
            let e = Role::parse(s).unwrap_err();
            assert_eq!(e.http_status(), 400, "{s:?}");
        }
    }
}
