//! What the host offers: CPU units and memory for tasks, reserved ports, and the attributes
//! the agent registers (OS, architecture, zone, the user's own, and ECS capabilities).

use crate::runtime::RuntimeInfo;
use crate::spec::UNSUPPORTED_LOG_DRIVERS;
use berth_core::model::container_instance::DEFAULT_RESERVED_PORTS;
use berth_core::model::{Attribute, Resource};
use berth_core::task_definition::admission::Allowances;
use berth_core::task_definition::logging_driver_attribute;

/// Memory kept back for the host and the agent when none is configured, in MiB.
pub const DEFAULT_MEMORY_RESERVE_MIB: u64 = 256;

/// Capabilities every Berth agent has, as ECS names them: health checks, `dependsOn`,
/// container port ranges and exec sessions (ExecuteCommand) are the agent's own work,
/// whatever the runtime.
pub const AGENT_CAPABILITIES: &[&str] = &[
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
    "ecs.capability.container-port-range",
    "ecs.capability.execute-command",
    // Secrets, registry credentials and awslogs with an execution role: resolved by the
    // server for the agent (`crate::engine::secrets`, `crate::logs`).
    "ecs.capability.secrets.asm.environment-variables",
    "ecs.capability.secrets.ssm.environment-variables",
    "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
    "ecs.capability.execution-role-awslogs",
];

/// Advertised when the agent serves task role credentials (`crate::metadata::credentials`).
pub const TASK_ROLE_CAPABILITIES: &[&str] = &[
    "com.amazonaws.ecs.capability.task-iam-role",
    "com.amazonaws.ecs.capability.task-iam-role-network-host",
];

/// Advertised when the agent runs privileged containers (`--allow-privileged`).
pub const PRIVILEGED_CAPABILITY: &str = "com.amazonaws.ecs.capability.privileged-container";

/// The Docker Remote API versions advertised as `com.amazonaws.ecs.capability.docker-remote-api.*`
/// run from 1.17 (the oldest ECS names) to the daemon's newest; to this one when the daemon
/// does not say.
const DOCKER_API_MINOR_FALLBACK: u32 = 44;
const DOCKER_API_MINOR_OLDEST: u32 = 17;

/// The `ecs.capability.*` / `com.amazonaws.ecs.capability.*` attributes this agent really
/// has on `runtime` with `allowances`: the Docker Remote API versions the daemon speaks, its
/// logging drivers (but those Berth refuses: `awslogs`, `awsfirelens`) and `none`, its
/// volume drivers (`ecs.capability.docker-plugin.<driver>`), privileged containers only when
/// allowed, the agent's own capabilities, and `served`: those of the endpoints it could open
/// (task IAM roles when it serves task credentials). Nothing Berth cannot do yet is claimed:
/// no awsvpc (task ENIs), EFS, FireLens or ECR authentication.
pub fn capabilities(
    runtime: &RuntimeInfo,
    allowances: &Allowances,
    served: &[&str],
) -> Vec<String> {
    let newest = runtime
        .api_version
        .as_deref()
        .and_then(|v| v.strip_prefix("1."))
        .and_then(|minor| minor.parse::<u32>().ok())
        .unwrap_or(DOCKER_API_MINOR_FALLBACK);
    let mut out: Vec<String> = (DOCKER_API_MINOR_OLDEST..=newest)
        .map(|minor| format!("com.amazonaws.ecs.capability.docker-remote-api.1.{minor}"))
        .collect();
    let mut drivers: Vec<&str> = runtime
        .log_drivers
        .iter()
        .map(String::as_str)
        .chain(["none"])
        // The agent's own awslogs driver reads what Docker's json-file driver keeps.
        .chain(
            runtime
                .log_drivers
                .iter()
                .any(|d| d == crate::logs::RUNTIME_DRIVER)
                .then_some("awslogs"),
        )
        .filter(|d| {
            !UNSUPPORTED_LOG_DRIVERS
                .iter()
                .any(|(refused, _)| refused == d)
        })
        .collect();
    drivers.sort_unstable();
    drivers.dedup();
    out.extend(drivers.into_iter().map(logging_driver_attribute));
    out.extend(
        runtime
            .volume_drivers
            .iter()
            .map(|d| format!("ecs.capability.docker-plugin.{d}")),
    );
    if allowances.privileged {
        out.push(PRIVILEGED_CAPABILITY.to_string());
    }
    out.extend(AGENT_CAPABILITIES.iter().map(|c| c.to_string()));
    out.extend(served.iter().map(|c| c.to_string()));
    out
}

/// The resources of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostResources {
    /// CPU units: cores × 1024.
    pub cpu_units: i32,
    /// Memory for tasks in MiB (total minus the reserve).
    pub memory_mib: i32,
}

/// Reads the host's cores and memory, keeping `reserve_mib` back.
pub fn host_resources(reserve_mib: u64) -> HostResources {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| memory_total_mib(&text))
        .unwrap_or(0);
    HostResources {
        cpu_units: i32::try_from(cores * 1024).unwrap_or(i32::MAX),
        memory_mib: i32::try_from(total.saturating_sub(reserve_mib)).unwrap_or(i32::MAX),
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in MiB.
pub fn memory_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let factor = match parts.next() {
        Some("kB") | Some("KB") | None => 1024,
        Some("MB") => 1024 * 1024,
        Some("B") => 1,
        Some(_) => return None,
    };
    Some(value * factor / (1024 * 1024))
}

/// `ecs.cpu-architecture` of this build: `x86_64` or `arm64` (ECS's names).
pub fn cpu_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    }
}

/// `totalResources` of RegisterContainerInstance.
pub fn total_resources(host: HostResources) -> Vec<Resource> {
    let integer = |name: &str, value: i32| Resource {
        name: Some(name.into()),
        type_: Some("INTEGER".into()),
        double_value: None,
        long_value: None,
        integer_value: Some(value),
        string_set_value: None,
    };
    let ports = |name: &str, ports: Vec<String>| Resource {
        name: Some(name.into()),
        type_: Some("STRINGSET".into()),
        double_value: None,
        long_value: None,
        integer_value: None,
        string_set_value: Some(ports),
    };
    vec![
        integer("CPU", host.cpu_units),
        integer("MEMORY", host.memory_mib),
        ports(
            "PORTS",
            DEFAULT_RESERVED_PORTS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        ),
        ports("PORTS_UDP", Vec::new()),
    ]
}

/// The attributes to register: OS, architecture, zone (when known), `capabilities` (see
/// [`capabilities`]), then the user's own (which may not override the agent's).
pub fn attributes(
    availability_zone: Option<&str>,
    capabilities: &[String],
    custom: &[(String, Option<String>)],
) -> Vec<Attribute> {
    let attribute = |name: &str, value: Option<&str>| Attribute {
        name: name.to_string(),
        value: value.map(str::to_string),
        target_type: None,
        target_id: None,
    };
    let mut out = vec![
        attribute("ecs.os-type", Some("linux")),
        attribute("ecs.cpu-architecture", Some(cpu_architecture())),
    ];
    if let Some(zone) = availability_zone {
        out.push(attribute("ecs.availability-zone", Some(zone)));
    }
    out.extend(capabilities.iter().map(|name| attribute(name, None)));
    for (name, value) in custom {
        if !out.iter().any(|a| a.name == *name) {
            out.push(attribute(name, value.as_deref()));
        }
    }
    out
}

pub use berth_core::model::container_instance::HOST_ADDRESS_ATTRIBUTE as HOST_ADDRESS;

/// The address of this host as others reach it: the local address of the route to the
/// server at `server` (a URL), unless that is a loopback one (server and agent on one
/// machine), in which case the container runtime's bridge gateway `gateway`, which the host
/// and its containers both reach. None when neither is known.
pub async fn address(server: &str, gateway: Option<std::net::IpAddr>) -> Option<std::net::IpAddr> {
    let authority = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let routed = async {
        let target = tokio::net::lookup_host(authority).await.ok()?.next()?;
        let bind = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
        socket.connect(target).await.ok()?;
        Some(socket.local_addr().ok()?.ip())
    }
    .await;
    match routed {
        Some(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => gateway,
    }
}

/// Parses a `--attribute KEY=VALUE` (or `KEY` alone, an attribute without a value).
pub fn parse_attribute(text: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim().to_string())),
        None => (text.trim(), None),
    };
    if name.is_empty() {
        return Err(format!("attribute '{text}' has no name: use KEY=VALUE"));
    }
    Ok((name.to_string(), value.filter(|v| !v.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_comes_from_memtotal_in_mebibytes() {
        let meminfo = "MemTotal:       16318480 kB\nMemFree:         1000 kB\n";
        assert_eq!(memory_total_mib(meminfo), Some(15936));
        assert_eq!(memory_total_mib("MemFree: 1 kB"), None);
    }

    #[test]
    fn this_host_has_cpu_units_per_core_and_memory_less_the_reserve() {
        let host = host_resources(DEFAULT_MEMORY_RESERVE_MIB);
        assert!(host.cpu_units >= 1024 && host.cpu_units % 1024 == 0);
        assert!(host.memory_mib > 0);
        let everything = host_resources(0);
        assert_eq!(everything.memory_mib - host.memory_mib, 256);
    }

    #[test]
    fn total_resources_name_cpu_memory_and_the_reserved_ports() {
        let resources = total_resources(HostResources {
            cpu_units: 2048,
            memory_mib: 1000,
        });
        let names: Vec<_> = resources.iter().filter_map(|r| r.name.as_deref()).collect();
        assert_eq!(names, ["CPU", "MEMORY", "PORTS", "PORTS_UDP"]);
        assert_eq!(resources[0].integer_value, Some(2048));
        assert_eq!(
            resources[2].string_set_value.as_ref().map(Vec::len),
            Some(5)
        );
    }

    #[test]
    fn attributes_carry_os_architecture_zone_capabilities_and_the_users_own() {
        let custom = vec![
            ("stack".to_string(), Some("prod".to_string())),
            ("ecs.os-type".to_string(), Some("windows".to_string())),
        ];
        let capabilities = capabilities(&RuntimeInfo::stock("27.1.0"), &Allowances::default(), &[]);
        let attributes = attributes(Some("eu-west-1a"), &capabilities, &custom);
        let get = |name: &str| {
            attributes
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.value.clone())
        };
        assert_eq!(
            get("ecs.os-type"),
            Some(Some("linux".into())),
            "the agent's own win"
        );
        assert!(
            matches!(get("ecs.cpu-architecture"), Some(Some(a)) if a == "x86_64" || a == "arm64")
        );
        assert_eq!(
            get("ecs.availability-zone"),
            Some(Some("eu-west-1a".into()))
        );
        assert_eq!(get("stack"), Some(Some("prod".into())));
        assert_eq!(get("ecs.capability.container-health-check"), Some(None));
        assert_eq!(
            get("com.amazonaws.ecs.capability.docker-remote-api.1.24"),
            Some(None)
        );
        assert_eq!(
            attributes
                .iter()
                .filter(|a| a.name == "ecs.os-type")
                .count(),
            1
        );
    }

    #[test]
    fn capabilities_are_what_the_daemon_reports_and_the_flags_allow() {
        let runtime = RuntimeInfo {
            version: "28.0.1".into(),
            api_version: Some("1.48".into()),
            log_drivers: vec!["json-file".into(), "splunk".into(), "awslogs".into()],
            volume_drivers: vec!["local".into(), "rexray/ebs".into()],
            cgroup_driver: None,
        };
        let plain = capabilities(&runtime, &Allowances::default(), &[]);
        let has = |list: &[String], name: &str| list.iter().any(|c| c == name);
        for expected in [
            "com.amazonaws.ecs.capability.docker-remote-api.1.17",
            "com.amazonaws.ecs.capability.docker-remote-api.1.48",
            "com.amazonaws.ecs.capability.logging-driver.json-file",
            "com.amazonaws.ecs.capability.logging-driver.splunk",
            "com.amazonaws.ecs.capability.logging-driver.none",
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "ecs.capability.docker-plugin.local",
            "ecs.capability.docker-plugin.rexray/ebs",
            "ecs.capability.container-health-check",
            "ecs.capability.container-ordering",
            "ecs.capability.execute-command",
            "ecs.capability.secrets.ssm.environment-variables",
            "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
        ] {
            assert!(has(&plain, expected), "{expected} missing from {plain:?}");
        }
        for absent in [
            "com.amazonaws.ecs.capability.docker-remote-api.1.49",
            "com.amazonaws.ecs.capability.docker-remote-api.1.16",
            "com.amazonaws.ecs.capability.logging-driver.syslog",
            PRIVILEGED_CAPABILITY,
            // Only with task credentials served; no awsvpc or ECR auth yet.
            "com.amazonaws.ecs.capability.task-iam-role",
            "ecs.capability.task-eni",
            "com.amazonaws.ecs.capability.ecr-auth",
        ] {
            assert!(!has(&plain, absent), "{absent} advertised: {plain:?}");
        }
        let privileged = capabilities(
            &runtime,
            &Allowances {
                privileged: true,
                ..Allowances::default()
            },
            &[],
        );
        assert!(has(&privileged, PRIVILEGED_CAPABILITY));
        assert_eq!(privileged.len(), plain.len() + 1);
        let roles = capabilities(&runtime, &Allowances::default(), TASK_ROLE_CAPABILITIES);
        assert!(has(&roles, "com.amazonaws.ecs.capability.task-iam-role"));
        assert_eq!(roles.len(), plain.len() + 2);
    }

    #[test]
    fn every_capability_the_agent_claims_for_a_task_definition_is_one_ecs_names() {
        use berth_core::task_definition::CAPABILITY_ATTRIBUTES;
        let stock = capabilities(&RuntimeInfo::stock("27.1.0"), &Allowances::default(), &[]);
        for c in &stock {
            let named = CAPABILITY_ATTRIBUTES.contains(&c.as_str())
                || c.starts_with("com.amazonaws.ecs.capability.logging-driver.")
                || c.starts_with("com.amazonaws.ecs.capability.docker-remote-api.1.")
                || c.starts_with("ecs.capability.docker-plugin.")
                // Advertised by ECS agents, asked of tasks run with enableExecuteCommand rather
                // than of task definitions.
                || c == "ecs.capability.execute-command";
            assert!(named, "{c}");
        }
    }

    #[test]
    fn attribute_flags_parse_as_key_value_or_key_alone() {
        assert_eq!(
            parse_attribute("stack=prod"),
            Ok(("stack".into(), Some("prod".into())))
        );
        assert_eq!(parse_attribute("gpu"), Ok(("gpu".into(), None)));
        assert!(parse_attribute("=x").is_err());
    }

    #[tokio::test]
    async fn a_server_on_loopback_makes_the_bridge_gateway_the_host_address() {
        let gateway: std::net::IpAddr = "172.17.0.1".parse().expect("ip");
        assert_eq!(
            address("http://127.0.0.1:8080", Some(gateway)).await,
            Some(gateway)
        );
        assert_eq!(address("https://localhost:8443/", None).await, None);
        assert_eq!(address("not a url", Some(gateway)).await, Some(gateway));
    }
}
