//! Key kinds, their wire formats, generation from the operating system's
//! randomness, and total, allocation-free parsing.
//!
//! | kind | API | length | format |
//! |---|---|---|---|
//! | [`KeyKind::General`] | REST | 20 | 20 chars of `[A-Za-z0-9_-]` |
//! | [`KeyKind::UserToken`] | REST | 20 | `u+` then 18 chars of `[A-Za-z0-9_-]` |
//! | [`KeyKind::Scoped`] | REST | 20 | `s+` then 18 chars of `[A-Za-z0-9_-]` |
//! | [`KeyKind::Integration`] | Events | 32 | 32 lowercase hex chars |
//! | [`KeyKind::Routing`] | Events | 32 | `R0` then 30 chars of `[A-Z0-9]` |

use std::fmt;

use rand_core::TryRng;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Which of the two APIs a key or a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// The REST API (20-character keys).
    Rest,
    /// The Events API (32-character keys).
    Events,
}

impl Api {
    /// The lowercase name: `"rest"` or `"events"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Api::Rest => "rest",
            Api::Events => "events",
        }
    }
}

crate::names::from_name!(KeyKind, "kind");

impl std::str::FromStr for Api {
    type Err = crate::Error;
    /// `"rest"` or `"events"` (exact, lowercase).
    fn from_str(s: &str) -> Result<Api, crate::Error> {
        match s {
            "rest" => Ok(Api::Rest),
            "events" => Ok(Api::Events),
            _ => Err(crate::Error::invalid(
                "api",
                "must be 'rest' or 'events'".to_owned(),
            )),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five kinds of key, each with its own format:
///
/// | kind | API | length | format |
/// |---|---|---|---|
/// | [`KeyKind::General`] | REST | 20 | 20 chars of `[A-Za-z0-9_-]` |
/// | [`KeyKind::UserToken`] | REST | 20 | `u+` then 18 chars of `[A-Za-z0-9_-]` |
/// | [`KeyKind::Scoped`] | REST | 20 | `s+` then 18 chars of `[A-Za-z0-9_-]` |
/// | [`KeyKind::Integration`] | Events | 32 | 32 lowercase hex chars |
/// | [`KeyKind::Routing`] | Events | 32 | `R0` then 30 chars of `[A-Z0-9]` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A general access REST key, owned by the account; full access or read-only.
    General,
    /// A personal REST key that acts with its owner's *current* role.
    UserToken,
    /// A REST token, owned by the account, limited to an explicit list of scopes.
    Scoped,
    /// An Events API integration key, owned by one service.
    Integration,
    /// An event-orchestration routing key (Events API), owned by one orchestration.
    Routing,
}

/// Why a string is not a well-formed key. Carries positions and lengths only,
/// never the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The length is neither 20 (REST) nor 32 (Events) bytes.
    Length {
        /// The length that was given, in bytes.
        len: usize,
    },
    /// The byte at this position is outside the alphabet of every kind of that length.
    Character {
        /// Zero-based byte position of the first offending byte.
        position: usize,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Length { len } => write!(
                f,
                "malformed key: {len} bytes long, expected 20 (REST) or 32 (Events)"
            ),
            Malformed::Character { position } => write!(
                f,
                "malformed key: byte {position} is outside the key's alphabet"
            ),
        }
    }
}

impl std::error::Error for Malformed {}

/// Length of every REST key.
pub const REST_KEY_LEN: usize = 20;
/// Length of every Events API key.
pub const EVENTS_KEY_LEN: usize = 32;

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

const C_URL: u8 = 1;
const C_HEX: u8 = 2;
const C_UPPER: u8 = 4;

/// A class bit set for each byte value: which alphabets it belongs to.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < URL_SAFE.len() {
        t[URL_SAFE[i] as usize] |= C_URL;
        i += 1;
    }
    let mut i = 0;
    while i < HEX_LOWER.len() {
        t[HEX_LOWER[i] as usize] |= C_HEX;
        i += 1;
    }
    let mut i = 0;
    while i < UPPER_ALNUM.len() {
        t[UPPER_ALNUM[i] as usize] |= C_UPPER;
        i += 1;
    }
    t
};

/// Position of the first byte of `s` outside the alphabet `class`, if any.
///
/// The common case (every byte fits) is a branch-free fold over the table;
/// the position is only searched for when something is wrong.
#[inline]
fn first_outside(s: &[u8], class: u8) -> Option<usize> {
    let all = s.iter().fold(class, |acc, &b| acc & CLASS[b as usize]);
    if all == class {
        None
    } else {
        s.iter().position(|&b| CLASS[b as usize] & class == 0)
    }
}

impl KeyKind {
    /// Every kind, in declaration order.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::General,
        KeyKind::UserToken,
        KeyKind::Scoped,
        KeyKind::Integration,
        KeyKind::Routing,
    ];

    /// The API this kind of key is used on.
    pub const fn api(self) -> Api {
        match self {
            KeyKind::General | KeyKind::UserToken | KeyKind::Scoped => Api::Rest,
            KeyKind::Integration | KeyKind::Routing => Api::Events,
        }
    }

    /// The length of every key of this kind, in characters (= bytes: keys are ASCII).
    pub const fn key_len(self) -> usize {
        match self.api() {
            Api::Rest => REST_KEY_LEN,
            Api::Events => EVENTS_KEY_LEN,
        }
    }

    /// The fixed prefix of this kind (`"u+"`, `"s+"`, `"R0"`), or `""`.
    pub const fn prefix(self) -> &'static str {
        match self {
            KeyKind::UserToken => "u+",
            KeyKind::Scoped => "s+",
            KeyKind::Routing => "R0",
            KeyKind::General | KeyKind::Integration => "",
        }
    }

    /// The snake_case name (`"general"`, `"user_token"`, `"scoped"`, `"integration"`, `"routing"`);
    /// `FromStr` parses these names (to tell a key's kind from a key, use [`KeyKind::parse`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyKind::General => "general",
            KeyKind::UserToken => "user_token",
            KeyKind::Scoped => "scoped",
            KeyKind::Integration => "integration",
            KeyKind::Routing => "routing",
        }
    }

    /// Bits of randomness in one key of this kind.
    pub const fn entropy_bits(self) -> u32 {
        match self {
            KeyKind::General => 120,
            KeyKind::UserToken | KeyKind::Scoped => 108,
            KeyKind::Integration => 128,
            // 30 characters from 36: 30 * log2(36) = 155.1
            KeyKind::Routing => 155,
        }
    }

    /// Classify a presented key by its format alone.
    ///
    /// Total: every input gives a kind or a [`Malformed`] answer, without
    /// allocating, without panicking and without touching any store. The work
    /// is bounded by the key length: longer inputs are refused by length first.
    #[inline]
    pub fn parse(token: &str) -> Result<KeyKind, Malformed> {
        Self::parse_bytes(token.as_bytes())
    }

    /// [`KeyKind::parse`] over raw bytes (for keys read from headers or bodies).
    #[inline]
    pub fn parse_bytes(token: &[u8]) -> Result<KeyKind, Malformed> {
        match token.len() {
            REST_KEY_LEN => {
                let (kind, body) = match token {
                    [b'u', b'+', rest @ ..] => (KeyKind::UserToken, rest),
                    [b's', b'+', rest @ ..] => (KeyKind::Scoped, rest),
                    _ => (KeyKind::General, token),
                };
                let offset = REST_KEY_LEN - body.len();
                match first_outside(body, C_URL) {
                    None => Ok(kind),
                    Some(p) => Err(Malformed::Character {
                        position: p + offset,
                    }),
                }
            }
            EVENTS_KEY_LEN => {
                if let [b'R', b'0', rest @ ..] = token {
                    match first_outside(rest, C_UPPER) {
                        None => Ok(KeyKind::Routing),
                        Some(p) => Err(Malformed::Character { position: p + 2 }),
                    }
                } else {
                    match first_outside(token, C_HEX) {
                        None => Ok(KeyKind::Integration),
                        Some(p) => Err(Malformed::Character { position: p }),
                    }
                }
            }
            len => Err(Malformed::Length { len }),
        }
    }

    /// Make a fresh key of this kind from the operating system's randomness.
    ///
    /// Characters are drawn without modulo bias: the 64- and 16-character
    /// alphabets divide 256 exactly, and the 36-character alphabet of routing
    /// keys uses rejection sampling (bytes of 252 and above are drawn again).
    pub fn generate(self) -> Result<Secret, getrandom::Error> {
        let mut out = [0u8; EVENTS_KEY_LEN];
        let len = self.key_len();
        let prefix = self.prefix().as_bytes();
        out[..prefix.len()].copy_from_slice(prefix);
        let body = &mut out[prefix.len()..len];
        let mut rng = getrandom::SysRng;
        match self {
            KeyKind::General | KeyKind::UserToken | KeyKind::Scoped => {
                rng.try_fill_bytes(body)?;
                for b in body.iter_mut() {
                    *b = URL_SAFE[(*b & 63) as usize];
                }
            }
            KeyKind::Integration => {
                let mut raw = [0u8; EVENTS_KEY_LEN / 2];
                rng.try_fill_bytes(&mut raw)?;
                for (i, r) in raw.iter().enumerate() {
                    body[2 * i] = HEX_LOWER[(r >> 4) as usize];
                    body[2 * i + 1] = HEX_LOWER[(r & 15) as usize];
                }
                zeroize::Zeroize::zeroize(&mut raw);
            }
            KeyKind::Routing => {
                let mut pool = [0u8; 64];
                let mut used = pool.len();
                let mut filled = 0;
                while filled < body.len() {
                    if used == pool.len() {
                        rng.try_fill_bytes(&mut pool)?;
                        used = 0;
                    }
                    let r = pool[used];
                    used += 1;
                    // 252 = 7 * 36: accept only bytes below it so each of the 36 is equally likely.
                    if r < 252 {
                        body[filled] = UPPER_ALNUM[(r % 36) as usize];
                        filled += 1;
                    }
                }
                zeroize::Zeroize::zeroize(&mut pool);
            }
        }
        let secret = Secret::from_ascii(&out[..len]);
        zeroize::Zeroize::zeroize(&mut out);
        Ok(secret)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The display hint kept beside a key's digest: its last four characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hint([u8; 4]);

impl Hint {
    /// The hint of a well-formed key (its last four characters).
    pub fn of(key: &str) -> Hint {
        let b = key.as_bytes();
        let mut h = [b'?'; 4];
        if b.len() >= 4 {
            h.copy_from_slice(&b[b.len() - 4..]);
        }
        if !h.is_ascii() {
            h = [b'?'; 4];
        }
        Hint(h)
    }

    /// The four characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `of` and `from_str`).
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl std::str::FromStr for Hint {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 4 || !b.is_ascii() {
            return Err("a hint is exactly four ASCII characters");
        }
        let mut h = [0u8; 4];
        h.copy_from_slice(b);
        Ok(Hint(h))
    }
}

impl fmt::Debug for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hint(\"…{}\")", self.as_str())
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Hint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Hint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_generates_keys_that_parse_back_to_it() {
        for kind in KeyKind::ALL {
            for _ in 0..200 {
                let s = kind.generate().unwrap();
                assert_eq!(s.expose().len(), kind.key_len());
                assert!(s.expose().starts_with(kind.prefix()));
                assert_eq!(KeyKind::parse(s.expose()), Ok(kind), "{kind}");
            }
        }
    }

    #[test]
    fn general_keys_never_contain_plus() {
        for _ in 0..1000 {
            assert!(!KeyKind::General.generate().unwrap().expose().contains('+'));
        }
    }

    #[test]
    fn apis_parse_from_their_names_only() {
        assert_eq!("rest".parse::<Api>().unwrap(), Api::Rest);
        assert_eq!("events".parse::<Api>().unwrap(), Api::Events);
        for bad in ["", "REST", "event", "rest "] {
            assert_eq!(bad.parse::<Api>().unwrap_err().http_status(), 400);
        }
    }

    #[test]
    fn wrong_lengths_are_malformed() {
        for len in [0, 1, 19, 21, 31, 33, 10_000] {
            let s = "a".repeat(len);
            assert_eq!(KeyKind::parse(&s), Err(Malformed::Length { len }));
        }
    }

    #[test]
    fn one_wrong_character_is_reported_at_its_position() {
        let mut k = String::from("abcdefghij0123456789");
        assert_eq!(KeyKind::parse(&k), Ok(KeyKind::General));
        k.replace_range(7..8, "+");
        assert_eq!(
            KeyKind::parse(&k),
            Err(Malformed::Character { position: 7 })
        );
        let bad_hex = "0123456789abcdef0123456789abcdeF";
        assert_eq!(
            KeyKind::parse(bad_hex),
            Err(Malformed::Character { position: 31 })
        );
        let bad_routing = "R0ABCDEFGHIJKLMNOPQRSTUVWXYZ012a";
        assert_eq!(
            KeyKind::parse(bad_routing),
            Err(Malformed::Character { position: 31 })
        );
        // A user-token prefix followed by a '+' later on.
        assert_eq!(
            KeyKind::parse("u+abcdefghijklmnopq+"),
            Err(Malformed::Character { position: 19 })
        );
    }

    #[test]
    fn prefixes_only_count_with_the_right_length() {
        // 32 chars starting with u+ is not a user token, and not hex either.
        let s = format!("u+{}", "a".repeat(30));
        assert_eq!(
            KeyKind::parse(&s),
            Err(Malformed::Character { position: 0 })
        );
        // 20 chars starting with R0 is a general key.
        let s = format!("R0{}", "A".repeat(18));
        assert_eq!(KeyKind::parse(&s), Ok(KeyKind::General));
    }

    #[test]
    fn nul_and_non_ascii_bytes_are_malformed() {
        let mut b = [b'a'; 20];
        b[3] = 0;
        assert_eq!(
            KeyKind::parse_bytes(&b),
            Err(Malformed::Character { position: 3 })
        );
        // 20 bytes of which some are a multi-byte character
        let s = "ééééééééééabcdefghij"[..20].to_string();
        assert_eq!(s.len(), 20);
        assert!(matches!(
            KeyKind::parse(&s),
            Err(Malformed::Character { position: 0 })
        ));
    }

    #[test]
    fn malformed_messages_carry_no_input() {
        let m = KeyKind::parse("secretsecretsecret!!").unwrap_err();
        assert!(!m.to_string().contains("secret"));
    }

    #[test]
    fn hint_is_the_last_four_characters() {
        assert_eq!(Hint::of("abcdefghij0123456789").as_str(), "6789");
        assert_eq!("wxyz".parse::<Hint>().unwrap().as_str(), "wxyz");
        assert!("toolong".parse::<Hint>().is_err());
    }
}
