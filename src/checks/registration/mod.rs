//! Registration check (RDAP: RFC 9082 query, RFC 9083 answer, RFC 9224 bootstrap): when the
//! registration of the domain's registrable name expires, whether the registry holds it
//! out of the DNS, and who its registrar and nameservers are.
//!
//! Decisions:
//! - the registrable name is the Public Suffix List's, ICANN rules only (`mail.example.co.uk`
//!   → `example.co.uk`; a name under a private suffix is registered as that suffix);
//! - special-use names (RFC 6761: `.example`, `.test`, `.invalid`, `.localhost`, `.local`,
//!   `.onion`, `.alt`; RFC 2606's `example.com/net/org`) have no registry: nothing to check;
//! - a TLD without an RDAP server in the bootstrap file is unknown, with that reason:
//!   maildrift does not guess from WHOIS;
//! - one registrable domain is asked at most once per `defaults.rdap.interval` for all its
//!   watched domains, and the answer is kept across restarts ([`memo`]);
//! - nothing is compared with a learned baseline (a renewal is not drift): the findings
//!   come from the thresholds, and a registrar or nameserver change is the `info` event
//!   `domain_registrar_changed`, compared with the previous run.

mod bootstrap;
mod client;
mod evaluate;
mod memo;
mod record;
mod rfc3339;

pub use bootstrap::{Bootstrap, SHIPPED as SHIPPED_BOOTSTRAP};
pub use client::{RdapClient, RdapError};
pub use evaluate::{Seen, evaluate};
pub use record::RdapDomain;
pub use rfc3339::{format as format_date, parse as parse_date};

use super::{Check, Context, Evaluation, GaugeFamily, Input, JsonShape};
use crate::config::{DomainConfig, RdapSettings};
use crate::finding::CheckKind;
use futures::future::BoxFuture;
use std::sync::Mutex;
use std::time::SystemTime;

/// `maildrift_domain_expiry_timestamp_seconds`: absent until the registry published a date.
pub static EXPIRY: GaugeFamily = GaugeFamily {
    name: "maildrift_domain_expiry_timestamp_seconds",
    help: "Unix time the domain's registration expires, from the registry's RDAP server.",
    labels: &[],
    initial: &[],
    json: Some(JsonShape::Number("domain_expiry_timestamp_seconds")),
    export: super::Export::Always,
};

/// Special-use top-level names (RFC 6761, RFC 7686, RFC 9476): never delegated by a registry.
const SPECIAL_TLDS: [&str; 7] = [
    "example",
    "invalid",
    "localhost",
    "test",
    "local",
    "onion",
    "alt",
];
/// Second-level names reserved for documentation (RFC 2606 §3).
const SPECIAL_NAMES: [&str; 3] = ["example.com", "example.net", "example.org"];

/// What was learned of a domain's registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// A special-use name: no registry holds it.
    Reserved(String),
    /// The registry's RDAP server answered.
    Registered {
        /// The RDAP base URL asked.
        server: String,
        /// The record.
        record: RdapDomain,
        /// When it was received (the check asks once per interval).
        asked_at: SystemTime,
    },
}

/// What was seen of a domain's registration.
#[derive(Clone, Debug)]
pub struct RegistrationObservation {
    /// The domain checked.
    pub domain: String,
    /// Its registrable name (what the registry knows), when it has one.
    pub registrable: Option<String>,
    /// What is known, or why nothing is (no RDAP server, the server did not answer).
    pub result: Result<Known, String>,
}

/// The registration check. It keeps, for the daemon's life, the bootstrap file in force,
/// the HTTP client and each registrable domain's last answer.
#[derive(Debug, Default)]
pub struct Registration {
    /// Which RDAP server answers for which TLD.
    bootstraps: bootstrap::Bootstraps,
    /// The last answer per registrable domain.
    memo: memo::RdapMemo,
    /// The client, built for the settings it was built with.
    client: Mutex<Option<(RdapSettings, RdapClient)>>,
}

impl Registration {
    /// The client for `settings` (rebuilt when a reload changed them).
    fn client(&self, settings: &RdapSettings) -> Result<RdapClient, String> {
        let mut client = self.client.lock().expect("RDAP client lock poisoned");
        if let Some((built, client)) = client.as_ref()
            && built == settings
        {
            return Ok(client.clone());
        }
        let fresh = RdapClient::new(settings)?;
        *client = Some((settings.clone(), fresh.clone()));
        Ok(fresh)
    }

    /// Finds the registrable name's RDAP server and asks it (or reuses the last answer).
    async fn observe_name(&self, ctx: &Context<'_>, name: &str) -> Result<Known, String> {
        let tld = name.rsplit('.').next().unwrap_or(name);
        if SPECIAL_TLDS.contains(&tld) || SPECIAL_NAMES.contains(&name) {
            return Ok(Known::Reserved(format!(
                "{name} is a special-use name (RFC 6761): no registry holds it"
            )));
        }
        let settings = &ctx.config.analysis.rdap;
        let client = self.client(settings)?;
        let bootstrap = self
            .bootstraps
            .current(settings, &client, ctx.cache())
            .await;
        let Some(server) = bootstrap.server_for(name) else {
            return Err(format!(
                "no RDAP server for .{} in the bootstrap file ({}); maildrift does not guess from WHOIS",
                crate::dns::names::display_name(tld),
                bootstrap.source
            ));
        };
        let url = format!("{server}domain/{name}");
        let asked = self
            .memo
            .ask(name, server, settings.interval, ctx.cache(), || async {
                let text = client.get_text(&url).await?;
                RdapDomain::parse(&text).map_err(|e| RdapError::Malformed(format!("{url}: {e}")))
            })
            .await;
        asked.result.map(|record| Known::Registered {
            server: asked.server,
            record,
            asked_at: asked.at,
        })
    }
}

impl Check for Registration {
    const KIND: CheckKind = CheckKind::Registration;
    type Observation = RegistrationObservation;
    type Memory = Seen;
    const FAMILIES: &'static [&'static GaugeFamily] = &[&EXPIRY];

    /// Judged against the expiry thresholds of `defaults.rdap`, never a learned baseline.
    fn declared(&self, _config: &DomainConfig) -> bool {
        true
    }

    fn observe<'a>(&'a self, ctx: &'a Context<'a>) -> BoxFuture<'a, RegistrationObservation> {
        Box::pin(async move {
            let domain = ctx.domain().to_owned();
            let registrable = crate::dns::names::registrable_domain(&domain);
            let result = match &registrable {
                Ok(name) => self.observe_name(ctx, name).await,
                Err(error) => Err(error.clone()),
            };
            RegistrationObservation {
                domain,
                registrable: registrable.ok(),
                result,
            }
        })
    }

    fn evaluate(
        &self,
        ctx: &Context<'_>,
        observation: &RegistrationObservation,
        input: Input<'_, Seen>,
    ) -> Evaluation<Seen> {
        evaluate(
            observation,
            &ctx.config.analysis.rdap,
            ctx.now(),
            input.memory,
        )
    }
}
