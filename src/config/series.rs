//! `metrics:`: how much `/metrics` shows per domain.

use serde::Deserialize;

/// `metrics:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ detail: true }`"
)]
pub(crate) struct RawMetrics {
    /// Also the zero-valued and per-record series.
    pub(crate) detail: Option<bool>,
}

/// `metrics:` validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// With `true`, `/metrics` also shows what the default leaves out to stay within 25
    /// series per domain: drift and findings while they are 0, the time of each check's
    /// last run, each record set's fingerprint and TTL, each resolver's propagation lag,
    /// the SPF address-set fingerprint, and every `_info` value.
    pub detail: bool,
}

impl From<RawMetrics> for MetricsConfig {
    fn from(raw: RawMetrics) -> MetricsConfig {
        MetricsConfig {
            detail: raw.detail.unwrap_or(false),
        }
    }
}
