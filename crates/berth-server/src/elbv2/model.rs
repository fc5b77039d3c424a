//! ELBv2's objects as the store keeps them, for the API handlers and for the data plane that
//! serves them: load balancers, target groups (with their registered targets), listeners (with
//! their rules). Every record is JSON under its own key prefix.
//!
//! Layout, chosen so one transaction changes what must change together:
//! - a load balancer is `/elbv2/load-balancers/{name}`;
//! - a target group is `/elbv2/target-groups/{name}` and holds its registered targets, so a
//!   registration or a deregistration is one write of that record;
//! - a listener is `/elbv2/listeners/{lb name}/{lb id}/{listener id}` and holds its rules in
//!   priority order, so a rule's priority is unique in one record and deleting a listener
//!   deletes its rules;
//! - [`GENERATION`] is a counter every ELBv2 write bumps under compare-on-revision: writes are
//!   serialised, so checks that span records (a target group forwarded to by one load balancer
//!   only, none deleted while in use) hold when the write lands.

use crate::app::App;
use crate::error::ApiError;
use berth_store::typed::encode;
use berth_store::{Compare, Txn};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where load balancers are kept, by name.
pub const LOAD_BALANCERS: &str = "/elbv2/load-balancers/";
/// Where target groups are kept, by name.
pub const TARGET_GROUPS: &str = "/elbv2/target-groups/";
/// Where listeners are kept, by `{lb name}/{lb id}/{listener id}` (their ARN's tail).
pub const LISTENERS: &str = "/elbv2/listeners/";
/// The counter every ELBv2 write bumps (see the module's documentation).
pub const GENERATION: &str = "/elbv2/generation";

/// The store key of load balancer `name`.
pub fn load_balancer_key(name: &str) -> String {
    format!("{LOAD_BALANCERS}{name}")
}

/// The store key of target group `name`.
pub fn target_group_key(name: &str) -> String {
    format!("{TARGET_GROUPS}{name}")
}

/// The store key of a listener, from the tail of its ARN (`{lb name}/{lb id}/{listener id}`).
pub fn listener_key(tail: &str) -> String {
    format!("{LISTENERS}{tail}")
}

/// A tag of any ELBv2 resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One zone a load balancer is in: Berth has no VPC, so a zone per subnet given (or one
/// synthetic subnet in `{region}a` when none is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub zone_name: String,
    pub subnet_id: String,
}

/// A load balancer (`Type` application or network).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    /// `application` or `network`.
    pub kind: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// `ipv4`.
    pub ip_address_type: String,
    pub dns_name: String,
    pub canonical_hosted_zone_id: String,
    pub vpc_id: String,
    pub zones: Vec<Zone>,
    pub security_groups: Vec<String>,
    /// Epoch seconds.
    pub created: f64,
    /// Every attribute with its current value (defaults included).
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
}

impl LoadBalancer {
    /// Its store key.
    pub fn key(&self) -> String {
        load_balancer_key(&self.name)
    }

    /// Whether `deletion_protection.enabled` is on.
    pub fn deletion_protected(&self) -> bool {
        self.attributes
            .get("deletion_protection.enabled")
            .is_some_and(|v| v == "true")
    }
}

/// How a target group checks its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Always true for instance and ip targets.
    pub enabled: bool,
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// `traffic-port` (the target's own port) or a port number.
    pub port: String,
    /// The path of HTTP checks.
    pub path: Option<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// The HTTP codes that pass an HTTP check (`200`, `200,202`, `200-299`).
    pub matcher: Option<String>,
}

impl HealthCheck {
    /// The port a check of a target serving on `target_port` goes to.
    pub fn port_for(&self, target_port: u16) -> u16 {
        self.port.parse().unwrap_or(target_port)
    }
}

/// A registered target of a target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// An instance id or an IPv4 address, as the group's target type says.
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// When DeregisterTargets was called (epoch seconds): the target drains until the group's
    /// deregistration delay has passed, then it is gone.
    pub draining_since: Option<f64>,
    /// The ARN of the ECS task registered as this target by its service (none for targets
    /// registered through the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// A target group with its registered targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// `HTTP1` for HTTP groups.
    pub protocol_version: Option<String>,
    pub port: u16,
    pub vpc_id: Option<String>,
    /// `instance` or `ip`.
    pub target_type: String,
    /// `ipv4`.
    pub ip_address_type: String,
    pub health_check: HealthCheck,
    /// Every attribute with its current value (defaults included).
    pub attributes: BTreeMap<String, String>,
    /// In registration order.
    pub targets: Vec<Target>,
    /// Epoch seconds.
    pub created: f64,
    pub tags: Vec<Tag>,
}

impl TargetGroup {
    /// Its store key.
    pub fn key(&self) -> String {
        target_group_key(&self.name)
    }

    /// `deregistration_delay.timeout_seconds`: how long a deregistered target drains.
    pub fn deregistration_delay(&self) -> f64 {
        self.attributes
            .get("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300.0)
    }

    /// The registered targets at `now`: those still draining included, those whose
    /// deregistration delay has passed left out.
    pub fn live_targets(&self, now: f64) -> impl Iterator<Item = &Target> {
        let delay = self.deregistration_delay();
        self.targets
            .iter()
            .filter(move |t| !draining_expired(t, delay, now))
    }
}

/// Whether `target` was deregistered at least `delay` seconds before `now`, so it is gone.
pub fn draining_expired(target: &Target, delay: f64, now: f64) -> bool {
    target
        .draining_since
        .is_some_and(|since| now >= since + delay)
}

/// One target group a forward action sends to, with its share of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTargetGroup {
    pub target_group_arn: String,
    /// 0 to 999.
    pub weight: u32,
}

/// Target group stickiness of a forward action with several target groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardStickiness {
    pub enabled: bool,
    /// 1 to 604800 seconds, when enabled.
    pub duration_seconds: Option<u32>,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ActionKind {
    /// Sends the request to one of `target_groups`, by weight.
    Forward {
        target_groups: Vec<WeightedTargetGroup>,
        stickiness: ForwardStickiness,
    },
    /// Answers with a fixed status and body.
    FixedResponse {
        /// `2XX`, `4XX` or `5XX`.
        status_code: String,
        content_type: Option<String>,
        message_body: Option<String>,
    },
    /// Answers with a redirect; `#{protocol}`, `#{host}`, `#{port}`, `#{path}` and `#{query}`
    /// stand for the request's own.
    Redirect {
        protocol: String,
        port: String,
        host: String,
        path: String,
        query: String,
        /// `HTTP_301` or `HTTP_302`.
        status_code: String,
    },
}

/// One action of a listener's default actions or of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Actions run in this order (1 to 50000).
    pub order: u32,
    pub kind: ActionKind,
}

impl Action {
    /// The ARNs of the target groups this action forwards to.
    pub fn target_group_arns(&self) -> impl Iterator<Item = &str> {
        let groups: &[WeightedTargetGroup] = match &self.kind {
            ActionKind::Forward { target_groups, .. } => target_groups,
            _ => &[],
        };
        groups.iter().map(|g| g.target_group_arn.as_str())
    }
}

/// A condition of a rule: the request matches when its field matches any of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `path-pattern` (case-sensitive) or `host-header` (case-insensitive); `*` matches any
    /// characters, `?` one.
    pub field: String,
    pub values: Vec<String>,
}

/// A rule of a listener (not the default rule, which is the listener's default actions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub arn: String,
    /// 1 to 50000, unique in the listener; lower is evaluated first.
    pub priority: u32,
    /// All must match.
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

/// A listener of a load balancer, with its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    /// `HTTP` (application load balancers) or `TCP` (network).
    pub protocol: String,
    /// What a request no rule matches gets.
    pub default_actions: Vec<Action>,
    /// The ARN DescribeRules gives the default rule.
    pub default_rule_arn: String,
    /// In priority order.
    pub rules: Vec<Rule>,
    pub tags: Vec<Tag>,
    /// The tags of the default rule.
    #[serde(default)]
    pub default_rule_tags: Vec<Tag>,
}

impl Listener {
    /// Its store key.
    pub fn key(&self) -> String {
        let tail = self
            .arn
            .split_once(":listener/")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map_or("", |(_, tail)| tail);
        listener_key(tail)
    }

    /// Every action of the listener: its default actions and its rules'.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.default_actions
            .iter()
            .chain(self.rules.iter().flat_map(|r| r.actions.iter()))
    }

    /// The target groups the listener or its rules forward to.
    pub fn target_group_arns(&self) -> BTreeSet<&str> {
        self.actions().flat_map(Action::target_group_arns).collect()
    }
}

/// Every ELBv2 object of the store at one moment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub load_balancers: Vec<LoadBalancer>,
    pub target_groups: Vec<TargetGroup>,
    pub listeners: Vec<Listener>,
}

impl Config {
    /// Reads them all.
    pub fn read(app: &App) -> Result<Config, ApiError> {
        Ok(Config {
            load_balancers: values(app.list(LOAD_BALANCERS)?),
            target_groups: values(app.list(TARGET_GROUPS)?),
            listeners: values(app.list(LISTENERS)?),
        })
    }

    /// Load balancer `arn`.
    pub fn load_balancer(&self, arn: &str) -> Option<&LoadBalancer> {
        self.load_balancers.iter().find(|lb| lb.arn == arn)
    }

    /// Target group `arn`.
    pub fn target_group(&self, arn: &str) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|tg| tg.arn == arn)
    }

    /// Listener `arn`.
    pub fn listener(&self, arn: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.arn == arn)
    }

    /// The listeners of load balancer `arn`.
    pub fn listeners_of<'a>(&'a self, arn: &'a str) -> impl Iterator<Item = &'a Listener> + 'a {
        self.listeners
            .iter()
            .filter(move |l| l.load_balancer_arn == arn)
    }

    /// Rule `arn` (a listener's default rule included: its listener and no rule) with its
    /// listener.
    pub fn rule(&self, arn: &str) -> Option<(&Listener, Option<&Rule>)> {
        self.listeners.iter().find_map(|l| {
            if l.default_rule_arn == arn {
                return Some((l, None));
            }
            l.rules.iter().find(|r| r.arn == arn).map(|r| (l, Some(r)))
        })
    }

    /// The load balancers whose listeners or rules forward to target group `arn`.
    pub fn load_balancers_using(&self, target_group_arn: &str) -> BTreeSet<String> {
        self.listeners
            .iter()
            .filter(|l| l.target_group_arns().contains(target_group_arn))
            .map(|l| l.load_balancer_arn.clone())
            .collect()
    }
}

fn values<T>(records: Vec<berth_store::typed::Versioned<T>>) -> Vec<T> {
    records.into_iter().map(|r| r.value).collect()
}

/// What the records one [`write`] puts may take: the transaction's guards and bytes less its
/// generation's. A change that would put more writes what fits and leaves the rest for
/// another write.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    puts: usize,
    bytes: usize,
}

impl Room {
    pub fn of(app: &App) -> Self {
        let limits = app.write_limits();
        Self {
            puts: limits.max_ops.saturating_sub(1).max(1),
            bytes: limits.max_bytes.saturating_sub(1024),
        }
    }

    /// Whether a put of `bytes` more fits (the first always does), counting it when it does.
    pub fn take(&mut self, bytes: usize, first: bool) -> bool {
        if !first && (self.puts == 0 || bytes > self.bytes) {
            return false;
        }
        self.puts = self.puts.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        true
    }
}

/// Runs `change` on the current ELBv2 configuration and commits the transaction it returns,
/// guarded by [`GENERATION`]; again on a fresh read if another write came first. An error of
/// `change` leaves the store untouched.
pub async fn write<T>(
    app: &App,
    mut change: impl FnMut(&Config) -> Result<(Txn, T), ApiError>,
) -> Result<T, ApiError> {
    loop {
        let generation = app.get::<u64>(GENERATION)?;
        let (revision, next) = generation.map_or((0, 1), |g| (g.mod_revision, g.value + 1));
        let config = Config::read(app)?;
        let (txn, out) = change(&config)?;
        let txn = txn
            .when(Compare::at(GENERATION, revision))
            .put(GENERATION, encode(&next));
        if app.commit(txn).await?.succeeded {
            app.elb_changed.notify_one();
            return Ok(out);
        }
    }
}

/// Deletes from the store the targets whose deregistration delay has passed by `now` (epoch
/// seconds) and forgets their health: the data plane calls it periodically.
pub async fn sweep_drained(app: &Arc<App>, now: f64) -> Result<(), ApiError> {
    let any_expired = Config::read(app)?.target_groups.iter().any(|g| {
        let delay = g.deregistration_delay();
        g.targets.iter().any(|t| draining_expired(t, delay, now))
    });
    if !any_expired {
        return Ok(());
    }
    // A write at a time, each with what fits: the groups it left have expired targets still.
    let room = Room::of(app);
    let mut gone = Vec::new();
    loop {
        let (written, more) = write(app, |config| {
            let mut txn = Txn::new();
            let mut room = room;
            let mut gone = Vec::new();
            let mut more = false;
            for group in &config.target_groups {
                let delay = group.deregistration_delay();
                let (expired, kept): (Vec<_>, Vec<_>) = group
                    .targets
                    .iter()
                    .cloned()
                    .partition(|t| draining_expired(t, delay, now));
                if expired.is_empty() {
                    continue;
                }
                let group = TargetGroup {
                    targets: kept,
                    ..group.clone()
                };
                let record = encode(&group);
                if !room.take(group.key().len() + record.len(), txn.ops.is_empty()) {
                    more = true;
                    break;
                }
                gone.extend(
                    expired
                        .into_iter()
                        .map(|t| (group.arn.clone(), t.id, t.port)),
                );
                txn = txn.put(group.key(), record);
            }
            Ok((txn, (gone, more)))
        })
        .await?;
        gone.extend(written);
        if !more {
            break;
        }
    }
    for key in gone {
        app.elb_health.remove(&key);
    }
    Ok(())
}
