//! `expect.spf.authorizes:`: the SMTP connections that must get SPF `pass`, each a bare
//! IP (`203.0.113.7`) or a mapping `{ ip, sender, helo }`.

use super::issues::Issues;
use super::names::{DOMAIN, check_name};
use super::raw::Text;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::fmt;
use std::net::IpAddr;

/// A connection `expect.spf.authorizes` lists: `check_host()` must give it `pass`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedSender {
    /// The client IP.
    pub ip: IpAddr,
    /// MAIL FROM; `None` means `postmaster@<the watched domain>`.
    pub sender: Option<String>,
    /// The HELO name; `None` means the sender's domain.
    pub helo: Option<String>,
}

/// One entry as written.
#[derive(Debug)]
pub(crate) enum RawAuthorized {
    /// `203.0.113.7`.
    Ip(Text),
    /// `{ ip: 203.0.113.7, sender: bounce@example.com, helo: mail.example.com }`.
    Connection(RawConnection),
}

/// The mapping form.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping such as `{ ip: 203.0.113.7, sender: bounce@example.com, helo: mail.example.com }`"
)]
pub(crate) struct RawConnection {
    /// The client IP.
    ip: Text,
    /// MAIL FROM.
    sender: Option<Text>,
    /// The HELO name.
    helo: Option<Text>,
}

impl<'de> Deserialize<'de> for RawAuthorized {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawAuthorized, D::Error> {
        deserializer.deserialize_any(RawAuthorizedVisitor)
    }
}

struct RawAuthorizedVisitor;

impl<'de> Visitor<'de> for RawAuthorizedVisitor {
    type Value = RawAuthorized;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an IP address, or a mapping `{ ip, sender, helo }`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAuthorized, E> {
        Ok(RawAuthorized::Ip(Text(v.to_owned())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawAuthorized, E> {
        Ok(RawAuthorized::Ip(Text(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawAuthorized, E> {
        Ok(RawAuthorized::Ip(Text(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawAuthorized, E> {
        Ok(RawAuthorized::Ip(Text(v.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAuthorized, A::Error> {
        RawConnection::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(RawAuthorized::Connection)
    }
}

/// Validates the entries of `{field}` (`…expect.spf.authorizes`), recording every problem.
pub(crate) fn authorized_senders(
    raw: Vec<RawAuthorized>,
    field: &str,
    issues: &mut Issues<'_>,
) -> Vec<AuthorizedSender> {
    let mut out = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let (ip, sender, helo, ip_field) = match entry {
            RawAuthorized::Ip(ip) => (ip, None, None, at.clone()),
            RawAuthorized::Connection(c) => (c.ip, c.sender, c.helo, format!("{at}.ip")),
        };
        let before = issues.list.len();
        let ip = match ip.as_str().trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) if ip.as_str().contains('/') => {
                let why = format!("{:?} is a network: list single sending IPs", ip.as_str());
                issues.value(&ip_field, why);
                None
            }
            Err(_) => {
                issues.value(&ip_field, format!("{:?} is not an IP address", ip.as_str()));
                None
            }
        };
        let sender = sender.map(|s| s.as_str().trim().to_owned());
        if let Some(sender) = &sender
            && let Err(why) = check_sender(sender)
        {
            issues.value(&format!("{at}.sender"), why);
        }
        let helo = helo.map(|h| h.as_str().trim().to_owned());
        if let Some(helo) = &helo {
            let why = if helo.is_empty() {
                Some("empty HELO name".to_owned())
            } else if helo.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some(format!(
                    "{helo:?} is not a HELO name: it holds spaces or control characters"
                ))
            } else {
                None
            };
            if let Some(why) = why {
                issues.value(&format!("{at}.helo"), why);
            }
        }
        if let (Some(ip), true) = (ip, issues.list.len() == before) {
            out.push(AuthorizedSender { ip, sender, helo });
        }
    }
    out
}

/// A MAIL FROM address: `local@domain` or a bare domain, the domain a valid name.
fn check_sender(sender: &str) -> Result<(), String> {
    let domain = sender.rsplit_once('@').map_or(sender, |(_, domain)| domain);
    check_name(domain, DOMAIN)
        .map(|_| ())
        .map_err(|why| format!("sender {sender:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::AuthorizedSender;
    use crate::config::Config;
    use std::path::Path;

    fn config(authorizes: &str) -> Result<Config, String> {
        let text = format!(
            "domains:\n  - name: shop.example\n    expect:\n      spf:\n        authorizes:\n{authorizes}"
        );
        Config::parse(&text, Path::new("t.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn bare_ips_and_connections_are_read() {
        let config = config(
            "          - 203.0.113.7\n          - { ip: \"2001:db8::25\", sender: bounce@mail.shop.example, helo: out.shop.example }\n          - ip: 192.0.2.1\n            sender: shop.example\n",
        )
        .unwrap();
        let spf = config.domains[0].expect.spf.as_ref().unwrap();
        let entry = |ip: &str, sender: Option<&str>, helo: Option<&str>| AuthorizedSender {
            ip: ip.parse().unwrap(),
            sender: sender.map(str::to_owned),
            helo: helo.map(str::to_owned),
        };
        assert_eq!(
            spf.authorizes,
            [
                entry("203.0.113.7", None, None),
                entry(
                    "2001:db8::25",
                    Some("bounce@mail.shop.example"),
                    Some("out.shop.example")
                ),
                entry("192.0.2.1", Some("shop.example"), None),
            ]
        );
    }

    #[test]
    fn every_bad_value_is_reported_at_its_line_and_column() {
        let errors = config(
            "          - 203.0.113.0/24\n          - { ip: nope, sender: \"a@b@\" }\n          - { ip: 192.0.2.1, helo: \"two words\" }\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = errors.lines().collect();
        let field = "domains[0].expect.spf.authorizes";
        let want = [
            format!("t.yml:6:13: {field}[0]: \"203.0.113.0/24\" is a network"),
            format!("t.yml:7:19: {field}[1].ip: \"nope\" is not an IP address"),
            format!("t.yml:7:33: {field}[1].sender: sender \"a@b@\": "),
            format!("t.yml:8:36: {field}[2].helo: \"two words\" is not a HELO name"),
        ];
        assert_eq!(lines.len(), want.len(), "{errors}");
        for (line, want) in lines.iter().zip(&want) {
            assert!(
                line.starts_with(want.as_str()),
                "{line:?} should start with {want:?}\n{errors}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_other_shapes_are_refused_where_they_are() {
        let field = "domains[0].expect.spf.authorizes";
        for (entry, want) in [
            (
                "          - { ip: 192.0.2.1, mailfrom: x@shop.example }\n",
                format!(
                    "t.yml:6:30: {field}[0].mailfrom: unknown field `mailfrom`, expected one of `ip`, `sender`, `helo`"
                ),
            ),
            (
                "          - [192.0.2.1]\n",
                format!(
                    "t.yml:6:13: {field}[0]: invalid type: sequence, expected an IP address, or a mapping `{{ ip, sender, helo }}`"
                ),
            ),
        ] {
            let errors = config(entry).unwrap_err();
            assert_eq!(errors, want);
        }
    }
}
