//! `EventsAuth` reads a body that is all there in `call` itself and calls
//! the inner service at once; a body still arriving is read in the future.
//! Both ways answer the same, hand the inner service the whole body, and
//! call the service that `poll_ready` made ready (tower's contract), not a
//! clone of it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apikeys::{Actor, Keyring, MemoryStore, Principal, Role};
use apikeys_http::EventsAuthLayer;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tower_layer::Layer;
use tower_service::Service;

/// A request body handed over in frames; with `stall: Some(n)`, each frame
/// from the `n`th on (and the end) is preceded by a `Pending` (the waker
/// woken at once), as a body still arriving from the network is.
struct Trickle {
    frames: VecDeque<Bytes>,
    stall: Option<usize>,
    given: usize,
    stalled: bool,
}

impl Trickle {
    fn new(frames: &[&[u8]], stall: Option<usize>) -> Self {
        Trickle {
            frames: frames.iter().map(|f| Bytes::copy_from_slice(f)).collect(),
            stall,
            given: 0,
            stalled: false,
        }
    }
}

impl From<Bytes> for Trickle {
    fn from(b: Bytes) -> Self {
        Trickle::new(&[&b], None)
    }
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.stall.is_some_and(|n| self.given >= n) && !self.stalled {
            self.stalled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.stalled = false;
        self.given += 1;
        Poll::Ready(self.frames.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// The protected service: answers 202 with the account and the body it got;
/// panics when called without being made ready first (a clone is not ready).
struct Handler {
    ready: bool,
}

impl Clone for Handler {
    fn clone(&self) -> Self {
        Handler { ready: false }
    }
}

impl Service<http::Request<Trickle>> for Handler {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<Trickle>) -> Self::Future {
        assert!(self.ready, "called without poll_ready");
        self.ready = false;
        Box::pin(async move {
            let who = req
                .extensions()
                .get::<Principal>()
                .map(|p| p.account().to_owned());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let text = format!(
                "{} {}",
                who.unwrap_or_default(),
                String::from_utf8_lossy(&body)
            );
            Ok(http::Response::builder()
                .status(202)
                .body(Full::new(Bytes::from(text)))
                .unwrap())
        })
    }
}

fn keyring() -> (Arc<Keyring>, String) {
    let keyring = Keyring::new(MemoryStore::new());
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);
    let key = keyring
        .create_integration_key(&admin, "PSERVICE1", "events")
        .unwrap()
        .secret()
        .expose()
        .to_owned();
    (Arc::new(keyring), key)
}

async fn send(
    svc: &mut apikeys_http::EventsAuth<Handler>,
    frames: &[&[u8]],
    stall: Option<usize>,
) -> (u16, String) {
    poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let req = http::Request::post("/v2/enqueue")
        .body(Trickle::new(frames, stall))
        .unwrap();
    let res = svc.call(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_body_whole_or_arriving_in_frames_is_read_checked_and_handed_on() {
    let (keyring, key) = keyring();
    let mut svc = EventsAuthLayer::new(keyring).layer(Handler { ready: false });
    let body = format!(
        r#"{{"routing_key":"{key}","event_action":"trigger","payload":{{"summary":"s"}}}}"#
    );
    let b = body.as_bytes();
    let (head, tail) = b.split_at(20);
    let (mid, tail) = tail.split_at(7);
    // Whole, arriving from the start, arriving after its first frame.
    for stall in [None, Some(0), Some(1)] {
        for frames in [vec![b], vec![head, mid, tail], vec![&b[..0], b, &b[..0]]] {
            let (status, text) = send(&mut svc, &frames, stall).await;
            assert_eq!(
                status,
                202,
                "stall {stall:?}, {} frames: {text}",
                frames.len()
            );
            assert_eq!(text, format!("acme {body}"), "stall {stall:?}");
        }
    }
    // The same service keeps answering: each request made it ready again.
    for stall in [None, Some(0), None, Some(1)] {
        assert_eq!(send(&mut svc, &[b], stall).await.0, 202);
    }
}

#[tokio::test]
async fn refusals_are_the_same_whether_the_body_was_whole_or_arriving() {
    let (keyring, key) = keyring();
    let mut svc = EventsAuthLayer::new(keyring)
        .max_body_bytes(64)
        .layer(Handler { ready: false });
    let over = format!(r#"{{"routing_key":"{key}","p":"{}"}}"#, "x".repeat(40));
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (br#"{"routing_key":12}"#.to_vec(), 400, "routing_key"),
        (
            br#"{"event_action":"trigger"}"#.to_vec(),
            400,
            "routing_key",
        ),
        (br#"{"routing_key":"k","a":01}"#.to_vec(), 400, "JSON"),
        (
            br#"{"routing_key":"0123456789abcdef0123456789abcdef"}"#.to_vec(),
            401,
            "",
        ),
        (over.into_bytes(), 400, "64"),
    ];
    for (body, status, says) in cases {
        let mut answers = Vec::new();
        for stall in [None, Some(0), Some(1)] {
            let (head, tail) = body.split_at(body.len() / 2);
            for frames in [vec![&body[..]], vec![head, tail]] {
                let (got, text) = send(&mut svc, &frames, stall).await;
                assert_eq!(got, status, "{}: {text}", String::from_utf8_lossy(&body));
                assert!(text.contains(says), "{text}");
                answers.push(text);
            }
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    }
}

#[tokio::test]
async fn a_check_sent_to_the_blocking_pool_answers_the_same_for_a_whole_or_arriving_body() {
    // A durable store may block: a key it has not cached yet is checked on
    // tokio's blocking pool, after the body was read in `call` or in the future.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let key = {
        let keyring = Keyring::new(apikeys_sqlite::SqliteStore::open(&db).unwrap());
        let admin = Actor::new("acme", "PADMIN1", Role::Admin);
        keyring
            .create_integration_key(&admin, "PSERVICE1", "events")
            .unwrap()
            .secret()
            .expose()
            .to_owned()
    };
    let body = format!(r#"{{"routing_key":"{key}"}}"#);
    for stall in [None, Some(0)] {
        // A fresh keyring each time: nothing cached, the check goes to the pool.
        let keyring = Arc::new(Keyring::new(
            apikeys_sqlite::SqliteStore::open(&db).unwrap(),
        ));
        assert!(keyring.may_block());
        let mut svc = EventsAuthLayer::new(keyring).layer(Handler { ready: false });
        let (status, text) = send(&mut svc, &[body.as_bytes()], stall).await;
        assert_eq!(
            (status, text),
            (202, format!("acme {body}")),
            "stall {stall:?}"
        );
        let unknown = br#"{"routing_key":"0123456789abcdef0123456789abcdef"}"#;
        assert_eq!(
            send(&mut svc, &[unknown], stall).await.0,
            401,
            "stall {stall:?}"
        );
    }
}
