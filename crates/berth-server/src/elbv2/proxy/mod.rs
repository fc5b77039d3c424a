//! The load balancers' data plane: the proxy that serves ELBv2 listeners.
//!
//! # What it does
//!
//! [`DataPlane::apply`] takes a [`ProxyConfig`] — listeners with their rules, target groups
//! with their targets and health checks, as plain values — and makes the running proxy match
//! it:
//!
//! - **HTTP listeners** (ALB) serve HTTP/1.1 with keep-alive and HTTP/2 (h2c) through hyper,
//!   and pass WebSocket (HTTP/1.1 `Upgrade`) handshakes to a target. A request goes to
//!   the first rule whose conditions all match (`host-header`: case-insensitive, `path-pattern`:
//!   case-sensitive, both with `*` and `?`), the default rule last. A forward picks a target
//!   group by weight and a target of it by round robin (with slow start) or least outstanding
//!   requests, among healthy targets that are not draining — or among all targets that are
//!   not draining when none is healthy (ALB fails open) — and proxies over the target's own
//!   pool of keep-alive HTTP/1.1 connections (`upstream.rs`), bodies streamed both ways, `X-Forwarded-For` appended,
//!   `X-Forwarded-Proto` and `X-Forwarded-Port` set, `Host` kept. A GET, HEAD, OPTIONS, PUT
//!   or DELETE whose target could not be reached (refused, reset before any answer) is sent
//!   once more to another target, if it never went out or had no body; otherwise the
//!   client gets 502. No answer within the listener's idle timeout is a 504; a group without
//!   targets is a 503. Fixed responses and redirects (`#{host}`, `#{path}`, `#{port}`,
//!   `#{query}`, `#{protocol}`) are answered by the proxy itself.
//! - **TCP listeners** (NLB) splice each connection to a target of the default action
//!   (`copy_bidirectional`), chosen by a hash of the client's address and port.
//! - **Draining**: a target marked draining gets no new requests or connections; those in
//!   flight finish. [`DataPlane::in_flight`] counts them per target (a response counts until
//!   its body has been sent), so the caller can end the deregistration delay early. A target
//!   removed from the config takes no new traffic from that apply on.
//! - **Health checks**: every target of every group is checked at registration and then
//!   every interval (HTTP GET of the path with `User-Agent: ELB-HealthChecker/2.0`, success
//!   if the code matches the matcher; or a TCP connect). `initial` turns `healthy` after
//!   `healthy_threshold` consecutive successes or `unhealthy` after `unhealthy_threshold`
//!   consecutive failures (`Target.Timeout`, `Target.ResponseCodeMismatch`,
//!   `Target.FailedHealthChecks`), and back by the same thresholds. Every state goes to the
//!   [`HealthBoard`] under (target group key, target id, port); entries of targets no longer
//!   configured are removed. A group whose checks are disabled reports its targets
//!   `unavailable` (`Target.HealthCheckDisabled`, as ELB does) and routes to them as to
//!   healthy ones. Draining targets are still checked; the API shows them `draining`.
//!
//! `apply` is cheap when nothing changed (one comparison) and never disturbs a listener
//! whose key, address and protocol stay: its routes are swapped whole, so each request sees
//! one table, and its connections keep going. A removed listener stops accepting before
//! `apply` returns (its port is free) while its connections finish what they are doing.
//! Groups and targets keep their health, counters and checks across applies. A listener
//! that cannot bind is reported as a [`BindError`] and tried again by the next `apply`.
//!
//! # Where it runs, and why
//!
//! In the server process, next to the ELBv2 API, because the API needs what only the proxy
//! knows (target health, connections in flight for draining) and the proxy needs what only
//! the API knows (listeners, rules, registered targets): in one process that is a shared
//! [`HealthBoard`] and an `apply` call, with no protocol between them. It depends on no store
//! record: the glue that turns stored ELBv2 objects into a [`ProxyConfig`] calls `apply`
//! whenever they change (and periodically, which is free when nothing did).
//!
//! # Design note: staying out of the way of throughput and latency
//!
//! The request path takes no lock that `apply` or the health checkers hold for long: a
//! request clones an `Arc` of its listener's routing table and of its group's target set
//! (each behind an `RwLock` only written by `apply`), reads atomics for health, draining and
//! in-flight counts, and picks a target without allocating (slow start aside). Rule matching
//! is a linear scan of byte-wise wildcard matches, which is what ALB's rule limits (100 per
//! listener) make cheap. Connections to targets are pooled and kept alive, Nagle is off on
//! both sides, and bodies are streamed frame by frame, never buffered — which is why a retry
//! is only possible while the request has not gone out, or had no body. Each target keeps
//! its own pool of HTTP/1.1 connections (`upstream.rs`, on hyper's connection API): taking
//! one is a short mutex-held pop, and a response's connection goes back when its body ends.
//! Requests that switch protocols (WebSocket) go on a connection of their own and, on a
//! 101, are spliced (`upgrade.rs`). What it does not do: HTTP/2 to targets, TLS listeners,
//! connection limits. Sticky sessions (`lb_cookie`, `app_cookie`): the `AWSALB` and
//! `AWSALBAPP-0` cookies hold a hash of the target's group, id and port (`Target::cookie`),
//! so they survive applies and restarts and name nothing a client could not reach anyway.

mod config;
mod health_check;
mod http;
mod listener;
mod pattern;
mod routes;
mod targets;
#[cfg(test)]
mod tests;
mod upgrade;
mod upstream;

pub use config::{
    ActionConfig, Algorithm, HealthCheckConfig, ListenerConfig, Protocol, ProxyConfig,
    RedirectConfig, RuleConfig, Stickiness, TargetConfig, TargetGroupConfig,
};

use crate::elbv2::health::{HealthBoard, TargetKey};
use health_check::CheckClient;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use listener::RunningListener;
use routes::RouteTable;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use targets::TargetGroup;

/// How long the proxy waits for a target to accept a connection (ALB's 10 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the connections of a removed listener get to finish.
const LISTENER_DRAIN: Duration = Duration::from_secs(60);
/// How long the connections of every listener get to finish on shutdown.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("listener {listener} could not bind {bind}: {source}")]
pub struct BindError {
    /// The listener's key.
    pub listener: String,
    /// The address it asked for.
    pub bind: SocketAddr,
    /// Why not (address in use, permission denied, ...).
    #[source]
    pub source: std::io::Error,
}

/// The load balancers' data plane: running listeners, target groups and health checks,
/// made to match a [`ProxyConfig`] by [`DataPlane::apply`].
#[derive(Debug)]
pub struct DataPlane {
    board: Arc<HealthBoard>,
    checker: CheckClient,
    epoch: Instant,
    /// Written only by `apply` (under `state`); read by [`DataPlane::in_flight`].
    groups: RwLock<HashMap<String, Arc<TargetGroup>>>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    listeners: HashMap<String, RunningListener>,
    /// The config last applied without bind errors: applying it again changes nothing.
    applied: Option<ProxyConfig>,
    shut_down: bool,
}

impl DataPlane {
    /// A data plane serving nothing yet, reporting health to `health`.
    pub fn new(health: Arc<HealthBoard>) -> Arc<DataPlane> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let checker = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Arc::new(DataPlane {
            board: health,
            checker,
            epoch: Instant::now(),
            groups: RwLock::new(HashMap::new()),
            state: tokio::sync::Mutex::new(State::default()),
        })
    }

    /// Makes the running listeners, routes, target sets and health checks match `config`:
    /// binds new listeners, closes removed ones (their connections finish), swaps routing
    /// tables whole, starts and stops health checks. Returns the listeners it could not bind
    /// (the others run); they are tried again by the next call. Nothing happens after
    /// [`DataPlane::shutdown`].
    pub async fn apply(self: &Arc<Self>, config: ProxyConfig) -> Vec<BindError> {
        let mut state = self.state.lock().await;
        if state.shut_down || state.applied.as_ref() == Some(&config) {
            return Vec::new();
        }

        // Target groups first, so that the new routes point at their new selves.
        let mut previous = self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut groups = HashMap::with_capacity(config.target_groups.len());
        for wanted in &config.target_groups {
            let group = previous
                .remove(&wanted.key)
                .or_else(|| groups.get(&wanted.key).cloned())
                .unwrap_or_else(|| Arc::new(TargetGroup::new(&wanted.key, self.epoch)));
            group.update(wanted, &self.checker, &self.board);
            groups.insert(wanted.key.clone(), group);
        }
        *self.groups.write().unwrap_or_else(PoisonError::into_inner) = groups.clone();

        // Listeners that go, or whose address or protocol changed, close first: a new
        // listener may want the port.
        let wanted: HashMap<&str, &ListenerConfig> = config
            .listeners
            .iter()
            .map(|l| (l.key.as_str(), l))
            .collect();
        let closing: Vec<String> = state
            .listeners
            .iter()
            .filter(|(key, running)| {
                !wanted
                    .get(key.as_str())
                    .is_some_and(|l| l.bind == running.bind && l.protocol == running.protocol)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in closing {
            if let Some(running) = state.listeners.remove(&key) {
                // The drain goes on in the listener's own task.
                drop(running.close(LISTENER_DRAIN).await);
            }
        }
        let mut errors = Vec::new();
        for listener in &config.listeners {
            let routes = RouteTable::build(listener, &groups);
            if let Some(running) = state.listeners.get(&listener.key) {
                running.listening.set_routes(routes);
                continue;
            }
            match RunningListener::start(listener, routes).await {
                Ok(running) => {
                    state.listeners.insert(listener.key.clone(), running);
                }
                Err(source) => {
                    // The caller logs it (once, not on every apply that retries it).
                    tracing::debug!(listener = %listener.key, bind = %listener.bind, error = %source, "listener could not bind");
                    errors.push(BindError {
                        listener: listener.key.clone(),
                        bind: listener.bind,
                        source,
                    });
                }
            }
        }

        // Routes no longer reach removed groups: stop their checks, forget their health.
        for gone in previous.into_values() {
            gone.retire(&self.board);
        }
        let configured: HashSet<TargetKey> = config
            .target_groups
            .iter()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| (g.key.clone(), t.id.clone(), t.port))
            })
            .collect();
        self.board.retain(|key| configured.contains(key));

        state.applied = errors.is_empty().then_some(config);
        errors
    }

    /// Requests (HTTP) or connections (TCP) in flight to the target at `addr` of group
    /// `target_group`; 0 for a target that is not configured.
    pub fn in_flight(&self, target_group: &str, addr: SocketAddr) -> usize {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target_group)
            .map_or(0, |group| group.in_flight(addr))
    }

    /// The HTTP requests routed to each target group since the last call, by group key
    /// (every group the proxy serves, zero included).
    pub fn take_request_counts(&self) -> Vec<(String, u64)> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|group| (group.key.clone(), group.take_requests()))
            .collect()
    }

    /// Where listener `key` accepts, if it is running (its port, when it asked for 0).
    pub async fn local_addr(&self, key: &str) -> Option<SocketAddr> {
        self.state.lock().await.listeners.get(key).map(|l| l.local)
    }

    /// Closes every listener, lets connections finish for a while (HTTP ones after their
    /// request in flight), and stops the health checks.
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        state.shut_down = true;
        state.applied = None;
        let mut draining = Vec::new();
        for (_, running) in state.listeners.drain() {
            draining.push(running.close(SHUTDOWN_DRAIN).await);
        }
        for task in draining {
            let _ = task.await;
        }
        for group in self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            group.stop_checks();
        }
    }
}

impl Drop for DataPlane {
    /// Listeners close when their handles go with `state`; checks are tasks of their own.
    fn drop(&mut self) {
        for group in self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            group.stop_checks();
        }
    }
}
