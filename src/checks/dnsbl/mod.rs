//! DNSBL check (RFC 5782): the addresses that receive and send the domain's mail, asked in
//! each blocklist zone of `defaults.dnsbl.zones` (none by default: most lists need a key or
//! forbid commercial use without one).
//!
//! Decisions:
//! - asked: the IPv4 and IPv6 addresses of the MX hosts (from the MX check's observation)
//!   and of `expect.spf.authorizes`; with `spf_networks: true` also each single address
//!   (`/32`, `/128`) the flattened SPF record authorizes, at most `spf_max_addresses`;
//! - each (address, zone) is asked once per round for every domain using the address
//!   ([`memo`]): its series `maildrift_dnsbl_listed{zone,address}` is a shared object,
//!   exported once and only while listed;
//! - a listing of an MX host or of an authorized sender is critical (mail is refused);
//!   of another SPF address a warning;
//! - a refusal (`127.255.255.x`), an answer outside 127/8 or a DNS failure makes the check
//!   unknown with that reason: it is never a listing, and never hides one as "not listed";
//! - a listing is a finding, not drift: nothing is compared with a learned baseline.

mod lookup;
mod memo;

pub use lookup::{Listing, query_name};

use super::mx::Mx;
use super::spf::Spf;
use super::{Check, Context, Evaluation, Input, RecordObservation, SharedFamily, SharedValues};
use crate::config::DomainConfig;
use crate::finding::{CheckKind, Finding, FindingCode, Severity};
use futures::future::BoxFuture;
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;

/// `maildrift_dnsbl_listed{zone,address}`: 1 for each listed pair, once however many domains
/// use the address; absent when not listed.
pub static LISTED: SharedFamily = SharedFamily {
    name: "maildrift_dnsbl_listed",
    help: "1 while the address is listed in the DNS blocklist zone (only listed pairs are exported).",
    labels: &["zone", "address"],
};

/// Why an address is asked about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "role", content = "from", rename_all = "snake_case")]
pub enum Role {
    /// An address of this MX host.
    Mx(String),
    /// Listed in `expect.spf.authorizes`.
    Authorized,
    /// A single address the SPF record authorizes (this term).
    Spf(String),
}

impl Role {
    /// MX hosts and authorized senders carry the domain's mail: a listing is critical.
    fn severity(&self) -> Severity {
        match self {
            Role::Mx(_) | Role::Authorized => Severity::Critical,
            Role::Spf(_) => Severity::Warning,
        }
    }

    fn describe(&self) -> String {
        match self {
            Role::Mx(host) => format!("MX host {host}"),
            Role::Authorized => "authorized sender".to_owned(),
            Role::Spf(term) => format!("SPF {term}"),
        }
    }
}

/// One address asked in one zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Asked {
    /// The address.
    pub address: IpAddr,
    /// Why it is asked (strongest first).
    pub roles: Vec<Role>,
    /// The blocklist zone.
    pub zone: String,
    /// What the zone said.
    pub listing: Listing,
}

/// What was seen of a domain's addresses in the blocklists.
#[derive(Clone, Debug)]
pub struct DnsblObservation {
    /// The domain checked.
    pub domain: String,
    /// Every pair asked, or why the addresses are unknown (the MX or SPF observation).
    pub result: Result<Vec<Asked>, String>,
}

/// The DNSBL check. It keeps, across domains, the pairs asked this round.
#[derive(Debug, Default)]
pub struct Dnsbl {
    memo: memo::DnsblMemo,
}

impl Check for Dnsbl {
    const KIND: CheckKind = CheckKind::Dnsbl;
    type Observation = DnsblObservation;
    type Memory = ();
    const NEEDS: &'static [CheckKind] = &[CheckKind::Mx];
    const SHARED_FAMILIES: &'static [&'static SharedFamily] = &[&LISTED];

    /// Listings are findings; nothing is compared with a baseline.
    fn declared(&self, _config: &DomainConfig) -> bool {
        true
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, DnsblObservation> {
        Box::pin(async move {
            let domain = ctx.domain().to_owned();
            let settings = &ctx.config.analysis.dnsbl;
            if settings.zones.is_empty() {
                return DnsblObservation {
                    domain,
                    result: Ok(Vec::new()),
                };
            }
            let targets = match targets(ctx).await {
                Ok(targets) => targets,
                Err(error) => {
                    return DnsblObservation {
                        domain,
                        result: Err(error),
                    };
                }
            };
            let max_age = memo::DnsblMemo::max_age(ctx.config.interval);
            let dns = ctx.dns.recursive.as_ref();
            let questions = targets.iter().flat_map(|(address, roles)| {
                settings.zones.iter().map(move |zone| async move {
                    let listing = self
                        .memo
                        .listing(*address, zone, max_age, || lookup::ask(dns, *address, zone))
                        .await;
                    Asked {
                        address: *address,
                        roles: roles.clone(),
                        zone: zone.clone(),
                        listing,
                    }
                })
            });
            DnsblObservation {
                domain,
                result: Ok(futures::future::join_all(questions).await),
            }
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &DnsblObservation,
        _input: Input<'_, ()>,
    ) -> Evaluation<()> {
        evaluate(ctx.domain(), observation)
    }
}

/// The addresses to ask about, each with why, sorted by address.
async fn targets(ctx: &Context<'_>) -> Result<Vec<(IpAddr, Vec<Role>)>, String> {
    let mut targets: Vec<(IpAddr, Role)> = Vec::new();
    let mx = ctx
        .observed::<Mx>()
        .await
        .ok_or("the MX observation is missing")?;
    let set = mx.result.as_ref().map_err(|e| e.to_string())?;
    for host in &set.hosts {
        if let Some(error) = &host.error {
            return Err(format!(
                "the addresses of MX host {} are unknown: {error}",
                host.name
            ));
        }
        targets.extend(
            host.addresses
                .iter()
                .map(|ip| (*ip, Role::Mx(host.name.clone()))),
        );
    }
    if let Some(spf) = &ctx.config.expect.spf {
        targets.extend(spf.authorizes.iter().map(|s| (s.ip, Role::Authorized)));
    }
    let settings = &ctx.config.analysis.dnsbl;
    if settings.spf_networks {
        let spf = ctx
            .observed::<Spf>()
            .await
            .ok_or("the SPF observation is missing (skipped, or it did not finish)")?;
        if let Some(error) = &spf.error {
            return Err(error.to_string());
        }
        let singles = spf
            .networks
            .iter()
            .filter(|n| n.qualifier == '+')
            .filter_map(|n| {
                let (ip, len) = n.network.split_once('/')?;
                let ip: IpAddr = ip.parse().ok()?;
                let single = (ip.is_ipv4() && len == "32") || (ip.is_ipv6() && len == "128");
                single.then(|| (ip, Role::Spf(n.term.clone())))
            });
        let mut seen = Vec::new();
        for (ip, role) in singles {
            if !seen.contains(&ip) && seen.len() < settings.spf_max_addresses {
                seen.push(ip);
                targets.push((ip, role));
            }
        }
    }
    targets.sort();
    let mut out: Vec<(IpAddr, Vec<Role>)> = Vec::new();
    for (ip, role) in targets {
        match out.last_mut() {
            Some((last, roles)) if *last == ip => {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            _ => out.push((ip, vec![role])),
        }
    }
    Ok(out)
}

/// Findings, the `dnsbl` record set (the listed pairs) and the shared series.
pub fn evaluate(domain: &str, observation: &DnsblObservation) -> Evaluation<()> {
    let asked = match &observation.result {
        Ok(asked) => asked,
        Err(error) => return Evaluation::inconclusive(error),
    };
    if let Some((pair, why)) = asked.iter().find_map(|a| match &a.listing {
        Listing::Unknown(why) => Some((a, why)),
        _ => None,
    }) {
        return Evaluation::inconclusive(format!("{} in {}: {why}", pair.address, pair.zone));
    }
    let mut findings = Vec::new();
    let mut values = Vec::new();
    let mut shared = Vec::new();
    for pair in asked {
        let listed = matches!(pair.listing, Listing::Listed { .. });
        shared.push(SharedValues {
            family: &LISTED,
            object: format!("{} {}", pair.zone, pair.address),
            samples: if listed {
                let labels = vec![
                    Cow::Owned(pair.zone.clone()),
                    Cow::Owned(pair.address.to_string()),
                ];
                vec![(labels, 1.0)]
            } else {
                Vec::new()
            },
        });
        let Listing::Listed { codes, reason } = &pair.listing else {
            continue;
        };
        let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
        let role = pair.roles.first().expect("every target has a role");
        let why = reason.as_deref().unwrap_or("the zone gives no TXT reason");
        values.push(format!(
            "{} {} {}",
            pair.address,
            pair.zone,
            codes.join(",")
        ));
        findings.push(
            Finding::new(
                FindingCode::DnsblListed,
                pair.roles
                    .iter()
                    .map(Role::severity)
                    .min()
                    .unwrap_or(Severity::Warning),
                format!(
                    "{} ({} of {domain}) is listed in {} ({}): {why}",
                    pair.address,
                    role.describe(),
                    pair.zone,
                    codes.join(", ")
                ),
            )
            .with("address", pair.address)
            .with("zone", &pair.zone)
            .with("codes", &codes)
            .with("reason", reason)
            .with("roles", &pair.roles)
            .with("name", query_name(pair.address, &pair.zone)),
        );
    }
    values.sort();
    let records = vec![RecordObservation::new("dnsbl", values, None)];
    let mut evaluation = Evaluation::conclusive(records, findings);
    evaluation.shared = shared;
    evaluation
}

#[cfg(test)]
mod tests;
