//! The `_mta-sts` TXT record (RFC 8461 §3.1) and the policy file (§3.2), and MX pattern
//! matching (§4.1).

use crate::checks::tags::{parse_tags, tag};
use serde::Serialize;

/// A parsed `_mta-sts` TXT record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StsRecord {
    /// `id=`: changes whenever the policy changes (1–32 alphanumerics).
    pub id: String,
}

/// Why a record or a policy is invalid; quotes the bad part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{0}")]
pub struct StsSyntaxError(pub String);

/// True when a TXT record is meant as MTA-STS (`v=STSv1` first, any case).
pub fn is_sts(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    first
        .split_once('=')
        .is_some_and(|(n, v)| n.trim() == "v" && v.trim().eq_ignore_ascii_case("STSv1"))
}

impl StsRecord {
    /// Parses the TXT record.
    pub fn parse(text: &str) -> Result<StsRecord, StsSyntaxError> {
        let err = |m: String| StsSyntaxError(m);
        let tags = parse_tags(text).map_err(|e| err(e.to_string()))?;
        if tags
            .first()
            .is_none_or(|t| t.name != "v" || t.value != "STSv1")
        {
            return Err(err(format!("{text:?} does not start with v=STSv1")));
        }
        let id = tag(&tags, "id").ok_or_else(|| err("missing id=".to_owned()))?;
        let valid = (1..=32).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(err(format!(
                "id={id:?}: expected 1 to 32 letters or digits"
            )));
        }
        Ok(StsRecord { id: id.to_owned() })
    }
}

/// A policy's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StsMode {
    /// Senders refuse to deliver to MX hosts that do not match or lack valid TLS.
    Enforce,
    /// Senders deliver anyway and report.
    Testing,
    /// The policy is withdrawn.
    None,
}

impl StsMode {
    /// The value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            StsMode::Enforce => "enforce",
            StsMode::Testing => "testing",
            StsMode::None => "none",
        }
    }
}

/// A parsed policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StsPolicy {
    /// `mode:`.
    pub mode: StsMode,
    /// `mx:` patterns, lower case, in file order.
    pub mx: Vec<String>,
    /// `max_age:` in seconds.
    pub max_age: u64,
}

/// Largest `max_age` (one year, §3.2).
const MAX_AGE_LIMIT: u64 = 31_557_600;

impl StsPolicy {
    /// Parses the policy file: `key: value` lines, LF or CRLF.
    pub fn parse(text: &str) -> Result<StsPolicy, StsSyntaxError> {
        let err = |m: String| StsSyntaxError(m);
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some((key, value)) = line.split_once(':') else {
                return Err(err(format!("line {line:?} is not key: value")));
            };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_owned()),
                "mode" => {
                    mode = Some(match value {
                        "enforce" => StsMode::Enforce,
                        "testing" => StsMode::Testing,
                        "none" => StsMode::None,
                        other => {
                            return Err(err(format!(
                                "mode: {other:?}: expected enforce, testing or none"
                            )));
                        }
                    })
                }
                "max_age" => match value.parse::<u64>() {
                    Ok(age) if age <= MAX_AGE_LIMIT => max_age = Some(age),
                    _ => {
                        return Err(err(format!(
                            "max_age: {value:?}: expected 0 to {MAX_AGE_LIMIT} seconds"
                        )));
                    }
                },
                "mx" => mx.push(value.to_ascii_lowercase().trim_end_matches('.').to_owned()),
                _ => {} // Unknown keys are ignored (§3.2).
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err(err(format!(
                "version: {:?}: expected STSv1",
                version.unwrap_or_default()
            )));
        }
        let mode = mode.ok_or_else(|| err("missing mode:".to_owned()))?;
        let max_age = max_age.ok_or_else(|| err("missing max_age:".to_owned()))?;
        if mx.is_empty() && mode != StsMode::None {
            return Err(err("no mx: line".to_owned()));
        }
        Ok(StsPolicy { mode, mx, max_age })
    }

    /// The first pattern `host` matches, if any.
    pub fn matching_pattern(&self, host: &str) -> Option<&str> {
        let host = host.to_ascii_lowercase();
        self.mx
            .iter()
            .find(|pattern| mx_matches(pattern, &host))
            .map(String::as_str)
    }
}

/// §4.1: an exact name, or `*.` followed by a name matching exactly one more label.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(
            StsRecord::parse("v=STSv1; id=20240101T000000;").unwrap().id,
            "20240101T000000"
        );
        assert!(StsRecord::parse("v=STSv1; id=has-dash").is_err());
        assert!(StsRecord::parse("v=STSv1;").is_err());
        assert!(is_sts("v=STSv1; id=1") && !is_sts("v=spf1 -all"));
    }

    #[test]
    fn policies_and_patterns() {
        let text = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.net\r\nmx: *.Backup.Example.net\r\nmax_age: 604800\r\n";
        let policy = StsPolicy::parse(text).unwrap();
        assert_eq!(policy.mode, StsMode::Enforce);
        assert_eq!(policy.max_age, 604800);
        assert_eq!(
            policy.matching_pattern("MX1.example.net"),
            Some("mx1.example.net")
        );
        assert_eq!(
            policy.matching_pattern("a.backup.example.net"),
            Some("*.backup.example.net")
        );
        assert_eq!(policy.matching_pattern("a.b.backup.example.net"), None);
        assert_eq!(policy.matching_pattern("backup.example.net"), None);
        let err = StsPolicy::parse("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1")
            .unwrap_err();
        assert!(err.0.contains("\"strict\""), "{err}");
        assert!(StsPolicy::parse("version: STSv1\nmode: enforce\nmax_age: 1").is_err());
        assert!(StsPolicy::parse("mode: none\nmax_age: 1").is_err());
        assert!(StsPolicy::parse("version: STSv1\nmode: none\nmax_age: 1").is_ok());
    }
}
