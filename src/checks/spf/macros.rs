//! SPF macro-strings (RFC 7208 §7): parsing and validation; expansion of the macros that
//! do not depend on the sender (only `%{d}` and the escapes) for the expansion tree, and
//! of every macro for `check_host` and its explanations.

use std::fmt;

/// A macro letter (RFC 7208 §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MacroLetter {
    /// `s`: the sender address.
    Sender,
    /// `l`: the local part of the sender.
    LocalPart,
    /// `o`: the domain of the sender.
    SenderDomain,
    /// `d`: the domain being checked (known while expanding).
    Domain,
    /// `i`: the client IP.
    Ip,
    /// `p`: the validated domain name of the client IP.
    ValidatedName,
    /// `v`: "in-addr" or "ip6".
    IpVersion,
    /// `h`: the HELO/EHLO domain.
    Helo,
    /// `c`: the client IP in readable form (explanation text only).
    ClientIp,
    /// `r`: the receiving host (explanation text only).
    Receiver,
    /// `t`: the current timestamp (explanation text only).
    Timestamp,
}

impl MacroLetter {
    fn from_char(c: char) -> Option<MacroLetter> {
        Some(match c.to_ascii_lowercase() {
            's' => MacroLetter::Sender,
            'l' => MacroLetter::LocalPart,
            'o' => MacroLetter::SenderDomain,
            'd' => MacroLetter::Domain,
            'i' => MacroLetter::Ip,
            'p' => MacroLetter::ValidatedName,
            'v' => MacroLetter::IpVersion,
            'h' => MacroLetter::Helo,
            'c' => MacroLetter::ClientIp,
            'r' => MacroLetter::Receiver,
            't' => MacroLetter::Timestamp,
            _ => return None,
        })
    }

    fn as_char(self) -> char {
        match self {
            MacroLetter::Sender => 's',
            MacroLetter::LocalPart => 'l',
            MacroLetter::SenderDomain => 'o',
            MacroLetter::Domain => 'd',
            MacroLetter::Ip => 'i',
            MacroLetter::ValidatedName => 'p',
            MacroLetter::IpVersion => 'v',
            MacroLetter::Helo => 'h',
            MacroLetter::ClientIp => 'c',
            MacroLetter::Receiver => 'r',
            MacroLetter::Timestamp => 't',
        }
    }

    /// `c`, `r` and `t` are only allowed in explanation text (§7.2), never in a record.
    fn explanation_only(self) -> bool {
        matches!(
            self,
            MacroLetter::ClientIp | MacroLetter::Receiver | MacroLetter::Timestamp
        )
    }
}

/// One `%{...}` expansion with its transformers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MacroExpand {
    /// Which value is inserted.
    pub letter: MacroLetter,
    /// Upper-case letter: URL-escape the value (§7.3).
    pub url_escape: bool,
    /// Keep only this many right-hand parts (never 0).
    pub keep: Option<u16>,
    /// Reverse the parts before keeping.
    pub reverse: bool,
    /// Characters that split the value into parts; empty means ".".
    pub delimiters: String,
}

/// A piece of a macro-string.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MacroPart {
    /// Literal text, copied as is.
    Literal(String),
    /// A `%{...}` expansion.
    Expand(MacroExpand),
    /// `%%`: a percent sign.
    Percent,
    /// `%_`: a space.
    Space,
    /// `%-`: an URL-encoded space (`%20`).
    UrlSpace,
}

/// A parsed macro-string (a domain-spec or an unknown modifier's value).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MacroString {
    /// The pieces, in order.
    pub parts: Vec<MacroPart>,
}

impl MacroString {
    /// True when expanding needs something only a real SMTP session knows (sender, client
    /// IP, HELO, ...), so a monitor cannot follow it.
    pub fn depends_on_sender(&self) -> bool {
        self.parts.iter().any(|part| match part {
            MacroPart::Expand(m) => m.letter != MacroLetter::Domain,
            _ => false,
        })
    }

    /// Expands with `domain` as `%{d}`; `None` when the string depends on the sender.
    /// Names longer than 253 octets lose left-hand labels (§7.3).
    pub fn expand(&self, domain: &str) -> Option<String> {
        if self.depends_on_sender() {
            return None;
        }
        // Without sender-dependent macros, every macro left is `%{d}`.
        let out = self.render(|_| domain.to_owned());
        Some(truncate_name(crate::dns::normalize_name(&out)))
    }
}

/// What the sender-dependent macros expand to (RFC 7208 §7.2), for `check_host`.
#[derive(Clone, Debug)]
pub struct MacroContext<'a> {
    /// `%{s}`: the sender address (`local@domain`).
    pub sender: &'a str,
    /// `%{i}`, `%{c}`, `%{v}`: the client IP.
    pub ip: std::net::IpAddr,
    /// `%{h}`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `%{d}`: the domain whose record is being evaluated.
    pub domain: &'a str,
    /// `%{p}`: the validated domain name of the client IP (§5.5), "unknown" when none is.
    /// Finding it takes DNS queries, so it is looked up only for strings that use it
    /// ([`MacroString::uses`]).
    pub validated: &'a str,
}

impl MacroContext<'_> {
    fn value(&self, letter: MacroLetter) -> String {
        let (local, sender_domain) = self.sender.rsplit_once('@').unwrap_or(("", self.sender));
        match letter {
            MacroLetter::Sender => self.sender.to_owned(),
            MacroLetter::LocalPart if local.is_empty() => "postmaster".to_owned(),
            MacroLetter::LocalPart => local.to_owned(),
            MacroLetter::SenderDomain => sender_domain.to_owned(),
            MacroLetter::Domain => self.domain.to_owned(),
            // Upper-case nibbles for IPv6: DNS names compare without case, and in
            // explanation text this is the form the OpenSPF suite expects (v-macro-ip6).
            MacroLetter::Ip => match self.ip {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => nibbles(ip).join(".").to_ascii_uppercase(),
            },
            MacroLetter::IpVersion => match self.ip {
                std::net::IpAddr::V4(_) => "in-addr".to_owned(),
                std::net::IpAddr::V6(_) => "ip6".to_owned(),
            },
            MacroLetter::Helo => self.helo.to_owned(),
            MacroLetter::ValidatedName => self.validated.to_owned(),
            MacroLetter::ClientIp => self.ip.to_string(),
            // The receiving host: a monitor or an admin's command is none (§7.3 allows
            // "unknown" when the name is not available).
            MacroLetter::Receiver => "unknown".to_owned(),
            MacroLetter::Timestamp => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string(),
        }
    }
}

/// The 32 hex nibbles of an IPv6 address, most significant first (`%{i}` of §7.3).
pub fn nibbles(ip: std::net::Ipv6Addr) -> Vec<String> {
    ip.octets()
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .map(|n| format!("{n:x}"))
        .collect()
}

impl MacroString {
    /// Expands every macro with the values of a real SMTP transaction (`check_host`), as a
    /// domain name: lower-case, one trailing dot dropped, left-hand labels dropped until it
    /// fits in 253 octets (§7.3).
    pub fn expand_for(&self, context: &MacroContext<'_>) -> String {
        let out = self.render(|letter| context.value(letter));
        truncate_name(crate::dns::normalize_name(&out))
    }

    /// Expands an explanation string (§6.2): the text as it is, nothing normalised.
    pub fn explain(&self, context: &MacroContext<'_>) -> String {
        self.render(|letter| context.value(letter))
    }

    /// True when some macro of the string is `letter`.
    pub fn uses(&self, letter: MacroLetter) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, MacroPart::Expand(m) if m.letter == letter))
    }
}

impl MacroString {
    /// The string with each macro replaced by the transformed `value` of its letter.
    fn render(&self, value: impl Fn(MacroLetter) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                MacroPart::Literal(text) => out.push_str(text),
                MacroPart::Percent => out.push('%'),
                MacroPart::Space => out.push(' '),
                MacroPart::UrlSpace => out.push_str("%20"),
                MacroPart::Expand(m) => out.push_str(&transform(m, &value(m.letter))),
            }
        }
        out
    }
}

/// Drops left-hand labels until the name fits in 253 octets (§7.3).
fn truncate_name(mut name: String) -> String {
    while name.len() > 253 {
        match name.split_once('.') {
            Some((_, rest)) => name = rest.to_owned(),
            None => break,
        }
    }
    name
}

fn transform(m: &MacroExpand, value: &str) -> String {
    let delimiters = if m.delimiters.is_empty() {
        "."
    } else {
        &m.delimiters
    };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if m.reverse {
        parts.reverse();
    }
    if let Some(keep) = m.keep {
        let keep = usize::from(keep).min(parts.len());
        parts.drain(..parts.len() - keep);
    }
    let joined = parts.join(".");
    if !m.url_escape {
        return joined;
    }
    joined
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl fmt::Display for MacroString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                MacroPart::Literal(text) => f.write_str(text)?,
                MacroPart::Percent => f.write_str("%%")?,
                MacroPart::Space => f.write_str("%_")?,
                MacroPart::UrlSpace => f.write_str("%-")?,
                MacroPart::Expand(m) => {
                    let letter = m.letter.as_char();
                    let letter = if m.url_escape {
                        letter.to_ascii_uppercase()
                    } else {
                        letter
                    };
                    write!(f, "%{{{letter}")?;
                    if let Some(keep) = m.keep {
                        write!(f, "{keep}")?;
                    }
                    if m.reverse {
                        f.write_str("r")?;
                    }
                    write!(f, "{}}}", m.delimiters)?;
                }
            }
        }
        Ok(())
    }
}

const DELIMITERS: &str = ".-+,/_=";

/// Parses a macro-string (§7.1). `in_domain` forbids the explanation-only letters.
pub fn parse_macro_string(text: &str, in_domain: bool) -> Result<MacroString, String> {
    parse(text, in_domain, false)
}

/// Parses the explanation string an `exp=` target publishes (§6.2): a macro-string that
/// may also hold spaces, and the explanation-only letters `c`, `r` and `t`.
pub fn parse_explanation(text: &str) -> Result<MacroString, String> {
    parse(text, false, true)
}

fn parse(text: &str, in_domain: bool, spaces: bool) -> Result<MacroString, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            let visible = ('\x21'..='\x7e').contains(&c);
            if !(visible || spaces && c == ' ') {
                return Err(format!("invalid character {c:?}"));
            }
            literal.push(c);
            continue;
        }
        let part = match chars.next() {
            Some('%') => MacroPart::Percent,
            Some('_') => MacroPart::Space,
            Some('-') => MacroPart::UrlSpace,
            Some('{') => {
                let mut body = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => body.push(c),
                        None => return Err("unterminated macro \"%{\"".to_owned()),
                    }
                }
                MacroPart::Expand(parse_expand(&body, in_domain)?)
            }
            Some(other) => return Err(format!("invalid macro \"%{other}\"")),
            None => return Err("lone \"%\" at the end".to_owned()),
        };
        if !literal.is_empty() {
            parts.push(MacroPart::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
    }
    if !literal.is_empty() {
        parts.push(MacroPart::Literal(literal));
    }
    Ok(MacroString { parts })
}

fn parse_expand(body: &str, in_domain: bool) -> Result<MacroExpand, String> {
    let bad = || format!("invalid macro \"%{{{body}}}\"");
    let mut chars = body.chars();
    let first = chars.next().ok_or_else(bad)?;
    let letter = MacroLetter::from_char(first).ok_or_else(bad)?;
    if in_domain && letter.explanation_only() {
        return Err(format!(
            "macro \"%{{{body}}}\": %{{{first}}} is only allowed in explanation text"
        ));
    }
    let rest = chars.as_str();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, rest) = rest.split_at(digits_end);
    let keep = if digits.is_empty() {
        None
    } else {
        match digits.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad()),
        }
    };
    let (reverse, delimiters) = match rest.strip_prefix(['r', 'R']) {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if !delimiters.chars().all(|c| DELIMITERS.contains(c)) {
        return Err(bad());
    }
    Ok(MacroExpand {
        letter,
        url_escape: first.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: delimiters.to_owned(),
    })
}

/// Parses a domain-spec (§7.1): a macro-string ending in a macro or in `.toplabel[.]`.
pub fn parse_domain_spec(text: &str) -> Result<MacroString, String> {
    if text.is_empty() {
        return Err("empty domain".to_owned());
    }
    let spec = parse_macro_string(text, true)?;
    match spec.parts.last() {
        Some(MacroPart::Literal(tail)) => {
            let tail = tail.strip_suffix('.').unwrap_or(tail);
            match tail.rsplit_once('.') {
                Some((_, top)) if is_toplabel(top) => Ok(spec),
                _ => Err(format!("{text:?} does not end in a valid top-level label")),
            }
        }
        _ => Ok(spec),
    }
}

fn is_toplabel(label: &str) -> bool {
    !label.is_empty()
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().any(|c| c.is_ascii_alphabetic() || c == '-')
}

#[cfg(test)]
#[path = "macros_tests.rs"]
mod tests;
