//! Conversions between hickory's wire types and the normalised seam types: record data,
//! names (any octets in a label), decoding a message (TXT records without strings
//! included), and reading an answer section (CNAME chain, TTL, negative TTL).

use super::{AnswerStatus, DnsError, RData, RecordType, normalize_name};
use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{self, Name};
use hickory_proto::serialize::binary::DecodeError;

/// Longest CNAME chain followed before giving up (the resolver library uses the same bound).
const MAX_CNAME_CHAIN: usize = 8;

/// The hickory record type for ours.
pub(crate) fn to_hickory_type(rtype: RecordType) -> rr::RecordType {
    match rtype {
        RecordType::A => rr::RecordType::A,
        RecordType::Aaaa => rr::RecordType::AAAA,
        RecordType::Mx => rr::RecordType::MX,
        RecordType::Txt => rr::RecordType::TXT,
        RecordType::Ns => rr::RecordType::NS,
        RecordType::Soa => rr::RecordType::SOA,
        RecordType::Cname => rr::RecordType::CNAME,
        RecordType::Ptr => rr::RecordType::PTR,
        RecordType::Dnskey => rr::RecordType::DNSKEY,
        RecordType::Ds => rr::RecordType::DS,
        RecordType::Tlsa => rr::RecordType::TLSA,
    }
}

/// Parses a query name (absolute; a trailing dot is optional).
///
/// A DNS label is any string of 1 to 63 octets (RFC 2181 §11), and SPF asks for names a
/// host-name parser rejects (`foo:bar/baz.example.com`, spaces and `%` from macros, RFC 7208
/// §7.3): an ASCII name is taken octet for octet. A name with other characters is
/// internationalised (IDNA) into A-labels. Empty labels, labels over 63 octets and names
/// over 255 octets cannot be asked and are errors.
pub(crate) fn parse_name(name: &str) -> Result<Name, DnsError> {
    let normalized = normalize_name(name);
    let parsed = if normalized.is_empty() {
        Ok(Name::root())
    } else if normalized.is_ascii() {
        Name::from_labels(normalized.split('.').map(str::as_bytes))
    } else {
        Name::from_utf8(&normalized)
    };
    let mut parsed = parsed.map_err(|e| DnsError::InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A hickory name as a normalised string: its labels' octets as they are (ASCII
/// lower-cased, no escapes), dot-separated, no trailing dot, root = "".
pub(crate) fn name_string(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect();
    labels.join(".")
}

/// Decodes a DNS message. hickory refuses a whole message that holds a record with empty
/// data outside a dynamic update, yet a TXT record without any character-string is such a
/// record (RFC 7208 §3.3 reads it as the empty string; the OpenSPF suite serves one). Such
/// a message is decoded again as an update, whose reader accepts empty records, and kept
/// only when every empty record is a TXT record, which becomes a TXT without strings.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let error = match Message::from_vec(bytes) {
        Ok(message) => return Ok(message),
        Err(error) => error,
    };
    if !matches!(error, DecodeError::InvalidEmptyRecord) || bytes.len() < 3 {
        return Err(error);
    }
    // The OPCODE is bits 3 to 6 of the third header octet (RFC 1035 §4.1.1).
    let opcode_bits = 0b0111_1000;
    let mut as_update = bytes.to_vec();
    as_update[2] = (as_update[2] & !opcode_bits) | (u8::from(OpCode::Update) << 3);
    let Ok(mut message) = Message::from_vec(&as_update) else {
        return Err(error);
    };
    message.metadata.op_code = OpCode::from_u8((bytes[2] & opcode_bits) >> 3);
    let sections = [
        &mut message.answers,
        &mut message.authorities,
        &mut message.additionals,
    ];
    for record in sections.into_iter().flatten() {
        match record.data {
            rr::RData::Update0(rr::RecordType::TXT) => {
                record.data = rr::RData::TXT(TXT::new(Vec::new()));
            }
            rr::RData::Update0(_) => return Err(error),
            _ => {}
        }
    }
    Ok(message)
}

/// Converts record data of the types we ask for; `None` for anything else.
pub(crate) fn convert_rdata(data: &rr::RData) -> Option<RData> {
    Some(match data {
        rr::RData::A(a) => RData::A(a.0),
        rr::RData::AAAA(aaaa) => RData::Aaaa(aaaa.0),
        rr::RData::MX(mx) => RData::Mx {
            preference: mx.preference,
            exchange: name_string(&mx.exchange),
        },
        rr::RData::TXT(txt) => {
            // RFC 7208 §3.3 / RFC 6376 §3.6.2.2: the strings are concatenated as they are.
            let bytes: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            RData::Txt(String::from_utf8_lossy(&bytes).into_owned())
        }
        rr::RData::NS(ns) => RData::Ns(name_string(&ns.0)),
        rr::RData::CNAME(cname) => RData::Cname(name_string(&cname.0)),
        rr::RData::PTR(ptr) => RData::Ptr(name_string(&ptr.0)),
        rr::RData::SOA(soa) => RData::Soa {
            mname: name_string(&soa.mname),
            serial: soa.serial,
            minimum: soa.minimum,
        },
        _ => return None,
    })
}

/// What an answer section says about one question.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChainedAnswer {
    /// Records of the asked type at the end of the chain.
    pub(crate) records: Vec<RData>,
    /// CNAME targets followed, in order.
    pub(crate) cname_chain: Vec<String>,
    /// Smallest TTL of the records and of the CNAMEs followed; `None` when there were none.
    pub(crate) ttl: Option<u32>,
}

/// Follows the CNAME chain from `qname` through `answers` and collects the records of
/// `rtype` at its end. Asking for CNAME itself returns the CNAME record at `qname`.
///
/// When the chain cannot be followed but records of the asked type are present (a resolver
/// that stripped the intermediate CNAMEs), those records are taken as they are.
pub(crate) fn follow_chain<'r>(
    qname: &str,
    rtype: RecordType,
    answers: impl Iterator<Item = &'r rr::Record> + Clone,
) -> ChainedAnswer {
    let wanted = to_hickory_type(rtype);
    let mut current = normalize_name(qname);
    let mut cname_chain = Vec::new();
    let mut ttl: Option<u32> = None;
    let min = |ttl: Option<u32>, t: u32| Some(ttl.map_or(t, |old| old.min(t)));
    loop {
        let mut records = Vec::new();
        let mut record_ttl = ttl;
        for record in answers.clone() {
            if record.record_type() == wanted
                && name_string(&record.name) == current
                && let Some(data) = convert_rdata(&record.data)
            {
                records.push(data);
                record_ttl = min(record_ttl, record.ttl);
            }
        }
        if !records.is_empty() {
            return ChainedAnswer {
                records,
                cname_chain,
                ttl: record_ttl,
            };
        }
        let next = answers.clone().find_map(|record| match &record.data {
            rr::RData::CNAME(target) if name_string(&record.name) == current => {
                Some((name_string(&target.0), record.ttl))
            }
            _ => None,
        });
        match next {
            Some((target, cname_ttl))
                if cname_chain.len() < MAX_CNAME_CHAIN && !cname_chain.contains(&target) =>
            {
                ttl = min(ttl, cname_ttl);
                current = target.clone();
                cname_chain.push(target);
            }
            _ => break,
        }
    }
    // The chain ended without records of the asked type: take any the server gave for
    // some other owner only when nothing was followed (stripped intermediates).
    let mut records = Vec::new();
    if cname_chain.is_empty() {
        for record in answers.clone().filter(|r| r.record_type() == wanted) {
            if let Some(data) = convert_rdata(&record.data) {
                records.push(data);
                ttl = min(ttl, record.ttl);
            }
        }
    }
    ChainedAnswer {
        records,
        cname_chain,
        ttl,
    }
}

/// RFC 2308 §5: the negative-caching TTL is the smaller of the SOA's own TTL and its
/// MINIMUM field; 0 when the authority section carries no SOA.
pub(crate) fn negative_ttl<'r>(authorities: impl Iterator<Item = &'r rr::Record>) -> u32 {
    authorities
        .filter_map(|record| match &record.data {
            rr::RData::SOA(soa) => Some(record.ttl.min(soa.minimum)),
            _ => None,
        })
        .min()
        .unwrap_or(0)
}

/// The status of a response with `records` found, given whether the rcode was NXDOMAIN.
pub(crate) fn status_of(records: &[RData], nxdomain: bool) -> AnswerStatus {
    if !records.is_empty() {
        AnswerStatus::Records
    } else if nxdomain {
        AnswerStatus::NxDomain
    } else {
        AnswerStatus::NoData
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME};
    use std::net::Ipv4Addr;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn txt_strings_are_joined_without_separator() {
        let txt = rr::RData::TXT(TXT::new(vec!["v=spf1 include:a".into(), " -all".into()]));
        assert_eq!(
            convert_rdata(&txt),
            Some(RData::Txt("v=spf1 include:a -all".into()))
        );
        let invalid = rr::RData::TXT(TXT::from_bytes(vec![b"ok\xff"]));
        assert_eq!(
            convert_rdata(&invalid),
            Some(RData::Txt("ok\u{fffd}".into()))
        );
    }

    #[test]
    fn chain_is_followed_and_loops_stop() {
        let answers = [
            rr::Record::from_rdata(
                name("Www.Example.com."),
                300,
                rr::RData::CNAME(CNAME(name("b.example.net."))),
            ),
            rr::Record::from_rdata(
                name("b.example.net."),
                60,
                rr::RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ),
        ];
        let chained = follow_chain("www.example.com", RecordType::A, answers.iter());
        assert_eq!(chained.records, vec![RData::A(Ipv4Addr::new(192, 0, 2, 1))]);
        assert_eq!(chained.cname_chain, vec!["b.example.net".to_owned()]);
        assert_eq!(chained.ttl, Some(60));

        let cname = follow_chain("www.example.com.", RecordType::Cname, answers.iter());
        assert_eq!(cname.records, vec![RData::Cname("b.example.net".into())]);
        assert!(cname.cname_chain.is_empty());

        let looped = [
            rr::Record::from_rdata(name("a.test."), 1, rr::RData::CNAME(CNAME(name("b.test.")))),
            rr::Record::from_rdata(name("b.test."), 1, rr::RData::CNAME(CNAME(name("a.test.")))),
        ];
        let chained = follow_chain("a.test", RecordType::Txt, looped.iter());
        assert!(chained.records.is_empty());
        assert_eq!(
            chained.cname_chain,
            vec!["b.test".to_owned(), "a.test".to_owned()]
        );
    }

    #[test]
    fn names_keep_their_octets() {
        let odd = parse_name("Foo:Bar/baz.example.COM.").unwrap();
        assert_eq!(odd.iter().next(), Some(&b"foo:bar/baz"[..]));
        assert_eq!(name_string(&odd), "foo:bar/baz.example.com");
        let spaced = "macro%percent  space%20url-space.example.com";
        assert_eq!(name_string(&parse_name(spaced).unwrap()), spaced);
        assert_eq!(
            name_string(&parse_name("bücher.example").unwrap()),
            "xn--bcher-kva.example"
        );
        assert_eq!(name_string(&parse_name("").unwrap()), "");
        for bad in [
            "mail.example...com",
            &format!("{}.example.com", "a".repeat(64)),
        ] {
            let err = parse_name(bad).unwrap_err();
            assert!(
                matches!(&err, DnsError::InvalidName { name, .. } if name == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn txt_without_strings_decodes_as_an_empty_string() {
        let mut response = Message::response(7, OpCode::Query);
        response.add_query(hickory_proto::op::Query::query(
            name("null.test."),
            rr::RecordType::TXT,
        ));
        response.add_answer(rr::Record::from_rdata(
            name("null.test."),
            60,
            rr::RData::TXT(TXT::new(vec![])),
        ));
        response.add_answer(rr::Record::from_rdata(
            name("null.test."),
            60,
            rr::RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
        ));
        let wire = response.to_vec().unwrap();
        assert!(matches!(
            Message::from_vec(&wire),
            Err(DecodeError::InvalidEmptyRecord)
        ));
        let decoded = decode_message(&wire).unwrap();
        assert_eq!(decoded.metadata.op_code, OpCode::Query);
        let texts: Vec<Option<RData>> = decoded
            .answers
            .iter()
            .map(|r| convert_rdata(&r.data))
            .collect();
        assert_eq!(
            texts,
            [
                Some(RData::Txt(String::new())),
                Some(RData::Txt("v=spf1 -all".into()))
            ]
        );

        // An empty record of another type stays an error: that data is malformed.
        let mut response = Message::response(8, OpCode::Query);
        response.add_answer(rr::Record::update0(name("a.test."), 60, rr::RecordType::A));
        let wire = response.to_vec().unwrap();
        assert!(decode_message(&wire).is_err());
    }
}
