//! The secret-scanning receiver, called directly ([`SecretScanning::handle`])
//! over the in-memory store: GitHub's published example, signed reports of
//! live keys, every bad input of the partner protocol, idempotency,
//! concurrent deliveries, configuration errors. The same checks run on
//! SQLite and PostgreSQL in `scanning_stores.rs`, and over sockets through
//! the axum mount in `scanning_router.rs`.

mod scanning_support;

use std::sync::Arc;
use std::time::Duration;

use apikeys::{
    AccessLevel, CallContext, Clock, Keyring, LeakAction, LeakOutcome, ManualClock, MemoryStore,
    Timestamp,
};
use apikeys_http::{ScanningConfigError, ScanningRefusal, SecretScanning};
use scanning_support::scenarios;
use scanning_support::*;

fn memory() -> Arc<Keyring> {
    Arc::new(Keyring::new(MemoryStore::new()))
}

/// A clock the test moves, shared with the keyring.
struct SharedClock(Arc<ManualClock>);

impl Clock for SharedClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

// GitHub's published example (docs.github.com, "Secret scanning partner
// program", the validation samples): a report signed by GitHub's key
// 90a42116…, with the signature GitHub made.
const GITHUB_KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
const GITHUB_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq
kCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==
-----END PUBLIC KEY-----";
const GITHUB_BODY: &str = r#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
const GITHUB_SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";

fn github_request(body: &str) -> http::Request<Vec<u8>> {
    http::Request::post("/")
        .header("GITHUB-PUBLIC-KEY-IDENTIFIER", GITHUB_KEY_ID)
        .header("GITHUB-PUBLIC-KEY-SIGNATURE", GITHUB_SIGNATURE)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

#[test]
fn githubs_own_signed_example_is_accepted_and_a_changed_copy_is_not() {
    let scanning = SecretScanning::new(memory())
        .trust_pem(GITHUB_KEY_ID, GITHUB_PEM)
        .unwrap();
    let res = scanning.handle(github_request(GITHUB_BODY));
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{
            "token_hash": token_hash("some_token"),
            "token_type": "some_type",
            "label": "false_positive",
        }])
    );
    // `printf some_token | sha256sum`.
    assert_eq!(
        v[0]["token_hash"],
        "9a45520a1213f15016d2d768b5fb3d904492a44ee274b44d4de8803e00fb536a"
    );
    let changed = GITHUB_BODY.replace("some_url", "some_urk");
    let res = scanning.handle(github_request(&changed));
    assert_eq!(res.status(), 401);
}

#[test]
fn live_keys_are_disabled_once_with_their_report() {
    scenarios::live_keys_are_disabled_once_with_their_report(memory());
}

#[test]
fn badly_signed_reports_disable_nothing() {
    scenarios::badly_signed_reports_disable_nothing(memory());
}

#[test]
fn concurrent_deliveries_disable_once() {
    scenarios::concurrent_deliveries_disable_once(memory(), 30, 4);
}

#[test]
fn states_answer_as_decided() {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let keyring = Keyring::builder()
        .clock(SharedClock(clock.clone()))
        .build()
        .unwrap();
    scenarios::states_answer_as_decided(Arc::new(keyring), &clock);
}

#[test]
fn delete_action_deletes_once() {
    scenarios::delete_action_deletes_once(memory());
}

/// A signed body that is not a JSON array: 400, nothing looked up, nothing
/// of the body in the answer.
#[test]
fn signed_bodies_that_are_not_a_json_array_are_refused() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let key = keys.tokens[0].as_str();
    let not_json = [
        String::new(),
        " ".to_owned(),
        format!("[{{\"token\":\"{key}\""),
        key.to_owned(),
        format!("[{{\"token\":\"{key}\"}}] x"),
        format!("[{{\"token\":\"{key}\",}}]"),
        "\u{feff}[]".to_owned(),
        "[1, 2".to_owned(),
        format!("{}{}", "[".repeat(200), "]".repeat(200)),
    ];
    for body in &not_json {
        let res = scanning.handle(signer.request(body.as_bytes()));
        assert_eq!(res.status(), 400, "{body:.40?}");
        assert_eq!(
            res.extensions().get::<ScanningRefusal>(),
            Some(&ScanningRefusal("not_json")),
            "{body:.40?}"
        );
        assert_no_token(&String::from_utf8_lossy(res.body()), &keys.tokens);
    }
    let mut invalid_utf8 = format!("[{{\"token\":\"{key}\"}}]").into_bytes();
    invalid_utf8.insert(3, 0xff);
    let res = scanning.handle(signer.request(&invalid_utf8));
    assert_eq!(res.status(), 400);
    for body in [
        format!("{{\"token\":\"{key}\",\"type\":\"t\",\"url\":\"u\"}}"),
        format!("\"{key}\""),
        "null".to_owned(),
        "42".to_owned(),
        "true".to_owned(),
    ] {
        let res = scanning.handle(signer.request(body.as_bytes()));
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(
            res.extensions().get::<ScanningRefusal>(),
            Some(&ScanningRefusal("not_an_array"))
        );
        let text = String::from_utf8_lossy(res.body()).into_owned();
        assert_eq!(
            text,
            r#"{"error":{"message":"the body must be a JSON array","code":2001}}"#
        );
    }
    for t in &keys.tokens {
        assert!(works(&keyring, t), "nothing was disabled");
    }
    assert!(leak_records(&keyring).is_empty());
    // An empty report is answered with an empty array.
    let res = scanning.handle(signer.request(b"[]"));
    assert_eq!(
        (res.status().as_u16(), res.body().as_slice()),
        (200, &b"[]"[..])
    );
}

/// Entries of the wrong shape are answered `false_positive`, in place, and
/// never make the report fail; a live key with odd metadata is still
/// taken out of service (a leaked key is leaked whatever the rest says).
#[test]
fn entries_of_the_wrong_shape_are_false_positives() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let (general, user) = (keys.tokens[0].as_str(), keys.tokens[1].as_str());
    let body = serde_json::json!([
        {"token": 12345, "type": "t", "url": URL, "source": "content"},
        {"token": null},
        {"token": [general]},
        {"token": {"token": general}},
        {"type": "t"},
        general,
        7,
        null,
        [general],
        {"token": general, "type": 5, "url": 6, "source": ["x"]},
        {"token": user, "type": "pagerduty\u{0}\u{1b}[31m_user", "url": "", "source": ""},
        {"token": "u+short", "type": general},
    ]);
    let body = serde_json::to_vec(&body).unwrap();
    let res = scanning.handle(signer.request(&body));
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    let expect = [
        "false_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "true_positive",
        "true_positive",
        "false_positive",
    ];
    assert_eq!(labels(res.body()), expect);
    let empty = token_hash("");
    for i in 0..9 {
        assert_eq!(v[i]["token_hash"], empty, "entry {i}: no string token");
    }
    assert_eq!(v[0]["token_type"], "t");
    assert_eq!(v[9]["token_type"], "", "a type that is not a string");
    assert_eq!(
        v[10]["token_type"], "pagerduty[31m_user",
        "control characters dropped"
    );
    assert_eq!(
        v[11]["token_type"], "(redacted)",
        "a key where the type goes"
    );
    assert_no_token(&String::from_utf8_lossy(res.body()), &keys.tokens);
    assert!(!works(&keyring, general));
    assert!(!works(&keyring, user));
    assert!(
        leak_records(&keyring).is_empty(),
        "neither record has a URL: one was a number, the other empty"
    );
    let all = trail(&keyring);
    let general_record = all
        .iter()
        .find(|e| e.key_id == Some(keys.ids[0]) && e.actor == "system")
        .unwrap();
    assert_eq!(
        general_record.context.report_url, None,
        "a URL that is not a string"
    );
    assert_eq!(general_record.context.report_source, None);
    let user_record = all
        .iter()
        .find(|e| e.key_id == Some(keys.ids[1]) && e.actor == "system")
        .unwrap();
    assert_eq!(
        user_record.context.report_url, None,
        "an empty URL is not kept"
    );
}

/// Tokens shaped like other issuers' keys, near misses of ours, and ours
/// changed in any way: `false_positive`, and nothing is touched.
#[test]
fn tokens_of_other_formats_are_false_positives() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let general = keys.tokens[0].as_str();
    let user = keys.tokens[1].as_str();
    let mut others: Vec<String> = vec![
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a".into(),
        "AKIAIOSFODNN7EXAMPLE".into(),
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy".into(),
        "NMIfyYncKcRALEXAMPLE".into(),
        "some_token".into(),
        format!(" {general}"),
        format!("{general} "),
        format!("{general}\n"),
        general.to_ascii_uppercase(),
        general[..19].to_owned(),
        format!("{general}x"),
        format!("Token token={general}"),
        user.replacen('+', "%2B", 1),
        user.replacen("u+", "s+", 1),
        user.replacen("u+", "U+", 1),
        format!("{user}\u{0}"),
        "é".repeat(10),
        "\u{0}".repeat(20),
        "x".repeat(100_000),
    ];
    others.push(general.chars().rev().collect());
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    let res = scanning.handle(signer.request(&report(&refs)));
    assert_eq!(res.status(), 200);
    assert_eq!(labels(res.body()), vec!["false_positive"; others.len()]);
    let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    for (i, t) in others.iter().enumerate() {
        assert_eq!(v[i]["token_hash"], token_hash(t), "entry {i}");
    }
    assert_no_token(&String::from_utf8_lossy(res.body()), &keys.tokens);
    for t in &keys.tokens {
        assert!(works(&keyring, t));
    }
    assert!(leak_records(&keyring).is_empty());
}

/// Huge bodies are refused before their signature is checked, by length
/// and by a declared `Content-Length`; a bound of the application's choice.
#[test]
fn huge_reports_are_refused_with_413() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer).max_body_bytes(4096);
    let keys = live_keys(&keyring);
    let mut tokens: Vec<&str> = keys.tokens.iter().map(String::as_str).collect();
    let filler = "x".repeat(5000);
    tokens.push(&filler);
    let body = report(&tokens);
    assert!(body.len() > 4096);
    let res = scanning.handle(signer.request(&body));
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.extensions().get::<ScanningRefusal>(),
        Some(&ScanningRefusal("body_too_large"))
    );
    let text = String::from_utf8_lossy(res.body()).into_owned();
    assert_eq!(
        text,
        r#"{"error":{"message":"the request body is larger than the limit of 4096 bytes","code":2001}}"#
    );
    // A small body declaring a huge length; a length that is not a number.
    let small = report(&tokens[..1]);
    let mut req = signer.request(&small);
    req.headers_mut()
        .insert("content-length", "99999999999999999999999".parse().unwrap());
    assert_eq!(scanning.handle(req).status(), 413);
    let mut req = signer.request(&small);
    req.headers_mut()
        .insert("content-length", "12a".parse().unwrap());
    assert_eq!(scanning.handle(req).status(), 400);
    for t in &keys.tokens {
        assert!(works(&keyring, t));
    }
    // At the bound exactly: accepted.
    let exact = SecretScanning::new(keyring.clone())
        .trust_pem(&signer.identifier, &signer.pem())
        .unwrap()
        .max_body_bytes(small.len());
    assert_eq!(exact.handle(signer.request(&small)).status(), 200);
    assert!(!works(&keyring, tokens[0]));
    // The default bound is 1 MiB.
    let default = receiver(keyring.clone(), &signer);
    let big = vec![b' '; (1 << 20) + 1];
    assert_eq!(default.handle(signer.request(&big)).status(), 413);
}

#[test]
fn only_post_is_answered() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let body = report(&[keys.tokens[0].as_str()]);
    for method in ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        let mut req = signer.request(&body);
        *req.method_mut() = method.parse().unwrap();
        let res = scanning.handle(req);
        assert_eq!(res.status(), 405, "{method}");
        assert_eq!(res.headers()["allow"], "POST");
    }
    assert!(works(&keyring, &keys.tokens[0]));
}

/// The URL a report gives is kept, but never a key inside it.
#[test]
fn a_key_inside_the_reported_url_is_redacted_in_the_record() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let (general, user) = (keys.tokens[0].as_str(), keys.tokens[1].as_str());
    let escaped = user.replacen('+', "%2B", 1);
    let url =
        format!("https://github.com/o/r/blob/abc/{general}/x.env?token={user}&k={escaped}#L1");
    let body = serde_json::to_vec(&serde_json::json!([
        {"token": general, "type": "t", "url": url, "source": format!("content {user}")},
    ]))
    .unwrap();
    let res = scanning.handle(signer.request(&body));
    assert_eq!(labels(res.body()), ["true_positive"]);
    let records = leak_records(&keyring);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].context.report_url.as_deref(),
        Some("https://github.com/o/r/blob/abc/(redacted)/x.env?token=(redacted)&k=(redacted)#L1")
    );
    assert_eq!(
        records[0].context.report_source.as_deref(),
        Some("content (redacted)")
    );
    let shown = format!(
        "{} {} {:?}",
        serde_json::to_string(&records[0]).unwrap(),
        records[0].to_pagerduty(),
        records[0]
    );
    assert_no_token(&shown, &keys.tokens);
    assert!(!shown.contains(&escaped));
}

/// A long URL is cut, on a character boundary; control characters drop it.
#[test]
fn report_context_values_are_bounded_and_clean() {
    let long = format!("https://github.com/{}", "é".repeat(3000));
    let c = CallContext::new()
        .report_url(&long)
        .report_source("content");
    let kept = c.report_url.unwrap();
    assert!(kept.len() <= apikeys::MAX_REPORT_URL_BYTES);
    assert!(long.starts_with(&kept));
    assert_eq!(c.report_source.as_deref(), Some("content"));
    let c = CallContext::new()
        .report_url("https://x/\nInjected: yes")
        .report_source(&"s".repeat(500));
    assert_eq!(c.report_url, None);
    assert_eq!(
        c.report_source.as_deref().map(str::len),
        Some(apikeys::MAX_CONTEXT_BYTES)
    );
    assert!(!CallContext::new().report_source("npm").is_empty());
}

/// The core call alone: what each outcome is, and that the verdict holds
/// no key.
#[test]
fn report_leaked_answers_what_it_did() {
    let keyring = memory();
    let keys = live_keys(&keyring);
    let ctx = CallContext::new().report_url(URL).report_source("commit");
    let v = keyring
        .report_leaked(&keys.tokens[0], &ctx, LeakAction::Disable)
        .unwrap();
    assert_eq!(v.outcome, LeakOutcome::Disabled);
    assert!(v.true_positive());
    let found = v.key.as_ref().unwrap();
    assert_eq!(found.key_id, keys.ids[0]);
    assert_eq!(
        found.state,
        apikeys::LeakState::Active,
        "its state before the call"
    );
    let shown = format!("{v:?} {}", serde_json::to_string(&v).unwrap());
    assert_no_token(&shown, &keys.tokens);
    let v = keyring
        .report_leaked(&keys.tokens[0], &ctx, LeakAction::Disable)
        .unwrap();
    assert_eq!(v.outcome, LeakOutcome::AlreadyReported);
    let v = keyring
        .report_leaked(&keys.tokens[0], &ctx, LeakAction::Delete)
        .unwrap();
    assert_eq!(
        v.outcome,
        LeakOutcome::AlreadyReported,
        "a key disabled by a leak stays as it is, whatever the action"
    );
    let v = keyring
        .report_leaked(&keys.tokens[1], &ctx, LeakAction::Delete)
        .unwrap();
    assert_eq!(v.outcome, LeakOutcome::Deleted);
    let v = keyring
        .report_leaked(&keys.tokens[1], &ctx, LeakAction::Delete)
        .unwrap();
    assert_eq!(v.outcome, LeakOutcome::NotAKey);
    assert!(!v.true_positive());
    for bad in ["", "nope", "y_NbAkKc66ryYTWUXYEu"] {
        let v = keyring
            .report_leaked(bad, &ctx, LeakAction::Disable)
            .unwrap();
        assert_eq!((v.outcome, v.key), (LeakOutcome::NotAKey, None));
    }
    assert_eq!("delete".parse::<LeakAction>().unwrap(), LeakAction::Delete);
    assert!("Delete".parse::<LeakAction>().is_err());
    assert_eq!(LeakAction::default(), LeakAction::Disable);
}

/// A key disabled by a leak report can be enabled again by an admin who
/// decides so (general keys); a new report then disables it again.
#[test]
fn an_enabled_leaked_key_is_disabled_by_the_next_report() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let key = keyring
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    let body = report(&[key.secret().expose()]);
    scanning.handle(signer.request(&body));
    assert!(!works(&keyring, key.secret().expose()));
    keyring
        .enable(&admin(), &key.record().id.to_string())
        .unwrap();
    assert!(works(&keyring, key.secret().expose()));
    let res = scanning.handle(signer.request(&body));
    assert_eq!(labels(res.body()), ["true_positive"]);
    assert!(!works(&keyring, key.secret().expose()));
    assert_eq!(leak_records(&keyring).len(), 2);
}

#[test]
fn configuration_errors_are_clear() {
    let signer = Signer::new("github-1");
    let pem = signer.pem();
    let err = |r: Result<SecretScanning, ScanningConfigError>| r.unwrap_err();
    let base = || SecretScanning::new(memory());

    let e = err(base().trust_pem("", &pem));
    assert!(matches!(e, ScanningConfigError::InvalidIdentifier { .. }));
    assert_eq!(
        e.to_string(),
        "invalid public key identifier: must not be empty"
    );
    for id in ["a b", "tab\there", "é", "nul\0", &"a".repeat(257)] {
        assert!(
            matches!(
                err(base().trust_pem(id, &pem)),
                ScanningConfigError::InvalidIdentifier { .. }
            ),
            "{id:?}"
        );
    }
    let e = err(base().trust_pem("k1", &pem).unwrap().trust_pem("k1", &pem));
    assert_eq!(e.to_string(), "public key identifier \"k1\" is given twice");

    for bad in [
        String::new(),
        "not a key".to_owned(),
        pem.replace("PUBLIC KEY", "PRIVATE KEY"),
        pem.replace('M', "N"),
        pem.lines().take(2).collect::<Vec<_>>().join("\n"),
    ] {
        let e = err(base().trust_pem("k1", &bad));
        assert!(
            matches!(e, ScanningConfigError::InvalidKey { ref identifier, .. } if identifier == "k1"),
            "{bad:?}: {e:?}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("public key \"k1\": not a P-256 public key in PEM"),
            "{text}"
        );
    }
    // An Ed25519 key (RFC 8410's example) is not a P-256 key.
    let ed25519 = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----";
    let e = err(base().trust_pem("ed", ed25519));
    assert!(matches!(e, ScanningConfigError::InvalidKey { .. }), "{e:?}");
    let e = err(base().trust_der("k1", b"\x30\x03\x02\x01\x01"));
    assert!(e.to_string().contains("DER"), "{e}");
    // DER of the real key works.
    let scanning = base().trust_der("k1", &signer.der()).unwrap();
    assert_eq!(scanning.trusted_identifiers(), ["k1"]);

    // GitHub's key list.
    let list = serde_json::json!({"public_keys": [
        {"key_identifier": "k1", "key": signer.pem(), "is_current": true},
        {"key_identifier": GITHUB_KEY_ID, "key": GITHUB_PEM, "is_current": false},
    ]})
    .to_string();
    let scanning = base().trust_github_keys(&list).unwrap();
    assert_eq!(scanning.trusted_identifiers(), [GITHUB_KEY_ID, "k1"]);
    assert_eq!(scanning.handle(github_request(GITHUB_BODY)).status(), 200);
    for (bad, why) in [
        ("", "not valid JSON"),
        ("[]", "no \"public_keys\" array"),
        (r#"{"public_keys": {}}"#, "no \"public_keys\" array"),
        (r#"{"public_keys": []}"#, "\"public_keys\" is empty"),
        (
            r#"{"public_keys": [{"key": "x"}]}"#,
            "entry 0 has no string \"key_identifier\"",
        ),
        (
            r#"{"public_keys": [{"key_identifier": "a", "key": 1}]}"#,
            "entry 0 has no string \"key\"",
        ),
    ] {
        let e = err(base().trust_github_keys(bad));
        assert_eq!(
            e,
            ScanningConfigError::InvalidKeyList { reason: why.into() },
            "{bad}"
        );
    }
    let e = err(base().trust_github_keys(
        &serde_json::json!({"public_keys": [{"key_identifier": "k9", "key": "garbage"}]})
            .to_string(),
    ));
    assert!(
        matches!(e, ScanningConfigError::InvalidKey { ref identifier, .. } if identifier == "k9")
    );

    // A receiver trusting no key refuses every report.
    let none = base();
    assert_eq!(none.handle(signer.request(b"[]")).status(), 401);
    assert!(format!("{none:?}").contains("identifiers: []"));
}

/// `handle` takes a store failure as 500 with the generic message, and
/// the report can be delivered again once the store is back.
#[test]
fn a_failing_store_is_a_500_and_the_report_can_be_delivered_again() {
    let failing = Arc::new(scanning_support::failing::FailingStore::default());
    let keyring = Arc::new(
        Keyring::builder()
            .shared_store(failing.clone())
            .build()
            .unwrap(),
    );
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let body = report(&[keys.tokens[0].as_str()]);
    failing.fail(true);
    let res = scanning.handle(signer.request(&body));
    assert_eq!(res.status(), 500);
    assert_eq!(
        String::from_utf8_lossy(res.body()),
        r#"{"error":{"message":"an internal error occurred","code":2000}}"#
    );
    failing.fail(false);
    assert!(works(&keyring, &keys.tokens[0]));
    let res = scanning.handle(signer.request(&body));
    assert_eq!(labels(res.body()), ["true_positive"]);
    assert!(!works(&keyring, &keys.tokens[0]));
    let _ = Duration::ZERO;
}

/// One key reported twice in one report (GitHub found it in two files):
/// both entries `true_positive`, one disable, one record — the first
/// entry's URL.
#[test]
fn a_key_twice_in_one_report_is_disabled_once() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    let body = serde_json::to_vec(&serde_json::json!([
        {"token": keys.tokens[0], "type": "t", "url": "https://github.com/a/b/blob/1/first.env", "source": "content"},
        {"token": keys.tokens[0], "type": "t", "url": "https://github.com/a/b/blob/1/second.env", "source": "commit"},
    ]))
    .unwrap();
    let res = scanning.handle(signer.request(&body));
    assert_eq!(labels(res.body()), ["true_positive", "true_positive"]);
    let records = leak_records(&keyring);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].context.report_url.as_deref(),
        Some("https://github.com/a/b/blob/1/first.env")
    );
}

/// The signature is checked before the body is even parsed: a body that is
/// not JSON, or not an array, is refused as unsigned (401), not as bad JSON
/// (400), when its signature is missing or wrong.
#[test]
fn the_signature_is_checked_before_the_body_is_parsed() {
    let keyring = memory();
    let signer = Signer::new("github-1");
    let stranger = Signer::new("not-github");
    let scanning = receiver(keyring, &signer);
    for body in [&b"not json"[..], b"{}", b"[{\"token\":"] {
        let unsigned = http::Request::post("/").body(body.to_vec()).unwrap();
        let res = scanning.handle(unsigned);
        assert_eq!(res.status(), 401, "{body:?}");
        let mut forged = stranger.request(body);
        forged.headers_mut().insert(
            "github-public-key-identifier",
            signer.identifier.parse().unwrap(),
        );
        let res = scanning.handle(forged);
        assert_eq!(res.status(), 401, "{body:?}");
        assert_eq!(
            res.extensions().get::<ScanningRefusal>(),
            Some(&ScanningRefusal("bad_signature"))
        );
        // Signed: now it is the body's turn.
        assert_eq!(scanning.handle(signer.request(body)).status(), 400);
    }
}
