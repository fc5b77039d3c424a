//! Pure mapping from an ECS container definition (with the task's overrides, network mode and
//! volumes) to the runtime's `ContainerSpec`, plus the labels and names Berth gives containers.
//! No I/O: everything here is decided from the task and its task definition alone.

use crate::runtime::{ContainerSpec, HealthCheckSpec, MountSpec, PortSpec, UlimitSpec};
use berth_core::model::task::{ContainerOverride, TaskOverride};
use berth_core::model::task_definition::{
    ContainerDefinition, HealthCheck, PortMapping, TaskDefinition,
};
use std::collections::BTreeMap;
use std::time::Duration;

mod linux;
mod siblings;
mod unsupported;
mod volumes;

pub use linux::DEFAULT_SWAPPINESS;
pub use siblings::{namespace_holder, prerequisites, Prerequisite};
pub use unsupported::UNSUPPORTED_LOG_DRIVERS;
pub use volumes::{is_task_scoped, is_task_volume_of, task_volume_names};

/// Label: the cluster name.
pub const LABEL_CLUSTER: &str = "com.berth.cluster";
/// Label: the id (32 hex digits) of the container instance that created the container.
pub const LABEL_CONTAINER_INSTANCE: &str = "com.berth.container-instance";
/// Label: the task ARN.
pub const LABEL_TASK_ARN: &str = "com.berth.task-arn";
/// Label: the ECS container name within its task.
pub const LABEL_CONTAINER_NAME: &str = "com.berth.container-name";
/// Label: `family:revision` of the task definition.
pub const LABEL_TASK_DEFINITION: &str = "com.berth.task-definition";
/// Label: the home of the agent that created the container (a stable hash of its canonical
/// data dir path, `crate::identity::home_id`): how an agent that lost its identity files
/// finds its own containers, and so its instance id.
pub const LABEL_AGENT_HOME: &str = "com.berth.agent-home";
/// ECS-compatible label: the cluster name.
pub const ECS_LABEL_CLUSTER: &str = "com.amazonaws.ecs.cluster";
/// ECS-compatible label: the task ARN.
pub const ECS_LABEL_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
/// ECS-compatible label: the ECS container name.
pub const ECS_LABEL_CONTAINER_NAME: &str = "com.amazonaws.ecs.container-name";
/// ECS-compatible label: the task definition family.
pub const ECS_LABEL_TASK_DEFINITION_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
/// ECS-compatible label: the task definition revision.
pub const ECS_LABEL_TASK_DEFINITION_VERSION: &str = "com.amazonaws.ecs.task-definition-version";

/// Health check interval when the task definition gives none (ECS default).
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// Health check timeout when the task definition gives none (ECS default).
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Health check retries when the task definition gives none (ECS default).
pub const DEFAULT_HEALTH_RETRIES: u32 = 3;
/// Time between SIGTERM and SIGKILL when the container definition gives no `stopTimeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a container definition cannot be turned into a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The task definition has no family or revision (nor an ARN naming them).
    #[error("task definition {0} has no family and revision")]
    NoFamilyRevision(String),
    /// A member the container needs is absent.
    #[error("container {container}: {field} is required")]
    Missing {
        container: String,
        field: &'static str,
    },
    /// A mount point names a volume the task definition does not declare.
    #[error("container {container}: mount point names unknown volume {volume}")]
    UnknownVolume { container: String, volume: String },
    /// A volume type this host cannot provide.
    #[error("volume {volume}: {kind} volumes are not supported by Berth")]
    UnsupportedVolume { volume: String, kind: &'static str },
    /// A field Berth cannot honour (yet): it needs AWS services this host does not reach.
    #[error("container {container}: {field} is not supported by Berth yet ({why})")]
    Unsupported {
        container: String,
        field: String,
        why: &'static str,
    },
    /// A value the runtime cannot use.
    #[error("container {container}: {field}: {message}")]
    Invalid {
        container: String,
        field: &'static str,
        message: String,
    },
}

/// The task a container belongs to and where it runs.
#[derive(Debug, Clone, Copy)]
pub struct TaskContext<'a> {
    /// Cluster name.
    pub cluster: &'a str,
    /// Id (32 hex digits) of this container instance.
    pub container_instance: &'a str,
    /// ARN of the task.
    pub task_arn: &'a str,
    /// The task definition the task runs.
    pub task_definition: &'a TaskDefinition,
    /// The task's overrides, if any.
    pub overrides: Option<&'a TaskOverride>,
    /// The home of the agent (`crate::identity::home_id`), labelled on every container.
    pub agent_home: Option<&'a str>,
    /// The task metadata endpoint, whose URIs each container gets in its environment.
    pub metadata: Option<&'a crate::metadata::MetadataEndpoint>,
}

impl TaskContext<'_> {
    /// The task id: the last element of the task ARN.
    pub fn task_id(&self) -> &str {
        task_id_of(self.task_arn)
    }

    /// `(family, revision)` of the task definition, from its members or its ARN.
    pub fn family_revision(&self) -> Result<(String, i32), SpecError> {
        let td = self.task_definition;
        if let (Some(family), Some(revision)) = (td.family.as_deref(), td.revision) {
            return Ok((family.to_string(), revision));
        }
        let arn = td.task_definition_arn.as_deref().unwrap_or_default();
        arn.rsplit_once("task-definition/")
            .and_then(|(_, tail)| tail.rsplit_once(':'))
            .and_then(|(family, revision)| Some((family.to_string(), revision.parse().ok()?)))
            .ok_or_else(|| SpecError::NoFamilyRevision(arn.to_string()))
    }

    /// The network mode of the task (`bridge` when the task definition sets none).
    pub fn network_mode(&self) -> &str {
        self.task_definition
            .network_mode
            .as_deref()
            .unwrap_or("bridge")
    }

    /// The override of the container named `name`, if the task has one.
    pub fn container_override(&self, name: &str) -> Option<&ContainerOverride> {
        self.overrides?
            .container_overrides
            .as_deref()?
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }
}

/// The task id in a task ARN (`.../task/{cluster}/{id}`), or the text itself when it has no `/`.
pub fn task_id_of(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// Docker container name: `berth-{family}-{revision}-{container}-{first 12 chars of task id}`.
pub fn container_name(family: &str, revision: i32, container: &str, task_id: &str) -> String {
    format!(
        "berth-{family}-{revision}-{container}-{}",
        short_id(task_id)
    )
}

/// Docker volume name of a task-scoped volume:
/// `berth-{family}-{revision}-{volume}-{first 12 chars of task id}`.
pub fn task_volume_name(family: &str, revision: i32, volume: &str, task_id: &str) -> String {
    format!("berth-{family}-{revision}-{volume}-{}", short_id(task_id))
}

fn short_id(task_id: &str) -> &str {
    task_id
        .char_indices()
        .nth(12)
        .map_or(task_id, |(i, _)| &task_id[..i])
}

/// The labels that select every container one agent manages: cluster and instance.
pub fn instance_labels(cluster: &str, container_instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
        (
            LABEL_CONTAINER_INSTANCE.to_string(),
            container_instance.to_string(),
        ),
    ])
}

/// Reads `(task ARN, container name)` back from a container's labels; `None` when the container
/// was not created by Berth.
pub fn task_container_of(labels: &BTreeMap<String, String>) -> Option<(String, String)> {
    let task = labels.get(LABEL_TASK_ARN).filter(|v| !v.is_empty())?;
    let container = labels.get(LABEL_CONTAINER_NAME).filter(|v| !v.is_empty())?;
    Some((task.clone(), container.clone()))
}

/// Every label of a container: its `dockerLabels`, then Berth's and ECS's labels (which win over
/// a docker label of the same key, so the agent can always find its containers).
fn labels(
    ctx: &TaskContext<'_>,
    def: &ContainerDefinition,
    container: &str,
    family: &str,
    revision: i32,
) -> BTreeMap<String, String> {
    let mut labels = def.docker_labels.clone().unwrap_or_default();
    let mut put = |key: &str, value: String| {
        labels.insert(key.to_string(), value);
    };
    put(LABEL_CLUSTER, ctx.cluster.to_string());
    put(LABEL_CONTAINER_INSTANCE, ctx.container_instance.to_string());
    put(LABEL_TASK_ARN, ctx.task_arn.to_string());
    put(LABEL_CONTAINER_NAME, container.to_string());
    put(LABEL_TASK_DEFINITION, format!("{family}:{revision}"));
    if let Some(home) = ctx.agent_home {
        put(LABEL_AGENT_HOME, home.to_string());
    }
    put(ECS_LABEL_CLUSTER, ctx.cluster.to_string());
    put(ECS_LABEL_TASK_ARN, ctx.task_arn.to_string());
    put(ECS_LABEL_CONTAINER_NAME, container.to_string());
    put(ECS_LABEL_TASK_DEFINITION_FAMILY, family.to_string());
    put(ECS_LABEL_TASK_DEFINITION_VERSION, revision.to_string());
    labels
}

/// The specs of every container of the task, in task definition order.
pub fn task_container_specs(ctx: &TaskContext<'_>) -> Result<Vec<ContainerSpec>, SpecError> {
    let defs = ctx
        .task_definition
        .container_definitions
        .as_deref()
        .unwrap_or_default();
    defs.iter().map(|def| container_spec(ctx, def)).collect()
}

/// The CPUs of this host, which no limit may exceed (Docker refuses one that does).
fn host_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Container `name`'s hard CPU limit in billionths of a CPU: a task-level `cpu` is a hard
/// limit, as ECS makes it on Linux, shared out among the task's containers in proportion to
/// their `cpu` (a container without one weighs as 2 units, the least CPU shares Docker
/// gives). `None` without a task-level `cpu`.
fn task_cpu_share(ctx: &TaskContext<'_>, name: &str) -> Result<Option<i64>, SpecError> {
    let task_cpu = ctx
        .overrides
        .and_then(|o| o.cpu.clone())
        .or_else(|| ctx.task_definition.cpu.clone());
    let Some(text) = task_cpu else {
        return Ok(None);
    };
    let units =
        berth_core::task_definition::parse_task_cpu(&text).map_err(|e| SpecError::Invalid {
            container: name.to_string(),
            field: "cpu",
            message: e.to_string(),
        })?;
    let weights: Vec<(&str, u64)> = ctx
        .task_definition
        .container_definitions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|def| {
            let container = def.name.as_deref()?;
            let cpu = ctx
                .container_override(container)
                .and_then(|o| o.cpu)
                .or(def.cpu)
                .unwrap_or(0);
            Some((container, u64::try_from(cpu).unwrap_or(0)))
        })
        .collect();
    let mine = weights
        .iter()
        .find(|(container, _)| *container == name)
        .map_or(0, |(_, cpu)| *cpu);
    let total: u64 = weights.iter().map(|(_, cpu)| (*cpu).max(2)).sum();
    Ok(Some(cpu_limit(
        u64::from(units),
        mine,
        total.max(2),
        host_cpus(),
    )))
}

/// The part of `task_units` CPU units that a container of `cpu` units gets of a task whose
/// containers weigh `total`, in billionths of a CPU: at most `host_cpus` CPUs and at least
/// Docker's least, 0.01 CPU.
pub fn cpu_limit(task_units: u64, cpu: u64, total: u64, host_cpus: u64) -> i64 {
    let nanos = u128::from(task_units) * 1_000_000_000 * u128::from(cpu.max(2))
        / 1024
        / u128::from(total.max(1));
    let most = u128::from(host_cpus.max(1)) * 1_000_000_000;
    i64::try_from(nanos.clamp(10_000_000, most)).unwrap_or(i64::MAX)
}

/// The spec of one container of the task: the definition with the task's overrides applied
/// (command, environment, cpu, memory, memoryReservation), ECS defaults filled in, references
/// to other containers of the task resolved to their runtime names. A field Berth cannot
/// honour is an error (`SpecError::Unsupported`), never silently dropped.
pub fn container_spec(
    ctx: &TaskContext<'_>,
    def: &ContainerDefinition,
) -> Result<ContainerSpec, SpecError> {
    let name = def
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(SpecError::Missing {
            container: String::new(),
            field: "name",
        })?;
    let image = def
        .image
        .as_deref()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| SpecError::Missing {
            container: name.to_string(),
            field: "image",
        })?;
    unsupported::check(def, name)?;
    let (family, revision) = ctx.family_revision()?;
    let over = ctx.container_override(name);
    let network_mode = ctx.network_mode();
    let invalid = |field: &'static str, message: String| SpecError::Invalid {
        container: name.to_string(),
        field,
        message,
    };

    let mib = |field: &'static str, value: Option<i32>| -> Result<Option<u64>, SpecError> {
        value
            .map(|v| u64::try_from(v).map_err(|_| invalid(field, format!("{v} is negative"))))
            .transpose()
    };
    let cpu = over.and_then(|o| o.cpu).or(def.cpu).unwrap_or(0);
    let cpu_shares =
        u64::try_from(cpu).map_err(|_| invalid("cpu", format!("{cpu} is negative")))?;
    let memory_mib = mib("memory", over.and_then(|o| o.memory).or(def.memory))?;
    let memory_reservation_mib = mib(
        "memoryReservation",
        over.and_then(|o| o.memory_reservation)
            .or(def.memory_reservation),
    )?;

    let linux = def.linux_parameters.as_ref();
    let capabilities = linux.and_then(|l| l.capabilities.as_ref());
    let mut mounts = volumes::mounts(ctx, def, name, &family, revision)?;
    for tmpfs in linux.and_then(|l| l.tmpfs.as_deref()).unwrap_or_default() {
        mounts.push(MountSpec::Tmpfs {
            container_path: tmpfs.container_path.clone(),
            size_mib: u64::try_from(tmpfs.size)
                .map_err(|_| invalid("tmpfs", format!("size {} is negative", tmpfs.size)))?,
            options: tmpfs.mount_options.clone().unwrap_or_default(),
        });
    }
    let stop_timeout = match def.stop_timeout {
        Some(s) => Duration::from_secs(
            u64::try_from(s).map_err(|_| invalid("stopTimeout", format!("{s} is negative")))?,
        ),
        None => DEFAULT_STOP_TIMEOUT,
    };
    // Docker refuses a hostname in host network mode; ECS only allows it in bridge mode.
    let hostname = def
        .hostname
        .clone()
        .filter(|_| !matches!(network_mode, "host" | "awsvpc"));
    let settings = linux::linux_settings(def, name, memory_mib)?;
    let (pid_mode, ipc_mode) = siblings::namespace_modes(ctx, name, &family, revision)?;

    Ok(ContainerSpec {
        name: container_name(&family, revision, name, ctx.task_id()),
        image: image.to_string(),
        entrypoint: def.entry_point.clone(),
        command: over
            .and_then(|o| o.command.clone())
            .or_else(|| def.command.clone()),
        env: with_metadata(environment(def, over), ctx, name),
        working_dir: def.working_directory.clone(),
        user: def.user.clone(),
        hostname,
        cpu_shares,
        nano_cpus: task_cpu_share(ctx, name)?,
        memory_mib,
        memory_reservation_mib,
        network_mode: docker_network_mode(network_mode).to_string(),
        ports: ports(
            network_mode,
            def.port_mappings.as_deref().unwrap_or_default(),
            name,
        )?,
        mounts,
        labels: labels(ctx, def, name, &family, revision),
        health_check: def
            .health_check
            .as_ref()
            .map(|h| health_check(h, name))
            .transpose()?
            .flatten(),
        ulimits: def
            .ulimits
            .iter()
            .flatten()
            .map(|u| UlimitSpec {
                name: u.name.clone(),
                soft: i64::from(u.soft_limit),
                hard: i64::from(u.hard_limit),
            })
            .collect(),
        readonly_rootfs: def.readonly_root_filesystem.unwrap_or(false),
        privileged: def.privileged.unwrap_or(false),
        init: linux.and_then(|l| l.init_process_enabled).unwrap_or(false),
        cap_add: capabilities.and_then(|c| c.add.clone()).unwrap_or_default(),
        cap_drop: capabilities
            .and_then(|c| c.drop.clone())
            .unwrap_or_default(),
        dns_servers: def.dns_servers.clone().unwrap_or_default(),
        dns_search: def.dns_search_domains.clone().unwrap_or_default(),
        extra_hosts: def
            .extra_hosts
            .iter()
            .flatten()
            .map(|h| format!("{}:{}", h.hostname, h.ip_address))
            .collect(),
        log_driver: def.log_configuration.as_ref().map(|l| {
            if l.log_driver == "awslogs" {
                crate::logs::RUNTIME_DRIVER.to_string()
            } else {
                l.log_driver.clone()
            }
        }),
        log_options: match &def.log_configuration {
            Some(l) if l.log_driver == "awslogs" => crate::logs::runtime_options(),
            Some(l) => l.options.clone().unwrap_or_default(),
            None => Default::default(),
        },
        stop_timeout: Some(stop_timeout),
        interactive: def.interactive.unwrap_or(false),
        tty: def.pseudo_terminal.unwrap_or(false),
        disable_networking: def.disable_networking.unwrap_or(false),
        volumes_from: siblings::volumes_from(ctx, def, name, &family, revision)?,
        links: siblings::links(ctx, def, name, &family, revision)?,
        devices: settings.devices,
        shm_size_mib: settings.shm_size_mib,
        memory_swap_mib: settings.memory_swap_mib,
        memory_swappiness: settings.memory_swappiness,
        sysctls: settings.sysctls,
        security_opt: def.docker_security_options.clone().unwrap_or_default(),
        pid_mode,
        ipc_mode,
        cgroup_parent: None,
    })
}

/// Docker's network mode for an ECS one. An `awsvpc` container has none of its own: it joins
/// its task's namespace ([`join_namespace`]) once the task's network is attached.
fn docker_network_mode(ecs_mode: &str) -> &str {
    match ecs_mode {
        "awsvpc" => "none",
        other => other,
    }
}

/// Makes `spec` join the network namespace of container `sandbox` (an awsvpc task's pause
/// container): it shares that namespace's interface, address and `localhost`, so it publishes
/// no ports, and the settings Docker refuses in a shared namespace (hostname, DNS, extra
/// hosts, links) are left to the namespace.
pub fn join_namespace(spec: &mut ContainerSpec, sandbox: &str) {
    spec.network_mode = format!("container:{sandbox}");
    spec.ports.clear();
    spec.hostname = None;
    spec.dns_servers.clear();
    spec.dns_search.clear();
    spec.extra_hosts.clear();
    spec.links.clear();
}

/// The container's environment: the definition's variables in order, each replaced by the
/// override's value of the same name; override variables the definition lacks come last.
fn environment(
    def: &ContainerDefinition,
    over: Option<&ContainerOverride>,
) -> Vec<(String, String)> {
    let pairs = |list: Option<&Vec<berth_core::model::KeyValuePair>>| -> Vec<(String, String)> {
        list.into_iter()
            .flatten()
            .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
            .collect()
    };
    let mut env = pairs(def.environment.as_ref());
    for (name, value) in pairs(over.and_then(|o| o.environment.as_ref())) {
        match env.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => env.push((name, value)),
        }
    }
    env
}

/// `env` with the task metadata endpoint's variables (those the task does not set itself).
fn with_metadata(
    mut env: Vec<(String, String)>,
    ctx: &TaskContext<'_>,
    container: &str,
) -> Vec<(String, String)> {
    if let Some(endpoint) = ctx.metadata {
        let has_role = ctx
            .overrides
            .and_then(|o| o.task_role_arn.as_deref())
            .or(ctx.task_definition.task_role_arn.as_deref())
            .is_some_and(|arn| !arn.is_empty());
        for (name, value) in endpoint.environment(ctx.task_arn, container, has_role) {
            if !env.iter().any(|(n, _)| *n == name) {
                env.push((name, value));
            }
        }
    }
    env
}

/// Host bindings of the port mappings. Bridge: a hostPort of 0 or none is ephemeral (chosen by
/// Docker). Host: the container listens on the host, so hostPort is the containerPort. None (and
/// awsvpc, which Berth runs without a task network interface): no host ports.
/// `containerPortRange` expands to one ephemeral (host mode: identical) port per container port.
fn ports(
    network_mode: &str,
    mappings: &[PortMapping],
    container: &str,
) -> Result<Vec<PortSpec>, SpecError> {
    if matches!(network_mode, "none" | "awsvpc") {
        return Ok(Vec::new());
    }
    let invalid = |message: String| SpecError::Invalid {
        container: container.to_string(),
        field: "portMappings",
        message,
    };
    let port = |value: i32| u16::try_from(value).ok().filter(|p| *p > 0);
    let mut specs = Vec::new();
    for mapping in mappings {
        let protocol = mapping
            .protocol
            .clone()
            .unwrap_or_else(|| "tcp".to_string());
        let (container_ports, host_port) =
            match (mapping.container_port, &mapping.container_port_range) {
                (Some(p), _) => {
                    let container_port = port(p)
                        .ok_or_else(|| invalid(format!("containerPort {p} is not a port")))?;
                    let host_port = match mapping.host_port {
                        None | Some(0) => None,
                        Some(h) => Some(
                            port(h)
                                .ok_or_else(|| invalid(format!("hostPort {h} is not a port")))?,
                        ),
                    };
                    (container_port..=container_port, host_port)
                }
                (None, Some(range)) => {
                    let (start, end) = range
                        .split_once('-')
                        .and_then(|(a, b)| {
                            Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                        })
                        .filter(|(a, b)| *a > 0 && a <= b)
                        .ok_or_else(|| {
                            invalid(format!("containerPortRange {range} is not start-end"))
                        })?;
                    (start..=end, None)
                }
                (None, None) => return Err(invalid("a mapping has no containerPort".to_string())),
            };
        for container_port in container_ports {
            let host_port = if network_mode == "host" {
                Some(container_port)
            } else {
                host_port
            };
            specs.push(PortSpec {
                container_port,
                host_port,
                protocol: protocol.clone(),
            });
        }
    }
    Ok(specs)
}

/// The runtime health check of an ECS one (ECS defaults for absent times); `NONE` disables it.
fn health_check(
    check: &HealthCheck,
    container: &str,
) -> Result<Option<HealthCheckSpec>, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        container: container.to_string(),
        field: "healthCheck",
        message,
    };
    match check.command.first().map(String::as_str) {
        Some("NONE") => return Ok(None),
        Some("CMD" | "CMD-SHELL") if check.command.len() > 1 => {}
        _ => {
            return Err(invalid(
                "command must start with CMD or CMD-SHELL and name a command".to_string(),
            ))
        }
    }
    let seconds = |field: &str, value: Option<i32>, default: Duration| match value {
        None => Ok(default),
        Some(s) => u64::try_from(s)
            .map(Duration::from_secs)
            .map_err(|_| invalid(format!("{field} {s} is negative"))),
    };
    Ok(Some(HealthCheckSpec {
        test: check.command.clone(),
        interval: seconds("interval", check.interval, DEFAULT_HEALTH_INTERVAL)?,
        timeout: seconds("timeout", check.timeout, DEFAULT_HEALTH_TIMEOUT)?,
        retries: match check.retries {
            None => DEFAULT_HEALTH_RETRIES,
            Some(r) => u32::try_from(r).map_err(|_| invalid(format!("retries {r} is negative")))?,
        },
        start_period: seconds("startPeriod", check.start_period, Duration::ZERO)?,
    }))
}

#[cfg(test)]
mod tests;
