//! What is kept at rest instead of a key: a [`Digest`], made by a [`KeyHasher`].

use std::fmt;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The SHA-256 (or HMAC-SHA-256) digest of a key: 32 bytes, compared in constant time.
///
/// `==` on digests is constant-time too (it goes through [`ConstantTimeEq`]).
#[derive(Clone, Copy)]
pub struct Digest([u8; 32]);

impl Digest {
    /// A digest from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first eight bytes as an integer. The digest is already uniformly
    /// distributed, so this is a ready-made hash for tables: no second hash is needed.
    #[inline]
    pub fn prefix64(&self) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(w)
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Parse 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<Digest> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
        }
        Some(Digest(out))
    }
}

impl ConstantTimeEq for Digest {
    /// Folds the four 64-bit words with XOR and OR (no branch, no early exit),
    /// then compares the folded word with `subtle`. This is as branch-free as
    /// `subtle`'s byte-slice comparison and about 25 times cheaper, because
    /// `subtle` puts an optimisation barrier on each of the 32 bytes.
    #[inline]
    fn ct_eq(&self, other: &Digest) -> Choice {
        let mut acc = 0u64;
        for i in 0..4 {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&self.0[8 * i..8 * i + 8]);
            b.copy_from_slice(&other.0[8 * i..8 * i + 8]);
            acc |= u64::from_ne_bytes(a) ^ u64::from_ne_bytes(b);
        }
        acc.ct_eq(&0)
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Digest) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Digest {}

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix64());
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret (it is what is stored), but short is easier to read.
        write!(f, "Digest({}…)", &self.to_hex()[..12])
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("a digest is 64 hex characters"))
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The longest message that fits one SHA-256 block with its padding.
const ONE_BLOCK_MAX: usize = 55;

/// SHA-256 of a message of at most 55 bytes (every key is 20 or 32): the
/// one-block padding written out, then one call to `sha2`'s own compression
/// function. Same result as `Sha256::digest`, without its streaming buffer
/// bookkeeping, which costs about as much again as the compression for a
/// message this short. Checked against `Sha256::digest` for every length.
///
/// Inlined into [`KeyHasher::digest`], so into `authenticate`.
#[inline(always)]
fn sha256_one_block(msg: &[u8]) -> [u8; 32] {
    debug_assert!(msg.len() <= ONE_BLOCK_MAX);
    let mut block = [0u8; 64];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    block[56..].copy_from_slice(&(msg.len() as u64 * 8).to_be_bytes());
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, &[block]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Turns keys into digests: plain SHA-256, or HMAC-SHA-256 under a server-side pepper.
///
/// With a pepper, a stolen database cannot be searched for keys without also
/// stealing the pepper. The keyed HMAC state is computed once, when the hasher
/// is made, and cloned per key, so a peppered digest costs about as much as a
/// plain one. `Debug` never shows the pepper.
#[derive(Clone)]
pub struct KeyHasher {
    hmac: Option<HmacSha256>,
}

/// The shortest pepper accepted, in bytes.
pub const MIN_PEPPER_LEN: usize = 16;

impl KeyHasher {
    /// Plain SHA-256.
    pub fn sha256() -> KeyHasher {
        KeyHasher { hmac: None }
    }

    /// HMAC-SHA-256 keyed with `pepper` (at least [`MIN_PEPPER_LEN`] bytes).
    pub fn with_pepper(pepper: &[u8]) -> Result<KeyHasher, crate::Error> {
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(crate::Error::invalid(
                "pepper",
                format!(
                    "must be at least {MIN_PEPPER_LEN} bytes of secret randomness, got {}",
                    pepper.len()
                ),
            ));
        }
        let mac = HmacSha256::new_from_slice(pepper)
            .map_err(|_| crate::Error::invalid("pepper", "rejected by HMAC".to_owned()))?;
        Ok(KeyHasher { hmac: Some(mac) })
    }

    /// Whether this hasher uses a pepper.
    pub fn is_peppered(&self) -> bool {
        self.hmac.is_some()
    }

    /// The digest of `key`.
    ///
    /// Inlined into its caller (the hot path), down to the call of the
    /// compression function: a call boundary here cost about 30 instructions
    /// per `authenticate` in saved registers (callgrind, docs/performance.md,
    /// "The floor"). HMAC and long messages take a call of their own.
    #[inline(always)]
    pub fn digest(&self, key: &[u8]) -> Digest {
        match &self.hmac {
            None if key.len() <= ONE_BLOCK_MAX => Digest(sha256_one_block(key)),
            _ => self.digest_other(key),
        }
    }

    /// [`KeyHasher::digest`] with a pepper, or of a message longer than one block.
    #[inline(never)]
    fn digest_other(&self, key: &[u8]) -> Digest {
        match &self.hmac {
            None => Digest(Sha256::digest(key).into()),
            Some(mac) => {
                let mut m = mac.clone();
                m.update(key);
                Digest(m.finalize().into_bytes().into())
            }
        }
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::sha256()
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hmac {
            None => f.write_str("KeyHasher(Sha256)"),
            Some(_) => f.write_str("KeyHasher(HmacSha256 { pepper: [REDACTED] })"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_vector() {
        let d = KeyHasher::sha256().digest(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_matches_rfc4231_case_2_shape_and_differs_from_plain() {
        // RFC 4231 test case 2 uses a 4-byte key, below our minimum, so check
        // with case 1's 20-byte key instead.
        let key = [0x0bu8; 20];
        let d = KeyHasher::with_pepper(&key).unwrap().digest(b"Hi There");
        assert_eq!(
            d.to_hex(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_ne!(d, KeyHasher::sha256().digest(b"Hi There"));
        // The cloned state gives the same answer twice.
        let h = KeyHasher::with_pepper(&key).unwrap();
        assert_eq!(h.digest(b"x"), h.digest(b"x"));
    }

    #[test]
    fn the_one_block_path_matches_sha2_for_every_length() {
        let h = KeyHasher::sha256();
        let mut msg = Vec::new();
        for len in 0..=80u8 {
            let want: [u8; 32] = Sha256::digest(&msg).into();
            assert_eq!(h.digest(&msg).as_bytes(), &want, "length {len}");
            if (len as usize) <= ONE_BLOCK_MAX {
                assert_eq!(sha256_one_block(&msg), want, "length {len}");
            }
            msg.push(len.wrapping_mul(37).wrapping_add(11));
        }
        for kind in crate::KeyKind::ALL {
            let k = kind.generate().unwrap();
            let want: [u8; 32] = Sha256::digest(k.expose().as_bytes()).into();
            assert_eq!(h.digest(k.expose().as_bytes()).as_bytes(), &want);
        }
    }

    #[test]
    fn short_peppers_are_refused() {
        assert!(KeyHasher::with_pepper(b"short").is_err());
    }

    #[test]
    fn debug_hides_the_pepper() {
        let h = KeyHasher::with_pepper(b"0123456789abcdef-pepper").unwrap();
        assert!(!format!("{h:?}").contains("pepper\""));
        assert!(!format!("{h:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn equality_sees_every_byte() {
        let a = Digest::from_bytes([7; 32]);
        for i in 0..32 {
            let mut b = [7u8; 32];
            b[i] ^= 1;
            assert_ne!(a, Digest::from_bytes(b), "byte {i}");
        }
        assert_eq!(a, Digest::from_bytes([7; 32]));
    }

    #[test]
    fn hex_round_trips() {
        let d = KeyHasher::sha256().digest(b"k");
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
    }
}
