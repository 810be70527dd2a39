//! The one error type, with its HTTP status and PagerDuty error code.

use std::fmt;
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
///
/// [`StoreError::Unavailable`] and [`StoreError::Corrupt`] carry a
/// [`StoreFailure`]: a message and, when the failure came from a database
/// driver or a client library, that library's own error, which
/// [`source`](std::error::Error::source) returns (a `rusqlite::Error`, a
/// `postgres::Error`, …) for a caller that wants to look into it. The message
/// already says what happened, so `Display` and `Debug` print the message
/// alone, as when it was a `String`; neither ever prints a query's parameter
/// values.
///
/// ```
/// use apikeys::{StoreError, StoreFailure};
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let e = StoreError::unavailable("cannot connect to the database: refused", io);
/// assert_eq!(e.to_string(), "key store unavailable: cannot connect to the database: refused");
/// let source = std::error::Error::source(&e).expect("the driver's error");
/// assert!(source.downcast_ref::<std::io::Error>().is_some());
///
/// // Matching reads the message, as when it was a `String`.
/// match e {
///     StoreError::Unavailable(why) => assert!(why.contains("cannot connect")),
///     _ => unreachable!(),
/// }
/// let plain = StoreError::Unavailable("down".into());
/// assert!(std::error::Error::source(&plain).is_none());
/// # let _: StoreFailure = "x".into();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with this id or digest already exists; nothing was written.
    Duplicate {
        /// `"id"` or `"digest"`.
        field: &'static str,
    },
    /// A change tried to alter a field that never changes (id, digest, account, kind).
    Immutable {
        /// The field.
        field: &'static str,
    },
    /// The store could not be reached or failed; nothing was half-written.
    Unavailable(StoreFailure),
    /// Stored data could not be read back.
    Corrupt(StoreFailure),
}

impl StoreError {
    /// A [`StoreError::Unavailable`] saying `message`, caused by `source`
    /// (which [`source`](std::error::Error::source) returns).
    pub fn unavailable(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Unavailable(StoreFailure::caused_by(message, source))
    }

    /// A [`StoreError::Corrupt`] saying `message`, caused by `source`
    /// (which [`source`](std::error::Error::source) returns).
    pub fn corrupt(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Corrupt(StoreFailure::caused_by(message, source))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Duplicate { field } => {
                write!(f, "a key with the same {field} is already stored")
            }
            StoreError::Immutable { field } => {
                write!(f, "the field {field} of a stored key cannot change")
            }
            StoreError::Unavailable(why) => write!(f, "key store unavailable: {why}"),
            StoreError::Corrupt(why) => write!(f, "key store data is corrupt: {why}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Unavailable(why) | StoreError::Corrupt(why) => why
                .source()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            StoreError::Duplicate { .. } | StoreError::Immutable { .. } => None,
        }
    }
}

/// What a [`StoreError::Unavailable`] or [`StoreError::Corrupt`] says: a
/// message for people and, if the failure came from another library (a
/// database driver), that library's error.
///
/// It stands where a `String` stood before: it dereferences to the message
/// (`why.contains("…")`), compares equal to a string, prints as the message
/// (`Debug` too, quoted like a string), and is made from a `String` or a
/// `&str` with `.into()`. The message never contains a key or a query's
/// parameter values; the source is the library's error as it is, for a
/// caller that wants to look into it (its own `Display` and `Debug` are the
/// library's: PostgreSQL's, for one, may quote a row in its `DETAIL`).
pub struct StoreFailure {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreFailure {
    /// A failure with a message and no source.
    pub fn new(message: impl Into<String>) -> StoreFailure {
        StoreFailure {
            message: message.into(),
            source: None,
        }
    }

    /// A failure saying `message`, caused by `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreFailure {
        StoreFailure {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error that caused the failure, if it came from another library.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl std::ops::Deref for StoreFailure {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl AsRef<str> for StoreFailure {
    fn as_ref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message, quoted (as the `String` it replaces printed); never the source.
impl fmt::Debug for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl From<String> for StoreFailure {
    fn from(message: String) -> StoreFailure {
        StoreFailure::new(message)
    }
}

impl From<&str> for StoreFailure {
    fn from(message: &str) -> StoreFailure {
        StoreFailure::new(message)
    }
}

impl PartialEq<str> for StoreFailure {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for StoreFailure {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

impl PartialEq<String> for StoreFailure {
    fn eq(&self, other: &String) -> bool {
        &self.message == other
    }
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
    fn store_failures_read_like_the_strings_they_were_and_keep_their_source() {
        let plain = StoreError::Unavailable("down".into());
        assert_eq!(plain.to_string(), "key store unavailable: down");
        assert_eq!(format!("{plain:?}"), r#"Unavailable("down")"#);
        assert!(std::error::Error::source(&plain).is_none());

        let cause = std::io::Error::other("disk on fire");
        let e = StoreError::corrupt("Db: cannot read a row: disk on fire", cause);
        assert_eq!(
            e.to_string(),
            "key store data is corrupt: Db: cannot read a row: disk on fire"
        );
        assert_eq!(
            format!("{e:?}"),
            r#"Corrupt("Db: cannot read a row: disk on fire")"#
        );
        let source = std::error::Error::source(&e).expect("kept");
        assert!(source.is::<std::io::Error>());
        match &e {
            StoreError::Corrupt(why) => {
                assert_eq!(*why, "Db: cannot read a row: disk on fire");
                assert_eq!(why.message(), "Db: cannot read a row: disk on fire");
                assert!(why.contains("fire") && why.source().is_some());
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }

        // The crate's error is transparent: the same text, the same source.
        let wrapped = Error::from(e);
        assert_eq!(
            wrapped.to_string(),
            "key store data is corrupt: Db: cannot read a row: disk on fire"
        );
        let source = std::error::Error::source(&wrapped).expect("kept");
        assert!(source.is::<std::io::Error>());
        assert!(
            std::error::Error::source(&StoreError::Duplicate { field: "id" }).is_none(),
            "nothing below a duplicate"
        );
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
