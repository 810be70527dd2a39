//! What `apikeys.asgi` and `apikeys.wsgi` read out of a request, parsed by the
//! same code as the Rust adapters (`apikeys-http`), so that every adapter
//! accepts and refuses exactly the same headers and Events bodies.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::convert;
use crate::errors::InvalidInput;

/// Bodies at least this long are parsed with the GIL released. Releasing and
/// taking it back costs about 150 ns; measured through the binding (release
/// build, a loaded 2-core machine), a 1 KB event parses in 0.8 µs, 16 KB in
/// 9 µs and 500 KB in 0.3 ms: below this size other threads would gain
/// little, above it they would wait on the parse.
const DETACH_FROM_BYTES: usize = 16 * 1024;

/// The `routing_key` of an Events API v2 body (the raw bytes of a JSON
/// object), as the Rust adapters read it. A body they refuse raises
/// `InvalidInput` (400, 2001) whose message is the one PagerDuty's error body
/// carries, whose `.field` is `"body"` (not a JSON object, not valid JSON, or
/// a `routing_key` that is not one string) or `"routing_key"` (none), and
/// whose `.reason` names the check (`"invalid_body"`, `"missing_routing_key"`).
#[pyfunction]
pub(crate) fn events_routing_key(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<String> {
    let bytes = body
        .cast::<PyBytes>()
        .map_err(|_| convert::wrong_type(body, "body", "bytes"))?
        .as_bytes();
    let parsed = if bytes.len() >= DETACH_FROM_BYTES {
        py.detach(|| apikeys_http::credentials::routing_key(bytes).map(|k| k.into_owned()))
    } else {
        apikeys_http::credentials::routing_key(bytes).map(|k| k.into_owned())
    };
    parsed.map_err(|r| {
        let field = if r.kind() == "missing_routing_key" {
            "routing_key"
        } else {
            "body"
        };
        refusal(py, field, r.message(), r.kind())
    })
}

/// The key in one `Authorization` header value (`str` or `bytes`), or `None`
/// when the value has none of the accepted forms (`Token token=<key>`, any
/// case and spacing, the key optionally quoted, or `Bearer <key>`; at most
/// 1024 bytes). The key itself is not checked here: `Keyring.authenticate`
/// does that.
#[pyfunction]
pub(crate) fn token_from_authorization(value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let bytes: &[u8] = if let Ok(s) = value.cast::<PyString>() {
        match s.to_str() {
            Ok(s) => s.as_bytes(),
            // Lone surrogates: no accepted form has them.
            Err(_) => return Ok(None),
        }
    } else if let Ok(b) = value.cast::<PyBytes>() {
        b.as_bytes()
    } else {
        return Err(convert::wrong_type(value, "value", "str or bytes"));
    };
    Ok(apikeys_http::credentials::token_from_authorization(bytes).map(str::to_owned))
}

/// An `InvalidInput` with the adapters' message (not the core's
/// `invalid <field>: …` form), so that the Python adapters answer with the
/// body the Rust ones send.
fn refusal(py: Python<'_>, field: &'static str, message: &str, kind: &'static str) -> PyErr {
    let set = || -> PyResult<PyErr> {
        let value = py.get_type::<InvalidInput>().call1((message,))?;
        value.setattr(intern!(py, "field"), field)?;
        value.setattr(intern!(py, "reason"), kind)?;
        Ok(PyErr::from_value(value))
    };
    set().unwrap_or_else(|failed| failed)
}
