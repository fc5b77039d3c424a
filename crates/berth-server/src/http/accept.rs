//! Accepting connections: the connection cap, the header-read timeout, TLS handshakes, and
//! a drain on shutdown that also covers connections upgraded to WebSockets.

use axum::Router;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Marks the requests of a TLS connection (`aws:SecureTransport`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls;

/// How long a stopping server waits for requests in flight.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one connection until it ends; once `closing` turns true, lets the request in flight
/// finish and ends it (an upgraded connection, no longer HTTP, is not waited for).
async fn serve_until_closing<C>(connection: C, mut closing: tokio::sync::watch::Receiver<bool>)
where
    C: std::future::Future<Output = Result<(), hyper::Error>> + GracefulEnd,
{
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = async { let _ = closing.wait_for(|c| *c).await; } => {
            connection.as_mut().end_gracefully();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A connection that can be told to finish its request in flight and end.
trait GracefulEnd {
    fn end_gracefully(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulEnd for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn end_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Accepts connections until `stopped`, at most `limits.max_connections` at once (beyond,
/// new ones wait in the listen backlog), each given `limits.header_read_timeout` to send a
/// request's head; then lets the requests in flight finish.
pub(super) async fn accept(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: crate::limits::Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let tls_router = router.clone().layer(axum::Extension(OverTls));
    // Connections take upgrades (WebSockets of exec sessions), which hyper-util's graceful
    // shutdown does not know: each connection watches `closing` itself, and the drain waits
    // for every connection's permit to come back.
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut stopped => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        // Small stream lines and answers must not wait on Nagle and delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
        let closing = closing.subscribe();
        match &tls {
            None => {
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let connection = http
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                tokio::spawn(async move {
                    serve_until_closing(connection, closing).await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                let service = hyper_util::service::TowerToHyperService::new(tls_router.clone());
                // The handshake gets the time a request head gets.
                let handshake =
                    tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp));
                let http = http.clone();
                tokio::spawn(async move {
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let connection = http
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades();
                            serve_until_closing(connection, closing).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    closing.send_replace(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}
