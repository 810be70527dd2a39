//! Signing the Standard Webhooks way, and checking it (for receivers and tests).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
//! signature is HMAC-SHA-256 of it under the endpoint's secret, sent as
//! `webhook-signature: v1,<base64>` (several, space-separated, while secrets
//! are being changed). Secrets are written `whsec_<base64>` and are 24 to 64
//! bytes once decoded.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::WebhookError;

/// The prefix of a written secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest bytes a secret may have.
pub const MIN_SECRET_BYTES: usize = 24;
/// The most bytes a secret may have.
pub const MAX_SECRET_BYTES: usize = 64;
/// How far a `webhook-timestamp` may be from the receiver's clock, by default
/// ([`verify`]): 5 minutes, as the Standard Webhooks specification advises.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// An endpoint's signing secret. Never shown: its `Debug` is `[REDACTED]`,
/// and no error names it.
#[derive(Clone)]
pub struct SigningSecret(zeroize::Zeroizing<Vec<u8>>);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

impl SigningSecret {
    /// Read a secret written `whsec_<base64>` (standard alphabet, padded or
    /// not), of [`MIN_SECRET_BYTES`] to [`MAX_SECRET_BYTES`] bytes.
    pub fn parse(text: &str) -> Result<SigningSecret, WebhookError> {
        let bad = |reason: &str| WebhookError::InvalidSecret {
            reason: reason.to_owned(),
        };
        let Some(b64) = text.strip_prefix(SECRET_PREFIX) else {
            return Err(bad("must start with 'whsec_' followed by base64"));
        };
        let b64 = b64.trim_end_matches('=');
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| bad("is not base64 after 'whsec_' (A-Z a-z 0-9 + /)"))?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(WebhookError::InvalidSecret {
                reason: format!(
                    "must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, got {}",
                    bytes.len()
                ),
            });
        }
        Ok(SigningSecret(zeroize::Zeroizing::new(bytes)))
    }

    /// A fresh random secret of 32 bytes, written `whsec_<base64>`: give it
    /// to the receiver and to [`Endpoint::new`](crate::Endpoint::new).
    pub fn generate() -> Result<String, WebhookError> {
        use rand_core::TryRng;
        let mut b = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::SysRng
            .try_fill_bytes(&mut b[..])
            .map_err(|e| WebhookError::Random(e.to_string()))?;
        Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(&b[..])))
    }

    /// The signature of one message: `v1,<base64 of HMAC-SHA-256 over
    /// "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: u64, body: &[u8]) -> [u8; 32] {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// Why [`verify`] refused a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or not what it should be.
    #[error("bad {0} header")]
    Header(&'static str),
    /// The timestamp is too far from now (a replay, or a clock far off).
    #[error("webhook-timestamp is {0} seconds away from now")]
    Stale(u64),
    /// No `v1` signature in the header matches the body.
    #[error("no signature matches")]
    Mismatch,
}

/// Check a message as a receiver does: `id`, `timestamp` and `signatures`
/// are the `webhook-id`, `webhook-timestamp` and `webhook-signature`
/// headers, `body` the raw body, `now` the receiver's clock (unix seconds)
/// and `tolerance` how far the timestamp may be from it. Compares in
/// constant time; accepts the message when any `v1,` signature matches.
pub fn verify(
    secret: &SigningSecret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), VerifyError> {
    if id.is_empty() {
        return Err(VerifyError::Header("webhook-id"));
    }
    let ts: u64 = timestamp
        .parse()
        .map_err(|_| VerifyError::Header("webhook-timestamp"))?;
    let off = ts.abs_diff(now);
    if off > tolerance {
        return Err(VerifyError::Stale(off));
    }
    let want = secret.mac(id, ts, body);
    let mut seen = false;
    let mut ok = false;
    for sig in signatures.split(' ').filter(|s| !s.is_empty()) {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        seen = true;
        if let Ok(got) = STANDARD.decode(b64) {
            ok |= bool::from(subtle::ConstantTimeEq::ct_eq(&got[..], &want[..]));
        }
    }
    if !seen {
        return Err(VerifyError::Header("webhook-signature"));
    }
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_library_vector_signs_and_verifies() {
        // The test vector of the Standard Webhooks reference libraries.
        let secret = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
        let sig = secret.sign(id, 1_649_367_553, body);
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        assert_eq!(
            verify(&secret, id, "1649367553", &sig, body, 1_649_367_553, 300),
            Ok(())
        );
    }

    #[test]
    fn malformed_secrets_are_refused_with_a_reason_and_never_echoed() {
        for (text, why) in [
            ("", "whsec_"),
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
            ("whsec_", "bytes, got 0"),
            ("whsec_not base64!!", "not base64 after"),
            ("whsec_c2hvcnQ=", "bytes, got 5"),
            (&format!("whsec_{}", STANDARD.encode([7u8; 65])), "got 65"),
        ] {
            let e = SigningSecret::parse(text).unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains(why), "{text:?}: {shown}");
            if text.len() > 8 {
                assert!(!shown.contains(&text[6..]), "{shown}");
            }
        }
        let s = SigningSecret::parse(&SigningSecret::generate().unwrap()).unwrap();
        assert_eq!(format!("{s:?}"), "SigningSecret([REDACTED])");
    }

    #[test]
    fn verify_refuses_a_changed_body_id_or_time_and_a_stale_timestamp() {
        let s = SigningSecret::parse(&SigningSecret::generate().unwrap()).unwrap();
        let sig = s.sign("evt_1", 1000, b"{}");
        assert_eq!(verify(&s, "evt_1", "1000", &sig, b"{}", 1000, 300), Ok(()));
        let other = SigningSecret::parse(&SigningSecret::generate().unwrap()).unwrap();
        assert_eq!(
            verify(&other, "evt_1", "1000", &sig, b"{}", 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&s, "evt_1", "1000", &sig, b"{ }", 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&s, "evt_2", "1000", &sig, b"{}", 1000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&s, "evt_1", "1000", &sig, b"{}", 1301, 300),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            verify(&s, "evt_1", "x", &sig, b"{}", 1000, 300),
            Err(VerifyError::Header("webhook-timestamp"))
        );
        assert_eq!(
            verify(&s, "evt_1", "1000", "v2,abc", b"{}", 1000, 300),
            Err(VerifyError::Header("webhook-signature"))
        );
        // Several signatures: any match is enough.
        let both = format!("v1,AAAA {sig}");
        assert_eq!(verify(&s, "evt_1", "1000", &both, b"{}", 1000, 300), Ok(()));
    }
}
