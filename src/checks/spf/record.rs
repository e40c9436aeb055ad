//! The typed SPF record and its parser, after the RFC 7208 §12 ABNF.
//!
//! Why our own parser and not `mail-auth`'s (0.15, whose directives are public): its parse
//! error is a bare `Error::Parse` that cannot quote the offending term, it drops unknown
//! modifiers, and it pulls mail-parser, idna, rustls-pki-types and a crypto backend just
//! to read one TXT record. A monitor's findings must quote the bad input.

use super::macros::{MacroString, parse_domain_spec, parse_macro_string};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A directive's qualifier (§4.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Qualifier {
    /// `+` (the default).
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

impl Qualifier {
    /// The qualifier character.
    pub fn as_char(self) -> char {
        match self {
            Qualifier::Pass => '+',
            Qualifier::Fail => '-',
            Qualifier::SoftFail => '~',
            Qualifier::Neutral => '?',
        }
    }

    fn from_char(c: char) -> Option<Qualifier> {
        match c {
            '+' => Some(Qualifier::Pass),
            '-' => Some(Qualifier::Fail),
            '~' => Some(Qualifier::SoftFail),
            '?' => Some(Qualifier::Neutral),
            _ => None,
        }
    }

    /// How strongly an `all` with this qualifier rejects unlisted senders: `-` 3, `~` 2,
    /// `?` 1, `+` 0. "No all" behaves as `?` (the default result is neutral, §4.7).
    pub fn strictness(self) -> u8 {
        match self {
            Qualifier::Fail => 3,
            Qualifier::SoftFail => 2,
            Qualifier::Neutral => 1,
            Qualifier::Pass => 0,
        }
    }

    /// Parses an `all` term as written in configuration: `-all`, `~all`, `?all`, `+all`, `all`.
    pub fn parse_all_term(text: &str) -> Option<Qualifier> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "all" => Some(Qualifier::Pass),
            _ => {
                let mut chars = text.chars();
                let q = Qualifier::from_char(chars.next()?)?;
                (chars.as_str() == "all").then_some(q)
            }
        }
    }
}

/// Optional CIDR lengths of `a` and `mx` (`/24`, `//64`, `/24//64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DualCidr {
    /// IPv4 prefix length (0–32), `None` for /32.
    pub ip4: Option<u8>,
    /// IPv6 prefix length (0–128), `None` for /128.
    pub ip6: Option<u8>,
}

/// A mechanism (§5).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// `all`.
    All,
    /// `include:<domain-spec>`.
    Include(MacroString),
    /// `a[:<domain-spec>][cidr]`.
    A(Option<MacroString>, DualCidr),
    /// `mx[:<domain-spec>][cidr]`.
    Mx(Option<MacroString>, DualCidr),
    /// `ptr[:<domain-spec>]`.
    Ptr(Option<MacroString>),
    /// `ip4:<address>[/len]`.
    Ip4(Ipv4Addr, Option<u8>),
    /// `ip6:<address>[/len]`.
    Ip6(Ipv6Addr, Option<u8>),
    /// `exists:<domain-spec>`.
    Exists(MacroString),
}

impl Mechanism {
    /// True for the terms that count against the 10-lookup limit (§4.6.4).
    pub fn queries_dns(&self) -> bool {
        !matches!(
            self,
            Mechanism::All | Mechanism::Ip4(..) | Mechanism::Ip6(..)
        )
    }
}

/// A qualifier and a mechanism.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    /// `+`, `-`, `~` or `?`.
    pub qualifier: Qualifier,
    /// What is matched.
    pub mechanism: Mechanism,
}

/// A modifier (§6).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Modifier {
    /// `redirect=<domain-spec>`: counts as a lookup.
    Redirect(MacroString),
    /// `exp=<domain-spec>`: does not count.
    Exp(MacroString),
    /// Any other `name=value`, ignored by evaluators.
    Unknown {
        /// The modifier name, as written.
        name: String,
        /// The value.
        value: MacroString,
    },
}

/// One term of a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// A mechanism with its qualifier.
    Directive(Directive),
    /// A modifier.
    Modifier(Modifier),
}

/// A parsed `v=spf1` record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpfRecord {
    /// The terms, in record order.
    pub terms: Vec<Term>,
}

/// A syntax error, quoting the term that caused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("bad SPF term {term:?}: {reason}")]
pub struct SpfSyntaxError {
    /// The offending term as written.
    pub term: String,
    /// What is wrong with it.
    pub reason: String,
}

impl SpfRecord {
    /// True when `text` is an SPF version 1 record: `v=spf1` (any case) followed by a space
    /// or the end (§4.5); `v=spf10` is not.
    pub fn is_spf(text: &str) -> bool {
        let bytes = text.as_bytes();
        bytes.len() >= 6
            && bytes[..6].eq_ignore_ascii_case(b"v=spf1")
            && (bytes.len() == 6 || bytes[6] == b' ')
    }

    /// Parses a record; terms are separated by spaces (§12).
    pub fn parse(text: &str) -> Result<SpfRecord, SpfSyntaxError> {
        if !SpfRecord::is_spf(text) {
            let version = text.split(' ').next().unwrap_or_default();
            return Err(syntax(version, "not an SPF version 1 record"));
        }
        let mut terms = Vec::new();
        let (mut redirects, mut exps) = (0, 0);
        for word in text[6..].split(' ').filter(|w| !w.is_empty()) {
            let term = parse_term(word)?;
            match &term {
                Term::Modifier(Modifier::Redirect(_)) => redirects += 1,
                Term::Modifier(Modifier::Exp(_)) => exps += 1,
                _ => {}
            }
            if redirects > 1 || exps > 1 {
                return Err(syntax(word, "modifier appears more than once (§6)"));
            }
            terms.push(term);
        }
        Ok(SpfRecord { terms })
    }

    /// The directives, in order.
    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.terms.iter().filter_map(|t| match t {
            Term::Directive(d) => Some(d),
            Term::Modifier(_) => None,
        })
    }

    /// The qualifier of the first `all` mechanism, if any.
    pub fn all(&self) -> Option<Qualifier> {
        self.directives()
            .find(|d| d.mechanism == Mechanism::All)
            .map(|d| d.qualifier)
    }

    /// The `redirect=` target, if any.
    pub fn redirect(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|t| match t {
            Term::Modifier(Modifier::Redirect(target)) => Some(target),
            _ => None,
        })
    }

    /// The `exp=` target, if any.
    pub fn exp(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|t| match t {
            Term::Modifier(Modifier::Exp(target)) => Some(target),
            _ => None,
        })
    }
}

fn syntax(term: &str, reason: impl Into<String>) -> SpfSyntaxError {
    SpfSyntaxError {
        term: term.to_owned(),
        reason: reason.into(),
    }
}

fn is_modifier_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_term(word: &str) -> Result<Term, SpfSyntaxError> {
    let err = |reason: String| syntax(word, reason);
    if let Some((name, value)) = word.split_once('=')
        && is_modifier_name(name)
    {
        let modifier = match name.to_ascii_lowercase().as_str() {
            "redirect" => Modifier::Redirect(parse_domain_spec(value).map_err(err)?),
            "exp" => Modifier::Exp(parse_domain_spec(value).map_err(err)?),
            _ => Modifier::Unknown {
                name: name.to_owned(),
                value: parse_macro_string(value, false).map_err(err)?,
            },
        };
        return Ok(Term::Modifier(modifier));
    }
    let (qualifier, rest) = match word.chars().next().and_then(Qualifier::from_char) {
        Some(q) => (q, &word[1..]),
        None => (Qualifier::Pass, word),
    };
    let name_end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, args) = rest.split_at(name_end);
    let domain_arg = |args: &str| -> Result<MacroString, SpfSyntaxError> {
        match args.strip_prefix(':') {
            Some(spec) => parse_domain_spec(spec).map_err(err),
            None => Err(err(format!("{name} needs \":domain\""))),
        }
    };
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(domain_arg(args)?),
        "exists" => Mechanism::Exists(domain_arg(args)?),
        "ptr" if args.is_empty() => Mechanism::Ptr(None),
        "ptr" => Mechanism::Ptr(Some(domain_arg(args)?)),
        "a" | "mx" => {
            let (spec, cidr) = split_dual_cidr(args).map_err(err)?;
            let spec = match spec {
                "" => None,
                spec => Some(domain_arg(spec)?),
            };
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A(spec, cidr)
            } else {
                Mechanism::Mx(spec, cidr)
            }
        }
        "ip4" => {
            let (addr, len) = ip_arg(args, 32).map_err(err)?;
            let addr = addr
                .parse()
                .map_err(|_| err(format!("{addr:?} is not an IPv4 address")))?;
            Mechanism::Ip4(addr, len)
        }
        "ip6" => {
            let (addr, len) = ip_arg(args, 128).map_err(err)?;
            let addr = addr
                .parse()
                .map_err(|_| err(format!("{addr:?} is not an IPv6 address")))?;
            Mechanism::Ip6(addr, len)
        }
        _ => return Err(err("unknown mechanism".to_owned())),
    };
    Ok(Term::Directive(Directive {
        qualifier,
        mechanism,
    }))
}

/// Parses a CIDR length: "0" or digits without a leading zero, at most `max`.
fn cidr_length(digits: &str, max: u8) -> Result<u8, String> {
    let well_formed = !digits.is_empty()
        && digits.len() <= 3
        && digits.chars().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(len) if well_formed && len <= max => Ok(len),
        _ => Err(format!("invalid CIDR length \"/{digits}\" (0-{max})")),
    }
}

/// `":" address ["/" len]` of ip4/ip6.
fn ip_arg(args: &str, max: u8) -> Result<(&str, Option<u8>), String> {
    let body = args
        .strip_prefix(':')
        .ok_or_else(|| "needs \":address\"".to_owned())?;
    match body.split_once('/') {
        Some((addr, len)) => Ok((addr, Some(cidr_length(len, max)?))),
        None => Ok((body, None)),
    }
}

/// Splits `[":" domain-spec] [dual-cidr-length]` into the domain part and the lengths.
fn split_dual_cidr(args: &str) -> Result<(&str, DualCidr), String> {
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let mut rest = args;
    let mut cidr = DualCidr::default();
    if let Some(i) = rest.rfind("//")
        && all_digits(&rest[i + 2..])
    {
        cidr.ip6 = Some(cidr_length(&rest[i + 2..], 128)?);
        rest = &rest[..i];
    }
    if let Some(i) = rest.rfind('/')
        && all_digits(&rest[i + 1..])
    {
        cidr.ip4 = Some(cidr_length(&rest[i + 1..], 32)?);
        rest = &rest[..i];
    }
    if !rest.is_empty() && !rest.starts_with(':') {
        return Err(format!("unexpected {rest:?}"));
    }
    Ok((rest, cidr))
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.qualifier != Qualifier::Pass {
            write!(f, "{}", self.qualifier.as_char())?;
        }
        let cidr = |f: &mut fmt::Formatter<'_>, c: &DualCidr| {
            if let Some(len) = c.ip4 {
                write!(f, "/{len}")?;
            }
            if let Some(len) = c.ip6 {
                write!(f, "//{len}")?;
            }
            Ok(())
        };
        let opt = |f: &mut fmt::Formatter<'_>, name: &str, spec: &Option<MacroString>| match spec {
            Some(spec) => write!(f, "{name}:{spec}"),
            None => f.write_str(name),
        };
        match &self.mechanism {
            Mechanism::All => f.write_str("all"),
            Mechanism::Include(spec) => write!(f, "include:{spec}"),
            Mechanism::Exists(spec) => write!(f, "exists:{spec}"),
            Mechanism::Ptr(spec) => opt(f, "ptr", spec),
            Mechanism::A(spec, c) => opt(f, "a", spec).and_then(|_| cidr(f, c)),
            Mechanism::Mx(spec, c) => opt(f, "mx", spec).and_then(|_| cidr(f, c)),
            Mechanism::Ip4(addr, len) => match len {
                Some(len) => write!(f, "ip4:{addr}/{len}"),
                None => write!(f, "ip4:{addr}"),
            },
            Mechanism::Ip6(addr, len) => match len {
                Some(len) => write!(f, "ip6:{addr}/{len}"),
                None => write!(f, "ip6:{addr}"),
            },
        }
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
