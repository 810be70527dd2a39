//! The management API's refusals: PagerDuty's error body
//! `{"error":{"message":…,"code":…}}`, the status of docs/design.md §5 for
//! the keyring's errors (through [`crate::Rejection`]), and the API's own
//! refusals (no actor, unknown path, wrong method, body too large, wrong
//! content type, a cross-site request, a bad body). Never a key.

use std::borrow::Cow;

use http::StatusCode;

use crate::Rejection;

/// One refused call.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) code: u32,
    pub(crate) message: Cow<'static, str>,
    /// For a 405: the methods the path answers.
    pub(crate) allow: Option<&'static str>,
    /// The keyring's refusal, for the response's extensions (a logging
    /// layer reads [`Rejection::reason`]: why a store failed, say).
    pub(crate) rejection: Option<Box<Rejection>>,
}

impl Failure {
    fn new(status: StatusCode, code: u32, message: impl Into<Cow<'static, str>>) -> Self {
        Failure {
            status,
            code,
            message: message.into(),
            allow: None,
            rejection: None,
        }
    }

    /// No logged-in actor: 401, 2006.
    pub(crate) fn no_actor() -> Self {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            2006,
            "not logged in: the application did not say who is calling",
        )
    }

    /// No such endpoint: 404, 2100.
    pub(crate) fn no_route() -> Self {
        Failure::new(StatusCode::NOT_FOUND, 2100, "no such endpoint")
    }

    /// A method the path does not answer: 405, with `allow`.
    pub(crate) fn method(allow: &'static str) -> Self {
        let mut f = Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            2001,
            format!("this endpoint answers {allow}"),
        );
        f.allow = Some(allow);
        f
    }

    /// A body over the limit: 413.
    pub(crate) fn too_large(limit: usize) -> Self {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            2001,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// A state-changing call without a JSON content type: 415.
    pub(crate) fn not_json_type() -> Self {
        Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            2001,
            "send 'content-type: application/json'",
        )
    }

    /// A state-changing call from another site: 403, 2010.
    pub(crate) fn cross_site() -> Self {
        Failure::new(
            StatusCode::FORBIDDEN,
            2010,
            "cross-site requests may not change keys",
        )
    }

    /// A body or query the API cannot use: 400, 2001.
    pub(crate) fn bad(message: impl Into<Cow<'static, str>>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, 2001, message)
    }

    /// A refusal the core decided: 403, 2010 (for a call the core has no
    /// single method for, such as making a token for another user).
    pub(crate) fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Failure::new(StatusCode::FORBIDDEN, 2010, message)
    }

    /// A call that did not finish (a panicked blocking task): 500, 2000.
    #[cfg_attr(not(feature = "router"), allow(dead_code))]
    pub(crate) fn internal() -> Self {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            2000,
            "an internal error occurred",
        )
    }

    /// No such key for this path: 404, 2100.
    pub(crate) fn not_found(id: &str) -> Self {
        Failure::from(&apikeys::Error::NotFound {
            id: if apikeys::KeyId::parse(id).is_some() {
                id.to_owned()
            } else {
                "(malformed)".to_owned()
            },
        })
    }

    /// The body: PagerDuty's, message first, as [`Rejection::body`] writes it.
    pub(crate) fn body(&self) -> Vec<u8> {
        let message = serde_json::to_string(self.message.as_ref())
            .unwrap_or_else(|_| "\"an internal error occurred\"".to_owned());
        format!(
            r#"{{"error":{{"message":{message},"code":{}}}}}"#,
            self.code
        )
        .into_bytes()
    }
}

impl From<&apikeys::Error> for Failure {
    /// The keyring's refusal as docs/design.md §5 says (the adapters' one
    /// mapping: a 5xx says only that an internal error occurred).
    fn from(e: &apikeys::Error) -> Self {
        let r = Rejection::from_error(e);
        let mut f = Failure::new(r.status(), r.code(), r.message().to_owned());
        f.rejection = Some(Box::new(r));
        f
    }
}

impl From<apikeys::Error> for Failure {
    fn from(e: apikeys::Error) -> Self {
        Failure::from(&e)
    }
}
