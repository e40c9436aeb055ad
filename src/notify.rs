//! systemd's notification protocol (`sd_notify`, for `Type=notify` units): datagrams to the
//! unix socket named by `NOTIFY_SOCKET` (a leading `@` names the abstract namespace).
//! `READY=1` once the first check round finished, `RELOADING=1` then `READY=1` around a
//! reload, `STOPPING=1` when shutdown begins, `WATCHDOG=1` every half `WATCHDOG_USEC`.
//! Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub(crate) struct Notifier {
    /// Unbound datagram socket, connected to `NOTIFY_SOCKET`.
    socket: UnixDatagram,
    /// Set by the first `READY=1`: reload messages before it would tell systemd the start-up
    /// finished early.
    ready: AtomicBool,
}

impl Notifier {
    /// Connects to the socket at `path` (`@name`: abstract namespace).
    pub(crate) fn connect(path: &str) -> io::Result<Notifier> {
        let socket = UnixDatagram::unbound()?;
        match path.strip_prefix('@') {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Some(name) => {
                #[cfg(target_os = "android")]
                use std::os::android::net::SocketAddrExt;
                #[cfg(target_os = "linux")]
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.connect_addr(&address)?;
            }
            _ => socket.connect(path)?,
        }
        Ok(Notifier {
            socket,
            ready: AtomicBool::new(false),
        })
    }

    /// Sends one message (newline-separated `KEY=VALUE` assignments).
    pub(crate) fn send(&self, message: &str) -> io::Result<()> {
        self.socket.send(message.as_bytes()).map(|_| ())
    }

    fn send_logged(&self, message: &str) {
        if let Err(error) = self.send(message) {
            tracing::warn!(%error, message, "cannot notify systemd");
        }
    }

    /// `READY=1`: start-up (or a reload) finished.
    pub(crate) fn ready(&self, status: &str) {
        self.ready.store(true, Ordering::Release);
        self.send_logged(&format!("READY=1\nSTATUS={status}"));
    }

    /// `RELOADING=1` with the monotonic time, once ready (a reload during start-up stays
    /// part of the start-up).
    pub(crate) fn reloading(&self) {
        if self.ready.load(Ordering::Acquire) {
            self.send_logged(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        }
    }

    /// `READY=1` after a reload (whether it was applied or refused), once ready.
    pub(crate) fn reloaded(&self, status: &str) {
        if self.ready.load(Ordering::Acquire) {
            self.send_logged(&format!("READY=1\nSTATUS={status}"));
        }
    }

    /// `STOPPING=1`: shutdown began.
    pub(crate) fn stopping(&self) {
        self.send_logged("STOPPING=1");
    }

    /// Sends `WATCHDOG=1` every `period` until `shutdown` fires, the first at once.
    pub(crate) async fn watchdog(&self, period: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => self.send_logged("WATCHDOG=1"),
            }
        }
    }
}

/// The process's notifier: `Some` when `NOTIFY_SOCKET` is set and reachable.
pub(crate) fn notifier() -> Option<&'static Notifier> {
    static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| {
            let path = std::env::var("NOTIFY_SOCKET").ok()?;
            Notifier::connect(&path)
                .map_err(|error| {
                    tracing::warn!(%error, path, "NOTIFY_SOCKET set but unusable");
                })
                .ok()
        })
        .as_ref()
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when it is set for this
/// process (`WATCHDOG_PID` absent or equal to `pid`).
pub(crate) fn watchdog_period(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    pid: u32,
) -> Option<Duration> {
    if let Some(owner) = watchdog_pid
        && owner.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    let usec: u64 = watchdog_usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Hook: the first check round finished.
pub(crate) fn ready() {
    if let Some(notifier) = notifier() {
        notifier.ready("first check round finished");
    }
}

/// Hook: a reload starts.
pub(crate) fn reloading() {
    if let Some(notifier) = notifier() {
        notifier.reloading();
    }
}

/// Hook: a reload ended; `applied` says whether the new config is in force.
pub(crate) fn reloaded(applied: bool) {
    if let Some(notifier) = notifier() {
        notifier.reloaded(if applied {
            "configuration reloaded"
        } else {
            "reload failed; previous configuration kept"
        });
    }
}

/// Hook: shutdown began.
pub(crate) fn stopping() {
    if let Some(notifier) = notifier() {
        notifier.stopping();
    }
}

/// Hook: starts the watchdog pings when systemd asked for them (`WatchdogSec=`).
pub(crate) fn spawn_watchdog(shutdown: CancellationToken) {
    let env = |name| std::env::var(name).ok();
    let period = watchdog_period(
        env("WATCHDOG_USEC").as_deref(),
        env("WATCHDOG_PID").as_deref(),
        std::process::id(),
    );
    if let (Some(notifier), Some(period)) = (notifier(), period) {
        tokio::spawn(notifier.watchdog(period, shutdown));
    }
}

/// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC` wants it.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if result != 0 {
        return 0;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * 1_000_000 + nanos / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_nonblocking(true).unwrap();
        let notifier = Notifier::connect(path.to_str().unwrap()).unwrap();
        (dir, server, notifier)
    }

    fn received(server: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = server.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn reload_messages_wait_for_readiness() {
        let (_dir, server, notifier) = pair();
        notifier.reloading();
        notifier.reloaded("x");
        assert!(received(&server).is_empty(), "nothing before READY=1");
        notifier.ready("up");
        notifier.reloading();
        notifier.reloaded("again");
        notifier.stopping();
        let messages = received(&server);
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert_eq!(messages[0], "READY=1\nSTATUS=up");
        let usec: u64 = messages[1]
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
        assert_eq!(messages[2], "READY=1\nSTATUS=again");
        assert_eq!(messages[3], "STOPPING=1");
    }

    #[test]
    fn abstract_socket_names_start_with_at() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("maildrift-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let server = UnixDatagram::bind_addr(&address).unwrap();
        server.set_nonblocking(true).unwrap();
        Notifier::connect(&format!("@{name}")).unwrap().stopping();
        assert_eq!(received(&server), ["STOPPING=1"]);
    }

    #[test]
    fn watchdog_period_is_half_of_watchdog_usec_for_this_process() {
        assert_eq!(
            watchdog_period(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_period(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(None, None, 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_pings_every_period_until_shutdown() {
        let (_dir, server, notifier) = pair();
        let notifier = std::sync::Arc::new(notifier);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (notifier, shutdown) = (notifier.clone(), shutdown.clone());
            async move { notifier.watchdog(Duration::from_secs(15), shutdown).await }
        });
        let settle = || async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };
        settle().await;
        assert_eq!(
            received(&server),
            ["WATCHDOG=1"],
            "the first ping is immediate"
        );
        tokio::time::advance(Duration::from_secs(14)).await;
        settle().await;
        assert!(received(&server).is_empty(), "none before the period");
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
        assert_eq!(received(&server), ["WATCHDOG=1"]);
        for _ in 0..2 {
            tokio::time::advance(Duration::from_secs(15)).await;
            settle().await;
            assert_eq!(received(&server), ["WATCHDOG=1"], "one per period");
        }
        shutdown.cancel();
        task.await.unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(received(&server).is_empty(), "none after shutdown");
    }
}
