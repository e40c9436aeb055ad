//! BIMI check: the assertion record at `<selector>._bimi.<domain>` (`default` and the
//! selectors of `defaults.bimi.selectors`), its logo fetched over HTTPS and checked as SVG
//! Tiny PS in its basics, and the DMARC policy BIMI requires (`p=quarantine` or `reject`,
//! `pct=100`).
//!
//! Decisions:
//! - no BIMI record, or a declination (`l=` empty), is not a finding;
//! - the logo's host is resolved through maildrift's resolvers and fetched within
//!   `defaults.bimi.timeout`, at most 128 KiB, following at most three redirects and only to
//!   `https:` URLs; a DNS failure on the way is unknown (the check inconclusive), an HTTP
//!   failure is `bimi_logo_unreachable` (warning: receivers show no logo);
//! - `bimi_invalid` (warning): the record's syntax, or a logo that is not SVG Tiny PS (its
//!   problems listed), larger than 32 KiB or not served as `image/svg+xml`; the VMC named by
//!   `a=` is checked for its syntax only;
//! - `bimi_dmarc_not_enforced`: warning when a logo is published while DMARC is missing,
//!   `p=none` or `pct` below 100; info for `sp=none` (subdomains show no logo);
//! - the records are the check's values (learned baseline, drift like the other records).

mod record;
mod svg;
#[cfg(test)]
mod tests;

pub use record::{BimiRecord, HttpsUrl, is_bimi};
pub use svg::problems as svg_problems;

use super::dmarc::{Dmarc, DmarcObservation, DmarcPolicy};
use super::https::{self, Get};
use super::{Check, Context, Evaluation, Input, RecordObservation};
use crate::config::BimiSettings;
use crate::dns::{DnsError, DnsLookup, DnsView, RData, RecordType, normalize_name};
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::BoxFuture;

/// Largest logo BIMI accepts.
pub const MAX_LOGO_BYTES: usize = 32 * 1024;
/// Largest body fetched (a larger one is reported as unreachable).
const MAX_FETCH_BYTES: usize = 4 * MAX_LOGO_BYTES;
/// Redirects followed.
const MAX_REDIRECTS: usize = 3;

/// What became of a logo fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Logo {
    /// Fetched (after any redirects).
    Fetched {
        /// The URL that answered.
        url: String,
        /// Its `Content-Type`.
        content_type: String,
        /// The body.
        body: Vec<u8>,
    },
    /// Not fetched: why.
    Unreachable(String),
}

/// What one selector publishes.
#[derive(Clone, Debug)]
pub struct SelectorView {
    /// The selector.
    pub selector: String,
    /// TXT records at `<selector>._bimi.<domain>` meant as BIMI.
    pub records: Vec<String>,
    /// TTL of that answer.
    pub ttl: Option<u32>,
    /// The parsed record, when there is exactly one.
    pub record: Option<Result<BimiRecord, String>>,
    /// The logo, when the record names one.
    pub logo: Option<Logo>,
}

/// What was seen of a domain's BIMI.
#[derive(Clone, Debug)]
pub struct BimiObservation {
    /// The domain, normalised.
    pub domain: String,
    /// Per selector, or the first DNS lookup that was inconclusive.
    pub result: Result<Vec<SelectorView>, DnsError>,
}

/// The BIMI check.
#[derive(Debug, Default)]
pub struct Bimi;

impl Check for Bimi {
    const KIND: CheckKind = CheckKind::Bimi;
    type Observation = BimiObservation;
    type Memory = ();
    const NEEDS: &'static [CheckKind] = &[CheckKind::Dmarc];

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, BimiObservation> {
        let settings = &ctx.config.analysis.bimi;
        Box::pin(observe_with(
            ctx.domain(),
            ctx.dns,
            &settings.selectors,
            |url| fetch_logo(ctx.dns.recursive.as_ref(), url, settings),
        ))
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &BimiObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        let Some(dmarc) = ctx.observation::<Dmarc>() else {
            return Evaluation::inconclusive("the DMARC observation is missing");
        };
        evaluate(observation, &dmarc)
    }
}

/// Reads `default._bimi.<domain>` and each of `selectors` from the zone; fetches each
/// logo with `fetch` (a DNS failure while resolving its host is `Err`).
pub async fn observe_with<F, Fut>(
    domain: &str,
    view: &DnsView,
    selectors: &[String],
    fetch: F,
) -> BimiObservation
where
    F: Fn(HttpsUrl) -> Fut,
    Fut: Future<Output = Result<Logo, DnsError>>,
{
    let domain = normalize_name(domain);
    let mut views = Vec::new();
    let names = std::iter::once("default").chain(selectors.iter().map(String::as_str));
    for selector in names {
        match observe_selector(&domain, selector, view, &fetch).await {
            Ok(found) => views.push(found),
            Err(error) => {
                return BimiObservation {
                    domain,
                    result: Err(error),
                };
            }
        }
    }
    BimiObservation {
        domain,
        result: Ok(views),
    }
}

async fn observe_selector<F, Fut>(
    domain: &str,
    selector: &str,
    view: &DnsView,
    fetch: &F,
) -> Result<SelectorView, DnsError>
where
    F: Fn(HttpsUrl) -> Fut,
    Fut: Future<Output = Result<Logo, DnsError>>,
{
    let name = format!("{selector}._bimi.{domain}");
    let answer = view.zone.lookup(&name, RecordType::Txt).await?;
    let records: Vec<String> = answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::Txt(text) if is_bimi(text) => Some(text.trim().to_owned()),
            _ => None,
        })
        .collect();
    let record = match records.as_slice() {
        [one] => Some(BimiRecord::parse(one)),
        _ => None,
    };
    let logo = match &record {
        Some(Ok(BimiRecord {
            logo: Some(url), ..
        })) => Some(fetch(url.clone()).await?),
        _ => None,
    };
    Ok(SelectorView {
        selector: selector.to_owned(),
        ttl: (!records.is_empty()).then_some(answer.ttl),
        records,
        record,
        logo,
    })
}

/// Fetches a logo through maildrift's resolvers, following redirects to `https:` URLs.
pub async fn fetch_logo(
    dns: &dyn DnsLookup,
    url: HttpsUrl,
    settings: &BimiSettings,
) -> Result<Logo, DnsError> {
    let seconds = settings.timeout.as_secs_f64();
    match tokio::time::timeout(settings.timeout, follow(dns, url, settings)).await {
        Ok(result) => result,
        Err(_) => Ok(Logo::Unreachable(format!(
            "no complete answer within {seconds} s"
        ))),
    }
}

async fn follow(
    dns: &dyn DnsLookup,
    mut url: HttpsUrl,
    settings: &BimiSettings,
) -> Result<Logo, DnsError> {
    for _ in 0..=MAX_REDIRECTS {
        let addresses = https::resolve(dns, &url.host).await?;
        if addresses.is_empty() {
            return Ok(Logo::Unreachable(format!(
                "{} has no A or AAAA record",
                url.host
            )));
        }
        let get = Get {
            host: &url.host,
            addresses: &addresses,
            port: url.port,
            path: &url.path,
            ca_file: settings.ca_file.as_deref(),
            max_bytes: MAX_FETCH_BYTES,
            timeout: settings.timeout,
        };
        let response = match get.send().await {
            Ok(response) => response,
            Err(error) => return Ok(Logo::Unreachable(error.to_string())),
        };
        let next = match (response.status, response.location) {
            (200, _) => {
                return Ok(Logo::Fetched {
                    url: url.url,
                    content_type: response.content_type,
                    body: response.body,
                });
            }
            (300..=399, Some(location)) if location.starts_with('/') => HttpsUrl {
                url: format!("https://{}:{}{location}", url.host, url.port),
                path: location,
                ..url
            },
            (300..=399, Some(location)) => match HttpsUrl::parse(&location) {
                Ok(next) => next,
                Err(_) => {
                    return Ok(Logo::Unreachable(format!(
                        "{} redirects outside https: to {location:?}",
                        url.url
                    )));
                }
            },
            (status, _) => {
                return Ok(Logo::Unreachable(format!(
                    "{}: HTTP status {status}, expected 200",
                    url.url
                )));
            }
        };
        url = next;
    }
    Ok(Logo::Unreachable(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

fn finding(code: FindingCode, severity: Severity, name: &str, message: String) -> Finding {
    Finding::new(code, severity, message).with("name", name)
}

/// The findings of one selector's record and logo.
fn judge_selector(domain: &str, view: &SelectorView) -> Vec<Finding> {
    let name = format!("{}._bimi.{domain}", view.selector);
    let invalid = |message: String| {
        finding(FindingCode::BimiInvalid, Severity::Warning, &name, message)
            .with("records", &view.records)
    };
    match (&view.record, &view.logo) {
        (None, _) if view.records.len() > 1 => vec![invalid(format!(
            "{domain} publishes {} BIMI records at {name}; receivers ignore them",
            view.records.len()
        ))],
        (Some(Err(error)), _) => vec![invalid(format!(
            "the BIMI record at {name} is invalid, receivers ignore it: {error}"
        ))],
        (_, Some(Logo::Unreachable(why))) => vec![
            finding(
                FindingCode::BimiLogoUnreachable,
                Severity::Warning,
                &name,
                format!("the BIMI logo of {domain} cannot be fetched, receivers show none: {why}"),
            )
            .with("records", &view.records),
        ],
        (
            _,
            Some(Logo::Fetched {
                url,
                content_type,
                body,
            }),
        ) => {
            let mut problems = svg::problems(body);
            if body.len() > MAX_LOGO_BYTES {
                problems.push(format!(
                    "the logo is {} bytes, more than BIMI's {MAX_LOGO_BYTES}",
                    body.len()
                ));
            }
            if !content_type.starts_with("image/svg+xml") {
                problems.push(format!("served as {content_type:?}, not image/svg+xml"));
            }
            if problems.is_empty() {
                return Vec::new();
            }
            vec![
                invalid(format!(
                    "the BIMI logo of {domain} ({url}) is not a valid SVG Tiny PS logo: {}",
                    problems.join("; ")
                ))
                .with("url", url)
                .with("problems", &problems),
            ]
        }
        _ => Vec::new(),
    }
}

/// Whether DMARC lets receivers show the logo; the finding when not.
fn dmarc_finding(domain: &str, dmarc: &DmarcObservation) -> Result<Option<Finding>, String> {
    let set = dmarc.result.as_ref().map_err(|e| {
        format!("DMARC of {domain} unknown ({e}), so BIMI eligibility cannot be judged")
    })?;
    let name = format!("_dmarc.{domain}");
    let warning = |why: String| {
        Some(finding(
            FindingCode::BimiDmarcNotEnforced,
            Severity::Warning,
            &name,
            format!(
                "{domain} publishes a BIMI logo but {why}: receivers show no logo without p=quarantine or p=reject at pct=100"
            ),
        ))
    };
    Ok(match &set.parsed {
        Some(Ok(record)) if record.policy == DmarcPolicy::None => {
            warning("its DMARC policy is p=none".to_owned())
        }
        Some(Ok(record)) if record.pct < 100 => warning(format!(
            "its DMARC policy applies to pct={} only",
            record.pct
        )),
        Some(Ok(record)) if record.subdomain_policy == Some(DmarcPolicy::None) => Some(finding(
            FindingCode::BimiDmarcNotEnforced,
            Severity::Info,
            &name,
            format!(
                "the DMARC record of {domain} says sp=none: its subdomains cannot show the BIMI logo"
            ),
        )),
        Some(Ok(_)) => None,
        _ => warning("it has no single valid DMARC record".to_owned()),
    })
}

/// Turns an observation into records and findings; `dmarc` is the DMARC observation of the
/// same run.
pub fn evaluate(observation: &BimiObservation, dmarc: &DmarcObservation) -> Evaluation<()> {
    let views = match &observation.result {
        Ok(views) => views,
        Err(error) => return Evaluation::inconclusive(error),
    };
    let domain = &observation.domain;
    let mut values = Vec::new();
    let mut findings = Vec::new();
    let mut ttl: Option<u32> = None;
    let mut logo_published = false;
    for view in views {
        values.extend(
            view.records
                .iter()
                .map(|r| format!("{}: {r}", view.selector)),
        );
        if let Some(t) = view.ttl {
            ttl = Some(ttl.map_or(t, |m| m.min(t)));
        }
        logo_published |= matches!(&view.record, Some(Ok(BimiRecord { logo: Some(_), .. })));
        findings.extend(judge_selector(domain, view));
    }
    if logo_published {
        match dmarc_finding(domain, dmarc) {
            Ok(found) => findings.extend(found),
            Err(error) => return Evaluation::inconclusive(error),
        }
    }
    values.sort();
    let records = vec![RecordObservation::new("bimi", values, ttl)];
    Evaluation::conclusive(records, findings)
}
