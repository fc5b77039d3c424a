//! What the desired-state stream costs on the wire. The agent's client does not count bytes,
//! so for a sample of instances the benchmark opens its own `GET /v1/agent/desired` beside
//! the agent's (the same request the agent makes, over plain TCP) and counts every byte the
//! server sends on it — status line, headers, chunk framing, JSON lines and keepalives —
//! until told to stop. Bytes per task is that total over the tasks placed on those instances.

use super::api::{id_of, CLUSTER};
use berth_core::sigv4::{sign, Credentials, RequestParts};
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Byte counters on the streams of some instances.
#[derive(Debug)]
pub struct StreamTaps {
    instances: Vec<String>,
    taps: Vec<JoinHandle<std::io::Result<u64>>>,
    stop: watch::Sender<bool>,
}

impl StreamTaps {
    /// Opens a counted stream for each of `instances` (ARNs) on the server at `addr`, signed
    /// with `credentials` as the agents sign theirs.
    pub fn open(addr: SocketAddr, instances: Vec<String>, credentials: &Credentials) -> StreamTaps {
        let (stop, stopped) = watch::channel(false);
        let taps = instances
            .iter()
            .map(|arn| {
                let instance = id_of(arn).to_string();
                tokio::spawn(tap(addr, instance, credentials.clone(), stopped.clone()))
            })
            .collect();
        StreamTaps {
            instances,
            taps,
            stop,
        }
    }

    /// The instances tapped (ARNs).
    pub fn instances(&self) -> &[String] {
        &self.instances
    }

    /// Closes the streams; returns the bytes received on all of them.
    pub async fn close(mut self) -> anyhow::Result<u64> {
        self.stop.send_replace(true);
        let mut total = 0;
        for tap in std::mem::take(&mut self.taps) {
            total += tap.await??;
        }
        Ok(total)
    }
}

impl Drop for StreamTaps {
    fn drop(&mut self) {
        for tap in &self.taps {
            tap.abort();
        }
    }
}

/// Reads the desired-state stream of `instance` until `stop`, counting bytes.
async fn tap(
    addr: SocketAddr,
    instance: String,
    credentials: Credentials,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<u64> {
    let socket = TcpStream::connect(addr).await?;
    let query = format!(
        "cluster={CLUSTER}&containerInstance={instance}&protocol={}",
        berth_core::gateway::STREAM_PROTOCOL
    );
    let host = addr.to_string();
    let headers = [("host", host.as_str()), ("accept", "application/x-ndjson")];
    let parts = RequestParts {
        method: "GET",
        path: berth_core::gateway::DESIRED_PATH,
        query: &query,
        headers: &headers,
        body: b"",
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut request = format!(
        "GET {}?{query} HTTP/1.1\r\nHost: {host}\r\nAccept: application/x-ndjson\r\n",
        berth_core::gateway::DESIRED_PATH
    );
    for (name, value) in sign(&parts, &credentials, "us-east-1", "ecs", now) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    // Plain readiness calls (tokio's `net`), so no I/O utility layer is needed for this.
    let mut unsent = request.as_bytes();
    while !unsent.is_empty() {
        socket.writable().await?;
        match socket.try_write(unsent) {
            Ok(n) => unsent = &unsent[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    // The status line, checked once whole: a refused stream is an error, not a count.
    let mut head = Vec::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return Ok(total),
            ready = socket.readable() => {
                ready?;
                match socket.try_read(&mut buffer) {
                    // The server ended the stream; nothing more will come.
                    Ok(0) => break,
                    Ok(n) => {
                        if head.len() < 12 {
                            head.extend_from_slice(&buffer[..n.min(12 - head.len())]);
                            if head.len() == 12 && !head.starts_with(b"HTTP/1.1 200") {
                                let line = String::from_utf8_lossy(&buffer[..n]);
                                let line = line.lines().next().unwrap_or_default().to_string();
                                return Err(std::io::Error::other(format!(
                                    "the server refused the stream of {instance}: {line}"
                                )));
                            }
                        }
                        total += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let _ = stop.wait_for(|stop| *stop).await;
    Ok(total)
}
