//! Running listeners: the accept loop of a bound socket, HTTP connections served by hyper,
//! TCP connections spliced to a target, and closing with a drain of what is in flight.

use super::config::{ListenerConfig, Protocol, Stickiness};
use super::http;
use super::routes::RouteTable;
use super::targets::{mix, Pick};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// How long a TCP listener waits for a target to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener's connections share: its port, its current routes and the target client.
#[derive(Debug)]
pub(super) struct Listening {
    /// The port the listener accepts on (`X-Forwarded-Port`, `#{port}`).
    pub(super) port: u16,
    routes: RwLock<Arc<RouteTable>>,
}

impl Listening {
    /// The routes now; a request keeps the table it started with.
    pub(super) fn routes(&self) -> Arc<RouteTable> {
        Arc::clone(&self.routes.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Routes later requests and connections by `routes`.
    pub(super) fn set_routes(&self, routes: RouteTable) {
        *self.routes.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routes);
    }
}

/// A bound listener and its accept loop.
#[derive(Debug)]
pub(super) struct RunningListener {
    /// The config it was bound for (`bind` and `protocol` cannot change in place).
    pub(super) bind: SocketAddr,
    pub(super) protocol: Protocol,
    /// Where it actually listens.
    pub(super) local: SocketAddr,
    pub(super) listening: Arc<Listening>,
    stop: oneshot::Sender<Duration>,
    closed: oneshot::Receiver<()>,
    task: JoinHandle<()>,
}

impl RunningListener {
    /// Binds `config.bind` and starts accepting.
    pub(super) async fn start(
        config: &ListenerConfig,
        routes: RouteTable,
    ) -> std::io::Result<Self> {
        let socket = TcpListener::bind(config.bind).await?;
        let local = socket.local_addr()?;
        let listening = Arc::new(Listening {
            port: local.port(),
            routes: RwLock::new(Arc::new(routes)),
        });
        let (stop, stopped) = oneshot::channel();
        let (closed_tx, closed) = oneshot::channel();
        let task = tokio::spawn(serve(
            socket,
            config.protocol,
            Arc::clone(&listening),
            stopped,
            closed_tx,
        ));
        Ok(Self {
            bind: config.bind,
            protocol: config.protocol,
            local,
            listening,
            stop,
            closed,
            task,
        })
    }

    /// Stops accepting; the port is free when this returns. Connections get `drain` to
    /// finish (HTTP ones end after their request in flight); the returned task ends when
    /// they have.
    pub(super) async fn close(self, drain: Duration) -> JoinHandle<()> {
        let _ = self.stop.send(drain);
        let _ = self.closed.await;
        self.task
    }
}

/// Accepts until told to stop, then closes the socket, reports it closed and drains.
async fn serve(
    socket: TcpListener,
    protocol: Protocol,
    listening: Arc<Listening>,
    mut stop: oneshot::Receiver<Duration>,
    closed: oneshot::Sender<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let drain = loop {
        tokio::select! {
            // Dropped without a word (the data plane is gone): close at once.
            drain = &mut stop => break drain.unwrap_or(Duration::ZERO),
            accepted = socket.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Small requests and answers must not wait on Nagle and delayed ACKs.
                    let _ = tcp.set_nodelay(true);
                    let listening = Arc::clone(&listening);
                    match protocol {
                        Protocol::Http => {
                            let connection = serve_http(&graceful, listening, tcp, peer);
                            connections.spawn(connection);
                        }
                        Protocol::Tcp => {
                            connections.spawn(splice(listening, tcp, peer));
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(socket);
    let _ = closed.send(());
    let drained = tokio::time::timeout(drain, async {
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            connections = connections.len(),
            "listener closed with connections still open"
        );
    }
    connections.shutdown().await;
}

/// Serves one connection until it ends or the listener closes: HTTP/1.1 (keep-alive), or
/// HTTP/2 when the client opens with HTTP/2's preface (h2c with prior knowledge, as clients
/// speak HTTP/2 without TLS).
fn serve_http(
    graceful: &GracefulShutdown,
    listening: Arc<Listening>,
    tcp: TcpStream,
    peer: SocketAddr,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let idle = listening.routes().idle_timeout;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    builder.http2().timer(TokioTimer::new());
    let service = hyper::service::service_fn(move |request| {
        http::handle(Arc::clone(&listening), peer, request)
    });
    let connection = graceful.watch(
        builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned(),
    );
    async move {
        if let Err(e) = connection.await {
            tracing::debug!(%peer, error = %e, "listener connection ended with an error");
        }
    }
}

/// Splices one TCP connection to a target of the default action, chosen by a hash of the
/// client's address; a target that refuses gets one stand-in.
async fn splice(listening: Arc<Listening>, mut client: TcpStream, peer: SocketAddr) {
    let routes = listening.routes();
    let Some(group) = routes.default_forward().and_then(|f| f.choose()) else {
        return;
    };
    // With source_ip stickiness a client's every connection hashes alike: its port is left out.
    let port = match &group.stickiness() {
        Stickiness::SourceIp => 0,
        _ => u64::from(peer.port()),
    };
    let hash = mix(match peer.ip() {
        IpAddr::V4(ip) => u64::from(u32::from(ip)),
        IpAddr::V6(ip) => {
            let bits = u128::from(ip);
            (bits as u64) ^ ((bits >> 64) as u64)
        }
    } ^ (port << 48));
    let mut failed = None;
    for _ in 0..2 {
        let Some(target) = group.pick(Pick::Flow {
            hash,
            avoid: failed.as_ref(),
        }) else {
            return;
        };
        let addr = target.target().addr;
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(%peer, target_addr = %addr, error = %e, "TCP flow ended with an error");
                }
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, target_addr = %addr, error = %e, "target refused a TCP flow");
            }
            Err(_) => tracing::debug!(%peer, target_addr = %addr, "target did not accept in time"),
        }
        failed = Some(Arc::clone(target.target()));
    }
}
