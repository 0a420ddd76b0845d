//! Periods and occurrences of a `Schedule` object, in the subset dp-local supports.
//!
//! A period is `N minutes|hours|days|weeks|months|years` (singular forms too); months and years move the calendar
//! date and clamp the day to the month's length. Pure functions of their inputs; nothing here reads a clock.

use dp_model::timestamp::{days_from_civil, format_utc};

/// A schedule period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A fixed number of seconds (minutes, hours, days, weeks).
    Seconds(i64),
    /// A number of calendar months (months, years).
    Months(i64),
}

/// The earliest time handled, 0001-01-01T00:00:00.
pub const MIN_TIME: i64 = -62_135_596_800;
/// The latest time handled, 9999-12-31T23:59:59.
pub const MAX_TIME: i64 = 253_402_300_799;

impl Period {
    /// Parses `15 minutes`, `1 day`, `2 Weeks`, `1 month`.
    pub fn parse(s: &str) -> Option<Period> {
        let mut parts = s.split_whitespace();
        let n: i64 = parts.next()?.parse().ok().filter(|n| *n > 0)?;
        let unit = parts.next()?.to_ascii_lowercase();
        if parts.next().is_some() {
            return None;
        }
        let unit = unit.strip_suffix('s').unwrap_or(&unit);
        let (factor, months) = match unit {
            "minute" => (60, false),
            "hour" => (3600, false),
            "day" => (86_400, false),
            "week" => (7 * 86_400, false),
            "month" => (1, true),
            "year" => (12, true),
            _ => return None,
        };
        let n = n.checked_mul(factor)?;
        Some(if months {
            Period::Months(n)
        } else {
            Period::Seconds(n)
        })
    }

    /// The shortest length of the period, in seconds (months count as 28 days).
    pub fn min_seconds(self) -> i64 {
        match self {
            Period::Seconds(s) => s,
            Period::Months(m) => m.saturating_mul(28 * 86_400),
        }
    }

    /// `t` moved by `k` periods; `None` outside the years 0001 to 9999.
    pub fn advance(self, t: i64, k: i64) -> Option<i64> {
        if !(MIN_TIME..=MAX_TIME).contains(&t) {
            return None;
        }
        let moved = match self {
            Period::Seconds(s) => s.checked_mul(k).and_then(|d| t.checked_add(d))?,
            Period::Months(m) => {
                let months = m.checked_mul(k).filter(|m| m.abs() <= 12 * 10_000)?;
                add_months(t, months)
            }
        };
        (MIN_TIME..=MAX_TIME).contains(&moved).then_some(moved)
    }
}

fn add_months(t: i64, months: i64) -> i64 {
    let text = format_utc(t);
    let (y, m, d): (i64, i64, i64) = (
        text[0..4].parse().unwrap_or(1970),
        text[5..7].parse().unwrap_or(1),
        text[8..10].parse().unwrap_or(1),
    );
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let last = match nm {
        2 if (ny % 4 == 0 && ny % 100 != 0) || ny % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    days_from_civil(ny, nm, d.min(last)) * 86_400 + t.rem_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<Period>) {
        assert_eq!(Period::parse(input), expected, "Period::parse({input:?})");
    }

    #[test]
    fn periods() {
        check("15 minutes", Some(Period::Seconds(900)));
        check("1 day", Some(Period::Seconds(86_400)));
        check("2 Weeks", Some(Period::Seconds(14 * 86_400)));
        check("1 month", Some(Period::Months(1)));
        check("1 year", Some(Period::Months(12)));
        check("0 days", None);
        check("day", None);
        check("1 fortnight", None);
        check("999999999999999999 minutes", None);
        assert_eq!(
            Period::Seconds(86_400).advance(MAX_TIME, 1),
            None,
            "past year 9999"
        );
        assert_eq!(Period::Months(1).advance(0, i64::MAX), None, "overflow");
    }

    #[test]
    fn months_clamp() {
        let jan31 = dp_model::timestamp::parse("2024-01-31T10:00:00").unwrap();
        assert_eq!(
            format_utc(Period::Months(1).advance(jan31, 1).unwrap()),
            "2024-02-29T10:00:00"
        );
        assert_eq!(
            format_utc(Period::Months(1).advance(jan31, 12).unwrap()),
            "2025-01-31T10:00:00"
        );
    }
}
