//! The audit trail: `AuditEvent` (one management call), its `FieldChange`s
//! and `CallContext`, a page of the trail (`AuditPage`) and the query
//! `Keyring.audit_records` builds from its keyword arguments.
//!
//! Decisions:
//! - A query is keyword arguments of `Keyring.audit_records`, not a class:
//!   a query is used once, and keywords with defaults are how Python spells
//!   "all optional". Every bound (window, limit, cursor) is the core's
//!   (`AuditQuery::resolve`); the binding converts types only.
//! - `AuditEvent.to_pagerduty()` is the core's JSON (`AuditEvent::to_pagerduty`)
//!   converted value by value into `dict`/`list`/`str`/`int`/`None`: the shape
//!   is decided once, in Rust.
//! - A `CallContext` is given with `caller_key=` (the caller's own key) and
//!   reads back `truncated_token`: the core keeps only its last four
//!   characters, so the key itself is never held by the object.

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use apikeys::{AuditAction, AuditOutcome, AuditQuery, KeyId};

use crate::convert::{self, text};
use crate::errors;

/// How a management call reached the application (all optional), kept in
/// its audit record: the request's id, the caller's address and, of the key
/// the caller authenticated with, only its last four characters.
#[pyclass(frozen, eq, hash, module = "apikeys")]
#[derive(PartialEq, Eq, Hash, Clone, Default)]
pub struct CallContext(pub(crate) apikeys::CallContext);

fn opt_text<'a>(v: Option<&'a Bound<'_, PyAny>>, field: &'static str) -> PyResult<Option<&'a str>> {
    v.filter(|v| !v.is_none())
        .map(|v| text(v, field))
        .transpose()
}

#[pymethods]
impl CallContext {
    #[new]
    #[pyo3(signature = (*, request_id = None, remote_address = None, caller_key = None))]
    fn new(
        request_id: Option<&Bound<'_, PyAny>>,
        remote_address: Option<&Bound<'_, PyAny>>,
        caller_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // The core cleans each value: cut to 128 bytes, control characters
        // and key-shaped values not kept, of the key only its last four.
        let mut c = apikeys::CallContext::new();
        if let Some(r) = opt_text(request_id, "request_id")? {
            c = c.request_id(r);
        }
        if let Some(a) = opt_text(remote_address, "remote_address")? {
            c = c.remote_address(a);
        }
        if let Some(k) = caller_key.filter(|v| !v.is_none()) {
            // A key with lone surrogates is not a key: its tail is dropped too.
            c = c.caller_key(&convert::py_str(k, "caller_key")?.to_string_lossy());
        }
        Ok(CallContext(c))
    }
    /// The request's id (a tracing id, `X-Request-Id` …), as kept.
    #[getter]
    fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// The caller's network address, as kept.
    #[getter]
    fn remote_address(&self) -> Option<&str> {
        self.0.remote_address.as_deref()
    }
    /// The last four characters of the key the caller authenticated with.
    #[getter]
    fn truncated_token(&self) -> Option<&str> {
        self.0.truncated_token.as_deref()
    }
    /// For a change made because a key was reported leaked: where the
    /// report says it was seen (a URL; key-shaped parts redacted).
    #[getter]
    fn report_url(&self) -> Option<&str> {
        self.0.report_url.as_deref()
    }
    /// For a change made because a key was reported leaked: the kind of
    /// place it was seen in (GitHub's `source`: `content`, `commit` …).
    #[getter]
    fn report_source(&self) -> Option<&str> {
        self.0.report_source.as_deref()
    }
    fn __bool__(&self) -> bool {
        !self.0.is_empty()
    }
    pub(crate) fn __repr__(&self, py: Python<'_>) -> String {
        let mut parts = Vec::new();
        for (name, v) in [
            ("request_id", &self.0.request_id),
            ("remote_address", &self.0.remote_address),
            ("truncated_token", &self.0.truncated_token),
            ("report_url", &self.0.report_url),
            ("report_source", &self.0.report_source),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name}={}", convert::repr(py, v)));
            }
        }
        format!("CallContext({})", parts.join(", "))
    }
}

/// One field a management call changed: its name, the value it has now and
/// the value it had, as text (`"disabled"`: `"true"`/`"false"`; `"role"`: the
/// role's name; `"rotated_to"`: a key id; `"overlap_until"`: milliseconds
/// since the epoch …). Never a key.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq, Eq)]
pub struct FieldChange(apikeys::FieldChange);

#[pymethods]
impl FieldChange {
    /// The field's name.
    #[getter]
    fn field(&self) -> &str {
        &self.0.field
    }
    /// The value it has now (`None`: no value).
    #[getter]
    fn value(&self) -> Option<&str> {
        self.0.value.as_deref()
    }
    /// The value it had (`None`: no value).
    #[getter]
    fn before_value(&self) -> Option<&str> {
        self.0.before_value.as_deref()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "FieldChange(field={}, value={}, before_value={})",
            convert::repr(py, &self.0.field),
            convert::repr_opt(py, self.value()),
            convert::repr_opt(py, self.before_value())
        )
    }
}

/// One management call, allowed or refused. Never holds a key.
#[pyclass(frozen, module = "apikeys")]
pub struct AuditEvent(pub(crate) apikeys::AuditEvent);

#[pymethods]
impl AuditEvent {
    /// The record's number in its trail: increasing in the order records
    /// were written (pages are ordered by it, newest first).
    #[getter]
    fn id(&self) -> u64 {
        self.0.id
    }
    /// When (UTC).
    #[getter]
    fn at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::datetime(py, self.0.at)
    }
    /// The account acted in.
    #[getter]
    fn account(&self) -> &str {
        &self.0.account
    }
    /// The acting user (`"system"` for account settings, role changes and removals).
    #[getter]
    fn actor(&self) -> &str {
        &self.0.actor
    }
    /// The actor's role, when there is an actor.
    #[getter]
    fn actor_role<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_role_obj(py, self.0.actor_role)
    }
    /// What was asked for: `"create"`, `"list"`, `"get"`, `"disable"`, `"enable"`,
    /// `"delete"`, `"set_account"`, `"set_user_role"`, `"remove_user"`,
    /// `"rotate"` or `"end_rotation"`.
    #[getter]
    fn action(&self) -> &'static str {
        self.0.action.as_str()
    }
    /// The kind of key, where one is concerned.
    #[getter]
    fn key_kind<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.0
            .key_kind
            .map(|k| convert::kind_obj(py, k))
            .transpose()
    }
    /// The key's id, where one is concerned and known.
    #[getter]
    fn key_id(&self) -> Option<String> {
        self.0.key_id.map(|k| k.to_string())
    }
    /// The user acted upon (role changes, removals, another user's token).
    #[getter]
    fn subject_user(&self) -> Option<&str> {
        self.0.subject_user.as_deref()
    }
    /// What changed (empty for reads and refusals).
    #[getter]
    fn changes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.0.changes.iter().cloned().map(FieldChange))
    }
    /// How the call reached the application, as it said (empty when it did not).
    #[getter]
    fn context(&self) -> CallContext {
        CallContext(self.0.context.clone())
    }
    /// Whether the call was allowed.
    #[getter]
    fn allowed(&self) -> bool {
        matches!(self.0.outcome, AuditOutcome::Allowed)
    }
    /// `"allowed"` or `"refused"` (as in Rust and Node).
    #[getter]
    fn outcome(&self) -> &'static str {
        self.0.outcome.as_str()
    }
    /// For a refused call: the error's name (`"not_permitted"` …).
    #[getter]
    fn error(&self) -> Option<&str> {
        match &self.0.outcome {
            AuditOutcome::Refused { error, .. } => Some(error),
            AuditOutcome::Allowed => None,
        }
    }
    /// For a refused call: the error's message.
    #[getter]
    fn reason(&self) -> Option<&str> {
        match &self.0.outcome {
            AuditOutcome::Refused { reason, .. } => Some(reason),
            AuditOutcome::Allowed => None,
        }
    }
    /// The record in the shape of PagerDuty's `GET /audit/records` (a new
    /// `dict` each call): `id`, `execution_time`, `execution_context`,
    /// `actors`, `method` (with `truncated_token`), `root_resource`,
    /// `action`, `details.fields`, and `outcome` (`error`, `reason` when refused).
    fn to_pagerduty<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.0.to_pagerduty())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "AuditEvent(id={}, action='{}', account={}, actor={}, key_id={}, allowed={})",
            self.0.id,
            self.action(),
            convert::repr(py, &self.0.account),
            convert::repr(py, &self.0.actor),
            convert::repr_opt(py, self.0.key_id.map(|k| k.to_string())),
            if self.allowed() { "True" } else { "False" }
        )
    }
}

/// A JSON value as the Python value `json.loads` would give for it.
fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as V;
    match v {
        V::Null => Ok(py.None().into_bound(py)),
        V::Bool(b) => b.into_bound_py_any(py),
        V::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)
            } else if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)
            }
        }
        V::String(s) => Ok(PyString::new(py, s).into_any()),
        V::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            Ok(list.into_any())
        }
        V::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, json_to_py(py, item)?)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// One page of audit records, newest first, and where the next one starts.
#[pyclass(frozen, module = "apikeys")]
pub struct AuditPage {
    records: Vec<Py<AuditEvent>>,
    next_cursor: Option<String>,
}

impl AuditPage {
    pub(crate) fn wrap(py: Python<'_>, page: apikeys::AuditPage) -> PyResult<AuditPage> {
        Ok(AuditPage {
            records: page
                .records
                .into_iter()
                .map(|e| Py::new(py, AuditEvent(e)))
                .collect::<PyResult<_>>()?,
            next_cursor: page.next_cursor,
        })
    }
}

#[pymethods]
impl AuditPage {
    /// The records, newest first (a new list each time; the events are shared).
    #[getter]
    fn records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.records.iter().map(|r| r.clone_ref(py)))
    }
    /// Pass this as `cursor=` for the next page; `None` on the last.
    #[getter]
    fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }
    fn __len__(&self) -> usize {
        self.records.len()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "AuditPage(<{} records>, next_cursor={})",
            self.records.len(),
            convert::repr_opt(py, self.next_cursor.as_deref())
        )
    }
}

/// The query of `Keyring.audit_records`, from its arguments (types checked
/// here; bounds and the rule for ids — no control characters, no blanks —
/// by the core's `AuditQuery::resolve`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn query(
    py: Python<'_>,
    account: &Bound<'_, PyAny>,
    key_id: Option<&Bound<'_, PyAny>>,
    actor: Option<&Bound<'_, PyAny>>,
    actions: Option<&Bound<'_, PyAny>>,
    since: Option<&Bound<'_, PyAny>>,
    until: Option<&Bound<'_, PyAny>>,
    limit: Option<&Bound<'_, PyAny>>,
    cursor: Option<&Bound<'_, PyAny>>,
) -> PyResult<AuditQuery> {
    let mut q = AuditQuery::account(text(account, "account")?);
    if let Some(k) = opt_text(key_id, "key_id")? {
        q.key_id = Some(k.parse::<KeyId>().map_err(|e| errors::to_py(py, e))?);
    }
    q.actor = opt_text(actor, "actor")?.map(str::to_owned);
    if let Some(a) = actions.filter(|v| !v.is_none()) {
        // Any iterable of action names (an `AuditEvent.action` is one) but a
        // string itself, which would be split into characters.
        let expected = "a list of str";
        if a.is_instance_of::<PyString>() {
            return Err(convert::wrong_type(a, "actions", expected));
        }
        let iter = a
            .try_iter()
            .map_err(|_| convert::wrong_type(a, "actions", expected))?;
        for item in iter {
            let item = item?;
            let name = text(&item, "actions")?;
            let action = name.parse::<AuditAction>().map_err(|e| match e {
                // The core names its field `action`; the argument is `actions`.
                apikeys::Error::InvalidInput { reason, .. } => {
                    errors::invalid(py, "actions", &reason)
                }
                other => errors::to_py(py, other),
            })?;
            if !q.actions.contains(&action) {
                q.actions.push(action);
            }
        }
    }
    q.since = convert::opt_timestamp(since, "since")?;
    q.until = convert::opt_timestamp(until, "until")?;
    if let Some(l) = limit.filter(|v| !v.is_none()) {
        if !l.is_instance_of::<pyo3::types::PyInt>() || l.is_instance_of::<pyo3::types::PyBool>() {
            return Err(convert::wrong_type(l, "limit", "int"));
        }
        if l.lt(0i32)? {
            return Err(errors::invalid(py, "limit", "must not be negative"));
        }
        // Past usize it is simply too many: the core refuses it with its bound.
        q.limit = l.extract::<usize>().unwrap_or(usize::MAX);
    } else {
        q.limit = 100;
    }
    q.cursor = opt_text(cursor, "cursor")?.map(str::to_owned);
    Ok(q)
}
