//! The DNS server that answers for AWS Cloud Map's DNS namespaces, as Route 53 does for them on
//! AWS: `svc.ns` gives the addresses of the healthy instances of service `svc` of namespace
//! `ns` (`A`, `AAAA`), their ports (`SRV`, also as `_svc._tcp.ns`, with each target's address
//! in the additional section) — see [`zone`] for every record. It is authoritative for those
//! namespaces only and no recursive resolver: a name in none of them is `REFUSED`, so a stub
//! resolver that lists another server after this one (glibc, musl) moves on to it.
//!
//! **Where it listens**: UDP and TCP on each address of [`crate::ServerConfig::dns_listen`].
//! `berth server` and `berth up` take `--dns-listen ADDR:PORT` (repeatable, `off` for none),
//! `127.0.0.1:8053` by default: port 53 needs root, and loopback keeps a plain server from
//! answering the network (`dig @127.0.0.1 -p 8053 svc.ns`, or a local resolver forwarding the
//! namespaces' domains there, e.g. systemd-resolved's `DNS=127.0.0.1:8053#ns`). `berth up` also
//! listens on the Docker bridge's gateway (docker0's address, usually `172.17.0.1`) port 53
//! when it may bind it (as root), because that is the address bridge-mode containers reach the
//! host on: a container definition with `dnsServers: ["172.17.0.1", <another resolver>]`
//! resolves Cloud Map names and, past the `REFUSED`, every other one. An address that cannot
//! be bound is logged once, as an error, and the server runs on without it.
//!
//! **Freshness**: every question is answered from the state cache as it is then (the zone is
//! rebuilt when the cache's revision has moved since the last question), so an answer reflects
//! every acknowledged write: a deregistered instance or a stopped task is gone at once, well
//! within the 2 s Berth promises. What clients cache is up to the TTLs the services set.

pub mod answer;
pub mod listen;
#[cfg(test)]
mod tests;
pub mod zone;

use crate::app::App;
use answer::Resolver;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The server is stopping.
    #[error("the server is stopping")]
    Stopped,
    /// Cloud Map's records could not be read from the state cache.
    #[error("cannot read Cloud Map's records: {0}")]
    Read(String),
}

/// Starts answering on every address of the server's `dns_listen`, in the background, until
/// the server stops. An address that cannot be bound is logged, once; the others still serve;
/// one another process holds is tried again every [`RETRY_BIND`] until it is free.
pub fn spawn(app: Arc<App>) {
    if app.config.dns_listen.is_empty() {
        return;
    }
    let resolver = Arc::new(Resolver::new(&app));
    for addr in app.config.dns_listen.clone() {
        let resolver = resolver.clone();
        let closing = app.closing();
        tokio::spawn(async move {
            let mut logged = false;
            loop {
                match listen::listen(resolver.clone(), addr, closing.clone()).await {
                    Ok(bound) => {
                        tracing::info!(
                            %bound,
                            "DNS: answering for Cloud Map's DNS namespaces (UDP and TCP)"
                        );
                        return;
                    }
                    Err(e) => {
                        if !logged {
                            tracing::error!(
                                %addr,
                                error = %e,
                                "DNS: cannot listen; Cloud Map names are not answered there{}",
                                hint(addr, &e)
                            );
                            logged = true;
                        }
                        // Another process holds the port: take it once it is free.
                        if e.kind() != std::io::ErrorKind::AddrInUse || addr.port() == 0 {
                            return;
                        }
                    }
                }
                let mut stopping = closing.clone();
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_BIND) => {}
                    _ = stopping.wait_for(|closing| *closing) => return,
                }
            }
        });
    }
}

/// How often an address another process holds is tried again.
const RETRY_BIND: std::time::Duration = std::time::Duration::from_secs(2);

/// What to do about a failed bind of `addr`.
fn hint(addr: SocketAddr, error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; see --dns-listen)"
        }
        std::io::ErrorKind::AddrInUse => " (another DNS server holds this port; see --dns-listen)",
        std::io::ErrorKind::AddrNotAvailable => " (no interface has this address)",
        _ => "",
    }
}
