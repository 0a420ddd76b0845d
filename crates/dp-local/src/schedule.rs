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
        Some(match unit {
            "minute" => Period::Seconds(n * 60),
            "hour" => Period::Seconds(n * 3600),
            "day" => Period::Seconds(n * 86_400),
            "week" => Period::Seconds(n * 7 * 86_400),
            "month" => Period::Months(n),
            "year" => Period::Months(n * 12),
            _ => return None,
        })
    }

    /// The shortest length of the period, in seconds (months count as 28 days).
    pub fn min_seconds(self) -> i64 {
        match self {
            Period::Seconds(s) => s,
            Period::Months(m) => m * 28 * 86_400,
        }
    }

    /// `t` moved forward by `k` periods.
    pub fn advance(self, t: i64, k: i64) -> i64 {
        match self {
            Period::Seconds(s) => t + s * k,
            Period::Months(m) => add_months(t, m * k),
        }
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
    }

    #[test]
    fn months_clamp() {
        let jan31 = dp_model::timestamp::parse("2024-01-31T10:00:00").unwrap();
        assert_eq!(
            format_utc(Period::Months(1).advance(jan31, 1)),
            "2024-02-29T10:00:00"
        );
        assert_eq!(
            format_utc(Period::Months(1).advance(jan31, 12)),
            "2025-01-31T10:00:00"
        );
    }
}
