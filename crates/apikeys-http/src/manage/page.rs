//! The API Access Keys page: one HTML page, its style sheet and its script,
//! compiled in (no build step, nothing fetched from another host), with a
//! Content-Security-Policy that allows only this origin's script and style.

use http::header::HeaderValue;
use http::{Response, StatusCode};

const HTML: &str = include_str!("assets/page.html");
const CSS: &str = include_str!("assets/page.css");
const JS: &str = include_str!("assets/page.js");

/// The page's policy: its own script and style only, calls to its own
/// origin only, no frames, no forms, no base URL changes.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn secure(mut res: Response<Vec<u8>>) -> Response<Vec<u8>> {
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The page, its links under `base` (a clean mount path, maybe empty).
pub(crate) fn html(base: &str) -> Response<Vec<u8>> {
    // `base` holds only [A-Za-z0-9/._~-]: nothing to escape in an attribute.
    let body = HTML.replace("{{BASE}}", base).into_bytes();
    secure(super::with_headers(
        StatusCode::OK,
        "text/html; charset=utf-8",
        body,
    ))
}

/// `assets/page.css` or `assets/page.js`.
pub(crate) fn asset(name: &str) -> Option<Response<Vec<u8>>> {
    let (ty, body) = match name {
        "page.css" => ("text/css; charset=utf-8", CSS),
        "page.js" => ("text/javascript; charset=utf-8", JS),
        _ => return None,
    };
    Some(secure(super::with_headers(
        StatusCode::OK,
        ty,
        body.as_bytes().to_vec(),
    )))
}
