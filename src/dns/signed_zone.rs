//! Pre-signed zone text (as `ldns-signzone` writes it) for the local server: hickory's zone
//! parser refuses DNSSEC record types ("should be dynamically generated"), so DNSKEY and
//! RRSIG lines are taken out here and built by hand; NSEC, NSEC3 and NSEC3PARAM lines are
//! dropped (denial of existence is not served). Only the one-record-per-line form
//! `OWNER TTL IN TYPE RDATA` is recognised; other lines go to hickory's parser unchanged.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG, SigInput};
use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey, SerialNumber};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use std::str::FromStr;
use std::sync::Arc;

/// Zone text without the DNSSEC lines, and the records built from them.
pub(crate) struct Presigned {
    /// What hickory's parser can read.
    pub(crate) text: String,
    /// DNSKEY records first, then RRSIGs.
    pub(crate) records: Vec<Record>,
}

/// Splits DNSSEC lines out of `zone_text`.
pub(crate) fn split(zone_text: &str) -> Result<Presigned, String> {
    let mut text = String::with_capacity(zone_text.len());
    let (mut keys, mut sigs) = (Vec::new(), Vec::new());
    for line in zone_text.lines() {
        let data = line.split(';').next().unwrap_or_default();
        let tokens: Vec<&str> = data.split_whitespace().collect();
        let rtype = match tokens.as_slice() {
            [_, _, class, rtype, ..] if class.eq_ignore_ascii_case("IN") => {
                rtype.to_ascii_uppercase()
            }
            _ => String::new(),
        };
        let bad = |why: &str| format!("DNSSEC record {line:?}: {why}");
        match rtype.as_str() {
            "RRSIG" => sigs.push(rrsig(&tokens).map_err(|e| bad(&e))?),
            "DNSKEY" => keys.push(dnskey(&tokens).map_err(|e| bad(&e))?),
            "NSEC" | "NSEC3" | "NSEC3PARAM" => {}
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    keys.extend(sigs);
    Ok(Presigned {
        text,
        records: keys,
    })
}

/// Adds the records of [`split`] to a zone handler (after construction, which keeps no
/// RRSIGs): DNSKEYs as records, each RRSIG to the set it covers (RRSIGs of dropped types
/// are dropped too).
pub(crate) fn insert(handler: &mut InMemoryZoneHandler, extra: Vec<Record>) -> Result<(), String> {
    for record in extra {
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &record.data else {
            let what = format!("{} {}", record.name, record.record_type());
            if !handler.upsert_mut(record, 0) {
                return Err(format!("cannot add {what}"));
            }
            continue;
        };
        let key = RrKey::new(LowerName::from(&record.name), sig.input().type_covered);
        if let Some(set) = handler.records_get_mut().get_mut(&key) {
            Arc::make_mut(set).insert_rrsig(record);
        }
    }
    Ok(())
}

fn owner_ttl(tokens: &[&str]) -> Result<(Name, u32), String> {
    let name = Name::from_ascii(tokens[0]).map_err(|e| e.to_string())?;
    let ttl = tokens[1]
        .parse()
        .map_err(|_| format!("bad TTL {:?}", tokens[1]))?;
    Ok((name, ttl))
}

fn number<T: FromStr>(text: Option<&&str>, what: &str) -> Result<T, String> {
    text.and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("bad {what} {text:?}"))
}

fn base64(tokens: &[&str]) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(tokens.concat())
        .map_err(|e| format!("bad base64: {e}"))
}

fn dnskey(tokens: &[&str]) -> Result<Record, String> {
    let (name, ttl) = owner_ttl(tokens)?;
    let flags: u16 = number(tokens.get(4), "flags")?;
    let algorithm = Algorithm::from_u8(number(tokens.get(6), "algorithm")?);
    let key = base64(tokens.get(7..).unwrap_or_default())?;
    let rdata = DNSKEY::with_flags(flags, PublicKeyBuf::new(key, algorithm));
    Ok(Record::from_rdata(
        name,
        ttl,
        RData::DNSSEC(DNSSECRData::DNSKEY(rdata)),
    ))
}

fn rrsig(tokens: &[&str]) -> Result<Record, String> {
    let (name, ttl) = owner_ttl(tokens)?;
    let covered = tokens.get(4).ok_or("no type covered")?;
    let type_covered = RecordType::from_str(covered).map_err(|e| e.to_string())?;
    let signer = tokens.get(11).ok_or("no signer")?;
    let input = SigInput {
        type_covered,
        algorithm: Algorithm::from_u8(number(tokens.get(5), "algorithm")?),
        num_labels: number(tokens.get(6), "labels")?,
        original_ttl: number(tokens.get(7), "original TTL")?,
        sig_expiration: SerialNumber::new(timestamp(tokens.get(8))?),
        sig_inception: SerialNumber::new(timestamp(tokens.get(9))?),
        key_tag: number(tokens.get(10), "key tag")?,
        signer_name: Name::from_ascii(signer).map_err(|e| e.to_string())?,
    };
    let signature = base64(tokens.get(12..).unwrap_or_default())?;
    let rdata = RRSIG::from_sig(input, signature);
    Ok(Record::from_rdata(
        name,
        ttl,
        RData::DNSSEC(DNSSECRData::RRSIG(rdata)),
    ))
}

/// `YYYYMMDDHHmmSS` (UTC) or seconds since the epoch (RFC 4034 §3.2).
fn timestamp(text: Option<&&str>) -> Result<u32, String> {
    let text = text.ok_or("missing time")?;
    let digits = |range: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(range)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("bad time {text:?}"))
    };
    if text.len() != 14 {
        return number(Some(text), "time");
    }
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let seconds = digits(8..10)? * 3600 + digits(10..12)? * 60 + digits(12..14)?;
    // Days from 1970-01-01 to the civil date (proleptic Gregorian).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u32::try_from(days * 86400 + seconds).map_err(|_| format!("time {text:?} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(timestamp(Some(&"19700101000000")).unwrap(), 0);
        assert_eq!(timestamp(Some(&"20261230000000")).unwrap(), 1_798_588_800);
        assert_eq!(timestamp(Some(&"20000229120000")).unwrap(), 951_825_600);
        assert_eq!(timestamp(Some(&"1798588800")).unwrap(), 1_798_588_800);
        assert!(timestamp(Some(&"2026123000000x")).is_err());
    }

    #[test]
    fn splits_dnssec_lines() {
        let zone = "$ORIGIN a.example.\na.example.\t60\tIN\tMX\t10 mx.a.example.\n\
            a.example.\t60\tIN\tRRSIG\tMX 13 2 60 20261230000000 20261125022156 615 a.example. AAEC AwQ=\n\
            a.example.\t60\tIN\tDNSKEY\t257 3 13 AAEC ;{id = 1 (ksk)}\n\
            a.example.\t60\tIN\tNSEC\tb.a.example. MX RRSIG NSEC\n";
        let presigned = split(zone).unwrap();
        assert_eq!(presigned.text.lines().count(), 2);
        assert_eq!(presigned.records.len(), 2);
        assert_eq!(presigned.records[0].record_type(), RecordType::DNSKEY);
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &presigned.records[1].data else {
            panic!("not an RRSIG");
        };
        assert_eq!(sig.input().key_tag, 615);
        assert_eq!(sig.sig(), &[0, 1, 2, 3, 4]);
        assert!(split("a.example. 60 IN RRSIG MX 13").is_err());
    }
}
