//! Provider presets: the built-in ones (data in `config/providers/builtin.yml`, compiled in)
//! plus the user's `providers:`; and how a preset fills a domain's expectations.

use super::issues::Issues;
use super::names::SELECTOR;
use super::names::{HOST, SPF_DOMAIN, check_name};
use super::position::join;
use super::raw::RawPreset;
use super::{DkimExpectation, DmarcExpectation, Expectations, MxExpectation, SpfExpectation};
use std::collections::BTreeMap;

/// The built-in presets file.
pub(crate) const BUILTIN_PRESETS: &str = include_str!("../../config/providers/builtin.yml");

/// One provider's expected MX hosts (templates) and SPF includes, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Preset {
    /// MX host templates: `{domain}` and `{domain_dashed}` are replaced per domain.
    pub(crate) mx: Vec<String>,
    /// SPF include domains.
    pub(crate) spf_includes: Vec<String>,
    /// The exact SPF record, when the preset fixes it (`v=spf1 -all`).
    pub(crate) spf_record: Option<String>,
    /// The DMARC policy, when the preset fixes it.
    pub(crate) dmarc: Option<String>,
    /// DKIM selectors, when the preset fixes them (`[]`: no key expected).
    pub(crate) dkim_selectors: Option<Vec<String>>,
}

impl Preset {
    /// The MX hosts for `domain` (a normalised name).
    pub(crate) fn mx_for(&self, domain: &str) -> Vec<String> {
        self.mx.iter().map(|t| expand(t, domain)).collect()
    }

    /// Fills `expect.mx` and `expect.spf.includes` unless the domain set them itself
    /// (`explicit_mx`, `explicit_includes`): explicit keys win, and an `expect.spf` with
    /// only `all` or `authorizes` still gets the preset's includes. The exact SPF record,
    /// DMARC policy and DKIM selectors of a preset that fixes them fill what the domain
    /// left unset.
    pub(crate) fn apply(
        &self,
        domain: &str,
        expect: &mut Expectations,
        explicit_mx: bool,
        explicit_includes: bool,
    ) {
        if !explicit_mx && !self.mx.is_empty() {
            expect.mx = Some(MxExpectation {
                hosts: self.mx_for(domain),
            });
        }
        if !explicit_includes && !self.spf_includes.is_empty() {
            expect
                .spf
                .get_or_insert_with(SpfExpectation::default)
                .includes = self.spf_includes.clone();
        }
        if let Some(record) = &self.spf_record {
            let spf = expect.spf.get_or_insert_with(SpfExpectation::default);
            spf.record.get_or_insert_with(|| record.clone());
        }
        if let (Some(policy), None) = (&self.dmarc, &expect.dmarc) {
            expect.dmarc = Some(DmarcExpectation {
                policy: policy.clone(),
            });
        }
        if let (Some(selectors), None) = (&self.dkim_selectors, &expect.dkim) {
            expect.dkim = Some(DkimExpectation {
                selectors: selectors.clone(),
            });
        }
    }
}

fn expand(template: &str, domain: &str) -> String {
    template
        .replace("{domain_dashed}", &domain.replace('.', "-"))
        .replace("{domain}", domain)
}

/// Presets by name.
pub(crate) type Presets = BTreeMap<String, Preset>;

/// Parses the built-in presets; an error here is a bug in `builtin.yml` (a test guards it).
pub(crate) fn builtin() -> Result<Presets, String> {
    let mut issues = Issues::new(BUILTIN_PRESETS);
    let value: yaml_serde::Value =
        yaml_serde::from_str(BUILTIN_PRESETS).map_err(|e| e.to_string())?;
    let presets = parse(value, "", &mut issues);
    match issues.list.first() {
        None => Ok(presets),
        Some(issue) => Err(format!(
            "builtin.yml:{}:{}: {}: {}",
            issue.line, issue.column, issue.field, issue.message
        )),
    }
}

/// Parses a presets mapping found at `field` (`""` for the built-in file, `providers` in
/// a config), recording issues.
pub(crate) fn parse(value: yaml_serde::Value, field: &str, issues: &mut Issues<'_>) -> Presets {
    let mut presets = Presets::new();
    if value.is_null() {
        return presets;
    }
    let Some(raw) = issues.deserialize::<BTreeMap<String, yaml_serde::Value>>(value, field) else {
        return presets;
    };
    for (name, value) in raw {
        let path = join(field, &name);
        let Some(preset) = issues.deserialize::<RawPreset>(value, &path) else {
            continue;
        };
        let mut mx = Vec::new();
        for (i, host) in preset.mx.iter().enumerate() {
            let host = host.as_str();
            if host.trim() == "." {
                // The null MX (RFC 7505).
                mx.push(".".to_owned());
                continue;
            }
            // Validate the template as it would expand for a sample domain.
            let unknown_placeholder = expand(host, "example.com").contains(['{', '}']);
            let checked = if unknown_placeholder {
                Err(format!(
                    "{host:?}: unknown placeholder; use {{domain}} or {{domain_dashed}}"
                ))
            } else {
                check_name(&expand(host, "example.com"), HOST).map(|_| host.to_ascii_lowercase())
            };
            match checked {
                Ok(template) => mx.push(template.trim_end_matches('.').to_string()),
                Err(message) => issues.value(&format!("{path}.mx[{i}]"), message),
            }
        }
        let mut spf_includes = Vec::new();
        for (i, include) in preset.spf_includes.iter().enumerate() {
            match check_spf_include(include.as_str()) {
                Ok(name) => spf_includes.push(name),
                Err(message) => issues.value(&format!("{path}.spf_includes[{i}]"), message),
            }
        }
        let spf_record = preset.spf_record.as_ref().and_then(|record| {
            super::validate::spf_record(record.as_str())
                .map_err(|message| issues.value(&format!("{path}.spf_record"), message))
                .ok()
        });
        let dmarc = preset.dmarc.as_ref().and_then(|policy| {
            let policy = policy.as_str().trim().to_ascii_lowercase();
            if ["none", "quarantine", "reject"].contains(&policy.as_str()) {
                Some(policy)
            } else {
                let message =
                    format!("unknown DMARC policy {policy:?}; expected none, quarantine or reject");
                issues.value(&format!("{path}.dmarc"), message);
                None
            }
        });
        let dkim_selectors = preset.dkim_selectors.as_ref().map(|selectors| {
            let mut out = Vec::new();
            for (i, selector) in selectors.iter().enumerate() {
                match check_name(selector.as_str(), SELECTOR) {
                    Ok(s) => out.push(s),
                    Err(message) => issues.value(&format!("{path}.dkim_selectors[{i}]"), message),
                }
            }
            out
        });
        let preset = Preset {
            mx,
            spf_includes,
            spf_record,
            dmarc,
            dkim_selectors,
        };
        presets.insert(name, preset);
    }
    presets
}

/// Checks one SPF include domain (also used for `expect.spf.includes`).
pub(crate) fn check_spf_include(text: &str) -> Result<String, String> {
    if let Some(rest) = text.trim().strip_prefix("include:") {
        return Err(format!(
            "{text:?}: write the domain without the \"include:\" prefix, e.g. {:?}",
            rest.trim()
        ));
    }
    check_name(text, SPF_DOMAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_presets_parse_and_hold_the_documented_values() {
        let presets = builtin().expect("builtin.yml is valid");
        let names: Vec<&str> = presets.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "aliyun",
                "aliyun-legacy",
                "google",
                "microsoft365",
                "netease",
                "parked",
                "tencent",
                "zoho"
            ]
        );
        assert_eq!(
            presets["aliyun"].mx,
            [
                "mx1.qiye.aliyun.com",
                "mx2.qiye.aliyun.com",
                "mx3.qiye.aliyun.com"
            ]
        );
        assert_eq!(presets["tencent"].spf_includes, ["spf.mail.qq.com"]);
        assert_eq!(presets["google"].mx.len(), 5);
        assert_eq!(
            presets["microsoft365"].mx_for("corp.example.co.uk"),
            ["corp-example-co-uk.mail.protection.outlook.com"]
        );
    }

    #[test]
    fn bad_presets_are_reported_at_their_entries() {
        let text = "providers:\n  p:\n    mx: [\"{tenant}.x.com\", ok.example.com]\n    spf_includes: [include:a.com]\n";
        let mut issues = Issues::new(text);
        let document: yaml_serde::Value = yaml_serde::from_str(text).expect("yaml");
        let value = document.get("providers").cloned().expect("providers");
        let presets = parse(value, "providers", &mut issues);
        let found: Vec<(usize, usize, &str)> = issues
            .list
            .iter()
            .map(|i| (i.line, i.column, i.field.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (3, 10, "providers.p.mx[0]"),
                (4, 20, "providers.p.spf_includes[0]")
            ]
        );
        assert!(issues.list[0].message.contains("unknown placeholder"));
        assert!(
            issues.list[1]
                .message
                .contains("without the \"include:\" prefix")
        );
        assert_eq!(presets["p"].mx, ["ok.example.com"]);
    }
}
