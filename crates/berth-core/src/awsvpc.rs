//! The awsvpc network mode, as Berth runs it: each task has its own network namespace with one
//! interface (ECS's task ENI) on a Berth network — a Linux bridge with an IPv4 subnet that
//! Berth manages. A subnet id in `awsvpcConfiguration.subnets` names a network; one that names
//! none maps to the default network, so task JSON written for AWS runs unchanged. Here: the
//! request rules, the subnet table, and the task's `ElasticNetworkInterface` attachment.

use crate::model::common::{Attachment, KeyValuePair};
use crate::model::service::{AwsVpcConfiguration, NetworkConfiguration};
use crate::model::task::{NetworkInterface, Task};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The attachment type of a task's network interface.
pub const ENI_ATTACHMENT: &str = "ElasticNetworkInterface";

/// The CIDR of the default network, which takes every subnet id that names no other.
pub const DEFAULT_CIDR: &str = "10.200.0.0/16";

/// The id Berth gives the default network's subnet.
pub const DEFAULT_SUBNET: &str = "subnet-berth-default";

/// At most this many subnets and security groups in one `awsvpcConfiguration` (ECS's limits).
const MAX_SUBNETS: usize = 16;
const MAX_SECURITY_GROUPS: usize = 5;

/// Where an awsvpc task's interface goes: Berth's record on the task (never shown by the
/// API), read by the agent that sets the interface up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNetwork {
    /// The subnet id the task was given (shown as the attachment's `subnetId`).
    pub subnet_id: String,
    /// The network's IPv4 block, e.g. `10.200.0.0/16`.
    pub cidr: String,
    /// The network's name on hosts: its bridge and its address pool are named after it
    /// (at most 15 characters, a Linux interface name).
    pub network: String,
    /// The task's security groups, when Berth knows one of them: enforced on its interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<crate::security_group::Firewall>,
}

/// What an agent reports of a task interface it set up (a Berth field of
/// SubmitTaskStateChange).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceReport {
    pub private_ipv4_address: String,
    pub mac_address: String,
}

/// One network: a subnet id and its IPv4 block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub cidr: Cidr,
}

/// An IPv4 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    /// An IPv4 block of /8 to /28 (room for a gateway and tasks), its base aligned.
    fn from_str(text: &str) -> Result<Cidr, String> {
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not an IPv4 CIDR block like 10.200.0.0/16"))?;
        let base: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("'{ip}' is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=28).contains(p))
            .ok_or_else(|| format!("the prefix of '{text}' must be 8 to 28"))?;
        let mask = u32::MAX << (32 - u32::from(prefix));
        if u32::from(base) & !mask != 0 {
            return Err(format!(
                "'{text}' is not aligned: its base would be {}/{prefix}",
                Ipv4Addr::from(u32::from(base) & mask)
            ));
        }
        Ok(Cidr { base, prefix })
    }
}

impl Cidr {
    fn overlaps(&self, other: &Cidr) -> bool {
        let prefix = self.prefix.min(other.prefix);
        let mask = u32::MAX << (32 - u32::from(prefix));
        u32::from(self.base) & mask == u32::from(other.base) & mask
    }
}

/// The networks a server knows: the default one and those given with `--subnet ID=CIDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnets {
    default: Subnet,
    named: Vec<Subnet>,
}

impl Default for Subnets {
    fn default() -> Self {
        Subnets {
            default: Subnet {
                id: DEFAULT_SUBNET.into(),
                cidr: DEFAULT_CIDR.parse().unwrap_or(Cidr {
                    base: Ipv4Addr::new(10, 200, 0, 0),
                    prefix: 16,
                }),
            },
            named: Vec::new(),
        }
    }
}

impl Subnets {
    /// The table of a default block and named subnets (`ID=CIDR` each); blocks may not overlap.
    pub fn new(default_cidr: &str, named: &[String]) -> Result<Subnets, String> {
        let mut all = Subnets {
            default: Subnet {
                id: DEFAULT_SUBNET.into(),
                cidr: default_cidr.parse()?,
            },
            named: Vec::new(),
        };
        for entry in named {
            let (id, cidr) = entry
                .split_once('=')
                .ok_or_else(|| format!("'{entry}' is not SUBNET_ID=CIDR"))?;
            if !valid_subnet_id(id) {
                return Err(format!(
                    "'{id}' is not a subnet id: up to 64 letters, digits, hyphens and underscores"
                ));
            }
            let cidr: Cidr = cidr.parse()?;
            if let Some(clash) = all.iter().find(|s| s.id == id || s.cidr.overlaps(&cidr)) {
                return Err(format!(
                    "subnet {id} ({cidr}) clashes with {} ({})",
                    clash.id, clash.cidr
                ));
            }
            all.named.push(Subnet {
                id: id.into(),
                cidr,
            });
        }
        Ok(all)
    }

    fn iter(&self) -> impl Iterator<Item = &Subnet> {
        std::iter::once(&self.default).chain(&self.named)
    }

    /// The network a task given `subnet_id` joins: the subnet's own, else the default one.
    pub fn network_for(&self, subnet_id: &str) -> TaskNetwork {
        let (index, subnet) = self
            .named
            .iter()
            .enumerate()
            .find(|(_, s)| s.id == subnet_id)
            .map_or((0, &self.default), |(i, s)| (i + 1, s));
        TaskNetwork {
            subnet_id: subnet_id.to_string(),
            cidr: subnet.cidr.to_string(),
            network: format!("berth-net{index}"),
            firewall: None,
        }
    }
}

fn valid_subnet_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks a request's `networkConfiguration` against the task definition's network mode, as
/// ECS does; returns the awsvpc configuration an awsvpc task runs with.
pub fn check_configuration(
    network_mode: &str,
    launch_type: &str,
    config: Option<&NetworkConfiguration>,
) -> Result<Option<AwsVpcConfiguration>, String> {
    let vpc = config.and_then(|c| c.awsvpc_configuration.clone());
    if network_mode != "awsvpc" {
        return match vpc {
            Some(_) => Err(
                "Network Configuration is not valid for the given networkMode of this task definition."
                    .into(),
            ),
            None => Ok(None),
        };
    }
    let Some(vpc) = vpc else {
        return Err(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.".into(),
        );
    };
    if vpc.subnets.is_empty() {
        return Err("subnets can not be empty.".into());
    }
    if vpc.subnets.len() > MAX_SUBNETS {
        return Err(format!(
            "At most {MAX_SUBNETS} subnets can be specified, got {}.",
            vpc.subnets.len()
        ));
    }
    if let Some(bad) = vpc.subnets.iter().find(|s| !valid_subnet_id(s)) {
        return Err(format!("Invalid subnet id '{bad}'."));
    }
    let groups = vpc.security_groups.as_deref().unwrap_or_default();
    if groups.len() > MAX_SECURITY_GROUPS {
        return Err(format!(
            "At most {MAX_SECURITY_GROUPS} security groups can be specified, got {}.",
            groups.len()
        ));
    }
    if let Some(bad) = groups.iter().find(|s| !valid_subnet_id(s)) {
        return Err(format!("Invalid security group id '{bad}'."));
    }
    match vpc.assign_public_ip.as_deref() {
        None | Some("DISABLED") => {}
        Some("ENABLED") if launch_type == "FARGATE" => {}
        Some("ENABLED") => {
            return Err("Assign public IP is not supported for this launch type.".into())
        }
        Some(other) => {
            return Err(format!(
                "'{other}' is not an assignPublicIp value: use ENABLED or DISABLED."
            ))
        }
    }
    Ok(Some(vpc))
}

/// Gives a new awsvpc task its interface: the attachment ECS shows while the interface is
/// being made (`PRECREATED`, its `subnetId`), and where the agent is to make it. The subnet
/// is the first one of the configuration that `pick` chooses (ECS spreads over them).
pub fn attach(
    task: &mut Task,
    attachment_id: String,
    vpc: &AwsVpcConfiguration,
    subnets: &Subnets,
    pick: usize,
    firewall: Option<crate::security_group::Firewall>,
) {
    let subnet_id = vpc
        .subnets
        .get(pick % vpc.subnets.len().max(1))
        .cloned()
        .unwrap_or_else(|| DEFAULT_SUBNET.to_string());
    task.attachments = Some(vec![Attachment {
        id: Some(attachment_id),
        type_: Some(ENI_ATTACHMENT.into()),
        status: Some("PRECREATED".into()),
        details: Some(vec![detail("subnetId", &subnet_id)]),
    }]);
    let mut network = subnets.network_for(&subnet_id);
    network.firewall = firewall;
    task.task_network = Some(network);
}

fn detail(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

/// ECS's id of the interface with this MAC address: `eni-` and 17 hex digits.
pub fn interface_id(mac: &str) -> String {
    let hex: String = mac.chars().filter(char::is_ascii_hexdigit).collect();
    format!("eni-{:0>17}", hex.to_lowercase())
}

/// Records the interface the agent set up: the attachment becomes ATTACHED with ECS's
/// details, and each container shows the interface. Returns whether anything changed.
pub fn record_interface(task: &mut Task, report: &InterfaceReport, region: &str) -> bool {
    let Some(attachment) = task
        .attachments
        .iter_mut()
        .flatten()
        .find(|a| a.type_.as_deref() == Some(ENI_ATTACHMENT))
    else {
        return false;
    };
    if attachment.status.as_deref() != Some("PRECREATED") {
        return false;
    }
    let subnet = attachment
        .details
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some("subnetId"))
        .and_then(|d| d.value.clone())
        .unwrap_or_default();
    let ip = &report.private_ipv4_address;
    let dns_suffix = if region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{region}.compute.internal")
    };
    attachment.status = Some("ATTACHED".into());
    attachment.details = Some(vec![
        detail("subnetId", &subnet),
        detail("networkInterfaceId", &interface_id(&report.mac_address)),
        detail("macAddress", &report.mac_address),
        detail(
            "privateDnsName",
            &format!("ip-{}.{dns_suffix}", ip.replace('.', "-")),
        ),
        detail("privateIPv4Address", ip),
    ]);
    let interface = NetworkInterface {
        attachment_id: attachment.id.clone(),
        private_ipv4_address: Some(ip.clone()),
        ipv6_address: None,
    };
    for container in task.containers.iter_mut().flatten() {
        container.network_interfaces = Some(vec![interface.clone()]);
    }
    true
}

/// Marks the task's interface gone once the task has stopped (ECS shows it DELETED).
pub fn release(task: &mut Task) {
    for attachment in task
        .attachments
        .iter_mut()
        .flatten()
        .filter(|a| a.type_.as_deref() == Some(ENI_ATTACHMENT))
    {
        attachment.status = Some("DELETED".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vpc(subnets: &[&str]) -> NetworkConfiguration {
        NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: subnets.iter().map(|s| s.to_string()).collect(),
                security_groups: None,
                assign_public_ip: None,
            }),
        }
    }

    #[test]
    fn cidr_blocks_parse_aligned_and_sized() {
        let cidr: Cidr = "10.1.0.0/24".parse().expect("cidr");
        assert_eq!(cidr.to_string(), "10.1.0.0/24");
        assert!("10.1.0.1/24".parse::<Cidr>().is_err());
        assert!("10.0.0.0/30".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("300.0.0.0/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn named_subnets_get_their_own_network_and_unknown_ones_the_default() {
        let subnets =
            Subnets::new("10.200.0.0/16", &["subnet-a=10.201.0.0/24".into()]).expect("subnets");
        let a = subnets.network_for("subnet-a");
        assert_eq!(
            (a.cidr.as_str(), a.network.as_str()),
            ("10.201.0.0/24", "berth-net1")
        );
        let other = subnets.network_for("subnet-0123456789abcdef0");
        assert_eq!(other.cidr, "10.200.0.0/16");
        assert_eq!(other.network, "berth-net0");
        assert_eq!(other.subnet_id, "subnet-0123456789abcdef0");
        assert!(Subnets::new("10.200.0.0/16", &["subnet-b=10.200.5.0/24".into()]).is_err());
        assert!(Subnets::new("10.200.0.0/16", &["nonsense".into()]).is_err());
    }

    #[test]
    fn network_configuration_follows_the_network_mode() {
        assert!(check_configuration("bridge", "EC2", None)
            .expect("ok")
            .is_none());
        let err = check_configuration("bridge", "EC2", Some(&vpc(&["s"]))).expect_err("refused");
        assert!(err.contains("not valid"), "{err}");
        let err = check_configuration("awsvpc", "FARGATE", None).expect_err("refused");
        assert!(err.contains("must be provided"), "{err}");
        assert!(check_configuration("awsvpc", "FARGATE", Some(&vpc(&[]))).is_err());
        let ok = check_configuration("awsvpc", "FARGATE", Some(&vpc(&["subnet-1"])));
        assert_eq!(ok.expect("ok").expect("vpc").subnets, vec!["subnet-1"]);
        let mut public = vpc(&["subnet-1"]);
        if let Some(c) = public.awsvpc_configuration.as_mut() {
            c.assign_public_ip = Some("ENABLED".into());
        }
        assert!(check_configuration("awsvpc", "FARGATE", Some(&public)).is_ok());
        assert!(check_configuration("awsvpc", "EC2", Some(&public)).is_err());
    }

    #[test]
    fn the_attachment_goes_precreated_attached_deleted() {
        let mut task = Task {
            containers: Some(vec![Default::default(), Default::default()]),
            ..Task::default()
        };
        let config = vpc(&["subnet-x", "subnet-y"]);
        let vpc = config.awsvpc_configuration.expect("vpc");
        attach(
            &mut task,
            "att-1".into(),
            &vpc,
            &Subnets::default(),
            1,
            None,
        );
        let attachment = &task.attachments.as_ref().expect("attachments")[0];
        assert_eq!(attachment.status.as_deref(), Some("PRECREATED"));
        assert_eq!(
            task.task_network.as_ref().map(|n| n.subnet_id.as_str()),
            Some("subnet-y")
        );
        let report = InterfaceReport {
            private_ipv4_address: "10.200.0.7".into(),
            mac_address: "0a:58:0a:c8:00:07".into(),
        };
        assert!(record_interface(&mut task, &report, "eu-west-1"));
        assert!(!record_interface(&mut task, &report, "eu-west-1"));
        let attachment = &task.attachments.as_ref().expect("attachments")[0];
        let value = |name: &str| {
            attachment
                .details
                .iter()
                .flatten()
                .find(|d| d.name.as_deref() == Some(name))
                .and_then(|d| d.value.clone())
        };
        assert_eq!(value("privateIPv4Address").as_deref(), Some("10.200.0.7"));
        assert_eq!(
            value("networkInterfaceId").as_deref(),
            Some("eni-000000a580ac80007")
        );
        assert_eq!(
            value("privateDnsName").as_deref(),
            Some("ip-10-200-0-7.eu-west-1.compute.internal")
        );
        for c in task.containers.iter().flatten() {
            let ni = &c.network_interfaces.as_ref().expect("interfaces")[0];
            assert_eq!(ni.private_ipv4_address.as_deref(), Some("10.200.0.7"));
            assert_eq!(ni.attachment_id.as_deref(), Some("att-1"));
        }
        release(&mut task);
        assert_eq!(
            task.attachments.as_ref().expect("attachments")[0]
                .status
                .as_deref(),
            Some("DELETED")
        );
    }
}
