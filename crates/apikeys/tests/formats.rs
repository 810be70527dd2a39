//! Key formats: generation, parsing, uniformity (proptest and a chi-square test).

use apikeys::{KeyKind, Malformed};
use proptest::prelude::*;

fn alphabet(kind: KeyKind) -> &'static [u8] {
    match kind {
        KeyKind::General | KeyKind::UserToken | KeyKind::Scoped => {
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        }
        KeyKind::Integration => b"0123456789abcdef",
        KeyKind::Routing => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    }
}

fn kind_strategy() -> impl Strategy<Value = KeyKind> {
    prop::sample::select(KeyKind::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_keys_have_exact_length_alphabet_and_kind(kind in kind_strategy()) {
        let s = kind.generate().unwrap();
        let k = s.expose();
        prop_assert_eq!(k.len(), kind.key_len());
        prop_assert!(k.starts_with(kind.prefix()));
        let body = &k.as_bytes()[kind.prefix().len()..];
        prop_assert!(body.iter().all(|b| alphabet(kind).contains(b)));
        prop_assert_eq!(KeyKind::parse(k), Ok(kind));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let r = KeyKind::parse(&s);
        if let Err(Malformed::Length { len }) = r {
            prop_assert_eq!(len, s.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_classified_consistently(b in prop::collection::vec(any::<u8>(), 0..64)) {
        match KeyKind::parse_bytes(&b) {
            Ok(kind) => {
                prop_assert_eq!(b.len(), kind.key_len());
                prop_assert!(b.is_ascii());
            }
            Err(Malformed::Length { len }) => prop_assert!(len != 20 && len != 32),
            Err(Malformed::Character { position }) => prop_assert!(position < b.len()),
        }
    }

    #[test]
    fn one_changed_character_outside_the_alphabet_is_malformed(kind in kind_strategy(), pos in 0usize..32, bad in prop::sample::select(b"+/=.~ !\0\x7f".to_vec())) {
        let s = kind.generate().unwrap();
        let mut b = s.expose().as_bytes().to_vec();
        let pos = pos % b.len();
        // Keep the user-token / scoped-token '+' where it belongs.
        prop_assume!(!(bad == b'+' && pos == 1));
        b[pos] = bad;
        prop_assert!(KeyKind::parse_bytes(&b).is_err());
    }
}

#[test]
fn huge_and_odd_inputs_are_malformed_without_panicking() {
    let huge = "a".repeat(10 * 1024 * 1024);
    assert_eq!(
        KeyKind::parse(&huge),
        Err(Malformed::Length { len: huge.len() })
    );
    assert!(KeyKind::parse("").is_err());
    assert!(KeyKind::parse_bytes(&[0u8; 20]).is_err());
    assert!(KeyKind::parse_bytes(&[0u8; 32]).is_err());
    assert!(KeyKind::parse_bytes(&[0xffu8; 20]).is_err());
    // Right length, wrong alphabet: uppercase hex for an integration key.
    assert!(KeyKind::parse("0123456789ABCDEF0123456789ABCDEF").is_err());
    // Right length, lowercase routing body.
    assert!(KeyKind::parse("R0abcdefghijklmnopqrstuvwxyz0123").is_err());
}

/// Pearson's chi-square over the character counts of 100,000 keys per kind:
/// the statistic must stay under the 0.9999 quantile of its distribution, so
/// the test fails on a real bias (a modulo bias, a stuck character) and almost
/// never by chance.
#[test]
fn characters_are_uniform_chi_square() {
    // 0.9999 quantiles of chi-square for k - 1 degrees of freedom.
    fn critical(dof: usize) -> f64 {
        match dof {
            15 => 44.3,
            35 => 72.1,
            63 => 112.3,
            _ => unreachable!(),
        }
    }
    for kind in KeyKind::ALL {
        let a = alphabet(kind);
        let mut counts = vec![0u64; 256];
        let n_keys = 100_000;
        for _ in 0..n_keys {
            let s = kind.generate().unwrap();
            for &b in &s.expose().as_bytes()[kind.prefix().len()..] {
                counts[b as usize] += 1;
            }
        }
        let total: u64 = a.iter().map(|&c| counts[c as usize]).sum();
        assert_eq!(
            total as usize,
            n_keys * (kind.key_len() - kind.prefix().len())
        );
        let expected = total as f64 / a.len() as f64;
        let chi2: f64 = a
            .iter()
            .map(|&c| {
                let d = counts[c as usize] as f64 - expected;
                d * d / expected
            })
            .sum();
        assert!(
            chi2 < critical(a.len() - 1),
            "{kind}: chi-square {chi2:.1} over {} symbols",
            a.len()
        );
    }
}

/// The same test must catch a biased generator: a fake one that maps 256
/// byte values onto 36 symbols with `% 36` (the classic modulo bias) fails it.
#[test]
fn chi_square_catches_a_modulo_bias() {
    let a = alphabet(KeyKind::Routing);
    let mut counts = [0u64; 36];
    // Simulate 100,000 keys x 30 chars of a biased mapping of uniform bytes.
    let mut x: u32 = 12345;
    for _ in 0..3_000_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        counts[((x & 0xff) % 36) as usize] += 1;
    }
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / a.len() as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(
        chi2 > 72.1,
        "a modulo-biased generator must fail (chi2 = {chi2:.1})"
    );
}
