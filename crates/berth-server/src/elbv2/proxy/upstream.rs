//! Keep-alive HTTP/1.1 connections to one target, pooled by the target itself.
//!
//! A request takes the most recently returned idle connection (so that a few connections
//! stay warm and the rest age out), or opens one when none is idle; the connection comes
//! back when the response body has been read to its end. A pooled connection the target has
//! closed gives the request back unsent and the next one is tried, so a stale connection is
//! never a failed request. Idle connections older than [`IDLE_TIMEOUT`] are closed when the
//! pool is next used.

use super::http::Outbound;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long the proxy waits for a target to accept a connection (ALB's 10 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection to a target is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per target; more are closed when they come back.
const MAX_IDLE: usize = 512;

/// A connection that can carry a request now (or once its last response has finished).
pub(super) type Sender = SendRequest<Outbound>;

/// Why a request got no response head.
#[derive(Debug)]
pub(super) enum SendError {
    /// Nothing was sent: the request comes back whole (body unread).
    Unsent(Box<Request<Outbound>>, String),
    /// The request went out on a connection that then failed; its body may be read.
    Lost(String),
}

/// The idle connections to one target.
#[derive(Debug, Default)]
pub(super) struct Connections {
    idle: Mutex<Vec<(Sender, Instant)>>,
}

impl Connections {
    /// Sends `request` to the target at `addr` on an idle connection or a new one; returns
    /// the response head and the connection, to give back with [`Connections::put_back`]
    /// once the response body has ended.
    pub(super) async fn send(
        &self,
        addr: SocketAddr,
        mut request: Request<Outbound>,
    ) -> Result<(Response<Incoming>, Sender), SendError> {
        while let Some(mut sender) = self.take() {
            // A connection comes back as its last response ends; it may not have turned
            // to wanting the next request yet. One that is closing instead is dropped.
            if !sender.is_ready() && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut failed) => match failed.take_message() {
                    // The target closed the connection while it was idle: the next one.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Lost(failed.error().to_string())),
                },
            }
        }
        let mut sender = match connect(addr, false).await {
            Ok(sender) => sender,
            Err(e) => return Err(SendError::Unsent(Box::new(request), e)),
        };
        match sender.try_send_request(request).await {
            Ok(response) => Ok((response, sender)),
            Err(mut failed) => {
                let why = failed.error().to_string();
                Err(match failed.take_message() {
                    Some(unsent) => SendError::Unsent(Box::new(unsent), why),
                    None => SendError::Lost(why),
                })
            }
        }
    }

    /// Keeps `sender` for a later request, unless its connection is closing.
    pub(super) fn put_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // Oldest first: returned ones are pushed, taken ones popped.
        let expired = idle
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) > IDLE_TIMEOUT)
            .count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push((sender, now));
        }
    }

    /// Idle connections now.
    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn take(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while let Some((sender, since)) = idle.pop() {
            if now.duration_since(since) > IDLE_TIMEOUT {
                // Everything below is older still.
                idle.clear();
                return None;
            }
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }
}

/// Sends `request`, which asks to switch protocols, to the target at `addr` on a connection
/// of its own that may be taken over (`hyper::upgrade::on` of the response) on a 101.
pub(super) async fn send_upgrade(
    addr: SocketAddr,
    request: Request<Outbound>,
) -> Result<Response<Incoming>, SendError> {
    let mut sender = match connect(addr, true).await {
        Ok(sender) => sender,
        Err(e) => return Err(SendError::Unsent(Box::new(request), e)),
    };
    sender
        .try_send_request(request)
        .await
        .map_err(|mut failed| {
            let why = failed.error().to_string();
            match failed.take_message() {
                Some(unsent) => SendError::Unsent(Box::new(unsent), why),
                None => SendError::Lost(why),
            }
        })
}

/// Opens a connection to `addr` (Nagle off) and drives it on its own task; one that
/// `upgrades` hands its socket over after a 101.
async fn connect(addr: SocketAddr, upgrades: bool) -> Result<Sender, String> {
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let ended = if upgrades {
            connection.with_upgrades().await
        } else {
            connection.await
        };
        if let Err(e) = ended {
            tracing::debug!(target_addr = %addr, error = %e, "target connection ended with an error");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A target answering `ok` to every request; it closes each connection after
    /// `per_connection` answers, without a word. Returns its address and its accept count.
    async fn target(per_connection: usize) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..per_connection {
                        let mut read = Vec::new();
                        while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tcp.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => read.extend_from_slice(&buf[..n]),
                            }
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tcp.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn get() -> Request<Outbound> {
        let mut request = Request::new(Outbound::Empty);
        request
            .headers_mut()
            .insert(hyper::header::HOST, "t".parse().expect("host"));
        request
    }

    /// Sends one GET and reads its answer to the end, giving the connection back.
    async fn ok(pool: &Connections, addr: SocketAddr) -> Result<(), String> {
        let (response, sender) = pool.send(addr, get()).await.map_err(|e| format!("{e:?}"))?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        pool.put_back(sender);
        if body.to_bytes().as_ref() == b"ok" {
            Ok(())
        } else {
            Err("wrong body".to_owned())
        }
    }

    #[tokio::test]
    async fn one_connection_carries_request_after_request() {
        let (addr, accepted) = target(usize::MAX).await;
        let pool = Connections::default();
        for _ in 0..20 {
            ok(&pool, addr).await.expect("answered");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn a_connection_the_target_closed_while_idle_is_not_a_failure() {
        let (addr, accepted) = target(1).await;
        let pool = Connections::default();
        for _ in 0..5 {
            ok(&pool, addr).await.expect("answered");
            // Let the target's close arrive, or not: either way the next request is served.
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_refused_connection_gives_the_request_back_unsent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let pool = Connections::default();
        match pool.send(addr, get()).await {
            Err(SendError::Unsent(request, _)) => {
                assert!(request.headers().contains_key(hyper::header::HOST))
            }
            other => panic!("expected the request back, got {other:?}"),
        }
    }
}
