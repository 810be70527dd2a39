//! Reading the key out of a request: the `Authorization` header (REST) and the
//! `routing_key` field of a JSON body (Events).

use std::borrow::Cow;

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::rejection::Rejection;

/// The longest `Authorization` value that is even looked at. Keys are 20 or 32
/// characters; anything this long is refused as malformed without parsing.
pub const MAX_AUTHORIZATION_BYTES: usize = 1024;

/// The key in an `Authorization` header value, if the value has one of the
/// accepted forms:
///
/// - `Token token=<key>` (PagerDuty's form): the scheme and the parameter name
///   in any case, spaces or tabs allowed around the value, around `=`, and
///   between scheme and parameter; the key may be in double quotes;
/// - `Bearer <key>` (scheme in any case).
///
/// The key itself is not checked here (any run of visible ASCII characters
/// without spaces or quotes); [`apikeys::Keyring::authenticate`] does that.
///
/// ```
/// use apikeys_http::token_from_authorization as t;
/// assert_eq!(t(b"Token token=y_NbAkKc66ryYTWUXYEu"), Some("y_NbAkKc66ryYTWUXYEu"));
/// assert_eq!(t(b"  token   TOKEN = \"abc\" "), Some("abc"));
/// assert_eq!(t(b"Bearer abc"), Some("abc"));
/// assert_eq!(t(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
/// assert_eq!(t(b"Token token="), None);
/// ```
pub fn token_from_authorization(value: &[u8]) -> Option<&str> {
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    // PagerDuty's own spelling, with nothing around the key, is what nearly
    // every request sends: take it without the general parse below (which
    // gives the same answer for it, only slower).
    if let Some(key) = value.strip_prefix(b"Token token=") {
        if is_key_shaped(key) {
            return std::str::from_utf8(key).ok();
        }
    }
    parse_authorization(value)
}

/// The general parse behind [`token_from_authorization`] (any case, spaces,
/// quotes, `Bearer`).
fn parse_authorization(value: &[u8]) -> Option<&str> {
    let value = trim(value);
    let split = value.iter().position(|&b| is_space(b))?;
    let (scheme, rest) = value.split_at(split);
    let rest = trim(rest);
    let key = if scheme.eq_ignore_ascii_case(b"token") {
        let name = b"token";
        if rest.len() < name.len() || !rest[..name.len()].eq_ignore_ascii_case(name) {
            return None;
        }
        let rest = trim(&rest[name.len()..]);
        let rest = trim(rest.strip_prefix(b"=")?);
        match rest {
            [b'"', inner @ .., b'"'] => inner,
            _ => rest,
        }
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        rest
    } else {
        return None;
    };
    if !is_key_shaped(key) {
        return None;
    }
    // Visible ASCII only, so this never fails.
    std::str::from_utf8(key).ok()
}

/// A non-empty run of visible ASCII characters other than `"`. Written
/// without an early exit so that the loop compiles to a few vector
/// instructions for a 20- or 32-byte key.
fn is_key_shaped(key: &[u8]) -> bool {
    !key.is_empty()
        && key
            .iter()
            .fold(true, |ok, &b| ok & b.is_ascii_graphic() & (b != b'"'))
}

/// Whether a header name as a server sent it is `lower` (a name in lower
/// case, such as `b"authorization"`). HTTP header names compare without
/// regard to ASCII case; servers that hand names over as bytes (ASGI) send
/// them in lower case, so that is tried first.
///
/// ```
/// use apikeys_http::header_name_is;
/// assert!(header_name_is(b"authorization", b"authorization"));
/// assert!(header_name_is(b"Authorization", b"authorization"));
/// assert!(!header_name_is(b"authorizations", b"authorization"));
/// assert!(!header_name_is(b"h\xc3\xb6st", b"host")); // not ASCII: no match
/// ```
#[inline]
#[must_use]
pub fn header_name_is(name: &[u8], lower: &[u8]) -> bool {
    name == lower || name.eq_ignore_ascii_case(lower)
}

/// The REST key of a request: exactly one `Authorization` header, in one of
/// the forms [`token_from_authorization`] accepts.
///
/// # Errors
/// [`Rejection`]s answering 401 (no header, a malformed one) or 400 (more than one).
pub fn rest_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let value = only_one(headers.get_all(AUTHORIZATION))?;
    // The fast path of `token_from_authorization`, on the `&str` the header
    // value checks itself into (so the key needs no UTF-8 check of its own).
    if let Ok(value) = value.to_str() {
        if let Some(key) = value.strip_prefix("Token token=") {
            if value.len() <= MAX_AUTHORIZATION_BYTES && is_key_shaped(key.as_bytes()) {
                return Ok(key);
            }
        }
    }
    token_from_authorization(value.as_bytes()).ok_or_else(Rejection::malformed_authorization)
}

/// [`rest_token`] for a server that hands over the `Authorization` values
/// rather than a [`HeaderMap`] (ASGI, Express): exactly one value, in an
/// accepted form.
///
/// # Errors
/// As [`rest_token`]: 401 for none or a malformed one, 400 for more than one.
pub fn token_from_authorizations<'a, I>(values: I) -> Result<&'a str, Rejection>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    token_from_authorization(only_one(values)?).ok_or_else(Rejection::malformed_authorization)
}

/// The key of a request whose `Authorization` headers the server joined into
/// one value (WSGI's `HTTP_AUTHORIZATION`: werkzeug and gunicorn join
/// repeated headers with a bare comma), `None` when it had none.
///
/// A value that reads as one header in an accepted form is one header (a
/// comma in it is part of the key, which the keyring then refuses). Else, if
/// it splits at commas into parts that each read as a header of their own,
/// none but the first starting with a blank, the client sent several: 400, as
/// [`rest_token`] answers. Anything else, such as `Token token=a, token=b` (a
/// comma and a blank, as a client writes it), is one malformed header: 401.
///
/// # Errors
/// As [`rest_token`].
pub fn token_from_joined_authorization(value: Option<&[u8]>) -> Result<&str, Rejection> {
    let Some(value) = value else {
        return Err(Rejection::missing_key());
    };
    if let Some(key) = token_from_authorization(value) {
        return Ok(key);
    }
    let mut parts = value.split(|&b| b == b',').enumerate();
    let several = value.contains(&b',')
        && parts.all(|(i, part)| {
            (i == 0 || !part.first().copied().is_some_and(is_space))
                && token_from_authorization(part).is_some()
        });
    Err(if several {
        Rejection::duplicate_authorization()
    } else {
        Rejection::malformed_authorization()
    })
}

/// The one value of an iterator, or the refusal for none or several headers.
fn only_one<T>(values: impl IntoIterator<Item = T>) -> Result<T, Rejection> {
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Err(Rejection::missing_key());
    };
    if values.next().is_some() {
        return Err(Rejection::duplicate_authorization());
    }
    Ok(value)
}

/// The body length a `Content-Length` value declares, for a body limited to
/// `limit` bytes: ASCII digits only, spaces or tabs around them allowed (a
/// sign, an exponent or a list of values is not a length: WSGI servers hand
/// the header over unchecked, and `-1` would read the whole stream).
///
/// # Errors
/// [`Rejection`]s answering 400: not a number, or more than `limit`.
pub fn declared_length(value: &[u8], limit: usize) -> Result<usize, Rejection> {
    let digits = trim(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Rejection::invalid_content_length());
    }
    let n = digits.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    });
    if n > limit {
        return Err(Rejection::body_too_large(limit));
    }
    Ok(n)
}

/// The deepest nesting of arrays and objects an Events body may have (as
/// `serde_json`'s own limit for values it builds). The parser skips the other
/// fields without a limit, but handlers that parse the body in Python or Node
/// fail on a few thousand levels, so every adapter refuses such a body first.
pub const MAX_EVENT_DEPTH: usize = 128;

/// Whether arrays and objects nest deeper than `max` outside strings.
fn nested_deeper_than(body: &[u8], max: usize) -> bool {
    // Few bodies hold that many brackets at all: a count that vectorizes
    // spares them the byte-by-byte walk. Counting into a byte per chunk of
    // 255 (it cannot overflow) lets the compiler add 16 or 32 bytes at a
    // time; a `usize` count does not vectorize (about 10x slower per KiB).
    let brackets: usize = body
        .chunks(255)
        .map(|c| {
            c.iter()
                .fold(0u8, |n, &b| n + u8::from(b == b'{' || b == b'[')) as usize
        })
        .sum();
    if brackets <= max {
        return false;
    }
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
                    if depth > max {
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

/// The envelope `serde_json` reads an Events body into: what
/// [`envelope_key`] answers like (kept as the tests' reference).
#[cfg(test)]
#[derive(serde::Deserialize)]
struct EventEnvelope<'a> {
    #[serde(borrow, default)]
    routing_key: Option<BorrowedKey<'a>>,
}

/// A JSON string borrowed from the body when it has no escapes (every key
/// does), copied only when it has. (`Option<Cow<str>>` always copies: serde
/// borrows a `Cow` only when it is the field's whole type, so each Events
/// request paid an allocation for its key.)
struct BorrowedKey<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for BorrowedKey<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = BorrowedKey<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(BorrowedKey(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedKey(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedKey(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Text)
    }
}

/// The `routing_key` of an Events API v2 body (a JSON object; other fields are
/// left to the handler, but the whole body must be valid JSON).
///
/// # Errors
/// [`Rejection`]s answering 400: not JSON (invalid UTF-8 included), not an object, nested deeper than
/// [`MAX_EVENT_DEPTH`], a `routing_key` that is not a string, or none at all.
pub fn routing_key(body: &[u8]) -> Result<Cow<'_, str>, Rejection> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Rejection::not_an_object());
    }
    // JSON is UTF-8 (RFC 8259); the parser alone would let invalid bytes
    // through in the fields it skips, which a handler then fails to read.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(Rejection::not_json());
    };
    // One pass reads the key and checks the rest of the body: JSON, and no
    // deeper than the limit. A body it refuses is looked at again for its
    // depth (a body both too deep and broken further on answers as too
    // deep), which costs only refused bodies a second pass.
    match envelope_key(text) {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(Rejection::missing_routing_key()),
        Err(fault) => Err(refusal_for(body, fault)),
    }
}

/// The refusal of a UTF-8 body [`envelope_key`] failed, by the checks in
/// their order: no deeper than [`MAX_EVENT_DEPTH`], then what the parse found.
fn refusal_for(body: &[u8], fault: Fault) -> Rejection {
    if nested_deeper_than(body, MAX_EVENT_DEPTH) {
        return Rejection::invalid_body(
            "the body nests arrays and objects more than 128 levels deep",
        );
    }
    match fault {
        Fault::NotAString => Rejection::routing_key_not_a_string(),
        Fault::NotJson => Rejection::not_json(),
    }
}

/// How an Events body fails [`envelope_key`]: as `serde_json` fails it when
/// deserializing [`EventEnvelope`], a syntax or end-of-input error
/// (`NotJson`) or a data error (`NotAString`: a `routing_key` that is not a
/// string or null, or a second `routing_key`). Nesting deeper than
/// [`MAX_EVENT_DEPTH`] also ends the parse (as `NotJson`): [`refusal_for`]
/// tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    NotJson,
    NotAString,
}

/// The `routing_key` of a JSON object, read exactly as
/// `serde_json::from_str::<EventEnvelope>` reads it (`None`: none, or
/// `null`), in one pass that also checks the body nests no deeper than
/// [`MAX_EVENT_DEPTH`] (so that a body accepted here needs no bracket count
/// before), and whose string scan takes 16 bytes at a time.
///
/// `serde_json` skips the fields an envelope does not name byte by byte or
/// 8 at a time, after a UTF-8 pass and a bracket count over the whole body
/// (docs/performance.md, issue 19). Here the grammar of the skipped values is
/// `serde_json`'s own for ignored values (`Deserializer::ignore_value`:
/// literals, numbers by its `ignore_number`, strings without control
/// characters whose escapes are one of `"\/bfnrt` or `u` and four hex
/// digits, not checked for surrogates), the first failure ending the parse
/// as `serde_json`'s would; what `serde_json` checks more strictly is handed
/// to it: a top-level key with escapes (decoded, surrogates checked) and the
/// value of `routing_key` (its type, escapes and surrogates). A duplicate
/// `routing_key` is refused at its second key, as serde's derive does.
fn envelope_key(text: &str) -> Result<Option<Cow<'_, str>>, Fault> {
    let b = text.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(Fault::NotJson);
    }
    i = skip_space(b, i + 1);
    let mut key: Option<Option<Cow<'_, str>>> = None;
    if b.get(i) != Some(&b'}') {
        loop {
            // A key.
            if b.get(i) != Some(&b'"') {
                return Err(Fault::NotJson);
            }
            let start = i;
            let escaped;
            (i, escaped) = skip_string(b, i + 1)?;
            let is_routing_key = if escaped {
                serde_json::from_str::<Cow<'_, str>>(&text[start..i]).map_err(|_| Fault::NotJson)?
                    == "routing_key"
            } else {
                &b[start + 1..i - 1] == b"routing_key"
            };
            if is_routing_key && key.is_some() {
                return Err(Fault::NotAString);
            }
            i = skip_space(b, i);
            if b.get(i) != Some(&b':') {
                return Err(Fault::NotJson);
            }
            i = skip_space(b, i + 1);
            if is_routing_key {
                let (value, end) = routing_key_value(&text[i..])?;
                key = Some(value);
                i += end;
            } else {
                i = skip_value(b, i)?;
            }
            i = skip_space(b, i);
            match b.get(i) {
                Some(b',') => i = skip_space(b, i + 1),
                Some(b'}') => break,
                _ => return Err(Fault::NotJson),
            }
        }
    }
    if skip_space(b, i + 1) != b.len() {
        return Err(Fault::NotJson);
    }
    Ok(key.flatten())
}

/// The value of `routing_key` at the start of `text`, read by `serde_json`
/// itself (a string, borrowed when it has no escapes, or `null`), and where
/// it ends.
fn routing_key_value(text: &str) -> Result<(Option<Cow<'_, str>>, usize), Fault> {
    let mut values =
        serde_json::Deserializer::from_str(text).into_iter::<Option<BorrowedKey<'_>>>();
    match values.next() {
        Some(Ok(value)) => Ok((value.map(|BorrowedKey(k)| k), values.byte_offset())),
        Some(Err(e)) if e.is_data() => Err(Fault::NotAString),
        Some(Err(_)) | None => Err(Fault::NotJson),
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index just past the string whose opening quote is before `i`, and
/// whether it has escapes; `NotJson` for what `serde_json`'s `ignore_str`
/// refuses (a control character, an unknown escape, `\u` without four hex
/// digits, no closing quote).
fn skip_string(b: &[u8], mut i: usize) -> Result<(usize, bool), Fault> {
    let mut escaped = false;
    loop {
        i += plain_run(b.get(i..).unwrap_or_default());
        match b.get(i) {
            Some(b'"') => return Ok((i + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => match b.get(i + 2..i + 6) {
                        Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 6,
                        _ => return Err(Fault::NotJson),
                    },
                    _ => return Err(Fault::NotJson),
                }
            }
            // A control character, or the end of the text.
            _ => return Err(Fault::NotJson),
        }
    }
}

/// How many bytes at the start of `s` a string holds as they are (not `"`,
/// `\` or a control character).
fn plain_run(s: &[u8]) -> usize {
    let special = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
    let mut n = 0;
    for block in s.chunks_exact(16) {
        // A fixed-size block and a byte accumulator: SSE2 compares and
        // masks, one branch per block (19 instructions; a `bool` fold is
        // compiled byte by byte, 7 times as many).
        let block: &[u8; 16] = block.try_into().unwrap_or(&[0; 16]);
        let mut hit = 0u8;
        for &c in block {
            hit |= u8::from(c == b'"') | u8::from(c == b'\\') | u8::from(c < 0x20);
        }
        if hit != 0 {
            break;
        }
        n += 16;
    }
    n + s[n..]
        .iter()
        .position(|&c| special(c))
        .unwrap_or(s.len() - n)
}

/// The index just past the JSON value starting at `i` (whitespace skipped
/// before it), by `serde_json`'s grammar for an ignored value; `NotJson` also
/// for arrays and objects nested deeper than [`MAX_EVENT_DEPTH`] counting
/// the top-level object.
fn skip_value(b: &[u8], mut i: usize) -> Result<usize, Fault> {
    // The open arrays (bit set) and objects (bit clear), innermost lowest.
    let mut open: u128 = 0;
    let mut depth = 0usize;
    loop {
        i = skip_space(b, i);
        match b.get(i) {
            Some(b'n') => i = literal(b, i, b"null")?,
            Some(b't') => i = literal(b, i, b"true")?,
            Some(b'f') => i = literal(b, i, b"false")?,
            Some(b'-') => i = skip_number(b, i + 1)?,
            Some(b'0'..=b'9') => i = skip_number(b, i)?,
            Some(b'"') => i = skip_string(b, i + 1)?.0,
            Some(&c @ (b'[' | b'{')) => {
                // The top-level object is one level.
                if depth + 1 >= MAX_EVENT_DEPTH {
                    return Err(Fault::NotJson);
                }
                open = (open << 1) | u128::from(c == b'[');
                depth += 1;
                i = skip_space(b, i + 1);
                let close = if c == b'[' { b']' } else { b'}' };
                if b.get(i) == Some(&close) {
                    open >>= 1;
                    depth -= 1;
                    i += 1;
                } else {
                    if c == b'{' {
                        i = object_key(b, i)?;
                    }
                    continue;
                }
            }
            _ => return Err(Fault::NotJson),
        }
        // After a value: a comma, or the end of the enclosing arrays and objects.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            i = skip_space(b, i);
            let in_array = open & 1 == 1;
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if !in_array {
                        i = object_key(b, skip_space(b, i))?;
                    }
                    break;
                }
                Some(b']') if in_array => {}
                Some(b'}') if !in_array => {}
                _ => return Err(Fault::NotJson),
            }
            i += 1;
            open >>= 1;
            depth -= 1;
        }
    }
}

/// A key of a skipped object at `i` and the colon after it; the index after the colon.
fn object_key(b: &[u8], i: usize) -> Result<usize, Fault> {
    if b.get(i) != Some(&b'"') {
        return Err(Fault::NotJson);
    }
    let i = skip_space(b, skip_string(b, i + 1)?.0);
    if b.get(i) != Some(&b':') {
        return Err(Fault::NotJson);
    }
    Ok(i + 1)
}

/// The index after `word` (`null`, `true`, `false`) at `i`.
fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, Fault> {
    if b.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(Fault::NotJson)
    }
}

/// The index after a number whose digits start at `i` (after any `-`), by
/// `serde_json`'s `ignore_integer`: one `0` or digits not starting with `0`,
/// then optionally `.` and digits, then optionally `e`/`E`, a sign, digits.
fn skip_number(b: &[u8], mut i: usize) -> Result<usize, Fault> {
    let digits = |mut i: usize| {
        while let Some(b'0'..=b'9') = b.get(i) {
            i += 1;
        }
        i
    };
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if let Some(b'0'..=b'9') = b.get(i) {
                return Err(Fault::NotJson);
            }
        }
        Some(b'1'..=b'9') => i = digits(i + 1),
        _ => return Err(Fault::NotJson),
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return Err(Fault::NotJson);
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return Err(Fault::NotJson);
        }
        i = end;
    }
    Ok(i)
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "y_NbAkKc66ryYTWUXYEu";

    #[test]
    fn header_names_match_in_any_ascii_case_and_nothing_else() {
        for name in [&b"authorization"[..], b"host", b"content-length"] {
            assert!(header_name_is(name, name));
            assert!(header_name_is(&name.to_ascii_uppercase(), name));
            let mut mixed = name.to_vec();
            mixed[0] = mixed[0].to_ascii_uppercase();
            assert!(header_name_is(&mixed, name));
            assert!(!header_name_is(&name[1..], name), "shorter");
            assert!(
                !header_name_is(&[name, b" "].concat(), name),
                "trailing space"
            );
            assert!(
                !header_name_is(&[name, b"\0"].concat(), name),
                "trailing NUL"
            );
        }
        // Only ASCII letters fold: the Kelvin sign and a Latin-1 byte do not.
        assert!(!header_name_is("\u{212a}ey".as_bytes(), b"key"));
        assert!(!header_name_is(b"h\xd6st", b"h\xf6st"));
        assert!(!header_name_is(b"", b"host"));
    }

    proptest::proptest! {
        /// The same answer as comparing the lowered name, for any bytes.
        #[test]
        fn header_name_is_lowering_then_comparing(
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..16),
            mask in proptest::num::u16::ANY,
            pick in 0..3_usize,
        ) {
            // A name in any mix of cases (letters flipped by the mask's bits), or any bytes.
            let name: Vec<u8> = match pick {
                0 | 1 => [&b"authorization"[..], b"host"][pick]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| if mask >> (i % 16) & 1 == 1 { b.to_ascii_uppercase() } else { *b })
                    .collect(),
                _ => junk,
            };
            for lower in [&b"authorization"[..], b"host"] {
                proptest::prop_assert_eq!(header_name_is(&name, lower), name.to_ascii_lowercase() == lower);
            }
        }
    }

    #[test]
    fn accepts_pagerduty_and_bearer_forms_in_any_case_and_spacing() {
        for v in [
            format!("Token token={KEY}"),
            format!("token token={KEY}"),
            format!("TOKEN TOKEN={KEY}"),
            format!("  Token   token = {KEY}  "),
            format!("Token\ttoken=\t{KEY}"),
            format!("Token token=\"{KEY}\""),
            format!("Bearer {KEY}"),
            format!("bearer    {KEY} "),
        ] {
            assert_eq!(token_from_authorization(v.as_bytes()), Some(KEY), "{v:?}");
        }
    }

    #[test]
    fn refuses_other_schemes_and_broken_values() {
        for v in [
            String::new(),
            "   ".to_owned(),
            KEY.to_owned(),
            format!("Token {KEY}"),
            format!("Token token {KEY}"),
            format!("Token tokens={KEY}"),
            "Token token=".to_owned(),
            "Token token=\"\"".to_owned(),
            format!("Token token={KEY} extra"),
            format!("Token token=\"{KEY}"),
            format!("Basic {KEY}"),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {KEY} {KEY}"),
            format!("Tokentoken={KEY}"),
            format!("Token token={}", "a".repeat(MAX_AUTHORIZATION_BYTES)),
        ] {
            assert_eq!(token_from_authorization(v.as_bytes()), None, "{v:?}");
        }
        assert_eq!(token_from_authorization(b"Bearer \xff\xfe"), None);
    }

    #[test]
    fn the_fast_path_answers_like_the_general_parse() {
        let long = "a".repeat(MAX_AUTHORIZATION_BYTES);
        for v in [
            format!("Token token={KEY}"),
            format!("Token token={KEY} "),
            format!("Token token={KEY}\t"),
            format!("Token token=\"{KEY}\""),
            format!("Token token={KEY}\""),
            format!("Token token=\"{KEY}"),
            "Token token=ab\"cd".to_owned(),
            "Token token=ab cd".to_owned(),
            "Token token=ab\tcd".to_owned(),
            format!("Token token= {KEY}"),
            "Token token=".to_owned(),
            "Token token=\u{7f}".to_owned(),
            "Token token=cl\u{e9}".to_owned(),
            "Token token=\u{0}abc".to_owned(),
            format!("Token token={}", &long[..MAX_AUTHORIZATION_BYTES - 12]),
            format!("Token token={long}"),
        ] {
            let general = if v.len() > MAX_AUTHORIZATION_BYTES {
                None
            } else {
                parse_authorization(v.as_bytes())
            };
            assert_eq!(token_from_authorization(v.as_bytes()), general, "{v:?}");
        }
        assert_eq!(token_from_authorization(b"Token token=ab\xffcd"), None);
        assert_eq!(token_from_authorization(b"Token token=ab\x80"), None);
        assert_eq!(
            token_from_authorization(format!("Token token={KEY} ").as_bytes()),
            Some(KEY)
        );
        assert_eq!(token_from_authorization(b"Token token=ab cd"), None);
    }

    #[test]
    fn rest_token_reads_exactly_one_header_in_any_accepted_form() {
        use http::HeaderValue;
        fn one(v: &[u8]) -> Result<String, &'static str> {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
            rest_token(&h).map(str::to_owned).map_err(|r| r.kind())
        }
        assert_eq!(
            one(format!("Token token={KEY}").as_bytes()),
            Ok(KEY.to_owned())
        );
        assert_eq!(
            one(format!("token TOKEN = \"{KEY}\" ").as_bytes()),
            Ok(KEY.to_owned())
        );
        assert_eq!(one(format!("Bearer {KEY}").as_bytes()), Ok(KEY.to_owned()));
        for bad in [
            &b"Token token=ab\xffcd"[..],
            b"Token token=\xc3\xa9",
            b"Token token=ab\"cd",
            b"Token token=",
            b"Basic abc",
        ] {
            assert_eq!(one(bad), Err("malformed_authorization"), "{bad:?}");
        }
        let long = format!("Token token={}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(one(long.as_bytes()), Err("malformed_authorization"));
        let longest = format!("Token token={}", "a".repeat(MAX_AUTHORIZATION_BYTES - 12));
        assert_eq!(
            one(longest.as_bytes()).map(|k| k.len()),
            Ok(MAX_AUTHORIZATION_BYTES - 12)
        );

        assert_eq!(
            rest_token(&HeaderMap::new()).map_err(|r| r.kind()),
            Err("missing_key")
        );
        let mut two = HeaderMap::new();
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(
            rest_token(&two).map_err(|r| r.kind()),
            Err("duplicate_authorization")
        );
    }

    #[test]
    fn the_values_of_a_request_give_one_key_or_a_refusal() {
        let kind = |values: &[&[u8]]| {
            token_from_authorizations(values.iter().copied())
                .map(str::to_owned)
                .map_err(|r| r.kind())
        };
        let good = format!("Token token={KEY}");
        assert_eq!(kind(&[good.as_bytes()]), Ok(KEY.to_owned()));
        assert_eq!(kind(&[]), Err("missing_key"));
        assert_eq!(kind(&[b"Basic abc"]), Err("malformed_authorization"));
        assert_eq!(
            kind(&[good.as_bytes(), good.as_bytes()]),
            Err("duplicate_authorization")
        );
        assert_eq!(kind(&[b"x", b"y", b"z"]), Err("duplicate_authorization"));
    }

    #[test]
    fn joined_values_tell_one_header_from_several() {
        let kind = |v: Option<&str>| {
            token_from_joined_authorization(v.map(str::as_bytes))
                .map(str::to_owned)
                .map_err(|r| r.kind())
        };
        assert_eq!(kind(None), Err("missing_key"));
        assert_eq!(
            kind(Some(&format!("Token token={KEY}"))),
            Ok(KEY.to_owned())
        );
        // A comma inside one well-formed value is part of its key.
        assert_eq!(kind(Some("Bearer a,b")), Ok("a,b".to_owned()));
        assert_eq!(
            kind(Some(&format!("Token token={KEY},"))),
            Ok(format!("{KEY},"))
        );
        for several in [
            format!("Token token={KEY},Token token={KEY}"),
            format!("Bearer {KEY},Token token=x"),
            format!("Token token=\"ab\",Bearer {KEY}"),
        ] {
            assert_eq!(
                kind(Some(&several)),
                Err("duplicate_authorization"),
                "{several}"
            );
        }
        for one_bad in [
            format!("Token token={KEY}, Token token={KEY}"),
            format!("Token token={KEY},\tBearer x"),
            "Token token=a, token=b".to_owned(),
            format!(",Token token={KEY}"),
            "Basic a,Basic b".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                kind(Some(&one_bad)),
                Err("malformed_authorization"),
                "{one_bad:?}"
            );
        }
    }

    #[test]
    fn a_declared_length_is_digits_within_the_limit() {
        let kind = |v: &str| declared_length(v.as_bytes(), 100).map_err(|r| r.kind());
        for (v, n) in [("0", 0), ("100", 100), (" 42\t", 42), ("007", 7)] {
            assert_eq!(kind(v), Ok(n), "{v:?}");
        }
        for v in ["101", "99999999999999999999999999999"] {
            assert_eq!(kind(v), Err("body_too_large"), "{v:?}");
        }
        for v in [
            "", " ", "-1", "+5", "1e3", "1,2", "4 2", "0x10", "\u{663}", "12\n",
        ] {
            let r = declared_length(v.as_bytes(), 100).unwrap_err();
            assert_eq!(
                r.message(),
                "the Content-Length header is not a number",
                "{v:?}"
            );
        }
    }

    #[test]
    fn many_brackets_are_not_deep_nesting() {
        // More brackets than the limit, across several 255-byte chunks, but
        // shallow or inside strings: the walk decides, and says no.
        let siblings = format!("[{}]", vec!["{}"; 1000].join(","));
        assert!(!nested_deeper_than(siblings.as_bytes(), MAX_EVENT_DEPTH));
        let quoted = format!("{{\"a\":\"{}\"}}", "[".repeat(5000));
        assert!(!nested_deeper_than(quoted.as_bytes(), MAX_EVENT_DEPTH));
        // Exactly the limit passes, one more is refused, wherever the chunks fall.
        for pad in [0, 1, 200, 254, 255, 256] {
            let ok = format!("{}{}{}", " ".repeat(pad), "[".repeat(128), "]".repeat(128));
            assert!(
                !nested_deeper_than(ok.as_bytes(), MAX_EVENT_DEPTH),
                "pad {pad}"
            );
            let deep = format!("{}{}{}", " ".repeat(pad), "[".repeat(129), "]".repeat(129));
            assert!(
                nested_deeper_than(deep.as_bytes(), MAX_EVENT_DEPTH),
                "pad {pad}"
            );
        }
    }

    #[test]
    fn routing_key_comes_from_the_json_body() {
        let k = "0123456789abcdef0123456789abcdef";
        let body = format!(r#"{{"routing_key":"{k}","event_action":"trigger","payload":{{}}}}"#);
        assert_eq!(routing_key(body.as_bytes()).unwrap(), k);
        // Borrowed from the body, not copied; only a key with escapes is copied.
        assert!(matches!(
            routing_key(body.as_bytes()).unwrap(),
            Cow::Borrowed(_)
        ));
        let escaped = routing_key(br#" {"routing_key":"\u0030abc"}"#).unwrap();
        assert_eq!(escaped, "0abc");
        assert!(matches!(escaped, Cow::Owned(_)));
        for (body, kind) in [
            (&b""[..], "invalid_body"),
            (b"routing_key=abc", "invalid_body"),
            (b"[1,2]", "invalid_body"),
            (b"{\"routing_key\":", "invalid_body"),
            (b"{\"routing_key\":12}", "invalid_body"),
            (b"{\"event_action\":\"trigger\"}", "missing_routing_key"),
            (b"{\"routing_key\":null}", "missing_routing_key"),
        ] {
            let r = routing_key(body).unwrap_err();
            assert_eq!((r.status().as_u16(), r.kind()), (400, kind), "{body:?}");
        }
    }

    #[test]
    fn routing_key_refuses_bodies_nested_too_deeply() {
        let k = "0123456789abcdef0123456789abcdef";
        let nested = |open: &str, close: &str, depth: usize| {
            format!(
                r#"{{"routing_key":"{k}","payload":{}1{}}}"#,
                open.repeat(depth),
                close.repeat(depth)
            )
        };
        // The body itself is one level: 127 more are allowed, 128 more are not.
        for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
            let ok = nested(open, close, MAX_EVENT_DEPTH - 1);
            assert_eq!(routing_key(ok.as_bytes()).unwrap(), k);
            for depth in [MAX_EVENT_DEPTH, 100_000] {
                let deep = nested(open, close, depth);
                let r = routing_key(deep.as_bytes()).unwrap_err();
                assert_eq!((r.status().as_u16(), r.kind()), (400, "invalid_body"));
                assert!(r.message().contains("128 levels"), "{}", r.message());
            }
        }
        // Brackets in strings (escaped quotes included) are not nesting.
        let in_strings = format!(
            r#"{{"routing_key":"{k}","s":"{}","t":"\"{}"}}"#,
            "[".repeat(1000),
            "{".repeat(1000)
        );
        assert_eq!(routing_key(in_strings.as_bytes()).unwrap(), k);
        // Invalid UTF-8 anywhere is not JSON, even in a field the parser skips.
        let mut in_skipped = format!(r#"{{"routing_key":"{k}","p":""#).into_bytes();
        in_skipped.extend_from_slice(b"\xff\xfe\"}");
        let mut in_key = b"{\"routing_key\":\"\xc3".to_vec();
        in_key.extend_from_slice(&k.as_bytes()[1..]);
        in_key.extend_from_slice(b"\"}");
        for body in [in_skipped, in_key] {
            let r = routing_key(&body).unwrap_err();
            assert_eq!(r.message(), "the body is not valid JSON", "{body:?}");
        }
        // Many brackets side by side are not nesting either.
        let wide = format!(
            r#"{{"routing_key":"{k}","a":[{}]}}"#,
            ["[]"; 1000].join(",")
        );
        assert_eq!(routing_key(wide.as_bytes()).unwrap(), k);
    }

    /// `routing_key` as it was before the one-pass parse (a UTF-8 pass, a
    /// bracket count, then `serde_json` into [`EventEnvelope`]): the
    /// reference the one-pass parse must answer like, refusals included.
    fn by_serde(body: &[u8]) -> Result<Cow<'_, str>, Rejection> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(Rejection::not_an_object());
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return Err(Rejection::not_json());
        };
        if nested_deeper_than(body, MAX_EVENT_DEPTH) {
            return Err(Rejection::invalid_body(
                "the body nests arrays and objects more than 128 levels deep",
            ));
        }
        match serde_json::from_str::<EventEnvelope<'_>>(text) {
            Ok(EventEnvelope {
                routing_key: Some(BorrowedKey(k)),
            }) => Ok(k),
            Ok(EventEnvelope { routing_key: None }) => Err(Rejection::missing_routing_key()),
            Err(e) if e.is_data() => Err(Rejection::routing_key_not_a_string()),
            Err(_) => Err(Rejection::not_json()),
        }
    }

    fn agrees_on(body: &[u8]) {
        fn said(
            r: Result<Cow<'_, str>, Rejection>,
        ) -> Result<String, (&'static str, String, bytes::Bytes)> {
            r.map(Cow::into_owned)
                .map_err(|r| (r.kind(), r.message().to_owned(), r.refusal().body))
        }
        assert_eq!(
            said(routing_key(body)),
            said(by_serde(body)),
            "body {:?}",
            String::from_utf8_lossy(body)
        );
    }

    fn agrees(text: &str) {
        agrees_on(text.as_bytes());
    }

    #[test]
    fn the_one_pass_parse_reads_bodies_as_serde_json_does() {
        let long = "x".repeat(1000);
        let corpus = [
            // Accepted, borrowed or decoded, anywhere in the object.
            r#"{"routing_key":"R0123456789abcdef0123456789abcdef"}"#.to_owned(),
            format!(
                r#"{{"event_action":"trigger","payload":{{"summary":"{long}","n":[1,-0.5,2e10,1E+2,0,true,false,null,{{}},[]]}},"routing_key":"k"}}"#
            ),
            r#" {"routing_key" : "\u0030abc\n" , "a" : { "b" : [ ] } } "#.to_owned(),
            r#"{"routing\u005fkey":"k"}"#.to_owned(),
            r#"{"routing_key":"k","routing_kez":1}"#.to_owned(),
            r#"{"x":"a\"b\\c\/d\b\f\n\r\t\u00e9\uD800","routing_key":"é😀"}"#.to_owned(),
            "{\"\u{e9}\":\"\u{1F600}\",\"routing_key\":\"k\"}".to_owned(),
            // Missing, null, not a string, twice.
            "{}".to_owned(),
            r#"{"a":1}"#.to_owned(),
            r#"{"routing_key":null}"#.to_owned(),
            r#"{"routing_key" :null , "b":2}"#.to_owned(),
            r#"{"routing_key":12}"#.to_owned(),
            r#"{"routing_key":1e400}"#.to_owned(),
            r#"{"routing_key":-}"#.to_owned(),
            r#"{"routing_key":true}"#.to_owned(),
            r#"{"routing_key":tru}"#.to_owned(),
            r#"{"routing_key":{"a":]}"#.to_owned(),
            r#"{"routing_key":[}"#.to_owned(),
            r#"{"routing_key":"a","routing_key":"b"}"#.to_owned(),
            r#"{"routing_key":null,"routing_key":"b"}"#.to_owned(),
            r#"{"routing_key":"a","routing\u005fkey":"b"}"#.to_owned(),
            r#"{"routing_key":"a","routing_key""#.to_owned(),
            r#"{"routing_key":"\ud800"}"#.to_owned(),
            r#"{"routing_key":"\ud800\udc00"}"#.to_owned(),
            r#"{"routing_key":"\x"}"#.to_owned(),
            r#"{"routing_key":"a"x}"#.to_owned(),
            r#"{"routing_key":nullx}"#.to_owned(),
            r#"{"routing_key":null"}"#.to_owned(),
            r#"{"routing_key":12x}"#.to_owned(),
            r#"{"routing_key":"#.to_owned(),
            r#"{"routing_key""#.to_owned(),
            // Broken JSON before and after the key.
            r#"{"a":01,"routing_key":"k"}"#.to_owned(),
            r#"{"routing_key":"k","a":01}"#.to_owned(),
            r#"{"routing_key":"k","a":1.}"#.to_owned(),
            r#"{"routing_key":"k","a":1e}"#.to_owned(),
            r#"{"routing_key":"k","a":-x}"#.to_owned(),
            r#"{"routing_key":"k","a":[1,]}"#.to_owned(),
            r#"{"routing_key":"k","a":{"b":1,}}"#.to_owned(),
            r#"{"routing_key":"k",}"#.to_owned(),
            r#"{"routing_key":"k"}}"#.to_owned(),
            r#"{"routing_key":"k"} x"#.to_owned(),
            r#"{"routing_key":"k""#.to_owned(),
            r#"{"routing_key":"k","a":"\u12"}"#.to_owned(),
            r#"{"routing_key":"k","a":"\u12G4"}"#.to_owned(),
            r#"{"routing_key":"k","a":"\q"}"#.to_owned(),
            r#"{"routing_key":"k","\ud800":1}"#.to_owned(),
            r#"{"routing_key":"k","a":{"\ud800":1}}"#.to_owned(),
            "{\"routing_key\":\"k\",\"a\":\"\u{1}\"}".to_owned(),
            "{\"routing_key\":\"k\u{1f}\"}".to_owned(),
            "{\"routing_key\":\"k\",\"a\":\"\u{7f}\"}".to_owned(),
            "\u{c}{\"routing_key\":\"k\"}".to_owned(),
            "{\"routing_key\":\"k\"}\u{c}".to_owned(),
            r#"{"routing_key":"k","a":[1 2]}"#.to_owned(),
            r#"{"routing_key":"k","a":{"b" 1}}"#.to_owned(),
            r#"{"routing_key":"k","a":{1:1}}"#.to_owned(),
            r#"{"routing_key":"k" "a":1}"#.to_owned(),
            r#"{,"routing_key":"k"}"#.to_owned(),
            r#"{"a":nul}"#.to_owned(),
            r#"{"a":[[[[[[]]]]]],"routing_key":"k"}"#.to_owned(),
            r#"{"a":[[[[[[]]]]],"routing_key":"k"}"#.to_owned(),
            format!(
                "{{\"a\":{}1{},\"routing_key\":\"k\"}}",
                "[".repeat(127),
                "]".repeat(127)
            ),
            format!(
                "{{\"a\":{}\"routing_key\":\"k\"}}",
                "{\"b\":".repeat(126).to_owned() + "1" + &"}".repeat(126) + ","
            ),
        ];
        for text in &corpus {
            agrees(text);
        }
        // Not UTF-8, in a key, a skipped value, the key's value; too deep
        // and broken, in every order.
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let bodies: Vec<Vec<u8>> = vec![
            b"{\"routing_key\":\"k\",\"a\":\"\xff\"}".to_vec(),
            b"{\"routing_key\":\"k\xc3\"}".to_vec(),
            b"{\"\xc3\xa9\xff\":1,\"routing_key\":\"k\"}".to_vec(),
            b"{\"routing_key\":\"k\",\"a\":{\"\xed\xa0\x80\":1}}".to_vec(),
            b"{\"routing_key\":\"k\"}\xff".to_vec(),
            b"{\"routing_key\":\"k\",\"a\":1\xff}".to_vec(),
            format!("{{\"a\":{},\"routing_key\":\"k\"}}", deep(127)).into_bytes(),
            format!("{{\"a\":{},\"routing_key\":\"k\"}}", deep(128)).into_bytes(),
            format!("{{\"routing_key\":12,\"a\":{}}}", deep(200)).into_bytes(),
            format!("{{\"a\":01,\"b\":{}}}", deep(200)).into_bytes(),
            [format!("{{\"a\":{}}}", deep(200)).as_bytes(), b"\xff"].concat(),
            [b"{\"a\":\"\xff\",\"b\":", deep(200).as_bytes(), b"}"].concat(),
            format!("{{\"a\":{}", "[".repeat(300)).into_bytes(),
        ];
        for body in &bodies {
            agrees_on(body);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// Bodies made of JSON's pieces, well and badly put together.
        #[test]
        fn the_one_pass_parse_agrees_on_any_arrangement_of_json_pieces(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "{", "}", "[", "]", ":", ",", " ", "\n", "\u{c}", "\"routing_key\"",
                "\"routing\\u005fkey\"", "\"routing_key", "\"a\"", "\"\"", "\"\\ud800\"",
                "\"\\uDC00x\"", "\"\\u00e9\\n\"", "\"\\x\"", "\"\u{1}\"", "\"é\"", "\"",
                "\\", "0", "01", "-", "-1.5e+3", "1.", "1e", "2E-0", "1e400", "null",
                "nul", "true", "false", "x", "\"k\"", "\"R0123456789abcdef\"",
            ]), 0..24)
        ) {
            let text = format!("{{{}", pieces.concat());
            agrees(&text);
        }

        /// Well-formed objects whose values are any JSON, with the key
        /// anywhere (or twice, or never), compared in every case.
        #[test]
        fn the_one_pass_parse_agrees_on_well_formed_events(
            fields in proptest::collection::vec(("[a-z_]{0,12}|routing_key", any_json()), 0..6),
            spaced in proptest::bool::ANY,
        ) {
            let sep = if spaced { " , " } else { "," };
            let members: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                .collect();
            let text = format!("{{{}}}", members.join(sep));
            agrees(&text);
        }

        /// Arbitrary bytes after a `{` (the part of `routing_key` before
        /// the parse has made sure of UTF-8).
        #[test]
        fn the_one_pass_parse_agrees_on_arbitrary_text(rest in "\\PC{0,40}") {
            agrees(&format!("{{{rest}"));
        }

        /// Arbitrary bytes, UTF-8 or not, after a `{` or inside a string.
        #[test]
        fn the_one_pass_parse_agrees_on_arbitrary_bytes(
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            in_string in proptest::bool::ANY,
        ) {
            let mut body = if in_string { b"{\"routing_key\":\"k\",\"a\":\"".to_vec() } else { b"{".to_vec() };
            body.extend_from_slice(&rest);
            if in_string {
                body.extend_from_slice(b"\"}");
            }
            agrees_on(&body);
        }
    }

    /// Any JSON value, as text.
    fn any_json() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            ".{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((".{0,6}", inner), 0..5).prop_map(|v| {
                    let members: Vec<String> = v
                        .into_iter()
                        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }
}
