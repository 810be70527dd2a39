//! [`Endpoint`]: where events go, checked when it is registered.

use std::collections::HashSet;
use std::fmt;

use apikeys::webhooks::EventType;

use crate::WebhookError;
use crate::signing::SigningSecret;

/// The longest endpoint URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest endpoint name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// A receiver of webhook events: a name (kept in the outbox rows it
/// accepted, so a retry skips it), an `http(s)` URL, a signing secret and
/// the event types it wants (all, by default).
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) secret: SigningSecret,
    pub(crate) events: Option<HashSet<EventType>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is left out: a query string may carry a credential.
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint named `name` (1 to 64 of `A-Z a-z 0-9 _ - .`), at `url`
    /// (`http://` or `https://`, with a host, no user or password in it, at
    /// most 2,048 bytes), signing with `secret` (`whsec_<base64>`, 24 to 64
    /// bytes: [`SigningSecret::parse`]). Errors name what is wrong and never
    /// repeat the secret.
    pub fn new(name: &str, url: &str, secret: &str) -> Result<Endpoint, WebhookError> {
        check_name(name)?;
        check_url(url)?;
        let secret = SigningSecret::parse(secret)?;
        Ok(Endpoint {
            name: name.to_owned(),
            url: url.to_owned(),
            secret,
            events: None,
        })
    }

    /// Only these event types (an empty list: none).
    pub fn events(mut self, types: &[EventType]) -> Endpoint {
        self.events = Some(types.iter().copied().collect());
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it wants events of this type.
    pub fn wants(&self, t: EventType) -> bool {
        self.events.as_ref().is_none_or(|s| s.contains(&t))
    }
}

fn check_name(name: &str) -> Result<(), WebhookError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(WebhookError::InvalidName {
            reason: format!(
                "must be 1 to {MAX_NAME_BYTES} of A-Z a-z 0-9 _ - . (it names the endpoint in the outbox)"
            ),
        })
    }
}

fn check_url(url: &str) -> Result<(), WebhookError> {
    let bad = |reason: &str| WebhookError::InvalidUrl {
        reason: reason.to_owned(),
    };
    if url.len() > MAX_URL_BYTES {
        return Err(bad("is longer than 2048 bytes"));
    }
    if url
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b >= 0x80)
    {
        return Err(bad(
            "must be ASCII without spaces or control characters (percent-encode the rest)",
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(bad(if url.contains(':') {
            "must start with http:// or https://"
        } else {
            "must be absolute, starting with http:// or https://"
        }));
    }
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if cfg!(feature = "rustls") => {}
        Some("https") => {
            return Err(bad(
                "is https, but apikeys-webhooks was built without its `rustls` feature",
            ));
        }
        Some(_) => return Err(bad("must start with http:// or https://")),
        None => return Err(bad("must be absolute, starting with http:// or https://")),
    }
    let Some(auth) = uri.authority() else {
        return Err(bad("has no host"));
    };
    if auth.as_str().contains('@') {
        return Err(bad(
            "must not carry a user or password (use the signing secret to authenticate)",
        ));
    }
    if auth.host().is_empty() {
        return Err(bad("has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn urls_that_are_not_http_are_refused_with_a_reason() {
        for (url, why) in [
            ("", "absolute"),
            ("example.com/hook", "absolute"),
            ("/hook", "absolute"),
            ("ftp://example.com/hook", "http:// or https://"),
            ("file:///etc/passwd", "http:// or https://"),
            ("javascript:alert(1)", "http:// or https://"),
            ("http://", "not a URL"),
            ("http://user:pw@example.com/hook", "user or password"),
            ("http://exa mple.com/", "spaces"),
            ("http://example.com/\n", "control"),
            ("http://exämple.com/", "ASCII"),
        ] {
            let e = Endpoint::new("a", url, SECRET).unwrap_err();
            assert!(
                matches!(&e, WebhookError::InvalidUrl { reason } if reason.contains(why)),
                "{url:?}: {e}"
            );
        }
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(matches!(
            Endpoint::new("a", &long, SECRET),
            Err(WebhookError::InvalidUrl { .. })
        ));
        assert!(Endpoint::new("a", "http://127.0.0.1:9/hook?x=1", SECRET).is_ok());
        assert_eq!(
            Endpoint::new("a", "https://example.com/hook", SECRET).is_ok(),
            cfg!(feature = "rustls")
        );
    }

    #[test]
    fn names_are_checked_and_the_secret_never_appears() {
        for name in ["", "a b", "é", &"x".repeat(65), "a/b"] {
            assert!(matches!(
                Endpoint::new(name, "http://h/", SECRET),
                Err(WebhookError::InvalidName { .. })
            ));
        }
        let e = Endpoint::new("ops", "http://h/?token=abc", SECRET).unwrap();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("C2FV") && !shown.contains("token=abc"),
            "{shown}"
        );
        let bad = Endpoint::new("ops", "http://h/", "whsec_C2FVsBQIhrsc").unwrap_err();
        assert!(!bad.to_string().contains("C2FVsBQIhrsc"), "{bad}");
    }

    #[test]
    fn a_filter_limits_the_event_types() {
        let e = Endpoint::new("a", "http://h/", SECRET).unwrap();
        assert!(EventType::ALL.iter().all(|t| e.wants(*t)));
        let e = e.events(&[EventType::KeyLeaked]);
        assert!(e.wants(EventType::KeyLeaked) && !e.wants(EventType::KeyCreated));
    }
}
