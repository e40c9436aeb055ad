//! Unit tests of the SPF record parser.

use super::*;

fn parse(text: &str) -> SpfRecord {
    SpfRecord::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn rendered(text: &str) -> Vec<String> {
    parse(text).directives().map(|d| d.to_string()).collect()
}

#[test]
fn version_tag() {
    assert!(SpfRecord::is_spf("v=spf1 -all"));
    assert!(SpfRecord::is_spf("V=SPF1 -all"));
    assert!(SpfRecord::is_spf("v=spf1"));
    assert!(!SpfRecord::is_spf("v=spf10 -all"));
    assert!(!SpfRecord::is_spf(" v=spf1 -all"));
    assert!(!SpfRecord::is_spf("spf2.0/pra -all"));
    assert!(!SpfRecord::is_spf("v=DMARC1; p=none"));
    assert_eq!(parse("v=spf1").terms, vec![]);
}

#[test]
fn typical_records() {
    let record = parse("v=spf1 include:spf.qiye.aliyun.com  ip4:192.0.2.0/24 -all ");
    assert_eq!(record.terms.len(), 3);
    assert_eq!(record.all(), Some(Qualifier::Fail));
    assert_eq!(
        rendered("v=spf1 +a mx/24 ~MX:mail.example.com/24//64 ?ptr -exists:%{i}.x.example all"),
        vec![
            "a",
            "mx/24",
            "~mx:mail.example.com/24//64",
            "?ptr",
            "-exists:%{i}.x.example",
            "all"
        ]
    );
    let record = parse("v=spf1 ip6:2001:db8::/32 a//64 ip4:198.51.100.7");
    assert_eq!(
        record.terms[0],
        Term::Directive(Directive {
            qualifier: Qualifier::Pass,
            mechanism: Mechanism::Ip6("2001:db8::".parse().unwrap(), Some(32)),
        })
    );
    assert_eq!(
        record.terms[1],
        Term::Directive(Directive {
            qualifier: Qualifier::Pass,
            mechanism: Mechanism::A(
                None,
                DualCidr {
                    ip4: None,
                    ip6: Some(64)
                }
            ),
        })
    );
    assert_eq!(
        record.terms[2],
        Term::Directive(Directive {
            qualifier: Qualifier::Pass,
            mechanism: Mechanism::Ip4("198.51.100.7".parse().unwrap(), None),
        })
    );
}

#[test]
fn modifiers() {
    let record = parse("v=spf1 redirect=_spf.example.com exp=explain.%{d} foo.bar=%{c}x");
    assert_eq!(record.redirect().unwrap().to_string(), "_spf.example.com");
    assert!(matches!(record.terms[1], Term::Modifier(Modifier::Exp(_))));
    match &record.terms[2] {
        Term::Modifier(Modifier::Unknown { name, value }) => {
            assert_eq!(name, "foo.bar");
            assert_eq!(value.to_string(), "%{c}x");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(record.all(), None);
}

#[test]
fn errors_quote_the_term() {
    let cases = [
        ("v=spf1 include:spf.example.com foo -all", "foo"),
        ("v=spf1 ip4:192.0.2.0/33 -all", "ip4:192.0.2.0/33"),
        ("v=spf1 ip4:192.0.2.0/024", "ip4:192.0.2.0/024"),
        ("v=spf1 ip4:192.0.2", "ip4:192.0.2"),
        ("v=spf1 ip4:010.0.0.1", "ip4:010.0.0.1"),
        ("v=spf1 ip6:2001:db8::/129", "ip6:2001:db8::/129"),
        ("v=spf1 ip6:192.0.2.1", "ip6:192.0.2.1"),
        ("v=spf1 a/33", "a/33"),
        ("v=spf1 mx//129", "mx//129"),
        (
            "v=spf1 include:%{z}.example.com",
            "include:%{z}.example.com",
        ),
        ("v=spf1 exists:%{i.example.com", "exists:%{i.example.com"),
        ("v=spf1 include", "include"),
        ("v=spf1 include:", "include:"),
        ("v=spf1 -all:foo", "-all:foo"),
        ("v=spf1 a:localhost", "a:localhost"),
        (
            "v=spf1 redirect=a.example redirect=b.example",
            "redirect=b.example",
        ),
        ("v=spf1 exp=a.example exp=b.example", "exp=b.example"),
        ("v=spf1 ptr/24", "ptr/24"),
        ("v=spf1 ip4:192.0.2.1\t-all", "ip4:192.0.2.1\t-all"),
        ("v=spf1 =foo", "=foo"),
    ];
    for (text, term) in cases {
        let err = SpfRecord::parse(text).expect_err(text);
        assert_eq!(err.term, term, "{text}: {err}");
        assert!(err.to_string().contains(&format!("{term:?}")), "{err}");
    }
}

#[test]
fn lookup_terms() {
    let record = parse("v=spf1 a mx ptr exists:x.example include:y.example ip4:192.0.2.1 all");
    let counted = record
        .directives()
        .filter(|d| d.mechanism.queries_dns())
        .count();
    assert_eq!(counted, 5);
}

#[test]
fn all_terms() {
    assert_eq!(Qualifier::parse_all_term("-all"), Some(Qualifier::Fail));
    assert_eq!(Qualifier::parse_all_term("~ALL"), Some(Qualifier::SoftFail));
    assert_eq!(Qualifier::parse_all_term("all"), Some(Qualifier::Pass));
    assert_eq!(Qualifier::parse_all_term("?all"), Some(Qualifier::Neutral));
    assert_eq!(Qualifier::parse_all_term("-al"), None);
    assert!(Qualifier::Fail.strictness() > Qualifier::SoftFail.strictness());
}
