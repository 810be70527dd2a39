//! [`Secret`]: a freshly made key, shown once.

use std::fmt;

use zeroize::Zeroize;

/// A freshly made key: the only place a full key ever lives.
///
/// - Read only through [`Secret::expose`], so every place that touches a key is greppable.
/// - `Debug` prints `Secret([REDACTED])`; there is no `Display`, `Clone` or `Serialize`.
/// - The bytes are overwritten with zeros when the value is dropped.
pub struct Secret {
    buf: [u8; 32],
    len: u8,
}

impl Secret {
    /// Wrap ASCII key bytes (at most 32). Only key generation makes secrets.
    pub(crate) fn from_ascii(bytes: &[u8]) -> Secret {
        debug_assert!(bytes.len() <= 32 && bytes.is_ascii());
        let mut buf = [0u8; 32];
        let len = bytes.len().min(32);
        buf[..len].copy_from_slice(&bytes[..len]);
        Secret {
            buf,
            len: len as u8,
        }
    }

    /// The key itself. Show it to its user once; never log it.
    pub fn expose(&self) -> &str {
        // Generation writes ASCII only, so this never fails; an empty string
        // would be the answer if it somehow did, never a panic.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.buf.zeroize();
        self.len.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use crate::KeyKind;

    #[test]
    fn debug_is_redacted() {
        let s = KeyKind::General.generate().unwrap();
        let d = format!("{s:?} {s:#?}");
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        assert!(!d.contains(s.expose()));
    }
}
