//! `token_from_authorization` never panics, and what it returns is a piece of
//! the header value (never more than the header's limit).
#![no_main]

use apikeys_http::{MAX_AUTHORIZATION_BYTES, token_from_authorization};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(token) = token_from_authorization(data) {
        assert!(data.len() <= MAX_AUTHORIZATION_BYTES);
        let start = token.as_ptr() as usize;
        let base = data.as_ptr() as usize;
        assert!(start >= base && start + token.len() <= base + data.len());
        assert!(!token.is_empty());
    }
});
