//! Macro parsing and expansion (RFC 7208 §7), with the RFC's own examples.

use super::*;

#[test]
fn domain_specs() {
    assert!(parse_domain_spec("spf.qiye.aliyun.com").is_ok());
    assert!(parse_domain_spec("spf.example.com.").is_ok());
    assert!(parse_domain_spec("%{d}").is_ok());
    assert!(parse_domain_spec("_spf.%{d2}").is_ok());
    let err = parse_domain_spec("localhost").unwrap_err();
    assert!(err.contains("top-level label"), "{err}");
    assert!(parse_domain_spec("1.2.3.4").is_err(), "numeric toplabel");
    assert!(parse_domain_spec("x.-com").is_err());
    assert!(parse_domain_spec("").is_err());
}

#[test]
fn bad_macros() {
    for bad in [
        "%{x}.example.com",
        "%{d0}.example.com",
        "%{d.example.com",
        "%a.example.com",
        "%{c}.example.com",
        "%{d!}.example.com",
        "ex ample.com",
    ] {
        assert!(parse_domain_spec(bad).is_err(), "{bad} should be rejected");
    }
    // Explanation-only letters are fine outside domains (unknown modifiers).
    assert!(parse_macro_string("%{c}", false).is_ok());
}

#[test]
fn expansion_of_domain_macros() {
    let spec = parse_domain_spec("_spf.%{d}").unwrap();
    assert!(!spec.depends_on_sender());
    assert_eq!(
        spec.expand("Mail.Example.COM").unwrap(),
        "_spf.mail.example.com"
    );
    let spec = parse_domain_spec("%{d2}.x.example").unwrap();
    assert_eq!(spec.expand("a.b.c.org").unwrap(), "c.org.x.example");
    let spec = parse_domain_spec("%{dr}.x.example").unwrap();
    assert_eq!(spec.expand("a.b.org").unwrap(), "org.b.a.x.example");
    let spec = parse_domain_spec("%{d1r-}.x.example").unwrap();
    assert_eq!(spec.expand("a-b.org").unwrap(), "a.x.example");
}

#[test]
fn rfc_7208_section_7_4_examples() {
    let context = MacroContext {
        sender: "strong-bad@email.example.com",
        ip: "192.0.2.3".parse().unwrap(),
        helo: "mx.example.org",
        domain: "email.example.com",
        validated: "unknown",
    };
    let cases = [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        (
            "%{ir}.%{v}._spf.%{d2}",
            "3.2.0.192.in-addr._spf.example.com",
        ),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        (
            "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
            "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
        ),
        (
            "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
            "3.2.0.192.in-addr.strong.lp._spf.example.com",
        ),
        (
            "%{d2}.trusted-domains.example.net",
            "example.com.trusted-domains.example.net",
        ),
    ];
    for (spec, want) in cases {
        let parsed = parse_macro_string(spec, false).unwrap();
        assert_eq!(parsed.expand_for(&context), want, "{spec}");
    }
    let v6 = MacroContext {
        ip: "2001:db8::cb01".parse().unwrap(),
        ..context
    };
    let parsed = parse_macro_string("%{ir}.%{v}._spf.%{d2}", false).unwrap();
    assert_eq!(
        parsed.expand_for(&v6),
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    );
    let escaped = parse_macro_string("%{S}", false).unwrap();
    assert_eq!(escaped.expand_for(&v6), "strong-bad%40email.example.com");
}

#[test]
fn sender_macros_are_not_expanded_and_render_back() {
    let text = "%{ir}.%{v}._spf.%{d}";
    let spec = parse_domain_spec(text).unwrap();
    assert!(spec.depends_on_sender());
    assert_eq!(spec.expand("example.com"), None);
    assert_eq!(spec.to_string(), text);
    let text = "%{L2r+}%%%_%-.example.com";
    assert_eq!(parse_domain_spec(text).unwrap().to_string(), text);
}

#[test]
fn explanations_keep_spaces_case_and_dots() {
    let context = MacroContext {
        sender: "~jack&jill=up-a_b3.c@e8.example.com",
        ip: "cafe:babe::1".parse().unwrap(),
        helo: "mx.example.org",
        domain: "e8.example.com",
        validated: "mx.example.com",
    };
    let text = parse_explanation("%{c} is queried as %{ir}.%{v}.arpa, see %{p}.").unwrap();
    assert_eq!(
        text.explain(&context),
        "cafe:babe::1 is queried as \
         1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa, see mx.example.com."
    );
    let text = parse_explanation("http://example.com/why.html?l=%{L}").unwrap();
    assert_eq!(
        text.explain(&context),
        "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c"
    );
    assert!(text.uses(MacroLetter::LocalPart));
    assert!(!text.uses(MacroLetter::ValidatedName));
    let stamp = parse_explanation("%{t}").unwrap().explain(&context);
    assert!(
        stamp.parse::<u64>().is_ok_and(|t| t > 1_600_000_000),
        "{stamp}"
    );
    // Spaces only in explanations; a bad macro or a non-ASCII character is a syntax error.
    assert!(parse_macro_string("a b", false).is_err());
    assert!(parse_explanation("The %{x}-files.").is_err());
    assert!(parse_explanation("\u{feff}Explanation").is_err());
}
