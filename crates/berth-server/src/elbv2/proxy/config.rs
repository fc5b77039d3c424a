//! What the data plane is told to serve: listeners, their rules, target groups and their
//! targets, as plain values with no tie to the API's stored records.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the data plane serves; [`super::DataPlane::apply`] makes the running proxy
/// match it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Every listener of every load balancer.
    pub listeners: Vec<ListenerConfig>,
    /// Every target group a listener may forward to.
    pub target_groups: Vec<TargetGroupConfig>,
}

/// The protocol a listener speaks, a target group receives or a health check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (ALB); requests are routed one by one.
    Http,
    /// Plain TCP (NLB); connections are spliced to one target each.
    Tcp,
}

/// One listener: a socket the proxy accepts on and the rules that route what arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Identifies the listener across applies (its ARN).
    pub key: String,
    /// Where to accept; port 0 takes an ephemeral port ([`super::DataPlane::local_addr`]).
    pub bind: SocketAddr,
    /// HTTP (rules apply) or TCP (the last rule's forward applies to every connection).
    pub protocol: Protocol,
    /// In priority order, the default rule (no conditions) last.
    pub rules: Vec<RuleConfig>,
    /// How long a target may take to start answering before the client gets a 504 (ALB's
    /// `idle_timeout.timeout_seconds`; zero means its default, 60 s); also bounds how long a
    /// client may take to send a request head.
    pub idle_timeout: Duration,
}

/// One listener rule: all its conditions must match; a condition with several values matches
/// if any value does; a rule without conditions matches every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// `path-pattern` values: case-sensitive, `*` and `?` wildcards, matched against the path
    /// without the query string.
    pub path_patterns: Vec<String>,
    /// `host-header` values: case-insensitive, `*` and `?` wildcards, matched against the
    /// Host header without its port.
    pub host_headers: Vec<String>,
    /// What to do with a matching request.
    pub action: ActionConfig,
}

/// What a rule does with the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionConfig {
    /// Proxies to a target of one of these (target group key, weight) pairs, chosen by
    /// weight; a weight of 0 takes no traffic. With target group stickiness (a duration),
    /// the `AWSALBTG` cookie keeps a client on the group it was first sent to.
    Forward(Vec<(String, u32)>, Option<Duration>),
    /// Answers directly.
    FixedResponse {
        /// 2XX, 4XX or 5XX.
        status: u16,
        /// `text/plain`, `application/json`, ...; no header if absent.
        content_type: Option<String>,
        /// The body; empty if absent.
        body: Option<String>,
    },
    /// Answers with a redirect.
    Redirect(RedirectConfig),
}

/// A redirect action. Every part may use the placeholders `#{protocol}`, `#{host}`,
/// `#{port}`, `#{path}` (the request's path without its leading `/`) and `#{query}`; an
/// absent part keeps the request's own (ELB's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectConfig {
    /// `HTTP`, `HTTPS` or `#{protocol}`.
    pub protocol: Option<String>,
    /// The host, default `#{host}`.
    pub host: Option<String>,
    /// The port, default `#{port}`.
    pub port: Option<String>,
    /// The absolute path, default `/#{path}`.
    pub path: Option<String>,
    /// The query without its `?`, default `#{query}`.
    pub query: Option<String>,
    /// 301 or 302.
    pub status: u16,
}

/// How a target group spreads requests over its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// In turn (ELB's default); honours slow start.
    #[default]
    RoundRobin,
    /// To the target with the fewest requests in flight.
    LeastOutstandingRequests,
}

/// Whether one client's requests or connections keep going to one target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Stickiness {
    /// Every request or connection is placed afresh.
    #[default]
    Off,
    /// HTTP (ALB's `lb_cookie`): the load balancer's `AWSALB` cookie, set on every response
    /// for this long, names the target the client's next requests go to while it is healthy
    /// and not draining.
    LbCookie(Duration),
    /// HTTP (ALB's `app_cookie`): once a target's response sets the application's cookie
    /// `name`, the load balancer's `AWSALBAPP-0` cookie, set for `duration`, names that
    /// target for the client's next requests.
    AppCookie {
        /// The application's cookie.
        name: std::sync::Arc<str>,
        /// How long `AWSALBAPP-0` lasts.
        duration: Duration,
    },
    /// TCP (NLB's `source_ip`): connections from one client address go to one target.
    SourceIp,
}

/// One target group: its targets, how to spread over them and how to check them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupConfig {
    /// Identifies the group across applies and in the health board (its ARN).
    pub key: String,
    /// HTTP for ALB groups, TCP for NLB groups.
    pub protocol: Protocol,
    /// How requests are spread (HTTP listeners; TCP listeners hash the client's address).
    pub algorithm: Algorithm,
    /// How targets are checked.
    pub health_check: HealthCheckConfig,
    /// A target that turns healthy gets a linearly growing share of requests over this long
    /// (round robin only); zero turns slow start off.
    pub slow_start: Duration,
    /// Sticky sessions (`stickiness.*` attributes).
    pub stickiness: Stickiness,
    /// The registered targets.
    pub targets: Vec<TargetConfig>,
}

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// When false, targets are not checked: they take traffic and report `unavailable`
    /// (`Target.HealthCheckDisabled`), as ELB does for groups whose checks are off.
    pub enabled: bool,
    /// HTTP: a GET must answer a status `matcher` accepts; TCP: a connect must succeed.
    pub protocol: Protocol,
    /// The port to check; `None` is the traffic port.
    pub port: Option<u16>,
    /// The path of HTTP checks.
    pub path: String,
    /// Time between checks of one target; the first check runs at registration.
    pub interval: Duration,
    /// How long a check may take before it counts as failed (`Target.Timeout`).
    pub timeout: Duration,
    /// Consecutive successes that make a target healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a target unhealthy.
    pub unhealthy_threshold: u32,
    /// Accepted HTTP codes: `200`, `200-299`, `200,302`.
    pub matcher: String,
}

/// One registered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// The target id (instance id or IP) as registered; part of the health board's key.
    pub id: String,
    /// The registered port; part of the health board's key.
    pub port: u16,
    /// Where traffic and checks go.
    pub addr: SocketAddr,
    /// Deregistered: takes no new requests or connections while its in-flight ones finish.
    pub draining: bool,
}
