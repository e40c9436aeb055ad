//! The sockets the HTTP surface is served on: every `--web.listen-address` (repeatable), or
//! the sockets systemd passes with socket activation (`--web.systemd-socket`: `LISTEN_PID`,
//! `LISTEN_FDS`, descriptors from 3 on).

use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// One or more bound TCP listeners, all serving the same routes.
#[derive(Debug)]
pub struct Listeners(Vec<TcpListener>);

impl From<TcpListener> for Listeners {
    fn from(listener: TcpListener) -> Listeners {
        Listeners(vec![listener])
    }
}

impl Listeners {
    /// Binds every address, in order; the error names the address that failed.
    pub async fn bind(addresses: &[SocketAddr]) -> io::Result<Listeners> {
        let mut bound = Vec::with_capacity(addresses.len());
        for address in addresses {
            let listener = TcpListener::bind(address).await.map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
            })?;
            bound.push(listener);
        }
        Listeners::new(bound)
    }

    /// The listeners systemd passed to this process (socket activation).
    pub fn from_systemd() -> io::Result<Listeners> {
        let env = |name| std::env::var(name).ok();
        let fds = systemd_fds(
            env("LISTEN_PID").as_deref(),
            env("LISTEN_FDS").as_deref(),
            std::process::id(),
        )
        .map_err(io::Error::other)?;
        let mut bound = Vec::new();
        for fd in fds {
            bound.push(tcp_from_fd(fd)?);
        }
        Listeners::new(bound)
    }

    fn new(listeners: Vec<TcpListener>) -> io::Result<Listeners> {
        if listeners.is_empty() {
            return Err(io::Error::other("no address to listen on"));
        }
        Ok(Listeners(listeners))
    }

    /// The first listener's address (the one links and logs name).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0[0].local_addr()
    }

    /// Every listener's address.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.0.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// The listeners themselves.
    pub(crate) fn into_inner(self) -> Vec<TcpListener> {
        self.0
    }
}

/// The descriptors passed by systemd, from the values of `LISTEN_PID` and `LISTEN_FDS`.
fn systemd_fds(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    pid: u32,
) -> Result<std::ops::Range<i32>, String> {
    let not_activated =
        "--web.systemd-socket: no socket passed by systemd (LISTEN_PID/LISTEN_FDS unset)";
    let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
        return Err(not_activated.to_owned());
    };
    if listen_pid.trim().parse::<u32>().ok() != Some(pid) {
        return Err(format!(
            "--web.systemd-socket: LISTEN_PID is {listen_pid}, not this process ({pid})"
        ));
    }
    match listen_fds.trim().parse::<i32>() {
        Ok(count) if count > 0 && count < 1024 => Ok(LISTEN_FDS_START..LISTEN_FDS_START + count),
        _ => Err(format!(
            "--web.systemd-socket: LISTEN_FDS is {listen_fds:?}, expected a count of sockets"
        )),
    }
}

/// Takes ownership of an inherited listening TCP socket.
#[cfg(unix)]
fn tcp_from_fd(fd: i32) -> io::Result<TcpListener> {
    use std::os::fd::FromRawFd;
    // SAFETY: systemd passed this descriptor to this process (LISTEN_PID matched) for it to
    // own; nothing else in the process uses descriptors 3.. before this runs.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener.local_addr().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("descriptor {fd} from systemd is not a TCP socket: {e}"),
        )
    })?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

#[cfg(not(unix))]
fn tcp_from_fd(_fd: i32) -> io::Result<TcpListener> {
    Err(io::Error::other("--web.systemd-socket works on Linux only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_passes_descriptors_from_three() {
        assert_eq!(systemd_fds(Some("42"), Some("2"), 42), Ok(3..5));
        assert!(
            systemd_fds(Some("41"), Some("1"), 42)
                .unwrap_err()
                .contains("not this process")
        );
        assert!(systemd_fds(None, None, 42).unwrap_err().contains("unset"));
        assert!(systemd_fds(Some("42"), Some("0"), 42).is_err());
    }

    #[tokio::test]
    async fn binds_every_address() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let listeners = Listeners::bind(&[loopback, loopback]).await.unwrap();
        let addresses = listeners.addresses();
        assert_eq!(addresses.len(), 2);
        assert_ne!(addresses[0].port(), addresses[1].port());
        assert_eq!(listeners.local_addr().unwrap(), addresses[0]);
        assert!(Listeners::bind(&[]).await.is_err());
    }
}
