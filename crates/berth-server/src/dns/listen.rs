//! The DNS server's sockets: one UDP socket and one TCP listener on the same address, each
//! served until the server stops.

use super::answer::{Resolver, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};

/// The largest UDP question read: EDNS questions are a few hundred bytes at most.
const UDP_BUFFER: usize = 4096;
/// TCP connections served at once; beyond it new ones are closed at once.
const MAX_TCP_CONNECTIONS: usize = 256;
/// How long a TCP connection may stay silent before it is closed (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The pause after a failed receive or accept, so a persistent error cannot spin.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Binds UDP on `addr` and TCP on the same address (on the port UDP got, when `addr`'s is
/// 0), serves both in the background until `closing` turns true (or its sender is gone), and
/// returns the address bound.
pub async fn listen(
    resolver: Arc<Resolver>,
    addr: SocketAddr,
    closing: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let (udp, tcp) = bind(addr).await?;
    let bound = udp.local_addr()?;
    tokio::spawn(serve_udp(udp, resolver.clone(), closing.clone()));
    tokio::spawn(serve_tcp(tcp, resolver, closing));
    Ok(bound)
}

/// A UDP socket and a TCP listener on `addr`. With port 0, the port UDP gets may be taken
/// for TCP: then another is tried.
async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut attempts = if addr.port() == 0 { 16 } else { 1 };
    loop {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts > 1 => attempts -= 1,
            Err(e) => return Err(e),
        }
    }
}

/// Resolves once the server is stopping.
async fn stopped(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|closing| *closing).await;
}

async fn serve_udp(socket: UdpSocket, resolver: Arc<Resolver>, mut closing: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; UDP_BUFFER];
    loop {
        let (len, peer) = tokio::select! {
            () = stopped(&mut closing) => return,
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!(error = %e, "DNS: UDP receive failed");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Answering is a lookup in memory: no need for a task per question.
        if let Some(answer) = resolver.respond(&buffer[..len], Transport::Udp) {
            if let Err(e) = socket.send_to(&answer, peer).await {
                tracing::debug!(error = %e, %peer, "DNS: UDP send failed");
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    resolver: Arc<Resolver>,
    mut closing: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let stream = tokio::select! {
            () = stopped(&mut closing) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "DNS: TCP accept failed");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let resolver = resolver.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = serve_connection(stream, &resolver).await {
                tracing::debug!(error = %e, "DNS: TCP connection ended");
            }
        });
    }
}

/// Answers the length-prefixed messages of one connection (RFC 1035 4.2.2) until the client
/// closes it or stays silent for [`TCP_IDLE`].
async fn serve_connection(mut stream: TcpStream, resolver: &Resolver) -> std::io::Result<()> {
    loop {
        let mut prefix = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut prefix)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(read) => read?,
        };
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut message))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let Some(answer) = resolver.respond(&message, Transport::Tcp) else {
            return Ok(());
        };
        let len = u16::try_from(answer.len()).map_err(std::io::Error::other)?;
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(&answer).await?;
    }
}
