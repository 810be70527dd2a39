//! Durable stores: `SqliteStore` and `PostgresStore`. Opening one, and every
//! call on it, runs without the GIL (each may wait on the database).

use std::str::FromStr;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::convert::text;
use crate::errors;

fn store_err(py: Python<'_>, e: apikeys::StoreError) -> PyErr {
    errors::to_py(py, apikeys::Error::Store(e))
}

/// Keys in one SQLite file (WAL), shared by every process that opens it.
#[pyclass(frozen, module = "apikeys")]
pub struct SqliteStore(pub(crate) Arc<apikeys_sqlite::SqliteStore>);

#[pymethods]
impl SqliteStore {
    #[new]
    fn new(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Self> {
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
        let store = py
            .detach(|| apikeys_sqlite::SqliteStore::open(&path))
            .map_err(|e| store_err(py, e))?;
        Ok(SqliteStore(Arc::new(store)))
    }
    /// Write out the coalesced last-used times now; returns how many.
    fn flush(&self, py: Python<'_>) -> PyResult<usize> {
        let s = &self.0;
        py.detach(|| s.flush()).map_err(|e| store_err(py, e))
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

/// A URL or connection string that can never connect is `InvalidInput`, not
/// `StoreError`: the caller's mistake, known before any network access (the
/// store crate reports it as `StoreError::Unavailable`, like an unreachable
/// server). Parsed as the driver parses it; the driver's message names the
/// bad option, never its value, so no password reaches the error.
fn check_url(py: Python<'_>, url: &str) -> PyResult<()> {
    let config = postgres::Config::from_str(url).map_err(|e| {
        // "invalid connection string"; its source says what: "invalid value
        // for option `port`", "unknown option `x`", "unexpected EOF".
        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| c.to_string());
        errors::invalid(
            py,
            "url",
            &format!(
                "is not a PostgreSQL URL (postgres://user:password@host:port/dbname) or \
                 key=value connection string: {why}"
            ),
        )
    })?;
    // What the driver only checks when connecting.
    let hosts = config.get_hosts().len().max(config.get_hostaddrs().len());
    if hosts == 0 {
        return Err(errors::invalid(py, "url", "names no host"));
    }
    if !config.get_hosts().is_empty()
        && !config.get_hostaddrs().is_empty()
        && config.get_hosts().len() != config.get_hostaddrs().len()
    {
        return Err(errors::invalid(
            py,
            "url",
            "has a different number of hosts and hostaddrs",
        ));
    }
    if config.get_ports().len() > 1 && config.get_ports().len() != hosts {
        return Err(errors::invalid(
            py,
            "url",
            "has a different number of ports and hosts",
        ));
    }
    Ok(())
}

/// The schema rule of `apikeys_postgres` (`PostgresOptions::schema`), checked
/// here so a bad name is `InvalidInput` (the store crate reports it as
/// `StoreError::Unavailable`). Keep in step with that crate's rule.
fn check_schema(py: Python<'_>, s: &str) -> PyResult<()> {
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(errors::invalid(
            py,
            "schema",
            "must be 1 to 40 lowercase ASCII letters, digits or '_', starting with a letter",
        ))
    }
}

/// Keys in PostgreSQL, shared by every process and machine that connects.
/// `schema` puts the tables in that schema (created if missing).
#[pyclass(frozen, module = "apikeys")]
pub struct PostgresStore(pub(crate) Arc<apikeys_postgres::PostgresStore>);

#[pymethods]
impl PostgresStore {
    #[new]
    #[pyo3(signature = (url, *, schema = None))]
    fn new(
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let url = text(url, "url")?.to_owned();
        check_url(py, &url)?;
        let mut opts = apikeys_postgres::PostgresStore::options();
        if let Some(s) = schema.filter(|v| !v.is_none()) {
            let s = text(s, "schema")?;
            check_schema(py, s)?;
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
    fn __repr__(&self) -> &'static str {
        // The URL may hold a password: never shown.
        "PostgresStore(<url hidden>)"
    }
}
