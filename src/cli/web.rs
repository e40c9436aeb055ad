//! The exporter-toolkit web flags of `maildrift run`: `--web.listen-address` (repeatable),
//! `--web.systemd-socket`, `--web.telemetry-path`.

use super::RunArgs;
use crate::http::Listeners;
use anyhow::Context;
use std::net::SocketAddr;

/// Paths the daemon serves itself: the metrics cannot move onto one of them.
const TAKEN_PATHS: [&str; 6] = ["/", "/healthz", "/readyz", "/-/", "/api/", "/domains/"];

/// `:PORT` → every interface; otherwise `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?} is not a listen address: bad port"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a listen address: expected :PORT or IP:PORT"))
}

/// `--web.telemetry-path`: an absolute path, not one the daemon already serves.
pub fn parse_telemetry_path(text: &str) -> Result<String, String> {
    let reserved = |taken: &&&str| {
        if taken.ends_with('/') && **taken != "/" {
            text.starts_with(**taken)
        } else {
            text == **taken
        }
    };
    if !text.starts_with('/') || text.contains(['{', '}', '*', '?', '#', ' ']) {
        return Err(format!(
            "{text:?} is not a telemetry path: expected an absolute path such as /metrics"
        ));
    }
    if let Some(taken) = TAKEN_PATHS.iter().find(reserved) {
        return Err(format!(
            "{text:?} is not a telemetry path: {taken} is the daemon's own"
        ));
    }
    Ok(text.to_owned())
}

/// The sockets `run` serves on: systemd's with `--web.systemd-socket`, otherwise every
/// `--web.listen-address`.
pub(super) async fn listeners(args: &RunArgs) -> anyhow::Result<Listeners> {
    if args.systemd_socket {
        return Listeners::from_systemd().context("socket activation");
    }
    let addresses = args
        .listen_addresses
        .iter()
        .map(|text| parse_listen_address(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    Ok(Listeners::bind(&addresses).await?)
}

/// Binds one address (`demo`).
pub(super) async fn bind(text: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let address = parse_listen_address(text).map_err(anyhow::Error::msg)?;
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address(":9725").unwrap().to_string(),
            "0.0.0.0:9725"
        );
        assert_eq!(parse_listen_address("127.0.0.1:0").unwrap().port(), 0);
        assert_eq!(
            parse_listen_address("[::1]:9725").unwrap().to_string(),
            "[::1]:9725"
        );
        assert!(
            parse_listen_address("localhost:80")
                .unwrap_err()
                .contains("\"localhost:80\"")
        );
    }

    #[test]
    fn telemetry_paths() {
        assert_eq!(parse_telemetry_path("/metrics").unwrap(), "/metrics");
        assert_eq!(
            parse_telemetry_path("/maildrift/metrics").unwrap(),
            "/maildrift/metrics"
        );
        for bad in [
            "metrics",
            "/",
            "/healthz",
            "/-/ready",
            "/api/v1/x",
            "/m/{x}",
        ] {
            assert!(parse_telemetry_path(bad).is_err(), "{bad}");
        }
    }
}
