//! The RDAP bootstrap registry for DNS (RFC 9224): which server answers for which TLD. The
//! copy shipped with maildrift (`config/rdap/dns.json`), a file named in the config, or a
//! copy fetched from `defaults.rdap.bootstrap_url` (at most once per interval, kept across
//! restarts through the check cache; the shipped or configured copy serves until it
//! answers).

use super::client::{RdapClient, RdapError};
use crate::checks::{Cached, CheckCache};
use crate::config::RdapSettings;
use crate::finding::CheckKind;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The bootstrap file shipped with maildrift.
pub const SHIPPED: &str = include_str!("../../../config/rdap/dns.json");

/// A parsed bootstrap file: label sequence (`com`, `co.uk`) → RDAP base URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bootstrap {
    /// Entry (lower case, A-labels) → base URLs, each ending in `/`, HTTPS first.
    services: HashMap<String, Vec<String>>,
    /// Where it came from, for messages.
    pub source: String,
}

impl Bootstrap {
    /// Parses RFC 9224 §4 JSON: `{"services": [[["tld", ...], ["https://base/", ...]], ...]}`.
    pub fn parse(text: &str, source: &str) -> Result<Bootstrap, String> {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("bootstrap file {source} is not JSON: {e}"))?;
        let services = json
            .get("services")
            .and_then(|s| s.as_array())
            .ok_or_else(|| format!("bootstrap file {source} has no \"services\" list"))?;
        let mut out = HashMap::new();
        for (i, service) in services.iter().enumerate() {
            let bad =
                || format!("bootstrap file {source}: services[{i}] is not [[entries], [urls]]");
            let pair = service
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(bad)?;
            let strings = |value: &serde_json::Value| -> Option<Vec<String>> {
                value
                    .as_array()?
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            let entries = strings(&pair[0]).ok_or_else(bad)?;
            let mut urls: Vec<String> = strings(&pair[1])
                .ok_or_else(bad)?
                .into_iter()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .map(|u| if u.ends_with('/') { u } else { format!("{u}/") })
                .collect();
            // RFC 9224 §3: prefer HTTPS when a service lists both.
            urls.sort_by_key(|u| !u.starts_with("https://"));
            if urls.is_empty() {
                continue;
            }
            for entry in entries {
                let entry = crate::dns::names::to_ascii(&entry).unwrap_or(entry);
                out.insert(entry, urls.clone());
            }
        }
        Ok(Bootstrap {
            services: out,
            source: source.to_owned(),
        })
    }

    /// The base URL for `name` (an A-label name): the entry matching the most labels at its
    /// end (`co.uk` before `uk`, RFC 9224 §4). `None` when no entry matches.
    pub fn server_for(&self, name: &str) -> Option<&str> {
        let mut rest = name;
        loop {
            if let Some(urls) = self.services.get(rest) {
                return urls.first().map(String::as_str);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// Entries it holds.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

/// The cache key of a fetched bootstrap file.
fn cache_key(url: &str) -> String {
    format!("bootstrap {url}")
}

/// Which bootstrap file is in force, refreshed from the URL when one is set.
#[derive(Debug)]
pub(super) struct Bootstraps {
    /// The shipped copy, parsed once.
    shipped: Arc<Bootstrap>,
    /// What was read or fetched, and when to look again.
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The configured file, parsed (re-read after an interval).
    file: Option<(PathBuf, Arc<Bootstrap>, Instant)>,
    /// The copy fetched from the URL, and when to fetch again.
    fetched: Option<(String, Option<Arc<Bootstrap>>, Instant)>,
}

impl Default for Bootstraps {
    fn default() -> Bootstraps {
        let shipped = Bootstrap::parse(SHIPPED, "shipped with maildrift")
            .expect("the shipped bootstrap file parses (a test guards it)");
        Bootstraps {
            shipped: Arc::new(shipped),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }
}

impl Bootstraps {
    /// The bootstrap file to use now: the copy from `bootstrap_url` when it was fetched,
    /// else the configured file, else the shipped copy.
    pub(super) async fn current(
        &self,
        settings: &RdapSettings,
        client: &RdapClient,
        cache: Option<&dyn CheckCache>,
    ) -> Arc<Bootstrap> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let base = match &settings.bootstrap_file {
            None => self.shipped.clone(),
            Some(path) => match &state.file {
                Some((p, parsed, until)) if p == path && *until > now => parsed.clone(),
                _ => {
                    let parsed = read_file(path).unwrap_or_else(|error| {
                        tracing::warn!(%error, "using the shipped RDAP bootstrap file");
                        self.shipped.clone()
                    });
                    state.file = Some((path.clone(), parsed.clone(), now + settings.interval));
                    parsed
                }
            },
        };
        let Some(url) = &settings.bootstrap_url else {
            return base;
        };
        if let Some((u, fetched, next)) = &state.fetched
            && u == url
            && *next > now
        {
            return fetched.clone().unwrap_or(base);
        }
        let key = cache_key(url);
        let kept = cache.and_then(|c| c.get(CheckKind::Registration, &key));
        let age = |at: SystemTime| {
            SystemTime::now()
                .duration_since(at)
                .unwrap_or(Duration::ZERO)
        };
        if state.fetched.is_none()
            && let Some(kept) = kept.filter(|k| age(k.stored_at) < settings.interval)
            && let Ok(parsed) = Bootstrap::parse(&kept.json, url)
        {
            let next = now + settings.interval.saturating_sub(age(kept.stored_at));
            let parsed = Arc::new(parsed);
            state.fetched = Some((url.clone(), Some(parsed.clone()), next));
            return parsed;
        }
        let fetched = match client.get_text(url).await.and_then(|text| {
            Bootstrap::parse(&text, url)
                .map_err(RdapError::Malformed)
                .map(|b| (text, b))
        }) {
            Ok((text, parsed)) => {
                if let Some(cache) = cache {
                    let value = Cached {
                        json: text,
                        stored_at: SystemTime::now(),
                    };
                    cache.put(CheckKind::Registration, &key, value);
                }
                Some(Arc::new(parsed))
            }
            Err(error) => {
                tracing::warn!(url, %error, "cannot refresh the RDAP bootstrap file; using the one in hand");
                state.fetched.as_ref().and_then(|(_, f, _)| f.clone())
            }
        };
        // A failed fetch is tried again after a short while, a good one after an interval.
        let wait = if fetched.is_some() {
            settings.interval
        } else {
            settings.interval.min(Duration::from_secs(900))
        };
        state.fetched = Some((url.clone(), fetched.clone(), now + wait));
        fetched.unwrap_or(base)
    }
}

fn read_file(path: &std::path::Path) -> Result<Arc<Bootstrap>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read bootstrap file {}: {e}", path.display()))?;
    Bootstrap::parse(&text, &path.display().to_string()).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_and_names_https_servers() {
        let shipped = Bootstraps::default().shipped;
        assert!(shipped.len() >= 5, "{shipped:?}");
        assert_eq!(
            shipped.server_for("example-shop.com"),
            Some("https://rdap.verisign.com/com/v1/")
        );
        assert_eq!(shipped.server_for("xn--fsqu00a.xn--fiqs8s"), None);
    }

    #[test]
    fn the_longest_matching_entry_wins() {
        let text = r#"{"version": "1.0", "services": [
            [["uk"], ["http://plain.example/uk", "https://uk.example/rdap"]],
            [["co.uk", "org.uk"], ["https://co-uk.example/"]],
            [["xn--fiqs8s", "中國"], ["https://cn.example/"]],
            [["none"], ["ftp://x.example/"]]
        ]}"#;
        let bootstrap = Bootstrap::parse(text, "t").unwrap();
        assert_eq!(
            bootstrap.server_for("shop.co.uk"),
            Some("https://co-uk.example/")
        );
        assert_eq!(
            bootstrap.server_for("a.b.co.uk"),
            Some("https://co-uk.example/")
        );
        // HTTPS first, a slash added.
        assert_eq!(
            bootstrap.server_for("shop.uk"),
            Some("https://uk.example/rdap/")
        );
        assert_eq!(
            bootstrap.server_for("shop.gov.uk"),
            Some("https://uk.example/rdap/")
        );
        // Unicode entries are matched as A-labels.
        assert_eq!(
            bootstrap.server_for("xn--fsqu00a.xn--fiqz9s"),
            Some("https://cn.example/")
        );
        assert_eq!(
            bootstrap.server_for("xn--fsqu00a.xn--fiqs8s"),
            Some("https://cn.example/")
        );
        assert_eq!(bootstrap.server_for("x.none"), None);
        assert_eq!(bootstrap.server_for("shop.de"), None);
        for bad in ["{", "{}", r#"{"services": [["com"]]}"#] {
            assert!(
                Bootstrap::parse(bad, "bad.json")
                    .unwrap_err()
                    .contains("bad.json")
            );
        }
    }
}
