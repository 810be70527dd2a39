//! Conversions between Python values and the core's types: strings, times and
//! the `str`-valued enums defined in `apikeys/__init__.py`.

use pyo3::PyClass;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyDateTime, PyDelta, PyDeltaAccess, PyString, PyType, PyTzInfo, PyTzInfoAccess,
};

use apikeys::{AccessLevel, KeyKind, Role, Timestamp};

use crate::errors;

const MS_PER_DAY: i64 = 86_400_000;

/// The `TypeError` for an argument of the wrong type, naming the argument.
pub(crate) fn wrong_type(v: &Bound<'_, PyAny>, field: &str, expected: &str) -> PyErr {
    let got = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("argument '{field}' must be {expected}, not {got}"))
}

/// The argument as a `str` object, or a `TypeError` naming it.
pub(crate) fn py_str<'a, 'py>(
    v: &'a Bound<'py, PyAny>,
    field: &str,
) -> PyResult<&'a Bound<'py, PyString>> {
    v.cast::<PyString>()
        .map_err(|_| wrong_type(v, field, "str"))
}

/// A string argument. Lone surrogates cannot be passed on: they give an
/// `InvalidInput` naming the argument.
pub(crate) fn text<'a>(v: &'a Bound<'_, PyAny>, field: &'static str) -> PyResult<&'a str> {
    py_str(v, field)?
        .to_str()
        .map_err(|_| errors::invalid(v.py(), field, "must be valid Unicode (no lone surrogates)"))
}

/// A role argument: one of the role strings (an `apikeys.Role` is one).
pub(crate) fn role(v: &Bound<'_, PyAny>) -> PyResult<Role> {
    Role::parse(text(v, "role")?).map_err(|e| errors::to_py(v.py(), e))
}

/// A `bool` argument (only `True` or `False`).
pub(crate) fn flag(v: &Bound<'_, PyAny>, field: &str) -> PyResult<bool> {
    v.cast::<PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| wrong_type(v, field, "bool"))
}

/// An argument of one of this module's classes.
pub(crate) fn instance<'a, 'py, T: PyClass>(
    v: &'a Bound<'py, PyAny>,
    field: &str,
) -> PyResult<&'a Bound<'py, T>> {
    v.cast::<T>()
        .map_err(|_| wrong_type(v, field, &format!("apikeys.{}", T::NAME)))
}

/// An optional timezone-aware `datetime` argument (`None` for none).
pub(crate) fn opt_timestamp(
    v: Option<&Bound<'_, PyAny>>,
    field: &'static str,
) -> PyResult<Option<Timestamp>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => {
            let dt = v
                .cast::<PyDateTime>()
                .map_err(|_| wrong_type(v, field, "datetime.datetime"))?;
            timestamp(dt, field).map(Some)
        }
    }
}

/// `1970-01-01T00:00:00+00:00`.
fn epoch(py: Python<'_>) -> PyResult<&Bound<'_, PyDateTime>> {
    static EPOCH: PyOnceLock<Py<PyDateTime>> = PyOnceLock::new();
    EPOCH
        .get_or_try_init(py, || {
            let utc = PyTzInfo::utc(py)?;
            Ok::<_, PyErr>(PyDateTime::new(py, 1970, 1, 1, 0, 0, 0, 0, Some(&utc))?.unbind())
        })
        .map(|e| e.bind(py))
}

/// A timestamp as a timezone-aware UTC `datetime` (exact to the millisecond).
pub(crate) fn datetime(py: Python<'_>, t: Timestamp) -> PyResult<Bound<'_, PyAny>> {
    let ms = t.unix_millis();
    let days = i32::try_from(ms / MS_PER_DAY as u64).unwrap_or(i32::MAX);
    let rest = ms % MS_PER_DAY as u64;
    let delta = PyDelta::new(
        py,
        days,
        (rest / 1000) as i32,
        ((rest % 1000) * 1000) as i32,
        false,
    )?;
    epoch(py)?.add(delta)
}

pub(crate) fn opt_datetime(
    py: Python<'_>,
    t: Option<Timestamp>,
) -> PyResult<Option<Bound<'_, PyAny>>> {
    t.map(|t| datetime(py, t)).transpose()
}

/// A timezone-aware `datetime` as a timestamp (milliseconds, rounded down).
/// A naive `datetime` is refused: its meaning depends on the machine's zone.
pub(crate) fn timestamp(dt: &Bound<'_, PyDateTime>, field: &'static str) -> PyResult<Timestamp> {
    let py = dt.py();
    if dt.get_tzinfo().is_none() || dt.call_method0(intern!(py, "utcoffset"))?.is_none() {
        return Err(errors::invalid(
            py,
            field,
            "must be a timezone-aware datetime (e.g. datetime.now(timezone.utc))",
        ));
    }
    let delta = dt.sub(epoch(py)?)?;
    let delta = delta.cast::<PyDelta>()?;
    let ms = i64::from(delta.get_days()) * MS_PER_DAY
        + i64::from(delta.get_seconds()) * 1000
        + i64::from(delta.get_microseconds()) / 1000;
    checked_millis(py, ms, field)
}

/// The earliest time a timestamp holds: 1970-01-01T00:00:00.001Z (the core
/// keeps milliseconds after the epoch, never zero).
pub(crate) const MIN_MILLIS: i64 = 1;
/// The latest time a `datetime` in UTC can show, 9999-12-31T23:59:59.999Z:
/// a later timestamp could be stored but never read back.
pub(crate) const MAX_MILLIS: i64 = 253_402_300_799_999;

/// Milliseconds since the epoch as a timestamp, or an `InvalidInput` naming
/// `field` when they are outside what both sides can represent.
pub(crate) fn checked_millis(py: Python<'_>, ms: i64, field: &'static str) -> PyResult<Timestamp> {
    if !(MIN_MILLIS..=MAX_MILLIS).contains(&ms) {
        return Err(errors::invalid(
            py,
            field,
            "must be between 1970-01-01T00:00:00.001Z and 9999-12-31T23:59:59.999Z",
        ));
    }
    // In range, so positive.
    Ok(Timestamp::from_unix_millis(ms.unsigned_abs()))
}

/// A member of one of the `str` enums of `apikeys/__init__.py`, by value.
fn member<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    class: &str,
    value: &str,
) -> PyResult<Bound<'py, PyAny>> {
    cell.import(py, "apikeys", class)?.call1((value,))
}

/// `apikeys.Role`.
pub(crate) fn role_obj(py: Python<'_>, r: Role) -> PyResult<Bound<'_, PyAny>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    member(py, &CLASS, "Role", r.as_str())
}

pub(crate) fn opt_role_obj(py: Python<'_>, r: Option<Role>) -> PyResult<Option<Bound<'_, PyAny>>> {
    r.map(|r| role_obj(py, r)).transpose()
}

/// `apikeys.KeyKind`.
pub(crate) fn kind_obj(py: Python<'_>, k: KeyKind) -> PyResult<Bound<'_, PyAny>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    member(py, &CLASS, "KeyKind", k.as_str())
}

/// `apikeys.AccessLevel`.
pub(crate) fn access_obj(py: Python<'_>, a: AccessLevel) -> PyResult<Bound<'_, PyAny>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    member(py, &CLASS, "AccessLevel", a.as_str())
}

/// A string's Python `repr()` (for `__repr__`s).
pub(crate) fn repr(py: Python<'_>, s: &str) -> String {
    PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// An optional string's Python `repr()`: `None`, or the string's (for the
/// `__repr__`s of classes with optional text fields).
pub(crate) fn repr_opt(py: Python<'_>, s: Option<impl AsRef<str>>) -> String {
    s.map_or_else(|| "None".to_owned(), |s| repr(py, s.as_ref()))
}

/// A duration argument: seconds as an `int` or a `float`, or a
/// `datetime.timedelta` (as every duration of the binding is given). A
/// negative or non-finite one is an `InvalidInput` naming the argument; one
/// longer than a `Duration` holds is the longest (the core refuses it where it
/// has a bound, and saturates where it has none). Floats are taken to the
/// microsecond (a `timedelta`'s precision), so `0.001` is one millisecond.
pub(crate) fn duration(v: &Bound<'_, PyAny>, field: &'static str) -> PyResult<std::time::Duration> {
    use std::time::Duration;
    let py = v.py();
    let negative = || errors::invalid(py, field, "must not be negative");
    if let Ok(d) = v.cast::<PyDelta>() {
        let micros = i128::from(d.get_days()) * 86_400_000_000
            + i128::from(d.get_seconds()) * 1_000_000
            + i128::from(d.get_microseconds());
        if micros < 0 {
            return Err(negative());
        }
        return Ok(u64::try_from(micros).map_or(Duration::MAX, Duration::from_micros));
    }
    if v.is_instance_of::<PyBool>() {
        return Err(wrong_type(v, field, "float or datetime.timedelta"));
    }
    if v.is_instance_of::<pyo3::types::PyInt>() {
        // Any size: past u64 it is simply the longest.
        if let Ok(secs) = v.extract::<u64>() {
            return Ok(Duration::from_secs(secs));
        }
        let below_zero = v.lt(0i32)?;
        return if below_zero {
            Err(negative())
        } else {
            Ok(Duration::MAX)
        };
    }
    if v.is_instance_of::<pyo3::types::PyFloat>() {
        let secs: f64 = v.extract()?;
        if secs.is_nan() || secs.is_infinite() && secs > 0.0 {
            return Err(errors::invalid(
                py,
                field,
                "must be a finite number of seconds",
            ));
        }
        if secs < 0.0 {
            return Err(negative());
        }
        let micros = (secs * 1e6).round();
        // `u64::MAX as f64` rounds up to 2^64: anything from there on is the longest.
        return Ok(if micros >= u64::MAX as f64 {
            Duration::MAX
        } else {
            Duration::from_micros(micros as u64)
        });
    }
    Err(wrong_type(v, field, "float or datetime.timedelta"))
}

/// An optional string argument that only describes a request (its remote
/// address or path): `None` for none; a string with lone surrogates is kept
/// with replacement characters rather than refused, since refusing it would
/// refuse the request over what is only a note about it.
pub(crate) fn opt_note<'a>(
    v: Option<&'a Bound<'_, PyAny>>,
    field: &str,
) -> PyResult<Option<std::borrow::Cow<'a, str>>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => Ok(Some(py_str(v, field)?.to_string_lossy())),
    }
}
