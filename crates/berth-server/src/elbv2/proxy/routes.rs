//! A listener's routing table: its rules compiled against the running target groups, the
//! first match of a request's host and path, and the redirect action's URL templates.

use super::config::{ActionConfig, ListenerConfig, RedirectConfig};
use super::http::{cookie, GROUP_COOKIE};
use super::pattern::{host_matches, path_matches};
use super::targets::TargetGroup;
use hyper::body::Bytes;
use hyper::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// ALB's default idle timeout, for a listener configured with none.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A listener's rules as one apply left them; swapped whole, so a request sees one table.
#[derive(Debug)]
pub(super) struct RouteTable {
    rules: Vec<Rule>,
    /// How long a target may take to answer (and a client to send a request head).
    pub(super) idle_timeout: Duration,
}

#[derive(Debug)]
struct Rule {
    hosts: Vec<String>,
    paths: Vec<String>,
    action: Action,
}

/// What to do with a request.
#[derive(Debug)]
pub(super) enum Action {
    Forward(Forward),
    Fixed {
        status: StatusCode,
        content_type: Option<String>,
        body: Bytes,
    },
    Redirect(RedirectConfig),
}

/// A forward action: target groups with weights.
#[derive(Debug)]
pub(super) struct Forward {
    groups: Vec<(Arc<TargetGroup>, u64)>,
    total: u64,
    next: AtomicU64,
    /// Target group stickiness: how long the `AWSALBTG` cookie lasts.
    pub(super) sticky: Option<Duration>,
}

impl Forward {
    /// The group a request with `headers` goes to: with target group stickiness, the one its
    /// `AWSALBTG` cookie names while that one still takes traffic; else [`Forward::choose`].
    pub(super) fn choose_for(&self, headers: &HeaderMap) -> Option<&Arc<TargetGroup>> {
        let stuck = self
            .sticky
            .and_then(|_| cookie(headers, GROUP_COOKIE))
            .and_then(|value| self.groups.iter().find(|(g, _)| g.cookie == value));
        match stuck {
            Some((group, _)) => Some(group),
            None => self.choose(),
        }
    }

    /// The group the next request goes to: in proportion to the weights, deterministically
    /// (a counter over the total weight), so two groups at 1:1 alternate.
    pub(super) fn choose(&self) -> Option<&Arc<TargetGroup>> {
        match self.groups.as_slice() {
            [] => None,
            [(only, _)] => Some(only),
            groups => {
                let mut point = self.next.fetch_add(1, Ordering::Relaxed) % self.total.max(1);
                groups.iter().find_map(|(group, weight)| {
                    if point < *weight {
                        Some(group)
                    } else {
                        point -= weight;
                        None
                    }
                })
            }
        }
    }
}

impl RouteTable {
    /// Compiles `listener`'s rules; forwards to groups missing from `groups` are dropped
    /// (a forward left with none answers 503).
    pub(super) fn build(
        listener: &ListenerConfig,
        groups: &HashMap<String, Arc<TargetGroup>>,
    ) -> Self {
        let rules = listener
            .rules
            .iter()
            .map(|rule| Rule {
                hosts: rule.host_headers.clone(),
                paths: rule.path_patterns.clone(),
                action: match &rule.action {
                    ActionConfig::Forward(targets, sticky) => {
                        let groups: Vec<(Arc<TargetGroup>, u64)> = targets
                            .iter()
                            .filter(|(_, weight)| *weight > 0)
                            .filter_map(|(key, weight)| {
                                let group = groups.get(key);
                                if group.is_none() {
                                    tracing::warn!(listener = %listener.key, target_group = %key, "forward to an unknown target group");
                                }
                                Some((Arc::clone(group?), u64::from(*weight)))
                            })
                            .collect();
                        Action::Forward(Forward {
                            total: groups.iter().map(|(_, w)| w).sum(),
                            groups,
                            next: AtomicU64::new(0),
                            sticky: *sticky,
                        })
                    }
                    ActionConfig::FixedResponse {
                        status,
                        content_type,
                        body,
                    } => Action::Fixed {
                        status: StatusCode::from_u16(*status)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        content_type: content_type.clone(),
                        body: Bytes::from(body.clone().unwrap_or_default()),
                    },
                    ActionConfig::Redirect(redirect) => Action::Redirect(redirect.clone()),
                },
            })
            .collect();
        Self {
            rules,
            idle_timeout: if listener.idle_timeout.is_zero() {
                DEFAULT_IDLE_TIMEOUT
            } else {
                listener.idle_timeout
            },
        }
    }

    /// The action of the first rule all of whose conditions match `host` (without port) and
    /// `path` (without query).
    pub(super) fn route(&self, host: &str, path: &str) -> Option<&Action> {
        self.rules
            .iter()
            .find(|rule| {
                (rule.hosts.is_empty() || rule.hosts.iter().any(|p| host_matches(p, host)))
                    && (rule.paths.is_empty() || rule.paths.iter().any(|p| path_matches(p, path)))
            })
            .map(|rule| &rule.action)
    }

    /// The action every connection of a TCP listener gets: its default (last) rule's.
    pub(super) fn default_forward(&self) -> Option<&Forward> {
        match self.rules.last().map(|rule| &rule.action) {
            Some(Action::Forward(forward)) => Some(forward),
            _ => None,
        }
    }
}

/// The parts of a request a redirect may reuse.
#[derive(Debug)]
pub(super) struct RequestParts<'a> {
    pub(super) protocol: &'static str,
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) path: &'a str,
    pub(super) query: Option<&'a str>,
}

/// The `Location` of a redirect: ELB's defaults for absent parts, placeholders filled in;
/// the port is left out when it is the scheme's default, and the `?` when the query is
/// empty.
pub(super) fn redirect_location(redirect: &RedirectConfig, request: &RequestParts<'_>) -> String {
    let port = request.port.to_string();
    let fill = |template: &str| {
        template
            .replace("#{protocol}", request.protocol)
            .replace("#{host}", request.host)
            .replace("#{port}", &port)
            .replace("#{path}", request.path.trim_start_matches('/'))
            .replace("#{query}", request.query.unwrap_or(""))
    };
    let protocol = fill(redirect.protocol.as_deref().unwrap_or("#{protocol}")).to_ascii_lowercase();
    let host = fill(redirect.host.as_deref().unwrap_or("#{host}"));
    let to_port = fill(redirect.port.as_deref().unwrap_or("#{port}"));
    let mut path = fill(redirect.path.as_deref().unwrap_or("/#{path}"));
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query = fill(redirect.query.as_deref().unwrap_or("#{query}"));
    let default_port = matches!(
        (protocol.as_str(), to_port.as_str()),
        ("http", "80") | ("https", "443")
    );
    let mut location = format!("{protocol}://{host}");
    if !default_port && !to_port.is_empty() {
        location.push(':');
        location.push_str(&to_port);
    }
    location.push_str(&path);
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(path: &'a str, query: Option<&'a str>) -> RequestParts<'a> {
        RequestParts {
            protocol: "http",
            host: "a.test",
            port: 80,
            path,
            query,
        }
    }

    fn redirect() -> RedirectConfig {
        RedirectConfig {
            protocol: None,
            host: None,
            port: None,
            path: None,
            query: None,
            status: 301,
        }
    }

    #[test]
    fn a_redirect_with_defaults_points_at_the_same_url() {
        let location = redirect_location(&redirect(), &request("/x/y", Some("q=1")));
        assert_eq!(location, "http://a.test/x/y?q=1");
    }

    #[test]
    fn a_redirect_to_https_fills_placeholders_and_drops_the_default_port() {
        let to_https = RedirectConfig {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            path: Some("/new/#{path}".into()),
            query: Some("#{query}&from=#{host}".into()),
            ..redirect()
        };
        let location = redirect_location(&to_https, &request("/old", Some("q=1")));
        assert_eq!(location, "https://a.test/new/old?q=1&from=a.test");
    }

    #[test]
    fn a_redirect_keeps_a_port_that_is_not_the_default() {
        let elsewhere = RedirectConfig {
            host: Some("b.test".into()),
            port: Some("8080".into()),
            ..redirect()
        };
        let location = redirect_location(&elsewhere, &request("/", None));
        assert_eq!(location, "http://b.test:8080/");
    }
}
