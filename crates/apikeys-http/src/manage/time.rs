//! Times in the management API: RFC 3339 out ([`apikeys::Timestamp::to_rfc3339`])
//! and in (`2026-12-02T01:02:03Z`, fractions of a second and `±hh:mm`
//! offsets allowed), as PagerDuty's `since` and `until` are written.

use apikeys::Timestamp;

/// Parse an RFC 3339 date-time; `None` for anything else (or before 1970).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 || !s.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0u64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        ms = frac.parse::<u64>().ok()? * 10u64.pow(3 - frac.len() as u32);
    }
    let offset_min: i64 = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = num(i + 1..i + 3)? as i64;
            let om = num(i + 4..i + 6)? as i64;
            let _ = (h1, h2, m1, m2);
            if oh > 23 || om > 59 {
                return None;
            }
            let v = oh * 60 + om;
            if *sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec.min(59)) as i64 - offset_min * 60;
    if secs < 0 {
        return None;
    }
    Some(Timestamp::from_unix_millis(secs as u64 * 1000 + ms))
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_refuses_the_rest() {
        for ms in [
            1_000u64,
            1_764_633_723_456,
            951_782_400_000,
            4_102_444_799_999,
        ] {
            let t = Timestamp::from_unix_millis(ms);
            assert_eq!(
                parse_rfc3339(&t.to_rfc3339()),
                Some(t),
                "{}",
                t.to_rfc3339()
            );
        }
        assert_eq!(
            parse_rfc3339("2026-12-02T02:00:00+01:00"),
            parse_rfc3339("2026-12-02T01:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2026-12-02T01:00:00.5Z").map(Timestamp::unix_millis),
            parse_rfc3339("2026-12-02T01:00:00Z").map(|t| t.unix_millis() + 500)
        );
        for bad in [
            "",
            "2026-12-02",
            "2026-12-02T01:00:00",
            "2026-13-02T01:00:00Z",
            "2026-02-30T01:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T01:00:00.Z",
            "2026-12-02T01:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "２026-12-02T01:00:00Z",
            "yesterday at noon please",
            "2026-12-02T01:00:00Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
