//! Per-domain scope in the config: `checks.skip`, the `parked` preset, internationalized
//! domain names.

use super::Config;
use crate::finding::CheckKind;
use std::path::Path;

/// Parses a whole config file named `t.yml`.
pub(super) fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("t.yml")).map_err(|e| e.to_string())
}

#[test]
fn skip_in_defaults_and_per_domain() {
    let config = parse(
        "defaults:\n  checks: { skip: [dnssec, registration] }\ndomains:\n  - name: a.example\n  - name: b.example\n    checks: { skip: [dnsbl, mx, dnsbl] }\n  - name: c.example\n    checks: { skip: [] }\n",
    )
    .unwrap();
    assert_eq!(
        config.domains[0].skip,
        [CheckKind::Dnssec, CheckKind::Registration]
    );
    // A domain's list replaces the default one, sorted and without repeats.
    assert_eq!(config.domains[1].skip, [CheckKind::Mx, CheckKind::Dnsbl]);
    assert!(config.domains[2].skip.is_empty());

    let err = parse("defaults:\n  checks: { skip: [dnsec] }\ndomains:\n  - name: a.example\n    checks: { skipp: [mx] }\n").unwrap_err();
    assert!(
        err.contains(
            "t.yml:2:20: defaults.checks.skip[0]: \"dnsec\" is not a check; expected one of mx, spf"
        ),
        "{err}"
    );
    assert!(
        err.contains("t.yml:5:15: domains[0].checks.skipp: unknown field `skipp`"),
        "{err}"
    );
}

#[test]
fn parked_preset_expects_no_mail_and_explicit_keys_win() {
    let config = parse(
        "domains:\n  - name: parked.example\n    provider: parked\n  - name: half.example\n    provider: parked\n    expect: { dmarc: { policy: quarantine }, mx: [mx.half.example] }\n",
    )
    .unwrap();
    let expect = &config.domains[0].expect;
    assert_eq!(expect.mx.as_ref().unwrap().hosts, ["."]);
    let spf = expect.spf.as_ref().unwrap();
    assert_eq!(spf.record.as_deref(), Some("v=spf1 -all"));
    assert!(spf.includes.is_empty());
    assert_eq!(expect.dmarc.as_ref().unwrap().policy, "reject");
    assert_eq!(
        expect.dkim.as_ref().unwrap().selectors,
        Vec::<String>::new()
    );
    let half = &config.domains[1].expect;
    assert_eq!(half.dmarc.as_ref().unwrap().policy, "quarantine");
    assert_eq!(half.mx.as_ref().unwrap().hosts, ["mx.half.example"]);
    assert_eq!(
        half.spf.as_ref().unwrap().record.as_deref(),
        Some("v=spf1 -all")
    );

    // The same keys in a user preset and in expect are validated.
    let err = parse(
        "providers:\n  p: { spf_record: \"include:x -all\", dmarc: never, dkim_selectors: [\"a b\"] }\ndomains:\n  - name: a.example\n    expect: { mx: [\".\"], spf: { record: \"spf1 -all\" } }\n",
    )
    .unwrap_err();
    for needle in [
        "providers.p.spf_record: \"include:x -all\" is not an SPF record",
        "providers.p.dmarc: unknown DMARC policy \"never\"",
        "providers.p.dkim_selectors[0]:",
        "domains[0].expect.spf.record: \"spf1 -all\" is not an SPF record",
    ] {
        assert!(err.contains(needle), "{needle}\n{err}");
    }
}

#[test]
fn internationalized_names_become_a_labels() {
    let config = parse(
        "domains:\n  - name: bücher.example\n    expect: { mx: [邮件.例子.中国] }\n  - name: 例子.中国\n",
    )
    .unwrap();
    assert_eq!(config.domains[0].name, "xn--bcher-kva.example");
    assert_eq!(
        config.domains[0].expect.mx.as_ref().unwrap().hosts,
        ["xn--5nq051n.xn--fsqu00a.xn--fiqs8s"]
    );
    assert_eq!(config.domains[1].name, "xn--fsqu00a.xn--fiqs8s");
    // The Unicode and A-label spellings are the same domain.
    let err =
        parse("domains:\n  - name: bücher.example\n  - name: XN--BCHER-KVA.example\n").unwrap_err();
    assert!(
        err.contains("duplicate domain \"xn--bcher-kva.example\""),
        "{err}"
    );
}
