//! The Events body parser every adapter shares never panics, and answers
//! exactly as the `serde_json` reading it replaced (a UTF-8 check, a depth
//! walk, then `serde_json` into an envelope with an optional `routing_key`):
//! the same key, or the same refusal, for any bytes. Accepted bodies are
//! also checked against a full JSON parse.
#![no_main]

use std::borrow::Cow;

use apikeys_http::routing_key;
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    routing_key: Option<Key<'a>>,
}

struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Key<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Text)
    }
}

/// Whether arrays and objects nest deeper than 128 outside strings.
fn too_deep(body: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > 128 {
                        return true;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    false
}

/// The verdict of the reading `routing_key` replaced: the key, or the
/// refusal's kind and message.
fn reference(body: &[u8]) -> Result<String, (&'static str, &'static str)> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(("invalid_body", "not an object"));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(("invalid_body", "not JSON"));
    };
    if too_deep(body) {
        return Err(("invalid_body", "too deep"));
    }
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(Envelope {
            routing_key: Some(Key(k)),
        }) => Ok(k.into_owned()),
        Ok(Envelope { routing_key: None }) => Err(("missing_routing_key", "missing")),
        Err(e) if e.is_data() => Err(("invalid_body", "not a string")),
        Err(_) => Err(("invalid_body", "not JSON")),
    }
}

fuzz_target!(|data: &[u8]| {
    let got = routing_key(data);
    let want = reference(data);
    match (&got, &want) {
        (Ok(k), Ok(w)) => assert_eq!(k, w),
        (Err(r), Err((kind, what))) => {
            assert_eq!(r.kind(), *kind, "{what}");
            let message = r.message().to_lowercase();
            let says = match *what {
                "not an object" => "object",
                "not JSON" => "json",
                "too deep" => "128",
                "not a string" => "routing_key",
                _ => "routing_key",
            };
            assert!(message.contains(says), "{what}: {message}");
        }
        _ => panic!(
            "routing_key {:?} but the reference {want:?}",
            got.as_ref().map_err(|r| r.kind())
        ),
    }
    if let Ok(key) = got {
        let text = std::str::from_utf8(data).expect("accepted bodies are UTF-8");
        // A number beyond f64 (`1e400`) is JSON by the grammar (RFC 8259 §6
        // leaves the range to implementations; Python reads it as inf,
        // JavaScript as Infinity) and the reference reading above accepts it,
        // but `serde_json::Value` refuses it: that check stops there.
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) if e.to_string().starts_with("number out of range") => return,
            Err(e) => panic!("accepted bodies are JSON: {e}"),
        };
        let object = value.as_object().expect("accepted bodies are objects");
        assert_eq!(
            object.get("routing_key").and_then(|v| v.as_str()),
            Some(&*key)
        );
    }
});
