//! Times as people read and write them on the pages, in the exports and in notes: UTC
//! dates, short ages, and the first-response time of a note (unix seconds or a date with an
//! optional UTC offset, as an admin in Beijing would type it).

use crate::alert::alertmanager::civil_from_days;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DD HH:MM:SS` UTC of unix seconds.
pub(crate) fn utc(seconds: f64) -> String {
    let secs = seconds.max(0.0) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A short age: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub(crate) fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses unix seconds, or `YYYY-MM-DD[T| ]HH:MM[:SS[.frac]]` with an optional `Z` or
/// `±HH:MM` offset (UTC without one). The error quotes the text.
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    let bad = || {
        format!(
            "{text:?} is not a time: use unix seconds or 2024-05-01 10:30 +08:00 (UTC without an offset)"
        )
    };
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() && seconds >= 0.0 {
            Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds))
        } else {
            Err(bad())
        };
    }
    if text.len() < 16 || !text.is_ascii() {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(bad)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let separators_ok = text.as_bytes()[4] == b'-'
        && text.as_bytes()[7] == b'-'
        && matches!(text.as_bytes()[10], b'T' | b't' | b' ')
        && text.as_bytes()[13] == b':';
    if !separators_ok {
        return Err(bad());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute) = (number(11..13)?, number(14..16)?);
    let mut rest = &text[16..];
    let mut second = 0.0;
    if let Some(after) = rest.strip_prefix(':') {
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        second = after[..end].parse::<f64>().map_err(|_| bad())?;
        rest = &after[end..];
    }
    let rest = rest.trim();
    let offset_minutes = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad()),
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let hours: i64 = digits[..2].parse().map_err(|_| bad())?;
            let minutes: i64 = digits[2..].parse().map_err(|_| bad())?;
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            sign * (hours * 60 + minutes)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second >= 61.0 {
        return Err(bad());
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60
        - offset_minutes * 60;
    let seconds = seconds as f64 + second;
    if seconds < 0.0 {
        return Err(bad());
    }
    Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(text: &str) -> f64 {
        parse_time(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    #[test]
    fn dates_and_ages() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000.0), "2023-11-14 22:13:20");
        assert_eq!(age(59.0), "59s");
        assert_eq!(age(3_725.0), "1h 2m");
        assert_eq!(age(2.0 * 86_400.0 + 7_200.0), "2d 2h");
    }

    #[test]
    fn times_as_admins_write_them() {
        assert_eq!(unix("1700000000"), 1_700_000_000.0);
        assert_eq!(unix("2023-11-14T22:13:20Z"), 1_700_000_000.0);
        assert_eq!(unix("2023-11-14 22:13:20"), 1_700_000_000.0);
        assert_eq!(unix("2023-11-15 06:13:20 +08:00"), 1_700_000_000.0);
        assert_eq!(unix("2023-11-15T06:13:20+0800"), 1_700_000_000.0);
        assert_eq!(unix("2023-11-14T17:13:20.5-05:00"), 1_700_000_000.5);
        assert_eq!(unix("2023-11-14 22:13"), 1_699_999_980.0);
        assert_eq!(unix("2000-02-29 00:00"), 951_782_400.0);
        for bad in [
            "",
            "yesterday",
            "-5",
            "2023-02-29 00:00",
            "2023-11-14 24:00",
            "2023-11-14 22:13 CET",
            "2023-11-14 22:13 +8",
            "２０２３-11-14 22:13",
            "1969-12-31 23:00",
        ] {
            let error = parse_time(bad).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
        // Round trip through the civil-date functions over four centuries of days.
        for days in (-146_097..146_097).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(
                days_from_civil(y, i64::from(m), i64::from(d)),
                days,
                "{y}-{m}-{d}"
            );
        }
    }
}
