//! Finding keys in text (`find_candidates`) and telling which are keys of a
//! store (`Keyring::check_leaked`).

use std::time::Duration;

use apikeys::{
    AccessLevel, Actor, KeyKind, Keyring, LeakState, ManualClock, MemoryStore, NewKey, Request,
    Role, StreamScanner, Timestamp, find_candidates, find_candidates_in_bytes,
};
use proptest::prelude::*;

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether a candidate at `start..end` of `b` is a whole word: no key byte
/// on either side, and not after the `+` of a token prefix.
fn whole_word(b: &[u8], start: usize, end: usize) -> bool {
    let before_ok = start == 0
        || (!key_byte(b[start - 1])
            && !(b[start - 1] == b'+'
                && start >= 2
                && matches!(b[start - 2], b'u' | b's')
                && (start < 3 || !key_byte(b[start - 3]))));
    let after_ok = end == b.len() || !key_byte(b[end]);
    before_ok && after_ok
}

/// Candidates of one scan of the whole: (offset, kind, text, line, column).
fn whole(bytes: &[u8]) -> Vec<(u64, KeyKind, String, u64, u64)> {
    find_candidates_in_bytes(bytes)
        .iter()
        .map(|c| {
            let before = &bytes[..c.start];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let column = (c.start - line_start + 1) as u64;
            (c.start as u64, c.kind, c.expose().to_owned(), line, column)
        })
        .collect()
}

/// The same, through a `StreamScanner` fed chunks of these sizes (in turn).
fn streamed(bytes: &[u8], sizes: &[usize]) -> Vec<(u64, KeyKind, String, u64, u64)> {
    let mut scanner = StreamScanner::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        for c in scanner.feed(chunk) {
            out.push((c.offset, c.kind, c.expose().to_owned(), c.line, c.column));
        }
    }
    for c in scanner.finish() {
        out.push((c.offset, c.kind, c.expose().to_owned(), c.line, c.column));
    }
    assert_eq!(scanner.bytes_fed(), bytes.len() as u64);
    out
}

fn admin() -> Actor {
    Actor::new("acme", "PADMIN1", Role::Admin)
}

/// Pieces that make text likely to hold candidates and near-misses.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_+-]{0,40}",
        "[us+]{1,6}",
        "[0-9a-f]{30,34}",
        "R0[A-Z0-9]{28,32}",
        "[us]\\+[A-Za-z0-9_-]{16,20}",
        Just("token=".to_owned()),
        Just("Authorization: Token token=".to_owned()),
        Just("\"routing_key\": \"".to_owned()),
        Just("api_key ".to_owned()),
        Just("\n".to_owned()),
        Just("é🔑".to_owned()),
        Just(" ".to_owned()),
    ]
}

/// Pieces for streams: long runs, '+' chains, prefixes, context, newlines.
fn piece_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        "[A-Za-z0-9_+-]{0,70}".prop_map(String::into_bytes),
        "[us+]{1,6}".prop_map(String::into_bytes),
        "[0-9a-f]{31,33}".prop_map(String::into_bytes),
        "R0[A-Z0-9]{30}".prop_map(String::into_bytes),
        "[us]\\+[A-Za-z0-9_-]{18}".prop_map(String::into_bytes),
        Just(b"token=".to_vec()),
        Just(b"api_key: ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just("é".as_bytes().to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn find_candidates_never_panics_and_every_candidate_parses(
        parts in prop::collection::vec(piece(), 0..12)
    ) {
        let text: String = parts.concat();
        let found = find_candidates(&text);
        let mut last_end = 0;
        for c in &found {
            prop_assert_eq!(KeyKind::parse(c.expose()), Ok(c.kind));
            prop_assert_eq!(&text[c.range()], c.expose());
            prop_assert!(c.start >= last_end, "in order, without overlap");
            last_end = c.end;
            prop_assert!(whole_word(text.as_bytes(), c.start, c.end));
        }
        prop_assert_eq!(find_candidates_in_bytes(text.as_bytes()), found);
    }

    #[test]
    fn a_stream_in_chunks_of_any_size_gives_what_one_scan_gives(
        parts in prop::collection::vec(piece_bytes(), 0..30),
        sizes in prop::collection::vec(1usize..80, 1..6),
    ) {
        let bytes = parts.concat();
        prop_assert_eq!(streamed(&bytes, &sizes), whole(&bytes));
    }

    #[test]
    fn any_bytes_are_scanned_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        for c in find_candidates_in_bytes(&bytes) {
            prop_assert_eq!(KeyKind::parse(c.expose()), Ok(c.kind));
            prop_assert_eq!(&bytes[c.range()], c.expose().as_bytes());
        }
    }

    #[test]
    fn a_generated_key_with_context_is_always_found(kind_ix in 0usize..5, pad in "[ \t=:\"']{1,3}") {
        let kind = KeyKind::ALL[kind_ix];
        let key = kind.generate().unwrap();
        let text = format!("x api_key{pad}{}{pad}y", key.expose());
        let found = find_candidates(&text);
        prop_assert_eq!(found.len(), 1);
        prop_assert_eq!(found[0].expose(), key.expose());
        prop_assert_eq!(found[0].kind, kind);
    }
}

#[test]
fn check_leaked_finds_the_store_s_keys_and_not_deleted_or_foreign_ones() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_800_000_000_000));
    let kr = Keyring::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    let manager = Actor::new("acme", "PMANAGER1", Role::Manager);
    let responder = Actor::new("acme", "PRESP1", Role::Responder);

    let general = kr
        .create_general_key(&admin(), "CI bot", AccessLevel::FullAccess)
        .unwrap();
    let disabled = kr
        .create_general_key(&admin(), "old bot", AccessLevel::ReadOnly)
        .unwrap();
    kr.disable(&admin(), &disabled.record().id.to_string())
        .unwrap();
    let deleted = kr
        .create_integration_key(&manager, "PSVC1", "gone")
        .unwrap();
    kr.delete(&manager, &deleted.record().id.to_string())
        .unwrap();
    let routing = kr.create_routing_key(&manager, "orch", "alerts").unwrap();
    let user = kr.create_user_token(&responder, "laptop").unwrap();
    let scoped = kr
        .create_scoped_token(&manager, "closer", &["incidents.write"])
        .unwrap();
    let expiring = kr
        .create(
            &admin(),
            NewKey::general("short", AccessLevel::FullAccess)
                .expires_at(clock_now(&clock).saturating_add(Duration::from_secs(60))),
        )
        .unwrap();
    let rotated = kr
        .create_general_key(&admin(), "rotated", AccessLevel::FullAccess)
        .unwrap();
    let successor = kr
        .rotate(
            &admin(),
            &rotated.record().id.to_string(),
            Duration::from_secs(3600),
        )
        .unwrap();
    kr.end_rotation(&admin(), &rotated.record().id.to_string())
        .unwrap();
    let other_account = Keyring::default(); // not this store
    let foreign = other_account
        .create_general_key(&admin(), "elsewhere", AccessLevel::FullAccess)
        .unwrap();
    clock.advance(Duration::from_secs(120)); // `expiring` is past its expiry now

    let never_made = KeyKind::General.generate().unwrap();
    let texts = [
        general.secret().expose(),
        "not a key",
        disabled.secret().expose(),
        deleted.secret().expose(),
        routing.secret().expose(),
        user.secret().expose(),
        scoped.secret().expose(),
        expiring.secret().expose(),
        rotated.secret().expose(),
        successor.secret().expose(),
        foreign.secret().expose(),
        never_made.expose(),
        general.secret().expose(), // twice
    ];
    let found = kr.check_leaked(&texts).unwrap();
    let summary: Vec<(usize, KeyKind, LeakState, bool)> = found
        .iter()
        .map(|l| (l.index, l.kind, l.state, l.live))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, KeyKind::General, LeakState::Active, true),
            (2, KeyKind::General, LeakState::Disabled, true),
            (4, KeyKind::Routing, LeakState::Active, true),
            (5, KeyKind::UserToken, LeakState::Active, true),
            (6, KeyKind::Scoped, LeakState::Active, true),
            (7, KeyKind::General, LeakState::Expired, false),
            (8, KeyKind::General, LeakState::Rotated, false),
            (9, KeyKind::General, LeakState::Active, true),
            (12, KeyKind::General, LeakState::Active, true),
        ]
    );
    assert_eq!(found[0].key_id, general.record().id);
    assert_eq!(found[0].account, "acme");
    assert_eq!(found[0].description, "CI bot");
    assert_eq!(found[3].user.as_deref(), Some("PRESP1"));
    assert_eq!(found[4].user.as_deref(), Some("PMANAGER1"));

    // Nothing in the answer holds a key.
    let shown = format!("{found:?} {}", serde_json::to_string(&found).unwrap());
    for t in texts {
        assert!(!shown.contains(t), "a key in {shown}");
    }

    // Offboarding disables the user's token: found, but it can never work again.
    kr.remove_user("acme", "PRESP1").unwrap();
    let after = kr.check_leaked(&[user.secret().expose()]).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        (after[0].state, after[0].live),
        (LeakState::Disabled, false)
    );

    // Not a use: the keys' last use did not move, and no audit event was left.
    let events = kr.audit_trail().len();
    kr.check_leaked(&[general.secret().expose()]).unwrap();
    assert_eq!(kr.audit_trail().len(), events);
    let record = kr.get(&admin(), &general.record().id.to_string()).unwrap();
    assert_eq!(record.last_used_at, None);
    kr.authenticate(general.secret().expose(), &Request::rest("GET"))
        .unwrap();
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    apikeys::Clock::now(clock)
}

#[test]
fn check_leaked_uses_the_keyring_s_pepper() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let peppered = Keyring::builder()
        .shared_store(store.clone())
        .pepper(b"a pepper of sixteen bytes or more")
        .build()
        .unwrap();
    let plain = Keyring::builder().shared_store(store).build().unwrap();
    let k = peppered
        .create_general_key(&admin(), "ci", AccessLevel::FullAccess)
        .unwrap();
    assert_eq!(
        peppered.check_leaked(&[k.secret().expose()]).unwrap().len(),
        1
    );
    assert!(
        plain
            .check_leaked(&[k.secret().expose()])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_key_split_across_chunks_is_found_once_with_its_line() {
    let text = b"first line\nsecond: token=y_NbAkKc66ryYTWUXYEu and +u+aB3dE6gH9jK2mN5pQ8\n";
    for size in 1..text.len() {
        let got = streamed(text, &[size]);
        assert_eq!(got, whole(text), "chunks of {size}");
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].3, got[0].4), (2, 15));
    }
    // A long run of key bytes never leaves a piece that looks like a key.
    let long = [b"token=".as_slice(), &[b'a'; 5000], b" x"].concat();
    for size in [1, 7, 20, 21, 32, 33, 34, 100] {
        assert_eq!(streamed(&long, &[size]), vec![], "chunks of {size}");
    }
    // Nor does a long run of '+' and prefixes.
    let plus = [b"token=".as_slice(), "u+s+".repeat(2000).as_bytes(), b"\n"].concat();
    for size in [1, 2, 3, 33, 34, 35] {
        assert_eq!(streamed(&plus, &[size]), whole(&plus), "chunks of {size}");
    }
}

#[test]
fn stream_candidates_hide_their_text_in_debug() {
    let mut s = StreamScanner::new();
    let found = s.feed(b"x u+aB3dE6gH9jK2mN5pQ8 y");
    let shown = format!("{found:?}");
    assert!(!shown.contains("aB3dE6gH9jK2mN5pQ8"), "{shown}");
    assert!(
        shown.contains("pQ8") && shown.contains("UserToken"),
        "{shown}"
    );
}
