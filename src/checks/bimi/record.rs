//! The BIMI assertion record (`v=BIMI1; l=<logo>; a=<evidence>`, the BIMI Group's draft
//! specification): tag syntax shared with DKIM and DMARC, `l=` and `a=` https URLs.

use crate::checks::tags::{parse_tags, tag};
use serde::Serialize;

/// A parsed BIMI record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BimiRecord {
    /// `l=`: the logo; `None` for a declination record (`l=` empty).
    pub logo: Option<HttpsUrl>,
    /// `a=`: the Verified Mark (or Common Mark) Certificate; `None` when absent or empty.
    pub evidence: Option<HttpsUrl>,
}

/// An `https:` URL split for fetching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpsUrl {
    /// The URL as written.
    pub url: String,
    /// Host name, lower-cased.
    pub host: String,
    /// Port (443 unless given).
    pub port: u16,
    /// Path and query.
    pub path: String,
}

impl std::fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl HttpsUrl {
    /// Parses an absolute `https:` URL; the error quotes it.
    pub fn parse(text: &str) -> Result<HttpsUrl, String> {
        let uri: hyper::Uri = text
            .parse()
            .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if uri.scheme_str().map(str::to_ascii_lowercase).as_deref() != Some("https") {
            return Err(format!("{text:?} is not an https: URL"));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{text:?} has no host"))?;
        Ok(HttpsUrl {
            url: text.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(443),
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// True when a TXT record is meant as BIMI (`v=BIMI1` first, any case).
pub fn is_bimi(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    first
        .split_once('=')
        .is_some_and(|(n, v)| n.trim() == "v" && v.trim().eq_ignore_ascii_case("BIMI1"))
}

impl BimiRecord {
    /// Parses a record; the error says which tag is wrong.
    pub fn parse(text: &str) -> Result<BimiRecord, String> {
        let tags = parse_tags(text).map_err(|e| e.to_string())?;
        if tags
            .first()
            .is_none_or(|t| t.name != "v" || t.value != "BIMI1")
        {
            return Err(format!("{text:?} does not start with v=BIMI1"));
        }
        let logo = tag(&tags, "l").ok_or("missing l= (write l= with no value to decline)")?;
        let url = |name: &str, value: &str| -> Result<Option<HttpsUrl>, String> {
            match value.trim() {
                "" => Ok(None),
                value if value.contains(',') => {
                    Err(format!("{name}={value:?}: exactly one URL expected"))
                }
                value => HttpsUrl::parse(value)
                    .map(Some)
                    .map_err(|e| format!("{name}=: {e}")),
            }
        };
        let logo = url("l", logo)?;
        if let Some(logo) = &logo
            && !logo
                .path
                .split('?')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .ends_with(".svg")
        {
            return Err(format!("l={}: the logo must be an .svg file", logo.url));
        }
        let evidence = url("a", tag(&tags, "a").unwrap_or_default())?;
        Ok(BimiRecord { logo, evidence })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let record = BimiRecord::parse(
            "v=BIMI1; l=https://Brand.Example:8443/logo.svg; a=https://brand.example/vmc.pem",
        )
        .unwrap();
        let logo = record.logo.unwrap();
        assert_eq!(
            (logo.host.as_str(), logo.port, logo.path.as_str()),
            ("brand.example", 8443, "/logo.svg")
        );
        assert_eq!(record.evidence.unwrap().path, "/vmc.pem");
        let declined = BimiRecord::parse("v=BIMI1; l=;").unwrap();
        assert_eq!(declined.logo, None);
        for (bad, why) in [
            (
                "v=BIMI2; l=https://a.example/l.svg",
                "does not start with v=BIMI1",
            ),
            ("v=BIMI1; a=https://a.example/v.pem", "missing l="),
            ("v=BIMI1; l=http://a.example/l.svg", "not an https: URL"),
            ("v=BIMI1; l=https://a.example/l.png", "must be an .svg file"),
            ("v=BIMI1; l=https://a.example/l.svg; a=ftp://x/v.pem", "a=:"),
            (
                "v=BIMI1; l=https://a.example/a.svg,https://b.example/b.svg",
                "exactly one URL",
            ),
        ] {
            let err = BimiRecord::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(is_bimi("v=bimi1; l="));
        assert!(!is_bimi("v=spf1 -all"));
    }
}
