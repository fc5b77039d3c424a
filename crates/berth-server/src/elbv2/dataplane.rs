//! Keeps the [data plane](super::proxy) serving what the store says: after every ELBv2 write,
//! and every second (for deregistration delays that run out), it reads the ELBv2 objects,
//! turns them into a [`ProxyConfig`] and applies it (a no-op when nothing changed), after
//! deleting the targets whose deregistration delay has passed. So a listener serves, and a
//! deregistered target stops taking new requests, within milliseconds of the API's answer.
//!
//! Listeners are served by the server process itself, on the address the API listens on
//! (`127.0.0.1` by default) and the listener's port: one process to run and to secure, and
//! the proxy reads the configuration from memory rather than over the network. A target
//! group's targets are health-checked only while a listener or rule forwards to it (ELB
//! reports the others `unused`). An `ip` target is its address and port; an `instance`
//! target is at the address its container instance's agent registered (`berth.host-address`:
//! the host's address on the route to the server, or the Docker bridge gateway when the
//! agent runs on the server's machine), or on the server's own host when it has none.

use super::health::HealthBoard;
use super::model::{sweep_drained, ActionKind, Config, Listener, TargetGroup};
use super::proxy::{
    ActionConfig, Algorithm, DataPlane, HealthCheckConfig, ListenerConfig, Protocol, ProxyConfig,
    RedirectConfig, RuleConfig, Stickiness, TargetConfig, TargetGroupConfig,
};
use crate::app::App;
use crate::cloudwatch::{Datum, StatisticSet};
use berth_core::model::container_instance::{ContainerInstance, HOST_ADDRESS_ATTRIBUTE};
use berth_store::keys;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the store is read when nothing is written.
const EVERY: Duration = Duration::from_secs(1);
/// How often the requests the proxy counted become CloudWatch datapoints.
const PUBLISH_EVERY: Duration = Duration::from_secs(10);
/// The namespace application load balancers publish in.
pub const NAMESPACE: &str = "AWS/ApplicationELB";

/// Starts the data plane and the loop that keeps it in step; it stops with the server.
pub fn spawn(app: Arc<App>) {
    let plane = DataPlane::new(Arc::clone(&app.elb_health));
    let closing_plane = Arc::clone(&plane);
    let mut closing = app.closing();
    tokio::spawn(async move {
        let _ = closing.changed().await;
        closing_plane.shutdown().await;
    });
    tokio::spawn(async move {
        let reported = Mutex::new(BTreeSet::new());
        let mut closing = app.closing();
        let mut published = Instant::now();
        loop {
            tick(&app, &plane, &reported).await;
            if published.elapsed() >= PUBLISH_EVERY {
                published = Instant::now();
                publish_requests(&app, &plane).await;
            }
            tokio::select! {
                _ = app.elb_changed.notified() => {}
                _ = tokio::time::sleep(EVERY) => {}
                _ = closing.changed() => return,
            }
        }
    });
}

async fn tick(app: &Arc<App>, plane: &Arc<DataPlane>, reported: &Mutex<BTreeSet<String>>) {
    let now = crate::cloudwatch::store::now_ms() as f64 / 1000.0;
    if let Err(e) = sweep_drained(app, now).await {
        tracing::warn!(error = %e.message, "could not remove drained targets");
    }
    let config = match Config::read(app) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(error = %e.message, "could not read the load balancers");
            return;
        }
    };
    // Instance targets need their hosts' addresses; reading every container instance is
    // skipped when no group has one (a fleet without load balancers pays nothing).
    let has_instance_targets = config
        .target_groups
        .iter()
        .any(|g| g.target_type == "instance" && g.live_targets(now).next().is_some());
    let addresses = if has_instance_targets {
        instance_addresses(app)
    } else {
        HashMap::new()
    };
    let errors = plane
        .apply(proxy_config(
            &config,
            app.config.listen.ip(),
            &addresses,
            now,
        ))
        .await;
    // Each failure to bind is logged once, not every second it goes on failing.
    let failing: BTreeSet<String> = errors
        .iter()
        .map(|e| format!("{} on {}: {}", e.listener, e.bind, e.source))
        .collect();
    if let Ok(mut reported) = reported.lock() {
        for message in failing.difference(&reported) {
            tracing::warn!("a load balancer listener cannot listen: {message}");
        }
        *reported = failing;
    }
}

/// Where each container instance's published ports are reached, by the id ELB knows it by
/// (`ec2InstanceId`): the `berth.host-address` its agent registered.
fn instance_addresses(app: &App) -> HashMap<String, IpAddr> {
    app.list::<ContainerInstance>(keys::INSTANCES)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|stored| {
            let instance = stored.value;
            let address = instance
                .attributes
                .iter()
                .flatten()
                .find(|a| a.name == HOST_ADDRESS_ATTRIBUTE)?
                .value
                .as_deref()?
                .parse()
                .ok()?;
            Some((instance.ec2_instance_id?, address))
        })
        .collect()
}

/// What the proxy should serve for `config` at `now`, its listeners bound on `ip`; instance
/// targets are at their instance's address in `addresses` (this host when it has none).
pub fn proxy_config(
    config: &Config,
    ip: IpAddr,
    addresses: &HashMap<String, IpAddr>,
    now: f64,
) -> ProxyConfig {
    let listeners = config
        .listeners
        .iter()
        .filter_map(|listener| listener_config(config, listener, ip))
        .collect();
    let target_groups = config
        .target_groups
        .iter()
        .filter(|group| !config.load_balancers_using(&group.arn).is_empty())
        .map(|group| target_group_config(group, addresses, now))
        .collect();
    ProxyConfig {
        listeners,
        target_groups,
    }
}

fn protocol(name: &str) -> Protocol {
    if name == "TCP" {
        Protocol::Tcp
    } else {
        Protocol::Http
    }
}

fn listener_config(config: &Config, listener: &Listener, ip: IpAddr) -> Option<ListenerConfig> {
    let load_balancer = config.load_balancer(&listener.load_balancer_arn)?;
    let idle_timeout = load_balancer
        .attributes
        .get("idle_timeout.timeout_seconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let mut rules: Vec<RuleConfig> = listener
        .rules
        .iter()
        .filter_map(|rule| {
            let values = |field: &str| -> Vec<String> {
                rule.conditions
                    .iter()
                    .filter(|c| c.field == field)
                    .flat_map(|c| c.values.iter().cloned())
                    .collect()
            };
            Some(RuleConfig {
                path_patterns: values("path-pattern"),
                host_headers: values("host-header"),
                action: action_config(rule.actions.iter().min_by_key(|a| a.order)?)?,
            })
        })
        .collect();
    if let Some(action) = listener
        .default_actions
        .iter()
        .min_by_key(|a| a.order)
        .and_then(action_config)
    {
        rules.push(RuleConfig {
            path_patterns: Vec::new(),
            host_headers: Vec::new(),
            action,
        });
    }
    Some(ListenerConfig {
        key: listener.arn.clone(),
        bind: SocketAddr::new(ip, listener.port),
        protocol: protocol(&listener.protocol),
        rules,
        idle_timeout,
    })
}

fn action_config(action: &super::model::Action) -> Option<ActionConfig> {
    Some(match &action.kind {
        ActionKind::Forward {
            target_groups,
            stickiness,
        } => ActionConfig::Forward(
            target_groups
                .iter()
                .map(|g| (g.target_group_arn.clone(), g.weight))
                .collect(),
            stickiness
                .enabled
                .then(|| Duration::from_secs(u64::from(stickiness.duration_seconds.unwrap_or(1)))),
        ),
        ActionKind::FixedResponse {
            status_code,
            content_type,
            message_body,
        } => ActionConfig::FixedResponse {
            status: status_code.parse().ok()?,
            content_type: content_type.clone(),
            body: message_body.clone(),
        },
        ActionKind::Redirect {
            protocol,
            port,
            host,
            path,
            query,
            status_code,
        } => ActionConfig::Redirect(RedirectConfig {
            protocol: Some(protocol.clone()),
            host: Some(host.clone()),
            port: Some(port.clone()),
            path: Some(path.clone()),
            query: Some(query.clone()),
            status: if status_code == "HTTP_301" { 301 } else { 302 },
        }),
    })
}

pub(super) fn target_group_config(
    group: &TargetGroup,
    addresses: &HashMap<String, IpAddr>,
    now: f64,
) -> TargetGroupConfig {
    let attribute = |name: &str| group.attributes.get(name).map(String::as_str);
    // Cookie durations: ELB's default is a day.
    let seconds = |name: &str| {
        Duration::from_secs(
            attribute(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(86_400),
        )
    };
    let check = &group.health_check;
    let health_check = HealthCheckConfig {
        enabled: check.enabled,
        protocol: protocol(&check.protocol),
        port: check.port.parse().ok(),
        path: check.path.clone().unwrap_or_else(|| "/".into()),
        interval: Duration::from_secs(check.interval_seconds.into()),
        timeout: Duration::from_secs(check.timeout_seconds.into()),
        healthy_threshold: check.healthy_threshold,
        unhealthy_threshold: check.unhealthy_threshold,
        matcher: check.matcher.clone().unwrap_or_else(|| "200".into()),
    };
    let targets = group
        .live_targets(now)
        .map(|target| TargetConfig {
            id: target.id.clone(),
            port: target.port,
            addr: SocketAddr::new(address_of(&target.id, addresses), target.port),
            draining: target.draining_since.is_some(),
        })
        .collect();
    TargetGroupConfig {
        key: group.arn.clone(),
        protocol: protocol(&group.protocol),
        algorithm: if attribute("load_balancing.algorithm.type")
            == Some("least_outstanding_requests")
        {
            Algorithm::LeastOutstandingRequests
        } else {
            Algorithm::RoundRobin
        },
        health_check,
        slow_start: Duration::from_secs(
            attribute("slow_start.duration_seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ),
        stickiness: match (attribute("stickiness.enabled"), protocol(&group.protocol)) {
            (Some("true"), Protocol::Http)
                if attribute("stickiness.type") == Some("app_cookie") =>
            {
                Stickiness::AppCookie {
                    name: attribute("stickiness.app_cookie.cookie_name")
                        .unwrap_or_default()
                        .into(),
                    duration: seconds("stickiness.app_cookie.duration_seconds"),
                }
            }
            (Some("true"), Protocol::Http) => {
                Stickiness::LbCookie(seconds("stickiness.lb_cookie.duration_seconds"))
            }
            (Some("true"), Protocol::Tcp) => Stickiness::SourceIp,
            _ => Stickiness::Off,
        },
        targets,
    }
}

/// Where a target's traffic goes: an `ip` target's own address; an instance (`i-…`, `mi-…`)
/// is its host's address, or this host when that is not known.
fn address_of(id: &str, addresses: &HashMap<String, IpAddr>) -> IpAddr {
    id.parse()
        .ok()
        .or_else(|| addresses.get(id).copied())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Stores what the proxy counted since the last call as ELB's `RequestCount` and
/// `RequestCountPerTarget` (`Sum`, one datapoint per publication).
async fn publish_requests(app: &Arc<App>, plane: &DataPlane) {
    let counts = plane.take_request_counts();
    let Ok(config) = Config::read(app) else {
        return;
    };
    let data = request_data(
        &config,
        &app.elb_health,
        &counts,
        crate::cloudwatch::store::now_ms(),
    );
    if data.is_empty() {
        return;
    }
    let store = Arc::clone(&app.cloudwatch);
    match tokio::task::spawn_blocking(move || store.put(data)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot store load balancer request counts: {}", e.message),
        Err(e) => tracing::warn!("cannot store load balancer request counts: {e}"),
    }
}

/// The datapoints of `counts` (requests per target group ARN) at `now` (epoch ms), for the
/// HTTP target groups a load balancer forwards to: `RequestCount` by load balancer and by
/// load balancer and target group, and `RequestCountPerTarget` (the count over the group's
/// healthy targets, or over all its targets when none is healthy, as ELB counts it) by target
/// group and by load balancer and target group.
pub fn request_data(
    config: &Config,
    health: &HealthBoard,
    counts: &[(String, u64)],
    now: i64,
) -> Vec<Datum> {
    let mut data = Vec::new();
    for (arn, count) in counts {
        let Some(group) = config.target_group(arn) else {
            continue;
        };
        let Some(load_balancer) = config.load_balancers_using(arn).into_iter().next() else {
            continue;
        };
        if group.protocol != "HTTP" {
            continue;
        }
        let (Some(lb), Some(tg)) = (
            load_balancer
                .split_once(":loadbalancer/")
                .map(|(_, tail)| tail.to_string()),
            arn.split_once(":targetgroup/")
                .map(|(_, tail)| format!("targetgroup/{tail}")),
        ) else {
            continue;
        };
        let count = *count as f64;
        let datum = |name: &str, dimensions: Vec<(&str, &String)>, value: f64| Datum {
            namespace: NAMESPACE.into(),
            metric_name: name.into(),
            dimensions: dimensions
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            timestamp: now,
            statistics: StatisticSet::single(value),
            unit: "Count".into(),
        };
        data.push(datum("RequestCount", vec![("LoadBalancer", &lb)], count));
        data.push(datum(
            "RequestCount",
            vec![("LoadBalancer", &lb), ("TargetGroup", &tg)],
            count,
        ));
        let serving: Vec<_> = group
            .live_targets(now as f64 / 1000.0)
            .filter(|t| t.draining_since.is_none())
            .collect();
        let healthy = serving
            .iter()
            .filter(|t| {
                health
                    .get(&(arn.clone(), t.id.clone(), t.port))
                    .is_some_and(|h| h.state == "healthy")
            })
            .count();
        let targets = if healthy > 0 { healthy } else { serving.len() };
        if targets > 0 {
            let per_target = count / targets as f64;
            data.push(datum(
                "RequestCountPerTarget",
                vec![("TargetGroup", &tg)],
                per_target,
            ));
            data.push(datum(
                "RequestCountPerTarget",
                vec![("LoadBalancer", &lb), ("TargetGroup", &tg)],
                per_target,
            ));
        }
    }
    data
}
