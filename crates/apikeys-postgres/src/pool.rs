//! Connections: a pool of them, each with its prepared statements; reads
//! retried on a fresh connection when theirs broke; one transaction per write.

use std::collections::HashMap;

use apikeys::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement, Transaction};

use crate::{Inner, POSTGRES};

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) statements: HashMap<&'static str, Statement>,
}

impl Conn {
    pub(crate) fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, args)
    }
}

pub(crate) struct Manager {
    pub(crate) config: Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// Whether an error means the connection is gone (so a fresh one may work).
pub(crate) fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            let c = c.code();
            // 08: connection exception; 57P: operator intervention (shutdown, terminated).
            c.starts_with("08") || c.starts_with("57P")
        }
        // Not an error from the server: I/O on the socket.
        None => e.as_db_error().is_none(),
    }
}

pub(crate) fn pg(e: postgres::Error) -> StoreError {
    let said = describe(&e);
    if connection_lost(&e) {
        StoreError::unavailable(
            format!(
                "PostgreSQL connection lost ({said}); nothing was written, and the next call reconnects"
            ),
            e,
        )
    } else {
        StoreError::unavailable(format!("{POSTGRES}: {said}"), e)
    }
}

/// A connection to the server that could not be made.
pub(crate) fn cannot_connect(e: postgres::Error) -> StoreError {
    let said = describe(&e);
    StoreError::unavailable(format!("cannot connect to PostgreSQL: {said}"), e)
}

/// What `e` says, for a [`StoreError`]'s message. The driver's own text is
/// only its kind ("db error", "error connecting to server"); this adds, for
/// an error from the server, its severity, message and SQLSTATE code, and
/// for any other error the text of its cause (the socket's error, say). It
/// leaves out the DETAIL and HINT of a server error: a DETAIL may quote a
/// row's or a parameter's values (`Key (account, user_id)=(…) already
/// exists`, `Failing row contains (…)`), which no message repeats. The
/// error's source, `e` itself, keeps everything for whoever looks.
pub(crate) fn describe(e: &postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!(
            "db error: {}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

impl Inner {
    pub(crate) fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::unavailable(format!("cannot connect to PostgreSQL: {e}"), e))
    }

    /// How many connections to try before giving up: after a server restart
    /// every idle pooled connection is dead, and each is found out by one try.
    pub(crate) fn attempts(&self) -> u32 {
        self.options.pool_size + 1
    }

    /// Run a read; while the pooled connection turns out broken, again on another.
    pub(crate) fn read<T>(
        &self,
        mut f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut attempt = 1;
        loop {
            let mut conn = self.conn()?;
            match f(&mut conn) {
                Ok(v) => return Ok(v),
                Err(e) if connection_lost(&e) && attempt < self.attempts() => attempt += 1,
                Err(e) => return Err(pg(e)),
            }
        }
    }

    /// Run `f` in one transaction. Retried on another connection only when the
    /// connection was found broken at `BEGIN`, before anything was sent.
    pub(crate) fn write<T>(
        &self,
        mut f: impl FnMut(
            &mut Transaction<'_>,
            &mut HashMap<&'static str, Statement>,
        ) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_if(|tx, st| f(tx, st).map(|out| (out, true)))
    }
}

impl Inner {
    /// [`Inner::write`] whose `f` also says whether to commit (`true`) or
    /// roll back what it did (`false`). Retried on another connection only
    /// when the connection was found broken at `BEGIN`, before anything was
    /// sent. The lookup cache is fenced first (docs/design.md §6.6).
    pub(crate) fn write_if<T>(
        &self,
        mut f: impl FnMut(
            &mut Transaction<'_>,
            &mut HashMap<&'static str, Statement>,
        ) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 1;
        loop {
            let mut conn = self.conn()?;
            self.cache.fence();
            let Conn { client, statements } = &mut *conn;
            let mut tx = match client.transaction() {
                Ok(tx) => tx,
                Err(e) if connection_lost(&e) && attempt < self.attempts() => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(pg(e)),
            };
            let (out, commit) = f(&mut tx, statements)?;
            if commit {
                tx.commit().map_err(pg)?;
            } else {
                tx.rollback().map_err(pg)?;
            }
            return Ok(out);
        }
    }
}

pub(crate) fn prepared(
    tx: &mut Transaction<'_>,
    statements: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).map_err(pg)?;
    statements.insert(sql, s.clone());
    Ok(s)
}
