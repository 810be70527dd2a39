//! What `apikeys.asgi` and `apikeys.wsgi` read out of a request and what they
//! answer a refused one, decided and rendered by the Rust adapters' own code
//! (`apikeys-http`), so that every adapter accepts and refuses exactly the
//! same headers and Events bodies and sends the same bytes for a refusal.
//!
//! The `_http_…` functions are for those modules only: each answers its value
//! or, for a refused request, the refusal as a tuple `(status, code, kind,
//! message, reason, retry_after, headers, body)` (`apikeys._http.Rejection`
//! holds it), so that a refusal costs no exception on this side.

use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PySequence, PyString, PyTuple};

use apikeys_http::{ErrorParts, Rejection};

use crate::convert;
use crate::errors::{
    ApiKeyError, Forbidden, InvalidInput, NotFound, NotPermitted, PlanRestricted, RateLimited,
    StoreError, Unauthorized, WrongApi,
};

/// Bodies at least this long are parsed with the GIL released. Releasing and
/// taking it back costs about 150 ns; measured through the binding (release
/// build, a loaded 2-core machine), a 1 KB event parses in 0.8 µs, 16 KB in
/// 9 µs and 500 KB in 0.3 ms: below this size other threads would gain
/// little, above it they would wait on the parse.
const DETACH_FROM_BYTES: usize = 16 * 1024;

fn routing_key_of(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<Result<String, Rejection>> {
    let bytes = body
        .cast::<PyBytes>()
        .map_err(|_| convert::wrong_type(body, "body", "bytes"))?
        .as_bytes();
    let parse = || apikeys_http::routing_key(bytes).map(|k| k.into_owned());
    Ok(if bytes.len() >= DETACH_FROM_BYTES {
        py.detach(parse)
    } else {
        parse()
    })
}

/// The `routing_key` of an Events API v2 body (the raw bytes of a JSON
/// object), as the Rust adapters read it. A body they refuse raises
/// `InvalidInput` (400, 2001) whose message is the one PagerDuty's error body
/// carries, whose `.field` is `"body"` (not a JSON object, not valid JSON, or
/// a `routing_key` that is not one string) or `"routing_key"` (none), and
/// whose `.reason` names the check (`"invalid_body"`, `"missing_routing_key"`).
#[pyfunction]
pub(crate) fn events_routing_key(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<String> {
    routing_key_of(py, body)?.map_err(|r| {
        let field = if r.kind() == "missing_routing_key" {
            "routing_key"
        } else {
            "body"
        };
        invalid_input(py, field, r.message(), r.kind())
    })
}

/// The bytes of a header value given as `str` or `bytes`. A `str` with lone
/// surrogates is no accepted form of anything: it reads as a byte no form
/// takes.
fn header_bytes<'a>(value: &'a Bound<'_, PyAny>, field: &str) -> PyResult<&'a [u8]> {
    if let Ok(s) = value.cast::<PyString>() {
        Ok(s.to_str().map_or(&b"\xff"[..], str::as_bytes))
    } else if let Ok(b) = value.cast::<PyBytes>() {
        Ok(b.as_bytes())
    } else {
        Err(convert::wrong_type(value, field, "str or bytes"))
    }
}

/// The key in one `Authorization` header value (`str` or `bytes`), or `None`
/// when the value has none of the accepted forms (`Token token=<key>`, any
/// case and spacing, the key optionally quoted, or `Bearer <key>`; at most
/// 1024 bytes). The key itself is not checked here: `Keyring.authenticate`
/// does that.
#[pyfunction]
pub(crate) fn token_from_authorization(value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let bytes = header_bytes(value, "value")?;
    Ok(apikeys_http::token_from_authorization(bytes).map(str::to_owned))
}

/// A value, or the refusal tuple.
type Answer<'py> = PyResult<Bound<'py, PyAny>>;

fn answer<'py, T: IntoPyObject<'py>>(py: Python<'py>, r: Result<T, Rejection>) -> Answer<'py> {
    match r {
        Ok(v) => v.into_bound_py_any(py),
        Err(r) => refusal(py, &r),
    }
}

/// The key among a request's `Authorization` values (a sequence of `bytes`
/// or `str`) as `apikeys_http::token_from_authorizations` reads it, handed
/// to `f` borrowed from the values.
fn with_rest_token<'py, T>(
    values: &Bound<'py, PyAny>,
    f: impl FnOnce(Result<&str, Rejection>) -> PyResult<T>,
) -> PyResult<T> {
    let values = values
        .cast::<PySequence>()
        .map_err(|_| convert::wrong_type(values, "values", "a list of str or bytes"))?;
    // The rule looks at no more than two: none, one, or more than one (read
    // without a collection: this is every REST request's path).
    let n = values.len()?;
    let first = if n > 0 {
        Some(values.get_item(0)?)
    } else {
        None
    };
    let second = if n > 1 {
        Some(values.get_item(1)?)
    } else {
        None
    };
    let first = first
        .as_ref()
        .map(|v| header_bytes(v, "values"))
        .transpose()?;
    let second = second
        .as_ref()
        .map(|v| header_bytes(v, "values"))
        .transpose()?;
    f(apikeys_http::token_from_authorizations(
        first.into_iter().chain(second),
    ))
}

/// The key of WSGI's `HTTP_AUTHORIZATION` (`None` when absent) as
/// `apikeys_http::token_from_joined_authorization` reads it, handed to `f`.
fn with_joined_rest_token<'py, T>(
    value: Option<&Bound<'py, PyAny>>,
    f: impl FnOnce(Result<&str, Rejection>) -> PyResult<T>,
) -> PyResult<T> {
    let bytes = value
        .filter(|v| !v.is_none())
        .map(|v| header_bytes(v, "value"))
        .transpose()?;
    f(apikeys_http::token_from_joined_authorization(bytes))
}

/// `apikeys_http::token_from_authorizations`: the key among a request's
/// `Authorization` values (a list of `bytes` or `str`), or the refusal.
#[pyfunction]
pub(crate) fn _http_rest_token<'py>(py: Python<'py>, values: &Bound<'py, PyAny>) -> Answer<'py> {
    with_rest_token(values, |token| answer(py, token))
}

/// `apikeys_http::token_from_joined_authorization`: WSGI's
/// `HTTP_AUTHORIZATION` (`None` when absent), or the refusal.
#[pyfunction]
pub(crate) fn _http_joined_rest_token<'py>(
    py: Python<'py>,
    value: Option<&Bound<'py, PyAny>>,
) -> Answer<'py> {
    with_joined_rest_token(value, |token| answer(py, token))
}

/// The REST check after the key was read: `Keyring.authenticate(token,
/// "rest", method, scope, remote_address=address, path=path)` with the key
/// borrowed, answering the `Principal` or the refusal tuple (a header's
/// refusal as `_http_rest_token` gives it, an authentication error's as
/// `_http_refusal_for` renders the exception `authenticate` would raise).
/// Arguments of the wrong type raise, as `authenticate` raises for them.
fn rest_check<'py>(
    py: Python<'py>,
    keyring: &crate::Keyring,
    token: Result<&str, Rejection>,
    method: &Bound<'py, PyAny>,
    scope: Option<&Bound<'py, PyAny>>,
    address: Option<&Bound<'py, PyAny>>,
    path: Option<&Bound<'py, PyAny>>,
) -> Answer<'py> {
    let token = match token {
        Ok(t) => t,
        Err(r) => return refusal(py, &r),
    };
    let request = crate::request_of(py, None, Some(method), scope)?;
    let address = convert::opt_note(address, "remote_address")?;
    let path = convert::opt_note(path, "path")?;
    let (address, path) = (address.as_deref(), path.as_deref());
    let run = || keyring.check(token, &request, address, path);
    let done = if keyring.blocking_store {
        py.detach(run)
    } else {
        run()
    };
    verdict(py, done)
}

/// A check's outcome as the adapters take it: the `Principal`, or the
/// refusal tuple `_http_refusal_for` renders for the exception
/// `authenticate` would raise.
fn verdict<'py>(py: Python<'py>, done: apikeys::Result<apikeys::Principal>) -> Answer<'py> {
    match done {
        Ok(principal) => crate::Principal(principal).into_bound_py_any(py),
        Err(e) => {
            let error = crate::errors::to_py(py, e).into_value(py);
            _http_refusal_for(py, error.bind(py).as_any())
        }
    }
}

/// The REST step of `apikeys.asgi` in one call, for a request whose route
/// is in the middleware's routing cache `routes`: the `Authorization` and
/// `Host` headers read out of the scope's header list, the routing cache
/// probed with the key the middleware builds (method, path, root path,
/// scheme, host, `id(app)`), the key among the `Authorization` values read
/// as `_http_rest_token` reads it and checked as `Keyring.authenticate(key,
/// "rest", method, scope, remote_address=address, path=path)` checks it,
/// the key never made a `str`.
///
/// Answers `(principal, scope)` (the route's scope, `None` for a route that
/// declares none), the refusal tuple, or `None` when the middleware must
/// take its general path: the route is not in the cache yet, or the ASGI
/// scope is not in the shape servers give it (a `dict`; `headers` a `list`
/// of `(bytes, bytes)` tuples; `method` a `str`), which the general path
/// reads with Python's own rules. Nothing of the request is read in a way
/// the general path would not read it.
#[pyfunction]
#[pyo3(signature = (keyring, scope, routes, path, address = None))]
pub(crate) fn _http_asgi_rest<'py>(
    py: Python<'py>,
    keyring: &Bound<'py, crate::Keyring>,
    scope: &Bound<'py, PyAny>,
    routes: &Bound<'py, PyDict>,
    path: &Bound<'py, PyAny>,
    address: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Ok(scope) = scope.cast_exact::<PyDict>() else {
        return Ok(None);
    };
    let Some(headers) = scope.get_item(intern!(py, "headers"))? else {
        return Ok(None);
    };
    let Ok(headers) = headers.cast_exact::<PyList>() else {
        return Ok(None);
    };
    // The rule looks at no more than two Authorization values (none, one,
    // or more than one).
    let mut values: [Option<Bound<'py, PyBytes>>; 2] = [None, None];
    let mut hosts: Vec<Bound<'py, PyAny>> = Vec::new();
    for item in headers.iter() {
        let Ok(pair) = item.cast_exact::<PyTuple>() else {
            return Ok(None);
        };
        if pair.len() != 2 {
            return Ok(None);
        }
        let (k, v) = (pair.get_borrowed_item(0)?, pair.get_borrowed_item(1)?);
        let (Ok(k), Ok(v)) = (k.cast_exact::<PyBytes>(), v.cast_exact::<PyBytes>()) else {
            return Ok(None);
        };
        let k = k.as_bytes();
        if apikeys_http::header_name_is(k, b"authorization") {
            if let Some(slot) = values.iter_mut().find(|v| v.is_none()) {
                *slot = Some(v.to_owned());
            }
        } else if apikeys_http::header_name_is(k, b"host") {
            hosts.push(v.to_owned().into_any());
        }
    }
    let Some(method) = scope.get_item(intern!(py, "method"))? else {
        return Ok(None);
    };
    if !method.is_exact_instance_of::<PyString>() {
        return Ok(None);
    }
    let root_path = match scope.get_item(intern!(py, "root_path"))? {
        Some(v) => v,
        None => intern!(py, "").clone().into_any(),
    };
    let scheme = match scope.get_item(intern!(py, "scheme"))? {
        Some(v) => v,
        None => intern!(py, "").clone().into_any(),
    };
    // id(scope.get("app")): CPython's id is the object's address.
    let app_id = match scope.get_item(intern!(py, "app"))? {
        Some(app) => app.as_ptr() as usize,
        None => py.None().as_ptr() as usize,
    };
    // As the middleware keys it: None, the one value, or a tuple of them.
    let host = if hosts.len() > 1 {
        PyTuple::new(py, hosts)?.into_any()
    } else {
        hosts.pop().unwrap_or_else(|| py.None().into_bound(py))
    };
    let key = PyTuple::new(
        py,
        [
            method.clone(),
            path.clone(),
            root_path,
            scheme,
            host,
            app_id.into_bound_py_any(py)?,
        ],
    )?;
    let Some(required) = routes.get_item(key)? else {
        return Ok(None);
    };
    // The cache holds "" for a route that declares no scope.
    let required = match required.cast::<PyString>() {
        Ok(s) if s.to_str()?.is_empty() => None,
        _ => Some(required),
    };
    let first = values[0].as_ref().map(|b| b.as_bytes());
    let second = values[1].as_ref().map(|b| b.as_bytes());
    let token = apikeys_http::token_from_authorizations(first.into_iter().chain(second));
    let who = rest_check(
        py,
        keyring.get(),
        token,
        &method,
        required.as_ref(),
        address,
        Some(path),
    )?;
    if who.is_instance_of::<PyTuple>() {
        return Ok(Some(who));
    }
    let scope_value = required.unwrap_or_else(|| py.None().into_bound(py));
    Ok(Some(PyTuple::new(py, [who, scope_value])?.into_any()))
}

/// The REST check of `apikeys.wsgi` in one call: the key of
/// `HTTP_AUTHORIZATION` (`None` when absent) as `_http_joined_rest_token`
/// reads it, then checked as `Keyring.authenticate(key, "rest", method,
/// scope, remote_address=address, path=path)` checks it, the key never made
/// a `str`. The scope is asked only once the header gave a key (where the
/// middleware asked it before): first of `scopes`, when given, a cache of
/// route scopes keyed by `(environ.get("REQUEST_METHOD", ""),
/// environ.get("PATH_INFO", ""))` holding a `str` per route ("" for none),
/// as `apikeys.wsgi.flask_scope_resolver` keeps it for an app without host
/// matching; otherwise (no cache, not in it, or an `environ` that is not a
/// `dict`) what `scope_of(environ)` answers (`None` or a `str`), an
/// exception it raises going to the caller as it is.
#[pyfunction]
#[pyo3(signature = (keyring, value, method, scope_of = None, environ = None, address = None, path = None, scopes = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn _http_joined_rest_check<'py>(
    py: Python<'py>,
    keyring: &Bound<'py, crate::Keyring>,
    value: Option<&Bound<'py, PyAny>>,
    method: &Bound<'py, PyAny>,
    scope_of: Option<&Bound<'py, PyAny>>,
    environ: Option<&Bound<'py, PyAny>>,
    address: Option<&Bound<'py, PyAny>>,
    path: Option<&Bound<'py, PyAny>>,
    scopes: Option<&Bound<'py, PyDict>>,
) -> Answer<'py> {
    let keyring = keyring.get();
    with_joined_rest_token(value, |token| {
        let scope = match (&token, scope_of.filter(|f| !f.is_none())) {
            (Ok(_), Some(f)) => match cached_scope(py, scopes, environ)? {
                Some(cached) => cached,
                None => Some(f.call1((environ,))?),
            },
            _ => None,
        };
        rest_check(py, keyring, token, method, scope.as_ref(), address, path)
    })
}

/// A route's scope out of `flask_scope_resolver`'s cache: `Some(None)` for
/// a route that declares none, `Some(Some(scope))`, or `None` when the
/// cache cannot answer (none given, not a `dict` environ, not cached).
#[allow(clippy::option_option)]
fn cached_scope<'py>(
    py: Python<'py>,
    scopes: Option<&Bound<'py, PyDict>>,
    environ: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
    let (Some(scopes), Some(environ)) = (scopes, environ) else {
        return Ok(None);
    };
    let Ok(environ) = environ.cast_exact::<PyDict>() else {
        return Ok(None);
    };
    let empty = intern!(py, "");
    let field = |name: &Bound<'py, PyString>| -> PyResult<Bound<'py, PyAny>> {
        Ok(environ
            .get_item(name)?
            .unwrap_or_else(|| empty.clone().into_any()))
    };
    let key = PyTuple::new(
        py,
        [
            field(intern!(py, "REQUEST_METHOD"))?,
            field(intern!(py, "PATH_INFO"))?,
        ],
    )?;
    Ok(match scopes.get_item(key)? {
        Some(found) => match found.cast_exact::<PyString>() {
            Ok(s) if s.to_str()?.is_empty() => Some(None),
            Ok(_) => Some(Some(found)),
            Err(_) => None,
        },
        None => None,
    })
}

/// `apikeys_http::declared_length`: a `Content-Length` value (`str` or
/// `bytes`) within `limit`, or the refusal.
#[pyfunction]
pub(crate) fn _http_declared_length<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    limit: usize,
) -> Answer<'py> {
    let bytes = header_bytes(value, "value")?;
    answer(py, apikeys_http::declared_length(bytes, limit))
}

/// `apikeys_http::routing_key`: the key of an Events body, or the refusal.
#[pyfunction]
pub(crate) fn _http_routing_key<'py>(py: Python<'py>, body: &Bound<'py, PyAny>) -> Answer<'py> {
    let parsed = routing_key_of(py, body)?;
    answer(py, parsed)
}

/// The Events check in one call: `apikeys_http::routing_key` of the body,
/// then `Keyring.authenticate(key, api="events", remote_address=address,
/// path=path)` with the key borrowed from the body (no `str` made for it, no
/// second crossing). Answers the `Principal`, or the refusal tuple: the
/// body's refusal as `_http_routing_key` gives it, an authentication error's
/// as `_http_refusal_for` renders the exception `authenticate` would raise
/// (the same tuple, byte for byte). The GIL is released around the parse of a
/// body of `DETACH_FROM_BYTES` or more and around a check that may block, as
/// `events_routing_key` and `authenticate` do on their own.
#[pyfunction]
#[pyo3(signature = (keyring, body, address = None, path = None))]
pub(crate) fn _http_events_check<'py>(
    py: Python<'py>,
    keyring: &Bound<'py, crate::Keyring>,
    body: &Bound<'py, PyAny>,
    address: Option<&Bound<'py, PyAny>>,
    path: Option<&Bound<'py, PyAny>>,
) -> Answer<'py> {
    let bytes = body
        .cast::<PyBytes>()
        .map_err(|_| convert::wrong_type(body, "body", "bytes"))?
        .as_bytes();
    let address = convert::opt_note(address, "remote_address")?;
    let path = convert::opt_note(path, "path")?;
    let (address, path) = (address.as_deref(), path.as_deref());
    let keyring = keyring.get();
    let request = apikeys::Request::events();
    let run = || match apikeys_http::routing_key(bytes) {
        Ok(key) => Ok(keyring.check(&key, &request, address, path)),
        Err(r) => Err(r),
    };
    let done = if keyring.blocking_store || bytes.len() >= DETACH_FROM_BYTES {
        py.detach(run)
    } else {
        run()
    };
    match done {
        Ok(checked) => verdict(py, checked),
        Err(r) => refusal(py, &r),
    }
}

/// `apikeys_http::Rejection::named`: the refusals the Python adapters meet
/// on their own (`"body_too_large"` over `limit` bytes, `"unreadable_body"`,
/// `"misconfigured"` for `reason` …).
#[pyfunction]
#[pyo3(signature = (name, limit = 0, reason = ""))]
pub(crate) fn _http_refusal<'py>(
    py: Python<'py>,
    name: &str,
    limit: usize,
    reason: &str,
) -> Answer<'py> {
    match Rejection::named(name, limit, reason) {
        Some(r) => refusal(py, &r),
        None => Err(crate::errors::invalid(
            py,
            "name",
            "is not a refusal apikeys-http renders by name",
        )),
    }
}

/// The core kind name of an exception of this package (a subclass it does
/// not know, or the base class, is an internal error).
fn kind_of(e: &Bound<'_, PyAny>) -> &'static str {
    let py = e.py();
    let classes = [
        (py.get_type::<Unauthorized>(), "unauthorized"),
        (py.get_type::<WrongApi>(), "wrong_api"),
        (py.get_type::<Forbidden>(), "forbidden"),
        (py.get_type::<PlanRestricted>(), "plan_restricted"),
        (py.get_type::<NotPermitted>(), "not_permitted"),
        (py.get_type::<NotFound>(), "not_found"),
        (py.get_type::<RateLimited>(), "rate_limited"),
        (py.get_type::<InvalidInput>(), "invalid_input"),
        (py.get_type::<StoreError>(), "store"),
    ];
    classes
        .into_iter()
        .find(|(class, _)| e.is_instance(class).unwrap_or(false))
        .map_or("internal", |(_, kind)| kind)
}

/// A number attribute of an exception (`bool` is not one).
fn number_attr(e: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> Option<f64> {
    let v = e.getattr(name).ok()?;
    if v.is_instance_of::<PyBool>()
        || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
    {
        return None;
    }
    v.extract::<f64>().ok()
}

/// The refusal for an `ApiKeyError` of `Keyring.authenticate` (or of a
/// stand-in keyring): its `.status`, `.code`, message, `.reason` and, for a
/// 429, `.retry_after` and `.limit`, rendered by
/// `apikeys_http::Rejection::from_error_parts`.
#[pyfunction]
pub(crate) fn _http_refusal_for<'py>(py: Python<'py>, error: &Bound<'py, PyAny>) -> Answer<'py> {
    if !error.is_instance(&py.get_type::<ApiKeyError>())? {
        return Err(convert::wrong_type(error, "error", "apikeys.ApiKeyError"));
    }
    let whole = |name| {
        number_attr(error, name)
            .filter(|n| n.fract() == 0.0)
            .map(|n| n as i64)
    };
    let status = whole(intern!(py, "status"))
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500);
    let code = whole(intern!(py, "code"))
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(2000);
    let message = error.str()?.to_string_lossy().into_owned();
    let reason = match error.getattr(intern!(py, "reason")) {
        Ok(r) if r.is_truthy()? => r.str()?.to_string_lossy().into_owned(),
        // A stand-in's exception without one: the message says what failed.
        _ => message.clone(),
    };
    let retry = number_attr(error, intern!(py, "retry_after"))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(1e9)));
    let limit = whole(intern!(py, "limit"))
        .and_then(|l| u32::try_from(l).ok())
        .unwrap_or(0);
    let r = Rejection::from_error_parts(ErrorParts {
        status,
        code,
        kind: kind_of(error),
        message: &message,
        reason: &reason,
        rate_limit: retry.map(|d| (limit, d)),
    });
    refusal(py, &r)
}

/// `apikeys_http::rate_limit_headers` of a principal's rate limit status, or
/// `None` without one (or for an object that is not a `Principal`).
#[pyfunction]
pub(crate) fn _http_rate_limit_headers<'py>(
    py: Python<'py>,
    principal: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let Ok(p) = principal.cast::<crate::Principal>() else {
        return Ok(None);
    };
    let Some(status) = p.get().0.rate_limit() else {
        return Ok(None);
    };
    let headers = apikeys_http::rate_limit_headers(status)
        .iter()
        .map(|(name, value)| header(py, name.as_str(), value.to_str().unwrap_or_default()))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Some(PyList::new(py, headers)?))
}

/// One header as `(name, value)` strings (the names are interned: they are
/// the same few on every answer).
fn header<'py>(py: Python<'py>, name: &str, value: &str) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyString::intern(py, name).into_any(),
            PyString::new(py, value).into_any(),
        ],
    )
}

/// A refusal as `(status, code, kind, message, reason, retry_after, headers,
/// body)`: what `apikeys_http::Rejection::refusal` renders, and the facts
/// behind it.
fn refusal<'py>(py: Python<'py>, r: &Rejection) -> Answer<'py> {
    let plain = r.refusal();
    let headers = plain
        .headers
        .iter()
        .map(|(name, value)| header(py, name.as_str(), value.to_str().unwrap_or_default()))
        .collect::<PyResult<Vec<_>>>()?;
    (
        plain.status.as_u16(),
        r.code(),
        r.kind(),
        r.message(),
        r.reason(),
        r.retry_after().map(|d| d.as_secs_f64()),
        PyList::new(py, headers)?,
        PyBytes::new(py, &plain.body),
    )
        .into_bound_py_any(py)
}

/// An `InvalidInput` with the adapters' message (not the core's
/// `invalid <field>: …` form), so that `events_routing_key` says what the
/// Rust adapters' error body says.
fn invalid_input(py: Python<'_>, field: &'static str, message: &str, kind: &'static str) -> PyErr {
    let set = || -> PyResult<PyErr> {
        let value = py.get_type::<InvalidInput>().call1((message,))?;
        value.setattr(intern!(py, "field"), field)?;
        value.setattr(intern!(py, "reason"), kind)?;
        Ok(PyErr::from_value(value))
    };
    set().unwrap_or_else(|failed| failed)
}
