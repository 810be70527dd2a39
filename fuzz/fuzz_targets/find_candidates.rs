//! `find_candidates_in_bytes` never panics on any bytes; every candidate is
//! a whole word of the key alphabet that parses as its kind, in order and
//! without overlap; every whole word shaped like a prefixed kind (user
//! token, scoped token, routing key) is found; and on UTF-8 input the `&str`
//! scanner agrees.
#![no_main]

use apikeys::{KeyKind, find_candidates, find_candidates_in_bytes};
use libfuzzer_sys::fuzz_target;

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+')
}

fuzz_target!(|data: &[u8]| {
    let found = find_candidates_in_bytes(data);
    let mut last_end = 0;
    for c in &found {
        assert!(c.start >= last_end && c.start < c.end && c.end <= data.len());
        last_end = c.end;
        assert_eq!(&data[c.range()], c.expose().as_bytes());
        assert_eq!(KeyKind::parse(c.expose()), Ok(c.kind));
        assert!(c.start == 0 || !key_byte(data[c.start - 1]));
        assert!(c.end == data.len() || !key_byte(data[c.end]));
        assert!(!format!("{c:?}").contains(c.expose()));
    }
    // Completeness for the prefixed kinds: every whole word that parses as one is found.
    let mut i = 0;
    while i < data.len() {
        if !key_byte(data[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < data.len() && key_byte(data[i]) {
            i += 1;
        }
        if let Ok(kind @ (KeyKind::UserToken | KeyKind::Scoped | KeyKind::Routing)) =
            KeyKind::parse_bytes(&data[start..i])
        {
            assert!(
                found.iter().any(|c| c.start == start && c.end == i && c.kind == kind),
                "a {kind} at {start} was missed"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(find_candidates(text), found);
    }
});
