//! The Events body parser every adapter shares never panics, and agrees with
//! a full JSON parse: when it accepts a body, the body is a valid UTF-8 JSON
//! object whose `routing_key` is the string it returned.
#![no_main]

use apikeys_http::routing_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = routing_key(data) {
        let text = std::str::from_utf8(data).expect("accepted bodies are UTF-8");
        let value: serde_json::Value =
            serde_json::from_str(text).expect("accepted bodies are JSON");
        let object = value.as_object().expect("accepted bodies are objects");
        assert_eq!(
            object.get("routing_key").and_then(|v| v.as_str()),
            Some(&*key)
        );
    }
});
