//! Security groups for awsvpc tasks, as Berth enforces them: a minimal stateful firewall on
//! each task's own interface. A task in one or more groups Berth knows (made with the EC2
//! API's CreateSecurityGroup) accepts connections only from its host, from tasks that share
//! one of its groups, and from what its groups' ingress rules allow (an IPv4 block or the
//! tasks of another group, for a protocol and port range); replies to its own connections
//! always come back. Egress is not filtered. A task whose groups are all unknown to Berth
//! (ids written for AWS) is not filtered, so task JSON and Terraform written for AWS run
//! unchanged. Here: the stored group, its rules, and the firewall a task carries to its agent.

use serde::{Deserialize, Serialize};

/// One ingress rule, from one source: an IPv4 block or the tasks of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp` or `-1` (every protocol), as EC2 names them.
    pub protocol: String,
    /// First port (for `icmp`, the type; `-1`: all); none for `-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    /// Last port (for `icmp`, the code; `-1`: all); none for `-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    /// The source when it is an IPv4 block, like `10.200.0.0/16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// The source when it is another group (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl IngressRule {
    /// Whether `other` allows the same traffic from the same source (descriptions aside).
    pub fn same_permission(&self, other: &IngressRule) -> bool {
        self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.cidr == other.cidr
            && self.source_group == other.source_group
    }
}

/// A tag of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupTag {
    pub key: String,
    pub value: String,
}

/// A security group as Berth stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    /// `sg-` and 17 hex digits.
    pub group_id: String,
    pub group_name: String,
    pub description: String,
    /// The VPC the request named, shown back; Berth has no VPCs to check it against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
    #[serde(default)]
    pub tags: Vec<GroupTag>,
}

/// Store prefix of security groups, by id.
pub const SECURITY_GROUPS: &str = "/security-groups/";

/// Store key of security group `id`.
pub fn security_group_key(id: &str) -> String {
    format!("{SECURITY_GROUPS}{id}")
}

/// What an awsvpc task carries to its agent of its security groups: set when at least one of
/// them is a group Berth knows, and then enforced on the task's interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firewall {
    /// The task's groups (every id it was given): tasks sharing one reach each other.
    pub groups: Vec<String>,
    /// The ingress rules of its known groups, as they were when the task was placed.
    pub rules: Vec<IngressRule>,
}

/// The firewall of a task given `groups`, where `known` finds a group Berth has: `None`
/// (no filtering) when none of them is known.
pub fn firewall_for(
    groups: &[String],
    known: impl Fn(&str) -> Option<SecurityGroup>,
) -> Option<Firewall> {
    let found: Vec<SecurityGroup> = groups.iter().filter_map(|g| known(g)).collect();
    if found.is_empty() {
        return None;
    }
    let mut rules: Vec<IngressRule> = Vec::new();
    for rule in found.into_iter().flat_map(|g| g.ingress) {
        if !rules.iter().any(|r| r.same_permission(&rule)) {
            rules.push(rule);
        }
    }
    Some(Firewall {
        groups: groups.to_vec(),
        rules,
    })
}

/// A peer task on the same host, as the agent knows it: its address and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub address: String,
    pub groups: Vec<String>,
}

/// The iptables `filter` table (for `iptables-restore`) of a task's own network namespace:
/// loopback, replies, the host (`gateway`, its address on the task's network), peers sharing
/// a group, and what the rules allow are accepted; every other connection in is dropped.
pub fn ruleset(firewall: &Firewall, gateway: &str, peers: &[Peer]) -> String {
    let mut lines = vec![
        "*filter".to_string(),
        ":INPUT DROP [0:0]".to_string(),
        ":FORWARD ACCEPT [0:0]".to_string(),
        ":OUTPUT ACCEPT [0:0]".to_string(),
        "-A INPUT -i lo -j ACCEPT".to_string(),
        "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".to_string(),
        format!("-A INPUT -s {gateway}/32 -j ACCEPT"),
    ];
    let mut accept = |source: &str, matcher: &str| {
        let line = format!("-A INPUT -s {source}{matcher} -j ACCEPT");
        if !lines.contains(&line) {
            lines.push(line);
        }
    };
    let shares = |peer: &Peer, groups: &[String]| peer.groups.iter().any(|g| groups.contains(g));
    for peer in peers.iter().filter(|p| shares(p, &firewall.groups)) {
        accept(&format!("{}/32", peer.address), "");
    }
    for rule in &firewall.rules {
        let matcher = rule_matcher(rule);
        if let Some(cidr) = &rule.cidr {
            accept(cidr, &matcher);
        }
        if let Some(group) = &rule.source_group {
            let members = peers.iter().filter(|p| p.groups.contains(group));
            for peer in members {
                accept(&format!("{}/32", peer.address), &matcher);
            }
        }
    }
    lines.push("COMMIT".to_string());
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The protocol and port part of an iptables rule for `rule` (empty for every protocol).
fn rule_matcher(rule: &IngressRule) -> String {
    let ports = match (rule.from_port, rule.to_port) {
        (Some(from), Some(to)) if from >= 0 && to >= 0 && from == to => format!("{from}"),
        (Some(from), Some(to)) if from >= 0 && to >= 0 => format!("{from}:{to}"),
        _ => String::new(),
    };
    match rule.protocol.as_str() {
        "tcp" | "udp" if ports.is_empty() => format!(" -p {}", rule.protocol),
        "tcp" | "udp" => format!(" -p {} -m {} --dport {ports}", rule.protocol, rule.protocol),
        "icmp" => match (rule.from_port, rule.to_port) {
            (Some(kind), Some(code)) if kind >= 0 && code >= 0 => {
                format!(" -p icmp --icmp-type {kind}/{code}")
            }
            (Some(kind), _) if kind >= 0 => format!(" -p icmp --icmp-type {kind}"),
            _ => " -p icmp".to_string(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, ingress: Vec<IngressRule>) -> SecurityGroup {
        SecurityGroup {
            group_id: id.into(),
            group_name: id.into(),
            description: "d".into(),
            vpc_id: None,
            ingress,
            tags: Vec::new(),
        }
    }

    fn tcp(from: i32, to: i32, cidr: Option<&str>, source: Option<&str>) -> IngressRule {
        IngressRule {
            protocol: "tcp".into(),
            from_port: Some(from),
            to_port: Some(to),
            cidr: cidr.map(String::from),
            source_group: source.map(String::from),
            description: None,
        }
    }

    #[test]
    fn only_known_groups_make_a_firewall_and_their_rules_are_merged() {
        let web = group("sg-web", vec![tcp(80, 80, Some("10.0.0.0/8"), None)]);
        let also = group("sg-also", vec![tcp(80, 80, Some("10.0.0.0/8"), None)]);
        let known = |id: &str| {
            [web.clone(), also.clone()]
                .into_iter()
                .find(|g| g.group_id == id)
        };
        assert_eq!(firewall_for(&["sg-from-aws".into()], known), None);
        let firewall = firewall_for(&["sg-web".into(), "sg-also".into(), "sg-x".into()], known)
            .expect("a firewall");
        assert_eq!(firewall.groups, ["sg-web", "sg-also", "sg-x"]);
        assert_eq!(firewall.rules.len(), 1, "the same permission once");
    }

    #[test]
    fn the_ruleset_accepts_host_peers_and_rules_and_drops_the_rest() {
        let firewall = Firewall {
            groups: vec!["sg-web".into()],
            rules: vec![
                tcp(8080, 8090, Some("192.168.0.0/16"), None),
                tcp(443, 443, None, Some("sg-lb")),
                IngressRule {
                    protocol: "-1".into(),
                    from_port: None,
                    to_port: None,
                    cidr: Some("172.16.0.0/12".into()),
                    source_group: None,
                    description: None,
                },
            ],
        };
        let peers = [
            Peer {
                address: "10.200.0.5".into(),
                groups: vec!["sg-web".into()],
            },
            Peer {
                address: "10.200.0.6".into(),
                groups: vec!["sg-lb".into()],
            },
            Peer {
                address: "10.200.0.7".into(),
                groups: vec!["sg-other".into()],
            },
        ];
        let text = ruleset(&firewall, "10.200.0.1", &peers);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "*filter");
        assert!(lines.contains(&":INPUT DROP [0:0]"));
        for wanted in [
            "-A INPUT -s 10.200.0.1/32 -j ACCEPT",
            "-A INPUT -s 10.200.0.5/32 -j ACCEPT",
            "-A INPUT -s 192.168.0.0/16 -p tcp -m tcp --dport 8080:8090 -j ACCEPT",
            "-A INPUT -s 10.200.0.6/32 -p tcp -m tcp --dport 443 -j ACCEPT",
            "-A INPUT -s 172.16.0.0/12 -j ACCEPT",
        ] {
            assert!(lines.contains(&wanted), "{wanted} in\n{text}");
        }
        assert!(!text.contains("10.200.0.7"), "{text}");
        assert_eq!(lines.last(), Some(&"COMMIT"));
    }
}
