//! The management API over real sockets (axum on 127.0.0.1:0, a hand-written
//! HTTP/1.1 client): every endpoint, the permission matrix role by role,
//! another account's keys, bad input, cross-site refusals, `no-store` on the
//! answers that hold a key and no key in any other answer — on the memory,
//! SQLite and PostgreSQL stores (docs/management.md).
//!
//! PostgreSQL needs `APIKEYS_TEST_POSTGRES_URL` (`source scripts/services.sh`);
//! those tests fail, never skip, without it.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apikeys::{Actor, Keyring, Role};
use apikeys_http::Management;
use common::{Answer, send};
use serde_json::{Value, json};

const ACCOUNT: &str = "acme";

/// The users of the test account, by id, and their roles.
const USERS: [(&str, Role); 7] = [
    ("POWNER", Role::Owner),
    ("PADMIN", Role::Admin),
    ("PMANAGER", Role::Manager),
    ("PRESP", Role::Responder),
    ("POBS", Role::Observer),
    ("PRESTR", Role::RestrictedAccess),
    ("PLIMITED", Role::LimitedStakeholder),
];

/// A running server, and every answer it gave (to search for keys).
struct Api {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    tokens: Mutex<Vec<String>>,
    keyring: Arc<Keyring>,
}

/// The host's login, for the tests: `x-user: PADMIN` (account acme), or
/// `x-user: evil/PEVE` (an admin of another account). Unknown: not logged in.
fn actor_of(parts: &http::request::Parts) -> Option<Actor> {
    let v = parts.headers.get("x-user")?.to_str().ok()?;
    if v == "evil/PEVE" {
        return Some(Actor::new("evil", "PEVE", Role::Admin));
    }
    let (_, role) = USERS.iter().find(|(u, _)| *u == v)?;
    Some(Actor::new(ACCOUNT, v, *role))
}

fn start(keyring: Keyring) -> Api {
    let keyring = Arc::new(keyring);
    for (u, r) in USERS {
        keyring.set_user_role(ACCOUNT, u, r).unwrap();
    }
    keyring.set_user_role("evil", "PEVE", Role::Admin).unwrap();
    let app = axum::Router::new().nest(
        "/admin/keys",
        Management::new(keyring.clone()).router(actor_of),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    Api {
        addr: rx.recv_timeout(Duration::from_secs(30)).unwrap(),
        seen: Arc::default(),
        tokens: Mutex::default(),
        keyring,
    }
}

fn memory() -> Api {
    start(Keyring::new(apikeys::MemoryStore::new()))
}

fn sqlite() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = apikeys_sqlite::SqliteStore::open(dir.path().join("keys.db")).unwrap();
    // The directory lives as long as the test process.
    std::mem::forget(dir);
    start(Keyring::new(store))
}

fn postgres() -> Api {
    let url = std::env::var("APIKEYS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "APIKEYS_TEST_POSTGRES_URL is not set: run `bash scripts/test.sh`, or \
             `source scripts/services.sh` in bash first"
        )
    });
    let schema = format!("m_{:016x}", apikeys::KeyId::generate().unwrap().as_u64());
    let store = apikeys_postgres::PostgresStore::options()
        .schema(&schema)
        .connect(&url)
        .unwrap();
    start(Keyring::new(store))
}

impl Api {
    /// Send a request as `user` (None: nobody logged in) with extra header
    /// lines; state-changing methods get `content-type: application/json`
    /// unless a `Content-Type` line is given.
    fn raw(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        headers: &[&str],
        body: &str,
    ) -> Answer {
        // axum serves a router nested at /admin/keys at /admin/keys, not /admin/keys/.
        let path = if path == "/" { "" } else { path };
        let mut r = format!(
            "{method} /admin/keys{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(u) = user {
            r.push_str(&format!("x-user: {u}\r\n"));
        }
        for h in headers {
            r.push_str(h);
            r.push_str("\r\n");
        }
        let typed = headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("content-type"));
        if method != "GET" && !typed {
            r.push_str("Content-Type: application/json\r\n");
        }
        r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let a = send(self.addr, r.as_bytes());
        self.seen.lock().unwrap().push(a.whole());
        a
    }

    fn get(&self, path: &str, user: &str) -> Answer {
        self.raw("GET", path, Some(user), &[], "")
    }

    fn post(&self, path: &str, user: &str, body: Value) -> Answer {
        self.raw("POST", path, Some(user), &[], &body.to_string())
    }

    fn delete(&self, path: &str, user: &str) -> Answer {
        self.raw("DELETE", path, Some(user), &[], "")
    }

    /// A created key's answer: 201, `no-store`, the token once; kept aside
    /// (and out of the answers searched for keys).
    fn created(&self, a: Answer) -> Value {
        assert_eq!(a.status, 201, "{}", a.whole());
        assert_eq!(a.header("cache-control"), Some("no-store"));
        let v = a.json();
        let token = v["api_key"]["token"].as_str().expect("token").to_owned();
        assert!(apikeys::KeyKind::parse(&token).is_ok());
        self.seen.lock().unwrap().pop();
        self.tokens.lock().unwrap().push(token);
        v
    }

    fn create_general(&self, user: &str, description: &str, read_only: bool) -> Value {
        let a = self.post(
            "/api_keys",
            user,
            json!({"api_key": {"type": "general", "description": description, "read_only": read_only}}),
        );
        self.created(a)
    }

    /// No answer but the creating ones held any key made in this test.
    fn no_key_leaked(&self) {
        let seen = self.seen.lock().unwrap();
        let tokens = self.tokens.lock().unwrap();
        assert!(!tokens.is_empty());
        for answer in seen.iter() {
            for t in tokens.iter() {
                assert!(!answer.contains(t.as_str()), "a key in {answer}");
            }
        }
    }
}

fn error(a: &Answer, status: u16, code: u64) -> String {
    assert_eq!(a.status, status, "{}", a.whole());
    assert!(
        a.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let (c, message) = a.error();
    assert_eq!(c, code, "{}", a.whole());
    message
}

fn id_of(v: &Value) -> String {
    v["api_key"]["id"].as_str().unwrap().to_owned()
}

// -- the scenarios, run on each store ---------------------------------------------------------

/// Create, list, get, disable, enable, rotate, end the rotation, delete, the trail.
fn lifecycle(api: Api) {
    let made = api.create_general("PADMIN", "CI bot", true);
    let k = &made["api_key"];
    assert_eq!(k["type"], "general");
    assert_eq!(k["access_level"], "read_only");
    assert_eq!(k["api_version"], "v2");
    assert_eq!(k["created_by"], "PADMIN");
    assert_eq!(k["disabled"], false);
    assert!(k.get("digest").is_none());
    let id = id_of(&made);

    let list = api.get("/api_keys?type=general", "PADMIN");
    assert_eq!(list.status, 200);
    assert_eq!(list.header("cache-control"), Some("no-store"));
    let l = list.json();
    assert_eq!(l["total"], 1);
    assert_eq!(l["api_keys"][0]["id"], id.as_str());
    assert!(l["api_keys"][0].get("token").is_none());

    let one = api.get(&format!("/api_keys/{id}"), "PADMIN");
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["api_key"]["description"], "CI bot");

    let off = api.post(&format!("/api_keys/{id}/disable"), "POWNER", json!({}));
    assert_eq!(off.status, 200, "{}", off.whole());
    let off = off.json();
    assert_eq!(off["api_key"]["disabled"], true);
    assert_eq!(off["api_key"]["disabled_by"], "POWNER");
    assert!(
        off["api_key"]["disabled_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let disabled = api.get("/api_keys?disabled=true", "PADMIN").json();
    assert_eq!(disabled["total"], 1);

    // An empty body is as good as `{}`.
    let on = api.raw(
        "POST",
        &format!("/api_keys/{id}/enable"),
        Some("PADMIN"),
        &[],
        "",
    );
    assert_eq!(on.status, 200, "{}", on.whole());
    assert_eq!(on.json()["api_key"]["disabled"], false);
    assert_eq!(on.json()["api_key"]["disabled_by"], Value::Null);

    let rotated = api.post(
        &format!("/api_keys/{id}/rotate"),
        "PADMIN",
        json!({"rotation": {"grace_seconds": 3600}}),
    );
    let rotated = api.created(rotated);
    let new_id = id_of(&rotated);
    assert_ne!(new_id, id);
    assert_eq!(rotated["api_key"]["rotation"]["rotated_from"], id.as_str());
    assert_eq!(rotated["rotated"]["id"], id.as_str());
    assert_eq!(
        rotated["rotated"]["rotation"]["rotated_to"],
        new_id.as_str()
    );
    assert_eq!(rotated["rotated"]["rotation"]["overlapping"], true);
    assert!(rotated["rotated"].get("token").is_none());
    // Both keys are listed while the overlap lasts.
    let both = api.get("/api_keys", "PADMIN").json();
    assert_eq!(both["total"], 2);

    let ended = api.post(&format!("/api_keys/{id}/end_rotation"), "PADMIN", json!({}));
    assert_eq!(ended.status, 200, "{}", ended.whole());
    assert_eq!(ended.json()["api_key"]["rotation"]["works"], false);

    let gone = api.delete(&format!("/api_keys/{id}"), "PADMIN");
    assert_eq!(gone.status, 204, "{}", gone.whole());
    assert_eq!(gone.body, "");
    error(&api.get(&format!("/api_keys/{id}"), "PADMIN"), 404, 2100);
    error(&api.delete(&format!("/api_keys/{id}"), "PADMIN"), 404, 2100);

    // The trail, PagerDuty's shape, newest first.
    let trail = api.get("/audit/records?limit=1000", "PADMIN");
    assert_eq!(trail.status, 200, "{}", trail.whole());
    let t = trail.json();
    let records = t["records"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "create",
        "disable",
        "enable",
        "rotate",
        "end_rotation",
        "delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(
        records[0]["execution_time"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let only = api
        .get(
            &format!("/audit/records?key_id={id}&actions[]=disable"),
            "PADMIN",
        )
        .json();
    let only = only["records"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["root_resource"]["id"], id.as_str());
    let mine = api.get("/audit/records?actor_id=POWNER", "PADMIN").json();
    assert!(
        mine["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["actors"][0]["id"] == "POWNER")
    );
    let page = api.get("/audit/records?limit=2", "PADMIN").json();
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = api
        .get(&format!("/audit/records?limit=2&cursor={cursor}"), "PADMIN")
        .json();
    assert_ne!(next["records"][0]["id"], page["records"][0]["id"]);

    // A user's own tokens.
    let token = api.post(
        "/users/me/tokens",
        "PRESP",
        json!({"api_key": {"description": "my laptop"}}),
    );
    let token = api.created(token);
    assert_eq!(token["api_key"]["type"], "user_token");
    assert_eq!(token["api_key"]["owner"], "PRESP");
    let tid = id_of(&token);
    let mine = api.get("/users/me/tokens", "PRESP").json();
    assert_eq!(mine["total"], 1);
    assert_eq!(api.get("/users/PRESP/tokens", "PRESP").json()["total"], 1);
    assert_eq!(
        api.get(&format!("/users/me/tokens/{tid}"), "PRESP").status,
        200
    );
    // Admins see it; it is not the admin's own.
    assert_eq!(api.get("/users/PRESP/tokens", "PADMIN").json()["total"], 1);
    assert_eq!(api.get("/users/me/tokens", "PADMIN").json()["total"], 0);
    error(
        &api.get(&format!("/users/PADMIN/tokens/{tid}"), "PADMIN"),
        404,
        2100,
    );
    let del = api.delete(&format!("/users/me/tokens/{tid}"), "PRESP");
    assert_eq!(del.status, 204, "{}", del.whole());
    assert_eq!(api.get("/users/me/tokens", "PRESP").json()["total"], 0);

    // Every other kind the API makes.
    for (body, kind) in [
        (
            json!({"type": "integration", "description": "svc", "service_id": "PSVC1"}),
            "integration",
        ),
        (
            json!({"type": "routing", "description": "orch", "orchestration_id": "EO1"}),
            "routing",
        ),
        (
            json!({"type": "scoped", "description": "ro", "scopes": ["incidents.read"]}),
            "scoped",
        ),
        (
            json!({"type": "user_token", "description": "mine", "expires_at": "2999-01-01T00:00:00Z"}),
            "user_token",
        ),
    ] {
        let made = api.post("/api_keys", "PADMIN", json!({"api_key": body}));
        let made = api.created(made);
        assert_eq!(made["api_key"]["type"], kind);
    }
    let scoped = api.get("/api_keys?type=scoped", "PADMIN").json();
    assert_eq!(scoped["api_keys"][0]["scopes"], json!(["incidents.read"]));
    let expiring = api.get("/api_keys?type=user_token", "PADMIN").json();
    assert_eq!(
        expiring["api_keys"][0]["expires_at"],
        "2999-01-01T00:00:00.000Z"
    );

    api.no_key_leaked();
}

/// The matrix of docs/design.md §2, role by role, as the API answers it.
fn matrix(api: Api) {
    let general = json!({"api_key": {"description": "k", "read_only": false}});
    let integration =
        json!({"api_key": {"type": "integration", "description": "k", "service_id": "PSVC"}});
    let own = json!({"api_key": {"description": "t"}});
    let key = api.create_general("POWNER", "owned by the account", false);
    let kid = id_of(&key);
    for (user, role) in USERS {
        let admin = role.is_admin_or_owner();
        let a = api.post("/api_keys", user, general.clone());
        if admin {
            api.created(a);
        } else {
            error(&a, 403, 2010);
        }
        let a = api.post("/api_keys", user, integration.clone());
        if role.is_manager_or_above() {
            api.created(a);
        } else {
            error(&a, 403, 2010);
        }
        let a = api.post("/users/me/tokens", user, own.clone());
        if role == Role::LimitedStakeholder {
            error(&a, 403, 2010);
        } else {
            api.created(a);
        }
        for path in [
            format!("/api_keys/{kid}/disable"),
            format!("/api_keys/{kid}/enable"),
        ] {
            let a = api.post(&path, user, json!({}));
            assert_eq!(
                a.status,
                if admin { 200 } else { 403 },
                "{user} {path}: {}",
                a.whole()
            );
        }
        let a = api.get(&format!("/api_keys/{kid}"), user);
        assert_eq!(
            a.status,
            if admin { 200 } else { 403 },
            "{user}: {}",
            a.whole()
        );
        // What the page is told agrees.
        let me = api.get("/me", user).json();
        assert_eq!(me["user"]["role"], role.as_str());
        let general_may = me["may"]["keys"]["general"].as_array().unwrap();
        assert_eq!(general_may.contains(&json!("create")), admin, "{user}");
        assert_eq!(general_may.contains(&json!("disable")), admin, "{user}");
        let token_may = me["may"]["keys"]["user_token"].as_array().unwrap();
        assert_eq!(
            token_may.contains(&json!("create")),
            role != Role::LimitedStakeholder
        );
        // The trail: the audit_records.read grant.
        let a = api.get("/audit/records", user);
        let reads = api
            .keyring
            .grants()
            .allows(role, Some("audit_records"), false);
        assert_eq!(me["may"]["audit_records"], reads);
        assert_eq!(
            a.status,
            if reads { 200 } else { 403 },
            "{user}: {}",
            a.whole()
        );
        // Another user's tokens.
        let a = api.get("/users/PRESP/tokens", user);
        let ok = admin || user == "PRESP";
        assert_eq!(
            a.status,
            if ok { 200 } else { 403 },
            "{user}: {}",
            a.whole()
        );
        // A token for somebody else is never made here.
        if user != "PRESP" {
            error(
                &api.post("/users/PRESP/tokens", user, own.clone()),
                403,
                2010,
            );
        }
    }
    // Deleting others' tokens: an admin may delete a responder's, not an owner's.
    let tokens = api.get("/users/PRESP/tokens", "PADMIN").json();
    let resp_token = tokens["api_keys"][0]["id"].as_str().unwrap().to_owned();
    let owners = api.get("/users/POWNER/tokens", "PADMIN").json();
    let owner_token = owners["api_keys"][0]["id"].as_str().unwrap().to_owned();
    error(
        &api.delete(&format!("/users/PRESP/tokens/{resp_token}"), "POBS"),
        403,
        2010,
    );
    error(
        &api.delete(&format!("/api_keys/{owner_token}"), "PADMIN"),
        403,
        2010,
    );
    assert_eq!(
        api.delete(&format!("/users/PRESP/tokens/{resp_token}"), "PADMIN")
            .status,
        204
    );
    // Rotating a general key: Owner and Admin only.
    error(
        &api.post(&format!("/api_keys/{kid}/rotate"), "PMANAGER", json!({})),
        403,
        2010,
    );
    // The role the keyring stores wins over what the host claims: demote the admin.
    api.keyring
        .set_user_role(ACCOUNT, "PADMIN", Role::Observer)
        .unwrap();
    error(&api.post("/api_keys", "PADMIN", general.clone()), 403, 2010);
    assert_eq!(api.get("/me", "PADMIN").json()["user"]["role"], "observer");
    // A removed user may do nothing.
    api.keyring.remove_user(ACCOUNT, "PMANAGER").unwrap();
    error(&api.post("/api_keys", "PMANAGER", integration), 403, 2010);
    let me = api.get("/me", "PMANAGER").json();
    assert_eq!(me["user"]["role"], Value::Null);
    assert!(me["may"]["keys"]["general"].as_array().unwrap().is_empty());
    api.no_key_leaked();
}

/// Another account's key behaves as if it did not exist.
fn other_account(api: Api) {
    let key = api.create_general("PADMIN", "acme's", false);
    let id = id_of(&key);
    let evil = "evil/PEVE";
    error(&api.get(&format!("/api_keys/{id}"), evil), 404, 2100);
    for action in ["disable", "enable", "rotate", "end_rotation"] {
        error(
            &api.post(&format!("/api_keys/{id}/{action}"), evil, json!({})),
            404,
            2100,
        );
    }
    error(&api.delete(&format!("/api_keys/{id}"), evil), 404, 2100);
    error(
        &api.get(&format!("/users/PADMIN/tokens/{id}"), evil),
        404,
        2100,
    );
    assert_eq!(api.get("/api_keys", evil).json()["total"], 0);
    let trail = api.get("/audit/records", evil).json();
    let records = trail["records"].as_array().unwrap();
    assert!(
        !records.is_empty(),
        "evil's own refusals are in evil's trail"
    );
    assert!(
        records
            .iter()
            .all(|r| r["actors"][0]["id"] == "PEVE" || r["root_resource"]["id"] == "PEVE"),
        "only evil's records: {trail}"
    );
    // Still there, still enabled.
    let still = api.get(&format!("/api_keys/{id}"), "PADMIN").json();
    assert_eq!(still["api_key"]["disabled"], false);
    api.no_key_leaked();
}

/// Bad input: each refused with PagerDuty's body, never echoing a value.
fn bad_input(api: Api) {
    let key = api.create_general("PADMIN", "k", false);
    let id = id_of(&key);
    let token = key["api_key"]["token"].as_str().unwrap().to_owned();
    let post = |body: &str| api.raw("POST", "/api_keys", Some("PADMIN"), &[], body);
    error(&post("{"), 400, 2001);
    error(&post("not json"), 400, 2001);
    error(&post("[]"), 400, 2001);
    error(&post(""), 400, 2001);
    error(&post("{\"api_key\": 5}"), 400, 2001);
    error(&post("{\"api_key\": {}}"), 400, 2001); // no description
    error(&post("{\"api_key\": {\"description\": 5}}"), 400, 2001);
    error(
        &post("{\"api_key\": {\"description\": \"x\", \"read_only\": \"yes\"}}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"x\", \"type\": \"superkey\"}}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"x\", \"readonly\": true}}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"x\"}, \"extra\": 1}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"x\", \"expires_at\": \"tomorrow\"}}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"x\", \"type\": \"integration\"}}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"x\", \"scopes\": [\"a.read\"]}}"),
        400,
        2001,
    );
    error(
        &post("{\"api_key\": {\"description\": \"\\u0000\"}}"),
        400,
        2001,
    );
    error(
        &post(&format!(
            "{{\"api_key\": {{\"description\": \"{}\"}}}}",
            "x".repeat(201)
        )),
        400,
        2001,
    );
    // A key pasted into the wrong field, or as a field's name, is never echoed.
    for body in [
        format!("{{\"api_key\": {{\"description\": \"x\", \"read_only\": \"{token}\"}}}}"),
        format!("{{\"api_key\": {{\"description\": \"x\", \"{token}\": 1}}}}"),
        format!("{{\"{token}\": 1}}"),
        format!("{{\"api_key\": {{\"description\": \"x\", \"type\": \"{token}\"}}}}"),
        format!("{{\"api_key\": {{\"description\": \"x\", \"expires_at\": \"{token}\"}}}}"),
        format!("{{\"api_key\": {{\"description\": {token}}}}}"),
    ] {
        let a = post(&body);
        error(&a, 400, 2001);
        assert!(!a.body.contains(&token), "{}", a.body);
    }
    let a = api.get(&format!("/api_keys?type={token}"), "PADMIN");
    error(&a, 400, 2001);
    let a = api.get(&format!("/api_keys/{token}"), "PADMIN");
    error(&a, 400, 2001);
    assert!(!a.body.contains(&token));
    let a = api.get(&format!("/audit/records?{token}=1"), "PADMIN");
    error(&a, 400, 2001);
    assert!(!a.body.contains(&token));
    // Unknown and malformed ids.
    error(&api.get("/api_keys/P0000000000000", "PADMIN"), 404, 2100);
    error(
        &api.post("/api_keys/P0000000000000/disable", "PADMIN", json!({})),
        404,
        2100,
    );
    error(&api.get("/api_keys/nope", "PADMIN"), 400, 2001);
    // A body on disable must be empty or hold no field.
    error(
        &api.post(
            &format!("/api_keys/{id}/disable"),
            "PADMIN",
            json!({"api_key": {"x": 1}}),
        ),
        400,
        2001,
    );
    error(
        &api.post(
            &format!("/api_keys/{id}/rotate"),
            "PADMIN",
            json!({"rotation": {"grace_seconds": -1}}),
        ),
        400,
        2001,
    );
    error(
        &api.post(
            &format!("/api_keys/{id}/rotate"),
            "PADMIN",
            json!({"rotation": {"grace_seconds": "1h"}}),
        ),
        400,
        2001,
    );
    error(
        &api.post(
            &format!("/api_keys/{id}/rotate"),
            "PADMIN",
            json!({"rotation": {"grace_seconds": 400 * 86_400}}),
        ),
        400,
        2001,
    );
    // Query strings.
    error(&api.get("/api_keys?limit=0", "PADMIN"), 400, 2001);
    error(&api.get("/api_keys?limit=x", "PADMIN"), 400, 2001);
    error(&api.get("/api_keys?disabled=maybe", "PADMIN"), 400, 2001);
    error(
        &api.get("/api_keys?type=general&type=scoped", "PADMIN"),
        400,
        2001,
    );
    error(
        &api.get("/audit/records?since=yesterday", "PADMIN"),
        400,
        2001,
    );
    error(
        &api.get(
            "/audit/records?since=2020-01-01T00:00:00Z&until=2020-03-01T00:00:00Z",
            "PADMIN",
        ),
        400,
        2001,
    );
    error(&api.get("/audit/records?limit=1001", "PADMIN"), 400, 2001);
    error(
        &api.get("/audit/records?actions[]=explode", "PADMIN"),
        400,
        2001,
    );
    error(&api.get("/audit/records?cursor=zzz", "PADMIN"), 400, 2001);
    error(&api.get("/audit/records?key_id=nope", "PADMIN"), 400, 2001);
    // Huge bodies: refused with 413, whether announced or not.
    let huge = format!(
        "{{\"api_key\": {{\"description\": \"{}\"}}}}",
        "x".repeat(70_000)
    );
    error(&post(&huge), 413, 2001);
    let mut chunked = format!(
        "POST /admin/keys/api_keys HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nx-user: PADMIN\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        api.addr
    );
    for _ in 0..80 {
        chunked.push_str(&format!("400\r\n{}\r\n", "x".repeat(1024)));
    }
    chunked.push_str("0\r\n\r\n");
    error(&send(api.addr, chunked.as_bytes()), 413, 2001);
    // Wrong methods: 405 and what the path answers.
    let a = api.raw("PUT", "/api_keys", Some("PADMIN"), &[], "{}");
    error(&a, 405, 2001);
    assert_eq!(a.header("allow"), Some("GET, HEAD, POST"));
    let a = api.raw(
        "GET",
        &format!("/api_keys/{id}/disable"),
        Some("PADMIN"),
        &[],
        "",
    );
    error(&a, 405, 2001);
    assert_eq!(a.header("allow"), Some("POST"));
    error(
        &api.raw(
            "PATCH",
            &format!("/api_keys/{id}"),
            Some("PADMIN"),
            &[],
            "{}",
        ),
        405,
        2001,
    );
    error(&api.delete("/audit/records", "PADMIN"), 405, 2001);
    // Unknown paths; nobody logged in.
    error(&api.get("/nowhere", "PADMIN"), 404, 2100);
    error(&api.get("/api_keys/a/b/c/d", "PADMIN"), 404, 2100);
    error(&api.raw("GET", "/api_keys", None, &[], ""), 401, 2006);
    error(&api.raw("GET", "/", None, &[], ""), 401, 2006);
    error(
        &api.raw("POST", "/api_keys", Some("PNOBODY"), &[], "{}"),
        401,
        2006,
    );
    // After all of that, the one key is still the only one, and still enabled.
    let l = api.get("/api_keys", "PADMIN").json();
    assert_eq!(l["total"], 1);
    assert_eq!(l["api_keys"][0]["disabled"], false);
    api.no_key_leaked();
}

/// Cross-site calls may not change keys; reads and same-origin calls may.
fn cross_site(api: Api) {
    let key = api.create_general("PADMIN", "k", false);
    let id = id_of(&key);
    let disable = format!("/api_keys/{id}/disable");
    let host = api.addr.to_string();
    let same_origin = format!("Origin: http://{host}");
    for headers in [
        vec!["Sec-Fetch-Site: cross-site"],
        vec!["Sec-Fetch-Site: same-site"],
        vec!["Sec-Fetch-Site: cross-site", same_origin.as_str()],
        vec!["Origin: http://evil.example"],
        vec!["Origin: null"],
        vec!["Origin: http://127.0.0.1:1"],
        vec!["Origin: http://evil.example", "Origin: http://evil.example"],
        vec!["Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: cross-site"],
        vec!["Sec-Fetch-Site: ", same_origin.as_str()],
    ] {
        let a = api.raw("POST", &disable, Some("PADMIN"), &headers, "{}");
        error(&a, 403, 2010);
        let a = api.raw(
            "DELETE",
            &format!("/api_keys/{id}"),
            Some("PADMIN"),
            &headers,
            "",
        );
        error(&a, 403, 2010);
        let a = api.raw(
            "POST",
            "/api_keys",
            Some("PADMIN"),
            &headers,
            r#"{"api_key":{"description":"x"}}"#,
        );
        error(&a, 403, 2010);
    }
    // A cookie-only form post: no JSON content type.
    for ct in [
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: text/plain",
        "Content-Type: multipart/form-data; boundary=x",
        "Content-Type: application/jsonx",
    ] {
        let a = api.raw(
            "POST",
            &disable,
            Some("PADMIN"),
            &[ct, "Sec-Fetch-Site: same-origin"],
            "{}",
        );
        error(&a, 415, 2001);
    }
    let mut no_type = format!(
        "POST /admin/keys{disable} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nx-user: PADMIN\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    error(&send(api.addr, no_type.as_bytes()), 415, 2001);
    no_type.clear();
    // Still enabled after every refusal.
    assert_eq!(
        api.get(&format!("/api_keys/{id}"), "PADMIN").json()["api_key"]["disabled"],
        false
    );
    // Same origin, a browser's `none` (typed into the address bar), no
    // browser headers at all: allowed.
    for headers in [
        vec!["Sec-Fetch-Site: same-origin", same_origin.as_str()],
        vec!["Sec-Fetch-Site: none"],
        vec![same_origin.as_str()],
        vec!["Content-Type: application/json; charset=utf-8"],
        vec![],
        // Behind a proxy that rewrites Host, Sec-Fetch-Site decides.
        vec![
            "Sec-Fetch-Site: same-origin",
            "Origin: https://keys.example.com",
        ],
    ] {
        let a = api.raw("POST", &disable, Some("PADMIN"), &headers, "{}");
        assert_eq!(a.status, 200, "{headers:?}: {}", a.whole());
    }
    // Reads are not refused (a cross-site page cannot read the answer).
    assert_eq!(
        api.raw(
            "GET",
            "/api_keys",
            Some("PADMIN"),
            &["Sec-Fetch-Site: cross-site"],
            ""
        )
        .status,
        200
    );
    api.no_key_leaked();
}

/// The page and its assets: HTML, a strict CSP, nothing cached.
fn page(api: Api) {
    let a = api.get("/", "POBS");
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    let csp = a.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    // Links follow where the router was nested.
    assert!(a.body.contains("/admin/keys/assets/page.js"), "{}", a.body);
    assert!(!a.body.contains("{{BASE}}"));
    // Nothing from another host.
    assert!(!a.body.contains("http://") && !a.body.contains("https://"));
    for (asset, ty) in [
        ("/assets/page.js", "text/javascript"),
        ("/assets/page.css", "text/css"),
    ] {
        let a = api.get(asset, "POBS");
        assert_eq!(a.status, 200);
        assert!(a.header("content-type").unwrap().starts_with(ty));
        assert!(
            !a.body.contains("http://") && !a.body.contains("https://"),
            "{asset}"
        );
    }
    error(&api.get("/assets/other.js", "POBS"), 404, 2100);
    error(&api.raw("POST", "/", Some("POBS"), &[], "{}"), 405, 2001);
    let head = api.raw("HEAD", "/", Some("POBS"), &[], "");
    assert_eq!(head.status, 200);
    api.create_general("PADMIN", "k", false);
    api.no_key_leaked();
}

/// Racing callers: one rotation and one deletion win, the rest are told why.
fn races(api: Api) {
    let api = Arc::new(api);
    for round in 0..3 {
        let key = api.create_general("PADMIN", &format!("raced {round}"), false);
        let id = id_of(&key);
        let rotate: Vec<Answer> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|i| {
                    let api = &api;
                    let id = &id;
                    let user = if i % 2 == 0 { "PADMIN" } else { "POWNER" };
                    s.spawn(move || api.post(&format!("/api_keys/{id}/rotate"), user, json!({})))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&Answer> = rotate.iter().filter(|a| a.status == 201).collect();
        assert_eq!(won.len(), 1, "one rotation wins");
        for a in rotate.iter().filter(|a| a.status != 201) {
            error(a, 400, 2001);
        }
        // The winner's key is the one kept aside (and searched for).
        let v = won[0].json();
        api.tokens
            .lock()
            .unwrap()
            .push(v["api_key"]["token"].as_str().unwrap().to_owned());
        let deletes: Vec<u16> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|_| {
                    let api = &api;
                    let id = &id;
                    s.spawn(move || api.delete(&format!("/api_keys/{id}"), "PADMIN").status)
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            deletes.iter().filter(|&&s| s == 204).count(),
            1,
            "{deletes:?}"
        );
        assert!(deletes.iter().all(|&s| s == 204 || s == 404), "{deletes:?}");
    }
    // The rotations' answers were seen by the racing threads; drop those
    // (they hold keys by design) before searching the rest.
    api.seen
        .lock()
        .unwrap()
        .retain(|a| !a.starts_with("HTTP/1.1 201"));
    api.no_key_leaked();
}

macro_rules! on_every_store {
    ($($scenario:ident),*) => {
        mod on_memory { use super::*; $( #[test] fn $scenario() { super::$scenario(memory()) } )* }
        mod on_sqlite { use super::*; $( #[test] fn $scenario() { super::$scenario(sqlite()) } )* }
        mod on_postgres { use super::*; $( #[test] fn $scenario() { super::$scenario(postgres()) } )* }
    };
}

on_every_store!(
    lifecycle,
    matrix,
    other_account,
    bad_input,
    cross_site,
    page,
    races
);

// -- without a framework: `handle` on its own -----------------------------------------------------

#[test]
fn handle_answers_without_any_framework() {
    let keyring = Arc::new(Keyring::new(apikeys::MemoryStore::new()));
    let m = Management::new(keyring).mount_path("/keys/").unwrap();
    let admin = Actor::new(ACCOUNT, "PADMIN", Role::Admin);
    let req = |method: &str, uri: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let res = m.handle(
        Some(&admin),
        req("POST", "/api_keys", r#"{"api_key":{"description":"x"}}"#),
    );
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let res = m.handle(Some(&admin), req("GET", "/", ""));
    let html = String::from_utf8(res.into_body()).unwrap();
    assert!(html.contains("/keys/assets/page.js"), "{html}");
    let res = m.handle(None, req("GET", "/api_keys", ""));
    assert_eq!(res.status(), 401);
    let res = m.handle(Some(&admin), req("GET", "no-slash", ""));
    assert_eq!(res.status(), 404);
    let res = m.handle(
        Some(&admin),
        req("POST", "/api_keys", &" ".repeat(super_max() + 1)),
    );
    assert_eq!(res.status(), 413);
    assert!(
        Management::new(Arc::new(Keyring::default()))
            .mount_path("keys")
            .is_err()
    );
    assert!(
        Management::new(Arc::new(Keyring::default()))
            .mount_path("/a\"b")
            .is_err()
    );
    let off = m.clone().without_page();
    assert_eq!(off.handle(Some(&admin), req("GET", "/", "")).status(), 404);
    assert_eq!(
        off.handle(Some(&admin), req("GET", "/assets/page.js", ""))
            .status(),
        404
    );
}

/// A store that fails answers 500 and says only that an internal error
/// occurred (docs/design.md §5); nothing of the cause reaches the client.
#[test]
fn a_failing_store_is_a_500_that_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let store = apikeys_sqlite::SqliteStore::open(&db).unwrap();
    let api = start(Keyring::new(store));
    api.create_general("PADMIN", "before", false);
    // Another program deletes the write-ahead log under the store's feet:
    // the store refuses to write rather than lose a change (docs/design.md §7).
    let wal = dir.path().join("keys.db-wal");
    assert!(wal.exists(), "the store writes ahead");
    std::fs::remove_file(&wal).unwrap();
    let a = api.post(
        "/api_keys",
        "PADMIN",
        json!({"api_key": {"description": "after"}}),
    );
    let message = error(&a, 500, 2000);
    assert_eq!(message, "an internal error occurred");
    assert!(!a.body.contains("keys.db"), "{}", a.body);
    // The cause is for the server's logs: in the response's extensions.
    let m = Management::new(api.keyring.clone());
    let res = m.handle(
        Some(&Actor::new(ACCOUNT, "PADMIN", Role::Admin)),
        http::Request::post("/api_keys")
            .header("content-type", "application/json")
            .body(br#"{"api_key":{"description":"again"}}"#.to_vec())
            .unwrap(),
    );
    assert_eq!(res.status(), 500);
    let r = res
        .extensions()
        .get::<apikeys_http::Rejection>()
        .expect("the refusal for a logging layer");
    assert_eq!(r.kind(), "store");
    assert_ne!(r.reason(), r.message());
    api.no_key_leaked();
}

/// Expiry and a rotation's overlap are shown by the keyring's clock, as
/// the keyring judges them, not by the server's wall clock.
#[test]
fn expiry_and_overlap_follow_the_keyrings_clock() {
    let clock = apikeys::ManualClock::new(apikeys::Timestamp::from_unix_millis(1_800_000_000_000));
    let keyring = Keyring::builder()
        .store(apikeys::MemoryStore::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    let m = Management::new(Arc::new(keyring));
    let admin = Actor::new(ACCOUNT, "PADMIN", Role::Admin);
    let call = |method: &str, uri: &str, body: &str| -> Value {
        let res = m.handle(
            Some(&admin),
            http::Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(body.as_bytes().to_vec())
                .unwrap(),
        );
        serde_json::from_slice(res.body()).unwrap()
    };
    // 2027-01-15T08:00:00Z is 1_800_000_000_000 + an hour.
    let made = call(
        "POST",
        "/api_keys",
        r#"{"api_key":{"description":"soon","expires_at":"2027-01-15T09:00:00Z"}}"#,
    );
    let id = id_of(&made);
    assert_eq!(made["api_key"]["expired"], false);
    let rotated = call(
        "POST",
        &format!("/api_keys/{id}/rotate"),
        r#"{"rotation":{"grace_seconds":60}}"#,
    );
    assert_eq!(rotated["rotated"]["rotation"]["works"], true);
    clock.advance(Duration::from_secs(61));
    let old = call("GET", &format!("/api_keys/{id}"), "");
    assert_eq!(old["api_key"]["rotation"]["works"], false);
    assert_eq!(old["api_key"]["rotation"]["overlapping"], false);
    clock.advance(Duration::from_secs(3600));
    let old = call("GET", &format!("/api_keys/{id}"), "");
    assert_eq!(old["api_key"]["expired"], true);
}

/// Odd requests straight into `handle`: always an answer, never a panic;
/// every refusal in PagerDuty's shape.
#[test]
fn handle_never_panics_on_odd_requests() {
    let keyring = Arc::new(Keyring::new(apikeys::MemoryStore::new()));
    let m = Management::new(keyring);
    let admin = Actor::new(ACCOUNT, "PADMIN", Role::Admin);
    let paths = [
        "/",
        "//",
        "/api_keys//",
        "/api_keys/%00",
        "/api_keys/P0000000000000/rotate",
        "/users//tokens",
        "/users/%FF/tokens",
        "/users/me/tokens/%2e%2e",
        "/audit/records?since=%",
        "/api_keys?limit=99999999999999999999999",
        "/api_keys?offset=-1",
        "/me?x",
        "/assets/",
        "/assets/../../etc/passwd",
        "/api_keys?type=general&type",
        "/audit/records?actions[]=,,,",
        "/audit/records?until=9999-12-31T23:59:59.999999Z",
        "/audit/records?since=2026-02-29T00:00:00Z",
    ];
    let bodies: [&[u8]; 9] = [
        b"",
        b"{",
        b"\xff\xfe",
        b"null",
        b"{\"api_key\":{\"description\":\"\xf0\x9f\x94\x91\"}}",
        b"{\"rotation\":{\"grace_seconds\":1e400}}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"{\"api_key\":{\"description\":\"x\",\"scopes\":[1]}}",
        b"{\"api_key\":null}",
    ];
    for method in ["GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS"] {
        for path in paths {
            for body in bodies {
                let req = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .unwrap();
                let res = m.handle(Some(&admin), req);
                let status = res.status().as_u16();
                assert!((200..600).contains(&status));
                if status >= 400 && method != "HEAD" {
                    let v: Value = serde_json::from_slice(res.body()).unwrap();
                    assert!(v["error"]["code"].is_u64(), "{method} {path}: {v}");
                    assert!(status < 500, "{method} {path}: {v}");
                }
            }
        }
    }
}

fn super_max() -> usize {
    apikeys_http::manage::MAX_BODY_BYTES
}
