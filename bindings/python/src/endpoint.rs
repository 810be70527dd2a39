//! Rust endpoints mounted in Python (`apikeys.asgi.management_app`,
//! `apikeys.asgi.secret_scanning_app`): one class, `_Endpoint`, that takes a
//! request's parts as an ASGI server gives them and answers `(status,
//! headers, body)` for the server to write as it is. Every rule, route and
//! answer is the endpoint's Rust code (`apikeys_http::mount`); this module
//! only converts.
//!
//! - `handle` releases the GIL when the endpoint may block (a durable store):
//!   `apikeys._endpoints` then calls it in a worker thread, so neither the
//!   event loop nor other Python threads wait on the database. Otherwise it
//!   answers with the GIL held (a memory store answers in microseconds, less
//!   than a thread hop).
//! - Header names and values, the method and the target are `bytes` or
//!   `str` (ASGI gives `bytes` for headers and the raw path, `str` for the
//!   method); a `str` with lone surrogates is encoded with replacement
//!   characters (no form of anything holds them): the Rust side refuses what
//!   it does not accept, with PagerDuty's body, never an exception.
//! - Wrong argument types are a `TypeError` naming the argument (a
//!   programming error in the caller, not a request's fault).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyMapping, PyString, PyTuple};

use apikeys_http::mount::{self, Answer, Endpoint, Parts};
use apikeys_http::{Management, ScanningConfigError, SecretScanning};

use crate::convert;

/// A Rust endpoint, mounted by `apikeys._endpoints` (not public API).
#[pyclass(frozen, module = "apikeys._apikeys", name = "_Endpoint")]
pub struct PyEndpoint {
    inner: Arc<dyn Endpoint>,
    /// What the endpoint is (`"management"`, `"secret_scanning"`), for `repr`.
    name: &'static str,
}

impl PyEndpoint {
    /// Wrap an endpoint.
    pub(crate) fn new(inner: Arc<dyn Endpoint>, name: &'static str) -> Self {
        PyEndpoint { inner, name }
    }
}

/// `apikeys_http::Management` over `keyring` (`apikeys.asgi.management_app`):
/// `mount_path` for a host that does not say where it mounted it (ASGI's
/// `root_path` says, per request), `page=False` for the API alone.
#[pyfunction]
#[pyo3(signature = (keyring, *, mount_path = None, page = None))]
pub(crate) fn _management(
    py: Python<'_>,
    keyring: &Bound<'_, PyAny>,
    mount_path: Option<&Bound<'_, PyAny>>,
    page: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyEndpoint> {
    let keyring = convert::instance::<crate::Keyring>(keyring, "keyring")?;
    let mut m = Management::new(Arc::clone(&keyring.get().inner));
    if let Some(path) = mount_path.filter(|p| !p.is_none()) {
        m = m
            .mount_path(convert::text(path, "mount_path")?)
            .map_err(|e| crate::errors::to_py(py, e))?;
    }
    if !page
        .filter(|p| !p.is_none())
        .map_or(Ok(true), |p| convert::flag(p, "page"))?
    {
        m = m.without_page();
    }
    Ok(PyEndpoint::new(Arc::new(m), "management"))
}

/// A configuration the receiver refuses, as `InvalidInput` naming the argument.
fn config_error(py: Python<'_>, field: &'static str, e: &ScanningConfigError) -> PyErr {
    crate::errors::invalid(py, field, &e.to_string())
}

/// `apikeys_http::SecretScanning` over `keyring`
/// (`apikeys.asgi.secret_scanning_app`): `public_keys` maps each key
/// identifier to a PEM `str` or SPKI DER `bytes`; `github_keys` is the body
/// of GitHub's key list; `on_live_key` `"disable"` or `"delete"`;
/// `max_body_bytes` the largest report read.
#[pyfunction]
#[pyo3(signature = (keyring, public_keys = None, github_keys = None, on_live_key = None, max_body_bytes = None))]
pub(crate) fn _secret_scanning(
    py: Python<'_>,
    keyring: &Bound<'_, PyAny>,
    public_keys: Option<&Bound<'_, PyAny>>,
    github_keys: Option<&Bound<'_, PyAny>>,
    on_live_key: Option<&Bound<'_, PyAny>>,
    max_body_bytes: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyEndpoint> {
    let keyring = convert::instance::<crate::Keyring>(keyring, "keyring")?;
    let mut s = SecretScanning::new(Arc::clone(&keyring.get().inner));
    if let Some(keys) = public_keys.filter(|k| !k.is_none()) {
        let mapping = keys.cast::<PyMapping>().map_err(|_| {
            convert::wrong_type(keys, "public_keys", "a mapping of str to str or bytes")
        })?;
        for item in mapping.items()?.iter() {
            let (id, key) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            let id = convert::text(&id, "public_keys")?;
            s = if let Ok(pem) = key.cast::<PyString>() {
                let pem = pem.to_str().map_err(|_| {
                    crate::errors::invalid(
                        py,
                        "public_keys",
                        "must be valid Unicode (no lone surrogates)",
                    )
                })?;
                s.trust_pem(id, pem)
            } else if let Ok(der) = key.cast::<PyBytes>() {
                s.trust_der(id, der.as_bytes())
            } else {
                return Err(convert::wrong_type(
                    &key,
                    "public_keys",
                    "a mapping of str to str or bytes",
                ));
            }
            .map_err(|e| config_error(py, "public_keys", &e))?;
        }
    }
    if let Some(list) = github_keys.filter(|k| !k.is_none()) {
        let text = if let Ok(b) = list.cast::<PyBytes>() {
            std::str::from_utf8(b.as_bytes())
                .map_err(|_| crate::errors::invalid(py, "github_keys", "must be UTF-8"))?
        } else {
            convert::text(list, "github_keys")?
        };
        s = s
            .trust_github_keys(text)
            .map_err(|e| config_error(py, "github_keys", &e))?;
    }
    if let Some(action) = on_live_key.filter(|a| !a.is_none()) {
        s = s.on_live_key(match convert::text(action, "on_live_key")? {
            "disable" => apikeys::LeakAction::Disable,
            "delete" => apikeys::LeakAction::Delete,
            _ => {
                return Err(crate::errors::invalid(
                    py,
                    "on_live_key",
                    "must be 'disable' or 'delete'",
                ));
            }
        });
    }
    if let Some(max) = max_body_bytes.filter(|m| !m.is_none()) {
        if !max.is_instance_of::<PyInt>() || max.is_instance_of::<pyo3::types::PyBool>() {
            return Err(convert::wrong_type(max, "max_body_bytes", "int"));
        }
        let n = max
            .extract::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                crate::errors::invalid(py, "max_body_bytes", "must be a positive int")
            })?;
        s = s.max_body_bytes(n);
    }
    Ok(PyEndpoint::new(Arc::new(s), "secret_scanning"))
}

/// A `bytes` or `str` value as bytes (a `str` as UTF-8, lone surrogates
/// replaced: such a value is refused by the Rust side, not here).
fn bytes_of<'a>(value: &'a Bound<'_, PyAny>, field: &str) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        Ok(std::borrow::Cow::Borrowed(b.as_bytes()))
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(match s.to_str() {
            Ok(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            Err(_) => std::borrow::Cow::Owned(s.to_string_lossy().into_owned().into_bytes()),
        })
    } else {
        Err(convert::wrong_type(value, field, "bytes or str"))
    }
}

/// ASGI's `client`: `(host, port)` or `None`; a host that is not an IP
/// address (a Unix socket's path …) is no peer address.
fn peer_of(client: Option<&Bound<'_, PyAny>>) -> PyResult<Option<SocketAddr>> {
    let Some(client) = client.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    let pair = client
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| convert::wrong_type(client, "client", "a (host, port) tuple or None"))?;
    let host = pair.get_item(0)?;
    let port = pair.get_item(1)?;
    let (Ok(host), Ok(port)) = (host.cast::<PyString>(), port.cast::<PyInt>()) else {
        return Ok(None);
    };
    let ip = host.to_str().ok().and_then(|h| h.parse::<IpAddr>().ok());
    Ok(ip.zip(port.extract::<u16>().ok()).map(SocketAddr::from))
}

/// An answer as `(status, [(name, value), …], body)`, names and values `bytes`
/// (what ASGI's `http.response.start` takes).
fn answer<'py>(py: Python<'py>, a: Answer) -> PyResult<Bound<'py, PyAny>> {
    let headers = a
        .headers
        .iter()
        .map(|(n, v)| PyTuple::new(py, [PyBytes::new(py, n.as_bytes()), PyBytes::new(py, v)]))
        .collect::<PyResult<Vec<_>>>()?;
    (
        a.status,
        PyList::new(py, headers)?,
        PyBytes::new(py, &a.body),
    )
        .into_bound_py_any(py)
}

#[pymethods]
impl PyEndpoint {
    /// Whether `handle` may wait on I/O (then call it in a worker thread:
    /// it releases the GIL).
    #[getter]
    fn may_block(&self) -> bool {
        self.inner.may_block()
    }

    /// The most body bytes the endpoint reads.
    #[getter]
    fn body_limit(&self) -> usize {
        self.inner.body_limit()
    }

    /// The answer when the host application's actor function failed: 500
    /// with PagerDuty's body, nothing of the cause.
    #[staticmethod]
    fn internal_error(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        answer(py, mount::internal_error())
    }

    /// Answer one request: `method`, `target` (the path below the mount
    /// point, with `?query` if any), `headers` (a sequence of `(name,
    /// value)` pairs), `body` (`bytes`), `actor` (an `apikeys.Actor` or
    /// `None`), `client` (ASGI's `(host, port)` or `None`), `mount_path`
    /// (ASGI's `root_path`, `None` or `""` when not mounted under a prefix).
    /// Answers `(status, headers, body)`.
    #[pyo3(signature = (method, target, headers, body, actor = None, client = None, mount_path = None))]
    #[allow(clippy::too_many_arguments)]
    fn handle<'py>(
        &self,
        py: Python<'py>,
        method: &Bound<'py, PyAny>,
        target: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        body: &Bound<'py, PyAny>,
        actor: Option<&Bound<'py, PyAny>>,
        client: Option<&Bound<'py, PyAny>>,
        mount_path: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let method = bytes_of(method, "method")?;
        let target = bytes_of(target, "target")?;
        let body = body
            .cast::<PyBytes>()
            .map_err(|_| convert::wrong_type(body, "body", "bytes"))?
            .as_bytes();
        let actor = match actor.filter(|a| !a.is_none()) {
            Some(a) => Some(
                convert::instance::<crate::Actor>(a, "actor")?
                    .get()
                    .0
                    .clone(),
            ),
            None => None,
        };
        let peer = peer_of(client)?;
        let mount_path = match mount_path.filter(|m| !m.is_none()) {
            Some(m) => Some(
                m.cast::<PyString>()
                    .map_err(|_| convert::wrong_type(m, "mount_path", "str or None"))?
                    .to_string_lossy(),
            ),
            None => None,
        };
        // Every pair read into owned bytes first: the pairs are Python
        // objects, and the request is built from what was read once.
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let wrong = || convert::wrong_type(headers, "headers", "a sequence of (name, value) pairs");
        if headers.is_instance_of::<PyString>() || headers.is_instance_of::<PyBytes>() {
            return Err(wrong());
        }
        let items: Vec<Bound<'py, PyAny>> = headers
            .try_iter()
            .map_err(|_| wrong())?
            .collect::<PyResult<_>>()?;
        for item in &items {
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .map(|t| (t.get_item(0), t.get_item(1)))
                .or_else(|| {
                    item.cast::<PyList>()
                        .ok()
                        .filter(|l| l.len() == 2)
                        .map(|l| (l.get_item(0), l.get_item(1)))
                })
                .ok_or_else(wrong)?;
            let (name, value) = (pair.0?, pair.1?);
            pairs.push((
                bytes_of(&name, "headers")?.into_owned(),
                bytes_of(&value, "headers")?.into_owned(),
            ));
        }
        let parts = Parts {
            method: &method,
            target: &target,
            headers: pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect(),
            // What the endpoint reads, and one byte more (it refuses the rest).
            body: body[..body.len().min(self.inner.body_limit().saturating_add(1))].to_vec(),
            peer,
            mount_path: mount_path.as_deref().filter(|m| !m.is_empty()),
        };
        let endpoint = &*self.inner;
        let served = if endpoint.may_block() {
            py.detach(|| mount::serve(endpoint, actor.as_ref(), parts))
        } else {
            mount::serve(endpoint, actor.as_ref(), parts)
        };
        answer(py, served)
    }

    fn __repr__(&self) -> String {
        format!("<apikeys endpoint {}>", self.name)
    }
}
