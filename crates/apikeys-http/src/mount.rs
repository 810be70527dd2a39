//! Mounting this crate's endpoints (the management API, the secret-scanning
//! receiver) in another ecosystem: the Python binding (`apikeys.asgi`) and
//! the Node binding (`apikeys/express`) hand a request's parts in and write
//! the [`Answer`] out, and everything between — the routes, every rule, the
//! rendering of every answer and refusal — is the endpoint's Rust code, the
//! same that answers under axum.
//!
//! A binding's part, for any [`Endpoint`]:
//! 1. read at most [`Endpoint::body_limit`] + 1 bytes of the body and stop
//!    there: the endpoint answers a body over its limit (413) itself;
//! 2. hand the method, target, headers, that body, the peer's address and
//!    the mount point to [`serve`] (a malformed request is answered there,
//!    400) — on a worker thread when [`Endpoint::may_block`] (a durable
//!    store), inline otherwise;
//! 3. write the [`Answer`]'s status, headers and body as they are.
//!
//! No binding renders an answer of its own: the one refusal a binding meets
//! before the endpoint runs (the host's actor function failing) is rendered
//! here too ([`internal_error`]).

use std::net::SocketAddr;

use apikeys::Actor;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::rejection::{ErrorParts, Rejection};

/// A request as an endpoint takes it (the body read whole, within the
/// endpoint's [`Endpoint::body_limit`]).
pub type Request = http::Request<Vec<u8>>;

/// A response as an endpoint gives it.
pub type Response = http::Response<Vec<u8>>;

/// An HTTP endpoint of this crate that a binding mounts: a request in, a
/// response out, every decision its own.
pub trait Endpoint: Send + Sync {
    /// Whether [`Endpoint::respond`] may wait on I/O (the keyring's store is
    /// durable, or its rate limiter remote): then a binding calls it off its
    /// event loop (Python: a worker thread without the GIL; Node: libuv's
    /// thread pool).
    fn may_block(&self) -> bool;

    /// The most body bytes the endpoint accepts: a binding reads one more
    /// at most and hands that over, and the endpoint refuses it (413).
    fn body_limit(&self) -> usize;

    /// Answer one request. `actor` is who the host application says is
    /// logged in (`None`: nobody); an endpoint that serves no logged-in user
    /// (the secret-scanning receiver) ignores it. `mount_path` is where the
    /// host's router mounted the endpoint for this request (`/admin/keys`),
    /// when it says.
    fn respond(
        &self,
        actor: Option<&Actor>,
        request: Request,
        mount_path: Option<&str>,
    ) -> Response;
}

impl Endpoint for crate::manage::Management {
    fn may_block(&self) -> bool {
        crate::manage::Management::may_block(self)
    }
    fn body_limit(&self) -> usize {
        self.max_body_bytes()
    }
    fn respond(
        &self,
        actor: Option<&Actor>,
        request: Request,
        mount_path: Option<&str>,
    ) -> Response {
        self.handle_at(actor, request, mount_path)
    }
}

impl Endpoint for crate::SecretScanning {
    fn may_block(&self) -> bool {
        self.keyring().may_block()
    }
    fn body_limit(&self) -> usize {
        self.max_body()
    }
    fn respond(&self, _: Option<&Actor>, request: Request, _: Option<&str>) -> Response {
        self.handle(request)
    }
}

/// A response as plain data, for a binding to write as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Every header, in order (names in lowercase).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Answer {
        let (parts, body) = response.into_parts();
        let mut headers = Vec::with_capacity(parts.headers.len());
        let mut name: Option<HeaderName> = None;
        // `HeaderMap::into_iter` names only the first value of a repeated header.
        for (n, value) in parts.headers {
            if let Some(n) = n {
                name = Some(n);
            }
            if let Some(n) = &name {
                headers.push((n.as_str().to_owned(), value.as_bytes().to_vec()));
            }
        }
        Answer {
            status: parts.status.as_u16(),
            headers,
            body,
        }
    }
}

impl From<Rejection> for Answer {
    fn from(r: Rejection) -> Answer {
        let plain = r.refusal();
        Answer {
            status: plain.status.as_u16(),
            headers: plain
                .headers
                .into_iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: plain.body.to_vec(),
        }
    }
}

/// A request's parts as a binding reads them from its server.
#[derive(Debug, Default)]
pub struct Parts<'a> {
    /// The method (`GET`, `POST` …).
    pub method: &'a [u8],
    /// The request target below the mount point: the path as received
    /// (percent-encoded; bytes a URI cannot hold are encoded here), with the
    /// query string after a `?` if there is one.
    pub target: &'a [u8],
    /// Every header as received, in order, repeated ones included.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The body (at most [`Endpoint::body_limit`] bytes).
    pub body: Vec<u8>,
    /// The peer's address, when the server knows it: put into the request's
    /// extensions as a [`SocketAddr`], as axum's servers do.
    pub peer: Option<SocketAddr>,
    /// Where the host's router mounted the endpoint (ASGI's `root_path`,
    /// Express's `req.baseUrl`), when it says.
    pub mount_path: Option<&'a str>,
}

/// The request for `parts`, or the answer to a malformed one (a method that
/// is not a token, a header name or value HTTP does not allow): 400 with
/// PagerDuty's error body. Servers refuse such requests before a binding
/// sees them; this is for a caller that hands the binding anything.
pub fn request(parts: Parts<'_>) -> Result<Request, Answer> {
    let method = Method::from_bytes(parts.method).map_err(|_| malformed("method"))?;
    let uri = Uri::try_from(encode_target(parts.target)).map_err(|_| malformed("target"))?;
    let mut request = http::Request::new(parts.body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.reserve(parts.headers.len());
    for (name, value) in parts.headers {
        let name = HeaderName::from_bytes(name).map_err(|_| malformed("header name"))?;
        let value = HeaderValue::from_bytes(value).map_err(|_| malformed("header value"))?;
        headers.append(name, value);
    }
    if let Some(peer) = parts.peer {
        request.extensions_mut().insert(peer);
    }
    Ok(request)
}

/// Everything a binding does between reading a request and writing its
/// answer: a body longer than [`Endpoint::body_limit`] + 1 is cut there (the
/// endpoint refuses it all the same), a malformed request is answered 400,
/// any other by [`Endpoint::respond`].
pub fn serve(endpoint: &dyn Endpoint, actor: Option<&Actor>, mut parts: Parts<'_>) -> Answer {
    parts.body.truncate(endpoint.body_limit().saturating_add(1));
    let mount_path = parts.mount_path;
    match request(parts) {
        Ok(request) => endpoint.respond(actor, request, mount_path).into(),
        Err(answer) => answer,
    }
}

/// The answer when the host application's part failed (its function that
/// says who is logged in raised, or answered something that is not an
/// actor): 500, "an internal error occurred" — the reason stays in the
/// server's log, never in the answer.
pub fn internal_error() -> Answer {
    Rejection::misconfigured("the host application's actor function failed").into()
}

/// A request the binding could not turn into an HTTP request: 400, PagerDuty's body.
fn malformed(what: &'static str) -> Answer {
    Rejection::from_error_parts(ErrorParts {
        status: StatusCode::BAD_REQUEST.as_u16(),
        code: 2001,
        kind: "malformed_request",
        message: "the request is malformed",
        reason: what,
        rate_limit: None,
    })
    .into()
}

/// `target` with every byte a URI may not hold percent-encoded (a server
/// hands some of them over: spaces, non-ASCII); `%` is kept as it is.
fn encode_target(target: &[u8]) -> Vec<u8> {
    let keep = |b: u8| {
        b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | b'#'
            )
    };
    if target.iter().all(|&b| keep(b)) {
        return if target.first() == Some(&b'/') {
            target.to_vec()
        } else {
            [b"/", target].concat()
        };
    }
    let mut out = Vec::with_capacity(target.len() + 8);
    if target.first() != Some(&b'/') {
        out.push(b'/');
    }
    for &b in target {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Endpoint for Echo {
        fn may_block(&self) -> bool {
            false
        }
        fn body_limit(&self) -> usize {
            4
        }
        fn respond(
            &self,
            actor: Option<&Actor>,
            request: Request,
            mount_path: Option<&str>,
        ) -> Response {
            let who = actor.map_or("nobody", |a| a.user.as_str());
            let peer = request
                .extensions()
                .get::<SocketAddr>()
                .map_or(String::new(), |p| p.to_string());
            let line = format!(
                "{} {} {} {} {} {} {}",
                request.method(),
                request.uri(),
                who,
                request.headers().get_all("x-a").iter().count(),
                peer,
                mount_path.unwrap_or("-"),
                request.body().len(),
            );
            http::Response::builder()
                .header("x-b", "1")
                .header("x-b", "2")
                .body(line.into_bytes())
                .unwrap()
        }
    }

    fn get(target: &[u8]) -> Parts<'_> {
        Parts {
            method: b"GET",
            target,
            ..Parts::default()
        }
    }

    #[test]
    fn parts_go_in_and_the_answer_comes_out_whole() {
        let actor = Actor::new("acme", "PU1", apikeys::Role::Admin);
        let a = serve(
            &Echo,
            Some(&actor),
            Parts {
                method: b"POST",
                target: b"/keys/x y\xc3\xa9?q=1",
                headers: vec![(b"x-a", b"1"), (b"X-A", b"2")],
                body: b"abcd".to_vec(),
                peer: Some("127.0.0.1:9".parse().unwrap()),
                mount_path: Some("/admin/keys"),
            },
        );
        assert_eq!(a.status, 200);
        assert_eq!(
            String::from_utf8(a.body).unwrap(),
            "POST /keys/x%20y%C3%A9?q=1 PU1 2 127.0.0.1:9 /admin/keys 4"
        );
        let b: Vec<_> = a.headers.iter().filter(|(n, _)| n == "x-b").collect();
        assert_eq!(b.len(), 2, "a repeated header keeps every value");
    }

    #[test]
    fn a_body_over_the_limit_reaches_the_endpoint_cut_one_byte_past_it() {
        let mut parts = get(b"/");
        parts.body = vec![0; 1000];
        let a = serve(&Echo, None, parts);
        assert!(String::from_utf8(a.body).unwrap().ends_with(" 5"));
    }

    #[test]
    fn malformed_parts_are_a_400_never_a_panic() {
        let mut cases = vec![
            Parts {
                method: b"GE T",
                ..get(b"/")
            },
            Parts {
                method: b"",
                ..get(b"/")
            },
        ];
        for (n, v) in [
            (&b"bad name"[..], &b"v"[..]),
            (b"x", b"a\nb"),
            (b"", b"v"),
            (b"x", b"\0"),
        ] {
            let mut p = get(b"/");
            p.headers.push((n, v));
            cases.push(p);
        }
        for parts in cases {
            let a = serve(&Echo, None, parts);
            assert_eq!(a.status, 400);
            assert_eq!(
                a.body,
                br#"{"error":{"message":"the request is malformed","code":2001}}"#
            );
        }
        // Odd targets are encoded, not refused.
        for target in [&b""[..], b"keys", b"/\x00\xff#frag", b"/%zz", b"//x", b"*"] {
            let a = serve(&Echo, None, get(target));
            assert_eq!(a.status, 200, "{target:?}");
        }
    }

    #[test]
    fn internal_error_says_nothing_of_the_cause() {
        let a = internal_error();
        assert_eq!(a.status, 500);
        assert_eq!(
            a.body,
            br#"{"error":{"message":"an internal error occurred","code":2000}}"#
        );
    }
}
