//! Name helpers shared by the config and the checks: internationalized domain names (UTS #46:
//! Unicode in the config and on the command line, A-labels for DNS, Unicode again for
//! people) and the Public Suffix List (organizational and registrable domains).

use super::normalize_name;

/// The A-label form of `name`: UTS #46 ToASCII for a name holding non-ASCII characters
/// (`bücher.example` → `xn--bcher-kva.example`), lower case without the trailing dot. ASCII
/// names are only normalised. The error says why a Unicode name has no A-label form.
pub fn to_ascii(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    if trimmed.is_ascii() {
        return Ok(normalize_name(trimmed));
    }
    let ascii = idna::domain_to_ascii(trimmed)
        .map_err(|_| format!("{name:?} is not a valid internationalized domain name (UTS #46)"))?;
    Ok(normalize_name(&ascii))
}

/// The A-label form of a name a person typed (a URL path, a command-line argument), for
/// finding it among the watched domains; normalised as is when it has no A-label form.
pub fn lookup_name(input: &str) -> String {
    to_ascii(input).unwrap_or_else(|_| normalize_name(input))
}

/// The Unicode form of `name` for people (`xn--bcher-kva.example` → `bücher.example`); the
/// name itself when it has no A-label or does not decode.
pub fn to_unicode(name: &str) -> String {
    if !name.split('.').any(|l| l.starts_with("xn--")) {
        return name.to_owned();
    }
    match idna::domain_to_unicode(name) {
        (unicode, Ok(())) => unicode,
        (_, Err(_)) => name.to_owned(),
    }
}

/// How a name is shown: `bücher.example (xn--bcher-kva.example)` for an internationalized
/// name, the name itself otherwise.
pub fn display_name(name: &str) -> String {
    let unicode = to_unicode(name);
    if unicode == name {
        unicode
    } else {
        format!("{unicode} ({name})")
    }
}

/// The organizational domain of `name` (RFC 7489 §3.2): the Public Suffix List's registrable
/// domain, private rules included (`a.b.example.co.uk` → `example.co.uk`, `x.github.io` →
/// `x.github.io`); the name itself when it is a public suffix. `name` is an A-label name.
pub fn organizational_domain(name: &str) -> String {
    let name = normalize_name(name);
    match psl::domain_str(&name) {
        Some(domain) => domain.to_owned(),
        None => name,
    }
}

/// The name a domain registry knows `name` under: the registrable domain by the Public
/// Suffix List's ICANN rules only (`www.example.co.uk` → `example.co.uk`; `x.github.io` →
/// `github.io`, since `github.io` is a private suffix registered under `io`). An error when
/// the name is itself a public suffix. `name` is an A-label name.
pub fn registrable_domain(name: &str) -> Result<String, String> {
    let name = normalize_name(name);
    let not_registrable = || format!("{name} is a public suffix, not a registrable domain");
    let mut suffix = psl::suffix_str(&name).ok_or_else(not_registrable)?;
    // A private suffix is itself registered under an ICANN one: walk up to that.
    while psl::suffix(suffix.as_bytes()).and_then(|s| s.typ()) == Some(psl::Type::Private) {
        let parent = suffix
            .split_once('.')
            .map(|(_, p)| p)
            .ok_or_else(not_registrable)?;
        suffix = psl::suffix_str(parent).ok_or_else(not_registrable)?;
    }
    let head = name
        .strip_suffix(suffix)
        .and_then(|h| h.strip_suffix('.'))
        .filter(|h| !h.is_empty())
        .ok_or_else(not_registrable)?;
    let label = head.rsplit('.').next().unwrap_or(head);
    Ok(format!("{label}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases in the style of the Public Suffix List's own `test_psl.txt`: the registrable
    /// domain of each name, `None` when it has none.
    #[test]
    fn organizational_domains_follow_the_public_suffix_list() {
        let cases: &[(&str, Option<&str>)] = &[
            // Plain and multi-label ICANN suffixes.
            ("example.com", Some("example.com")),
            ("mail.example.com", Some("example.com")),
            ("a.b.example.com.cn", Some("example.com.cn")),
            ("reports.example.co.uk", Some("example.co.uk")),
            ("example.de", Some("example.de")),
            ("co.uk", None),
            ("com.cn", None),
            ("com", None),
            // Wildcard rule `*.ck` and its exception `!www.ck`.
            ("c.ck", None),
            ("b.c.ck", Some("b.c.ck")),
            ("a.b.c.ck", Some("b.c.ck")),
            ("www.ck", Some("www.ck")),
            ("www.www.ck", Some("www.ck")),
            // Wildcard `*.kawasaki.jp` with the exception `!city.kawasaki.jp`.
            ("test.kawasaki.jp", None),
            ("b.test.kawasaki.jp", Some("b.test.kawasaki.jp")),
            ("city.kawasaki.jp", Some("city.kawasaki.jp")),
            ("www.city.kawasaki.jp", Some("city.kawasaki.jp")),
            // An unlisted TLD falls under the default `*` rule.
            ("example.example", Some("example.example")),
            ("b.example.example", Some("example.example")),
            // IDN, as A-labels: 公司.cn and 中国.
            (
                "xn--fsqu00a.xn--55qx5d.cn",
                Some("xn--fsqu00a.xn--55qx5d.cn"),
            ),
            (
                "www.xn--fsqu00a.xn--55qx5d.cn",
                Some("xn--fsqu00a.xn--55qx5d.cn"),
            ),
            ("xn--fiqs8s", None),
            ("xn--fsqu00a.xn--fiqs8s", Some("xn--fsqu00a.xn--fiqs8s")),
            // Private rules count for DMARC.
            ("user.github.io", Some("user.github.io")),
        ];
        let mut wrong = Vec::new();
        for (name, want) in cases {
            let got = psl::domain_str(name);
            if got != *want {
                wrong.push(format!("{name}: {got:?}, want {want:?}"));
            }
            let org = organizational_domain(name);
            if org != want.unwrap_or(name) {
                wrong.push(format!("organizational_domain({name}) = {org}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn registrable_domains_use_the_icann_rules_only() {
        assert_eq!(
            registrable_domain("www.example.co.uk").unwrap(),
            "example.co.uk"
        );
        assert_eq!(
            registrable_domain("Mail.Example.COM.").unwrap(),
            "example.com"
        );
        assert_eq!(registrable_domain("user.github.io").unwrap(), "github.io");
        assert_eq!(registrable_domain("a.b.c.ck").unwrap(), "b.c.ck");
        assert_eq!(
            registrable_domain("x.example.example").unwrap(),
            "example.example"
        );
        // A private suffix is itself a registered name.
        assert_eq!(registrable_domain("github.io").unwrap(), "github.io");
        for suffix in ["co.uk", "com", "c.ck", "xn--fiqs8s"] {
            let err = registrable_domain(suffix).unwrap_err();
            assert!(err.contains("is a public suffix"), "{suffix}: {err}");
        }
    }

    #[test]
    fn internationalized_names_have_an_a_label_and_a_unicode_form() {
        assert_eq!(to_ascii("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(to_ascii("例子.中国").unwrap(), "xn--fsqu00a.xn--fiqs8s");
        assert_eq!(
            to_ascii("BÜCHER.Example.").unwrap(),
            "xn--bcher-kva.example"
        );
        // The ideographic full stop is a dot (UTS #46 mapping).
        assert_eq!(to_ascii("例子。中国").unwrap(), "xn--fsqu00a.xn--fiqs8s");
        assert_eq!(to_ascii(" Example.COM. ").unwrap(), "example.com");
        let err = to_ascii("a\u{200b}\u{fffd}.example").unwrap_err();
        assert!(err.contains("not a valid internationalized"), "{err}");
        assert_eq!(to_unicode("xn--fsqu00a.xn--fiqs8s"), "例子.中国");
        assert_eq!(to_unicode("example.com"), "example.com");
        assert_eq!(to_unicode("xn--zz.example"), "xn--zz.example");
        assert_eq!(
            display_name("xn--bcher-kva.example"),
            "bücher.example (xn--bcher-kva.example)"
        );
        assert_eq!(display_name("example.com"), "example.com");
    }
}
