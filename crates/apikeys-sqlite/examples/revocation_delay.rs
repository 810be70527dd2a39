//! How long a disable in one process takes to be refused in another, over many
//! trials: prints the distribution (p50, p90, p99, max).
//!
//! ```text
//! cargo run --release -p apikeys-sqlite --example revocation_delay -- sqlite 200
//! source scripts/services.sh
//! cargo run --release -p apikeys-sqlite --example revocation_delay -- postgres 200
//! ```
//!
//! This process creates a key per trial and hands it to a child process, which
//! authenticates it until it works (so the child's cache holds it), says
//! READY, then keeps authenticating every 100 µs. This process disables the key;
//! the delay is from the moment `disable` returned to the moment the child
//! first saw the key refused (both read the same system clock).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apikeys::{AccessLevel, Actor, KeyStore, Keyring, Request, Role};
use apikeys_postgres::PostgresStore;
use apikeys_sqlite::SqliteStore;

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

fn open(kind: &str, place: &str) -> Box<dyn KeyStore> {
    match kind {
        "sqlite" => Box::new(SqliteStore::open(place).expect("open SQLite")),
        "postgres" => {
            let url = std::env::var("APIKEYS_TEST_POSTGRES_URL")
                .expect("set APIKEYS_TEST_POSTGRES_URL (source scripts/services.sh)");
            Box::new(
                PostgresStore::options()
                    .schema(place)
                    .connect(&url)
                    .expect("connect"),
            )
        }
        other => panic!("unknown store {other:?}: sqlite or postgres"),
    }
}

/// The child: reads a token per line, reports READY once it authenticates,
/// then REFUSED <unix micros> once it no longer does.
fn child(kind: &str, place: &str) {
    let kr = Keyring::builder()
        .shared_store(open(kind, place).into())
        .build()
        .expect("keyring");
    let get = Request::rest("GET");
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let token = line.expect("stdin");
        while kr.authenticate(&token, &get).is_err() {
            std::thread::sleep(Duration::from_micros(100));
        }
        writeln!(out, "READY").expect("stdout");
        out.flush().expect("stdout");
        let start = Instant::now();
        while kr.authenticate(&token, &get).is_ok() {
            assert!(start.elapsed() < Duration::from_secs(30), "never refused");
            std::thread::sleep(Duration::from_micros(100));
        }
        writeln!(out, "REFUSED {}", micros_now()).expect("stdout");
        out.flush().expect("stdout");
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2], &args[3]);
    }
    let kind = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let trials: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let place = match kind.as_str() {
        "sqlite" => dir.path().join("delay.db").display().to_string(),
        _ => format!("delay_{}", std::process::id()),
    };
    let kr = Keyring::builder()
        .shared_store(open(&kind, &place).into())
        .build()
        .expect("keyring");
    let admin = Actor::new("acme", "PADMIN1", Role::Admin);

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--child", &kind, &place])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut to_child = child.stdin.take().expect("stdin");
    let mut from_child = BufReader::new(child.stdout.take().expect("stdout")).lines();

    let mut delays_ms = Vec::with_capacity(trials);
    for i in 0..trials {
        let issued = kr
            .create_general_key(&admin, &format!("trial {i}"), AccessLevel::FullAccess)
            .expect("create");
        writeln!(to_child, "{}", issued.secret().expose()).expect("to child");
        to_child.flush().expect("to child");
        let ready = from_child.next().expect("child alive").expect("line");
        assert_eq!(ready, "READY");
        // Let the trial start at a random point of any polling cycle.
        std::thread::sleep(Duration::from_micros(
            (apikeys::KeyId::generate().expect("random").as_u64() % 20_000) + 1_000,
        ));
        kr.disable(&admin, &issued.record().id.to_string())
            .expect("disable");
        let returned = micros_now();
        let refused = from_child.next().expect("child alive").expect("line");
        let at: u128 = refused
            .strip_prefix("REFUSED ")
            .and_then(|t| t.parse().ok())
            .expect("REFUSED <micros>");
        delays_ms.push(at.saturating_sub(returned) as f64 / 1000.0);
    }
    drop(to_child);
    let _ = child.wait();

    delays_ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{kind}: revocation delay across two processes, {trials} trials (ms): \
         p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&delays_ms, 0.50),
        percentile(&delays_ms, 0.90),
        percentile(&delays_ms, 0.99),
        delays_ms[delays_ms.len() - 1],
    );
}
