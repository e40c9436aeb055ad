//! TLS-RPT check (RFC 8460): the `_smtp._tls` TXT record, one `v=TLSRPTv1` record with
//! `rua=` destinations (`mailto:` or `https:`). Without it nobody hears about TLS failures
//! of incoming mail: `tls_rpt_missing` is a warning where MTA-STS is deployed (its failures
//! go unreported), info elsewhere.

use super::mta_sts::MtaSts;
use super::tags::{parse_tags, tag};
use super::{Check, Context, Evaluation, Input, RecordObservation};
use crate::dns::{DnsError, DnsView, RData, RecordType, normalize_name};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::BoxFuture;

/// The TLS-RPT check (a missing record matters more where MTA-STS is deployed).
#[derive(Debug, Default)]
pub struct TlsRpt;

impl Check for TlsRpt {
    const KIND: CheckKind = CheckKind::TlsRpt;
    type Observation = TlsRptObservation;
    type Memory = ();
    const NEEDS: &'static [CheckKind] = &[CheckKind::MtaSts];

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, TlsRptObservation> {
        Box::pin(observe(ctx.domain(), ctx.dns))
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &TlsRptObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        let Some(mta_sts) = ctx.observation::<MtaSts>() else {
            return Evaluation::inconclusive("the MTA-STS observation is missing");
        };
        evaluate(ctx.domain(), observation, mta_sts.deployed())
    }
}

/// What was seen at `_smtp._tls.<domain>`.
#[derive(Clone, Debug)]
pub struct TlsRptObservation {
    /// The domain, normalised.
    pub domain: String,
    /// The TLS-RPT records and TTL, or the lookup error.
    pub result: Result<(Vec<String>, u32), DnsError>,
}

/// True when a TXT record is meant as TLS-RPT (`v=TLSRPTv1` first, any case).
pub fn is_tls_rpt(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    first
        .split_once('=')
        .is_some_and(|(n, v)| n.trim() == "v" && v.trim().eq_ignore_ascii_case("TLSRPTv1"))
}

/// Parses a record; returns its `rua=` destinations.
pub fn parse(text: &str) -> Result<Vec<String>, String> {
    let tags = parse_tags(text).map_err(|e| e.to_string())?;
    if tags
        .first()
        .is_none_or(|t| t.name != "v" || t.value != "TLSRPTv1")
    {
        return Err(format!("{text:?} does not start with v=TLSRPTv1"));
    }
    let rua = tag(&tags, "rua").ok_or("missing rua=")?;
    let mut out = Vec::new();
    for uri in rua.split(',').map(str::trim) {
        let lower = uri.to_ascii_lowercase();
        let valid =
            (lower.starts_with("mailto:") && uri.contains('@')) || lower.starts_with("https://");
        if !valid {
            return Err(format!("rua {uri:?} is not a mailto: or https: URI"));
        }
        out.push(uri.to_owned());
    }
    Ok(out)
}

/// Reads `_smtp._tls.<domain>` from the zone.
pub async fn observe(domain: &str, view: &DnsView) -> TlsRptObservation {
    let domain = normalize_name(domain);
    let result = view
        .zone
        .lookup(&format!("_smtp._tls.{domain}"), RecordType::Txt)
        .await
        .map(|answer| {
            let records = answer
                .records
                .iter()
                .filter_map(|r| match r {
                    RData::Txt(text) if is_tls_rpt(text) => Some(text.trim().to_owned()),
                    _ => None,
                })
                .collect();
            (records, answer.ttl)
        });
    TlsRptObservation { domain, result }
}

/// Turns an observation into findings; `mta_sts_deployed` raises a missing record to a
/// warning.
pub fn evaluate(
    domain: &str,
    observation: &TlsRptObservation,
    mta_sts_deployed: bool,
) -> Evaluation<()> {
    let (records, ttl) = match &observation.result {
        Ok(found) => found,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let name = format!("_smtp._tls.{domain}");
    let mut findings = Vec::new();
    match records.as_slice() {
        [] => {
            let (severity, why) = if mta_sts_deployed {
                (
                    Severity::Warning,
                    "MTA-STS failures of incoming mail go unreported",
                )
            } else {
                (
                    Severity::Info,
                    "TLS failures of incoming mail go unreported",
                )
            };
            findings.push(
                Finding::new(
                    FindingCode::TlsRptMissing,
                    severity,
                    format!("{domain} publishes no TLS-RPT record at {name}: {why}"),
                )
                .with("name", &name),
            );
        }
        [one] => {
            if let Err(error) = parse(one) {
                findings.push(
                    Finding::new(
                        FindingCode::TlsRptInvalid,
                        Severity::Warning,
                        format!("TLS-RPT record of {domain} is invalid: {error}"),
                    )
                    .with("record", one),
                );
            }
        }
        many => findings.push(
            Finding::new(
                FindingCode::TlsRptInvalid,
                Severity::Warning,
                format!(
                    "{domain} publishes {} TLS-RPT records at {name}; reporters use none",
                    many.len()
                ),
            )
            .with("records", many),
        ),
    }
    let mut values = records.clone();
    values.sort();
    let ttl = (!values.is_empty()).then_some(*ttl);
    Evaluation::conclusive(
        vec![RecordObservation::new("tls_rpt", values, ttl)],
        findings,
    )
}
