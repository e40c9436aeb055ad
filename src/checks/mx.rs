//! MX check: the MX set, null MX (RFC 7505), MX hosts that alias (CNAME) or do not resolve.
//!
//! CNAME detection: a real resolver reports the chain in the A/AAAA answer's `cname_chain`;
//! when neither answer has addresses nor a chain, the host's CNAME is asked directly (and
//! its target's addresses), so a dangling alias is reported as such. Only unresolvable
//! hosts cost the extra queries.
//!
//! Host addresses: an authoritative MX answer carries the addresses of hosts in the zone
//! in its additional section; those hosts are not asked again (the addresses are the ones a
//! resolver would fetch, from the same server). Other hosts are asked through the resolvers.
//!
//! The check is conclusive when the MX lookup itself is: a host whose address lookup fails
//! (timeout, SERVFAIL) is marked unknown in its `error` and judged neither resolvable nor
//! unresolvable, so a resolver hiccup on one host never hides drift in the MX set.

use super::{
    Check, Context, Declared, Evaluation, FamilyValues, GaugeFamily, Input, JsonShape,
    RecordObservation,
};
use crate::config::{DomainConfig, MxExpectation};
use crate::dns::{Answer, AnswerStatus, DnsError, DnsLookup, DnsView, RData, RecordType};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::{BoxFuture, join_all};
use serde::Serialize;
use std::net::IpAddr;

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MxRecord {
    /// Lower is preferred.
    pub preference: u16,
    /// Normalised host name; "" for the null MX.
    pub exchange: String,
}

/// What was learned about one MX host through the recursive resolvers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxHost {
    /// Normalised host name.
    pub name: String,
    /// Its IPv4 and IPv6 addresses (after any CNAME).
    pub addresses: Vec<IpAddr>,
    /// CNAME targets followed from the name (empty when it is not an alias).
    pub cname_chain: Vec<String>,
    /// Why its addresses are unknown, when a lookup was inconclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The conclusive part of an MX observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxSet {
    /// Records, NODATA or NXDOMAIN.
    #[serde(skip)]
    pub status: AnswerStatus,
    /// The MX records, sorted by preference then name.
    pub records: Vec<MxRecord>,
    /// TTL of the MX answer.
    pub ttl: u32,
    /// One entry per distinct (non-null) exchange, in record order.
    pub hosts: Vec<MxHost>,
}

/// What was seen of a domain's MX records and their hosts.
#[derive(Clone, Debug)]
pub struct MxObservation {
    /// The domain checked, normalised.
    pub domain: String,
    /// The MX set and its hosts, or the first lookup that was inconclusive.
    pub result: Result<MxSet, DnsError>,
}

impl MxObservation {
    /// Number of MX records, when the MX lookup was conclusive.
    pub fn record_count(&self) -> Option<usize> {
        self.result.as_ref().ok().map(|set| set.records.len())
    }
}

/// Looks up the MX set in `view.zone` and each host's A/AAAA (and CNAME) in `view.recursive`.
pub async fn observe(domain: &str, view: &DnsView) -> MxObservation {
    let domain = crate::dns::normalize_name(domain);
    let result = observe_set(&domain, view).await;
    MxObservation { domain, result }
}

async fn observe_set(domain: &str, view: &DnsView) -> Result<MxSet, DnsError> {
    let answer = view.zone.lookup(domain, RecordType::Mx).await?;
    let mut records: Vec<MxRecord> = answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Mx {
                preference,
                exchange,
            } => Some(MxRecord {
                preference: *preference,
                exchange: crate::dns::normalize_name(exchange),
            }),
            _ => None,
        })
        .collect();
    records.sort();
    let mut names: Vec<&str> = Vec::new();
    for record in &records {
        if !record.exchange.is_empty() && !names.contains(&record.exchange.as_str()) {
            names.push(&record.exchange);
        }
    }
    let dns = view.recursive.as_ref();
    let answer = &answer;
    let hosts = join_all(names.iter().map(|name| async move {
        // Hosts in the zone come with their addresses in the additional section of an
        // authoritative answer: the addresses a resolver would fetch, without asking.
        if let Some(mut addresses) = answer.in_zone_addresses(domain, name) {
            addresses.sort_by_key(|ip| (ip.is_ipv6(), *ip));
            return MxHost {
                name: (*name).to_owned(),
                addresses,
                cname_chain: Vec::new(),
                error: None,
            };
        }
        observe_host(dns, name)
            .await
            .unwrap_or_else(|error| MxHost {
                name: (*name).to_owned(),
                addresses: Vec::new(),
                cname_chain: Vec::new(),
                error: Some(error.to_string()),
            })
    }))
    .await;
    Ok(MxSet {
        status: answer.status,
        records,
        ttl: answer.ttl,
        hosts,
    })
}

fn addresses(answers: &[&Answer]) -> Vec<IpAddr> {
    answers
        .iter()
        .flat_map(|a| &a.records)
        .filter_map(|r| match r {
            RData::A(ip) => Some(IpAddr::V4(*ip)),
            RData::Aaaa(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        })
        .collect()
}

/// A and AAAA of `name`. A failed family is ignored when the other has addresses (some
/// servers fail AAAA queries); the failure stands only when nothing was found.
async fn lookup_addresses(dns: &dyn DnsLookup, name: &str) -> Result<(Answer, Answer), DnsError> {
    let (a, aaaa) = futures::join!(
        dns.lookup(name, RecordType::A),
        dns.lookup(name, RecordType::Aaaa)
    );
    let empty = || Answer::empty(AnswerStatus::NoData);
    match (a, aaaa) {
        (Ok(a), Ok(aaaa)) => Ok((a, aaaa)),
        (Ok(a), Err(_)) if !a.is_void() => Ok((a, empty())),
        (Err(_), Ok(aaaa)) if !aaaa.is_void() => Ok((empty(), aaaa)),
        (Err(error), _) | (_, Err(error)) => Err(error),
    }
}

async fn observe_host(dns: &dyn DnsLookup, name: &str) -> Result<MxHost, DnsError> {
    let (a, aaaa) = lookup_addresses(dns, name).await?;
    let mut host = MxHost {
        name: name.to_owned(),
        addresses: addresses(&[&a, &aaaa]),
        cname_chain: if a.cname_chain.is_empty() {
            aaaa.cname_chain.clone()
        } else {
            a.cname_chain.clone()
        },
        error: None,
    };
    if host.addresses.is_empty() && host.cname_chain.is_empty() {
        let cname = dns.lookup(name, RecordType::Cname).await?;
        if let Some(RData::Cname(target)) = cname.records.first() {
            let target = crate::dns::normalize_name(target);
            let (a, aaaa) = lookup_addresses(dns, &target).await?;
            host.cname_chain.push(target);
            host.cname_chain.extend(a.cname_chain.iter().cloned());
            host.addresses = addresses(&[&a, &aaaa]);
        }
    }
    Ok(host)
}

/// `maildrift_mx_records`.
pub static MX_RECORDS: GaugeFamily = GaugeFamily {
    name: "maildrift_mx_records",
    help: "Number of MX records.",
    labels: &[],
    initial: &[(&[], 0.0)],
    json: Some(JsonShape::Number("mx_records")),
    export: super::Export::Always,
};

/// The MX check.
#[derive(Debug, Default)]
pub struct Mx;

impl Check for Mx {
    const KIND: CheckKind = CheckKind::Mx;
    type Observation = MxObservation;
    type Memory = ();
    const FAMILIES: &'static [&'static GaugeFamily] = &[&MX_RECORDS];

    fn declared(&self, config: &DomainConfig) -> bool {
        config.expect.mx.is_some()
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, MxObservation> {
        Box::pin(observe(ctx.domain(), ctx.dns))
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &MxObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        evaluate(ctx.domain(), observation, ctx.config.expect.mx.as_ref())
    }
}

/// Turns an observation into records and findings, and (with `expect`) the MX hosts that
/// drift compares with the expected ones.
///
/// With no MX at all, or a null MX, per-host expectation findings are not repeated:
/// `mx_missing`/`mx_null` plus `drift` say it once.
pub fn evaluate(
    domain: &str,
    observation: &MxObservation,
    expect: Option<&MxExpectation>,
) -> Evaluation<()> {
    let set = match &observation.result {
        Ok(set) => set,
        Err(error) => return Evaluation::inconclusive(error),
    };
    // Sorted by (preference, host), as `set.records` is: stable for fingerprints and in
    // the order a human reads MX records ("5 ..." before "10 ...").
    let values: Vec<String> = set
        .records
        .iter()
        .map(|r| match r.exchange.as_str() {
            "" => format!("{} .", r.preference),
            host => format!("{} {host}", r.preference),
        })
        .collect();
    let records = vec![RecordObservation::new(
        "mx",
        values.clone(),
        (!values.is_empty()).then_some(set.ttl),
    )];
    let mut findings = Vec::new();
    let null = set.records.iter().any(|r| r.exchange.is_empty());
    let only_null = null && set.records.len() == 1;
    let mut observed: Vec<String> = set.hosts.iter().map(|h| h.name.clone()).collect();
    if null {
        observed.push(".".to_owned());
    }
    if set.records.is_empty() {
        let how = match set.status {
            AnswerStatus::NxDomain => "the domain does not exist (NXDOMAIN)",
            _ => "no MX records (NODATA)",
        };
        findings.push(
            Finding::new(
                FindingCode::MxMissing,
                Severity::Critical,
                format!("{domain} has no MX: {how}"),
            )
            .with("domain", domain),
        );
    } else if only_null {
        findings.push(
            Finding::new(
                FindingCode::MxNull,
                Severity::Info,
                format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
            )
            .with("records", &values),
        );
    } else if null {
        findings.push(
            Finding::new(
                FindingCode::MxNull,
                Severity::Critical,
                format!(
                    "{domain} mixes a null MX with other MX records, which RFC 7505 §3 forbids"
                ),
            )
            .with("records", &values),
        );
    }
    findings.extend(host_findings(domain, set));
    let declared = expect.map(|expect| {
        // `.` is the null MX, as `observed` writes it.
        let expected: Vec<String> = expect
            .hosts
            .iter()
            .map(|h| match h.as_str() {
                "." => ".".to_owned(),
                host => crate::dns::normalize_name(host),
            })
            .collect();
        if !set.records.is_empty() && !only_null {
            findings.extend(expectation_findings(domain, &expected, &observed));
        }
        Declared::new(expected, observed)
    });
    Evaluation::conclusive(records, findings)
        .with_declared(declared)
        .with_gauge(FamilyValues::one(&MX_RECORDS, set.records.len() as f64))
}

fn host_findings(domain: &str, set: &MxSet) -> Vec<Finding> {
    let mut out = Vec::new();
    let resolving = set.hosts.iter().filter(|h| !h.addresses.is_empty()).count();
    let unknown = set.hosts.iter().filter(|h| h.error.is_some()).count();
    let severity = if resolving == 0 && unknown == 0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    for host in &set.hosts {
        if !host.cname_chain.is_empty() {
            out.push(
                Finding::new(
                    FindingCode::MxPointsToCname,
                    Severity::Warning,
                    format!(
                        "MX host {} of {domain} is an alias (CNAME to {}); RFC 2181 §10.3 and RFC 5321 §5.1 require a host name",
                        host.name,
                        host.cname_chain.join(" → ")
                    ),
                )
                .with("host", &host.name)
                .with("cname_chain", &host.cname_chain),
            );
        }
        if host.addresses.is_empty() && host.error.is_none() {
            out.push(
                Finding::new(
                    FindingCode::MxHostUnresolvable,
                    severity,
                    format!(
                        "MX host {} of {domain} has no A or AAAA record ({resolving} of {} hosts resolve)",
                        host.name,
                        set.hosts.len()
                    ),
                )
                .with("host", &host.name)
                .with("resolving_hosts", resolving),
            );
        }
    }
    out
}

fn expectation_findings(domain: &str, expected: &[String], observed: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for host in observed.iter().filter(|h| !expected.contains(h)) {
        out.push(
            Finding::new(
                FindingCode::MxUnexpectedHost,
                Severity::Critical,
                format!("{domain} has MX host {host}, which is not expected"),
            )
            .with("host", host)
            .with("expected", expected),
        );
    }
    for host in expected.iter().filter(|h| !observed.contains(h)) {
        out.push(
            Finding::new(
                FindingCode::MxExpectedHostMissing,
                Severity::Critical,
                format!("{domain} lacks expected MX host {host}"),
            )
            .with("host", host)
            .with("observed", observed),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Registry, fixture};
    use crate::dns::fake::FakeDns;
    use std::sync::Arc;

    fn view_of(dns: Arc<dyn DnsLookup>) -> DnsView {
        DnsView::new(dns.clone(), dns)
    }

    #[tokio::test]
    async fn fixture_cases() {
        let cases = fixture::load("mx.yaml");
        assert!(cases.len() >= 12, "only {} cases", cases.len());
        let mut failures = Vec::new();
        for case in &cases {
            let setup = case.setup(Registry::empty().with(Mx));
            let run = setup.observe().await;
            let report = setup.evaluate(&run);
            for problem in case.mismatches(&report) {
                failures.push(format!("{}: {problem}", case.name));
            }
            let count = run.observation::<Mx>().and_then(|o| o.record_count());
            let gauge = fixture::gauge(&report, &MX_RECORDS).map(|g| g.samples[0].1);
            if report.success != count.is_some() || gauge != count.map(|c| c as f64) {
                failures.push(format!(
                    "{}: record_count or maildrift_mx_records disagrees with success",
                    case.name
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn cname_chain_in_the_address_answer_is_used() {
        let dns = FakeDns::new();
        dns.mx("example.com", &[(10, "alias.example.com")]);
        let mut answer = Answer::records(vec![RData::A("192.0.2.1".parse().unwrap())], 60);
        answer.cname_chain = vec!["real.example.net".to_owned()];
        let dns = Arc::new(dns);
        let view = DnsView::new(dns.clone(), Arc::new(Chained(answer)));
        let observation = observe("example.com", &view).await;
        assert_eq!(observation.record_count(), Some(1));
        let report = evaluate("example.com", &observation, None);
        let codes: Vec<_> = report.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec![FindingCode::MxPointsToCname]);
        assert_eq!(
            report.findings[0].evidence["cname_chain"][0],
            "real.example.net"
        );
        assert_eq!(report.records[0].values, vec!["10 alias.example.com"]);
        assert_eq!(report.records[0].ttl, Some(300));
    }

    #[tokio::test]
    async fn host_addresses_are_asked_concurrently() {
        let dns = FakeDns::new();
        dns.mx(
            "example.com",
            &[(10, "mx1.example.com"), (20, "mx2.example.com")],
        )
        .a("mx1.example.com", &["192.0.2.1"])
        .a("mx2.example.com", &["192.0.2.2"]);
        let gated = [
            ("mx1.example.com", RecordType::A),
            ("mx2.example.com", RecordType::A),
            ("mx2.example.com", RecordType::Aaaa),
        ];
        let view = view_of(Arc::new(fixture::GatedDns::new(dns, &gated)));
        let observe = observe("example.com", &view);
        let observation = tokio::time::timeout(std::time::Duration::from_secs(5), observe)
            .await
            .expect("host lookups were asked one after another");
        let hosts = &observation.result.as_ref().unwrap().hosts;
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            hosts[1].addresses,
            vec!["192.0.2.2".parse::<IpAddr>().unwrap()]
        );
    }

    /// Answers every A question with one fixed answer, everything else NODATA.
    struct Chained(Answer);

    impl DnsLookup for Chained {
        fn lookup<'a>(
            &'a self,
            _name: &'a str,
            rtype: RecordType,
        ) -> futures::future::BoxFuture<'a, crate::dns::LookupResult> {
            let answer = match rtype {
                RecordType::A => self.0.clone(),
                _ => Answer::empty(AnswerStatus::NoData),
            };
            Box::pin(std::future::ready(Ok(answer)))
        }
    }
}
