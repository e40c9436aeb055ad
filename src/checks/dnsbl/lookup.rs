//! One blocklist question (RFC 5782): the query name of an address in a zone (reversed
//! octets for IPv4, reversed nibbles for IPv6), and what the answer means: a `127.0.0.x`
//! code is a listing (its TXT record the reason); `127.255.255.x` is the list refusing the
//! question (Spamhaus: a typing error, a public resolver, too many queries) and any answer
//! outside 127/8 is not a blocklist code (a resolver rewriting NXDOMAIN): both unknown,
//! never a listing.

use crate::dns::{AnswerStatus, DnsLookup, RData, RecordType};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

/// What a zone says of an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Listing {
    /// NXDOMAIN (or no A record): not listed.
    NotListed,
    /// Listed, with the return codes and the TXT reason when the zone gives one.
    Listed {
        /// The A records returned (`127.0.0.2`, ...).
        codes: Vec<Ipv4Addr>,
        /// The TXT record at the same name, when there is one.
        reason: Option<String>,
    },
    /// No usable answer: a refusal code, a non-blocklist answer, or a DNS failure.
    Unknown(String),
}

/// The name asked for `address` in `zone`: `2.0.0.127.zen.example` for 127.0.0.2; for IPv6
/// the 32 nibbles, least significant first.
pub fn query_name(address: IpAddr, zone: &str) -> String {
    match address {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(ip) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in ip.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str(zone);
            name
        }
    }
}

/// Why a `127.255.255.x` answer is a refusal (Spamhaus' documented codes; other lists use
/// the same block for errors).
fn refusal(code: Ipv4Addr) -> &'static str {
    match code.octets()[3] {
        252 => "the query was malformed (typing error in the zone or key)",
        254 => {
            "queries through a public or open resolver are refused: ask through your own resolver, or use a key (Spamhaus DQS)"
        }
        255 => "too many queries (rate limited)",
        _ => "the list refused the query",
    }
}

/// Asks `zone` about `address` through `dns`.
pub(super) async fn ask(dns: &dyn DnsLookup, address: IpAddr, zone: &str) -> Listing {
    let name = query_name(address, zone);
    let answer = match dns.lookup(&name, RecordType::A).await {
        Ok(answer) => answer,
        Err(error) => return Listing::Unknown(error.to_string()),
    };
    if answer.status != AnswerStatus::Records {
        return Listing::NotListed;
    }
    let codes: Vec<Ipv4Addr> = answer
        .records
        .iter()
        .filter_map(|r| match r {
            RData::A(ip) => Some(*ip),
            _ => None,
        })
        .collect();
    if let Some(code) = codes.iter().find(|c| c.octets()[..3] == [127, 255, 255]) {
        return Listing::Unknown(format!(
            "{zone} answered {code} for {name}: {}",
            refusal(*code)
        ));
    }
    if let Some(code) = codes.iter().find(|c| c.octets()[0] != 127) {
        return Listing::Unknown(format!(
            "{zone} answered {code} for {name}, which is not a blocklist code (127.0.0.x): a resolver rewriting NXDOMAIN answers?"
        ));
    }
    if codes.is_empty() {
        return Listing::NotListed;
    }
    let reason = match dns.lookup(&name, RecordType::Txt).await {
        Ok(txt) => Some(txt.texts().join(" ")).filter(|t| !t.is_empty()),
        // The listing stands; only its reason is missing.
        Err(_) => None,
    };
    Listing::Listed { codes, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsError;
    use crate::dns::fake::FakeDns;

    #[test]
    fn query_names_reverse_octets_and_nibbles() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.example"),
            "99.2.0.192.bl.example"
        );
        assert_eq!(
            query_name("2001:db8:1:2::ab".parse().unwrap(), "bl.example"),
            "b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example"
        );
    }

    #[tokio::test]
    async fn answers_are_listings_refusals_or_unknown() {
        let dns = FakeDns::new();
        dns.a("2.0.0.127.bl.example", &["127.0.0.2"])
            .txt(
                "2.0.0.127.bl.example",
                &["Listed: see https://bl.example/q?127.0.0.2"],
            )
            .a("3.0.0.127.bl.example", &["127.0.0.4", "127.0.0.10"])
            .a("4.0.0.127.bl.example", &["127.255.255.254"])
            .a("5.0.0.127.bl.example", &["198.51.100.1"])
            .fail(
                "6.0.0.127.bl.example",
                RecordType::A,
                DnsError::Timeout {
                    server: "fake".into(),
                    name: "6.0.0.127.bl.example".into(),
                    rtype: RecordType::A,
                },
            );
        let ip = |last: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        assert_eq!(
            ask(&dns, ip(2), "bl.example").await,
            Listing::Listed {
                codes: vec![Ipv4Addr::new(127, 0, 0, 2)],
                reason: Some("Listed: see https://bl.example/q?127.0.0.2".into())
            }
        );
        let Listing::Listed { codes, reason } = ask(&dns, ip(3), "bl.example").await else {
            panic!("listed");
        };
        assert_eq!((codes.len(), reason), (2, None));
        let Listing::Unknown(why) = ask(&dns, ip(4), "bl.example").await else {
            panic!("refused");
        };
        assert!(
            why.contains("127.255.255.254") && why.contains("public or open resolver"),
            "{why}"
        );
        let Listing::Unknown(why) = ask(&dns, ip(5), "bl.example").await else {
            panic!("not a code");
        };
        assert!(why.contains("not a blocklist code"), "{why}");
        let Listing::Unknown(why) = ask(&dns, ip(6), "bl.example").await else {
            panic!("timeout");
        };
        assert!(why.contains("timeout"), "{why}");
        assert_eq!(ask(&dns, ip(7), "bl.example").await, Listing::NotListed);
    }
}
