//! What the secret-scanning tests share: a signer that signs reports
//! exactly as GitHub's partner program does (ECDSA P-256, SHA-256 over the
//! raw body, ASN.1 DER, base64), reports, and a keyring with one live key of
//! every kind.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;

use apikeys::{
    AccessLevel, Actor, AuditEvent, AuditQuery, KeyId, KeyKind, KeyRecord, Keyring, Method,
    Request, Role,
};
use apikeys_http::SecretScanning;
use base64ct::{Base64, Encoding};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use sha2::{Digest as _, Sha256};

/// A GitHub signing key made in the test from a seed.
pub struct Signer {
    pub identifier: String,
    key: SigningKey,
}

impl Signer {
    pub fn new(seed: &str) -> Signer {
        let secret: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
        Signer {
            identifier: hex(&Sha256::digest(format!("id:{seed}").as_bytes()).into()),
            key: SigningKey::from_slice(&secret).expect("a seed hash is a valid scalar"),
        }
    }

    /// The public key as GitHub publishes it (PEM, SubjectPublicKeyInfo).
    pub fn pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    pub fn der(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    /// `Github-Public-Key-Signature` for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let sig: Signature = self.key.sign(body);
        Base64::encode_string(sig.to_der().as_bytes())
    }

    /// The raw DER signature of `body`.
    pub fn sign_der(&self, body: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(body);
        sig.to_der().as_bytes().to_vec()
    }

    /// A signed `POST` of `body`.
    pub fn request(&self, body: &[u8]) -> http::Request<Vec<u8>> {
        http::Request::post("/github/secret-scanning")
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", &self.identifier)
            .header("Github-Public-Key-Signature", self.sign(body))
            .body(body.to_vec())
            .unwrap()
    }
}

pub fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of `token`, computed here independently of the receiver.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()).into())
}

pub const URL: &str = "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt";

/// A report of `tokens`, each as GitHub sends it.
pub fn report(tokens: &[&str]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| {
            serde_json::json!({
                "token": t,
                "type": "pagerduty_api_key",
                "url": URL,
                "source": "content",
            })
        })
        .collect();
    serde_json::to_vec(&entries).unwrap()
}

/// The labels of an answer, in order, after checking its shape: one element
/// per reported entry, each with exactly `token_hash`, `token_type`, `label`.
pub fn labels(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    v.as_array()
        .expect("the answer is an array")
        .iter()
        .map(|e| {
            let o = e.as_object().expect("each answer is an object");
            assert_eq!(o.len(), 3, "token_hash, token_type, label: {e}");
            let hash = o["token_hash"].as_str().unwrap();
            assert_eq!(hash.len(), 64);
            assert!(
                hash.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(o["token_type"].is_string());
            o["label"].as_str().unwrap().to_owned()
        })
        .collect()
}

pub fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

pub fn manager() -> Actor {
    Actor::new("acme", "PMANAGER1", Role::Manager)
}

/// One live key of every kind, and their records.
pub struct Keys {
    pub tokens: Vec<String>,
    pub ids: Vec<KeyId>,
}

pub fn live_keys(keyring: &Keyring) -> Keys {
    let issued = [
        keyring
            .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
            .unwrap(),
        keyring.create_user_token(&manager(), "laptop").unwrap(),
        keyring
            .create_scoped_token(&manager(), "closer", &["incidents.write"])
            .unwrap(),
        keyring
            .create_integration_key(&manager(), "PSERVICE1", "Datadog")
            .unwrap(),
        keyring
            .create_routing_key(&manager(), "PORCH1", "rules")
            .unwrap(),
    ];
    Keys {
        tokens: issued
            .iter()
            .map(|k| k.secret().expose().to_owned())
            .collect(),
        ids: issued.iter().map(|k| k.record().id).collect(),
    }
}

/// Whether `token` is accepted as a key now, for its API: admitted, or
/// refused only for what it asks (403 and the like come after the checks
/// that a disabled, expired or unknown key fails with 401).
pub fn works(keyring: &Keyring, token: &str) -> bool {
    let request = match KeyKind::parse(token) {
        Ok(KeyKind::Integration | KeyKind::Routing) => Request::events(),
        _ => Request::rest_method(Method::Get),
    };
    match keyring.authenticate(token, &request) {
        Ok(_) => true,
        Err(e) => e.http_status() != 401,
    }
}

pub fn record(keyring: &Keyring, id: KeyId) -> Option<KeyRecord> {
    keyring.store().get(id).unwrap()
}

/// Every audit record of `acme` this keyring keeps: the store's durable
/// trail when it keeps one, else the sink's.
pub fn trail(keyring: &Keyring) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    let mut query = AuditQuery::account("acme");
    query.limit = 1000;
    loop {
        let page = keyring.audit_records(&query).unwrap();
        out.extend(page.records);
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    out.reverse();
    out
}

/// The audit records a leak report left (actor `system`, with a report URL).
pub fn leak_records(keyring: &Keyring) -> Vec<AuditEvent> {
    trail(keyring)
        .into_iter()
        .filter(|e| e.actor == "system" && e.context.report_url.is_some())
        .collect()
}

/// A receiver trusting `signer`.
pub fn receiver(keyring: Arc<Keyring>, signer: &Signer) -> SecretScanning {
    SecretScanning::new(keyring)
        .trust_pem(&signer.identifier, &signer.pem())
        .unwrap()
}

/// Assert that nothing in `haystack` is one of `tokens`.
pub fn assert_no_token(haystack: &str, tokens: &[String]) {
    for t in tokens {
        assert!(
            !haystack.contains(t.as_str()),
            "a token leaked into {haystack:?}"
        );
    }
}

pub mod failing;
pub mod scenarios;
