//! The public keys a receiver trusts, and checking a report's signature
//! with them.

use std::collections::HashMap;
use std::fmt;

use base64ct::{Base64, Encoding};
use http::HeaderMap;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

/// The header naming the key a report was signed with.
pub const GITHUB_KEY_IDENTIFIER: &str = "github-public-key-identifier";
/// The header carrying the report's signature: base64 of an ASN.1 DER
/// ECDSA P-256 signature over the raw body, with SHA-256.
pub const GITHUB_KEY_SIGNATURE: &str = "github-public-key-signature";

/// The longest key identifier accepted, in bytes (GitHub's are 64 hex digits).
pub const MAX_KEY_IDENTIFIER_BYTES: usize = 256;
/// The longest signature header accepted, in bytes (a DER P-256 signature is
/// at most 72 bytes: 96 in base64).
const MAX_SIGNATURE_HEADER_BYTES: usize = 256;

/// Why a receiver could not be configured. Names the identifier (public)
/// and what is wrong; never a private key, never more of the key text than
/// its parser says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanningConfigError {
    /// A key identifier that is empty, longer than
    /// [`MAX_KEY_IDENTIFIER_BYTES`], or not visible ASCII (it must fit in an
    /// HTTP header).
    InvalidIdentifier {
        /// What is wrong with it.
        reason: String,
    },
    /// The same identifier given twice.
    DuplicateIdentifier {
        /// The identifier.
        identifier: String,
    },
    /// A key that is not a P-256 public key in the form given.
    InvalidKey {
        /// The identifier it was given for.
        identifier: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key list (GitHub's `public_keys` document) that could not be read.
    InvalidKeyList {
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ScanningConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanningConfigError::InvalidIdentifier { reason } => {
                write!(f, "invalid public key identifier: {reason}")
            }
            ScanningConfigError::DuplicateIdentifier { identifier } => {
                write!(f, "public key identifier {identifier:?} is given twice")
            }
            ScanningConfigError::InvalidKey { identifier, reason } => {
                write!(f, "public key {identifier:?}: {reason}")
            }
            ScanningConfigError::InvalidKeyList { reason } => {
                write!(f, "invalid public key list: {reason}")
            }
        }
    }
}

impl std::error::Error for ScanningConfigError {}

/// Identifier → public key.
#[derive(Clone, Default)]
pub(super) struct TrustedKeys {
    keys: HashMap<String, VerifyingKey>,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("TrustedKeys")
            .field("identifiers", &ids)
            .finish()
    }
}

fn check_identifier(identifier: &str) -> Result<(), ScanningConfigError> {
    let reason = if identifier.is_empty() {
        "must not be empty".to_owned()
    } else if identifier.len() > MAX_KEY_IDENTIFIER_BYTES {
        format!(
            "must be at most {MAX_KEY_IDENTIFIER_BYTES} bytes, got {}",
            identifier.len()
        )
    } else if !identifier.bytes().all(|b| b.is_ascii_graphic()) {
        "must be visible ASCII (no spaces or control characters)".to_owned()
    } else {
        return Ok(());
    };
    Err(ScanningConfigError::InvalidIdentifier { reason })
}

impl TrustedKeys {
    /// Trust `key` under `identifier`.
    pub(super) fn add(
        &mut self,
        identifier: &str,
        key: Result<VerifyingKey, String>,
    ) -> Result<(), ScanningConfigError> {
        check_identifier(identifier)?;
        let key = key.map_err(|reason| ScanningConfigError::InvalidKey {
            identifier: identifier.to_owned(),
            reason,
        })?;
        if self.keys.contains_key(identifier) {
            return Err(ScanningConfigError::DuplicateIdentifier {
                identifier: identifier.to_owned(),
            });
        }
        self.keys.insert(identifier.to_owned(), key);
        Ok(())
    }

    pub(super) fn identifiers(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Check the signature headers against the raw `body`.
    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Unsigned> {
        let identifier = one_header(headers, GITHUB_KEY_IDENTIFIER, MAX_KEY_IDENTIFIER_BYTES)?;
        let signature = one_header(headers, GITHUB_KEY_SIGNATURE, MAX_SIGNATURE_HEADER_BYTES)?;
        let key = self.keys.get(identifier).ok_or(Unsigned::UnknownKey)?;
        let der = Base64::decode_vec(signature).map_err(|_| Unsigned::MalformedSignature)?;
        let signature = Signature::from_der(&der).map_err(|_| Unsigned::MalformedSignature)?;
        key.verify(body, &signature)
            .map_err(|_| Unsigned::BadSignature)
    }
}

/// The value of a header that must be there exactly once, in visible ASCII
/// (surrounding blanks ignored), and not longer than `max` bytes.
fn one_header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
    max: usize,
) -> Result<&'a str, Unsigned> {
    let mut all = headers.get_all(name).iter();
    let value = all.next().ok_or(Unsigned::Missing(name))?;
    if all.next().is_some() {
        return Err(Unsigned::Repeated(name));
    }
    let value = value
        .to_str()
        .map_err(|_| Unsigned::Malformed(name))?
        .trim_matches([' ', '\t']);
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Unsigned::Malformed(name));
    }
    Ok(value)
}

/// Why a report's signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unsigned {
    Missing(&'static str),
    Repeated(&'static str),
    Malformed(&'static str),
    UnknownKey,
    MalformedSignature,
    BadSignature,
}

impl Unsigned {
    /// What the sender is told (never a header's value).
    pub(super) fn message(self) -> String {
        match self {
            Unsigned::Missing(h) => format!("the {} header is missing", title(h)),
            Unsigned::Repeated(h) => format!("send exactly one {} header", title(h)),
            Unsigned::Malformed(h) => format!("the {} header is malformed", title(h)),
            Unsigned::UnknownKey => {
                "the Github-Public-Key-Identifier names no trusted key".to_owned()
            }
            Unsigned::MalformedSignature => {
                "the Github-Public-Key-Signature is not base64 of an ASN.1 DER ECDSA signature"
                    .to_owned()
            }
            Unsigned::BadSignature => "the signature does not match the body".to_owned(),
        }
    }

    /// A snake_case name for logs and tests.
    pub(super) fn kind(self) -> &'static str {
        match self {
            Unsigned::Missing(_) => "missing_signature_header",
            Unsigned::Repeated(_) => "repeated_signature_header",
            Unsigned::Malformed(_) => "malformed_signature_header",
            Unsigned::UnknownKey => "unknown_key_identifier",
            Unsigned::MalformedSignature => "malformed_signature",
            Unsigned::BadSignature => "bad_signature",
        }
    }
}

fn title(header: &str) -> &'static str {
    if header == GITHUB_KEY_IDENTIFIER {
        "Github-Public-Key-Identifier"
    } else {
        "Github-Public-Key-Signature"
    }
}

/// A P-256 public key from PEM text (`-----BEGIN PUBLIC KEY-----`, SPKI).
pub(super) fn key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| format!("not a P-256 public key in PEM (SubjectPublicKeyInfo) form: {e}"))
}

/// A P-256 public key from DER bytes (SubjectPublicKeyInfo).
pub(super) fn key_from_der(der: &[u8]) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_der(der)
        .map_err(|e| format!("not a P-256 public key in DER (SubjectPublicKeyInfo) form: {e}"))
}

/// The keys of GitHub's `public_keys` document (`GET
/// https://api.github.com/meta/public_keys/secret_scanning`):
/// `{"public_keys":[{"key_identifier":…,"key":"-----BEGIN PUBLIC KEY-----…","is_current":…}]}`.
pub(super) fn github_key_list(json: &str) -> Result<Vec<(String, String)>, ScanningConfigError> {
    let bad = |reason: &str| ScanningConfigError::InvalidKeyList {
        reason: reason.to_owned(),
    };
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|_| bad("not valid JSON"))?;
    let list = doc
        .get("public_keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("no \"public_keys\" array"))?;
    if list.is_empty() {
        return Err(bad("\"public_keys\" is empty"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("entry {i} has no string \"{name}\"")))
        };
        out.push((field("key_identifier")?, field("key")?));
    }
    Ok(out)
}
