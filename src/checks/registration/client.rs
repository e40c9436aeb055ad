//! HTTPS requests to RDAP servers (RFC 7480): the Mozilla roots plus `defaults.rdap.ca_file`,
//! a deadline per request, a bound on the answer's size, and the answers that are not a
//! record sorted out (404, 429 with `Retry-After`, other statuses, unreachable).

use crate::config::{RdapSettings, read_ca_file};
use std::time::{Duration, SystemTime};

/// Largest answer read (an RDAP domain object is a few KiB; a bootstrap file ~100 KiB).
pub(super) const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why an RDAP request gave no record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RdapError {
    /// No connection, TLS failure, or no complete answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The server has no such object (RFC 7480 §5.3).
    #[error("{url}: not found (HTTP 404): the registry's RDAP server has no record of it")]
    NotFound {
        /// The URL asked.
        url: String,
    },
    /// HTTP 429 (RFC 7480 §5.5): asked too often.
    #[error("{url}: rate limited (HTTP 429){}", retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The URL asked.
        url: String,
        /// What `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// Any other status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// An answer that is not what RDAP promises.
    #[error("{0}")]
    Malformed(String),
}

/// An HTTP client for RDAP servers and the bootstrap URL.
#[derive(Clone, Debug)]
pub struct RdapClient {
    client: reqwest::Client,
    timeout: Duration,
}

impl RdapClient {
    /// A client trusting the Mozilla roots and `settings.ca_file`.
    pub fn new(settings: &RdapSettings) -> Result<RdapClient, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("maildrift/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5));
        if let Some(path) = &settings.ca_file {
            for der in read_ca_file(path)? {
                let cert = reqwest::Certificate::from_der(&der)
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the RDAP client: {e}"))?;
        Ok(RdapClient {
            client,
            timeout: settings.timeout,
        })
    }

    /// The body of a 200 answer to `GET url`.
    pub async fn get_text(&self, url: &str) -> Result<String, RdapError> {
        let unreachable = |e: reqwest::Error| {
            let what = if e.is_timeout() {
                format!("no complete answer within {} s", self.timeout.as_secs_f64())
            } else if e.is_connect() {
                format!("cannot connect: {}", root_cause(&e))
            } else {
                root_cause(&e)
            };
            RdapError::Unreachable(format!("{url}: {what}"))
        };
        let mut response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/rdap+json, application/json",
            )
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        match status.as_u16() {
            200 => {}
            404 => {
                return Err(RdapError::NotFound {
                    url: url.to_owned(),
                });
            }
            429 => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, SystemTime::now()));
                return Err(RdapError::RateLimited {
                    url: url.to_owned(),
                    retry_after,
                });
            }
            status => {
                return Err(RdapError::Status {
                    url: url.to_owned(),
                    status,
                });
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(RdapError::Malformed(format!(
                    "{url}: answer larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
        }
        String::from_utf8(body)
            .map_err(|_| RdapError::Malformed(format!("{url}: answer is not UTF-8")))
    }
}

/// The innermost error message (hyper and rustls wrap theirs).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `Retry-After` (RFC 9110 §10.2.3): delay seconds, or an HTTP date (IMF-fixdate), as a
/// delay from `now`.
pub(super) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(text: &str) -> Option<SystemTime> {
    let rest = text.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let mut clock = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (clock.next()??, clock.next()??, clock.next()??);
    let seconds =
        super::rfc3339::unix_seconds(year.parse().ok()?, month, day.parse().ok()?, h, m, s)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_717);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:48:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now), None);
    }
}
