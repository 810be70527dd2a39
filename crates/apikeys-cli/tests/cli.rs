//! The `apikeys` binary end to end, against a temporary SQLite file and, with
//! `APIKEYS_TEST_POSTGRES_URL`, a PostgreSQL server: the life of a key from
//! create to delete, scans, permission refusals, and every kind of bad input
//! (one line on standard error, a non-zero status, never a panic, never a key).
//!
//! The PostgreSQL test fails, never skips, without `APIKEYS_TEST_POSTGRES_URL`,
//! like the other PostgreSQL tests: `source scripts/services.sh` in the same
//! bash shell first (`bash scripts/test.sh` does).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ADMIN: &str = "acme/PADMIN1/admin";
const MANAGER: &str = "acme/PMANAGER1/manager";
const OBSERVER: &str = "acme/POBS1/observer";
/// Shaped like a general key, pasted where something else goes. (A real key
/// may start with '-', which would be read as an option there.)
const PASTED: &str = "y_NbAkKc66ryYTWUXYEu";

/// Where the keys are, and how to call the binary on them.
struct Db {
    dir: tempfile::TempDir,
    db: String,
    schema: Option<String>,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    /// A failure: this status, one line on standard error saying `says`, no panic.
    fn fails(self, code: i32, says: &str) -> Run {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:?}");
        assert!(self.stderr.starts_with("apikeys: error: "), "{self:?}");
        assert!(self.stderr.contains(says), "expected {says:?}: {self:?}");
        self
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_apikeys")
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("keys.db").to_string_lossy().into_owned();
        Db {
            dir,
            db,
            schema: None,
        }
    }

    fn postgres(url: &str) -> Db {
        let n = apikeys::KeyId::generate().unwrap().as_u64();
        Db {
            dir: tempfile::tempdir().unwrap(),
            db: url.to_owned(),
            schema: Some(format!("cli_{n:016x}")),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary());
        c.arg("--db").arg(&self.db);
        if let Some(s) = &self.schema {
            c.arg("--schema").arg(s);
        }
        c.args(args)
            .env_remove("APIKEYS_DATABASE_URL")
            .env_remove("APIKEYS_PEPPER")
            .env("RUST_BACKTRACE", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args).stdin(Stdio::null()).output().unwrap())
    }

    fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            // The binary may stop reading early; that is its right.
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        finish(out)
    }

    /// Make a key as `actor`: it comes once on standard output, with a warning on standard error.
    fn create(&self, actor: &str, args: &[&str]) -> (String, String) {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--as", actor, "--json"]);
        let run = self.run(&all).ok();
        let v = run.json();
        let key = v["key"].as_str().unwrap().to_owned();
        assert!(
            run.stderr.contains("shown this once and never again"),
            "{run:?}"
        );
        assert!(!run.stderr.contains(&key));
        let id = v["record"]["id"].as_str().unwrap().to_owned();
        (key, id)
    }
}

fn finish(out: Output) -> Run {
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "internal error",
    ] {
        assert!(!run.stderr.contains(bad), "{run:?}");
    }
    run
}

/// No key appears in anything the binary printed.
fn no_key_in(run: &Run, keys: &[&str]) {
    for k in keys {
        assert!(
            !run.stdout.contains(k) && !run.stderr.contains(k),
            "a key was printed: {run:?}"
        );
    }
}

/// The whole life of keys, on one database.
fn lifecycle(db: &Db) {
    // create → list → show
    let (key, id) = db.create(ADMIN, &["general", "CI bot"]);
    assert_eq!(key.len(), 20);
    let plain = db.run(&["create", "general", "plain", "--as", ADMIN]).ok();
    let plain_key = plain.stdout.trim().to_owned();
    assert_eq!(
        plain.stdout,
        format!("{plain_key}\n"),
        "the key alone on its line"
    );
    assert_eq!(
        apikeys::KeyKind::parse(&plain_key),
        Ok(apikeys::KeyKind::General)
    );
    assert!(plain.stderr.contains("shown this once") && !plain.stderr.contains(&plain_key));
    let keys = [key.as_str(), plain_key.as_str()];

    let list = db.run(&["list", "--as", ADMIN]).ok();
    for column in [
        "ID",
        "DESCRIPTION",
        "KIND",
        "ACCESS",
        "API",
        "CREATED",
        "CREATED BY",
    ] {
        assert!(list.stdout.contains(column), "{list:?}");
    }
    for column in ["DISABLED", "LAST USED", "EXPIRES", "ROTATION"] {
        assert!(list.stdout.contains(column), "{list:?}");
    }
    assert!(list.stdout.contains(&id) && list.stdout.contains("CI bot"));
    no_key_in(&list, &keys);
    let listed = db.run(&["list", "--as", ADMIN, "--json"]).ok().json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    assert_eq!(listed["keys"][0]["id"], id.as_str());
    assert_eq!(listed["keys"][0]["status"], "active");
    assert!(listed["keys"][0].get("digest").is_none());

    let show = db.run(&["show", &id, "--as", ADMIN]).ok();
    assert!(show.stdout.contains("CI bot") && show.stdout.contains("active"));
    no_key_in(&show, &keys);
    assert_eq!(
        db.run(&["show", &id, "--as", ADMIN, "--json"]).ok().json()["kind"],
        "general"
    );

    // verify → disable → verify refused → enable
    let v = db.run(&["verify", &key]).ok();
    assert!(
        v.stdout.starts_with("admitted") && v.stdout.contains(&id),
        "{v:?}"
    );
    no_key_in(&v, &keys);
    db.run(&["disable", &id, "--as", ADMIN]).ok();
    let refused = db.run(&["verify", &key, "--json"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    let r = refused.json();
    assert_eq!(r["admitted"], false);
    assert_eq!(r["status"], 401);
    assert_eq!(r["reason"], "disabled key");
    assert_eq!(r["key_id"], id.as_str());
    no_key_in(&refused, &keys);
    db.run(&["enable", &id, "--as", ADMIN]).ok();
    db.run(&["verify", &key]).ok();
    // A key read from standard input (kept out of the shell's history).
    db.run_with_input(&["verify", "-"], format!("{key}\n").as_bytes())
        .ok();
    // verify is a dry run: the key's last use did not move.
    let shown = db.run(&["show", &id, "--as", ADMIN, "--json"]).ok().json();
    assert_eq!(shown["last_used_at"], Value::Null);

    // rotate → both work → end-rotation → only the new one
    let rotated = db
        .run(&["rotate", &id, "--grace", "1h", "--as", ADMIN])
        .ok();
    let new_key = rotated.stdout.trim().to_owned();
    assert_eq!(new_key.len(), 20);
    assert!(rotated.stderr.contains("shown this once") && !rotated.stderr.contains(&new_key));
    let keys = [key.as_str(), plain_key.as_str(), new_key.as_str()];
    db.run(&["verify", &key]).ok();
    let new_id = {
        let v = db.run(&["verify", &new_key, "--json"]).ok().json();
        v["key_id"].as_str().unwrap().to_owned()
    };
    assert_ne!(new_id, id);
    let ended = db.run(&["end-rotation", &id, "--as", ADMIN]).ok();
    assert!(ended.stdout.contains(&id));
    let old = db.run(&["verify", &key]);
    assert_eq!(old.code, 1, "{old:?}");
    assert!(old.stdout.contains("rotated"), "{old:?}");
    db.run(&["verify", &new_key]).ok();

    // audit --json has the records, and no key
    let audit = db.run(&["audit", "--as", ADMIN, "--json"]).ok();
    no_key_in(&audit, &keys);
    let records = audit.json()["records"].as_array().unwrap().clone();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in ["create", "disable", "enable", "rotate", "end_rotation"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let only = db
        .run(&[
            "audit",
            "--as",
            ADMIN,
            "--json",
            "--action",
            "disable,enable",
            "--key",
            &id,
        ])
        .ok()
        .json();
    assert_eq!(only["records"].as_array().unwrap().len(), 2);
    let paged = db
        .run(&["audit", "--as", ADMIN, "--json", "--limit", "2"])
        .ok()
        .json();
    let cursor = paged["next_cursor"].as_str().unwrap().to_owned();
    let next = db
        .run(&[
            "audit", "--as", ADMIN, "--json", "--limit", "2", "--cursor", &cursor,
        ])
        .ok()
        .json();
    assert_ne!(next["records"][0]["id"], paged["records"][0]["id"]);
    let table = db.run(&["audit", "--as", ADMIN, "--since", "1h"]).ok();
    assert!(table.stdout.contains("end_rotation") && table.stdout.contains(&id));

    // scan: a live key (status 1, its id and place, never the key) …
    let live_file = db.path("live.env");
    std::fs::write(
        &live_file,
        format!("# settings\nPAGERDUTY_TOKEN={new_key}\n"),
    )
    .unwrap();
    let scan = db.run(&["scan", live_file.to_str().unwrap()]);
    assert_eq!(scan.code, 1, "{scan:?}");
    assert!(scan.stdout.contains(&new_id), "{scan:?}");
    assert!(scan.stdout.contains("live.env:2:17"), "{scan:?}");
    no_key_in(&scan, &keys);
    let scanned = db
        .run(&["scan", live_file.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(scanned["live"], 1);
    assert_eq!(scanned["findings"][0]["key_id"], new_id.as_str());
    assert_eq!(scanned["findings"][0]["line"], 2);
    // … dead keys (deleted; rotated out): status 0
    let (gone_key, gone_id) = db.create(ADMIN, &["general", "gone"]);
    db.run(&["delete", &gone_id, "--as", ADMIN]).ok();
    let dead_file = db.path("dead.txt");
    std::fs::write(
        &dead_file,
        format!("token={gone_key}\nAuthorization: Token token={key}\n"),
    )
    .unwrap();
    let dead = db.run(&["scan", dead_file.to_str().unwrap()]);
    assert_eq!(dead.code, 0, "{dead:?}");
    no_key_in(&dead, &[&gone_key, &key]);
    assert!(!dead.stdout.contains("LIVE"), "{dead:?}");
    // … standard input, and a directory
    let piped = db.run_with_input(&["scan", "-"], format!("token: {new_key}").as_bytes());
    assert_eq!(piped.code, 1, "{piped:?}");
    assert!(piped.stdout.contains("(stdin):1:8"), "{piped:?}");
    let whole_dir = db.run(&["scan", db.dir.path().to_str().unwrap()]);
    assert_eq!(whole_dir.code, 1, "{whole_dir:?}");
    // … and --disable, as the acting user
    let disabling = db.run(&[
        "scan",
        live_file.to_str().unwrap(),
        "--disable",
        "--as",
        ADMIN,
    ]);
    assert_eq!(disabling.code, 1, "{disabling:?}");
    assert!(disabling.stdout.contains("disabled now"), "{disabling:?}");
    no_key_in(&disabling, &keys);
    let after = db.run(&["verify", &new_key]);
    assert_eq!(after.code, 1, "{after:?}");
    assert!(after.stdout.contains("disabled key"));
    // A disabled general key is still live (it can be enabled): still status 1.
    assert_eq!(db.run(&["scan", live_file.to_str().unwrap()]).code, 1);

    // the other kinds
    let (int_key, int_id) = db.create(MANAGER, &["integration", "Datadog", "--service", "PSVC1"]);
    assert_eq!(int_key.len(), 32);
    db.run(&["verify", &int_key, "--events"]).ok();
    let wrong = db.run(&["verify", &int_key]);
    assert_eq!(wrong.code, 1);
    assert!(wrong.stdout.contains("wrong_api"), "{wrong:?}");
    let (routing_key, _) = db.create(MANAGER, &["routing", "alerts", "--orchestration", "orch1"]);
    db.run(&["verify", &routing_key, "--events"]).ok();
    let (scoped_key, _) = db.create(
        MANAGER,
        &[
            "scoped",
            "closer",
            "--scope",
            "incidents.write,services.read",
            "--expires",
            "7d",
        ],
    );
    db.run(&[
        "verify",
        &scoped_key,
        "--method",
        "POST",
        "--scope",
        "incidents.write",
    ])
    .ok();
    assert_eq!(
        db.run(&[
            "verify",
            &scoped_key,
            "--method",
            "POST",
            "--scope",
            "services.write"
        ])
        .code,
        1
    );
    let (user_key, _) = db.create("acme/PRESP1/responder", &["user-token", "laptop"]);
    db.run(&[
        "verify",
        &user_key,
        "--method",
        "POST",
        "--scope",
        "incidents.write",
    ])
    .ok();
    db.run(&["user", "set-role", "PRESP1", "observer", "--as", ADMIN])
        .ok();
    assert_eq!(
        db.run(&[
            "verify",
            &user_key,
            "--method",
            "POST",
            "--scope",
            "incidents.write"
        ])
        .code,
        1,
        "the token acts with its owner's role now"
    );
    let shown = db
        .run(&["user", "show", "PRESP1", "--as", ADMIN, "--json"])
        .ok()
        .json();
    assert_eq!(shown["role"], "observer");
    let removed = db.run(&["user", "remove", "PRESP1", "--as", ADMIN]).ok();
    assert!(removed.stdout.contains("1 key disabled"), "{removed:?}");
    assert_eq!(db.run(&["verify", &user_key]).code, 1);
    let every = db
        .run(&["list", "--as", ADMIN, "--json", "--kind", "integration"])
        .ok()
        .json();
    assert_eq!(every["keys"][0]["id"], int_id.as_str());
    assert_eq!(every["keys"][0]["service_id"], "PSVC1");

    // the plan
    db.run(&["account", "set", "--rest-api", "off", "--as", ADMIN])
        .ok();
    let plan = db
        .run(&["account", "show", "--as", ADMIN, "--json"])
        .ok()
        .json();
    assert_eq!(plan["rest_api"], false);
    let restricted = db.run(&["verify", &plain_key, "--json"]);
    assert_eq!(restricted.code, 1);
    assert_eq!(restricted.json()["error"], "plan_restricted");
    db.run(&["account", "set", "--rest-api", "on", "--as", ADMIN])
        .ok();

    // delete
    db.run(&["delete", &id, "--as", ADMIN]).ok();
    db.run(&["show", &id, "--as", ADMIN])
        .fails(2, "no API key with id");
}

/// Refusals by the permission matrix and by the command line's own rules.
fn refusals(db: &Db) {
    let (key, id) = db.create(ADMIN, &["general", "admin's"]);
    for (args, says) in [
        (
            vec!["create", "general", "x", "--as", OBSERVER],
            "not permitted: the role 'observer' may not create general keys",
        ),
        (
            vec![
                "create",
                "integration",
                "x",
                "--service",
                "S",
                "--as",
                OBSERVER,
            ],
            "not permitted",
        ),
        (vec!["disable", &id, "--as", MANAGER], "not permitted"),
        (vec!["delete", &id, "--as", OBSERVER], "not permitted"),
        (
            vec!["rotate", &id, "--grace", "1h", "--as", MANAGER],
            "not permitted",
        ),
        (
            vec!["show", &id, "--as", "other/PADMIN1/admin"],
            "no API key with id",
        ),
        (
            vec!["account", "set", "--rest-api", "off", "--as", MANAGER],
            "may not change the account's plan",
        ),
        (
            vec!["user", "set-role", "PX", "owner", "--as", ADMIN],
            "only an owner may make an owner",
        ),
        (
            vec!["user", "set-role", "PX", "admin", "--as", OBSERVER],
            "may not change users' roles",
        ),
        (
            vec!["audit", "--as", OBSERVER],
            "may not read the audit trail",
        ),
        (
            vec!["user", "show", "PADMIN1", "--as", OBSERVER],
            "may see only its own user",
        ),
        (
            vec![
                "create",
                "scoped",
                "x",
                "--scope",
                "users.write",
                "--as",
                MANAGER,
            ],
            "may not hand the scope 'users.write'",
        ),
    ] {
        let run = db.run(&args).fails(2, says);
        no_key_in(&run, &[&key]);
    }
    // A stored role counts, not the one claimed.
    db.run(&[
        "user",
        "set-role",
        "POBS1",
        "observer",
        "--as",
        "acme/POWNER/owner",
    ])
    .ok();
    db.run(&["create", "general", "x", "--as", "acme/POBS1/admin"])
        .fails(2, "not permitted");
    // Refusals are in the trail, the command line's own among them.
    let trail = db.run(&["audit", "--as", ADMIN, "--json"]).ok().json();
    let refused: Vec<(String, String)> = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actors"][0]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        refused.contains(&("create".into(), "POBS1".into())),
        "{refused:?}"
    );
    assert!(
        refused.contains(&("set_account".into(), "PMANAGER1".into())),
        "{refused:?}"
    );
    assert!(
        refused.contains(&("set_user_role".into(), "PADMIN1".into())),
        "{refused:?}"
    );
    // scan --disable with an actor who may not: an error (status 2), the key reported.
    let file = db.path("admin.txt");
    std::fs::write(&file, format!("token={key}")).unwrap();
    let run = db.run(&["scan", file.to_str().unwrap(), "--disable", "--as", MANAGER]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains(&id) && run.stderr.contains("could not disable"));
    no_key_in(&run, &[&key]);
}

#[test]
fn sqlite_lifecycle_from_create_to_delete() {
    let db = Db::sqlite();
    lifecycle(&db);
}

#[test]
fn sqlite_refusals_follow_the_permission_matrix() {
    let db = Db::sqlite();
    refusals(&db);
}

#[test]
fn postgres_lifecycle_and_refusals() {
    let url = std::env::var("APIKEYS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "APIKEYS_TEST_POSTGRES_URL is not set: this test needs a real PostgreSQL server. \
             Run `bash scripts/test.sh`, or `source scripts/services.sh` in bash first."
        )
    });
    let db = Db::postgres(&url);
    lifecycle(&db);
    refusals(&Db::postgres(&url));
    // Through the environment variable instead of --db.
    let mut c = Command::new(binary());
    c.args([
        "--schema",
        db.schema.as_deref().unwrap(),
        "list",
        "--as",
        ADMIN,
        "--json",
    ])
    .env("APIKEYS_DATABASE_URL", &url);
    let run = finish(c.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn help_and_version_work() {
    let run = finish(Command::new(binary()).arg("--help").output().unwrap());
    assert_eq!(run.code, 0);
    for cmd in [
        "account",
        "user",
        "create",
        "list",
        "show",
        "disable",
        "enable",
        "delete",
        "rotate",
        "end-rotation",
        "audit",
        "verify",
        "scan",
    ] {
        assert!(run.stdout.contains(cmd), "{cmd}: {run:?}");
    }
    let run = finish(
        Command::new(binary())
            .args(["create", "scoped", "--help"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--scope"));
    let run = finish(Command::new(binary()).arg("--version").output().unwrap());
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_status() {
    let db = Db::sqlite();
    let (key, id) = db.create(ADMIN, &["general", "k"]);
    let keys = [key.as_str(), PASTED];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "a command is needed"),
        (
            vec!["list", "--bogus", "--as", ADMIN],
            "unexpected argument '--bogus'",
        ),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["show", "PNOTANID", "--as", ADMIN], "invalid key_id"),
        (vec!["show", PASTED, "--as", ADMIN], "invalid key_id"),
        (
            vec!["create", "general", "x", PASTED, "--as", ADMIN],
            "unexpected argument '(redacted)'",
        ),
        (
            vec!["rotate", &id, "--grace", "5", "--as", ADMIN],
            "needs a unit",
        ),
        (
            vec!["rotate", &id, "--grace", PASTED, "--as", ADMIN],
            "is not a duration",
        ),
        (vec!["rotate", &id, "--as", ADMIN], "--grace"),
        (
            vec!["rotate", &id, "--grace", "400d", "--as", ADMIN],
            "invalid grace",
        ),
        (vec!["list"], "needs --as"),
        (
            vec!["list", "--as", "acme/PADMIN1"],
            "--as must be ACCOUNT/USER/ROLE",
        ),
        (
            vec!["list", "--as", "acme/PADMIN1/superuser"],
            "unknown role",
        ),
        (vec!["list", "--as", PASTED], "--as must be"),
        (vec!["verify"], "<TOKEN>"),
        (
            vec!["verify", &key, "--events", "--method", "POST"],
            "cannot be used with",
        ),
        (vec!["verify", &key, "--scope", "nope"], "invalid scope"),
        (vec!["create", "scoped", "x", "--as", MANAGER], "--scope"),
        (
            vec!["create", "general", "", "--as", ADMIN],
            "invalid description",
        ),
        (
            vec!["create", "general", "x", "--expires", "0s", "--as", ADMIN],
            "more than 0s",
        ),
        (vec!["account", "set", "--as", ADMIN], "nothing to set"),
        (
            vec!["account", "set", "--rest-api", "maybe", "--as", ADMIN],
            "invalid value 'maybe'",
        ),
        (
            vec!["user", "set-role", "PX", "god", "--as", ADMIN],
            "unknown role",
        ),
        (
            vec!["audit", "--since", "yesterday", "--as", ADMIN],
            "--since",
        ),
        (
            vec!["audit", "--since", "40d", "--as", ADMIN],
            "at most 31 days",
        ),
        (
            vec!["audit", "--action", "frob", "--as", ADMIN],
            "invalid action",
        ),
        (
            vec!["audit", "--limit", "5000", "--as", ADMIN],
            "invalid limit",
        ),
        (
            vec!["audit", "--cursor", "zzz", "--as", ADMIN],
            "invalid cursor",
        ),
        (vec!["scan"], "<PATH>"),
        (vec!["scan", "x", "--disable"], "needs --as"),
        (
            vec!["list", "--schema", "s", "--as", ADMIN],
            "--schema is for PostgreSQL",
        ),
        (
            vec!["disable", "P0000000000000", "--as", ADMIN],
            "no API key with id P0000000000000",
        ),
    ];
    for (args, says) in cases {
        let run = db.run(&args).fails(2, says);
        no_key_in(&run, &keys);
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }

    // A scan of a file that cannot be read: status 2.
    let run = db.run(&["scan", db.path("missing.txt").to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot read"), "{run:?}");

    // Arguments that are not UTF-8.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let run = finish(
            db.command(&[])
                .arg("show")
                .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
                .args(["--as", ADMIN])
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    }

    // Binary where a key is read: refused; binary to scan: fine.
    db.run_with_input(&["verify", "-"], &[0xff, 0xfe, 0x00, 0x80])
        .fails(2, "not text");
    db.run_with_input(&["verify", "-"], &vec![b'a'; 10_000])
        .fails(2, "too long");
    db.run_with_input(&["verify", "-"], b"\n")
        .fails(2, "no key");
    let mut binary = vec![0u8, 0xff, 0xfe, 0x89, b'P', b'N', b'G', b'\n'];
    binary.extend_from_slice(b"\x00token=");
    binary.extend_from_slice(key.as_bytes());
    binary.extend_from_slice(&[0xc3, 0x28, 0x00]);
    let bin_file = db.path("blob.bin");
    std::fs::write(&bin_file, &binary).unwrap();
    let run = db.run(&["scan", bin_file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(&id));
    no_key_in(&run, &keys);
}

#[test]
fn databases_that_are_missing_unreadable_or_down_are_clear_errors() {
    let db = Db::sqlite();
    // Missing: only the commands that write the first records make a new file.
    let missing = db.path("nothing-here.db");
    let m = missing.to_str().unwrap();
    for args in [
        vec!["--db", m, "list", "--as", ADMIN],
        vec!["--db", m, "verify", "y_NbAkKc66ryYTWUXYEu"],
        vec!["--db", m, "scan", "-"],
        vec!["--db", m, "audit", "--as", ADMIN],
        vec!["--db", m, "account", "show", "--as", ADMIN],
    ] {
        let run = finish(
            Command::new(binary())
                .args(&args)
                .env_remove("APIKEYS_DATABASE_URL")
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("no database at"), "{run:?}");
        assert!(!run.stderr.contains("y_NbAkKc66ryYTWUXYEu"));
        assert!(!missing.exists(), "{args:?} made the file");
    }
    let made = finish(
        Command::new(binary())
            .args([
                "--db",
                m,
                "user",
                "set-role",
                "PADMIN1",
                "admin",
                "--as",
                "acme/POWNER/owner",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(made.code, 0, "{made:?}");
    assert!(missing.exists());

    // Not a database; a directory.
    let garbage = db.path("garbage.db");
    std::fs::write(&garbage, vec![0x5au8; 4096]).unwrap();
    for path in [garbage.as_path(), db.dir.path()] {
        let run = finish(
            Command::new(binary())
                .args(["--db", path.to_str().unwrap(), "list", "--as", ADMIN])
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    }

    // A PostgreSQL server that does not answer: quick, and the password never shown.
    let started = Instant::now();
    let run = finish(
        Command::new(binary())
            .args([
                "--db",
                "postgres://app:hunter22@127.0.0.1:1/app",
                "--connect-timeout",
                "2s",
                "list",
                "--as",
                ADMIN,
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("cannot connect to PostgreSQL"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("hunter22"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let run = finish(
        Command::new(binary())
            .args(["list", "--as", ADMIN])
            .env(
                "APIKEYS_DATABASE_URL",
                "postgres://app:hunter22@db:notaport/app",
            )
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!run.stderr.contains("hunter22"), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}

#[test]
fn scan_streams_large_input_and_finds_a_key_across_a_chunk_boundary() {
    let db = Db::sqlite();
    let (key, id) = db.create(ADMIN, &["general", "in a big file"]);
    let (user_key, user_id) = db.create("acme/PRESP1/responder", &["user-token", "laptop"]);
    // 3 MiB of lines; the general key straddles the 1 MiB chunk boundary,
    // the user token the 2 MiB one.
    let line = "lorem ipsum dolor sit amet 0123456789abcdef 0123456789abcdef0123456789abcdef\n";
    let mut text = String::new();
    let mut lines = 0;
    let boundary = 1 << 20;
    while text.len() + line.len() <= boundary - 10 {
        text.push_str(line);
        lines += 1;
    }
    let pad = boundary - 10 - text.len();
    text.push_str(&" ".repeat(pad));
    text.push_str("token=");
    let general_offset = text.len();
    text.push_str(&key);
    text.push('\n');
    let general_line = lines + 1;
    while text.len() + line.len() <= 2 * boundary - 5 {
        text.push_str(line);
    }
    text.push_str(&"x".repeat(2 * boundary - 5 - text.len()));
    text.push(' ');
    let user_offset = text.len();
    text.push_str(&user_key);
    text.push('\n');
    while text.len() < 3 * boundary {
        text.push_str(line);
    }
    let file = db.path("big.txt");
    std::fs::write(&file, &text).unwrap();
    let run = db.run(&["scan", file.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    no_key_in(&run, &[&key, &user_key]);
    let v = run.json();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{v}");
    assert_eq!(findings[0]["key_id"], id.as_str());
    assert_eq!(findings[0]["offset"], general_offset);
    assert_eq!(findings[0]["line"], general_line);
    assert_eq!(findings[1]["key_id"], user_id.as_str());
    assert_eq!(findings[1]["offset"], user_offset);
    assert_eq!(v["bytes"], text.len());
}

#[test]
fn a_pepper_from_the_environment_is_used_for_every_digest() {
    let db = Db::sqlite();
    let run = |args: &[&str], pepper: Option<&str>| {
        let mut c = db.command(args);
        if let Some(p) = pepper {
            c.env("APIKEYS_PEPPER", p);
        }
        finish(c.output().unwrap())
    };
    let pepper = "a pepper of at least sixteen bytes";
    let made = run(
        &["create", "general", "peppered", "--as", ADMIN],
        Some(pepper),
    )
    .ok();
    let key = made.stdout.trim().to_owned();
    run(&["verify", &key], Some(pepper)).ok();
    assert_eq!(run(&["verify", &key], None).code, 1);
    run(&["verify", &key], Some("short")).fails(2, "pepper");
}
