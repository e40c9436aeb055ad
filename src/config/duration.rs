//! Durations as written in the config: `500ms`, `30s`, `5m`, `1h`, `1d`, or a sum such as
//! `1h30m` (the Prometheus style).

use std::time::Duration;

/// Parses a duration; the error quotes the text and says what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a number with a unit (ms, s, m, h, d), e.g. \"30s\" or \"5m\"";
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() {
        return Err(format!("empty duration: {expected}"));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("duration {text:?} has no unit: {expected}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let units = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || units == 0 {
            return Err(format!("invalid duration {text:?}: {expected}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {text:?} is too large"))?;
        let unit_ms: u64 = match &rest[digits..digits + units] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?}; {expected}"
                ));
            }
        };
        let ms = number
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        rest = &rest[digits + units..];
    }
    Ok(total)
}

/// Formats a duration the way the config writes it (`1h30m`, `500ms`, `0s`).
pub(crate) fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sums() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("1d", Duration::from_secs(86_400)),
            ("1h30m", Duration::from_secs(5400)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_bad_durations_quoting_them() {
        for (text, needle) in [
            ("300", "\"300\" has no unit"),
            ("5 minutes", "invalid duration \"5 minutes\""),
            ("5x", "unknown unit \"x\""),
            ("-5s", "invalid duration \"-5s\""),
            ("1.5h", "invalid duration \"1.5h\""),
            ("", "empty duration"),
            ("99999999999999999999d", "too large"),
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "30s", "5m", "1h30m", "1d", "0s", "1m1s"] {
            let parsed = parse_duration(text).expect(text);
            assert_eq!(format_duration(parsed), text);
        }
    }
}
