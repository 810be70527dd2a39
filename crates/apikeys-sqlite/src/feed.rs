//! The change feed: what other connections to the file changed, applied to
//! the lookup cache. A background thread polls `PRAGMA data_version`, reads
//! the change log (`apikeys_changes`, written by triggers) when it moved,
//! and writes the queued last uses now and then.

use std::time::Instant;

use apikeys::store::cache::Stopper;
use apikeys::{Digest, StoreError};
use rusqlite::Connection;

use crate::{Inner, lock, unavailable};

/// What the watcher has seen: the writer connection's `data_version`, and the
/// change log up to `seq`.
#[derive(Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) version: i64,
    pub(crate) seq: i64,
}

pub(crate) fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        .map_err(unavailable)
}

impl Inner {
    /// The watcher: polls `data_version`, reads the change log when it moved,
    /// and writes queued uses, until stopped.
    pub(crate) fn background(&self, stop: &Stopper, mut seen: Seen) {
        let mut last_flush = Instant::now();
        let mut healthy = true;
        while !stop.sleep(self.options.poll_interval) {
            let polled = {
                let conn = lock(&self.writer);
                self.apply_changes(&conn, &mut seen)
                    .and_then(|()| self.wal_check())
            };
            match polled {
                Ok(()) => {
                    if !healthy && self.options.cache {
                        self.cache.set_enabled(true);
                    }
                    healthy = true;
                }
                Err(_) => {
                    // Cannot tell what others changed: stop trusting the cache.
                    self.cache.set_enabled(false);
                    healthy = false;
                }
            }
            if last_flush.elapsed() >= self.options.flush_interval {
                // A failed write stays queued for the next round.
                let _ = self.flush();
                last_flush = Instant::now();
            }
        }
    }

    /// If another connection wrote since `seen`, drop from the cache what its
    /// logged changes touched (everything, if the log cannot say).
    pub(crate) fn apply_changes(
        &self,
        conn: &Connection,
        seen: &mut Seen,
    ) -> Result<(), StoreError> {
        // The version first: a commit after this read moves it again, so it is
        // read on the next poll even if the log below already shows it.
        let version = data_version(conn)?;
        if version == seen.version {
            return Ok(());
        }
        let mut stmt = conn
            .prepare_cached("SELECT seq, digest FROM apikeys_changes WHERE seq > ?1 ORDER BY seq")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map([seen.seq], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .map_err(unavailable)?;
        let mut first = None;
        let mut everything = false;
        let mut digests = Vec::new();
        let mut last = seen.seq;
        for row in rows {
            let (seq, digest) = row.map_err(unavailable)?;
            first.get_or_insert(seq);
            last = seq;
            match digest.as_deref().and_then(|d| <[u8; 32]>::try_from(d).ok()) {
                Some(d) => digests.push(Digest::from_bytes(d)),
                None => everything = true,
            }
        }
        // Entries pruned before this process read them: it cannot know which.
        if first.is_some_and(|f| f > seen.seq + 1) {
            everything = true;
        }
        if everything {
            self.cache.clear();
        } else {
            for d in &digests {
                self.cache.invalidate(d);
            }
        }
        *seen = Seen { version, seq: last };
        Ok(())
    }
}
