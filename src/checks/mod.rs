//! Mail-DNS checks behind one seam ([`Check`]): each check module observes (DNS → its own
//! observation) and evaluates (observation + reference → records, findings, gauges) as
//! separate steps, so evaluation is a pure function tested without a network. The
//! [`Registry`] lists the checks; [`run_domain`] runs them and judges drift once.

pub mod bimi;
mod cache;
pub mod dane;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod dnssec;
mod drift;
mod gauge;
pub mod https;
pub mod mta_sts;
pub mod mx;
pub mod nameservers;
pub mod registration;
mod report;
pub mod round_memo;
mod run;
mod seam;
pub mod smtp_tls;
pub mod spf;
pub mod tags;
pub mod tls_rpt;

#[cfg(test)]
pub(crate) mod fixture;

pub use cache::{Cached, CheckCache, MemoryCache};
pub use drift::compare as compare_sets;
pub use gauge::{Export, FamilyValues, GaugeFamily, JsonShape, Labels, SharedFamily, SharedValues};
pub use report::{CheckReport, RecordObservation, baseline_values, fingerprint};
pub use run::{DomainReport, Known, run_domain};
pub use seam::{Check, Context, Declared, Evaluation, Input, Memory, Reference};

use crate::finding::CheckKind;
use seam::DynCheck;

/// The checks a daemon (or a one-shot command) runs, in report order. Checks that keep
/// state across rounds (the nameservers check's serial timer) keep it here, so one registry
/// lives as long as the daemon.
pub struct Registry {
    /// Every check, in report order.
    checks: Vec<Box<dyn DynCheck>>,
    /// What checks keep across restarts (`None`: nothing is kept).
    cache: Option<std::sync::Arc<dyn CheckCache>>,
}

impl Registry {
    /// Every check maildrift has.
    pub fn standard() -> Registry {
        Registry {
            checks: vec![
                Box::new(mx::Mx),
                Box::new(spf::Spf),
                Box::new(dkim::Dkim),
                Box::new(dmarc::Dmarc),
                Box::new(mta_sts::MtaSts),
                Box::new(tls_rpt::TlsRpt),
                Box::new(nameservers::Nameservers::default()),
                Box::new(dnssec::Dnssec),
                Box::new(smtp_tls::SmtpTls::default()),
                Box::new(dane::Dane::default()),
                Box::new(bimi::Bimi),
                Box::new(registration::Registration::default()),
                Box::new(dnsbl::Dnsbl::default()),
            ],
            cache: None,
        }
    }

    /// A registry without checks; add them with [`Registry::with`].
    pub fn empty() -> Registry {
        Registry {
            checks: Vec::new(),
            cache: None,
        }
    }

    /// This registry with `cache` as what its checks keep across restarts.
    pub fn with_cache(mut self, cache: std::sync::Arc<dyn CheckCache>) -> Registry {
        self.cache = Some(cache);
        self
    }

    /// This registry with `check` added last.
    pub fn with<C: Check>(mut self, check: C) -> Registry {
        self.checks.push(Box::new(check));
        self
    }

    /// The checks, in report order.
    pub fn kinds(&self) -> impl Iterator<Item = CheckKind> + '_ {
        self.checks.iter().map(|c| c.kind())
    }

    /// Whether `config` declares what `check` must see (drift then compares with the
    /// declaration; otherwise with a learned baseline that `baseline accept` can replace).
    pub fn declared(&self, check: CheckKind, config: &crate::config::DomainConfig) -> bool {
        self.checks
            .iter()
            .any(|c| c.kind() == check && c.declared(config))
    }

    /// Every per-domain gauge family the checks export, with its check, in report order.
    pub fn families(&self) -> impl Iterator<Item = (CheckKind, &'static GaugeFamily)> + '_ {
        self.checks
            .iter()
            .flat_map(|c| c.families().iter().map(|f| (c.kind(), *f)))
    }

    /// Every shared-object family the checks export.
    pub fn shared_families(&self) -> impl Iterator<Item = &'static SharedFamily> + '_ {
        self.checks
            .iter()
            .flat_map(|c| c.shared_families().iter().copied())
    }

    /// The shared-object families of `check` (none when it is not in the registry).
    pub fn shared_families_of(&self, check: CheckKind) -> &'static [&'static SharedFamily] {
        self.checks()
            .find(|c| c.kind() == check)
            .map_or(&[], |c| c.shared_families())
    }

    /// The checks `config` runs and reports: all but those it skips (`checks.skip`).
    pub fn kinds_for<'a>(
        &'a self,
        config: &'a crate::config::DomainConfig,
    ) -> impl Iterator<Item = CheckKind> + 'a {
        self.kinds().filter(|k| !config.skip.contains(k))
    }

    /// The checks, type-erased.
    fn checks(&self) -> impl Iterator<Item = &dyn DynCheck> {
        self.checks.iter().map(|c| c.as_ref())
    }

    /// The checks that observe for `config`: those it reports, and those whose
    /// observation they read even when skipped (a skipped `mx` still observes for
    /// `mta_sts`; it reports nothing).
    fn observing(&self, config: &crate::config::DomainConfig) -> Vec<&dyn DynCheck> {
        let mut wanted: Vec<CheckKind> = self.kinds_for(config).collect();
        let mut next = 0;
        while let Some(kind) = wanted.get(next).copied() {
            next += 1;
            let needs = self
                .checks()
                .filter(|c| c.kind() == kind)
                .flat_map(|c| c.needs());
            for need in needs.copied().collect::<Vec<_>>() {
                if !wanted.contains(&need) {
                    wanted.push(need);
                }
            }
        }
        self.checks()
            .filter(|c| wanted.contains(&c.kind()))
            .collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}
