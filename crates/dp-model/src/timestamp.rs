//! Timestamps as the CLI accepts them: ISO 8601 (naive times are UTC) or epoch seconds.
//!
//! Pure functions only; no clock is read here.

/// Parses `s` into whole epoch seconds (fractions truncated toward zero), or `None` if it is not a timestamp.
///
/// Accepted: `1704067200`, `1704067200.5`, `2024-01-01`, `2024-01-01T00:00:00`, `2024-01-01 00:00:00`, with
/// optional fractional seconds and an optional zone `Z`, `±HH:MM`, `±HHMM` or `±HH`.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>()
        && n.is_finite()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
    {
        return Some(n.trunc() as i64);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(secs);
    }
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))?;
    let rb = rest.as_bytes();
    if rb.len() < 5 || rb[2] != b':' {
        return None;
    }
    let two = |i: usize| -> Option<i64> {
        let p = rest.get(i..i + 2)?;
        if p.bytes().all(|c| c.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let (hour, minute) = (two(0)?, two(3)?);
    let mut i = 5;
    let mut second = 0;
    if rb.get(i) == Some(&b':') {
        second = two(i + 1)?;
        i += 3;
    }
    if rb.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while rb.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    secs += hour * 3600 + minute * 60 + second;
    let zone = &rest[i..];
    let offset = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = &zone[1..];
            let (h, m) = match z.len() {
                2 => (z.parse::<i64>().ok()?, 0),
                4 => (z[..2].parse().ok()?, z[2..].parse().ok()?),
                5 if &z[2..3] == ":" => (z[..2].parse().ok()?, z[3..].parse().ok()?),
                _ => return None,
            };
            sign * (h * 3600 + m * 60)
        }
    };
    Some(secs - offset)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch seconds as `YYYY-MM-DDTHH:MM:SS` (UTC), the form Data Pipeline uses in its fields.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<i64>) {
        assert_eq!(parse(input), expected, "parse({input:?})");
    }

    #[test]
    fn parses() {
        check("1704067200", Some(1_704_067_200));
        check("1704067200.5", Some(1_704_067_200));
        check("2024-01-01", Some(1_704_067_200));
        check("2024-01-01T00:00:00Z", Some(1_704_067_200));
        check("2024-01-01T00:00:00", Some(1_704_067_200));
        check("2024-01-01 00:00:00+02:00", Some(1_704_060_000));
        check("2024-01-01T01:30:00.250-0100", Some(1_704_076_200));
        check("2024-02-30", None);
        check("notadate", None);
        check("", None);
    }

    #[test]
    fn formats() {
        assert_eq!(format_utc(1_704_067_200), "2024-01-01T00:00:00");
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00");
    }
}
