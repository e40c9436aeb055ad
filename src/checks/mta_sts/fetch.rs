//! Fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3) through the
//! checks' HTTPS GET ([`crate::checks::https`]): no redirects, a 200 `text/plain` UTF-8
//! body of bounded size.

pub use crate::checks::https::FetchError;
use crate::checks::https::Get;
use crate::config::MtaStsSettings;
use std::net::IpAddr;

/// Largest policy accepted (RFC 8461 §3.3 suggests senders cap it at 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// Fetches the policy body of `host` from one of `addresses`.
pub async fn fetch_policy(
    host: &str,
    addresses: &[IpAddr],
    settings: &MtaStsSettings,
) -> Result<String, FetchError> {
    let get = Get {
        host,
        addresses,
        port: settings.port,
        path: "/.well-known/mta-sts.txt",
        ca_file: settings.ca_file.as_deref(),
        max_bytes: MAX_POLICY_BYTES,
        timeout: settings.timeout,
    };
    let url = get.url();
    let http_error = |reason: String| FetchError::Http {
        url: url.clone(),
        reason,
    };
    let response = get.send().await?;
    if response.status != 200 {
        // Redirects are not followed (RFC 8461 §3.3).
        return Err(http_error(format!(
            "HTTP status {}, expected 200",
            response.status
        )));
    }
    if !response.content_type.starts_with("text/plain") {
        return Err(http_error(format!(
            "Content-Type {:?}, expected text/plain",
            response.content_type
        )));
    }
    String::from_utf8(response.body).map_err(|_| http_error("policy is not UTF-8".to_owned()))
}
