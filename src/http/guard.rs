//! Guards in front of every route: a bound on the query string, and the same-origin check
//! on writes. A browser sends `Origin` (or `Sec-Fetch-Site`) with a form or script POST; a
//! write whose origin is another site is refused, so a page elsewhere cannot make a
//! logged-in browser add notes, accept baselines or reload the config. Clients that are
//! not browsers (the CLI, curl, Prometheus) send neither and are not affected; basic auth,
//! when configured, applies to them as to everyone.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest query string served (bytes).
pub(crate) const MAX_QUERY: usize = 2048;

/// Whether the request's `Origin` (or, without one, `Sec-Fetch-Site`) says it comes from a
/// page of this server. `None`: the request says nothing about its origin.
fn same_origin(request: &Request) -> Option<bool> {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return Some(false);
        };
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        // The host the browser addressed: `Host`, or behind a reverse proxy the
        // `X-Forwarded-Host` it sets (a page cannot add that header to a cross-site form).
        let hosts = [header::HOST.as_str(), "x-forwarded-host"].map(|name| {
            headers
                .get(name)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.split(',').next())
                .map(str::trim)
        });
        return Some(match authority {
            Some(authority) => hosts
                .iter()
                .flatten()
                .any(|host| authority.eq_ignore_ascii_case(host)),
            // `Origin: null` (a sandboxed frame, a file): not this site.
            None => false,
        });
    }
    let site = headers.get("sec-fetch-site")?.to_str().ok()?;
    Some(matches!(site, "same-origin" | "none"))
}

/// Axum middleware: 414 for an over-long query string; 403 for a write from another origin.
pub(crate) async fn guard(request: Request, next: Next) -> Response {
    if request.uri().query().is_some_and(|q| q.len() > MAX_QUERY) {
        return (
            StatusCode::URI_TOO_LONG,
            format!("the query string is longer than {MAX_QUERY} bytes\n"),
        )
            .into_response();
    }
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && same_origin(&request) == Some(false) {
        tracing::warn!(method = %request.method(), path = %request.uri().path(), "cross-origin write refused");
        return (
            StatusCode::FORBIDDEN,
            "cross-origin request refused: writes must come from this server's own pages\n",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method("POST").uri("/x");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn origins() {
        let host = ("host", "127.0.0.1:9725");
        assert_eq!(same_origin(&request(&[host])), None);
        assert_eq!(
            same_origin(&request(&[host, ("origin", "http://127.0.0.1:9725")])),
            Some(true)
        );
        assert_eq!(
            same_origin(&request(&[host, ("origin", "https://127.0.0.1:9725")])),
            Some(true)
        );
        for other in [
            "http://evil.example",
            "http://127.0.0.1:9726",
            "null",
            "file://",
        ] {
            assert_eq!(
                same_origin(&request(&[host, ("origin", other)])),
                Some(false),
                "{other}"
            );
        }
        assert_eq!(
            same_origin(&request(&[host, ("sec-fetch-site", "cross-site")])),
            Some(false)
        );
        assert_eq!(
            same_origin(&request(&[host, ("sec-fetch-site", "same-origin")])),
            Some(true)
        );
        assert_eq!(
            same_origin(&request(&[("origin", "http://127.0.0.1:9725")])),
            Some(false),
            "no Host to compare with"
        );
        // Behind a reverse proxy.
        let proxied = [
            ("host", "10.0.0.5:9725"),
            ("x-forwarded-host", "maildrift.example.com, 10.0.0.1"),
        ];
        let mut headers = proxied.to_vec();
        headers.push(("origin", "https://maildrift.example.com"));
        assert_eq!(same_origin(&request(&headers)), Some(true));
        let mut headers = proxied.to_vec();
        headers.push(("origin", "https://evil.example"));
        assert_eq!(same_origin(&request(&headers)), Some(false));
    }
}
