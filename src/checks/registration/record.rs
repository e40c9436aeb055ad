//! What maildrift reads of an RDAP domain object (RFC 9083 §5.3): the `expiration` event,
//! the status values (RFC 8056's mapping of EPP), the registrar entity and the nameservers.

use super::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The registration as the registry's RDAP server gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdapDomain {
    /// The name the registry answered for (`ldhName`), lower case.
    pub name: String,
    /// The `expiration` event, unix seconds (`None`: the registry publishes none).
    pub expires: Option<i64>,
    /// Status values, lower case (`client hold`, `redemption period`, ...), sorted.
    pub statuses: Vec<String>,
    /// The registrar: its name (vCard `fn`), else its handle.
    pub registrar: Option<String>,
    /// The delegation's nameservers, lower case, sorted.
    pub nameservers: Vec<String>,
}

/// Statuses that take the domain out of the DNS (RFC 8056 `client hold`, `server hold`).
pub(super) const HOLD: [&str; 2] = ["client hold", "server hold"];
/// Statuses of a domain that expired and is on its way to deletion.
pub(super) const DELETING: [&str; 2] = ["redemption period", "pending delete"];

impl RdapDomain {
    /// Parses an RDAP answer; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<RdapDomain, String> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| format!("malformed RDAP answer (not JSON: {e})"))?;
        let object = json
            .as_object()
            .ok_or("malformed RDAP answer: not a JSON object")?;
        if let Some(class) = object.get("objectClassName")
            && class.as_str() != Some("domain")
        {
            return Err(format!("RDAP answer is a {class}, not a domain object"));
        }
        let name = object
            .get("ldhName")
            .and_then(Value::as_str)
            .ok_or("malformed RDAP answer: no ldhName")?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut expires = None;
        for event in array(object.get("events")) {
            if event.get("eventAction").and_then(Value::as_str) == Some("expiration") {
                let date = event.get("eventDate").and_then(Value::as_str).unwrap_or("");
                let parsed = rfc3339::parse(date).ok_or_else(|| {
                    format!("malformed RDAP answer: expiration date {date:?} is not RFC 3339")
                })?;
                expires = Some(parsed);
            }
        }
        let mut statuses: Vec<String> = array(object.get("status"))
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        statuses.sort();
        statuses.dedup();
        let registrar = array(object.get("entities"))
            .find(|entity| {
                array(entity.get("roles")).any(|role| role.as_str() == Some("registrar"))
            })
            .and_then(|entity| vcard_name(entity).or_else(|| string(entity.get("handle"))));
        let mut nameservers: Vec<String> = array(object.get("nameservers"))
            .filter_map(|ns| ns.get("ldhName").and_then(Value::as_str))
            .map(|ns| ns.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        nameservers.sort();
        nameservers.dedup();
        Ok(RdapDomain {
            name,
            expires,
            statuses,
            registrar,
            nameservers,
        })
    }

    /// The statuses among `wanted`.
    pub fn statuses_in(&self, wanted: &[&str]) -> Vec<&str> {
        self.statuses
            .iter()
            .map(String::as_str)
            .filter(|s| wanted.contains(s))
            .collect()
    }
}

/// The items of a JSON array (none when absent or not an array).
fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

fn string(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The `fn` property of an entity's jCard (RFC 7095): `["vcard", [["fn", {}, "text", X]]]`.
fn vcard_name(entity: &Value) -> Option<String> {
    let card = entity.get("vcardArray")?.as_array()?.get(1)?.as_array()?;
    card.iter()
        .filter_map(Value::as_array)
        .find(|property| property.first().and_then(Value::as_str) == Some("fn"))
        .and_then(|property| string(property.get(3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_expiry_statuses_registrar_and_nameservers() {
        let text = r#"{
          "objectClassName": "domain", "ldhName": "EXAMPLE-SHOP.COM",
          "status": ["client transfer prohibited", "Client Hold"],
          "events": [
            {"eventAction": "registration", "eventDate": "2020-01-01T00:00:00Z"},
            {"eventAction": "expiration", "eventDate": "2023-11-14T22:13:20.000Z"}
          ],
          "entities": [
            {"objectClassName": "entity", "roles": ["technical"], "handle": "T1"},
            {"objectClassName": "entity", "roles": ["registrar"], "handle": "292",
             "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example Registrar, Inc."]]]}
          ],
          "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS2.EXAMPLE.NET."},
                          {"objectClassName": "nameserver", "ldhName": "ns1.example.net"}]
        }"#;
        let domain = RdapDomain::parse(text).unwrap();
        assert_eq!(domain.name, "example-shop.com");
        assert_eq!(domain.expires, Some(1_700_000_000));
        assert_eq!(
            domain.statuses,
            ["client hold", "client transfer prohibited"]
        );
        assert_eq!(domain.statuses_in(&HOLD), ["client hold"]);
        assert_eq!(domain.registrar.as_deref(), Some("Example Registrar, Inc."));
        assert_eq!(domain.nameservers, ["ns1.example.net", "ns2.example.net"]);
    }

    #[test]
    fn minimal_and_malformed_answers() {
        let minimal = RdapDomain::parse(
            r#"{"ldhName": "a.example", "entities": [{"roles": ["registrar"], "handle": "R-9"}]}"#,
        )
        .unwrap();
        assert_eq!(minimal.expires, None);
        assert_eq!(minimal.registrar.as_deref(), Some("R-9"));
        for (text, needle) in [
            ("{\"ldhName\": ", "not JSON"),
            ("[1, 2]", "not a JSON object"),
            ("{}", "no ldhName"),
            (
                r#"{"objectClassName": "entity", "ldhName": "x"}"#,
                "not a domain object",
            ),
            (
                r#"{"ldhName": "a.example", "events": [{"eventAction": "expiration", "eventDate": "soon"}]}"#,
                "\"soon\" is not RFC 3339",
            ),
        ] {
            let err = RdapDomain::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
