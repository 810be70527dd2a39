//! Refusing cross-site calls that change keys (docs/management.md,
//! "Cross-site requests"). A browser sends `Sec-Fetch-Site` (all current
//! ones) and, on any cross-origin `POST` or `DELETE`, `Origin`; a page of
//! another site cannot send `content-type: application/json` without a CORS
//! preflight, which this API never grants. So a state-changing call must
//!
//! 1. not be marked cross-site: when `Sec-Fetch-Site` is sent, it decides
//!    (`same-origin` or `none`, else refused); without it, `Origin`, when
//!    sent, must name this host (`Host`, or the request target's authority);
//!    and
//! 2. say `content-type: application/json`.
//!
//! A client that is not a browser (curl, a script) sends neither header and
//! passes 1; it still needs 2. No cookie-only form `POST` passes both.
//! `Sec-Fetch-Site` deciding on its own keeps the page working behind a
//! proxy that rewrites `Host` (the same rule as Go's `CrossOriginProtection`).

use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::request::Parts;

use super::error::Failure;

const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// The request's one `Origin`, if any (two: refused).
fn one_origin(parts: &Parts) -> Result<Option<&http::HeaderValue>, Failure> {
    let mut origins = parts.headers.get_all(ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) | (None, Some(_)) => Err(Failure::cross_site()),
    }
}

/// Whether a state-changing call may go on.
pub(crate) fn same_site(parts: &Parts) -> Result<(), Failure> {
    let mut sites = parts.headers.get_all(SEC_FETCH_SITE).iter();
    if let Some(site) = sites.next() {
        let ok = matches!(site.as_bytes(), b"same-origin" | b"none");
        if !ok || sites.next().is_some() {
            return Err(Failure::cross_site());
        }
    } else if let Some(origin) = one_origin(parts)? {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()));
        let authority = origin.to_str().ok().and_then(|o| {
            o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
        });
        match (host, authority) {
            (Some(h), Some(a)) if !h.is_empty() && h.eq_ignore_ascii_case(a) => {}
            _ => return Err(Failure::cross_site()),
        }
    }
    let json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(Failure::not_json_type());
    }
    Ok(())
}
