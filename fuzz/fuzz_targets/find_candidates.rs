//! `find_candidates_in_bytes` never panics on any bytes; every candidate is
//! a whole word that parses as its kind, in order and without overlap; every
//! whole word shaped like a prefixed kind (user token, scoped token, routing
//! key) is found; the `&str` scanner agrees on UTF-8 input; and a
//! `StreamScanner` fed the same bytes in chunks (of a size the input's first
//! byte chooses) finds the same candidates at the same offsets.
#![no_main]

use apikeys::{KeyKind, StreamScanner, find_candidates, find_candidates_in_bytes};
use libfuzzer_sys::fuzz_target;

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The documented word rule: key bytes, and the `+` of a `u+`/`s+` prefix
/// whose letter does not follow a key byte.
fn word_byte(d: &[u8], p: usize) -> bool {
    key_byte(d[p])
        || (d[p] == b'+'
            && p >= 1
            && matches!(d[p - 1], b'u' | b's')
            && (p < 2 || !key_byte(d[p - 2])))
}

fuzz_target!(|input: &[u8]| {
    let (size, data) = match input.split_first() {
        Some((&s, rest)) => (usize::from(s % 64) + 1, rest),
        None => (1, input),
    };
    let found = find_candidates_in_bytes(data);
    let mut last_end = 0;
    for c in &found {
        assert!(c.start >= last_end && c.start < c.end && c.end <= data.len());
        last_end = c.end;
        assert_eq!(&data[c.range()], c.expose().as_bytes());
        assert_eq!(KeyKind::parse(c.expose()), Ok(c.kind));
        assert!(c.start == 0 || !word_byte(data, c.start - 1));
        assert!(c.end == data.len() || !word_byte(data, c.end));
        assert!(!format!("{c:?}").contains(c.expose()));
    }
    // Completeness for the prefixed kinds: every whole word that parses as one is found.
    let mut i = 0;
    while i < data.len() {
        if !word_byte(data, i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < data.len() && word_byte(data, i) {
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
    // The same through a stream, in chunks.
    let mut scanner = StreamScanner::new();
    let mut streamed = Vec::new();
    for chunk in data.chunks(size) {
        streamed.extend(scanner.feed(chunk).iter().map(|c| (c.offset, c.kind, c.expose().to_owned())));
    }
    streamed.extend(scanner.finish().iter().map(|c| (c.offset, c.kind, c.expose().to_owned())));
    let whole: Vec<_> = found
        .iter()
        .map(|c| (c.start as u64, c.kind, c.expose().to_owned()))
        .collect();
    assert_eq!(streamed, whole);
});
