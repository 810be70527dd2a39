//! The SIGKILL checks, shared by the SQLite and PostgreSQL test binaries:
//! child processes (this test binary, running one `#[ignore]`d helper test)
//! that make changes or deliver events until killed, and the checks the
//! parent makes afterwards.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use apikeys::webhooks::{Outbox, OutboxRow, events_for};
use apikeys::{AccessLevel, Actor, AuditEvent, KeyId, Keyring, Role};
use apikeys_webhooks::{Deliverer, Endpoint, EventType, WorkerOptions};

/// Where the child finds its store (a file path, or a PostgreSQL schema).
pub const PLACE: &str = "APIKEYS_WEBHOOKS_CHILD_PLACE";
/// The receiver's URL, for a delivering child.
pub const URL: &str = "APIKEYS_WEBHOOKS_CHILD_URL";
/// The receiver's secret, for a delivering child.
pub const SECRET: &str = "APIKEYS_WEBHOOKS_CHILD_SECRET";

/// Run the helper test `test` of this binary in a child process.
pub fn spawn(test: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe);
    c.args([test, "--ignored", "--exact", "--nocapture"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// SIGKILL `child` at a random moment in `ms` milliseconds from now.
pub fn kill_within(mut child: Child, ms: std::ops::Range<u64>) {
    let r = KeyId::generate().unwrap().as_u64();
    std::thread::sleep(Duration::from_millis(ms.start + r % (ms.end - ms.start)));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

/// The changing child: a stream of every kind of change that makes events,
/// and of refused calls that make none, until killed.
pub fn manage_until_killed(kr: &Keyring) -> ! {
    let n = KeyId::generate().unwrap().as_u64();
    let acct = format!("crash{n:x}");
    let admin = Actor::new(acct.as_str(), "PADMIN1", Role::Admin);
    let observer = Actor::new(acct.as_str(), "POBS", Role::Observer);
    for i in 0u64.. {
        let k = kr
            .create_general_key(&admin, &format!("k{i}"), AccessLevel::FullAccess)
            .unwrap();
        let id = k.record().id.to_string();
        kr.disable(&admin, &id).unwrap();
        let _ = kr.enable(&observer, &id); // refused: no event
        kr.enable(&admin, &id).unwrap();
        let new = kr.rotate(&admin, &id, Duration::from_secs(3600)).unwrap();
        kr.end_rotation(&admin, &id).unwrap();
        kr.delete(&admin, &new.record().id.to_string()).unwrap();
        let user = format!("PU{i}");
        let u = Actor::new(acct.as_str(), user.as_str(), Role::Responder);
        kr.create_user_token(&u, "t").unwrap();
        kr.remove_user(&acct, &user).unwrap();
    }
    unreachable!()
}

/// The delivering child: delivers to the parent's receiver until killed.
pub fn deliver_until_killed(outbox: Arc<dyn Outbox>) -> ! {
    let url = std::env::var(URL).unwrap();
    let secret = std::env::var(SECRET).unwrap();
    let e = Endpoint::new("ops", &url, &secret).unwrap();
    let d = Deliverer::new(outbox, vec![e], crash_options()).unwrap();
    loop {
        let _ = d.run_once();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Options of the workers in the SIGKILL tests: short timeouts and leases.
pub fn crash_options() -> WorkerOptions {
    WorkerOptions::default()
        .poll_interval(Duration::from_millis(10))
        .timeout(Duration::from_millis(500))
        .lease(Duration::from_millis(1500))
        .batch(4)
        .backoff_base(Duration::from_millis(20))
        .backoff_max(Duration::from_millis(100))
}

/// Every allowed change in the trail has its events in the outbox, and
/// every event in the outbox has its change: the same (type, key) multiset.
pub fn changes_match_events(trail: &[AuditEvent], outbox: &[OutboxRow]) {
    let mut want: HashMap<(EventType, Option<KeyId>), i64> = HashMap::new();
    for a in trail {
        for e in events_for(a) {
            *want.entry((e.event_type, e.key_id)).or_insert(0) += 1;
        }
    }
    let mut got: HashMap<(EventType, Option<KeyId>), i64> = HashMap::new();
    for r in outbox {
        *got.entry((r.event_type, r.key_id)).or_insert(0) += 1;
    }
    let total: i64 = want.values().sum();
    assert!(total > 0, "the child made no change before the kill");
    for (k, n) in &want {
        assert_eq!(got.get(k), Some(n), "a change without its event: {k:?}");
    }
    for (k, n) in &got {
        assert_eq!(want.get(k), Some(n), "an event without its change: {k:?}");
    }
    eprintln!("{total} events match their changes");
}
