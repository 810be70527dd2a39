//! Finding keys in text: [`find_candidates`] (what looks like a key, and
//! where; its documentation says what counts), [`StreamScanner`] (the same
//! over a stream) and, with a keyring, [`Keyring::check_leaked`](crate::Keyring::check_leaked)
//! (which of those are keys of its store).

use std::fmt;
use std::ops::Range;

use serde::Serialize;

use crate::key::{EVENTS_KEY_LEN, Hint, KeyKind, REST_KEY_LEN};
use crate::record::KeyId;

/// How far before a general or integration key its context may start, in
/// bytes: a context word must end within this many bytes before the key, on
/// the same line.
pub const CONTEXT_BYTES: usize = 32;

/// Words that make a general or integration key worth reporting when one of
/// them stands shortly before it. Compared against the context with every
/// byte that is not an ASCII letter or digit left out, in lowercase.
const CONTEXT_WORDS: [&[u8]; 7] = [
    b"authorization",
    b"token",
    b"apikey",
    b"routingkey",
    b"integrationkey",
    b"servicekey",
    b"eventskey",
];

/// The bytes of a key's body: `[A-Za-z0-9_-]`.
static KEY_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    t
};

/// Whether `bytes[p]` belongs to a word: a key byte, or the `+` of a `u+` or
/// `s+` prefix, whose `u` or `s` is not preceded by a key byte. Decided from
/// `bytes[p - 2..=p]` alone, so that a scan in chunks can tell where words
/// are from a few bytes of the chunk before.
#[inline]
fn word_byte(bytes: &[u8], p: usize) -> bool {
    let b = bytes[p];
    if KEY_BYTE[b as usize] {
        return true;
    }
    b == b'+'
        && p >= 1
        && matches!(bytes[p - 1], b'u' | b's')
        && (p < 2 || !KEY_BYTE[bytes[p - 2] as usize])
}

/// The words of `bytes[from..]` and where they end: `(start, end)` pairs.
fn words(bytes: &[u8], from: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let n = bytes.len();
    let mut i = from;
    std::iter::from_fn(move || {
        while i < n && !word_byte(bytes, i) {
            i += 1;
        }
        if i >= n {
            return None;
        }
        let start = i;
        while i < n && word_byte(bytes, i) {
            i += 1;
        }
        Some((start, i))
    })
}

/// A piece of text shaped like a key: where it is, and which kind it would be.
///
/// Found by [`find_candidates`]. `Debug` shows the kind, the offsets and the
/// last four characters only; the text itself is read through
/// [`Candidate::expose`], so that every place touching it is greppable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The kind of key it would be ([`KeyKind::parse`] of its text).
    pub kind: KeyKind,
    /// Its first byte's offset in the text.
    pub start: usize,
    /// The offset just past its last byte (`end - start` is the kind's length).
    pub end: usize,
    text: &'a str,
}

impl<'a> Candidate<'a> {
    /// The text that looks like a key (ASCII, `self.end - self.start` bytes).
    /// Treat it as a key: never log it.
    pub fn expose(&self) -> &'a str {
        self.text
    }

    /// `start..end`.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Its last four characters, as a stored key's hint shows them.
    pub fn hint(&self) -> Hint {
        Hint::of(self.text)
    }
}

impl fmt::Debug for Candidate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidate")
            .field("kind", &self.kind)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("hint", &self.hint())
            .finish()
    }
}

/// Every piece of `text` shaped like a key, in order. Offsets are byte
/// offsets into `text`, always on character boundaries.
///
/// A *candidate* is a whole word — a maximal run of `[A-Za-z0-9_-]`, with
/// the `u+` or `s+` prefix of a user or scoped token at its start, never a
/// piece of a longer one — that has the exact shape of one kind of key
/// ([`KeyKind::parse`]). A `+` belongs to a word only as such a prefix (its
/// `u` or `s` not preceded by a letter, digit, `_` or `-`); anywhere else it
/// separates words, as in a diff's `+u+…` line or `a+b`.
///
/// - user tokens (`u+…`), scoped tokens (`s+…`) and routing keys (`R0…`)
///   carry a prefix that ordinary text rarely has, and are found anywhere;
/// - general keys (20 URL-safe characters) and integration keys (32 lowercase
///   hex characters) look like many other things (identifiers, hashes), so
///   they are found only with a telling context on the same line, at most
///   [`CONTEXT_BYTES`] before them: a word such as `Authorization`,
///   `Token token=`, `token`, `api_key`, `routing_key`, `integration_key` or
///   `service_key`, in any case, with `_`, `-`, spaces or nothing between its
///   parts. A file of random hex gives none.
///
/// The scan reads each byte a bounded number of times (linear in the input,
/// whatever it holds), never allocates per byte, and never panics: any bytes
/// are accepted ([`find_candidates_in_bytes`] for input that need not be
/// UTF-8; [`StreamScanner`] for a stream read a chunk at a time). Keys in
/// URL-encoded form (`u%2B…`) are not recognised.
///
/// ```
/// use apikeys::{KeyKind, find_candidates};
///
/// let text = "curl -H 'Authorization: Token token=y_NbAkKc66ryYTWUXYEu' https://…\n\
///             R0AB12CD34EF56GH78IJ90KL12MN34OP and 0123456789abcdef0123456789abcdef";
/// let found = find_candidates(text);
/// assert_eq!(found.len(), 2); // the bare hex has no context
/// assert_eq!(found[0].kind, KeyKind::General);
/// assert_eq!(&text[found[0].range()], found[0].expose());
/// assert_eq!(found[1].kind, KeyKind::Routing);
/// assert!(!format!("{found:?}").contains("y_NbAkKc66ryYTWUXYEu"));
/// ```
pub fn find_candidates(text: &str) -> Vec<Candidate<'_>> {
    find_candidates_in_bytes(text.as_bytes())
}

/// [`find_candidates`] over bytes that need not be UTF-8 (a binary file, a
/// chunk of a stream). A candidate is ASCII, so its text is a `&str` all the
/// same; offsets are byte offsets into `bytes`.
///
/// To scan a stream a chunk at a time with the same answer, use a
/// [`StreamScanner`].
pub fn find_candidates_in_bytes(bytes: &[u8]) -> Vec<Candidate<'_>> {
    words(bytes, 0)
        .filter_map(|(start, end)| candidate_at(bytes, start, end))
        .collect()
}

/// The candidate made of the whole word `bytes[start..end]`, if it is one.
fn candidate_at(bytes: &[u8], start: usize, end: usize) -> Option<Candidate<'_>> {
    let len = end - start;
    if len != REST_KEY_LEN && len != EVENTS_KEY_LEN {
        return None;
    }
    let word = &bytes[start..end];
    let kind = KeyKind::parse_bytes(word).ok()?;
    let needs_context = matches!(kind, KeyKind::General | KeyKind::Integration);
    if needs_context && !has_context(bytes, start) {
        return None;
    }
    // The word is ASCII (every key byte is), so this always succeeds.
    let text = std::str::from_utf8(word).ok()?;
    Some(Candidate {
        kind,
        start,
        end,
        text,
    })
}

/// Whether a context word ends within [`CONTEXT_BYTES`] before `start`, on
/// the same line.
fn has_context(bytes: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(CONTEXT_BYTES);
    // Letters and digits of the window, lowercased, read backwards from the
    // candidate to the start of its line; then put back in order.
    let mut kept = [0u8; CONTEXT_BYTES];
    let mut n = 0;
    for &b in bytes[from..start].iter().rev() {
        if b == b'\n' || b == b'\r' {
            break;
        }
        if b.is_ascii_alphanumeric() {
            kept[n] = b.to_ascii_lowercase();
            n += 1;
        }
    }
    let kept = &mut kept[..n];
    kept.reverse();
    CONTEXT_WORDS
        .iter()
        .any(|w| kept.windows(w.len()).any(|win| win == *w))
}

/// A candidate found by a [`StreamScanner`], placed in the whole stream.
///
/// Like [`Candidate`], its `Debug` shows the kind, place and last four
/// characters only; [`StreamCandidate::expose`] gives the text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StreamCandidate<'a> {
    /// The kind of key it would be.
    pub kind: KeyKind,
    /// Its first byte's offset from the start of the stream.
    pub offset: u64,
    /// Its line, from 1 (lines end with `\n`).
    pub line: u64,
    /// Its first byte's place in that line, in bytes, from 1.
    pub column: u64,
    text: &'a str,
}

impl<'a> StreamCandidate<'a> {
    /// The text that looks like a key. Treat it as a key: never log it.
    pub fn expose(&self) -> &'a str {
        self.text
    }

    /// Its last four characters.
    pub fn hint(&self) -> Hint {
        Hint::of(self.text)
    }
}

impl fmt::Debug for StreamCandidate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCandidate")
            .field("kind", &self.kind)
            .field("offset", &self.offset)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("hint", &self.hint())
            .finish()
    }
}

/// Newlines counted so far in a stream.
#[derive(Clone, Debug)]
struct Lines {
    /// Every byte before this offset is counted.
    counted_to: u64,
    /// The line at `counted_to`, from 1.
    line: u64,
    /// The offset where that line starts.
    line_start: u64,
}

impl Lines {
    /// Count the newlines of `buf` (which starts at offset `buf_at`) up to offset `to`.
    fn advance(&mut self, buf: &[u8], buf_at: u64, to: u64) {
        if to <= self.counted_to {
            return;
        }
        let from = (self.counted_to - buf_at) as usize;
        let until = ((to - buf_at) as usize).min(buf.len());
        for (i, &b) in buf[from..until].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = buf_at + (from + i) as u64 + 1;
            }
        }
        self.counted_to = to;
    }
}

/// [`find_candidates_in_bytes`] over a stream read a chunk at a time (a
/// file of any size, standard input): the same candidates, in the same
/// order, whatever the chunks, each with its offset, line and column in the
/// whole stream. It keeps only the end of the chunk before that a word or a
/// context may still need (a few dozen bytes), never the stream.
///
/// ```
/// use apikeys::{KeyKind, StreamScanner};
///
/// let text = b"a: 1\nb: u+aB3dE6gH9jK2mN5pQ8\n";
/// let mut scanner = StreamScanner::new();
/// let mut found = Vec::new();
/// for chunk in text.chunks(7) {
///     for c in scanner.feed(chunk) {
///         found.push((c.kind, c.offset, c.line, c.column));
///     }
/// }
/// for c in scanner.finish() {
///     found.push((c.kind, c.offset, c.line, c.column));
/// }
/// assert_eq!(found, [(KeyKind::UserToken, 8, 2, 4)]);
/// ```
#[derive(Clone, Debug)]
pub struct StreamScanner {
    /// What is kept of the chunks before, then the newest chunk.
    buf: Vec<u8>,
    /// The stream offset of `buf[0]`.
    buf_at: u64,
    /// How much of `buf` the next call drops (decided by the last one).
    drop_next: usize,
    /// Candidates starting before this offset were handed out already.
    decided_to: u64,
    lines: Lines,
    fed: u64,
}

impl Default for StreamScanner {
    fn default() -> Self {
        StreamScanner::new()
    }
}

impl StreamScanner {
    /// A scanner at the start of a stream.
    pub fn new() -> StreamScanner {
        StreamScanner {
            buf: Vec::new(),
            buf_at: 0,
            drop_next: 0,
            decided_to: 0,
            lines: Lines {
                counted_to: 0,
                line: 1,
                line_start: 0,
            },
            fed: 0,
        }
    }

    /// The stream's next bytes: the candidates that can be decided now
    /// (a word reaching the chunk's end waits for the next chunk).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<StreamCandidate<'_>> {
        self.scan(chunk, false)
    }

    /// The stream has ended: the candidates still undecided.
    pub fn finish(&mut self) -> Vec<StreamCandidate<'_>> {
        self.scan(&[], true)
    }

    /// How many bytes were fed.
    pub fn bytes_fed(&self) -> u64 {
        self.fed
    }

    fn scan(&mut self, chunk: &[u8], last: bool) -> Vec<StreamCandidate<'_>> {
        // Drop what the last call left behind, counting its lines first.
        let keep_at = self.buf_at + self.drop_next as u64;
        self.lines.advance(&self.buf, self.buf_at, keep_at);
        self.buf.drain(..self.drop_next);
        self.buf_at = keep_at;
        self.buf.extend_from_slice(chunk);
        self.fed += chunk.len() as u64;
        let n = self.buf.len();

        // The word reaching the end may go on in the next chunk.
        let (undecided, keep_from, decided_to) = if last {
            (n, n, n)
        } else {
            let mut w = n;
            while w > 0 && word_byte(&self.buf, w - 1) {
                w -= 1;
            }
            if n - w > EVENTS_KEY_LEN {
                // Longer than any key however it goes on: no word starts in
                // what is kept of it, which is enough for it to still look
                // too long, and for the context of what follows.
                (n, n - (EVENTS_KEY_LEN + 1).max(CONTEXT_BYTES), n)
            } else {
                // The word, with the bytes before it that tell where it
                // starts and its context.
                (w, w.saturating_sub(CONTEXT_BYTES + 2), w)
            }
        };

        let first_new = self.decided_to;
        self.decided_to = self.buf_at + decided_to as u64;
        self.drop_next = keep_from;
        let buf = &self.buf;
        let mut out = Vec::new();
        for (start, end) in words(buf, 0) {
            if start >= undecided {
                break;
            }
            let offset = self.buf_at + start as u64;
            if offset < first_new {
                continue;
            }
            let Some(c) = candidate_at(buf, start, end) else {
                continue;
            };
            self.lines.advance(buf, self.buf_at, offset);
            out.push(StreamCandidate {
                kind: c.kind,
                offset,
                line: self.lines.line,
                column: offset - self.lines.line_start + 1,
                text: c.text,
            });
        }
        out
    }
}

/// What [`Keyring::check_leaked`](crate::Keyring::check_leaked) found a
/// leaked key's record in, in the order of the checks `authenticate` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakState {
    /// The key works now (as far as the key itself goes: the account's plan
    /// and the request's permissions are not looked at).
    Active,
    /// Disabled. A general key can be enabled again; a token disabled when
    /// its user was removed cannot.
    Disabled,
    /// Past its expiry: it will never work again.
    Expired,
    /// Replaced by a rotation whose overlap has ended: it will never work again.
    Rotated,
    /// The user it acts through (a user token's owner, a scoped token's
    /// maker) is removed or unknown; restoring that user restores the key.
    OwnerRemoved,
}

impl LeakState {
    /// `"active"`, `"disabled"`, `"expired"`, `"rotated"` or `"owner_removed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeakState::Active => "active",
            LeakState::Disabled => "disabled",
            LeakState::Expired => "expired",
            LeakState::Rotated => "rotated",
            LeakState::OwnerRemoved => "owner_removed",
        }
    }
}

impl fmt::Display for LeakState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A candidate that is a key of the keyring's store. Never holds the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeakedKey {
    /// Its position in the slice given to
    /// [`Keyring::check_leaked`](crate::Keyring::check_leaked).
    pub index: usize,
    /// The key's id.
    pub key_id: KeyId,
    /// Its kind.
    pub kind: KeyKind,
    /// Its account.
    pub account: String,
    /// Its description.
    pub description: String,
    /// The user it acts through: a user token's owner, a scoped token's maker.
    pub user: Option<String>,
    /// Its last four characters.
    pub hint: Hint,
    /// Its state now.
    pub state: LeakState,
    /// Whether it works now or could work again without a new key being
    /// made: [`LeakState::Active`], a disabled general key (it can be
    /// enabled), or [`LeakState::OwnerRemoved`]. `false` for keys that can
    /// never work again (expired, rotated out, a disabled token).
    pub live: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERAL: &str = "y_NbAkKc66ryYTWUXYEu";
    const USER: &str = "u+aB3dE6gH9jK2mN5pQ8";
    const SCOPED: &str = "s+Zy-Xw_Vu1Ts2Rq3Po4";
    const INTEGRATION: &str = "0123456789abcdef0123456789abcdef";
    const ROUTING: &str = "R0AB12CD34EF56GH78IJ90KL12MN34OP";

    fn kinds(text: &str) -> Vec<(KeyKind, &str)> {
        find_candidates(text)
            .iter()
            .map(|c| (c.kind, c.expose()))
            .collect()
    }

    #[test]
    fn the_samples_are_keys_of_their_kind() {
        for (key, kind) in [
            (GENERAL, KeyKind::General),
            (USER, KeyKind::UserToken),
            (SCOPED, KeyKind::Scoped),
            (INTEGRATION, KeyKind::Integration),
            (ROUTING, KeyKind::Routing),
        ] {
            assert_eq!(KeyKind::parse(key), Ok(kind), "{key}");
        }
    }

    #[test]
    fn prefixed_kinds_are_found_anywhere() {
        for (key, kind) in [
            (USER, KeyKind::UserToken),
            (SCOPED, KeyKind::Scoped),
            (ROUTING, KeyKind::Routing),
        ] {
            for text in [
                key.to_owned(),
                format!("see {key} here"),
                format!("\"{key}\","),
                format!("https://example.com/x/{key}?y=1"),
                format!("é{key}ü"),
            ] {
                assert_eq!(kinds(&text), vec![(kind, key)], "{text:?}");
            }
        }
    }

    #[test]
    fn general_and_integration_keys_need_a_context() {
        for key in [GENERAL, INTEGRATION] {
            for bare in [
                key.to_owned(),
                format!("id {key} here"),
                format!("sha: {key}"),
                // The context word is on the line before.
                format!("token:\n{key}"),
                // Too far before the key.
                format!("token {} {key}", "x".repeat(CONTEXT_BYTES)),
                // After the key, not before.
                format!("{key} is my token"),
            ] {
                assert_eq!(kinds(&bare), vec![], "{bare:?}");
            }
            for with in [
                format!("Authorization: Token token={key}"),
                format!("authorization: token token={key}"),
                format!("PAGERDUTY_TOKEN={key}"),
                format!("token={key}"),
                format!("{{\"api_key\": \"{key}\"}}"),
                format!("API-KEY: {key}"),
                format!("apikey {key}"),
                format!("Api Key = '{key}'"),
                format!("routing_key: {key}"),
                format!("ROUTING-KEY={key}"),
                format!("\"integration_key\":\"{key}\""),
                format!("service_key => {key}"),
                format!("x\n  token: {key}"),
                format!("--token {key} --verbose"),
            ] {
                let found = kinds(&with);
                assert_eq!(found.len(), 1, "{with:?}");
                assert_eq!(found[0].1, key, "{with:?}");
            }
        }
    }

    #[test]
    fn near_misses_are_not_candidates() {
        let g = GENERAL;
        let i = INTEGRATION;
        let misses = [
            // One character short or long.
            format!("token={}", &g[..19]),
            format!("token={g}x"),
            format!("token={}", &i[..31]),
            format!("token={i}0"),
            USER[..19].to_owned(),
            format!("{USER}a"),
            format!("{ROUTING}A"),
            ROUTING[..31].to_owned(),
            // Wrong alphabet.
            format!("token={}!{}", &g[..10], &g[11..]),
            "token=0123456789abcdef0123456789abcdeF".to_owned(),
            "R0AB12CD34EF56GH78IJ90KL12MN34oP".to_owned(),
            "u+aB3dE6gH9jK2mN5pQ+".to_owned(),
            // 32 URL-safe characters are no kind of key.
            format!("token={g}abcdefghijkl"),
            // Embedded in a longer token.
            format!("x{USER}"),
            format!("{USER}_"),
            format!("-{ROUTING}"),
            format!("token=ab{g}"),
            format!("token={i}{i}"),
            format!("0{SCOPED}"),
            format!("_{ROUTING}"),
        ];
        for text in &misses {
            assert_eq!(kinds(text), vec![], "{text:?}");
        }
    }

    #[test]
    fn plus_separates_words_except_in_a_token_prefix() {
        // A diff's added line, a sum, a trailing plus: the token is a word of its own.
        for text in [
            format!("+{USER}"),
            format!("+{SCOPED}\n"),
            format!("a+{SCOPED}"),
            format!("{USER}+x"),
            format!("++{USER}++"),
        ] {
            assert_eq!(kinds(&text).len(), 1, "{text:?}");
        }
        assert_eq!(kinds(&format!("+{ROUTING}"))[0].0, KeyKind::Routing);
        assert_eq!(kinds(&format!("+token={GENERAL}"))[0].0, KeyKind::General);
        // Not a prefix: the u or s follows a key byte, so the + separates.
        for text in [
            format!("x{USER}"),
            format!("-{SCOPED}"),
            format!("u+{USER}"),
        ] {
            assert_eq!(kinds(&text), vec![], "{text:?}");
        }
    }

    #[test]
    fn offsets_are_byte_offsets_on_multi_byte_text() {
        let text = format!("ключ: «{USER}» — token → {GENERAL} 🔑{ROUTING}🔑");
        let found = find_candidates(&text);
        assert_eq!(found.len(), 3, "{found:?}");
        for c in &found {
            assert_eq!(&text[c.range()], c.expose());
            assert_eq!(c.end - c.start, c.kind.key_len());
            assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
        }
        assert_eq!(found[0].start, text.find(USER).unwrap());
        assert_eq!(found[1].start, text.find(GENERAL).unwrap());
        assert_eq!(found[2].start, text.find(ROUTING).unwrap());
        assert_eq!(
            found.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [KeyKind::UserToken, KeyKind::General, KeyKind::Routing]
        );
    }

    #[test]
    fn random_hex_gives_no_general_or_integration_candidates() {
        // A file of random hex in lines and words of every length, including
        // exactly 20 and 32 (a simple generator: the test needs no real randomness).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut text = String::new();
        for line in 0..2000 {
            for word in 0..8 {
                let len = [20, 32, 40, 64, 7, 31, 33, 19][(line + word) % 8];
                for _ in 0..len {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    text.push(char::from(b"0123456789abcdef"[(x & 15) as usize]));
                }
                text.push(if word % 2 == 0 { ' ' } else { '\t' });
            }
            text.push('\n');
        }
        assert!(text.len() > 400_000);
        assert_eq!(find_candidates(&text), vec![]);
    }

    #[test]
    fn debug_shows_kind_offsets_and_the_last_four_characters_only() {
        let text = format!("token={GENERAL}");
        let c = find_candidates(&text)[0];
        let d = format!("{c:?} {c:#?}");
        assert!(!d.contains(GENERAL), "{d}");
        assert!(!d.contains(&GENERAL[..16]), "{d}");
        assert!(d.contains("General") && d.contains("XYEu"), "{d}");
        assert!(
            d.starts_with("Candidate { kind: General, start: 6, end: 26,"),
            "{d}"
        );
        assert_eq!(c.hint().as_str(), "XYEu");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_scanned_too() {
        let mut bin = vec![0xff, 0x00, 0xfe, b' '];
        bin.extend_from_slice(USER.as_bytes());
        bin.extend_from_slice(&[0x80, 0xc3]);
        bin.extend_from_slice(b"token=");
        bin.extend_from_slice(GENERAL.as_bytes());
        bin.push(0);
        let found = find_candidates_in_bytes(&bin);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].kind, found[0].start), (KeyKind::UserToken, 4));
        assert_eq!(found[1].expose(), GENERAL);
    }

    #[test]
    fn large_adversarial_inputs_are_scanned_in_linear_time() {
        // Each is several megabytes; a quadratic scan would not finish.
        let mb = 1 << 20;
        let one_run = "a".repeat(8 * mb);
        assert!(find_candidates(&one_run).is_empty());
        let many = format!("token={GENERAL} ").repeat(4 * mb / 27);
        assert_eq!(find_candidates(&many).len(), 4 * mb / 27);
        let words = format!("{GENERAL}\n").repeat(4 * mb / 21);
        assert!(find_candidates(&words).is_empty());
        let plus = "+".repeat(8 * mb);
        assert!(find_candidates(&plus).is_empty());
        let multi = "é".repeat(4 * mb);
        assert!(find_candidates(&multi).is_empty());
    }
}
