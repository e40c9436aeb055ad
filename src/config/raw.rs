//! The config file as written: serde shapes with `deny_unknown_fields`, leaf values kept as
//! text so that validation (in `validate.rs`) can check them all and report each one.
//!
//! Fields are `Option`s because a domain inherits what it does not set from `defaults:`;
//! the defaults themselves are the named functions in `validate.rs`.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// The top level, split by hand (see `split_top` in `mod.rs`) rather than derived, so that
/// an unknown top-level key does not hide the errors in the known sections. Each section
/// is kept as a YAML value and deserialized on its own, so a type error in one section
/// (or one domain) does not hide errors elsewhere.
#[derive(Debug, Default)]
pub(crate) struct RawTop {
    /// Settings every domain inherits, and daemon-wide ones ([`RawDefaults`]).
    pub(crate) defaults: Option<yaml_serde::Value>,
    /// The watched domains (a list of [`RawDomain`]); required.
    pub(crate) domains: Option<yaml_serde::Value>,
    /// Where alerts go ([`RawAlerting`]).
    pub(crate) alerting: Option<yaml_serde::Value>,
    /// User provider presets, by name ([`RawPreset`]), added to the built-in ones.
    pub(crate) providers: Option<yaml_serde::Value>,
    /// The state store's settings ([`super::state::RawState`]).
    pub(crate) state: Option<yaml_serde::Value>,
    /// What `/metrics` shows ([`super::series::RawMetrics`]).
    pub(crate) metrics: Option<yaml_serde::Value>,
}

impl RawTop {
    /// The top-level keys, in the order the error messages list them.
    pub(crate) const KEYS: [&'static str; 6] = [
        "defaults",
        "domains",
        "alerting",
        "providers",
        "state",
        "metrics",
    ];
}

/// `defaults:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of default settings (interval, timeout, ...)"
)]
pub(crate) struct RawDefaults {
    /// How often each domain is checked.
    pub(crate) interval: Option<Text>,
    /// Deadline for one domain check.
    pub(crate) timeout: Option<Text>,
    /// Recursive resolvers: `system` or `IP[:PORT]`.
    pub(crate) resolvers: Option<Vec<Text>>,
    /// Also ask the authoritative servers directly.
    pub(crate) authoritative: Option<bool>,
    /// Authoritative servers to ask instead of discovering NS records.
    pub(crate) nameservers: Option<Vec<Text>>,
    /// At most this many domain checks at once (daemon-wide).
    pub(crate) concurrency: Option<i64>,
    /// How long a zone's servers may disagree on the SOA serial before it is a finding
    /// (daemon-wide).
    pub(crate) ns_serial_grace: Option<Text>,
    /// How MTA-STS policies are fetched.
    pub(crate) mta_sts: Option<RawMtaSts>,
    /// How DNSSEC is judged.
    pub(crate) dnssec: Option<RawDnssec>,
    /// How registration data is asked over RDAP (the `registration` check).
    pub(crate) rdap: Option<super::reputation::RawRdap>,
    /// Which DNS blocklists the `dnsbl` check asks.
    pub(crate) dnsbl: Option<super::reputation::RawDnsbl>,
    /// Checks every domain leaves out (`{ skip: [dnssec] }`).
    pub(crate) checks: Option<RawChecks>,
    /// How the MX hosts are asked over SMTP (STARTTLS, certificates).
    pub(crate) smtp: Option<super::transport::RawSmtp>,
    /// Which BIMI selectors are asked and how logos are fetched.
    pub(crate) bimi: Option<super::transport::RawBimi>,
}

/// `checks:` (in `defaults:` or a domain): the scope of the checks.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ skip: [dnssec, dnsbl] }`"
)]
pub(crate) struct RawChecks {
    /// Checks not run for the domain: they export nothing and never alert.
    pub(crate) skip: Option<Vec<Text>>,
}

/// `defaults.mta_sts:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ ca_file: /etc/maildrift/ca.pem, port: 443, timeout: 10s }`"
)]
pub(crate) struct RawMtaSts {
    /// Extra trusted CA certificates (PEM file).
    pub(crate) ca_file: Option<Text>,
    /// HTTPS port of `mta-sts.<domain>`.
    pub(crate) port: Option<Text>,
    /// Deadline of one policy fetch.
    pub(crate) timeout: Option<Text>,
}

/// `defaults.dnssec:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ expiry_warning: 7d }`"
)]
pub(crate) struct RawDnssec {
    /// Window before a signature's expiration in which it is reported.
    pub(crate) expiry_warning: Option<Text>,
}

/// One entry of `domains:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a domain entry: a mapping such as `{ name: example.com }`"
)]
pub(crate) struct RawDomain {
    /// The domain name.
    pub(crate) name: Text,
    /// Overrides `defaults.interval`.
    pub(crate) interval: Option<Text>,
    /// Overrides `defaults.timeout`.
    pub(crate) timeout: Option<Text>,
    /// Overrides `defaults.resolvers`.
    pub(crate) resolvers: Option<Vec<Text>>,
    /// Overrides `defaults.authoritative`.
    pub(crate) authoritative: Option<bool>,
    /// Overrides `defaults.nameservers`.
    pub(crate) nameservers: Option<Vec<Text>>,
    /// Provider preset filling `expect.mx` and `expect.spf.includes`.
    pub(crate) provider: Option<Text>,
    /// What the mail DNS should look like.
    pub(crate) expect: Option<RawExpect>,
    /// Extra alert labels.
    pub(crate) labels: Option<BTreeMap<String, Text>>,
    /// Overrides `defaults.checks`.
    pub(crate) checks: Option<RawChecks>,
}

/// `expect:` of a domain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with mx, spf, dmarc, dkim")]
pub(crate) struct RawExpect {
    /// Expected MX hosts.
    pub(crate) mx: Option<Vec<Text>>,
    /// Expected SPF shape.
    pub(crate) spf: Option<RawSpf>,
    /// Expected DMARC policy.
    pub(crate) dmarc: Option<RawDmarc>,
    /// DKIM selectors that must publish a key.
    pub(crate) dkim: Option<RawDkim>,
}

/// `expect.spf:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ includes: [...], all: \"-all\" }`"
)]
pub(crate) struct RawSpf {
    /// Domains that must be included.
    pub(crate) includes: Option<Vec<Text>>,
    /// The required final `all` term.
    pub(crate) all: Option<Text>,
    /// Connections (IPs, or `{ ip, sender, helo }`) that must get `pass`.
    pub(crate) authorizes: Option<Vec<super::spf::RawAuthorized>>,
    /// The exact record (e.g. `v=spf1 -all` for a domain that sends no mail).
    pub(crate) record: Option<Text>,
}

/// `expect.dmarc:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ policy: reject }`"
)]
pub(crate) struct RawDmarc {
    /// `none`, `quarantine` or `reject`.
    pub(crate) policy: Text,
}

/// `expect.dkim:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ selectors: [default] }`"
)]
pub(crate) struct RawDkim {
    /// Selector names.
    pub(crate) selectors: Vec<Text>,
}

/// `alerting:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with for, keep_firing_for, resend_interval, external_url, alerts, alertmanager, webhooks"
)]
pub(crate) struct RawAlerting {
    /// How long a finding must persist before its alert fires.
    #[serde(rename = "for")]
    pub(crate) for_: Option<Text>,
    /// How long a firing alert stays firing after its condition cleared.
    pub(crate) keep_firing_for: Option<Text>,
    /// How often a firing alert is sent again.
    pub(crate) resend_interval: Option<Text>,
    /// The URL users reach this daemon at (for links in alerts).
    pub(crate) external_url: Option<Text>,
    /// Per-alert overrides of `for` and `keep_firing_for`, by alert name.
    pub(crate) alerts: Option<BTreeMap<String, RawAlertOverride>>,
    /// Alertmanager API endpoints.
    pub(crate) alertmanager: Option<RawAlertmanager>,
    /// Direct webhook receivers.
    #[serde(default)]
    pub(crate) webhooks: Vec<RawWebhook>,
}

/// `alerting.alertmanager:`: exactly one of `url` and `urls`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ url: \"http://alertmanager:9093\" }`"
)]
pub(crate) struct RawAlertmanager {
    /// One Alertmanager.
    pub(crate) url: Option<Text>,
    /// Several Alertmanagers (a cluster: each gets every alert).
    pub(crate) urls: Option<Vec<Text>>,
    /// Request timeout.
    pub(crate) timeout: Option<Text>,
    /// HTTP basic authentication (password from a file or the environment).
    pub(crate) basic_auth: Option<RawBasicAuth>,
    /// A file holding a bearer token.
    pub(crate) bearer_token_file: Option<Text>,
    /// An environment variable holding a bearer token.
    pub(crate) bearer_token_env: Option<Text>,
    /// TLS settings for https:// Alertmanagers.
    pub(crate) tls_config: Option<RawTls>,
}

/// One entry of `alerting.webhooks:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a webhook: a mapping such as `{ name: oncall, format: slack, url_file: FILE }`"
)]
pub(crate) struct RawWebhook {
    /// Receiver name, unique (the `receiver` metric label).
    pub(crate) name: Text,
    /// Payload format: generic, slack, dingtalk, feishu, wecom.
    pub(crate) format: Text,
    /// The URL, written in the config.
    pub(crate) url: Option<Text>,
    /// A file holding the URL (keeps tokens out of the config).
    pub(crate) url_file: Option<Text>,
    /// A file holding a signing secret (DingTalk, Feishu).
    pub(crate) secret_file: Option<Text>,
    /// An environment variable holding a signing secret (DingTalk, Feishu).
    pub(crate) secret_env: Option<Text>,
    /// The messages' language: `en` (default) or `zh-CN` (chat formats only).
    pub(crate) language: Option<Text>,
}

/// One provider preset (built-in file or `providers:`).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a preset: a mapping such as `{ mx: [...], spf_includes: [...] }`"
)]
pub(crate) struct RawPreset {
    /// MX hosts; `{domain}` and `{domain_dashed}` are replaced per domain.
    #[serde(default)]
    pub(crate) mx: Vec<Text>,
    /// SPF include domains.
    #[serde(default)]
    pub(crate) spf_includes: Vec<Text>,
    /// The exact SPF record (`v=spf1 -all` for parked domains).
    pub(crate) spf_record: Option<Text>,
    /// The DMARC policy that must be published.
    pub(crate) dmarc: Option<Text>,
    /// DKIM selectors that must publish a key (`[]`: none expected).
    pub(crate) dkim_selectors: Option<Vec<Text>>,
}

/// A scalar kept as text: strings, numbers and booleans all accepted, so that `300` for
/// a duration or `1.5` for a name gets a message about the value, not about its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) String);

impl Text {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
        Ok(Text(v.to_string()))
    }
}

/// `alerting.alerts.<name>:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ for: 15m, keep_firing_for: 5m }`"
)]
pub(crate) struct RawAlertOverride {
    /// Replaces `alerting.for` for this alert.
    #[serde(rename = "for")]
    pub(crate) for_: Option<Text>,
    /// Replaces `alerting.keep_firing_for` for this alert.
    pub(crate) keep_firing_for: Option<Text>,
}

/// `basic_auth:`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ username: maildrift, password_file: FILE }`"
)]
pub(crate) struct RawBasicAuth {
    /// The user name.
    pub(crate) username: Text,
    /// A file holding the password.
    pub(crate) password_file: Option<Text>,
    /// An environment variable holding the password.
    pub(crate) password_env: Option<Text>,
}

/// `tls_config:`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with ca_file, cert_file, key_file, insecure_skip_verify"
)]
pub(crate) struct RawTls {
    /// CA certificates (PEM).
    pub(crate) ca_file: Option<Text>,
    /// Client certificate (PEM).
    pub(crate) cert_file: Option<Text>,
    /// Client key (PEM).
    pub(crate) key_file: Option<Text>,
    /// Skip server certificate verification.
    pub(crate) insecure_skip_verify: Option<bool>,
}
