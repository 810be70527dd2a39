//! The one error type, with its HTTP status and PagerDuty error code.

use std::time::Duration;

use crate::key::{Api, Malformed};

/// Why an authentication failed. The client is told only "unauthorized"; the
/// server can log this (through [`Error::reason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The token is not in any key format.
    Malformed(Malformed),
    /// Well-formed, but no key with that digest exists (never made, or deleted).
    Unknown,
    /// The key is disabled.
    Disabled,
    /// The key is past its expiry time.
    Expired,
    /// The user the key acts through was removed from the account (or is
    /// unknown to the store): a user token's owner, a scoped token's maker.
    OwnerRemoved,
    /// The key was replaced by a rotation and its overlap has ended.
    Rotated,
}

impl AuthFailure {
    /// A short description for server logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthFailure::Malformed(Malformed::Length { .. }) => "malformed key: wrong length",
            AuthFailure::Malformed(Malformed::Character { .. }) => {
                "malformed key: character outside the alphabet"
            }
            AuthFailure::Unknown => "unknown or deleted key",
            AuthFailure::Disabled => "disabled key",
            AuthFailure::Expired => "expired key",
            AuthFailure::OwnerRemoved => "the key's owner (or maker) was removed",
            AuthFailure::Rotated => "the key was rotated and its overlap has ended",
        }
    }
}

/// What failed in a store. Messages never contain a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with this id or digest already exists; nothing was written.
    #[error("a key with the same {field} is already stored")]
    Duplicate {
        /// `"id"` or `"digest"`.
        field: &'static str,
    },
    /// A change tried to alter a field that never changes (id, digest, account, kind).
    #[error("the field {field} of a stored key cannot change")]
    Immutable {
        /// The field.
        field: &'static str,
    },
    /// The store could not be reached or failed; nothing was half-written.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back.
    #[error("key store data is corrupt: {0}")]
    Corrupt(String),
}

/// Every error of `apikeys`.
///
/// | variant | HTTP | code |
/// |---|---|---|
/// | `Unauthorized` | 401 | 2006 |
/// | `WrongApi` | 401 on REST, 400 on Events | 2006 |
/// | `Forbidden` | 403 | 2010 |
/// | `PlanRestricted` | 402 | 2014 |
/// | `NotPermitted` | 403 | 2010 |
/// | `NotFound` | 404 | 2100 |
/// | `RateLimited` | 429 | 2020 |
/// | `InvalidInput` | 400 | 2001 |
/// | `Store`, `Random` | 500 | 2000 |
///
/// No message ever contains a key. Authentication failures all read the same
/// to the client; [`Error::reason`] tells the server which check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is malformed, unknown, deleted, disabled, expired, or its owner was removed.
    #[error("unauthorized: the API key is not valid")]
    Unauthorized(AuthFailure),
    /// A REST key on the Events API, or an Events key on the REST API.
    #[error("this is a key for the {key_api} API; it cannot be used on the {request_api} API")]
    WrongApi {
        /// The API the key belongs to.
        key_api: Api,
        /// The API the request was made on.
        request_api: Api,
    },
    /// The key is valid but may not make this request.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// What the key lacks.
        reason: String,
    },
    /// The account's plan lacks the REST API or Advanced Permissions.
    #[error("the account's plan does not include {feature}")]
    PlanRestricted {
        /// `"the REST API"` or `"Advanced Permissions"`.
        feature: &'static str,
    },
    /// The actor's role may not take this management action.
    #[error("not permitted: {reason}")]
    NotPermitted {
        /// Which rule refused it.
        reason: String,
    },
    /// No key with this id in the actor's account.
    #[error("no API key with id {id} in this account")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// Over the rate limit.
    #[error("rate limit of {limit} requests exceeded; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
        /// Requests allowed per window.
        limit: u32,
    },
    /// An argument is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The key store failed; nothing was half-written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random source failed.
    #[error("the operating system's random number source failed")]
    Random,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidInput`] for `field` (for bindings and stores that
    /// check their own arguments).
    pub fn invalid(field: &'static str, reason: String) -> Error {
        Error::InvalidInput { field, reason }
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Unauthorized(_) => 401,
            Error::WrongApi {
                request_api: Api::Rest,
                ..
            } => 401,
            Error::WrongApi {
                request_api: Api::Events,
                ..
            } => 400,
            Error::Forbidden { .. } | Error::NotPermitted { .. } => 403,
            Error::PlanRestricted { .. } => 402,
            Error::NotFound { .. } => 404,
            Error::RateLimited { .. } => 429,
            Error::InvalidInput { .. } => 400,
            Error::Store(_) | Error::Random => 500,
        }
    }

    /// PagerDuty's error code (2000 for internal errors, which PagerDuty
    /// reports as "an internal error occurred").
    pub fn code(&self) -> u32 {
        match self {
            Error::Unauthorized(_) | Error::WrongApi { .. } => 2006,
            Error::Forbidden { .. } | Error::NotPermitted { .. } => 2010,
            Error::PlanRestricted { .. } => 2014,
            Error::NotFound { .. } => 2100,
            Error::RateLimited { .. } => 2020,
            Error::InvalidInput { .. } => 2001,
            Error::Store(_) | Error::Random => 2000,
        }
    }

    /// A stable snake_case name of the variant (`"unauthorized"`, `"wrong_api"`, …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::Unauthorized(_) => "unauthorized",
            Error::WrongApi { .. } => "wrong_api",
            Error::Forbidden { .. } => "forbidden",
            Error::PlanRestricted { .. } => "plan_restricted",
            Error::NotPermitted { .. } => "not_permitted",
            Error::NotFound { .. } => "not_found",
            Error::RateLimited { .. } => "rate_limited",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Store(_) => "store",
            Error::Random => "random",
        }
    }

    /// For server logs: which check failed. For authentication failures this
    /// says what the client is not told (unknown, disabled, expired …); for the
    /// rest it is the message. Never contains a key.
    pub fn reason(&self) -> String {
        match self {
            Error::Unauthorized(f) => f.as_str().to_owned(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_table() {
        let cases: Vec<(Error, u16, u32)> = vec![
            (Error::Unauthorized(AuthFailure::Unknown), 401, 2006),
            (
                Error::WrongApi {
                    key_api: Api::Events,
                    request_api: Api::Rest,
                },
                401,
                2006,
            ),
            (
                Error::WrongApi {
                    key_api: Api::Rest,
                    request_api: Api::Events,
                },
                400,
                2006,
            ),
            (
                Error::Forbidden {
                    reason: String::new(),
                },
                403,
                2010,
            ),
            (
                Error::PlanRestricted {
                    feature: "the REST API",
                },
                402,
                2014,
            ),
            (
                Error::NotPermitted {
                    reason: String::new(),
                },
                403,
                2010,
            ),
            (Error::NotFound { id: String::new() }, 404, 2100),
            (
                Error::RateLimited {
                    retry_after: Duration::from_secs(1),
                    limit: 1,
                },
                429,
                2020,
            ),
            (Error::invalid("x", String::new()), 400, 2001),
            (
                Error::Store(StoreError::Unavailable("down".into())),
                500,
                2000,
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.http_status(), e.code()), (status, code), "{e:?}");
        }
    }

    #[test]
    fn unauthorized_reads_the_same_for_every_reason() {
        let msgs: Vec<String> = [
            AuthFailure::Unknown,
            AuthFailure::Disabled,
            AuthFailure::Expired,
            AuthFailure::OwnerRemoved,
            AuthFailure::Rotated,
        ]
        .into_iter()
        .map(|f| Error::Unauthorized(f).to_string())
        .collect();
        assert!(msgs.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(
            Error::Unauthorized(AuthFailure::Disabled).reason(),
            "disabled key"
        );
    }
}
