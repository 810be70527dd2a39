//! The secret-scanning receiver: GitHub's secret scanning partner program
//! reports keys it found in public places, and the issuer takes them out of
//! service and answers which were real (docs/leaks.md; the rule is the
//! core's, docs/design.md §10).
//!
//! GitHub sends `POST` with a JSON array of `{"token", "type", "url",
//! "source"}` and two headers: `Github-Public-Key-Identifier` (which of its
//! keys signed) and `Github-Public-Key-Signature` (base64 of an ASN.1 DER
//! ECDSA P-256 signature, with SHA-256, over the raw body). The receiver
//! checks the signature against the keys the application trusts **before it
//! reads a single token**, hands each token to
//! [`Keyring::report_leaked`], and answers the feedback array
//! `[{"token_hash", "token_type", "label"}]` — the SHA-256 of each token in
//! hex, never the token.
//!
//! [`SecretScanning::handle`] is the whole receiver, framework-free (the
//! Python and Node mounts call it); [`SecretScanning::router`] (feature
//! `router`) mounts it in axum.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use apikeys::{CallContext, Keyring, LeakAction, LeakOutcome};
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

mod keys;
#[cfg(feature = "router")]
mod router;

pub use keys::{
    GITHUB_KEY_IDENTIFIER, GITHUB_KEY_SIGNATURE, MAX_KEY_IDENTIFIER_BYTES, ScanningConfigError,
};
use keys::{TrustedKeys, Unsigned};

/// The default bound on a report's body: 1 MiB.
pub const DEFAULT_MAX_REPORT_BYTES: usize = 1 << 20;

/// How many tokens deleted for a leak a receiver remembers, to answer a
/// repeated report of them `true_positive` (with [`LeakAction::Delete`]).
pub const REMEMBERED_DELETIONS: usize = 16_384;

/// GitHub's secret-scanning partner endpoint, over a [`Keyring`].
///
/// ```
/// use std::sync::Arc;
/// use apikeys::{Keyring, LeakAction, MemoryStore};
/// use apikeys_http::SecretScanning;
///
/// // GitHub's key, as https://api.github.com/meta/public_keys/secret_scanning lists it.
/// const PEM: &str = "-----BEGIN PUBLIC KEY-----
/// MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq
/// kCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==
/// -----END PUBLIC KEY-----";
///
/// let keyring = Arc::new(Keyring::new(MemoryStore::new()));
/// let scanning = SecretScanning::new(keyring)
///     .trust_pem("90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a", PEM)?
///     .on_live_key(LeakAction::Disable);
///
/// let report = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
/// let request = http::Request::post("/github/secret-scanning")
///     .header("Github-Public-Key-Identifier",
///             "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a")
///     .header("Github-Public-Key-Signature",
///             "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=")
///     .body(report.to_vec())?;
/// let response = scanning.handle(request);
/// assert_eq!(response.status(), 200);
/// let feedback: serde_json::Value = serde_json::from_slice(response.body())?;
/// assert_eq!(feedback[0]["label"], "false_positive"); // not one of our keys
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SecretScanning {
    keyring: Arc<Keyring>,
    keys: TrustedKeys,
    action: LeakAction,
    max_body: usize,
    /// SHA-256 of tokens this receiver deleted (or saw deleted) for a leak.
    deleted: Mutex<Remembered>,
}

impl fmt::Debug for SecretScanning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretScanning")
            .field("keys", &self.keys)
            .field("action", &self.action)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// A bounded set of token hashes, oldest forgotten first.
#[derive(Default)]
struct Remembered {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Remembered {
    fn insert(&mut self, hash: [u8; 32]) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > REMEMBERED_DELETIONS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// One element of the answer: GitHub's false-positive feedback format.
#[derive(Serialize)]
struct Feedback {
    token_hash: String,
    token_type: String,
    label: &'static str,
}

/// Why the report could not be used, after its signature was checked.
enum Refused {
    TooLarge(usize),
    BadLength,
    NotPost,
    Unsigned(Unsigned),
    NotJson,
    NotAnArray,
    /// The body's stream failed (the axum mount).
    #[cfg_attr(not(feature = "router"), allow(dead_code))]
    Unreadable,
    Internal,
}

impl SecretScanning {
    /// A receiver over `keyring` trusting no key yet (every report is
    /// refused until one is trusted), disabling live keys, with a 1 MiB
    /// body bound.
    pub fn new(keyring: Arc<Keyring>) -> SecretScanning {
        SecretScanning {
            keyring,
            keys: TrustedKeys::default(),
            action: LeakAction::Disable,
            max_body: DEFAULT_MAX_REPORT_BYTES,
            deleted: Mutex::new(Remembered::default()),
        }
    }

    /// Trust the P-256 public key `pem` (PEM text, `-----BEGIN PUBLIC
    /// KEY-----`, as GitHub publishes it) for reports signed under
    /// `identifier`. Refuses an identifier that is empty, over
    /// [`MAX_KEY_IDENTIFIER_BYTES`] or not visible ASCII, one already
    /// trusted, and anything but a P-256 public key.
    pub fn trust_pem(mut self, identifier: &str, pem: &str) -> Result<Self, ScanningConfigError> {
        self.keys.add(identifier, keys::key_from_pem(pem))?;
        Ok(self)
    }

    /// [`SecretScanning::trust_pem`] for a key in DER (SubjectPublicKeyInfo) form.
    pub fn trust_der(mut self, identifier: &str, der: &[u8]) -> Result<Self, ScanningConfigError> {
        self.keys.add(identifier, keys::key_from_der(der))?;
        Ok(self)
    }

    /// Trust every key of GitHub's key list, the body of `GET
    /// https://api.github.com/meta/public_keys/secret_scanning`
    /// (`{"public_keys":[{"key_identifier":…,"key":…,"is_current":…}]}`):
    /// current and older keys alike, since a report may be signed with a key
    /// GitHub is retiring. The application fetches the list (and fetches it
    /// again, building a new receiver, when a report names a key it does not
    /// know).
    pub fn trust_github_keys(mut self, json: &str) -> Result<Self, ScanningConfigError> {
        for (identifier, pem) in keys::github_key_list(json)? {
            self.keys.add(&identifier, keys::key_from_pem(&pem))?;
        }
        Ok(self)
    }

    /// What to do with a reported key that is live: disable it (the
    /// default) or delete it ([`LeakAction`]).
    pub fn on_live_key(mut self, action: LeakAction) -> Self {
        self.action = action;
        self
    }

    /// The largest report body accepted, in bytes (default
    /// [`DEFAULT_MAX_REPORT_BYTES`]); a larger one is refused with 413
    /// before its signature is checked.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// The keyring reported keys are looked up in.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The identifiers of the trusted keys, sorted.
    pub fn trusted_identifiers(&self) -> Vec<String> {
        self.keys.identifiers()
    }

    /// The body bound in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The action on live keys.
    pub fn action(&self) -> LeakAction {
        self.action
    }

    /// Answer one request: the whole receiver, framework-free.
    ///
    /// In order: a body over the bound (or a `Content-Length` over it, or
    /// not a number) is 413 (400); a method other than `POST` is 405; a
    /// missing, repeated or malformed signature header, an identifier of no
    /// trusted key, a signature that is not base64 of ASN.1 DER, or one that
    /// does not verify over the exact body is 401 — all before a single
    /// token is read; a body that is not a JSON array is 400. Then each
    /// element is answered, in order, `{"token_hash", "token_type",
    /// "label"}` (200, `application/json`), and each live key of the
    /// keyring is taken out of service by [`Keyring::report_leaked`] with
    /// the report's `url` and `source` in its audit record. An element
    /// whose `token` is not a string is `false_positive` with the SHA-256 of
    /// the empty string; its other fields, of any type, are only recorded
    /// when they are strings. A store failure is 500 (keys already handled
    /// stay so: the report may be delivered again).
    ///
    /// Refusals are `{"error":{"message":…,"code":…}}` and never echo the
    /// body or a header's value. May wait on the keyring's store: on an
    /// event loop, run it on a blocking thread when
    /// [`Keyring::may_block`] says so.
    pub fn handle(&self, request: http::Request<Vec<u8>>) -> Response<Vec<u8>> {
        match self.answer(request) {
            Ok(body) => {
                let mut res = Response::new(body);
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            Err(refused) => refusal(&refused),
        }
    }

    fn answer(&self, request: http::Request<Vec<u8>>) -> Result<Vec<u8>, Refused> {
        let (parts, body) = request.into_parts();
        if body.len() > self.max_body {
            return Err(Refused::TooLarge(self.max_body));
        }
        if let Some(declared) = parts.headers.get(CONTENT_LENGTH) {
            check_declared_length(declared, self.max_body)?;
        }
        if parts.method != Method::POST {
            return Err(Refused::NotPost);
        }
        self.keys
            .verify(&parts.headers, &body)
            .map_err(Refused::Unsigned)?;
        // Signed by a trusted key: now, and only now, the tokens.
        let report: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| Refused::NotJson)?;
        let serde_json::Value::Array(entries) = report else {
            return Err(Refused::NotAnArray);
        };
        let remote = parts
            .extensions
            .get::<std::net::SocketAddr>()
            .map(ToString::to_string);
        let mut answers = Vec::with_capacity(entries.len());
        for entry in &entries {
            answers.push(self.answer_entry(entry, remote.as_deref())?);
        }
        serde_json::to_vec(&answers).map_err(|_| Refused::Internal)
    }

    fn answer_entry(
        &self,
        entry: &serde_json::Value,
        remote: Option<&str>,
    ) -> Result<Feedback, Refused> {
        let text = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);
        let token_type = text("type").map(clean_type).unwrap_or_default();
        let Some(token) = text("token") else {
            return Ok(Feedback {
                token_hash: hex(&Sha256::digest(b"").into()),
                token_type,
                label: "false_positive",
            });
        };
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut context = CallContext::new();
        if let Some(url) = text("url") {
            context = context.report_url(url);
        }
        if let Some(source) = text("source") {
            context = context.report_source(source);
        }
        if let Some(remote) = remote {
            context = context.remote_address(remote);
        }
        let verdict = self
            .keyring
            .report_leaked(token, &context, self.action)
            .map_err(|_| Refused::Internal)?;
        let mut true_positive = verdict.true_positive();
        if self.action == LeakAction::Delete {
            let mut deleted = self.deleted.lock().unwrap_or_else(PoisonError::into_inner);
            match verdict.outcome {
                LeakOutcome::Deleted | LeakOutcome::Gone => deleted.insert(hash),
                LeakOutcome::NotAKey => true_positive = deleted.set.contains(&hash),
                _ => {}
            }
        }
        Ok(Feedback {
            token_hash: hex(&hash),
            token_type,
            label: if true_positive {
                "true_positive"
            } else {
                "false_positive"
            },
        })
    }
}

/// The report's `type` as the answer repeats it: GitHub's name for the
/// pattern. Control characters dropped, at most 128 bytes, and a value
/// shaped like a key answered `(redacted)`.
fn clean_type(t: &str) -> String {
    if apikeys::KeyKind::parse(t.trim()).is_ok() {
        return "(redacted)".to_owned();
    }
    let mut out: String = t.chars().filter(|c| !c.is_control()).collect();
    let mut end = out.len().min(128);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

fn check_declared_length(value: &HeaderValue, max: usize) -> Result<(), Refused> {
    match crate::credentials::declared_length(value.as_bytes(), max) {
        Ok(_) => Ok(()),
        Err(r) if r.kind() == "body_too_large" => Err(Refused::TooLarge(max)),
        Err(_) => Err(Refused::BadLength),
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// The refusal's answer: PagerDuty's error body with the status.
fn refusal(refused: &Refused) -> Response<Vec<u8>> {
    let (status, code, message) = match refused {
        Refused::TooLarge(max) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            2001,
            format!("the request body is larger than the limit of {max} bytes"),
        ),
        Refused::BadLength => (
            StatusCode::BAD_REQUEST,
            2001,
            "the Content-Length header is not a number".to_owned(),
        ),
        Refused::NotPost => (
            StatusCode::METHOD_NOT_ALLOWED,
            2001,
            "send reports with POST".to_owned(),
        ),
        Refused::Unsigned(why) => (StatusCode::UNAUTHORIZED, 2006, why.message()),
        Refused::NotJson => (
            StatusCode::BAD_REQUEST,
            2001,
            "the body is not valid JSON".to_owned(),
        ),
        Refused::NotAnArray => (
            StatusCode::BAD_REQUEST,
            2001,
            "the body must be a JSON array".to_owned(),
        ),
        Refused::Unreadable => (
            StatusCode::BAD_REQUEST,
            2001,
            "the body could not be read".to_owned(),
        ),
        Refused::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            2000,
            "an internal error occurred".to_owned(),
        ),
    };
    let message = serde_json::to_string(&message).unwrap_or_else(|_| "\"\"".to_owned());
    let body = format!(r#"{{"error":{{"message":{message},"code":{code}}}}}"#).into_bytes();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if matches!(refused, Refused::NotPost) {
        h.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    res.extensions_mut().insert(ScanningRefusal(match refused {
        Refused::TooLarge(_) => "body_too_large",
        Refused::BadLength => "invalid_content_length",
        Refused::NotPost => "method_not_allowed",
        Refused::Unsigned(why) => why.kind(),
        Refused::NotJson => "not_json",
        Refused::NotAnArray => "not_an_array",
        Refused::Unreadable => "unreadable_body",
        Refused::Internal => "internal",
    }));
    res
}

/// Put in the extensions of a refusal's response: why the report was
/// refused (`"bad_signature"`, `"unknown_key_identifier"`, `"not_json"` …),
/// for a logging layer; the sender is told only the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanningRefusal(pub &'static str);
