//! The parts of `check_host()` that look the client up by its address, and explanations:
//! validated domain names (§5.5, for `ptr` and `%{p}`) and `exp=` (§6.2).

use super::evaluator::{Evaluator, ptr_names};
use super::macros::{MacroLetter, parse_explanation};
use super::record::SpfRecord;
use crate::dns::{Answer, RData, RecordType};
use std::net::IpAddr;

impl Evaluator<'_> {
    /// The PTR answer for the client IP; `None` on a DNS error.
    pub(super) async fn reverse(&mut self) -> Option<Answer> {
        self.try_ask(&reverse_name(self.ip), RecordType::Ptr)
            .await
            .ok()
    }

    /// Whether `name` has an address record equal to the client IP. A DNS error skips the
    /// name (§5.5: "that domain name is skipped and the search continues").
    pub(super) async fn validates(&mut self, name: &str) -> bool {
        let ip = self.ip;
        match self.try_ask(name, self.address_type()).await {
            Ok(answer) => answer.records.iter().any(|r| match r {
                RData::A(a) => IpAddr::V4(*a) == ip,
                RData::Aaaa(a) => IpAddr::V6(*a) == ip,
                _ => false,
            }),
            Err(_) => false,
        }
    }

    /// `%{p}` (§7.3): a validated name of the client, preferring `domain` itself, then a
    /// name below it, then any other; "unknown" when none validates or the PTR lookup fails.
    pub(super) async fn validated_name(&mut self, domain: &str) -> String {
        let Some(answer) = self.reverse().await else {
            return "unknown".to_owned();
        };
        let mut names = ptr_names(&answer);
        let below = format!(".{domain}");
        // A stable sort keeps the answer's order within each preference.
        names.sort_by_key(|name| match name.as_str() {
            exact if exact == domain => 0,
            sub if sub.ends_with(&below) => 1,
            _ => 2,
        });
        for name in names {
            if self.validates(&name).await {
                return name;
            }
        }
        "unknown".to_owned()
    }

    /// The explanation of a `fail` matched in `record` (§6.2): the one TXT record of the
    /// `exp=` target, macros expanded. `None` (so the caller's default applies) without
    /// `exp=`, or when the target cannot be asked, fails, has no or several TXT records,
    /// or holds a malformed explanation. Counts nothing (§4.6.4).
    pub(super) async fn explain(&mut self, record: &SpfRecord, domain: &str) -> Option<String> {
        let spec = record.exp()?;
        let step = self.begin(domain, &format!("exp={spec}"));
        let explanation = self.explanation(spec, domain).await;
        self.finish(step, explanation.is_some());
        explanation
    }

    async fn explanation(
        &mut self,
        spec: &super::macros::MacroString,
        domain: &str,
    ) -> Option<String> {
        let target = self.target(Some(spec), domain, false).await.ok()?;
        let answer = self.try_ask(&target, RecordType::Txt).await.ok()?;
        let [RData::Txt(text)] = answer.records.as_slice() else {
            return None;
        };
        let text = parse_explanation(text).ok()?;
        let mut validated = String::from("unknown");
        if text.uses(MacroLetter::ValidatedName) {
            validated = self.validated_name(domain).await;
        }
        Some(text.explain(&self.context(domain, &validated)))
    }
}

/// `in-addr.arpa`/`ip6.arpa` name of an address.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(ip) => {
            let mut nibbles = super::macros::nibbles(ip);
            nibbles.reverse();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}
