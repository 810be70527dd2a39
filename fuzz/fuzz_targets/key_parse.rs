//! `KeyKind::parse_bytes` is total: any bytes give a kind or `Malformed`,
//! never a panic; a kind means the length and prefix of that kind, and the
//! `&str` parser agrees on UTF-8 input.
#![no_main]

use apikeys::KeyKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let by_bytes = KeyKind::parse_bytes(data);
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(KeyKind::parse(s).ok(), by_bytes.ok());
    }
    if let Ok(kind) = by_bytes {
        assert_eq!(data.len(), kind.key_len(), "{kind:?}");
        assert!(data.starts_with(kind.prefix().as_bytes()), "{kind:?}");
        assert!(data.is_ascii());
    }
});
