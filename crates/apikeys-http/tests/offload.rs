//! A check that waits on the store never holds up the runtime: on a
//! one-thread tokio runtime, a request whose key lookup is stuck in the store
//! does not stop another request from being answered (docs/http.md).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use apikeys::store::{CachedLookup, KeyStore, LookupRef, MemoryStore};
use apikeys::testing::wrap::{Around, Wrapped};
use apikeys::{AccessLevel, Actor, Digest, Keyring, Role};
use apikeys_http::RestAuthLayer;
use bytes::Bytes;
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

/// A store that may block: lookups of one digest wait until released, and
/// never answer from memory; everything else answers from a `MemoryStore`.
type SlowStore = Wrapped<MemoryStore, Stuck>;

/// What makes [`SlowStore`] slow: the digest whose lookups wait, until released.
#[derive(Default)]
struct Stuck {
    stuck: Mutex<Option<Digest>>,
    released: Mutex<bool>,
    wake: Condvar,
}

impl Stuck {
    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.wake.notify_all();
    }
    fn is_stuck(&self, d: &Digest) -> bool {
        self.stuck.lock().unwrap().as_ref() == Some(d)
    }
}

impl Around for Stuck {
    fn before_lookup(&self, d: &Digest) {
        if self.is_stuck(d) {
            let mut released = self.released.lock().unwrap();
            while !*released {
                let (g, timeout) = self
                    .wake
                    .wait_timeout(released, Duration::from_secs(10))
                    .unwrap();
                released = g;
                if timeout.timed_out() {
                    break;
                }
            }
        }
    }
    fn find_cached(&self, d: &Digest, inner: &dyn KeyStore) -> CachedLookup {
        if self.is_stuck(d) {
            CachedLookup::WouldBlock
        } else {
            inner.find_cached(d)
        }
    }
    fn find_cached_with(
        &self,
        d: &Digest,
        inner: &dyn KeyStore,
        f: &mut dyn FnMut(Option<LookupRef<'_>>),
    ) -> bool {
        !self.is_stuck(d) && inner.find_cached_with(d, f)
    }
}

/// The protected handler: answers 200 at once.
#[derive(Clone)]
struct Ok200;

impl Service<http::Request<()>> for Ok200 {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        Box::pin(async { Ok(http::Response::new(Full::new(Bytes::from_static(b"ok")))) })
    }
}

async fn send<S>(mut svc: S, token: &str) -> u16
where
    S: Service<http::Request<()>, Response = http::Response<Full<Bytes>>, Error = Infallible>,
{
    poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let req = http::Request::get("/incidents")
        .header("authorization", format!("Token token={token}"))
        .body(())
        .unwrap();
    svc.call(req).await.unwrap().status().as_u16()
}

#[test]
fn a_request_stuck_in_the_store_does_not_stop_another_on_a_one_thread_runtime() {
    let store = Arc::new(SlowStore::new(MemoryStore::new(), Stuck::default()));
    let keyring = Arc::new(
        Keyring::builder()
            .shared_store(store.clone())
            .build()
            .unwrap(),
    );
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let slow = keyring
        .create_general_key(&admin, "slow", AccessLevel::FullAccess)
        .unwrap();
    let fast = keyring
        .create_general_key(&admin, "fast", AccessLevel::FullAccess)
        .unwrap();
    *store.around.stuck.lock().unwrap() = Some(slow.record().digest);
    let svc = RestAuthLayer::new(keyring)
        .with_scope("incidents.read")
        .unwrap()
        .layer(Ok200);

    // Whatever happens, the stuck lookup is let go after a while: without
    // the fix the runtime's one thread would otherwise wait for it forever.
    let released_by_watchdog = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (store, flag) = (store.clone(), released_by_watchdog.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            flag.store(true, Ordering::SeqCst);
            store.around.release();
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (fast_status, fast_done_while_stuck, slow_status) = runtime.block_on(async {
        let slow_token = slow.secret().expose().to_owned();
        let stuck = tokio::spawn(send(svc.clone(), Box::leak(slow_token.into_boxed_str())));
        // Let the stuck request start (it is now waiting in the store).
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let fast_status = send(svc.clone(), fast.secret().expose()).await;
        let while_stuck = !released_by_watchdog.load(Ordering::SeqCst);
        store.around.release();
        (fast_status, while_stuck, stuck.await.unwrap())
    });
    watchdog.join().unwrap();
    assert_eq!(fast_status, 200);
    assert!(
        fast_done_while_stuck,
        "the second request waited for the first one's store lookup"
    );
    assert_eq!(
        slow_status, 200,
        "the stuck request is answered once released"
    );
}
