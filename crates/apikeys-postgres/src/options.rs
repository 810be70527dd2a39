//! [`PostgresOptions`]: how to connect a store; and the checks of the
//! settings that can never work ([`check_url`], [`check_schema`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use apikeys::StoreError;
use postgres::Config;

use crate::PostgresStore;

/// How to connect a [`PostgresStore`]; [`PostgresStore::connect`] uses the defaults.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    pub(crate) cache: bool,
    pub(crate) cache_capacity: usize,
    pub(crate) pool_size: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) flush_interval: Duration,
    pub(crate) schema: Option<String>,
    pub(crate) outbox: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            cache: true,
            cache_capacity: 1_000_000,
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            flush_interval: Duration::from_secs(1),
            schema: None,
            outbox: false,
        }
    }
}

impl PostgresOptions {
    /// Whether to cache hot-path lookups in memory (default on). Off, every
    /// `authenticate` queries the server.
    pub fn cache(mut self, on: bool) -> Self {
        self.cache = on;
        self
    }

    /// At most about this many keys cached (default 1,000,000).
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n;
        self
    }

    /// At most this many pooled connections (default 16), besides the one that listens.
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long to wait for a connection before failing with
    /// [`StoreError::Unavailable`] (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How often queued last uses are written (default 1 s).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// Keep the tables in this schema (created if missing) instead of the
    /// connection's default. Lowercase ASCII letters, digits and `_`, at most 40.
    pub fn schema(mut self, name: &str) -> Self {
        self.schema = Some(name.to_owned());
        self
    }

    /// Turn the webhook outbox on for the database when connecting (default:
    /// leave it as it is). Once on, it stays on for every process until
    /// [`PostgresStore::set_outbox`] turns it off: every change that makes
    /// webhook events writes them in its own transaction (docs/webhooks.md).
    pub fn outbox(mut self, on: bool) -> Self {
        self.outbox = on;
        self
    }

    /// Connect, creating or migrating the schema.
    pub fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, self)
    }
}

/// A connection setting that can never work, found before any network access:
/// which option (`"url"` or `"schema"`) and what is wrong with it. The message
/// never repeats the value (a URL may carry a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSetting {
    /// `"url"` or `"schema"`.
    pub field: &'static str,
    /// What is wrong, without the value.
    pub reason: String,
}

impl fmt::Display for BadSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

impl std::error::Error for BadSetting {}

fn bad(field: &'static str, reason: impl Into<String>) -> BadSetting {
    BadSetting {
        field,
        reason: reason.into(),
    }
}

/// Check a URL or `key=value` connection string the way the driver parses it,
/// plus what the driver only finds out when connecting (no host, hosts and
/// ports or hostaddrs that do not pair up). An unreachable but well-formed
/// URL passes: that is [`StoreError::Unavailable`] at connect time.
/// [`PostgresStore::connect`] runs this first; bindings call it to report a
/// caller's mistake as invalid input rather than as an outage.
pub fn check_url(url: &str) -> Result<(), BadSetting> {
    let config = Config::from_str(url).map_err(|e| {
        // "invalid connection string"; its source names the option: "invalid
        // value for option `port`", "unknown option `x`", "unexpected EOF".
        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| c.to_string());
        bad(
            "url",
            format!(
                "is not a PostgreSQL URL (postgres://user:password@host:port/dbname) or \
                 key=value connection string: {why}"
            ),
        )
    })?;
    let (names, addrs) = (config.get_hosts().len(), config.get_hostaddrs().len());
    let hosts = names.max(addrs);
    if hosts == 0 {
        return Err(bad("url", "names no host"));
    }
    if names != 0 && addrs != 0 && names != addrs {
        return Err(bad("url", "has a different number of hosts and hostaddrs"));
    }
    let ports = config.get_ports().len();
    if ports > 1 && ports != hosts {
        return Err(bad("url", "has a different number of ports and hosts"));
    }
    Ok(())
}

/// Check a schema name for [`PostgresOptions::schema`]: 1 to 40 lowercase
/// ASCII letters, digits or `_`, starting with a letter (so it never needs
/// quoting in SQL).
pub fn check_schema(name: &str) -> Result<(), BadSetting> {
    let ok = name.len() <= 40
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "schema",
            "must be 1 to 40 lowercase ASCII letters, digits or '_', starting with a letter",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{check_schema, check_url};

    #[test]
    fn well_formed_urls_pass_even_if_nothing_listens() {
        for url in [
            "postgres://app:secret@db.internal:5432/app",
            "postgresql://localhost/app?connect_timeout=2",
            "host=/run/postgresql dbname=app",
            "host=a,b port=5432,5433 user=x",
            "hostaddr=127.0.0.1 dbname=app",
        ] {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn urls_that_can_never_connect_name_the_url_and_never_its_password() {
        for (url, why) in [
            ("postgres://app:hunter22@db:notaport/app", "port"),
            (
                "postgres://app:hunter22@db/app?bogus_option=1",
                "bogus_option",
            ),
            ("not a url at all hunter22", "connection string"),
            ("dbname=app password=hunter22", "names no host"),
            ("host=a,b hostaddr=127.0.0.1 password=hunter22", "hostaddrs"),
            ("host=a,b,c port=1,2 password=hunter22", "ports and hosts"),
            ("", "names no host"),
        ] {
            let e = check_url(url).expect_err(url);
            assert_eq!(e.field, "url");
            let text = e.to_string();
            assert!(text.contains(why), "{url}: {text}");
            assert!(!text.contains("hunter22"), "{url}: {text}");
        }
    }

    #[test]
    fn schema_names_follow_the_documented_rule() {
        for ok in ["a", "apikeys", "tenant_42", &"x".repeat(40)] {
            assert_eq!(check_schema(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "_abc",
            "Apikeys",
            "a-b",
            "a b",
            "a;drop",
            "é",
            &"x".repeat(41),
        ] {
            let e = check_schema(bad).expect_err(bad);
            assert_eq!(e.field, "schema");
            assert!(e.reason.contains("1 to 40"), "{bad}");
        }
    }
}
