//! The DKIM key record (RFC 6376 §3.6.1) and the size of its public key, read with a
//! minimal DER walk: `p=` holds an RSA SubjectPublicKeyInfo (some publish the bare PKCS#1
//! RSAPublicKey, which verifiers accept too), or 32 raw bytes for ed25519 (RFC 8463).

use crate::checks::tags::{parse_tags, tag};
use base64::Engine;
use serde::Serialize;

/// The key algorithm (`k=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// `rsa` (the default).
    Rsa,
    /// `ed25519`.
    Ed25519,
}

impl KeyType {
    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

/// A parsed key record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DkimKey {
    /// `k=`.
    pub key_type: KeyType,
    /// Public key size in bits (0 when revoked).
    pub bits: u32,
    /// Empty `p=`: the key is revoked.
    pub revoked: bool,
    /// `t=` flags, lower case (`y` testing, `s` strict).
    pub flags: Vec<String>,
    /// `p=` with whitespace removed (for fingerprints).
    pub public_key: String,
}

/// Why a key record is unusable; quotes the offending part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{0}")]
pub struct DkimKeyError(pub String);

impl DkimKey {
    /// Parses a key record.
    pub fn parse(text: &str) -> Result<DkimKey, DkimKeyError> {
        let err = |m: String| DkimKeyError(m);
        let tags = parse_tags(text).map_err(|e| err(e.to_string()))?;
        if let Some(version) = tag(&tags, "v") {
            if tags.first().is_some_and(|t| t.name != "v") {
                return Err(err("v= must be the first tag".to_owned()));
            }
            if version != "DKIM1" {
                return Err(err(format!("v={version:?}: expected DKIM1")));
            }
        }
        let key_type = match tag(&tags, "k").map(str::to_ascii_lowercase).as_deref() {
            None | Some("rsa") => KeyType::Rsa,
            Some("ed25519") => KeyType::Ed25519,
            Some(other) => return Err(err(format!("unknown key type k={other:?}"))),
        };
        let flags = tag(&tags, "t")
            .map(|t| {
                t.split(':')
                    .map(|f| f.trim().to_ascii_lowercase())
                    .filter(|f| !f.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let Some(p) = tag(&tags, "p") else {
            return Err(err("missing the required p= tag".to_owned()));
        };
        let public_key: String = p.split_whitespace().collect();
        if public_key.is_empty() {
            return Ok(DkimKey {
                key_type,
                bits: 0,
                revoked: true,
                flags,
                public_key,
            });
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&public_key)
            .map_err(|e| err(format!("p= is not base64 ({e}): {}", shorten(&public_key))))?;
        let bits = match key_type {
            KeyType::Ed25519 if der.len() == 32 => 256,
            KeyType::Ed25519 => {
                return Err(err(format!(
                    "an ed25519 key is 32 bytes, p= holds {}",
                    der.len()
                )));
            }
            KeyType::Rsa => rsa_modulus_bits(&der).ok_or_else(|| {
                err(format!(
                    "p= is not an RSA public key: {}",
                    shorten(&public_key)
                ))
            })?,
        };
        Ok(DkimKey {
            key_type,
            bits,
            revoked: false,
            flags,
            public_key,
        })
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 24 {
        return format!("{text:?}");
    }
    // By characters: a key from DNS may hold any character (found by fuzz/dkim_key).
    let head: String = text.chars().take(20).collect();
    format!("\"{head}…\"")
}

/// One DER element: (tag, content, rest).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
/// 1.2.840.113549.1.1.1, rsaEncryption.
const RSA_ENCRYPTION: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Bits of the modulus of an RSA SubjectPublicKeyInfo or PKCS#1 RSAPublicKey.
pub(crate) fn rsa_modulus_bits(der: &[u8]) -> Option<u32> {
    let (SEQUENCE, body, _) = element(der)? else {
        return None;
    };
    let (first_tag, first, rest) = element(body)?;
    let rsa_public_key = match first_tag {
        INTEGER => body,
        SEQUENCE => {
            let (OID, oid, _) = element(first)? else {
                return None;
            };
            if oid != RSA_ENCRYPTION {
                return None;
            }
            let (BIT_STRING, bits, _) = element(rest)? else {
                return None;
            };
            let (0, key) = bits.split_first()? else {
                return None;
            };
            let (SEQUENCE, key, _) = element(key)? else {
                return None;
            };
            key
        }
        _ => return None,
    };
    let (INTEGER, modulus, after) = element(rsa_public_key)? else {
        return None;
    };
    let (INTEGER, _exponent, _) = element(after)? else {
        return None;
    };
    let significant = modulus.iter().position(|b| *b != 0)?;
    let modulus = &modulus[significant..];
    let bytes = u32::try_from(modulus.len()).ok()?;
    Some(bytes * 8 - modulus[0].leading_zeros())
}
