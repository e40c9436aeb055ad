//! The DNSSEC judgement, a pure function of the answers: signatures verified with the
//! zone's keys (hickory's [`Verifier`]), validity periods compared with `now`.

use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// One record set of the answer and the RRSIGs that cover it.
#[derive(Clone, Debug)]
pub struct SignedSet {
    /// Owner name.
    pub name: Name,
    /// Type.
    pub rtype: RecordType,
    /// The records (what the signature covers).
    pub records: Vec<Record>,
    /// RRSIGs of that name covering that type.
    pub rrsigs: Vec<RRSIG>,
}

fn rrsigs_of(records: &[Record], name: &Name, rtype: RecordType) -> Vec<RRSIG> {
    records
        .iter()
        .filter(|r| r.name == *name)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                Some(sig.clone())
            }
            _ => None,
        })
        .collect()
}

impl SignedSet {
    /// The set of `name`/`rtype` in `message`'s answer; `None` when it has no such records.
    pub fn from_answer(name: &Name, rtype: RecordType, message: &Message) -> Option<SignedSet> {
        let records: Vec<Record> = message
            .answers
            .iter()
            .filter(|r| r.name == *name && r.record_type() == rtype)
            .cloned()
            .collect();
        (!records.is_empty()).then(|| SignedSet {
            name: name.clone(),
            rtype,
            rrsigs: rrsigs_of(&message.answers, name, rtype),
            records,
        })
    }

    fn label(&self) -> String {
        format!(
            "{} {}",
            self.name.to_ascii().trim_end_matches('.'),
            self.rtype
        )
    }
}

/// The zone's DNSKEY set, its signatures, and (through a resolver) the parent's DS set.
#[derive(Clone, Debug)]
pub struct ZoneKeys {
    /// The signing zone.
    pub zone: Name,
    /// The DNSKEY set as records (for verifying its own signature).
    pub set: SignedSet,
    /// The keys.
    pub keys: Vec<DNSKEY>,
    /// DS records at the parent; `None` when not asked (authoritative servers).
    pub ds: Option<Vec<DS>>,
}

impl ZoneKeys {
    /// From the DNSKEY answer and the DS answer, if asked.
    pub fn from_answers(zone: &Name, dnskey: &Message, ds: Option<&Message>) -> ZoneKeys {
        let set = SignedSet::from_answer(zone, RecordType::DNSKEY, dnskey).unwrap_or(SignedSet {
            name: zone.clone(),
            rtype: RecordType::DNSKEY,
            records: Vec::new(),
            rrsigs: Vec::new(),
        });
        let keys = set
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key.clone()),
                _ => None,
            })
            .collect();
        let ds = ds.map(|message| {
            message
                .answers
                .iter()
                .filter(|r| r.name == *zone)
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds.clone()),
                    _ => None,
                })
                .collect()
        });
        ZoneKeys {
            zone: zone.clone(),
            set,
            keys,
            ds,
        }
    }
}

/// The outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No DNSKEY and no signature.
    Unsigned,
    /// Signed and valid, but the parent publishes no DS.
    Island,
    /// What does not validate.
    Bogus(Vec<String>),
    /// Valid; sets whose signature expires within the window, with seconds left.
    Secure {
        /// (set, seconds left) of each signature expiring within the window.
        expiring: Vec<(String, u64)>,
    },
}

/// The keys (by index) whose signature over `set` verifies and is valid at `now`, and the
/// latest expiration among them; else why not.
fn check_set(set: &SignedSet, keys: &[DNSKEY], now: u64) -> Result<(Vec<usize>, u64), String> {
    if set.rrsigs.is_empty() {
        return Err(format!("{} has no RRSIG", set.label()));
    }
    let mut why = Vec::new();
    let mut valid = Vec::new();
    let mut expiration = 0;
    for rrsig in &set.rrsigs {
        let input = rrsig.input();
        let (inception, expires) = (
            u64::from(input.sig_inception.get()),
            u64::from(input.sig_expiration.get()),
        );
        let signer = keys.iter().enumerate().find(|(_, key)| {
            key.calculate_key_tag().ok() == Some(input.key_tag)
                && Verifier::algorithm(*key) == input.algorithm
        });
        let Some((index, key)) = signer else {
            why.push(format!(
                "signed by key {} which is not in the DNSKEY set",
                input.key_tag
            ));
            continue;
        };
        if let Err(error) = key.verify_rrsig(&set.name, DNSClass::IN, rrsig, set.records.iter()) {
            why.push(format!(
                "signature by key {} does not verify ({error})",
                input.key_tag
            ));
        } else if now > expires {
            why.push(format!(
                "signature by key {} expired {} s ago",
                input.key_tag,
                now - expires
            ));
        } else if now < inception {
            why.push(format!(
                "signature by key {} is not valid yet",
                input.key_tag
            ));
        } else {
            valid.push(index);
            expiration = expiration.max(expires);
        }
    }
    if valid.is_empty() {
        Err(format!("{}: {}", set.label(), why.join("; ")))
    } else {
        Ok((valid, expiration))
    }
}

/// Judges the mail sets and the zone keys at `now` (unix seconds); `window` seconds before
/// expiry a signature is reported.
pub fn judge(sets: &[SignedSet], keys: &ZoneKeys, now: u64, window: u64) -> Verdict {
    let signed = sets.iter().any(|s| !s.rrsigs.is_empty());
    if keys.keys.is_empty() {
        return if signed {
            Verdict::Bogus(vec![format!(
                "records are signed but {} publishes no DNSKEY",
                keys.zone.to_ascii().trim_end_matches('.')
            )])
        } else {
            Verdict::Unsigned
        };
    }
    let mut problems = Vec::new();
    let mut expiring = Vec::new();
    let note = |set: &SignedSet, expiration: u64, expiring: &mut Vec<(String, u64)>| {
        if expiration.saturating_sub(now) < window {
            expiring.push((set.label(), expiration.saturating_sub(now)));
        }
    };
    match check_set(&keys.set, &keys.keys, now) {
        Err(why) => problems.push(format!("the DNSKEY set is not self-signed: {why}")),
        Ok((signers, expiration)) => {
            note(&keys.set, expiration, &mut expiring);
            if let Some(ds) = keys.ds.as_ref().filter(|ds| !ds.is_empty()) {
                let anchored = signers.iter().any(|&i| {
                    ds.iter()
                        .any(|d| d.covers(&keys.zone, &keys.keys[i]).unwrap_or(false))
                });
                if !anchored {
                    let tags: Vec<String> = ds.iter().map(|d| d.key_tag().to_string()).collect();
                    problems.push(format!(
                        "no DS at the parent (key tags {}) matches a key that signs the DNSKEY set",
                        tags.join(", ")
                    ));
                }
            }
        }
    }
    for set in sets {
        match check_set(set, &keys.keys, now) {
            Ok((_, expiration)) => note(set, expiration, &mut expiring),
            Err(why) => problems.push(why),
        }
    }
    if !problems.is_empty() {
        Verdict::Bogus(problems)
    } else if keys.ds.as_ref().is_some_and(Vec::is_empty) {
        Verdict::Island
    } else {
        Verdict::Secure { expiring }
    }
}
