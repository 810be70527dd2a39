//! Durable stores: `SqliteStore` and `PostgresStore`. Opening one, and every
//! call on it, runs without the GIL (each may wait on the database).

use std::sync::Arc;

use pyo3::prelude::*;

use crate::convert::text;
use crate::errors;

/// `outbox=True` turns the webhook outbox on for the database
/// (docs/webhooks.md); `None` or `False` leaves the database as it is.
fn outbox_flag(v: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    match v.filter(|v| !v.is_none()) {
        Some(v) => crate::convert::flag(v, "outbox"),
        None => Ok(false),
    }
}

fn store_err(py: Python<'_>, e: apikeys::StoreError) -> PyErr {
    errors::to_py(py, apikeys::Error::Store(e))
}

/// Keys in one SQLite file (WAL), shared by every process that opens it.
///
/// Open each file once per process and share that store between keyrings.
/// Never open the same file with Python's `sqlite3` module in that process,
/// not even to read it: this extension carries its own copy of SQLite, and
/// SQLite's POSIX locks cannot tell two copies in one process apart, so
/// closing the `sqlite3` connection drops the store's locks and can cut its
/// later writes off from the file. Inspect the file from another process
/// (the `sqlite3` command line tool, or `subprocess`).
#[pyclass(frozen, module = "apikeys")]
pub struct SqliteStore(pub(crate) Arc<apikeys_sqlite::SqliteStore>);

#[pymethods]
impl SqliteStore {
    #[new]
    #[pyo3(signature = (path, *, outbox = None))]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        outbox: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let path: std::path::PathBuf = if path.is_instance_of::<pyo3::types::PyString>() {
            text(path, "path")?.into()
        } else {
            let fs = path
                .call_method0("__fspath__")
                .map_err(|_| crate::convert::wrong_type(path, "path", "str or os.PathLike"))?;
            text(&fs, "path")?.into()
        };
        let bytes = path.as_os_str().as_encoded_bytes();
        if bytes.contains(&0) {
            return Err(errors::invalid(py, "path", "contains a NUL character"));
        }
        if bytes.len() > 4096 {
            return Err(errors::invalid(py, "path", "is longer than 4096 bytes"));
        }
        let opts = apikeys_sqlite::SqliteStore::options().outbox(outbox_flag(outbox)?);
        let store = py
            .detach(|| opts.open(&path))
            .map_err(|e| store_err(py, e))?;
        Ok(SqliteStore(Arc::new(store)))
    }
    /// Write out the coalesced last-used times now; returns how many.
    fn flush(&self, py: Python<'_>) -> PyResult<usize> {
        let s = &self.0;
        py.detach(|| s.flush()).map_err(|e| store_err(py, e))
    }
    /// Turn the webhook outbox on or off for the file (every process).
    fn set_outbox(&self, py: Python<'_>, on: &Bound<'_, PyAny>) -> PyResult<()> {
        let on = crate::convert::flag(on, "on")?;
        let s = &self.0;
        py.detach(|| s.set_outbox(on)).map_err(|e| store_err(py, e))
    }
    /// The file's path.
    #[getter]
    fn path(&self) -> String {
        self.0.path().display().to_string()
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "SqliteStore({})",
            crate::convert::repr(py, &self.0.path().display().to_string())
        )
    }
}

/// A URL or schema that can never work is `InvalidInput`, not `StoreError`:
/// the caller's mistake, known before any network access (the store crate's
/// own connect reports it as `StoreError::Unavailable`, like an unreachable
/// server). The rule is the store crate's; its message never shows the value.
fn invalid_setting(py: Python<'_>, e: apikeys_postgres::BadSetting) -> PyErr {
    errors::invalid(py, e.field, &e.reason)
}

/// Keys in PostgreSQL, shared by every process and machine that connects.
/// `schema` puts the tables in that schema (created if missing).
#[pyclass(frozen, module = "apikeys")]
pub struct PostgresStore(pub(crate) Arc<apikeys_postgres::PostgresStore>);

#[pymethods]
impl PostgresStore {
    #[new]
    #[pyo3(signature = (url, *, schema = None, outbox = None))]
    fn new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        schema: Option<&Bound<'_, PyAny>>,
        outbox: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let url = text(url, "url")?.to_owned();
        apikeys_postgres::check_url(&url).map_err(|e| invalid_setting(py, e))?;
        let mut opts = apikeys_postgres::PostgresStore::options().outbox(outbox_flag(outbox)?);
        if let Some(s) = schema.filter(|v| !v.is_none()) {
            let s = text(s, "schema")?;
            apikeys_postgres::check_schema(s).map_err(|e| invalid_setting(py, e))?;
            opts = opts.schema(s);
        }
        let store = py
            .detach(|| opts.connect(&url))
            .map_err(|e| store_err(py, e))?;
        Ok(PostgresStore(Arc::new(store)))
    }
    /// Write out the coalesced last-used times now; returns how many.
    fn flush(&self, py: Python<'_>) -> PyResult<usize> {
        let s = &self.0;
        py.detach(|| s.flush()).map_err(|e| store_err(py, e))
    }
    /// Turn the webhook outbox on or off for the database (every process).
    fn set_outbox(&self, py: Python<'_>, on: &Bound<'_, PyAny>) -> PyResult<()> {
        let on = crate::convert::flag(on, "on")?;
        let s = &self.0;
        py.detach(|| s.set_outbox(on)).map_err(|e| store_err(py, e))
    }
    fn __repr__(&self) -> &'static str {
        // The URL may hold a password: never shown.
        "PostgresStore(<url hidden>)"
    }
}
