//! The dates RDAP writes (RFC 9083 §4.5: RFC 3339 date-times such as
//! `2026-03-01T12:00:00Z` or `2026-03-01T20:00:00.5+08:00`), to and from unix seconds.

/// Days in `month` (1–12) of `year`.
fn month_days(year: i64, month: u32) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days in `year`.
fn year_days(year: i64) -> i64 {
    365 + i64::from(month_days(year, 2) == 29)
}

/// Unix seconds of a UTC civil date and time from 1970 on; `None` when out of range.
pub(super) fn unix_seconds(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if day == 0 || i64::from(day) > month_days(year, month) {
        return None;
    }
    let days: i64 = (1970..year).map(year_days).sum::<i64>()
        + (1..month).map(|mo| month_days(year, mo)).sum::<i64>()
        + i64::from(day)
        - 1;
    Some(days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s))
}

/// Parses an RFC 3339 date-time into unix seconds (fractions dropped).
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.split('-');
    let year = date.next()?.parse().ok()?;
    let month = date.next()?.parse().ok()?;
    let day = date.next()?.parse().ok()?;
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return None,
    };
    let clock = clock.split('.').next()?;
    let mut clock = clock.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    let offset = match offset {
        "Z" | "z" => 0,
        signed => {
            let sign = if signed.starts_with('-') { -1 } else { 1 };
            let (oh, om) = signed[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    Some(unix_seconds(year, month, day, h, m, s)? - offset)
}

/// `2026-03-01T12:00:00Z` of unix seconds (from 1970 on).
pub fn format(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (mut days, rest) = (seconds / 86_400, seconds % 86_400);
    let mut year = 1970;
    while days >= year_days(year) {
        days -= year_days(year);
        year += 1;
    }
    let mut month = 1;
    while days >= month_days(year, month) {
        days -= month_days(year, month);
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
        days + 1,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_offsets_apply() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13:20.123Z"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-15T06:13:20+08:00"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T17:13:20-05:00"), Some(1_700_000_000));
        assert_eq!(parse("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(format(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(4_102_444_799), "2099-12-31T23:59:59Z");
        for bad in [
            "",
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "yesterday",
            "2023-11-14T22:13Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
