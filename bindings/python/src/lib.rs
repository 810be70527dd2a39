//! `apikeys._apikeys`: the Python binding of the `apikeys` crate.
//!
//! The binding holds no logic of its own: it converts Python values to the
//! core's types and back, and core errors to exceptions (module `errors`).
//! The Python package (`python/apikeys/__init__.py`) re-exports everything
//! here and adds the `str` enums `Role`, `KeyKind` and `AccessLevel`.
//!
//! Decisions:
//! - Times are timezone-aware UTC `datetime`s, exact to the millisecond (the
//!   core's resolution); a naive `datetime` is an `InvalidInput`.
//! - Strings with lone surrogates are an `InvalidInput` naming the argument,
//!   except a presented token, which is simply not a key (`Unauthorized`).
//! - The GIL is released around every management call (they draw randomness,
//!   scan an account or write) and around `authenticate` when the store can
//!   block. With the in-memory store `authenticate` keeps the GIL: it never
//!   blocks for long, and releasing and taking the GIL back costs more than
//!   the lookup itself (see `docs/python.md`).
//! - A `Keyring` is safe to share between threads (the core is `Sync`; every
//!   class here is immutable).
//! - Wrong argument types raise `TypeError: argument 'x' must be str, not int`
//!   on every Python version (PyO3's own message names the argument only in
//!   a note, and only on 3.11+), so arguments are taken as `PyAny` and
//!   converted here. `None` for an optional argument means its default.
//! - Secrets: only `IssuedKey.secret` returns a key; no `repr` shows one.
//! - Durations (`grace`, `rotation_quiet`, `older_than`) are seconds (`int`,
//!   `float`) or a `timedelta`, like `Limit`'s window (`convert::duration`);
//!   their bounds are the core's.
//! - A record's rotation is an object (`KeyRecord.rotation`, like
//!   `KeyRecord.disabled`), with `rotated_to`/`rotated_from` on the record as
//!   in Rust. The audit query is keyword arguments of `audit_records` (module
//!   `audit`). The caller's context is a `CallContext` an `Actor` carries.
//! - `authenticate(…, remote_address=, path=)` hands the core the strings
//!   borrowed (`Keyring::authenticate_from`); only a written last use copies them.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDelta, PyDeltaAccess, PyList, PyString};

use apikeys::{
    AccessLevel, IssuedKey as CoreIssued, KeyRecord as CoreRecord, NewKey, Request, Secret,
};

mod audit;
mod convert;
mod endpoint;
mod errors;
mod http;
mod limits;
mod stores;
mod webhooks;

use audit::{AuditEvent, AuditPage, CallContext, FieldChange};
use convert::{opt_datetime, text};

/// Who asks for a management action: a user of an account, with their role.
#[pyclass(frozen, eq, hash, module = "apikeys")]
#[derive(PartialEq, Eq, Hash)]
pub struct Actor(apikeys::Actor);

#[pymethods]
impl Actor {
    #[new]
    #[pyo3(signature = (account, user, role, *, context = None))]
    fn new(
        account: &Bound<'_, PyAny>,
        user: &Bound<'_, PyAny>,
        role: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let actor = apikeys::Actor::new(
            text(account, "account")?,
            text(user, "user")?,
            convert::role(role)?,
        );
        Ok(Actor(match context.filter(|v| !v.is_none()) {
            Some(c) => actor.with_context(
                convert::instance::<CallContext>(c, "context")?
                    .get()
                    .0
                    .clone(),
            ),
            None => actor,
        }))
    }
    /// The same actor, calling with this context (kept in the audit records
    /// of its calls): `admin.with_context(CallContext(request_id=...))` per request.
    fn with_context(&self, context: &Bound<'_, PyAny>) -> PyResult<Actor> {
        let c = convert::instance::<CallContext>(context, "context")?.get();
        Ok(Actor(self.0.clone().with_context(c.0.clone())))
    }
    /// The account the user acts in.
    #[getter]
    fn account(&self) -> &str {
        &self.0.account
    }
    /// The user's id.
    #[getter]
    fn user(&self) -> &str {
        &self.0.user
    }
    /// The user's role (an `apikeys.Role`).
    #[getter]
    fn role<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::role_obj(py, self.0.role)
    }
    /// How the actor's calls reached the application (empty unless given).
    #[getter]
    fn context(&self) -> CallContext {
        CallContext(self.0.context.clone())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let context = if self.0.context.is_empty() {
            String::new()
        } else {
            format!(
                ", context={}",
                CallContext(self.0.context.clone()).__repr__(py)
            )
        };
        format!(
            "Actor({}, {}, {}{context})",
            convert::repr(py, &self.0.account),
            convert::repr(py, &self.0.user),
            convert::repr(py, self.0.role.as_str())
        )
    }
}

/// What an account's plan includes. An account never configured has both.
#[pyclass(frozen, eq, hash, module = "apikeys")]
#[derive(PartialEq, Eq, Hash)]
pub struct AccountSettings(apikeys::AccountSettings);

#[pymethods]
impl AccountSettings {
    #[new]
    #[pyo3(
        signature = (*, rest_api = None, advanced_permissions = None),
        text_signature = "(*, rest_api=True, advanced_permissions=True)"
    )]
    fn new(
        rest_api: Option<&Bound<'_, PyAny>>,
        advanced_permissions: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let flag =
            |v: Option<&Bound<'_, PyAny>>, field| v.map_or(Ok(true), |v| convert::flag(v, field));
        Ok(AccountSettings(apikeys::AccountSettings {
            rest_api: flag(rest_api, "rest_api")?,
            advanced_permissions: flag(advanced_permissions, "advanced_permissions")?,
        }))
    }
    /// Whether the plan includes the REST API (false on a legacy plan).
    #[getter]
    fn rest_api(&self) -> bool {
        self.0.rest_api
    }
    /// Whether the plan includes Advanced Permissions (needed for user tokens).
    #[getter]
    fn advanced_permissions(&self) -> bool {
        self.0.advanced_permissions
    }
    fn __repr__(&self) -> String {
        let b = |v: bool| if v { "True" } else { "False" };
        format!(
            "AccountSettings(rest_api={}, advanced_permissions={})",
            b(self.0.rest_api),
            b(self.0.advanced_permissions)
        )
    }
}

/// What the keyring knows of a user who owns (or owned) user tokens.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq, Eq)]
pub struct UserState(apikeys::UserState);

#[pymethods]
impl UserState {
    /// The user's current role.
    #[getter]
    fn role<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::role_obj(py, self.0.role)
    }
    /// Whether the user was removed from the account.
    #[getter]
    fn removed(&self) -> bool {
        self.0.removed
    }
    fn __repr__(&self) -> String {
        format!(
            "UserState(role='{}', removed={})",
            self.0.role,
            if self.0.removed { "True" } else { "False" }
        )
    }
}

/// Everything kept about one key; never the key itself.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq, Eq)]
pub struct KeyRecord(CoreRecord);

#[pymethods]
impl KeyRecord {
    /// The key's public id (`P` and 13 characters).
    #[getter]
    fn id(&self) -> String {
        self.0.id.to_string()
    }
    /// The account the key belongs to.
    #[getter]
    fn account(&self) -> &str {
        &self.0.account
    }
    /// The kind of key (an `apikeys.KeyKind`).
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::kind_obj(py, self.0.kind)
    }
    /// The description given when it was made.
    #[getter]
    fn description(&self) -> &str {
        &self.0.description
    }
    /// Full access or read-only (an `apikeys.AccessLevel`).
    #[getter]
    fn access<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::access_obj(py, self.0.access)
    }
    /// Whether this is a read-only general key.
    #[getter]
    fn read_only(&self) -> bool {
        self.0.access == AccessLevel::ReadOnly
    }
    /// The user a user token belongs to.
    #[getter]
    fn owner(&self) -> Option<&str> {
        self.0.owner.as_deref()
    }
    /// The service (integration key) or orchestration (routing key).
    #[getter]
    fn target(&self) -> Option<&str> {
        self.0.target.as_deref()
    }
    /// The scopes of a scoped token (`"incidents.write"` …).
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.0.scopes.iter().map(ToString::to_string).collect()
    }
    /// When it was made (UTC).
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::datetime(py, self.0.created_at)
    }
    /// The user who made it.
    #[getter]
    fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// The API version it was made for (`"v2"`).
    #[getter]
    fn api_version(&self) -> &'static str {
        self.0.api_version.as_str()
    }
    /// Who disabled the key and when, while it is disabled; `None` otherwise.
    #[getter]
    fn disabled(&self) -> Option<Disabled> {
        self.0.disabled.as_deref().cloned().map(Disabled)
    }
    /// The last successful authentication (to about a minute; UTC).
    #[getter]
    fn last_used_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.0.last_used_at)
    }
    /// When the key stops working (UTC), if ever.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.0.expires_at)
    }
    /// The key's last four characters, for display.
    #[getter]
    fn hint(&self) -> &str {
        self.0.hint.as_str()
    }
    /// Where the key was last used from, when the request said (an
    /// `apikeys.UsePlace`, written with `last_used_at`); `None` otherwise.
    #[getter]
    fn last_used_from(&self) -> Option<UsePlace> {
        self.0.last_used_from.as_deref().cloned().map(UsePlace)
    }
    /// The key's place in a rotation (an `apikeys.Rotation`), if it was ever
    /// rotated or made by one; `None` otherwise.
    #[getter]
    fn rotation(&self) -> Option<Rotation> {
        self.0.rotation.as_deref().cloned().map(Rotation)
    }
    /// The id of the key that replaces this one, if it was rotated.
    #[getter]
    fn rotated_to(&self) -> Option<String> {
        self.0.rotated_to().map(|k| k.to_string())
    }
    /// The id of the key this one replaced, if a rotation made it.
    #[getter]
    fn rotated_from(&self) -> Option<String> {
        self.0.rotated_from().map(|k| k.to_string())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "KeyRecord(id='{}', kind='{}', account={}, description={}, access='{}', disabled={}, hint={})",
            self.0.id,
            self.0.kind,
            convert::repr(py, &self.0.account),
            convert::repr(py, &self.0.description),
            self.0.access.as_str(),
            if self.0.disabled.is_some() {
                "True"
            } else {
                "False"
            },
            convert::repr(py, self.0.hint.as_str()),
        )
    }
}

/// Who disabled a key, and when.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq, Eq)]
pub struct Disabled(apikeys::Disabled);

#[pymethods]
impl Disabled {
    /// The user who disabled it (`"system:offboarding"` when its owner was removed).
    #[getter]
    fn by(&self) -> &str {
        &self.0.by
    }
    /// When (UTC).
    #[getter]
    fn at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::datetime(py, self.0.at)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Disabled(by={}, at={})",
            convert::repr(py, &self.0.by),
            self.at(py)?.repr()?
        ))
    }
}

/// A key's place in a rotation. On the key being replaced (`rotated_to`
/// set) it says until when that key still works: until `overlap_until` at
/// the latest, and no longer once traffic has moved (the new key used, this
/// one then unused for `quiet` seconds). On the new key only `rotated_from` is set.
#[pyclass(frozen, eq, module = "apikeys")]
#[derive(PartialEq, Eq)]
pub struct Rotation(apikeys::Rotation);

#[pymethods]
impl Rotation {
    /// The id of the key this one replaced.
    #[getter]
    fn rotated_from(&self) -> Option<String> {
        self.0.rotated_from.map(|k| k.to_string())
    }
    /// The id of the key that replaces this one.
    #[getter]
    fn rotated_to(&self) -> Option<String> {
        self.0.rotated_to.map(|k| k.to_string())
    }
    /// When this key was rotated (UTC).
    #[getter]
    fn rotated_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.0.rotated_at)
    }
    /// The latest moment this (replaced) key works (UTC): the rotation's
    /// grace, never past the key's expiry; the moment of `end_rotation` if that ended it.
    #[getter]
    fn overlap_until<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.0.overlap_until)
    }
    /// How long, in seconds, this key must go unused after the new key's
    /// first use for the overlap to end early (the keyring's `rotation_quiet`
    /// when it was rotated).
    #[getter]
    fn quiet(&self) -> f64 {
        self.0.quiet_ms as f64 / 1000.0
    }
    /// When the new key was first seen in use (UTC).
    #[getter]
    fn successor_used_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        opt_datetime(py, self.0.successor_used_at)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let until = match self.overlap_until(py)? {
            Some(t) => t.repr()?.to_string(),
            None => "None".to_owned(),
        };
        Ok(format!(
            "Rotation(rotated_from={}, rotated_to={}, overlap_until={until})",
            convert::repr_opt(py, self.rotated_from()),
            convert::repr_opt(py, self.rotated_to()),
        ))
    }
}

/// Where a request came from: the caller's address, the method and the path
/// (without its query string). Never holds a key: values shaped like one are
/// kept as `"(redacted)"`.
#[pyclass(frozen, eq, hash, module = "apikeys")]
#[derive(PartialEq, Eq, Hash)]
pub struct UsePlace(apikeys::UsePlace);

#[pymethods]
impl UsePlace {
    /// The caller's network address.
    #[getter]
    fn remote_address(&self) -> Option<&str> {
        self.0.remote_address.as_deref()
    }
    /// The HTTP method (`"GET"` …; `"POST"` for the Events API).
    #[getter]
    fn method(&self) -> Option<&str> {
        self.0.method.as_deref()
    }
    /// The request's path, without its query string.
    #[getter]
    fn path(&self) -> Option<&str> {
        self.0.path.as_deref()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "UsePlace(remote_address={}, method={}, path={})",
            convert::repr_opt(py, self.remote_address()),
            convert::repr_opt(py, self.method()),
            convert::repr_opt(py, self.path())
        )
    }
}

/// A key just made: the key itself (shown once, through `.secret`) and its record.
#[pyclass(frozen, module = "apikeys")]
pub struct IssuedKey {
    secret: Secret,
    record: Py<KeyRecord>,
}

impl IssuedKey {
    fn wrap(py: Python<'_>, issued: CoreIssued) -> PyResult<IssuedKey> {
        let (secret, record) = issued.into_parts();
        Ok(IssuedKey {
            secret,
            record: Py::new(py, KeyRecord(record))?,
        })
    }
}

#[pymethods]
impl IssuedKey {
    /// The key. Hand it to its user once; it cannot be shown again.
    #[getter]
    fn secret(&self) -> &str {
        self.secret.expose()
    }
    /// What is stored about the key.
    #[getter]
    fn record(&self, py: Python<'_>) -> Py<KeyRecord> {
        self.record.clone_ref(py)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let r = &self.record.get().0;
        format!(
            "IssuedKey(id='{}', kind='{}', account={}, secret=<hidden>)",
            r.id,
            r.kind,
            convert::repr(py, &r.account)
        )
    }
}

/// Who a request was authenticated as.
#[pyclass(frozen, module = "apikeys")]
pub struct Principal(apikeys::Principal);

#[pymethods]
impl Principal {
    /// The key's id.
    #[getter]
    fn key_id(&self) -> String {
        self.0.key_id().to_string()
    }
    /// The key's kind (an `apikeys.KeyKind`).
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::kind_obj(py, self.0.kind())
    }
    /// The account.
    #[getter]
    fn account(&self) -> &str {
        self.0.account()
    }
    /// The owner of a user token.
    #[getter]
    fn owner(&self) -> Option<&str> {
        self.0.owner()
    }
    /// For a user token: the role it acted with (its owner's role at this request).
    #[getter]
    fn role<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        convert::opt_role_obj(py, self.0.role())
    }
    /// Full access or read-only (an `apikeys.AccessLevel`).
    #[getter]
    fn access<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::access_obj(py, self.0.access())
    }
    /// The scopes of a scoped token.
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.0.scopes().iter().map(ToString::to_string).collect()
    }
    /// The service or orchestration of an Events key.
    #[getter]
    fn target(&self) -> Option<&str> {
        self.0.target()
    }
    /// The request's standing against its rate limit (`None` without a limit).
    #[getter]
    fn rate_limit(&self) -> Option<limits::RateLimitStatus> {
        self.0.rate_limit().map(limits::RateLimitStatus::new)
    }
    /// The key's whole record as it was at this request.
    #[getter]
    fn record(&self) -> KeyRecord {
        KeyRecord(self.0.record().clone())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Principal(key_id='{}', kind='{}', account={})",
            self.0.key_id(),
            self.0.kind(),
            convert::repr(py, self.0.account())
        )
    }
}

/// An in-memory key store; pass one to several `Keyring`s to share it.
#[pyclass(frozen, module = "apikeys")]
pub struct MemoryStore(Arc<apikeys::MemoryStore>);

#[pymethods]
impl MemoryStore {
    #[new]
    fn new() -> Self {
        MemoryStore(Arc::new(apikeys::MemoryStore::new()))
    }
    /// The number of keys stored.
    fn __len__(&self) -> usize {
        self.0.len()
    }
    fn __repr__(&self) -> String {
        format!("MemoryStore(<{} keys>)", self.0.len())
    }
}

/// A clock that moves only when told to, for tests of expiry and last use.
#[pyclass(frozen, module = "apikeys")]
pub struct ManualClock(apikeys::ManualClock);

#[pymethods]
impl ManualClock {
    #[new]
    fn new(start: &Bound<'_, PyAny>) -> PyResult<Self> {
        let start = convert::opt_timestamp(Some(start), "start")?
            .ok_or_else(|| convert::wrong_type(start, "start", "datetime.datetime"))?;
        Ok(ManualClock(apikeys::ManualClock::new(start)))
    }
    /// Move the clock forward by `delta` (a non-negative `timedelta`).
    fn advance(&self, py: Python<'_>, delta: &Bound<'_, PyAny>) -> PyResult<()> {
        let delta = delta
            .cast::<PyDelta>()
            .map_err(|_| convert::wrong_type(delta, "delta", "datetime.timedelta"))?;
        let ms = i64::from(delta.get_days()) * 86_400_000
            + i64::from(delta.get_seconds()) * 1000
            + i64::from(delta.get_microseconds()) / 1000;
        let ms =
            u64::try_from(ms).map_err(|_| errors::invalid(py, "delta", "must not be negative"))?;
        // The clock must stay at a time a `datetime` can show, or every key
        // made afterwards would carry times that cannot be read back.
        let now = apikeys::Clock::now(&self.0).unix_millis();
        if now.saturating_add(ms) > convert::MAX_MILLIS.unsigned_abs() {
            return Err(errors::invalid(
                py,
                "delta",
                "would move the clock past 9999-12-31T23:59:59.999Z",
            ));
        }
        self.0.advance(std::time::Duration::from_millis(ms));
        Ok(())
    }
    /// Set the time.
    fn set(&self, at: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = convert::opt_timestamp(Some(at), "at")?
            .ok_or_else(|| convert::wrong_type(at, "at", "datetime.datetime"))?;
        self.0.set(t);
        Ok(())
    }
    /// The clock's time (UTC).
    fn now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::datetime(py, apikeys::Clock::now(&self.0))
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("ManualClock({})", self.now(py)?.repr()?))
    }
}

/// Issues, manages and checks API keys. Safe to share between threads.
#[pyclass(frozen, module = "apikeys")]
pub struct Keyring {
    /// Shared with the endpoints mounted on it (`apikeys.asgi.management_app` …).
    inner: Arc<apikeys::Keyring>,
    /// Whether the store can block (then `authenticate` releases the GIL too).
    blocking_store: bool,
    /// `"memory"`, `"sqlite"` or `"postgres"`.
    store_kind: &'static str,
}

impl Keyring {
    /// `authenticate`, from where the request came when the caller said (a
    /// request that does not say leaves the key's last place as it was).
    fn check(
        &self,
        token: &str,
        request: &Request,
        address: Option<&str>,
        path: Option<&str>,
    ) -> apikeys::Result<apikeys::Principal> {
        if address.is_none() && path.is_none() {
            return self.inner.authenticate(token, request);
        }
        self.inner
            .authenticate_from(token, request, &origin(&address, path))
    }

    /// `authenticate` with `remote_address` or `path` given (either may be
    /// `None` as well): kept out of `authenticate` itself, so that the
    /// common call, without a place, stays small enough to be inlined into
    /// pyo3's wrapper as it was before the place existed.
    #[inline(never)]
    fn authenticate_placed(
        &self,
        py: Python<'_>,
        token: &str,
        request: &Request,
        remote_address: Option<&Bound<'_, PyAny>>,
        path: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<apikeys::Result<apikeys::Principal>> {
        let address = convert::opt_note(remote_address, "remote_address")?;
        let path = convert::opt_note(path, "path")?;
        let (address, path) = (address.as_deref(), path.as_deref());
        Ok(if self.blocking_store {
            py.detach(|| self.check(token, request, address, path))
        } else {
            self.check(token, request, address, path)
        })
    }

    /// `try_authenticate`, as `check`.
    fn try_check(
        &self,
        token: &str,
        request: &Request,
        address: Option<&str>,
        path: Option<&str>,
    ) -> Option<apikeys::Result<apikeys::Principal>> {
        if address.is_none() && path.is_none() {
            return self.inner.try_authenticate(token, request);
        }
        self.inner
            .try_authenticate_from(token, request, &origin(&address, path))
    }

    /// Run a management call without the GIL and convert its result.
    fn manage<'py, T, U>(
        &self,
        py: Python<'py>,
        call: impl FnOnce(&apikeys::Keyring) -> apikeys::Result<T> + Send,
        wrap: impl FnOnce(Python<'py>, T) -> PyResult<U>,
    ) -> PyResult<U>
    where
        T: Send,
    {
        let inner = &self.inner;
        match py.detach(|| call(inner)) {
            Ok(v) => wrap(py, v),
            Err(e) => Err(errors::to_py(py, e)),
        }
    }

    fn create(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        spec: NewKey,
        expires_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IssuedKey> {
        let spec = match convert::opt_timestamp(expires_at, "expires_at")? {
            Some(t) => spec.expires_at(t),
            None => spec,
        };
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        self.manage(py, |k| k.create(actor, spec), IssuedKey::wrap)
    }
}

fn record(_py: Python<'_>, r: CoreRecord) -> PyResult<KeyRecord> {
    Ok(KeyRecord(r))
}

#[pymethods]
impl Keyring {
    #[new]
    #[pyo3(signature = (store = None, *, pepper = None, clock = None, rate_limits = None, rate_limiter = None, audit_capacity = None, rotation_quiet = None, metrics = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: Option<&Bound<'_, PyAny>>,
        pepper: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
        rate_limits: Option<&Bound<'_, PyAny>>,
        rate_limiter: Option<&Bound<'_, PyAny>>,
        audit_capacity: Option<&Bound<'_, PyAny>>,
        rotation_quiet: Option<&Bound<'_, PyAny>>,
        metrics: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut b = apikeys::Keyring::builder();
        let mut store_kind = "memory";
        if let Some(s) = store.filter(|v| !v.is_none()) {
            let shared: Arc<dyn apikeys::KeyStore> = if let Ok(m) = s.cast::<MemoryStore>() {
                m.get().0.clone()
            } else if let Ok(q) = s.cast::<stores::SqliteStore>() {
                store_kind = "sqlite";
                q.get().0.clone()
            } else if let Ok(q) = s.cast::<stores::PostgresStore>() {
                store_kind = "postgres";
                q.get().0.clone()
            } else {
                return Err(convert::wrong_type(
                    s,
                    "store",
                    "MemoryStore, SqliteStore or PostgresStore",
                ));
            };
            b = b.shared_store(shared);
        }
        if let Some(p) = pepper.filter(|v| !v.is_none()) {
            let p = p
                .cast::<PyBytes>()
                .map_err(|_| convert::wrong_type(p, "pepper", "bytes"))?;
            b = b.pepper(p.as_bytes());
        }
        if let Some(c) = clock.filter(|v| !v.is_none()) {
            b = b.clock(
                convert::instance::<ManualClock>(c, "clock")?
                    .get()
                    .0
                    .clone(),
            );
        }
        if let Some(l) = rate_limits.filter(|v| !v.is_none()) {
            b = b.rate_limits(
                convert::instance::<limits::RateLimits>(l, "rate_limits")?
                    .get()
                    .0
                    .clone(),
            );
        }
        if let Some(l) = rate_limiter.filter(|v| !v.is_none()) {
            let redis = convert::instance::<limits::RedisRateLimiter>(l, "rate_limiter")?;
            b = b.rate_limiter(redis.get().0.clone());
        }
        if let Some(cap) = audit_capacity.filter(|v| !v.is_none()) {
            // How many audit events the in-memory trail keeps (default 10,000).
            if !cap.is_instance_of::<pyo3::types::PyInt>()
                || cap.is_instance_of::<pyo3::types::PyBool>()
            {
                return Err(convert::wrong_type(cap, "audit_capacity", "int"));
            }
            let n = cap
                .extract::<u64>()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    errors::invalid(py, "audit_capacity", "must be between 1 and 4294967295")
                })?;
            b = b.audit_sink(Arc::new(apikeys::MemoryAuditLog::with_capacity(n as usize)));
        }
        if let Some(q) = rotation_quiet.filter(|v| !v.is_none()) {
            // How long a rotated key must go unused, once its successor is
            // used, for the overlap to end early (default 15 minutes).
            b = b.rotation_quiet(convert::duration(q, "rotation_quiet")?);
        }
        if let Some(m) = metrics.filter(|v| !v.is_none()) {
            // Verification metrics (docs/design.md §12): counted in the core.
            if convert::flag(m, "metrics")? {
                b = b.metrics(Arc::new(apikeys::AuthMetrics::new()));
            }
        }
        let inner = b.build().map_err(|e| errors::to_py(py, e))?;
        // The core says whether a check may wait on I/O (then the GIL is
        // released around it); asked once, it never changes.
        Ok(Keyring {
            blocking_store: inner.may_block(),
            store_kind,
            inner: Arc::new(inner),
        })
    }

    /// Make a general access key (Owner or Admin); read-only if `read_only`.
    #[pyo3(
        signature = (actor, description, *, read_only = None, expires_at = None),
        text_signature = "($self, actor, description, *, read_only=False, expires_at=None)"
    )]
    fn create_general_key(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        read_only: Option<&Bound<'_, PyAny>>,
        expires_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IssuedKey> {
        let read_only = read_only.map_or(Ok(false), |v| convert::flag(v, "read_only"))?;
        let access = if read_only {
            AccessLevel::ReadOnly
        } else {
            AccessLevel::FullAccess
        };
        let spec = NewKey::general(text(description, "description")?, access);
        self.create(py, actor, spec, expires_at)
    }

    /// Make a user token for the actor, acting with the actor's current role.
    #[pyo3(signature = (actor, description, *, expires_at = None))]
    fn create_user_token(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        expires_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IssuedKey> {
        let spec = NewKey::user_token(text(description, "description")?);
        self.create(py, actor, spec, expires_at)
    }

    /// Make an Events API integration key for a service (Manager or above).
    #[pyo3(signature = (actor, service_id, description, *, expires_at = None))]
    fn create_integration_key(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        service_id: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        expires_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IssuedKey> {
        let spec = NewKey::integration(
            text(service_id, "service_id")?,
            text(description, "description")?,
        );
        self.create(py, actor, spec, expires_at)
    }

    /// Make a routing key for an event orchestration (Manager or above).
    #[pyo3(signature = (actor, orchestration_id, description, *, expires_at = None))]
    fn create_routing_key(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        orchestration_id: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        expires_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IssuedKey> {
        let spec = NewKey::routing(
            text(orchestration_id, "orchestration_id")?,
            text(description, "description")?,
        );
        self.create(py, actor, spec, expires_at)
    }

    /// Make a scoped token (Manager or above) carrying `scopes` (`"incidents.write"` …).
    #[pyo3(signature = (actor, description, scopes, *, expires_at = None))]
    fn create_scoped_token(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        description: &Bound<'_, PyAny>,
        scopes: &Bound<'_, PyAny>,
        expires_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<IssuedKey> {
        // Any iterable of strings but a string itself (which would be split
        // into characters).
        if scopes.is_instance_of::<PyString>() {
            return Err(convert::wrong_type(scopes, "scopes", "a list of str"));
        }
        let items = scopes
            .try_iter()
            .map_err(|_| convert::wrong_type(scopes, "scopes", "a list of str"))?
            .collect::<PyResult<Vec<_>>>()?;
        let scopes = items
            .iter()
            .map(|s| text(s, "scopes"))
            .collect::<PyResult<Vec<&str>>>()?;
        let spec = NewKey::scoped(text(description, "description")?, &scopes);
        self.create(py, actor, spec, expires_at)
    }

    /// Disable a general key (Owner or Admin); it stops working at once.
    fn disable(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        key_id: &Bound<'_, PyAny>,
    ) -> PyResult<KeyRecord> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let id = text(key_id, "key_id")?;
        self.manage(py, |k| k.disable(actor, id), record)
    }

    /// Enable a disabled general key (Owner or Admin).
    fn enable(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        key_id: &Bound<'_, PyAny>,
    ) -> PyResult<KeyRecord> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let id = text(key_id, "key_id")?;
        self.manage(py, |k| k.enable(actor, id), record)
    }

    /// Delete a key for good; returns the record it had.
    fn delete(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        key_id: &Bound<'_, PyAny>,
    ) -> PyResult<KeyRecord> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let id = text(key_id, "key_id")?;
        self.manage(py, |k| k.delete(actor, id), record)
    }

    /// Replace a key by a new one with the same settings and return the new
    /// key, once, like a create. The old key keeps working until the first
    /// of: `grace` (seconds or a `timedelta`) from now, never past its own
    /// expiry; the moment traffic has moved (the new key used, the old one
    /// then unused for the keyring's `rotation_quiet`); `end_rotation`.
    fn rotate(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        key_id: &Bound<'_, PyAny>,
        grace: &Bound<'_, PyAny>,
    ) -> PyResult<IssuedKey> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let id = text(key_id, "key_id")?;
        let grace = convert::duration(grace, "grace")?;
        self.manage(py, |k| k.rotate(actor, id, grace), IssuedKey::wrap)
    }

    /// End a rotation's overlap now: the old key (`key_id`, the one that was
    /// rotated) stops working at once; returns its record.
    fn end_rotation(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        key_id: &Bound<'_, PyAny>,
    ) -> PyResult<KeyRecord> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let id = text(key_id, "key_id")?;
        self.manage(py, |k| k.end_rotation(actor, id), record)
    }

    /// One page of an account's audit records, newest first: the durable
    /// trail of a `SqliteStore` or `PostgresStore`, the in-memory trail
    /// otherwise. `since` (inclusive, default 24 hours before `until`) and
    /// `until` (exclusive, default now) are aware datetimes at most 31 days
    /// apart; `limit` is 1 to 1,000; `cursor` is a page's `next_cursor`.
    #[pyo3(
        signature = (account, *, key_id = None, actor = None, actions = None, since = None, until = None, limit = None, cursor = None),
        text_signature = "($self, account, *, key_id=None, actor=None, actions=None, since=None, until=None, limit=100, cursor=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn audit_records(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        key_id: Option<&Bound<'_, PyAny>>,
        actor: Option<&Bound<'_, PyAny>>,
        actions: Option<&Bound<'_, PyAny>>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
        cursor: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<AuditPage> {
        let query = audit::query(
            py, account, key_id, actor, actions, since, until, limit, cursor,
        )?;
        self.manage(py, |k| k.audit_records(&query), AuditPage::wrap)
    }

    /// Forget the audit records older than `older_than` (seconds or a
    /// `timedelta`); returns how many were forgotten.
    fn prune_audit(&self, py: Python<'_>, older_than: &Bound<'_, PyAny>) -> PyResult<usize> {
        let older_than = convert::duration(older_than, "older_than")?;
        self.manage(py, |k| k.prune_audit(older_than), |_, n| Ok(n))
    }

    /// One key's record, if the actor may see it.
    fn get(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        key_id: &Bound<'_, PyAny>,
    ) -> PyResult<KeyRecord> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let id = text(key_id, "key_id")?;
        self.manage(py, |k| k.get(actor, id), record)
    }

    /// Every key of the actor's account that the actor may see, oldest first.
    fn list<'py>(&self, py: Python<'py>, actor: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        self.manage(
            py,
            |k| k.list(actor),
            |py, records| PyList::new(py, records.into_iter().map(KeyRecord)),
        )
    }

    /// Set what an account's plan includes; takes effect on the next request.
    fn set_account(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        settings: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let account = text(account, "account")?;
        let settings = convert::instance::<AccountSettings>(settings, "settings")?
            .get()
            .0;
        self.manage(py, |k| k.set_account(account, settings), |_, ()| Ok(()))
    }

    /// The account's current settings.
    fn account(&self, py: Python<'_>, account: &Bound<'_, PyAny>) -> PyResult<AccountSettings> {
        let account = text(account, "account")?;
        self.manage(py, |k| k.account(account), |_, s| Ok(AccountSettings(s)))
    }

    /// Set a user's current role: their tokens act with it from the next request on.
    fn set_user_role(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        user: &Bound<'_, PyAny>,
        role: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (account, user) = (text(account, "account")?, text(user, "user")?);
        let role = convert::role(role)?;
        self.manage(py, |k| k.set_user_role(account, user, role), |_, ()| Ok(()))
    }

    /// Remove a user (offboarding): all their user tokens stop working and are
    /// disabled. Returns how many were disabled.
    fn remove_user(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        user: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let (account, user) = (text(account, "account")?, text(user, "user")?);
        self.manage(py, |k| k.remove_user(account, user), |_, n| Ok(n))
    }

    /// `set_account` for a person: an Owner or Admin of the actor's account,
    /// by their stored standing, may change its plan; `NotPermitted`
    /// otherwise. Recorded in the audit trail with the actor either way.
    fn set_account_as(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        settings: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let settings = convert::instance::<AccountSettings>(settings, "settings")?
            .get()
            .0;
        self.manage(py, |k| k.set_account_as(actor, settings), |_, ()| Ok(()))
    }

    /// `set_user_role` for a person, in the actor's account: an Owner or
    /// Admin, by their stored standing, may change another user's role; only
    /// an Owner makes an Owner or changes one's role; `NotPermitted`
    /// otherwise. Recorded in the audit trail with the actor either way.
    fn set_user_role_as(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        user: &Bound<'_, PyAny>,
        role: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let user = text(user, "user")?;
        let role = convert::role(role)?;
        self.manage(
            py,
            |k| k.set_user_role_as(actor, user, role),
            |_, ()| Ok(()),
        )
    }

    /// `remove_user` for a person, in the actor's account, by the rule of
    /// `set_user_role_as` (only an Owner removes an Owner); `NotPermitted`
    /// otherwise. Recorded in the audit trail with the actor either way.
    /// Returns how many keys were disabled.
    fn remove_user_as(
        &self,
        py: Python<'_>,
        actor: &Bound<'_, PyAny>,
        user: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let actor = &convert::instance::<Actor>(actor, "actor")?.get().0;
        let user = text(user, "user")?;
        self.manage(py, |k| k.remove_user_as(actor, user), |_, n| Ok(n))
    }

    /// What the keyring knows of a user, or `None`.
    fn user(
        &self,
        py: Python<'_>,
        account: &Bound<'_, PyAny>,
        user: &Bound<'_, PyAny>,
    ) -> PyResult<Option<UserState>> {
        let (account, user) = (text(account, "account")?, text(user, "user")?);
        self.manage(py, |k| k.user(account, user), |_, u| Ok(u.map(UserState)))
    }

    /// Check a presented key against a request; returns who it is or raises
    /// `Unauthorized`, `WrongApi`, `PlanRestricted` or `Forbidden`.
    ///
    /// `api` is `"rest"` or `"events"`; `method` the HTTP method (REST only);
    /// `scope` what the request needs (`"incidents.write"`), if anything.
    ///
    /// `remote_address` and `path` say where the request came from: the key
    /// remembers the place of its last use (`KeyRecord.last_used_from`).
    #[pyo3(
        signature = (token, api = None, method = None, scope = None, *, remote_address = None, path = None),
        text_signature = "($self, token, api='rest', method='GET', scope=None, *, remote_address=None, path=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn authenticate(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        api: Option<&Bound<'_, PyAny>>,
        method: Option<&Bound<'_, PyAny>>,
        scope: Option<&Bound<'_, PyAny>>,
        remote_address: Option<&Bound<'_, PyAny>>,
        path: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Principal> {
        // A string that is not valid UTF-8 cannot be a key: pass it on with
        // replacement characters and let the core refuse it as malformed.
        let token = convert::py_str(token, "token")?.to_string_lossy();
        let request = request_of(py, api, method, scope)?;
        // A call without a place pays nothing for the place's parameters
        // (docs/performance.md, "Bindings: 7aa1ce6 vs f5ccbb6").
        let result = if remote_address.is_none() && path.is_none() {
            if self.blocking_store {
                py.detach(|| self.inner.authenticate(&token, &request))
            } else {
                self.inner.authenticate(&token, &request)
            }
        } else {
            self.authenticate_placed(py, &token, &request, remote_address, path)?
        };
        result.map(Principal).map_err(|e| errors::to_py(py, e))
    }

    /// `authenticate` if it can be answered without waiting on I/O: the same
    /// arguments, the same `Principal` or exception, or `None` when answering
    /// needs a database read (a key not in the store's cache) or a Redis
    /// round trip. `None` never means refused: then call `authenticate`
    /// (in a worker thread, on an event loop). Never releases the GIL (it
    /// is over in about a microsecond); with the in-memory store it always answers.
    #[pyo3(
        signature = (token, api = None, method = None, scope = None, *, remote_address = None, path = None),
        text_signature = "($self, token, api='rest', method='GET', scope=None, *, remote_address=None, path=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn try_authenticate(
        &self,
        py: Python<'_>,
        token: &Bound<'_, PyAny>,
        api: Option<&Bound<'_, PyAny>>,
        method: Option<&Bound<'_, PyAny>>,
        scope: Option<&Bound<'_, PyAny>>,
        remote_address: Option<&Bound<'_, PyAny>>,
        path: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Principal>> {
        let token = convert::py_str(token, "token")?.to_string_lossy();
        let request = request_of(py, api, method, scope)?;
        let answer = if remote_address.is_none() && path.is_none() {
            self.inner.try_authenticate(&token, &request)
        } else {
            let address = convert::opt_note(remote_address, "remote_address")?;
            let path = convert::opt_note(path, "path")?;
            self.try_check(&token, &request, address.as_deref(), path.as_deref())
        };
        match answer {
            None => Ok(None),
            Some(result) => result
                .map(|p| Some(Principal(p)))
                .map_err(|e| errors::to_py(py, e)),
        }
    }

    /// Whether `authenticate` may wait on I/O (the core's
    /// `Keyring::may_block`): true with a `SqliteStore` or `PostgresStore` (a
    /// cache miss reads the database) or a `RedisRateLimiter`, false with the
    /// in-memory store and the in-process limiter. `apikeys.asgi` runs
    /// `authenticate` in a worker thread when this is true, inline otherwise.
    #[getter]
    fn may_block(&self) -> bool {
        self.blocking_store
    }

    /// The kind of store the keys are kept in: `"memory"`, `"sqlite"` or `"postgres"`.
    #[getter]
    fn store_kind(&self) -> &'static str {
        self.store_kind
    }

    /// Whether `authenticate` enforces rate limits (the `rate_limits` argument).
    #[getter]
    fn has_rate_limits(&self) -> bool {
        self.inner.rate_limits().is_some()
    }

    /// Write out what the store holds back (the last-use times a durable
    /// store queues, written every second anyway) and answer how many were
    /// written (0 in memory); call it at a clean shutdown.
    fn flush(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.inner.flush())
            .map_err(|e| errors::to_py(py, e))
    }

    /// Requests refused by the rate limiter so far, per key id (for operators).
    fn rate_limit_rejections(&self) -> std::collections::HashMap<String, u64> {
        self.inner
            .rate_limit_rejections()
            .into_iter()
            .map(|(id, n)| (id.to_string(), n))
            .collect()
    }

    /// The verification metrics so far (docs/design.md §12), or `None` when
    /// the keyring counts none (`Keyring(metrics=True)` counts them): the
    /// bucket bounds in seconds, and per (kind, outcome) with answers:
    /// `(kind, outcome, count, sum_seconds, cumulative_buckets)`, the last
    /// bucket being `+Inf`. `apikeys.prometheus.AuthCollector` reads it.
    #[allow(clippy::type_complexity)]
    fn metrics(
        &self,
    ) -> Option<(
        Vec<f64>,
        Vec<(&'static str, &'static str, u64, f64, Vec<u64>)>,
    )> {
        let snap = self.inner.metrics()?.snapshot();
        let bounds = snap.bucket_bounds().to_vec();
        let series = snap
            .series
            .into_iter()
            .map(|s| (s.kind, s.outcome, s.count, s.sum_seconds, s.buckets))
            .collect();
        Some((bounds, series))
    }

    /// Every audit event the keyring still holds (the last `audit_capacity`, 10,000 by default), oldest first.
    fn audit_trail<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let events = self.inner.audit_trail();
        PyList::new(py, events.into_iter().map(AuditEvent))
    }

    fn __repr__(&self) -> &'static str {
        "Keyring(<keys hidden>)"
    }
}

/// The request `authenticate` checks a key against, from its Python arguments.
fn request_of(
    py: Python<'_>,
    api: Option<&Bound<'_, PyAny>>,
    method: Option<&Bound<'_, PyAny>>,
    scope: Option<&Bound<'_, PyAny>>,
) -> PyResult<Request> {
    let api = api.map_or(Ok("rest"), |a| text(a, "api"))?;
    let mut request = match api {
        "rest" => Request::rest(method.map_or(Ok("GET"), |m| text(m, "method"))?),
        "events" => Request::events(),
        _ => {
            return Err(errors::invalid(py, "api", "must be 'rest' or 'events'"));
        }
    };
    if let Some(scope) = scope.filter(|s| !s.is_none()) {
        request = request
            .with_scope(text(scope, "scope")?)
            .map_err(|e| errors::to_py(py, e))?;
    }
    Ok(request)
}

/// Where a request came from, borrowed from the caller's strings: the core
/// copies it only when it writes the key's last use (once a minute per key).
fn origin<'a>(address: &'a Option<&'a str>, path: Option<&'a str>) -> apikeys::Origin<'a> {
    apikeys::Origin {
        remote_address: address.as_ref().map(|a| a as &dyn std::fmt::Display),
        path,
    }
}

/// `Role.from_string`: the canonical name of a role string or alias.
#[pyfunction]
fn _role_name(role: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    Ok(convert::role(role)?.as_str())
}

#[pymodule]
fn _apikeys(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Keyring>()?;
    m.add_class::<MemoryStore>()?;
    m.add_class::<ManualClock>()?;
    m.add_class::<Actor>()?;
    m.add_class::<AccountSettings>()?;
    m.add_class::<UserState>()?;
    m.add_class::<KeyRecord>()?;
    m.add_class::<Disabled>()?;
    m.add_class::<IssuedKey>()?;
    m.add_class::<Principal>()?;
    m.add_class::<AuditEvent>()?;
    m.add_class::<AuditPage>()?;
    m.add_class::<CallContext>()?;
    m.add_class::<FieldChange>()?;
    m.add_class::<Rotation>()?;
    m.add_class::<UsePlace>()?;
    m.add_class::<limits::Limit>()?;
    m.add_class::<limits::RateLimits>()?;
    m.add_class::<limits::RateLimitStatus>()?;
    m.add_class::<limits::RedisRateLimiter>()?;
    m.add_class::<stores::SqliteStore>()?;
    m.add_class::<stores::PostgresStore>()?;
    m.add_class::<endpoint::PyEndpoint>()?;
    m.add_function(wrap_pyfunction!(endpoint::_management, m)?)?;
    m.add_function(wrap_pyfunction!(endpoint::_secret_scanning, m)?)?;
    m.add_class::<webhooks::WebhookEndpoint>()?;
    m.add_class::<webhooks::WebhookWorker>()?;
    m.add_function(wrap_pyfunction!(webhooks::generate_webhook_secret, m)?)?;
    m.add_function(wrap_pyfunction!(webhooks::verify_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(_role_name, m)?)?;
    m.add_function(wrap_pyfunction!(http::events_routing_key, m)?)?;
    m.add_function(wrap_pyfunction!(http::token_from_authorization, m)?)?;
    m.add(
        "_HTTP_DEFAULT_MAX_EVENT_BYTES",
        apikeys_http::DEFAULT_MAX_EVENT_BYTES,
    )?;
    m.add_function(wrap_pyfunction!(http::_http_rest_token, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_joined_rest_token, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_declared_length, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_routing_key, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_events_check, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_asgi_rest, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_joined_rest_check, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_refusal, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_refusal_for, m)?)?;
    m.add_function(wrap_pyfunction!(http::_http_rate_limit_headers, m)?)?;
    errors::add_to(m)?;
    Ok(())
}
