//! The exception hierarchy: one base class, one subclass per [`apikeys::Error`]
//! variant, each carrying the HTTP status and the PagerDuty error code.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{create_exception, intern};

create_exception!(
    apikeys,
    ApiKeyError,
    PyException,
    "Base class of every apikeys error. `.status` is the HTTP status to answer with, \
     `.code` PagerDuty's error code, `.reason` what failed (for server logs; never a key)."
);
create_exception!(
    apikeys,
    Unauthorized,
    ApiKeyError,
    "The key is malformed, unknown, deleted, disabled, expired, or its owner was removed (401, 2006)."
);
create_exception!(
    apikeys,
    WrongApi,
    ApiKeyError,
    "A REST key on the Events API, or an Events key on the REST API (401 on REST, 400 on Events; 2006)."
);
create_exception!(
    apikeys,
    Forbidden,
    ApiKeyError,
    "The key is valid but may not make this request (403, 2010)."
);
create_exception!(
    apikeys,
    PlanRestricted,
    ApiKeyError,
    "The account's plan lacks the REST API or Advanced Permissions (402, 2014)."
);
create_exception!(
    apikeys,
    NotPermitted,
    ApiKeyError,
    "The actor's role may not take this management action (403, 2010)."
);
create_exception!(
    apikeys,
    NotFound,
    ApiKeyError,
    "No key with this id in the actor's account (404, 2100)."
);
create_exception!(
    apikeys,
    RateLimited,
    ApiKeyError,
    "Over the rate limit; `.retry_after` is the number of seconds to wait (429, 2020)."
);
create_exception!(
    apikeys,
    InvalidInput,
    ApiKeyError,
    "An argument is invalid; `.field` names it (400, 2001)."
);
create_exception!(
    apikeys,
    StoreError,
    ApiKeyError,
    "The key store failed; nothing was half-written (500, 2000)."
);

/// Each class with the status and code it has as class attributes (instances
/// carry their own, which differ only for `WrongApi` on the Events API).
pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let classes = [
        (py.get_type::<ApiKeyError>(), 500, 2000),
        (py.get_type::<Unauthorized>(), 401, 2006),
        (py.get_type::<WrongApi>(), 401, 2006),
        (py.get_type::<Forbidden>(), 403, 2010),
        (py.get_type::<PlanRestricted>(), 402, 2014),
        (py.get_type::<NotPermitted>(), 403, 2010),
        (py.get_type::<NotFound>(), 404, 2100),
        (py.get_type::<RateLimited>(), 429, 2020),
        (py.get_type::<InvalidInput>(), 400, 2001),
        (py.get_type::<StoreError>(), 500, 2000),
    ];
    for (class, status, code) in classes {
        class.setattr(intern!(py, "status"), status)?;
        class.setattr(intern!(py, "code"), code)?;
        class.setattr(intern!(py, "reason"), "")?;
        m.add(class.name()?, class)?;
    }
    py.get_type::<InvalidInput>()
        .setattr(intern!(py, "field"), "")?;
    py.get_type::<RateLimited>()
        .setattr(intern!(py, "retry_after"), 0.0)?;
    py.get_type::<RateLimited>()
        .setattr(intern!(py, "limit"), 0)?;
    Ok(())
}

/// The Python exception for a core error: its class, message, `.status`,
/// `.code`, `.reason` and, where the variant has them, `.field` or
/// `.retry_after`. No core error message contains a key.
pub(crate) fn to_py(py: Python<'_>, e: apikeys::Error) -> PyErr {
    use apikeys::Error as E;
    let class = match &e {
        E::Unauthorized(_) => py.get_type::<Unauthorized>(),
        E::WrongApi { .. } => py.get_type::<WrongApi>(),
        E::Forbidden { .. } => py.get_type::<Forbidden>(),
        E::PlanRestricted { .. } => py.get_type::<PlanRestricted>(),
        E::NotPermitted { .. } => py.get_type::<NotPermitted>(),
        E::NotFound { .. } => py.get_type::<NotFound>(),
        E::RateLimited { .. } => py.get_type::<RateLimited>(),
        E::InvalidInput { .. } => py.get_type::<InvalidInput>(),
        E::Store(_) => py.get_type::<StoreError>(),
        _ => py.get_type::<ApiKeyError>(),
    };
    // The instance is made here rather than by raising lazily: it is needed
    // anyway to attach attributes, and this skips a raise-and-fetch round trip.
    let value = match class.call1((e.to_string(),)) {
        Ok(v) => v,
        Err(failed) => return failed,
    };
    // The class attributes already hold each class's status and code; only
    // what differs per instance is set on it (the first `setattr` creates the
    // instance's `__dict__`, which costs more than the rest of the raise).
    let set = || -> PyResult<()> {
        value.setattr(intern!(py, "reason"), e.reason())?;
        match &e {
            E::WrongApi { .. } => value.setattr(intern!(py, "status"), e.http_status())?,
            E::InvalidInput { field, .. } => value.setattr(intern!(py, "field"), *field)?,
            E::RateLimited { retry_after, limit } => {
                value.setattr(intern!(py, "retry_after"), retry_after.as_secs_f64())?;
                value.setattr(intern!(py, "limit"), *limit)?;
            }
            E::Unauthorized(_)
            | E::Forbidden { .. }
            | E::PlanRestricted { .. }
            | E::NotPermitted { .. }
            | E::NotFound { .. }
            | E::Store(_) => {}
            _ => {
                value.setattr(intern!(py, "status"), e.http_status())?;
                value.setattr(intern!(py, "code"), e.code())?;
            }
        }
        Ok(())
    };
    match set() {
        Ok(()) => PyErr::from_value(value),
        Err(failed) => failed,
    }
}

/// An `InvalidInput` for an argument the binding could not convert (a string
/// with lone surrogates, a naive datetime …).
pub(crate) fn invalid(py: Python<'_>, field: &'static str, reason: &str) -> PyErr {
    to_py(
        py,
        apikeys::Error::InvalidInput {
            field,
            reason: reason.to_owned(),
        },
    )
}
