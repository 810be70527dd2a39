//! The change feed: a connection that `LISTEN`s on the store's channel, to
//! which the tables' triggers `NOTIFY` every change, applied to the lookup
//! cache (which is off while that connection is down).

use std::time::{Duration, Instant};

use apikeys::store::cache::Stopper;
use apikeys::{Digest, StoreError};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use crate::pool::cannot_connect;
use crate::{Inner, pg};

impl Inner {
    /// A connection that LISTENs on this store's change channel.
    pub(crate) fn listen(&self) -> Result<Client, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(cannot_connect)?;
        client
            .batch_execute(&format!("LISTEN {}", self.channel))
            .map_err(pg)?;
        Ok(client)
    }

    /// The listener: applies notifications to the cache; reconnects when the
    /// connection breaks, with the cache off until it is back.
    pub(crate) fn watch(&self, mut client: Client, stop: &Stopper) {
        let mut last_ping = Instant::now();
        loop {
            // Until the connection breaks: apply what arrives.
            loop {
                if stop.sleep(Duration::ZERO) {
                    return;
                }
                let next = {
                    let mut n = client.notifications();
                    let next = n.timeout_iter(Duration::from_millis(100)).next();
                    next.map(|o| o.map(|note| note.payload().to_owned()))
                };
                match next {
                    Ok(Some(payload)) => match Digest::from_hex(&payload) {
                        Some(d) => self.cache.invalidate(&d),
                        // '*' (or anything unexpected): everything may have changed.
                        None => self.cache.clear(),
                    },
                    Ok(None) => {}
                    Err(_) => break,
                }
                if client.is_closed() {
                    break;
                }
                // A silent network can hide a dead connection: ask now and then.
                if last_ping.elapsed() > Duration::from_secs(2) {
                    last_ping = Instant::now();
                    if client.simple_query("").is_err() {
                        break;
                    }
                }
            }
            self.cache.set_enabled(false);
            loop {
                if stop.sleep(Duration::from_millis(100)) {
                    return;
                }
                if let Ok(c) = self.listen() {
                    client = c;
                    // Whatever changed meanwhile is unknown: start empty.
                    self.cache.set_enabled(true);
                    break;
                }
            }
        }
    }
}
