//! Durations (`15m`, `7d`, `1h30m`) and points in time (RFC 3339 in UTC),
//! read and written without a date library.

use std::time::Duration;

use apikeys::Timestamp;

const UNITS: [(&str, u64); 5] = [
    ("w", 7 * 86_400),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
];

/// A duration: one or more `<number><unit>` with the units `w`, `d`, `h`,
/// `m`, `s` (weeks to seconds), each at most once and from the largest down:
/// `90s`, `15m`, `1h30m`, `7d`, `2w3d`. `0s` is zero.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    const HOW: &str = "a duration is a number and a unit, e.g. 15m, 7d or 1h30m (units: w d h m s)";
    if s.is_empty() {
        return Err(format!("empty duration: {HOW}"));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    // The index in UNITS of the last unit seen: each must be smaller than it.
    let mut last_unit: Option<usize> = None;
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return Err(format!("'{}' is not a duration: {HOW}", shown(s)));
        }
        let number: u64 = s[digits_start..i]
            .parse()
            .map_err(|_| format!("'{}' is too long a duration", shown(s)))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let Some(ix) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("'{}' needs a unit: {HOW}", shown(s))
            } else {
                format!("'{}' has an unknown unit: {HOW}", shown(s))
            });
        };
        if last_unit.is_some_and(|l| ix <= l) {
            return Err(format!(
                "'{}': give each unit once, largest first (e.g. 1h30m)",
                shown(s)
            ));
        }
        last_unit = Some(ix);
        total = number
            .checked_mul(UNITS[ix].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("'{}' is too long a duration", shown(s)))?;
    }
    Ok(Duration::from_secs(total))
}

/// A duration as `parse_duration` reads it (`1h30m`, `7d`, `0s`).
pub(crate) fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Input is echoed in messages only when short and printable; anything else
/// (which might be a pasted key) is not.
fn shown(s: &str) -> &str {
    if s.len() <= 16
        && s.chars().all(|c| c.is_ascii_graphic())
        && apikeys::KeyKind::parse(s).is_err()
    {
        s
    } else {
        "(input)"
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar.
fn days_from_date(year: i64, month: u32, day: u32) -> i64 {
    // Count from 1 March of year 0, so that the leap day ends a year.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let cycle = y.div_euclid(400); // 400-year cycles of 146,097 days
    let year_in_cycle = y - cycle * 400;
    let day_in_year = (153 * i64::from(m) + 2) / 5 + i64::from(day) - 1;
    let day_in_cycle = year_in_cycle * 365 + year_in_cycle / 4 - year_in_cycle / 100 + day_in_year;
    cycle * 146_097 + day_in_cycle - 719_468
}

/// The date (year, month, day) `days` after 1970-01-01.
fn date_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let cycle = z.div_euclid(146_097);
    let day_in_cycle = z - cycle * 146_097;
    let year_in_cycle = (day_in_cycle - day_in_cycle / 1_460 + day_in_cycle / 36_524
        - day_in_cycle / 146_096)
        / 365;
    let day_in_year =
        day_in_cycle - (365 * year_in_cycle + year_in_cycle / 4 - year_in_cycle / 100);
    let m = (5 * day_in_year + 2) / 153; // 0 = March
    let day = (day_in_year - (153 * m + 2) / 5 + 1) as u32;
    let month = if m < 10 { m + 3 } else { m - 9 } as u32;
    let year = year_in_cycle + cycle * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-12-02T01:02:03.456Z`.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    let ms = t.unix_millis();
    let secs = ms / 1000;
    let (y, mo, d) = date_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// For tables: `2026-12-02 01:02` (UTC, to the minute).
pub(crate) fn short(t: Timestamp) -> String {
    let full = rfc3339(t);
    format!("{} {}", &full[..10], &full[11..16])
}

/// A point in time given on the command line: `now`, a duration ago (`2h`,
/// `7d`), a date (`2026-12-01`, midnight UTC) or an RFC 3339 time in UTC
/// (`2026-12-01T13:45:00Z`, seconds and fraction optional, `Z` or `+00:00`).
pub(crate) fn parse_when(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    if s == "now" {
        return Ok(now);
    }
    if s.as_bytes().first().is_some_and(u8::is_ascii_digit) && !s.contains('-') {
        let d = parse_duration(s)?;
        let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
        return Ok(Timestamp::from_unix_millis(
            now.unix_millis().saturating_sub(ms),
        ));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!(
            "'{}' is not a time: give now, a duration ago (2h, 7d), a date (2026-12-01) or \
             a UTC time (2026-12-01T13:45:00Z)",
            shown(s)
        )
    })
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, mo, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || mo.len() != 2 || d.len() != 2 {
        return None;
    }
    let (year, month, day) = (i64::from(number(y)?), number(mo)?, number(d)?);
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = 0u64;
    if let Some(time) = time {
        let time = time
            .strip_suffix(['Z', 'z'])
            .or_else(|| time.strip_suffix("+00:00"))?;
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut f = hms.split(':');
        let h = number(f.next()?)?;
        let mi = number(f.next()?)?;
        let sec = match f.next() {
            Some(x) => number(x)?,
            None => 0,
        };
        if f.next().is_some() || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        ms = u64::from(h * 3600 + mi * 60 + sec) * 1000;
        if let Some(frac) = frac {
            if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            ms += u64::from(number(&digits)?);
        }
    }
    let days = days_from_date(year, month, day);
    let total = u64::try_from(days)
        .ok()?
        .checked_mul(86_400_000)?
        .checked_add(ms)?;
    Some(Timestamp::from_unix_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        for (s, secs) in [
            ("0s", 0),
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("7d", 604_800),
            ("2w3d", 17 * 86_400),
            ("1d2h3m4s", 93_784),
            ("36h", 129_600),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
        }
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        for s in [
            "",
            "15",
            "m",
            "15x",
            "1.5h",
            "-5m",
            "30m1h",
            "1h1h",
            " 1h",
            "1h ",
            "1H",
            "99999999999999999999w",
            "9999999999999999w",
        ] {
            let e = parse_duration(s).expect_err(s);
            assert!(!e.is_empty(), "{s}");
        }
        // A key pasted where a duration goes is not echoed.
        let e = parse_duration("y_NbAkKc66ryYTWUXYEu").unwrap_err();
        assert!(!e.contains("y_NbAkKc66ryYTWUXYEu"), "{e}");
    }

    #[test]
    fn durations_format_back() {
        for s in ["0s", "90s", "15m", "1h30m", "7d", "2w3d", "1d2h3m4s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn dates_round_trip_across_centuries_and_leap_days() {
        for days in [
            -1, 0, 1, 59, 60, 365, 10_957, 11_016, 19_000, 20_789, 2_932_896,
        ] {
            let (y, m, d) = date_from_days(days);
            assert_eq!(days_from_date(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(date_from_days(0), (1970, 1, 1));
        assert_eq!(date_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_date(2026, 12, 2), 20_789);
    }

    #[test]
    fn times_format_and_parse() {
        let t = Timestamp::from_unix_millis(1_796_173_323_456);
        assert_eq!(rfc3339(t), "2026-12-02T01:02:03.456Z");
        assert_eq!(short(t), "2026-12-02 01:02");
        assert_eq!(parse_rfc3339("2026-12-02T01:02:03.456Z"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-12-02"),
            Some(Timestamp::from_unix_millis(20_789 * 86_400_000))
        );
        assert_eq!(
            parse_rfc3339("2026-12-02 01:02Z").map(Timestamp::unix_millis),
            Some(1_796_173_320_000)
        );
        assert!(parse_rfc3339("2026-12-02T01:02:03+00:00").is_some());
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-12-02T24:00Z",
            "2026-12-02T01:02",
            "2026-12-02T01:02:03+02:00",
            "26-12-02",
            "2026-1-2",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn when_is_now_a_duration_ago_or_a_time() {
        let now = Timestamp::from_unix_millis(1_796_173_323_456);
        assert_eq!(parse_when("now", now), Ok(now));
        assert_eq!(
            parse_when("2h", now).map(Timestamp::unix_millis),
            Ok(now.unix_millis() - 7_200_000)
        );
        assert!(parse_when("2026-12-01", now).is_ok());
        assert!(parse_when("soon", now).is_err());
    }
}
