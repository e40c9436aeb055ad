//! Test fixtures for the check modules: YAML cases under `tests/fixtures/checks/` turned
//! into a [`FakeDns`], run through the seam exactly as the daemon runs a domain, and
//! compared with the [`CheckReport`].

use super::run::{Known, Run};
use super::{CheckReport, FamilyValues, GaugeFamily, Memory, Registry};
use crate::config::{
    DkimExpectation, DmarcExpectation, DomainConfig, GlobalConfig, MxExpectation, SpfExpectation,
};
use crate::dns::fake::FakeDns;
use crate::dns::{DnsError, DnsView, RData, RecordType};
use crate::finding::CheckKind;
use crate::kind_map::KindMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One table-driven case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    /// Shown when the case fails.
    pub(crate) name: String,
    /// The domain checked.
    pub(crate) domain: String,
    /// Records by owner name.
    #[serde(default)]
    pub(crate) dns: BTreeMap<String, Zone>,
    /// Questions that time out (or fail with `rcode`).
    #[serde(default)]
    pub(crate) fail: Vec<Failure>,
    /// The expectation, if any.
    pub(crate) expect: Option<Expect>,
    /// Exact multiset of findings, each `code:severity`.
    #[serde(default)]
    pub(crate) findings: Vec<String>,
    /// Expected `success` (default true).
    #[serde(default = "yes")]
    pub(crate) success: bool,
    /// SPF: expected DNS lookup count.
    pub(crate) lookups: Option<u32>,
    /// SPF: expected void lookup count.
    pub(crate) void: Option<u32>,
    /// SPF: expected authorised networks, sorted.
    pub(crate) networks: Option<Vec<String>>,
    /// Expected values of the first RecordObservation.
    pub(crate) records: Option<Vec<String>>,
    /// Expected `from`/`to` of the drift finding.
    pub(crate) drift: Option<DriftFixture>,
    /// What the previous run remembered (DMARC policy, SPF address set, MTA-STS id).
    #[serde(default)]
    pub(crate) previous: PreviousFixture,
    /// Check-specific expected values (e.g. DKIM key bits per selector, check_host results).
    #[serde(default)]
    pub(crate) want: BTreeMap<String, serde_json::Value>,
    /// DNSBL: the blocklist settings (`defaults.dnsbl`).
    pub(crate) dnsbl: Option<DnsblFixture>,
}

/// `defaults.dnsbl` of a DNSBL case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsblFixture {
    pub(crate) zones: Vec<String>,
    #[serde(default)]
    pub(crate) spf_networks: bool,
    pub(crate) spf_max_addresses: Option<usize>,
}

/// The remembered state of a previous run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviousFixture {
    pub(crate) dmarc_policy: Option<String>,
    pub(crate) spf_ipset: Option<Vec<String>>,
    pub(crate) mta_sts_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// Records of one owner name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub(crate) struct Zone {
    #[serde(default)]
    TXT: Option<Vec<String>>,
    #[serde(default)]
    A: Option<Vec<String>>,
    #[serde(default)]
    AAAA: Option<Vec<String>>,
    #[serde(default)]
    MX: Option<Vec<(u16, String)>>,
    #[serde(default)]
    CNAME: Option<String>,
    #[serde(default)]
    PTR: Option<Vec<String>>,
}

/// A question that fails.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Failure {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    /// e.g. "SERVFAIL"; a timeout when absent.
    rcode: Option<String>,
}

/// The expectation, MX or SPF fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    includes: Vec<String>,
    all: Option<String>,
    #[serde(default)]
    authorizes: Vec<std::net::IpAddr>,
    policy: Option<String>,
    selectors: Option<Vec<String>>,
    /// SPF: the exact record.
    record: Option<String>,
}

/// Expected drift evidence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftFixture {
    from: Vec<String>,
    to: Vec<String>,
}

fn rtype(text: &str) -> RecordType {
    match text {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "MX" => RecordType::Mx,
        "TXT" => RecordType::Txt,
        "CNAME" => RecordType::Cname,
        "PTR" => RecordType::Ptr,
        other => panic!("unknown record type {other:?} in fixture"),
    }
}

/// Reads a fixture file from `tests/fixtures/checks/`.
pub(crate) fn load(file: &str) -> Vec<Case> {
    let path = format!(
        "{}/tests/fixtures/checks/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl Case {
    /// The fake DNS holding this case's records.
    pub(crate) fn fake_dns(&self) -> FakeDns {
        let dns = FakeDns::new();
        for (name, zone) in &self.dns {
            // Makes the name exist, so that types it lacks are NODATA, not NXDOMAIN.
            dns.set(name, RecordType::Soa, Vec::new());
            if let Some(txt) = &zone.TXT {
                dns.txt(name, &txt.iter().map(String::as_str).collect::<Vec<_>>());
            }
            if let Some(a) = &zone.A {
                dns.a(name, &a.iter().map(String::as_str).collect::<Vec<_>>());
            }
            if let Some(aaaa) = &zone.AAAA {
                let records = aaaa.iter().map(|ip| RData::Aaaa(ip.parse().unwrap()));
                dns.set(name, RecordType::Aaaa, records.collect());
            }
            if let Some(mx) = &zone.MX {
                let pairs: Vec<(u16, &str)> = mx.iter().map(|(p, h)| (*p, h.as_str())).collect();
                dns.mx(name, &pairs);
            }
            if let Some(names) = &zone.PTR {
                let records = names
                    .iter()
                    .map(|n| RData::Ptr(crate::dns::normalize_name(n)));
                dns.set(name, RecordType::Ptr, records.collect());
            }
            if let Some(target) = &zone.CNAME {
                let target = crate::dns::normalize_name(target);
                dns.set(name, RecordType::Cname, vec![RData::Cname(target)]);
            }
        }
        for failure in &self.fail {
            let (name, rtype) = (failure.name.clone(), rtype(&failure.rtype));
            let error = match &failure.rcode {
                Some(rcode) => DnsError::Rcode {
                    server: "fake".to_owned(),
                    name,
                    rtype,
                    rcode: rcode.clone(),
                },
                None => DnsError::Timeout {
                    server: "fake".to_owned(),
                    name,
                    rtype,
                },
            };
            dns.fail(&failure.name, rtype, error);
        }
        dns
    }

    /// The SPF expectation, when the case has one.
    pub(crate) fn spf_expectation(&self) -> Option<SpfExpectation> {
        self.expect.as_ref().map(|e| SpfExpectation {
            includes: e.includes.clone(),
            all: e.all.clone(),
            authorizes: e
                .authorizes
                .iter()
                .map(|&ip| crate::config::AuthorizedSender {
                    ip,
                    sender: None,
                    helo: None,
                })
                .collect(),
            record: e.record.clone(),
        })
    }

    /// The DMARC expectation, when the case has one with a policy.
    pub(crate) fn dmarc_expectation(&self) -> Option<DmarcExpectation> {
        let policy = self.expect.as_ref()?.policy.clone()?;
        Some(DmarcExpectation { policy })
    }

    /// The DKIM expectation, when the case has one with selectors.
    pub(crate) fn dkim_expectation(&self) -> Option<DkimExpectation> {
        let selectors = self.expect.as_ref()?.selectors.clone()?;
        Some(DkimExpectation { selectors })
    }

    /// The MX expectation, when the case has one.
    pub(crate) fn mx_expectation(&self) -> Option<MxExpectation> {
        self.expect.as_ref().map(|e| MxExpectation {
            hosts: e.hosts.clone(),
        })
    }

    /// The domain's configuration: the case's expectation declared for `check` only.
    pub(crate) fn config(&self, check: CheckKind) -> DomainConfig {
        let mut config = DomainConfig::new(&self.domain);
        match check {
            CheckKind::Mx => config.expect.mx = self.mx_expectation(),
            CheckKind::Spf => config.expect.spf = self.spf_expectation(),
            CheckKind::Dmarc => config.expect.dmarc = self.dmarc_expectation(),
            CheckKind::Dkim => config.expect.dkim = self.dkim_expectation(),
            CheckKind::Dnsbl => {
                config.expect.spf = self.spf_expectation();
                if let Some(dnsbl) = &self.dnsbl {
                    let settings = &mut Arc::make_mut(&mut config.analysis).dnsbl;
                    settings.zones.clone_from(&dnsbl.zones);
                    settings.spf_networks = dnsbl.spf_networks;
                    if let Some(max) = dnsbl.spf_max_addresses {
                        settings.spf_max_addresses = max;
                    }
                }
            }
            _ => {}
        }
        config
    }

    /// What the previous run remembered, as each check keeps it.
    pub(crate) fn memory(&self) -> KindMap<Memory> {
        let mut memory: KindMap<Memory> = KindMap::new();
        let previous = &self.previous;
        if let Some(policy) = previous
            .dmarc_policy
            .as_deref()
            .and_then(super::dmarc::DmarcPolicy::parse)
        {
            memory.insert(CheckKind::Dmarc, Arc::new(policy));
        }
        if let Some(ipset) = &previous.spf_ipset {
            memory.insert(CheckKind::Spf, Arc::new(ipset.clone()));
        }
        if let Some(id) = &previous.mta_sts_id {
            memory.insert(CheckKind::MtaSts, Arc::new(id.clone()));
        }
        memory
    }

    /// Everything a run of `registry` on this case needs; the first check of the registry
    /// is the one under test.
    pub(crate) fn setup(&self, registry: Registry) -> Setup {
        let check = registry.kinds().next().expect("a registry with a check");
        Setup {
            config: self.config(check),
            view: DnsView::new(Arc::new(self.fake_dns()), Arc::new(self.fake_dns())),
            global: GlobalConfig::default(),
            memory: self.memory(),
            check,
            registry,
        }
    }

    /// Compares the report with the case's expectations; one line per mismatch.
    pub(crate) fn mismatches(&self, report: &impl Outcome) -> Vec<String> {
        let report = report.outcome();
        let mut out = Vec::new();
        let mut got: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{}:{}", f.code, f.severity))
            .collect();
        got.sort();
        let mut want = self.findings.clone();
        want.sort();
        if got != want {
            let messages: Vec<&str> = report.findings.iter().map(|f| f.message.as_str()).collect();
            out.push(format!("findings {got:?}, want {want:?} ({messages:#?})"));
        }
        if report.success != self.success {
            out.push(format!(
                "success {}, want {} ({:?})",
                report.success, self.success, report.error
            ));
        }
        if !report.success && (report.error.is_none() || !report.records.is_empty()) {
            out.push("an unsuccessful report needs an error and no records".to_owned());
        }
        if let Some(want) = &self.records {
            let got = report
                .records
                .first()
                .map(|r| r.values.clone())
                .unwrap_or_default();
            if &got != want {
                out.push(format!("records {got:?}, want {want:?}"));
            }
        }
        if let Some(want) = &self.drift {
            match report.findings.iter().find(|f| f.code.as_str() == "drift") {
                Some(f) => {
                    let (from, to) = (&f.evidence["from"], &f.evidence["to"]);
                    if *from != serde_json::json!(want.from) || *to != serde_json::json!(want.to) {
                        out.push(format!(
                            "drift {from} → {to}, want {:?} → {:?}",
                            want.from, want.to
                        ));
                    }
                }
                None => out.push("no drift finding".to_owned()),
            }
        }
        out
    }
}

/// A [`FakeDns`] whose answers for `gated` questions are held until all of them have been
/// asked: a serial caller never gets past the first, so tests prove lookups are concurrent.
pub(crate) struct GatedDns {
    /// The answers.
    pub(crate) inner: FakeDns,
    /// Questions held at the barrier.
    pub(crate) gated: Vec<(String, RecordType)>,
    /// Sized to `gated.len()`.
    pub(crate) barrier: tokio::sync::Barrier,
}

impl GatedDns {
    /// Gates `gated` on `inner`.
    pub(crate) fn new(inner: FakeDns, gated: &[(&str, RecordType)]) -> GatedDns {
        GatedDns {
            inner,
            gated: gated.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect(),
            barrier: tokio::sync::Barrier::new(gated.len()),
        }
    }
}

impl crate::dns::DnsLookup for GatedDns {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        rtype: RecordType,
    ) -> futures::future::BoxFuture<'a, crate::dns::LookupResult> {
        Box::pin(async move {
            if self.gated.contains(&(name.to_owned(), rtype)) {
                self.barrier.wait().await;
            }
            self.inner.lookup(name, rtype).await
        })
    }
}

/// What a case compares: a [`CheckReport`], or the [`Evaluation`] of a check module's own
/// `evaluate` (tests that call it directly).
pub(crate) trait Outcome {
    /// The parts compared.
    fn outcome(&self) -> OutcomeParts<'_>;
}

/// See [`Outcome`].
pub(crate) struct OutcomeParts<'a> {
    pub(crate) success: bool,
    pub(crate) error: &'a Option<String>,
    pub(crate) records: &'a [super::RecordObservation],
    pub(crate) findings: &'a [crate::finding::Finding],
}

impl Outcome for CheckReport {
    fn outcome(&self) -> OutcomeParts<'_> {
        OutcomeParts {
            success: self.success,
            error: &self.error,
            records: &self.records,
            findings: &self.findings,
        }
    }
}

impl<M> Outcome for super::Evaluation<M> {
    fn outcome(&self) -> OutcomeParts<'_> {
        OutcomeParts {
            success: self.success,
            error: &self.error,
            records: &self.records,
            findings: &self.findings,
        }
    }
}

/// A case ready to run through the seam (see [`Case::setup`]).
pub(crate) struct Setup {
    /// The check under test and what it needs.
    pub(crate) registry: Registry,
    /// The check under test.
    pub(crate) check: CheckKind,
    /// The domain, the case's expectation declared.
    pub(crate) config: DomainConfig,
    /// The case's records.
    pub(crate) view: DnsView,
    /// Defaults.
    pub(crate) global: GlobalConfig,
    /// The previous run's memory.
    pub(crate) memory: KindMap<Memory>,
}

impl Setup {
    /// Observes, as the daemon does (no learned baseline, the case's memory).
    pub(crate) async fn observe(&self) -> Run<'_> {
        let known = Known {
            baselines: None,
            memory: Some(&self.memory),
        };
        Run::observe(
            &self.registry,
            &self.config,
            &self.view,
            &self.global,
            known,
        )
        .await
    }

    /// Evaluates the check under test and judges its drift.
    pub(crate) fn evaluate(&self, run: &Run<'_>) -> CheckReport {
        let report = run.evaluate();
        report
            .checks
            .into_iter()
            .find(|c| c.check == self.check)
            .expect("the check under test ran")
    }

    /// Observes and evaluates.
    pub(crate) async fn report(&self) -> CheckReport {
        let run = self.observe().await;
        self.evaluate(&run)
    }
}

/// The samples of `family` in `report`, when the run knew them.
pub(crate) fn gauge<'r>(
    report: &'r CheckReport,
    family: &'static GaugeFamily,
) -> Option<&'r FamilyValues> {
    report
        .gauges
        .iter()
        .find(|g| std::ptr::eq(g.family, family))
}
