//! The listener behind `--web.config.file`: accepts TCP connections and, when the settings in
//! force have TLS, completes the handshake on its own task (a slow client never holds up the
//! accept loop) before handing the connection to axum.

use super::WebConfig;
use crate::http::Listeners;
use axum::Router;
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// A client that does not finish the TLS handshake within this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted connection: plain or TLS, decided by the settings when it was accepted.
pub(crate) enum Conn {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Hands accepted (and, with TLS, handshaken) connections to axum.
pub(crate) struct WebListener {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
}

impl WebListener {
    /// Starts accepting on every listener with the settings of `web` until `shutdown` fires.
    pub(crate) fn start(
        listeners: Listeners,
        web: Arc<WebConfig>,
        shutdown: CancellationToken,
    ) -> io::Result<WebListener> {
        let local = listeners.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        for tcp in listeners.into_inner() {
            tokio::spawn(accept_loop(tcp, web.clone(), tx.clone(), shutdown.clone()));
        }
        Ok(WebListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    web: Arc<WebConfig>,
    tx: mpsc::Sender<(Conn, SocketAddr)>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match web.current().tls.clone() {
            None => {
                if tx.send((Conn::Plain(stream), peer)).await.is_err() {
                    return;
                }
            }
            Some(config) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((Conn::Tls(Box::new(tls)), peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

impl axum::serve::Listener for WebListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // Shutting down: axum stops asking once its graceful shutdown fires.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Serves `router` on every listener until `shutdown` fires: plain axum without a web
/// config; with one, TLS and basic auth per the settings in force (re-read every
/// [`super::POLL_INTERVAL`]).
pub(crate) async fn serve(
    listeners: Listeners,
    router: Router,
    web: Option<Arc<WebConfig>>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let stop = shutdown.clone();
    let Some(web) = web else {
        let servers = listeners.into_inner().into_iter().map(|tcp| {
            let stop = shutdown.clone();
            axum::serve(tcp, router.clone())
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .into_future()
        });
        return futures::future::try_join_all(servers).await.map(|_| ());
    };
    tokio::spawn(web.clone().watch(super::POLL_INTERVAL, shutdown.clone()));
    let router = router.layer(axum::middleware::from_fn_with_state(
        web.clone(),
        super::require_auth,
    ));
    let listener = WebListener::start(listeners, web, shutdown)?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}
