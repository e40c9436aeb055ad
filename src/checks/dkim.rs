//! DKIM check: the key record of every configured selector (`expect.dkim.selectors`) at
//! `<selector>._domainkey.<domain>`, CNAMEs followed (Microsoft 365 publishes its keys
//! through them), parsed per RFC 6376 §3.6.1, the key size read from the key itself.
//!
//! Decisions:
//! - without configured selectors there is nothing to look up (selectors cannot be listed
//!   from DNS): the check succeeds with no records;
//! - a selector name that aliases elsewhere is asked at the zone, the alias target through
//!   the recursive resolvers (it is another zone);
//! - RSA keys under 1024 bits are `critical` (RFC 8301 §3.2: verifiers must not accept
//!   them), under 2048 bits `warning` (RFC 8301 says signers SHOULD use 2048);
//! - a record that does not parse, an unknown `k=`, or a `p=` that is not a key is
//!   `dkim_key_invalid` (critical: signatures with it fail).

mod key;

pub use key::{DkimKey, DkimKeyError, KeyType};

use super::{
    Check, Context, Evaluation, FamilyValues, GaugeFamily, Input, JsonShape, RecordObservation,
};
use crate::config::{DkimExpectation, DomainConfig};
use crate::dns::{Answer, DnsError, DnsLookup, DnsView, RData, RecordType, normalize_name};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::{BoxFuture, join_all};
use serde::Serialize;

/// `maildrift_dkim_key_bits{selector}`, per configured selector.
pub static KEY_BITS: GaugeFamily = GaugeFamily {
    name: "maildrift_dkim_key_bits",
    help: "Public key size of a configured DKIM selector; 0 when missing, revoked or unreadable.",
    labels: &["selector"],
    initial: &[],
    json: Some(JsonShape::ByLabel("dkim_key_bits")),
    export: super::Export::Always,
};

/// The DKIM check (the selectors of `expect.dkim`; without them, nothing to look up).
#[derive(Debug, Default)]
pub struct Dkim;

impl Check for Dkim {
    const KIND: CheckKind = CheckKind::Dkim;
    type Observation = DkimObservation;
    type Memory = ();
    const FAMILIES: &'static [&'static GaugeFamily] = &[&KEY_BITS];

    fn declared(&self, config: &DomainConfig) -> bool {
        config.expect.dkim.is_some()
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, DkimObservation> {
        Box::pin(observe(
            ctx.domain(),
            ctx.dns,
            ctx.config.expect.dkim.as_ref(),
        ))
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &DkimObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        evaluate(ctx.domain(), observation)
    }
}

/// Below this many bits an RSA key is rejected by verifiers (RFC 8301 §3.2).
pub const MIN_RSA_BITS: u32 = 1024;
/// Below this many bits an RSA key is weaker than RFC 8301 asks of signers.
pub const RECOMMENDED_RSA_BITS: u32 = 2048;

/// What was seen at one selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SelectorObservation {
    /// The selector.
    pub selector: String,
    /// The name asked: `<selector>._domainkey.<domain>`.
    pub name: String,
    /// CNAME targets followed from the name.
    pub cname_chain: Vec<String>,
    /// Every TXT record found at the end of the chain.
    pub records: Vec<String>,
    /// TTL of the TXT answer.
    pub ttl: Option<u32>,
    /// The key, parsed from the first record; `None` when there is no record.
    pub key: Option<Result<DkimKey, DkimKeyError>>,
}

impl SelectorObservation {
    /// The key size for `maildrift_dkim_key_bits`: 0 when missing, revoked or unreadable.
    pub fn bits(&self) -> u32 {
        match &self.key {
            Some(Ok(key)) if !key.revoked => key.bits,
            _ => 0,
        }
    }

    /// The normalised record value: `selector k=TYPE bits=N [t=FLAGS] key=FINGERPRINT`, or
    /// a description of why there is no usable key. Compact, and changes when the key does.
    fn summary(&self) -> String {
        let via = match self.cname_chain.last() {
            Some(target) => format!(" via {target}"),
            None => String::new(),
        };
        match &self.key {
            None => format!("{}{via}: no key record", self.selector),
            Some(Err(_)) => format!("{}{via}: invalid {:?}", self.selector, self.records[0]),
            Some(Ok(key)) if key.revoked => format!("{}{via}: revoked", self.selector),
            Some(Ok(key)) => {
                let flags = if key.flags.is_empty() {
                    String::new()
                } else {
                    format!(" t={}", key.flags.join(":"))
                };
                format!(
                    "{}{via}: k={} bits={}{flags} key={:013x}",
                    self.selector,
                    key.key_type.as_str(),
                    key.bits,
                    super::fingerprint(std::slice::from_ref(&key.public_key))
                )
            }
        }
    }
}

/// What was seen of a domain's DKIM keys.
#[derive(Clone, Debug)]
pub struct DkimObservation {
    /// The domain checked, normalised.
    pub domain: String,
    /// One entry per selector, or the first lookup that was inconclusive.
    pub result: Result<Vec<SelectorObservation>, DnsError>,
}

impl DkimObservation {
    /// `(selector, bits)` for `maildrift_dkim_key_bits`, when conclusive.
    pub fn key_bits(&self) -> Option<Vec<(String, u32)>> {
        let selectors = self.result.as_ref().ok()?;
        Some(
            selectors
                .iter()
                .map(|s| (s.selector.clone(), s.bits()))
                .collect(),
        )
    }
}

/// Looks up every selector of `expect` concurrently.
pub async fn observe(
    domain: &str,
    view: &DnsView,
    expect: Option<&DkimExpectation>,
) -> DkimObservation {
    let domain = normalize_name(domain);
    let selectors = expect.map(|e| e.selectors.as_slice()).unwrap_or_default();
    let results = join_all(
        selectors
            .iter()
            .map(|selector| observe_selector(&domain, selector, view)),
    )
    .await;
    DkimObservation {
        domain,
        result: results.into_iter().collect(),
    }
}

async fn observe_selector(
    domain: &str,
    selector: &str,
    view: &DnsView,
) -> Result<SelectorObservation, DnsError> {
    let selector = normalize_name(selector);
    let name = format!("{selector}._domainkey.{domain}");
    let mut answer = view.zone.lookup(&name, RecordType::Txt).await?;
    let mut cname_chain = answer.cname_chain.clone();
    if answer.records.is_empty() {
        if cname_chain.is_empty() {
            // A zone (or fake) that answers the TXT question without the alias: ask for it.
            let cname = view.zone.lookup(&name, RecordType::Cname).await?;
            if let Some(RData::Cname(target)) = cname.records.first() {
                cname_chain.push(normalize_name(target));
            }
        }
        if let Some(target) = cname_chain.last().cloned() {
            answer = follow(view.recursive.as_ref(), &target).await?;
            cname_chain.extend(answer.cname_chain.iter().cloned());
        }
    }
    let records = answer.texts();
    let key = records.first().map(|text| DkimKey::parse(text));
    Ok(SelectorObservation {
        selector,
        name,
        cname_chain,
        ttl: (!records.is_empty()).then_some(answer.ttl),
        records,
        key,
    })
}

async fn follow(dns: &dyn DnsLookup, target: &str) -> Result<Answer, DnsError> {
    dns.lookup(target, RecordType::Txt).await
}

/// Turns an observation into findings and the key size per selector.
pub fn evaluate(domain: &str, observation: &DkimObservation) -> Evaluation<()> {
    let selectors = match &observation.result {
        Ok(selectors) => selectors,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let mut values: Vec<String> = selectors.iter().map(SelectorObservation::summary).collect();
    values.sort();
    let ttl = selectors.iter().filter_map(|s| s.ttl).min();
    let mut findings = Vec::new();
    for s in selectors {
        findings.extend(selector_findings(domain, s));
    }
    let bits = selectors
        .iter()
        .map(|s| (s.selector.clone(), f64::from(s.bits())));
    Evaluation::conclusive(vec![RecordObservation::new("dkim", values, ttl)], findings)
        .with_gauge(FamilyValues::by_label(&KEY_BITS, bits))
}

fn selector_findings(domain: &str, s: &SelectorObservation) -> Vec<Finding> {
    let finding = |code, severity, message: String| {
        Finding::new(code, severity, message)
            .with("selector", &s.selector)
            .with("name", &s.name)
            .with("cname_chain", &s.cname_chain)
    };
    let key = match &s.key {
        None => {
            let at = match s.cname_chain.last() {
                Some(target) => format!("{} (alias of {target})", s.name),
                None => s.name.clone(),
            };
            return vec![finding(
                FindingCode::DkimKeyMissing,
                Severity::Critical,
                format!(
                    "DKIM selector {} of {domain} has no key record at {at}: mail signed with it fails DKIM",
                    s.selector
                ),
            )];
        }
        Some(Err(error)) => {
            return vec![
                finding(
                    FindingCode::DkimKeyInvalid,
                    Severity::Critical,
                    format!(
                        "DKIM key record of selector {} of {domain} is unusable: {error}",
                        s.selector
                    ),
                )
                .with("record", &s.records[0]),
            ];
        }
        Some(Ok(key)) => key,
    };
    let mut out = Vec::new();
    if key.revoked {
        out.push(finding(
            FindingCode::DkimKeyRevoked,
            Severity::Critical,
            format!(
                "DKIM key of selector {} of {domain} is revoked (empty p=): mail signed with it fails DKIM",
                s.selector
            ),
        ));
        return out;
    }
    if key.key_type == KeyType::Rsa && key.bits < RECOMMENDED_RSA_BITS {
        let severity = if key.bits < MIN_RSA_BITS {
            Severity::Critical
        } else {
            Severity::Warning
        };
        out.push(
            finding(
                FindingCode::DkimKeyWeak,
                severity,
                format!(
                    "DKIM key of selector {} of {domain} is RSA {} bits; RFC 8301 requires at least {MIN_RSA_BITS} and recommends {RECOMMENDED_RSA_BITS}",
                    s.selector, key.bits
                ),
            )
            .with("bits", key.bits),
        );
    }
    if key.flags.iter().any(|f| f == "y") {
        out.push(finding(
            FindingCode::DkimTestingMode,
            Severity::Warning,
            format!(
                "DKIM key of selector {} of {domain} is in testing mode (t=y): receivers may treat failures as unsigned",
                s.selector
            ),
        ));
    }
    out
}

#[cfg(test)]
#[path = "dkim_tests.rs"]
mod tests;
