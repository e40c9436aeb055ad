//! `GET /metrics` (or `--web.telemetry-path`): the text format 0.0.4 by default, OpenMetrics
//! 1.0.0 when the scraper's `Accept` header prefers it (Prometheus asks for it first).
//! The OpenMetrics body is derived from the text exposition: counter families lose their
//! `_total` suffix in `# HELP`/`# TYPE` (the samples keep it), `untyped` becomes `unknown`,
//! and the body ends with `# EOF`.

use crate::metrics::TEXT_CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::http::header;
use std::collections::HashMap;
use std::fmt::Write;

/// The Content-Type of an OpenMetrics 1.0.0 exposition.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition formats the endpoint can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value of the format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Picks the format from the `Accept` headers: OpenMetrics when it is listed (version 1.0.0,
/// 0.0.1 or none) with a quality above every other acceptable type; text otherwise.
pub(crate) fn negotiate(headers: &HeaderMap) -> Format {
    let mut openmetrics = 0.0_f32;
    let mut other = 0.0_f32;
    let ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for range in ranges {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut quality = 1.0_f32;
        let mut version_ok = true;
        for parameter in parts {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => quality = value.trim().parse().unwrap_or(0.0),
                "version" => version_ok = matches!(value.trim(), "1.0.0" | "0.0.1"),
                _ => {}
            }
        }
        if media == "application/openmetrics-text" {
            if version_ok {
                openmetrics = openmetrics.max(quality);
            }
        } else {
            other = other.max(quality);
        }
    }
    if openmetrics > 0.0 && openmetrics > other {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// The line that ends an OpenMetrics exposition.
pub(crate) const OPENMETRICS_EOF: &str = "# EOF\n";

/// Rewrites a text-format 0.0.4 exposition as OpenMetrics 1.0.0.
#[cfg(test)]
pub(crate) fn to_openmetrics(text: &str) -> String {
    let mut out = to_openmetrics_lines(text);
    out.push_str(OPENMETRICS_EOF);
    out
}

/// Rewrites whole lines of a text-format 0.0.4 exposition as OpenMetrics 1.0.0, without
/// the final `# EOF`: a chunk of a streamed scrape (each family's `# HELP` and `# TYPE`
/// lines are in one chunk).
pub(crate) fn to_openmetrics_lines(text: &str) -> String {
    let types: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name, kind.trim()))
        .collect();
    // The name a family has in OpenMetrics metadata, and its type there.
    let family = |name: &str| -> (String, &str) {
        match types.get(name).copied().unwrap_or("untyped") {
            "counter" => match name.strip_suffix("_total") {
                Some(stem) => (stem.to_owned(), "counter"),
                // A counter without the suffix would need its samples renamed: keep the
                // names and declare the type unknown instead.
                None => (name.to_owned(), "unknown"),
            },
            "untyped" => (name.to_owned(), "unknown"),
            kind => (name.to_owned(), kind),
        }
    };
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let _ = writeln!(out, "# HELP {} {}", family(name).0, escape_quotes(help));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(name, _)| name);
            let (name, kind) = family(name);
            let _ = writeln!(out, "# TYPE {name} {kind}");
        } else if line.starts_with('#') {
            // Other comments are not allowed in OpenMetrics.
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// OpenMetrics escapes `"` in HELP text; the text format (which escapes `\` and newlines
/// the same way) does not.
fn escape_quotes(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut escaped = false;
    for c in help.chars() {
        if c == '"' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&headers)
    }

    #[test]
    fn openmetrics_only_when_preferred() {
        // Prometheus 2.x's scrape Accept header.
        assert_eq!(
            accept(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            Format::OpenMetrics
        );
        assert_eq!(accept("application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(negotiate(&HeaderMap::new()), Format::Text);
        assert_eq!(accept("*/*"), Format::Text);
        assert_eq!(accept("text/plain;version=0.0.4"), Format::Text);
        assert_eq!(
            accept("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
            Format::Text
        );
        assert_eq!(
            accept("application/openmetrics-text; version=2.0.0"),
            Format::Text
        );
    }

    #[test]
    fn counters_lose_total_in_metadata_and_the_body_ends_with_eof() {
        let text = "# HELP a_total Things \"done\".\n# TYPE a_total counter\na_total{x=\"1\"} 3\n\
                    # HELP b Odd counter.\n# TYPE b counter\nb 1\n# HELP g A gauge.\n# TYPE g gauge\n\
                    g 2\n# HELP u Untyped.\n# TYPE u untyped\nu 1\n";
        assert_eq!(
            to_openmetrics(text),
            "# HELP a Things \\\"done\\\".\n# TYPE a counter\na_total{x=\"1\"} 3\n\
             # HELP b Odd counter.\n# TYPE b unknown\nb 1\n# HELP g A gauge.\n# TYPE g gauge\n\
             g 2\n# HELP u Untyped.\n# TYPE u unknown\nu 1\n# EOF\n"
        );
    }

    /// A scrape of thousands of domains comes in many chunks of whole lines, each family's
    /// metadata inside one chunk: put together they are the whole exposition, and their
    /// OpenMetrics rewrite is the rewrite of the whole.
    #[test]
    fn a_streamed_scrape_is_the_whole_exposition_in_chunks_of_whole_lines() {
        let checks = crate::checks::Registry::standard();
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new("test", "test", &checks));
        metrics.set_detail(true);
        for i in 0..3_000 {
            let row = metrics.domain_series(&format!("d{i}.example"), &[]);
            row.set_record("mx".into(), i, Some(300));
        }
        let chunks: Vec<String> = metrics.exposition().collect();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let most = crate::metrics::Exposition::CHUNK + 4096;
        for chunk in &chunks {
            assert!(
                chunk.ends_with('\n') && chunk.len() <= most,
                "{}",
                chunk.len()
            );
        }
        let whole: String = chunks.concat();
        for family in ["maildrift_check_success", "maildrift_record_ttl_seconds"] {
            let header = format!("# TYPE {family} gauge\n");
            assert_eq!(whole.matches(&header).count(), 1, "{family}");
            assert_eq!(
                chunks
                    .iter()
                    .filter(|c| c.contains(&format!("# HELP {family} ")))
                    .count(),
                1
            );
        }
        assert_eq!(
            whole.matches("maildrift_check_success{").count(),
            3_000 * 13
        );
        let streamed: String = chunks
            .iter()
            .map(|c| to_openmetrics_lines(c))
            .chain(std::iter::once(OPENMETRICS_EOF.to_owned()))
            .collect();
        assert_eq!(streamed, to_openmetrics(&whole));
    }
}
