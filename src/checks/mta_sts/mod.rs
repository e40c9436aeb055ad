//! MTA-STS check (RFC 8461): the `_mta-sts` TXT record, the policy fetched over HTTPS, and
//! every MX host matched against the policy's `mx:` patterns. A domain whose MX moves while
//! its policy does not loses mail from senders that enforce the policy: that is
//! `mta_sts_mx_mismatch`, critical in `enforce` mode.
//!
//! Decisions:
//! - no `_mta-sts` record: MTA-STS is not deployed, which is not a finding;
//! - the policy's host is resolved through maildrift's own resolvers (the view), then
//!   connected to directly, so tests and split-horizon setups see what maildrift sees;
//! - an unreachable policy is a `warning`: senders with a cached policy keep applying it
//!   until `max_age`, new senders skip MTA-STS;
//! - the record values are the policy's mode and patterns (not the `id` or `max_age`,
//!   which change on every edit): an `id` change is the `info` event
//!   `mta_sts_id_changed`, compared with the previous run.

mod fetch;
pub mod policy;

pub use fetch::{FetchError, MAX_POLICY_BYTES, fetch_policy};
pub use policy::{StsMode, StsPolicy, StsRecord, StsSyntaxError};

use super::mx::{Mx, MxObservation};
use super::{Check, Context, Evaluation, Input, RecordObservation};
use crate::config::MtaStsSettings;
use crate::dns::{DnsError, DnsView, RData, RecordType, normalize_name};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::BoxFuture;
use std::net::IpAddr;

/// The MTA-STS check: the `_mta-sts` record and the policy it announces, matched with the
/// MX hosts of the same run. It remembers the policy id (`mta_sts_id_changed`).
#[derive(Debug, Default)]
pub struct MtaSts;

impl Check for MtaSts {
    const KIND: CheckKind = CheckKind::MtaSts;
    type Observation = MtaStsObservation;
    type Memory = String;
    const NEEDS: &'static [CheckKind] = &[CheckKind::Mx];

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, MtaStsObservation> {
        Box::pin(observe(ctx.domain(), ctx.dns, &ctx.config.analysis.mta_sts))
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &MtaStsObservation,
        input: Input<'_, String>,
    ) -> Evaluation<String> {
        let Some(mx) = ctx.observation::<Mx>() else {
            return Evaluation::inconclusive("the MX observation is missing");
        };
        evaluate(
            ctx.domain(),
            observation,
            &mx,
            input.memory.map(String::as_str),
        )
    }
}

/// What became of the policy fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Fetched and parsed.
    Policy(StsPolicy),
    /// Not fetched (DNS name without address, connection, TLS, HTTP, timeout).
    Unreachable(String),
    /// Fetched, but not a valid policy.
    Invalid(String),
}

/// The conclusive part of an MTA-STS observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaStsSet {
    /// TXT records at `_mta-sts` meant as MTA-STS.
    pub records: Vec<String>,
    /// TTL of that answer.
    pub ttl: Option<u32>,
    /// The parsed record, when there is exactly one.
    pub record: Option<Result<StsRecord, StsSyntaxError>>,
    /// The policy, when the record is valid.
    pub policy: Option<PolicyOutcome>,
}

/// What was seen of a domain's MTA-STS.
#[derive(Clone, Debug)]
pub struct MtaStsObservation {
    /// The domain, normalised.
    pub domain: String,
    /// The set, or the first DNS lookup that was inconclusive.
    pub result: Result<MtaStsSet, DnsError>,
}

impl MtaStsObservation {
    /// True when a `_mta-sts` record is published (valid or not).
    pub fn deployed(&self) -> bool {
        self.result.as_ref().is_ok_and(|s| !s.records.is_empty())
    }

    /// The policy id, when the record is valid.
    pub fn id(&self) -> Option<&str> {
        match &self.result {
            Ok(MtaStsSet {
                record: Some(Ok(record)),
                ..
            }) => Some(&record.id),
            _ => None,
        }
    }
}

/// Reads `_mta-sts.<domain>` from the zone and, when valid, fetches the policy over HTTPS.
pub async fn observe(domain: &str, view: &DnsView, settings: &MtaStsSettings) -> MtaStsObservation {
    observe_with(domain, view, |host, addresses| async move {
        fetch_policy(&host, &addresses, settings).await
    })
    .await
}

/// [`observe`] with another way to fetch the policy body (tests).
pub async fn observe_with<F, Fut>(domain: &str, view: &DnsView, fetch: F) -> MtaStsObservation
where
    F: FnOnce(String, Vec<IpAddr>) -> Fut,
    Fut: std::future::Future<Output = Result<String, FetchError>>,
{
    let domain = normalize_name(domain);
    let result = observe_set(&domain, view, fetch).await;
    MtaStsObservation { domain, result }
}

async fn observe_set<F, Fut>(domain: &str, view: &DnsView, fetch: F) -> Result<MtaStsSet, DnsError>
where
    F: FnOnce(String, Vec<IpAddr>) -> Fut,
    Fut: std::future::Future<Output = Result<String, FetchError>>,
{
    let answer = view
        .zone
        .lookup(&format!("_mta-sts.{domain}"), RecordType::Txt)
        .await?;
    let records: Vec<String> = answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Txt(text) if policy::is_sts(text) => Some(text.trim().to_owned()),
            _ => None,
        })
        .collect();
    let record = match records.as_slice() {
        [one] => Some(StsRecord::parse(one)),
        _ => None,
    };
    let policy = match &record {
        Some(Ok(_)) => Some(fetch_outcome(domain, view, fetch).await?),
        _ => None,
    };
    Ok(MtaStsSet {
        ttl: (!records.is_empty()).then_some(answer.ttl),
        records,
        record,
        policy,
    })
}

async fn fetch_outcome<F, Fut>(
    domain: &str,
    view: &DnsView,
    fetch: F,
) -> Result<PolicyOutcome, DnsError>
where
    F: FnOnce(String, Vec<IpAddr>) -> Fut,
    Fut: std::future::Future<Output = Result<String, FetchError>>,
{
    let host = format!("mta-sts.{domain}");
    let (a, aaaa) = futures::join!(
        view.recursive.lookup(&host, RecordType::A),
        view.recursive.lookup(&host, RecordType::Aaaa)
    );
    let addresses: Vec<IpAddr> = [&a, &aaaa]
        .into_iter()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|answer| &answer.records)
        .filter_map(|r| match r {
            RData::A(ip) => Some(IpAddr::V4(*ip)),
            RData::Aaaa(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        })
        .collect();
    if addresses.is_empty() {
        // Only a failure of both families is inconclusive; a void answer is a finding.
        a?;
        aaaa?;
        return Ok(PolicyOutcome::Unreachable(format!(
            "{host} has no A or AAAA record"
        )));
    }
    Ok(match fetch(host, addresses).await {
        Err(error) => PolicyOutcome::Unreachable(error.to_string()),
        Ok(body) => match StsPolicy::parse(&body) {
            Ok(policy) => PolicyOutcome::Policy(policy),
            Err(error) => PolicyOutcome::Invalid(error.to_string()),
        },
    })
}

/// Turns an observation into findings; `mx` is the MX observation of the same run,
/// `previous_id` the policy id of the previous run. Remembers this run's id.
pub fn evaluate(
    domain: &str,
    observation: &MtaStsObservation,
    mx: &MxObservation,
    previous_id: Option<&str>,
) -> Evaluation<String> {
    let set = match &observation.result {
        Ok(set) => set,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let mut findings = Vec::new();
    let mut values = Vec::new();
    let name = format!("_mta-sts.{domain}");
    match (&set.record, set.records.len()) {
        (_, 0) => {}
        (None, count) => findings.push(
            Finding::new(
                FindingCode::MtaStsRecordInvalid,
                Severity::Warning,
                format!(
                    "{domain} publishes {count} MTA-STS records at {name}; senders ignore MTA-STS"
                ),
            )
            .with("records", &set.records),
        ),
        (Some(Err(error)), _) => findings.push(
            Finding::new(
                FindingCode::MtaStsRecordInvalid,
                Severity::Warning,
                format!("MTA-STS record of {domain} is invalid, senders ignore it: {error}"),
            )
            .with("record", &set.records[0]),
        ),
        (Some(Ok(record)), _) => {
            if let Some(previous) = previous_id.filter(|p| *p != record.id) {
                findings.push(
                    Finding::new(
                        FindingCode::MtaStsIdChanged,
                        Severity::Info,
                        format!("MTA-STS policy id of {domain} changed from {previous} to {}: senders fetch the policy again", record.id),
                    )
                    .with("from", previous)
                    .with("to", &record.id),
                );
            }
        }
    }
    let host = format!("mta-sts.{domain}");
    match &set.policy {
        None => {}
        Some(PolicyOutcome::Unreachable(why)) => findings.push(
            Finding::new(
                FindingCode::MtaStsPolicyUnreachable,
                Severity::Warning,
                format!("MTA-STS policy of {domain} cannot be fetched: {why}"),
            )
            .with("host", &host),
        ),
        Some(PolicyOutcome::Invalid(why)) => findings.push(
            Finding::new(
                FindingCode::MtaStsPolicyInvalid,
                Severity::Warning,
                format!("MTA-STS policy of {domain} is invalid, senders ignore it: {why}"),
            )
            .with("host", &host),
        ),
        Some(PolicyOutcome::Policy(policy)) => {
            values.push(format!("mode={}", policy.mode.as_str()));
            values.extend(policy.mx.iter().map(|p| format!("mx={p}")));
            if policy.mode != StsMode::None {
                match mx_findings(domain, policy, mx) {
                    Ok(found) => findings.extend(found),
                    Err(error) => return Evaluation::inconclusive(error),
                }
            }
        }
    }
    values.sort();
    let records = vec![RecordObservation::new("mta_sts", values, set.ttl)];
    Evaluation::conclusive(records, findings).with_memory(observation.id().map(str::to_owned))
}

fn mx_findings(
    domain: &str,
    policy: &StsPolicy,
    mx: &MxObservation,
) -> Result<Vec<Finding>, String> {
    let set = mx
        .result
        .as_ref()
        .map_err(|e| format!("MX hosts unknown ({e}), so the MTA-STS policy cannot be matched"))?;
    let severity = match policy.mode {
        StsMode::Enforce => Severity::Critical,
        _ => Severity::Warning,
    };
    let hosts = set.records.iter().filter(|r| !r.exchange.is_empty());
    Ok(hosts
        .filter(|r| policy.matching_pattern(&r.exchange).is_none())
        .map(|r| {
            Finding::new(
                FindingCode::MtaStsMxMismatch,
                severity,
                format!(
                    "MX host {} of {domain} matches no mx: pattern of its MTA-STS policy ({}); senders enforcing the policy ({} mode) will not deliver to it",
                    r.exchange,
                    policy.mx.join(", "),
                    policy.mode.as_str()
                ),
            )
            .with("host", &r.exchange)
            .with("patterns", &policy.mx)
            .with("mode", policy.mode.as_str())
        })
        .collect())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
