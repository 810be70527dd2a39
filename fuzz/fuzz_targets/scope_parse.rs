//! `Scope::parse` never panics, and an accepted scope prints back to a string
//! that parses to the same scope.
#![no_main]

use apikeys::Scope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scope) = Scope::parse(s) {
        let again = Scope::parse(&scope.to_string()).expect("a printed scope parses");
        assert_eq!(again, scope);
        assert_eq!(scope.to_string(), s, "only the canonical spelling is accepted");
    }
});
