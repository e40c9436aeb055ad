//! Alertmanager API v2 client: `POST /api/v2/alerts` with a JSON array of alerts. Firing
//! alerts are re-sent every `resend_interval` with `endsAt` = now + 4 × resend (as Prometheus
//! does), so Alertmanager resolves them by itself if maildrift stops; a resolved alert is
//! sent once with `endsAt` = its resolution time.

use super::delivery::{Deliver, Payload};
use super::lifecycle::FiringAlert;
use super::transport::{Auth, DeliveryError, send};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One alert as Alertmanager's API v2 takes it (`postableAlert`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PostableAlert {
    /// Identity of the alert.
    pub labels: BTreeMap<String, String>,
    /// Human text.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// RFC 3339: a future time while firing, the resolution time once resolved.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    /// Link back to the domain's page.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl PostableAlert {
    /// `alert` with the given end time.
    pub fn new(alert: &FiringAlert, ends_at: SystemTime) -> PostableAlert {
        PostableAlert {
            labels: alert.content.labels.clone(),
            annotations: alert.content.annotations.clone(),
            starts_at: rfc3339(alert.starts_at),
            ends_at: rfc3339(ends_at),
            generator_url: alert.content.generator_url.clone(),
        }
    }
}

/// One Alertmanager (of a cluster: each gets every alert).
pub struct AlertmanagerTarget {
    /// The `/api/v2/alerts` URL.
    endpoint: String,
    client: reqwest::Client,
    auth: Auth,
}

impl AlertmanagerTarget {
    /// A target for the Alertmanager at `base_url` (`http://host:9093`, maybe with a path
    /// prefix).
    pub fn new(base_url: &str, client: reqwest::Client, auth: Auth) -> AlertmanagerTarget {
        AlertmanagerTarget {
            endpoint: format!("{}/api/v2/alerts", base_url.trim_end_matches('/')),
            client,
            auth,
        }
    }
}

#[async_trait]
impl Deliver for AlertmanagerTarget {
    async fn deliver(&self, payload: &Payload) -> Result<(), DeliveryError> {
        let Payload::Alerts(alerts) = payload else {
            return Err(DeliveryError::Permanent(
                "an Alertmanager takes alerts, not webhook notices".into(),
            ));
        };
        let request = self
            .auth
            .apply(self.client.post(&self.endpoint).json(alerts));
        send(request).await.map(drop)
    }
}

/// `2024-05-01T12:00:00.123Z` (UTC, milliseconds).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        let at = |secs: u64, millis: u64| {
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
        };
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1700000000` → Tue Nov 14 22:13:20 UTC 2023.
        assert_eq!(rfc3339(at(1_700_000_000, 5)), "2023-11-14T22:13:20.005Z");
        // A leap day: `date -u -d @1709210096` → Thu Feb 29 12:34:56 UTC 2024.
        assert_eq!(rfc3339(at(1_709_210_096, 999)), "2024-02-29T12:34:56.999Z");
        assert_eq!(rfc3339(at(951_782_400, 0)), "2000-02-29T00:00:00.000Z");
    }
}
