//! The secret-scanning receiver through its axum mount
//! (`SecretScanning::router`, feature `router`), over real sockets: signed
//! reports, refusals, bodies over the bound (declared and streamed), the
//! peer's address in the record, and concurrent deliveries — on the memory
//! store (answered inline) and on SQLite (answered on the blocking pool).

mod common;
mod scanning_support;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};

use apikeys::{Keyring, LEAK_REPORT, MemoryStore};
use apikeys_http::SecretScanning;
use apikeys_sqlite::SqliteStore;
use scanning_support::*;

const PATH: &str = "/github/secret-scanning";

/// Serve `scanning` (merged into an app with another route) on a loopback
/// port, with axum's own server and the peer's address as `ConnectInfo`.
fn serve(scanning: SecretScanning) -> SocketAddr {
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .merge(Arc::new(scanning).router(PATH));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    });
    addr
}

/// A signed `POST` as raw bytes.
fn signed(signer: &Signer, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         GITHUB-PUBLIC-KEY-IDENTIFIER: {}\r\nGITHUB-PUBLIC-KEY-SIGNATURE: {}\r\n\r\n",
        body.len(),
        signer.identifier,
        signer.sign(body)
    );
    [head.as_bytes(), body].concat()
}

fn over_sockets(keyring: Arc<Keyring>) {
    let signer = Signer::new("github-1");
    let addr = serve(receiver(keyring.clone(), &signer).max_body_bytes(64 * 1024));
    let keys = live_keys(&keyring);
    let tokens: Vec<&str> = keys.tokens.iter().map(String::as_str).collect();
    let body = report(&tokens);

    // Refused before any token is read: nothing changes.
    let unsigned = common::request("POST", PATH, &[], &String::from_utf8_lossy(&body));
    let a = common::send(addr, &unsigned);
    assert_eq!(a.status, 401, "{}", a.whole());
    assert_eq!(a.error().0, 2006);
    let mut tampered = signed(&signer, &body);
    let n = tampered.len();
    tampered[n - 3] = b' ';
    assert_eq!(common::send(addr, &tampered).status, 401);
    let get = common::send(addr, &common::request("GET", PATH, &[], ""));
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    for t in &keys.tokens {
        assert!(works(&keyring, t));
    }
    assert!(leak_records(&keyring).is_empty());

    // Over the bound: by the declared length (nothing read), and streamed
    // in chunks with no length.
    let huge = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10000000\r\n\
         GITHUB-PUBLIC-KEY-IDENTIFIER: {}\r\nGITHUB-PUBLIC-KEY-SIGNATURE: x\r\n\r\n[",
        signer.identifier
    );
    let a = common::send(addr, huge.as_bytes());
    assert_eq!(a.status, 413, "{}", a.whole());
    let mut chunked = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..80 {
        chunked.extend_from_slice(format!("400\r\n{}\r\n", " ".repeat(1024)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(common::send(addr, &chunked).status, 413);
    // Signed, but not a JSON array.
    assert_eq!(common::send(addr, &signed(&signer, b"{}")).status, 400);
    assert_eq!(common::send(addr, &signed(&signer, b"[{")).status, 400);

    // The signed report: every key true_positive and disabled.
    let a = common::send(addr, &signed(&signer, &body));
    assert_eq!(a.status, 200, "{}", a.whole());
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(labels(a.body.as_bytes()), vec!["true_positive"; 5]);
    assert_no_token(&a.whole(), &keys.tokens);
    for (t, id) in keys.tokens.iter().zip(&keys.ids) {
        assert!(!works(&keyring, t));
        let r = record(&keyring, *id).unwrap();
        assert_eq!(r.disabled.as_ref().map(|d| &*d.by), Some(LEAK_REPORT));
    }
    let records = leak_records(&keyring);
    assert_eq!(records.len(), 5);
    for r in &records {
        let peer = r.context.remote_address.as_deref().unwrap_or_default();
        assert!(peer.starts_with("127.0.0.1:"), "the peer's address: {r:?}");
        assert_eq!(r.context.report_source.as_deref(), Some("content"));
    }
    // Again: the same answer, nothing written.
    let again = common::send(addr, &signed(&signer, &body));
    assert_eq!(again.body, a.body);
    assert_eq!(leak_records(&keyring).len(), 5);

    // Concurrent deliveries over sockets: one record per key.
    for round in 0..5 {
        let key = keyring
            .create_general_key(
                &admin(),
                &format!("ci {round}"),
                apikeys::AccessLevel::FullAccess,
            )
            .unwrap();
        let body = report(&[key.secret().expose()]);
        let raw = signed(&signer, &body);
        let barrier = Barrier::new(4);
        let answers: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let (raw, barrier) = (&raw, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let a = common::send(addr, raw);
                        assert_eq!(a.status, 200);
                        a.body
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(answers.iter().all(|a| a == &answers[0]));
        assert_eq!(labels(answers[0].as_bytes()), ["true_positive"]);
        let n = leak_records(&keyring)
            .iter()
            .filter(|r| r.key_id == Some(key.record().id))
            .count();
        assert_eq!(n, 1, "round {round}");
    }
    // The rest of the app is untouched.
    let health = common::send(addr, &common::request("GET", "/health", &[], ""));
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
}

#[test]
fn memory_store_over_sockets() {
    let keyring = Arc::new(Keyring::new(MemoryStore::new()));
    assert!(!keyring.may_block());
    over_sockets(keyring);
}

#[test]
fn sqlite_store_over_sockets_on_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::new(
        SqliteStore::open(dir.path().join("keys.db")).unwrap(),
    ));
    assert!(keyring.may_block());
    over_sockets(keyring);
}
