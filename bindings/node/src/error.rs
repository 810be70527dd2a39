//! Core errors as JavaScript `Error`s with a stable `code`, the HTTP `status`
//! and PagerDuty's `pdCode`.

use napi::bindgen_prelude::*;
use napi::{JsValue, Property, PropertyAttributes};
use napi_derive::napi;

/// The `code` of every error this package throws (TypeErrors for arguments of
/// the wrong type carry Node's `ERR_INVALID_ARG_TYPE`).
#[napi(string_enum)]
pub enum ErrorCode {
    /// 401, pdCode 2006: malformed, unknown, deleted, disabled, expired, or its owner removed.
    #[napi(value = "ERR_UNAUTHORIZED")]
    Unauthorized,
    /// 401 on REST, 400 on Events, pdCode 2006: a key of the other API.
    #[napi(value = "ERR_WRONG_API")]
    WrongApi,
    /// 403, pdCode 2010: the key may not make this request.
    #[napi(value = "ERR_FORBIDDEN")]
    Forbidden,
    /// 402, pdCode 2014: the account's plan lacks the REST API or Advanced Permissions.
    #[napi(value = "ERR_PLAN_RESTRICTED")]
    PlanRestricted,
    /// 403, pdCode 2010: the actor's role may not take this management action.
    #[napi(value = "ERR_NOT_PERMITTED")]
    NotPermitted,
    /// 404, pdCode 2100: no key with this id in the actor's account.
    #[napi(value = "ERR_NOT_FOUND")]
    NotFound,
    /// 429, pdCode 2020: over the rate limit (`retryAfter` says when to retry, in ms).
    #[napi(value = "ERR_RATE_LIMITED")]
    RateLimited,
    /// 400, pdCode 2001: an argument is invalid (`field` names it).
    #[napi(value = "ERR_INVALID_INPUT")]
    InvalidInput,
    /// 500, pdCode 2000: the key store failed; nothing was half-written.
    #[napi(value = "ERR_STORE")]
    Store,
    /// 500, pdCode 2000: the operating system's random source failed, or another internal error.
    #[napi(value = "ERR_INTERNAL")]
    Internal,
}

/// Each core [`apikeys::Error::kind_name`] with its [`ErrorCode`].
const CODES: [(&str, &str); 9] = [
    ("unauthorized", "ERR_UNAUTHORIZED"),
    ("wrong_api", "ERR_WRONG_API"),
    ("forbidden", "ERR_FORBIDDEN"),
    ("plan_restricted", "ERR_PLAN_RESTRICTED"),
    ("not_permitted", "ERR_NOT_PERMITTED"),
    ("not_found", "ERR_NOT_FOUND"),
    ("rate_limited", "ERR_RATE_LIMITED"),
    ("invalid_input", "ERR_INVALID_INPUT"),
    ("store", "ERR_STORE"),
];

/// The code for a core error's [`apikeys::Error::kind_name`].
pub(crate) fn code_for_kind_name(name: &str) -> &'static str {
    CODES
        .iter()
        .find(|(kind, _)| *kind == name)
        .map_or("ERR_INTERNAL", |(_, code)| code)
}

/// The core kind name of an error's `code` (the TypeError of a wrong
/// argument type is invalid input; an unknown code, an internal error).
pub(crate) fn kind_for_code(code: &str) -> &'static str {
    if code == "ERR_INVALID_ARG_TYPE" {
        return "invalid_input";
    }
    CODES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("internal", |(kind, _)| kind)
}

/// `key_id` → `keyId`: core field names as the JavaScript arguments spell
/// them, for messages (an error's `field` keeps the core's name, the same
/// string in Rust, Python and Node).
pub(crate) fn camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// How the JavaScript API spells a core field: camelCase, and the durations
/// it takes in milliseconds with `Ms` (`grace` → `graceMs`).
pub(crate) fn js_name(field: &str) -> String {
    match field {
        "grace" => "graceMs".to_owned(),
        "older_than" => "olderThanMs".to_owned(),
        "rotation_quiet" => "rotationQuietMs".to_owned(),
        other => camel(other),
    }
}

/// The message: the core's, with argument names as JavaScript spells them. Never holds a key.
pub(crate) fn message(e: &apikeys::Error) -> String {
    match e {
        apikeys::Error::InvalidInput { field, reason } => {
            format!("invalid {}: {reason}", js_name(field))
        }
        other => other.to_string(),
    }
}

/// The JavaScript error for a core error, to be thrown or to reject a Promise with.
pub(crate) fn to_js(env: &Env, e: &apikeys::Error) -> Error {
    build(env, e).unwrap_or_else(|failed| failed)
}

fn build(env: &Env, e: &apikeys::Error) -> Result<Error> {
    let code = code_for_kind_name(e.kind_name());
    let js = JsError::from(Error::new(code, message(e))).into_unknown(*env);
    let mut obj = js.coerce_to_object()?;
    obj.set_named_property("status", u32::from(e.http_status()))?;
    obj.set_named_property("pdCode", e.code())?;
    match e {
        apikeys::Error::InvalidInput { field, .. } => {
            obj.set_named_property("field", *field)?;
        }
        apikeys::Error::RateLimited { retry_after, limit } => {
            obj.set_named_property("retryAfter", crate::types::millis(*retry_after))?;
            obj.set_named_property("limit", *limit)?;
        }
        _ => {}
    }
    // For server logs only (which check failed): not enumerable, so it stays
    // out of `JSON.stringify(err)` and of a response built from the error's fields.
    let reason = env.create_string(e.reason())?;
    obj.define_properties(&[Property::new()
        .with_utf8_name("reason")?
        .with_value(&reason)
        .with_property_attributes(
            PropertyAttributes::Writable | PropertyAttributes::Configurable,
        )])?;
    Ok(Error::from(js))
}

#[cfg(test)]
mod tests {
    use apikeys::{Api, AuthFailure, Error as E, StoreError};

    use super::*;

    #[test]
    fn every_core_error_has_its_stable_code() {
        let cases: Vec<(E, &str)> = vec![
            (E::Unauthorized(AuthFailure::Disabled), "ERR_UNAUTHORIZED"),
            (
                E::WrongApi {
                    key_api: Api::Rest,
                    request_api: Api::Events,
                },
                "ERR_WRONG_API",
            ),
            (
                E::Forbidden {
                    reason: String::new(),
                },
                "ERR_FORBIDDEN",
            ),
            (
                E::PlanRestricted {
                    feature: "the REST API",
                },
                "ERR_PLAN_RESTRICTED",
            ),
            (
                E::NotPermitted {
                    reason: String::new(),
                },
                "ERR_NOT_PERMITTED",
            ),
            (E::NotFound { id: String::new() }, "ERR_NOT_FOUND"),
            (
                E::InvalidInput {
                    field: "key_id",
                    reason: String::new(),
                },
                "ERR_INVALID_INPUT",
            ),
            (
                E::Store(StoreError::Unavailable("down".into())),
                "ERR_STORE",
            ),
            (E::Random, "ERR_INTERNAL"),
        ];
        for (e, code) in cases {
            assert_eq!(code_for_kind_name(e.kind_name()), code, "{e:?}");
        }
        // RateLimited's fields are still growing in the core; its name is stable.
        assert_eq!(code_for_kind_name("rate_limited"), "ERR_RATE_LIMITED");
        assert_eq!(code_for_kind_name("something_new"), "ERR_INTERNAL");
        for (kind, code) in CODES {
            assert_eq!(kind_for_code(code_for_kind_name(kind)), kind);
            assert_eq!(kind_for_code(code), kind);
        }
        assert_eq!(kind_for_code("ERR_INTERNAL"), "internal");
        assert_eq!(kind_for_code("ERR_INVALID_ARG_TYPE"), "invalid_input");
        assert_eq!(kind_for_code(""), "internal");
    }

    #[test]
    fn field_names_are_camel_cased_and_messages_use_them() {
        assert_eq!(camel("key_id"), "keyId");
        assert_eq!(camel("orchestration_id"), "orchestrationId");
        assert_eq!(camel("description"), "description");
        let e = E::InvalidInput {
            field: "expires_at",
            reason: "must be in the future".into(),
        };
        assert_eq!(message(&e), "invalid expiresAt: must be in the future");
        let e = E::InvalidInput {
            field: "grace",
            reason: "must be at most 365 days".into(),
        };
        assert_eq!(message(&e), "invalid graceMs: must be at most 365 days");
        assert_eq!(js_name("older_than"), "olderThanMs");
    }
}
