//! Checks of the receiver that hold on every store: each takes a keyring
//! (and, for the states, its clock) and runs the receiver against it.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use apikeys::{
    AccessLevel, AuditAction, Keyring, LEAK_REPORT, LeakAction, ManualClock, NewKey, Timestamp,
};
use apikeys_http::SecretScanning;

use super::*;

/// Every kind of live key reported: each `true_positive`, each disabled by
/// the leak and refused from then on, each with exactly one audit record
/// carrying the report's URL and source and no key; the same report again
/// answers the same bytes and writes nothing.
pub fn live_keys_are_disabled_once_with_their_report(keyring: Arc<Keyring>) {
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let keys = live_keys(&keyring);
    for t in &keys.tokens {
        assert!(works(&keyring, t));
    }
    let before = trail(&keyring).len();
    let tokens: Vec<&str> = keys.tokens.iter().map(String::as_str).collect();
    let body = report(&tokens);

    let first = scanning.handle(signer.request(&body));
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["content-type"],
        "application/json",
        "the answer is JSON"
    );
    assert_eq!(labels(first.body()), vec!["true_positive"; 5]);
    let answer: serde_json::Value = serde_json::from_slice(first.body()).unwrap();
    for (i, t) in keys.tokens.iter().enumerate() {
        assert_eq!(answer[i]["token_hash"], token_hash(t), "entry {i}");
        assert_eq!(answer[i]["token_type"], "pagerduty_api_key");
    }
    assert_no_token(&String::from_utf8_lossy(first.body()), &keys.tokens);

    for (t, id) in keys.tokens.iter().zip(&keys.ids) {
        assert!(!works(&keyring, t), "a reported key is refused at once");
        let r = record(&keyring, *id).expect("disabling keeps the record");
        assert_eq!(r.disabled.as_ref().map(|d| &*d.by), Some(LEAK_REPORT));
    }
    let records = leak_records(&keyring);
    assert_eq!(records.len(), 5, "one record per key: {records:#?}");
    assert_eq!(trail(&keyring).len(), before + 5, "and nothing else");
    for (r, id) in records.iter().zip(&keys.ids) {
        assert_eq!(r.key_id, Some(*id));
        assert_eq!(r.action, AuditAction::Disable);
        assert_eq!(r.account, "acme");
        assert_eq!(r.actor, "system");
        assert_eq!(r.actor_role, None);
        assert_eq!(r.context.report_url.as_deref(), Some(URL));
        assert_eq!(r.context.report_source.as_deref(), Some("content"));
        assert!(
            r.changes
                .iter()
                .any(|c| c.field == "disabled" && c.value.as_deref() == Some("true")),
            "{r:?}"
        );
        assert!(
            r.changes
                .iter()
                .any(|c| c.field == "leaked" && c.value.as_deref() == Some("true")),
            "{r:?}"
        );
        let pd = r.to_pagerduty();
        assert_eq!(pd["execution_context"]["report_url"], URL);
        assert_eq!(pd["execution_context"]["report_source"], "content");
        for shown in [
            serde_json::to_string(r).unwrap(),
            pd.to_string(),
            format!("{r:?}"),
        ] {
            assert_no_token(&shown, &keys.tokens);
        }
    }

    let second = scanning.handle(signer.request(&body));
    assert_eq!(second.status(), 200);
    assert_eq!(
        second.body(),
        first.body(),
        "the same report, the same answer"
    );
    assert_eq!(
        leak_records(&keyring).len(),
        5,
        "a repeated report records nothing"
    );
    assert_eq!(trail(&keyring).len(), before + 5);
}

/// Requests that are not signed by a trusted key over exactly their body:
/// each refused with 401 before a token is read — with live keys in the
/// body, none is disabled and no record is written.
pub fn badly_signed_reports_disable_nothing(keyring: Arc<Keyring>) {
    let signer = Signer::new("github-1");
    let other = Signer::new("github-2");
    let stranger = Signer::new("not-github");
    let scanning = receiver(keyring.clone(), &signer)
        .trust_pem(&other.identifier, &other.pem())
        .unwrap();
    let keys = live_keys(&keyring);
    let tokens: Vec<&str> = keys.tokens.iter().map(String::as_str).collect();
    let body = report(&tokens);
    let before = trail(&keyring).len();

    let sig = signer.sign(&body);
    let der = signer.sign_der(&body);
    let mut changed = body.clone();
    let last = changed.len() - 2;
    changed[last] = b' '; // `}]` → ` ]`: still a JSON array, one byte changed
    let with_blank = [body.as_slice(), b" "].concat();
    let id = signer.identifier.as_str();
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        let mut b = http::Request::post("/");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(body.to_vec()).unwrap()
    };
    let other_s = {
        // The signature with one bit of s flipped.
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        let (r, s) = sig.split_bytes();
        let mut s = s;
        s[31] ^= 1;
        let forged = p256::ecdsa::Signature::from_scalars(r, s).unwrap();
        base64ct::Base64::encode_string(forged.to_der().as_bytes())
    };
    let bad_bytes = http::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
    // Padding wrong: cut when there is some, one too many when there is none.
    let bad_padding = if sig.ends_with('=') {
        sig.trim_end_matches('=').to_owned()
    } else {
        format!("{sig}=")
    };
    let cases: Vec<(&str, http::Request<Vec<u8>>, &str)> = vec![
        ("no headers", post(&[], &body), "missing_signature_header"),
        (
            "no signature",
            post(&[("Github-Public-Key-Identifier", id)], &body),
            "missing_signature_header",
        ),
        (
            "no identifier",
            post(&[("Github-Public-Key-Signature", &sig)], &body),
            "missing_signature_header",
        ),
        (
            "empty signature",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", ""),
                ],
                &body,
            ),
            "malformed_signature_header",
        ),
        (
            "two signatures",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &sig),
                    ("Github-Public-Key-Signature", &sig),
                ],
                &body,
            ),
            "repeated_signature_header",
        ),
        (
            "two identifiers",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Identifier", &other.identifier),
                    ("Github-Public-Key-Signature", &sig),
                ],
                &body,
            ),
            "repeated_signature_header",
        ),
        (
            "unknown identifier",
            post(
                &[
                    ("Github-Public-Key-Identifier", &stranger.identifier),
                    ("Github-Public-Key-Signature", &stranger.sign(&body)),
                ],
                &body,
            ),
            "unknown_key_identifier",
        ),
        (
            "identifier of a trusted key, signed by an untrusted one",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &stranger.sign(&body)),
                ],
                &body,
            ),
            "bad_signature",
        ),
        (
            "signed by the other trusted key, naming this one",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &other.sign(&body)),
                ],
                &body,
            ),
            "bad_signature",
        ),
        (
            "signature not base64",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", "not*base64!"),
                ],
                &body,
            ),
            "malformed_signature",
        ),
        (
            "base64 but not DER",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", "aGVsbG8gd29ybGQ="),
                ],
                &body,
            ),
            "malformed_signature",
        ),
        (
            "raw r||s instead of DER",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    (
                        "Github-Public-Key-Signature",
                        &base64ct::Base64::encode_string(
                            &p256::ecdsa::Signature::from_der(&der).unwrap().to_bytes(),
                        ),
                    ),
                ],
                &body,
            ),
            "malformed_signature",
        ),
        (
            "DER cut short",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    (
                        "Github-Public-Key-Signature",
                        &base64ct::Base64::encode_string(&der[..der.len() - 1]),
                    ),
                ],
                &body,
            ),
            "malformed_signature",
        ),
        (
            "signature with wrong padding",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &bad_padding),
                ],
                &body,
            ),
            "malformed_signature",
        ),
        (
            "another (r, s)",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &other_s),
                ],
                &body,
            ),
            "bad_signature",
        ),
        (
            "one byte of the body changed",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &sig),
                ],
                &changed,
            ),
            "bad_signature",
        ),
        (
            "a blank added to the body",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &sig),
                ],
                &with_blank,
            ),
            "bad_signature",
        ),
        (
            "signature of another body",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &signer.sign(b"[]")),
                ],
                &body,
            ),
            "bad_signature",
        ),
        (
            "identifier too long",
            post(
                &[
                    ("Github-Public-Key-Identifier", &"a".repeat(300)),
                    ("Github-Public-Key-Signature", &sig),
                ],
                &body,
            ),
            "malformed_signature_header",
        ),
        (
            "signature too long",
            post(
                &[
                    ("Github-Public-Key-Identifier", id),
                    ("Github-Public-Key-Signature", &"A".repeat(400)),
                ],
                &body,
            ),
            "malformed_signature_header",
        ),
        (
            "identifier not ASCII",
            {
                let mut r = post(&[("Github-Public-Key-Signature", &sig)], &body);
                r.headers_mut()
                    .insert("github-public-key-identifier", bad_bytes.clone());
                r
            },
            "malformed_signature_header",
        ),
        (
            "identifier with a blank inside",
            post(
                &[
                    ("Github-Public-Key-Identifier", &format!("{id} x")),
                    ("Github-Public-Key-Signature", &sig),
                ],
                &body,
            ),
            "malformed_signature_header",
        ),
    ];
    for (name, request, why) in cases {
        let res = scanning.handle(request);
        assert_eq!(res.status(), 401, "{name}");
        let refusal = res
            .extensions()
            .get::<apikeys_http::ScanningRefusal>()
            .copied();
        assert_eq!(refusal, Some(apikeys_http::ScanningRefusal(why)), "{name}");
        let text = String::from_utf8_lossy(res.body()).into_owned();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], 2006, "{name}");
        assert_no_token(&text, &keys.tokens);
        assert!(!text.contains(&sig), "{name}: the signature is not echoed");
        for t in &keys.tokens {
            assert!(works(&keyring, t), "{name}: a key was disabled");
        }
        assert_eq!(
            trail(&keyring).len(),
            before,
            "{name}: a record was written"
        );
    }
    // Headers in any case, blanks around values: accepted.
    let res = scanning.handle(post(
        &[
            ("GITHUB-PUBLIC-KEY-IDENTIFIER", &format!(" {id} ")),
            ("github-public-key-signature", &format!("{sig} ")),
        ],
        &body,
    ));
    assert_eq!(res.status(), 200);
    assert_eq!(labels(res.body()), vec!["true_positive"; 5]);
}

/// The same report delivered by several threads at once, round after
/// round: every answer the same, each key disabled once, one record each.
pub fn concurrent_deliveries_disable_once(keyring: Arc<Keyring>, rounds: usize, threads: usize) {
    let signer = Signer::new("github-1");
    let scanning = Arc::new(receiver(keyring.clone(), &signer));
    for round in 0..rounds {
        let general = keyring
            .create_general_key(&admin(), &format!("ci {round}"), AccessLevel::FullAccess)
            .unwrap();
        let user = keyring
            .create_user_token(&manager(), &format!("laptop {round}"))
            .unwrap();
        let tokens = [general.secret().expose(), user.secret().expose()];
        let body = report(&tokens);
        let before = leak_records(&keyring).len();
        let barrier = Arc::new(Barrier::new(threads));
        let answers: Vec<(u16, Vec<u8>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let request = signer.request(&body);
                    let barrier = barrier.clone();
                    let scanning = scanning.clone();
                    s.spawn(move || {
                        barrier.wait();
                        let res = scanning.handle(request);
                        (res.status().as_u16(), res.into_body())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (status, body) in &answers {
            assert_eq!(*status, 200, "round {round}");
            assert_eq!(body, &answers[0].1, "round {round}: answers differ");
        }
        assert_eq!(labels(&answers[0].1), vec!["true_positive"; 2]);
        let records = leak_records(&keyring);
        assert_eq!(
            records.len() - before,
            2,
            "round {round}: one record per key, however many deliveries"
        );
        for id in [general.record().id, user.record().id] {
            let n = records.iter().filter(|r| r.key_id == Some(id)).count();
            assert_eq!(n, 1, "round {round}: {id} recorded {n} times");
            let r = record(&keyring, id).unwrap();
            assert_eq!(r.disabled.as_ref().map(|d| &*d.by), Some(LEAK_REPORT));
        }
    }
}

/// What a reported key in each state answers and what it does (the
/// decisions of docs/design.md §10): every key of the store is
/// `true_positive`; a general key someone else disabled is marked disabled
/// by the leak (one record, then none); expired, rotated-out and offboarded
/// keys are left as they are (no record); a deleted key and strings that
/// are not keys of the store are `false_positive`.
pub fn states_answer_as_decided(keyring: Arc<Keyring>, clock: &ManualClock) {
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer);
    let disabled_by_admin = keyring
        .create_general_key(&admin(), "paused", AccessLevel::FullAccess)
        .unwrap();
    keyring
        .disable(&admin(), &disabled_by_admin.record().id.to_string())
        .unwrap();
    let expiring = keyring
        .create(
            &admin(),
            NewKey::general("short", AccessLevel::ReadOnly)
                .expires_at(Timestamp::from_unix_millis(clock_now(clock) + 3_600_000)),
        )
        .unwrap();
    let rotated = keyring
        .create_general_key(&admin(), "old", AccessLevel::FullAccess)
        .unwrap();
    let successor = keyring
        .rotate(
            &admin(),
            &rotated.record().id.to_string(),
            Duration::from_secs(60),
        )
        .unwrap();
    let leaver = apikeys::Actor::new("acme", "PLEAVER1", apikeys::Role::Manager);
    let offboarded = keyring.create_user_token(&leaver, "old laptop").unwrap();
    keyring.remove_user("acme", "PLEAVER1").unwrap();
    let deleted = keyring
        .create_general_key(&admin(), "gone", AccessLevel::FullAccess)
        .unwrap();
    keyring
        .delete(&admin(), &deleted.record().id.to_string())
        .unwrap();
    clock.advance(Duration::from_secs(2 * 3600));

    let unknown_general = "y_NbAkKc66ryYTWUXYEu";
    let tokens = [
        disabled_by_admin.secret().expose(),        // 0
        expiring.secret().expose(),                 // 1
        rotated.secret().expose(),                  // 2 (its grace is over)
        successor.secret().expose(),                // 3 live
        offboarded.secret().expose(),               // 4
        deleted.secret().expose(),                  // 5
        unknown_general,                            // 6
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a", // 7 another issuer's format
        "",                                         // 8
    ];
    let before = leak_records(&keyring).len();
    let res = scanning.handle(signer.request(&report(&tokens)));
    assert_eq!(res.status(), 200);
    assert_eq!(
        labels(res.body()),
        [
            "true_positive",
            "true_positive",
            "true_positive",
            "true_positive",
            "true_positive",
            "false_positive",
            "false_positive",
            "false_positive",
            "false_positive",
        ]
    );
    let records = leak_records(&keyring);
    let new: Vec<_> = records[before..].to_vec();
    let ids: Vec<_> = new.iter().map(|r| r.key_id.unwrap()).collect();
    assert_eq!(
        ids,
        [disabled_by_admin.record().id, successor.record().id],
        "only the keys that could work again are acted on: {new:#?}"
    );
    let remark = &new[0];
    assert!(
        remark.changes.iter().any(|c| c.field == "disabled_by"
            && c.before_value.as_deref() == Some("PADMIN1")
            && c.value.as_deref() == Some(LEAK_REPORT)),
        "{remark:?}"
    );
    assert!(
        !remark.changes.iter().any(|c| c.field == "disabled"),
        "it was disabled already: {remark:?}"
    );
    let r = record(&keyring, disabled_by_admin.record().id).unwrap();
    assert_eq!(r.disabled.as_ref().map(|d| &*d.by), Some(LEAK_REPORT));
    let r = record(&keyring, offboarded.record().id).unwrap();
    assert_eq!(
        r.disabled.as_ref().map(|d| &*d.by),
        Some(apikeys::OFFBOARDING),
        "an offboarded token stays as offboarding left it"
    );
    assert!(
        record(&keyring, expiring.record().id)
            .unwrap()
            .disabled
            .is_none()
    );
    assert!(
        record(&keyring, rotated.record().id)
            .unwrap()
            .disabled
            .is_none()
    );
    assert!(!works(&keyring, successor.secret().expose()));

    // Again: the same labels, nothing written.
    let again = scanning.handle(signer.request(&report(&tokens)));
    assert_eq!(again.body(), res.body());
    assert_eq!(leak_records(&keyring).len(), records.len());
}

fn clock_now(clock: &ManualClock) -> u64 {
    apikeys::Clock::now(clock).unix_millis()
}

/// With [`LeakAction::Delete`]: live keys are deleted with a `delete`
/// record carrying the report; the same receiver answers a repeated report
/// the same; a receiver that did not see the deletion (a restart, another
/// process) answers `false_positive` for them (docs/leaks.md).
pub fn delete_action_deletes_once(keyring: Arc<Keyring>) {
    let signer = Signer::new("github-1");
    let scanning = receiver(keyring.clone(), &signer).on_live_key(LeakAction::Delete);
    let keys = live_keys(&keyring);
    let tokens: Vec<&str> = keys.tokens.iter().map(String::as_str).collect();
    let body = report(&tokens);
    let before = leak_records(&keyring).len();
    let first = scanning.handle(signer.request(&body));
    assert_eq!(labels(first.body()), vec!["true_positive"; 5]);
    for id in &keys.ids {
        assert!(record(&keyring, *id).is_none(), "deleted");
    }
    let records = leak_records(&keyring);
    assert_eq!(records.len() - before, 5);
    for r in &records[before..] {
        assert_eq!(r.action, AuditAction::Delete);
        assert!(r.changes.iter().any(|c| c.field == "leaked"), "{r:?}");
        assert_eq!(r.context.report_url.as_deref(), Some(URL));
        assert_eq!(r.context.report_source.as_deref(), Some("content"));
    }
    let second = scanning.handle(signer.request(&body));
    assert_eq!(
        second.body(),
        first.body(),
        "the receiver remembers what it deleted"
    );
    assert_eq!(leak_records(&keyring).len(), records.len());

    let restarted = receiver(keyring.clone(), &signer).on_live_key(LeakAction::Delete);
    let after_restart = restarted.handle(signer.request(&body));
    assert_eq!(
        labels(after_restart.body()),
        vec!["false_positive"; 5],
        "a deleted key leaves nothing to recognise it by"
    );
    assert_eq!(leak_records(&keyring).len(), records.len());
}

/// A receiver over `keyring` for the scenarios that need no special setup.
pub fn scanning_for(keyring: Arc<Keyring>) -> SecretScanning {
    receiver(keyring, &Signer::new("github-1"))
}
