//! The admission policy: which task definition fields grant root on a host (privileged
//! containers, the host's network, PID and IPC namespaces, host bind mounts, devices, extra
//! capabilities, lifted confinement, the root user), refused unless the cluster (by its tags)
//! or the agent (by its flags) allows them. Default deny; pure, so the server and every agent
//! judge a definition the same way.

use crate::model::task_definition::{ContainerDefinition, TaskDefinition, Volume};
use crate::model::Tag;
use std::fmt;

/// Cluster tag that allows `privileged: true`.
pub const TAG_ALLOW_PRIVILEGED: &str = "berth:allow-privileged";
/// Cluster tag that allows `networkMode: host`.
pub const TAG_ALLOW_HOST_NETWORK: &str = "berth:allow-host-network";
/// Cluster tag that allows `pidMode: host`.
pub const TAG_ALLOW_HOST_PID: &str = "berth:allow-host-pid";
/// Cluster tag that allows `ipcMode: host`.
pub const TAG_ALLOW_HOST_IPC: &str = "berth:allow-host-ipc";
/// Cluster tag listing the host path prefixes `volumes[].host.sourcePath` may name.
pub const TAG_ALLOW_BIND_MOUNTS: &str = "berth:allow-bind-mounts";
/// Cluster tag that allows Docker volumes whose driver options make a bind mount.
pub const TAG_ALLOW_DOCKER_VOLUME_BINDS: &str = "berth:allow-docker-volume-binds";
/// Cluster tag that allows `linuxParameters.devices`.
pub const TAG_ALLOW_DEVICES: &str = "berth:allow-devices";
/// Cluster tag listing the capabilities beyond Docker's default set that may be added.
pub const TAG_ALLOW_CAPABILITIES: &str = "berth:allow-capabilities";
/// Cluster tag that allows `dockerSecurityOptions` that lift seccomp, AppArmor or SELinux.
pub const TAG_ALLOW_UNCONFINED: &str = "berth:allow-unconfined";
/// Cluster tag that refuses containers whose `user` is root.
pub const TAG_FORBID_ROOT_USER: &str = "berth:forbid-root-user";

/// The capabilities Docker gives every container; adding one of these grants nothing new.
pub const DOCKER_DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// What a cluster or an agent allows beyond the default. `Default` refuses everything and
/// lets containers run as root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowances {
    /// `privileged: true`.
    pub privileged: bool,
    /// `networkMode: host`.
    pub host_network: bool,
    /// `pidMode: host`.
    pub host_pid: bool,
    /// `ipcMode: host`.
    pub host_ipc: bool,
    /// Host paths under which `volumes[].host.sourcePath` may bind-mount (absolute; `/`
    /// allows every path).
    pub bind_mount_prefixes: Vec<String>,
    /// `dockerVolumeConfiguration` driver options that make a bind mount.
    pub docker_volume_binds: bool,
    /// `linuxParameters.devices`.
    pub devices: bool,
    /// Capabilities beyond Docker's default set that `capabilities.add` may name (`ALL`
    /// allows any).
    pub capabilities: Vec<String>,
    /// `dockerSecurityOptions` that turn seccomp, AppArmor or SELinux confinement off.
    pub unconfined: bool,
    /// Refuse containers whose `user` is root.
    pub forbid_root_user: bool,
}

impl Allowances {
    /// The allowances a cluster's tags grant: `berth:allow-privileged=true`,
    /// `berth:allow-host-network=true`, `berth:allow-host-pid=true`,
    /// `berth:allow-host-ipc=true`, `berth:allow-bind-mounts=/srv /data`,
    /// `berth:allow-docker-volume-binds=true`, `berth:allow-devices=true`,
    /// `berth:allow-capabilities=NET_ADMIN SYS_TIME`, `berth:allow-unconfined=true` and
    /// `berth:forbid-root-user=true`. Lists are separated by spaces (ECS tag values admit
    /// spaces but not commas) or commas. Other tags, and values other than `true`, grant
    /// nothing.
    pub fn from_cluster_tags(tags: &[Tag]) -> Allowances {
        let value = |key: &str| {
            tags.iter()
                .find(|t| t.key.as_deref() == Some(key))
                .map(|t| t.value.as_deref().unwrap_or("").trim())
        };
        let yes = |key: &str| value(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let list = |key: &str| -> Vec<String> {
            value(key)
                .unwrap_or("")
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect()
        };
        Allowances {
            privileged: yes(TAG_ALLOW_PRIVILEGED),
            host_network: yes(TAG_ALLOW_HOST_NETWORK),
            host_pid: yes(TAG_ALLOW_HOST_PID),
            host_ipc: yes(TAG_ALLOW_HOST_IPC),
            bind_mount_prefixes: list(TAG_ALLOW_BIND_MOUNTS),
            docker_volume_binds: yes(TAG_ALLOW_DOCKER_VOLUME_BINDS),
            devices: yes(TAG_ALLOW_DEVICES),
            capabilities: list(TAG_ALLOW_CAPABILITIES),
            unconfined: yes(TAG_ALLOW_UNCONFINED),
            forbid_root_user: yes(TAG_FORBID_ROOT_USER),
        }
    }

    /// The cluster tags that grant these allowances (the inverse of [`from_cluster_tags`]);
    /// none for the default.
    ///
    /// [`from_cluster_tags`]: Allowances::from_cluster_tags
    pub fn to_cluster_tags(&self) -> Vec<Tag> {
        let tag = |key: &str, value: String| Tag {
            key: Some(key.to_string()),
            value: Some(value),
        };
        let mut tags = Vec::new();
        for (key, set) in [
            (TAG_ALLOW_PRIVILEGED, self.privileged),
            (TAG_ALLOW_HOST_NETWORK, self.host_network),
            (TAG_ALLOW_HOST_PID, self.host_pid),
            (TAG_ALLOW_HOST_IPC, self.host_ipc),
            (TAG_ALLOW_DOCKER_VOLUME_BINDS, self.docker_volume_binds),
            (TAG_ALLOW_DEVICES, self.devices),
            (TAG_ALLOW_UNCONFINED, self.unconfined),
            (TAG_FORBID_ROOT_USER, self.forbid_root_user),
        ] {
            if set {
                tags.push(tag(key, "true".into()));
            }
        }
        for (key, list) in [
            (TAG_ALLOW_BIND_MOUNTS, &self.bind_mount_prefixes),
            (TAG_ALLOW_CAPABILITIES, &self.capabilities),
        ] {
            if !list.is_empty() {
                tags.push(tag(key, list.join(" ")));
            }
        }
        tags
    }

    /// Whether `path` (a host path) lies under one of the allowed prefixes, both compared
    /// normalised (so `/srv/../etc` is `/etc`, not under `/srv`).
    pub fn allows_bind_mount(&self, path: &str) -> bool {
        let Some(path) = normalize_path(path) else {
            return false;
        };
        self.bind_mount_prefixes
            .iter()
            .filter_map(|prefix| normalize_path(prefix))
            .any(|prefix| is_under(&path, &prefix))
    }

    /// Whether capability `name` (any case, `CAP_` prefix or not) may be added.
    pub fn allows_capability(&self, name: &str) -> bool {
        let name = capability_name(name);
        if name != "ALL" && DOCKER_DEFAULT_CAPABILITIES.contains(&name.as_str()) {
            return true;
        }
        self.capabilities
            .iter()
            .map(|allowed| capability_name(allowed))
            .any(|allowed| allowed == name || allowed == "ALL")
    }
}

/// What a refused field would grant, and so which allowance would admit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `privileged: true`.
    Privileged,
    /// `networkMode: host`.
    HostNetwork,
    /// `pidMode: host`.
    HostPid,
    /// `ipcMode: host`.
    HostIpc,
    /// A host bind mount of `path` (normalised when absolute).
    BindMount { path: String },
    /// Docker volume driver options that bind-mount `device` (when they name one).
    DockerVolumeBind { device: Option<String> },
    /// The host device `host_path`.
    Device { host_path: String },
    /// Capability `name` (upper case, without `CAP_`), beyond Docker's default set.
    Capability { name: String },
    /// A Docker security option that lifts confinement.
    Unconfined { option: String },
    /// A root `user`, on a cluster or agent that forbids it.
    RootUser { user: String },
}

impl Grant {
    /// Why the field is refused: what it gives the container on its host.
    fn why(&self) -> String {
        match self {
            Grant::Privileged => "privileged containers are root on the host".into(),
            Grant::HostNetwork => {
                "host network mode shares the host's network stack with the task, which may \
                 then bind any host port and reach services that listen only on the host"
                    .into()
            }
            Grant::HostPid => {
                "pidMode host shares the host's process namespace with the task, which may \
                 then see and signal every process on the host"
                    .into()
            }
            Grant::HostIpc => {
                "ipcMode host shares the host's IPC namespace (the shared memory of every \
                 process on the host) with the task"
                    .into()
            }
            Grant::BindMount { path } => format!(
                "it bind-mounts the host path {path}, which is outside the host paths allowed \
                 for bind mounts"
            ),
            Grant::DockerVolumeBind { device } => format!(
                "its driver options make a bind mount of a host path{}",
                device
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Grant::Device { host_path } => {
                format!("it exposes the host device {host_path} to the container")
            }
            Grant::Capability { name } => format!(
                "capability {name} is beyond Docker's default set (capabilities such as \
                 SYS_ADMIN, SYS_MODULE or SYS_PTRACE are root on the host)"
            ),
            Grant::Unconfined { option } => format!(
                "'{option}' lifts (or, as a custom seccomp profile, can lift) the seccomp, \
                 AppArmor or SELinux confinement Docker puts around containers"
            ),
            Grant::RootUser { user } => format!(
                "user '{user}' runs the container as root, and root users are forbidden here"
            ),
        }
    }

    /// How a cluster allows it (the tag to set), and how an agent does (the flag).
    fn remedy(&self) -> String {
        let simple = |tag: &str, flag: &str| {
            format!(
                "Allow it on the cluster with the tag {tag}=true (ecs:TagResource), and on its \
                 agents with {flag}."
            )
        };
        match self {
            Grant::Privileged => simple(TAG_ALLOW_PRIVILEGED, "--allow-privileged"),
            Grant::HostNetwork => simple(TAG_ALLOW_HOST_NETWORK, "--allow-host-network"),
            Grant::HostPid => simple(TAG_ALLOW_HOST_PID, "--allow-host-pid"),
            Grant::HostIpc => simple(TAG_ALLOW_HOST_IPC, "--allow-host-ipc"),
            Grant::BindMount { path } => format!(
                "Allow it on the cluster by adding {path} (or a directory above it) to the tag \
                 {TAG_ALLOW_BIND_MOUNTS} (ecs:TagResource; paths separated by spaces), and on \
                 its agents with --allow-bind-mount {path}."
            ),
            Grant::DockerVolumeBind { .. } => {
                simple(TAG_ALLOW_DOCKER_VOLUME_BINDS, "--allow-docker-volume-binds")
            }
            Grant::Device { .. } => simple(TAG_ALLOW_DEVICES, "--allow-devices"),
            Grant::Capability { name } => format!(
                "Allow it on the cluster by adding {name} to the tag {TAG_ALLOW_CAPABILITIES} \
                 (ecs:TagResource; names separated by spaces), and on its agents with \
                 --allow-capability {name}."
            ),
            Grant::Unconfined { .. } => simple(TAG_ALLOW_UNCONFINED, "--allow-unconfined"),
            Grant::RootUser { .. } => format!(
                "Run it as another user, or remove the tag {TAG_FORBID_ROOT_USER} from the \
                 cluster (ecs:UntagResource) and --forbid-root-user from its agents."
            ),
        }
    }

    /// How an agent allows it: the flag to start it with.
    fn agent_remedy(&self) -> String {
        let flag = match self {
            Grant::Privileged => "--allow-privileged".to_string(),
            Grant::HostNetwork => "--allow-host-network".to_string(),
            Grant::HostPid => "--allow-host-pid".to_string(),
            Grant::HostIpc => "--allow-host-ipc".to_string(),
            Grant::BindMount { path } => format!("--allow-bind-mount {path}"),
            Grant::DockerVolumeBind { .. } => "--allow-docker-volume-binds".to_string(),
            Grant::Device { .. } => "--allow-devices".to_string(),
            Grant::Capability { name } => format!("--allow-capability {name}"),
            Grant::Unconfined { .. } => "--allow-unconfined".to_string(),
            Grant::RootUser { .. } => {
                return "Run it as another user, or start the agent without --forbid-root-user."
                    .to_string()
            }
        };
        format!("Start the agent with {flag} to allow it.")
    }
}

/// One field the allowances do not admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The field, as ECS names it: `containerDefinitions[0].privileged`,
    /// `volumes[1].host.sourcePath`, `networkMode`, ...
    pub field: String,
    /// What it would grant.
    pub grant: Grant,
}

impl Refusal {
    /// The refusal as an agent reports it (a task's `stoppedReason`): the field, why, and the
    /// agent flag that would allow it.
    pub fn agent_message(&self) -> String {
        format!(
            "{} is refused by this agent: {}. {}",
            self.field,
            self.grant.why(),
            self.grant.agent_remedy()
        )
    }
}

impl fmt::Display for Refusal {
    /// The field, why it is refused, and the cluster tag and agent flag that would allow it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is refused: {}. {}",
            self.field,
            self.grant.why(),
            self.grant.remedy()
        )
    }
}

/// Every field of `td` that `allowances` do not admit, in the order of the definition
/// (task-level modes, volumes, then each container). Empty when the definition is admitted.
pub fn check(td: &TaskDefinition, allowances: &Allowances) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let mut refuse = |field: String, grant: Grant| refusals.push(Refusal { field, grant });
    let is_host = |mode: &Option<String>| mode.as_deref() == Some("host");
    if is_host(&td.network_mode) && !allowances.host_network {
        refuse("networkMode".into(), Grant::HostNetwork);
    }
    if is_host(&td.pid_mode) && !allowances.host_pid {
        refuse("pidMode".into(), Grant::HostPid);
    }
    if is_host(&td.ipc_mode) && !allowances.host_ipc {
        refuse("ipcMode".into(), Grant::HostIpc);
    }
    for (i, volume) in td.volumes.iter().flatten().enumerate() {
        check_volume(i, volume, allowances, &mut refuse);
    }
    for (i, container) in td.container_definitions.iter().flatten().enumerate() {
        check_container(i, container, allowances, &mut refuse);
    }
    refusals
}

fn check_volume(
    i: usize,
    volume: &Volume,
    allowances: &Allowances,
    refuse: &mut impl FnMut(String, Grant),
) {
    let source = volume
        .host
        .as_ref()
        .and_then(|h| h.source_path.as_deref())
        .filter(|p| !p.is_empty());
    if let Some(source) = source {
        if !allowances.allows_bind_mount(source) {
            let path = normalize_path(source).unwrap_or_else(|| source.to_string());
            refuse(
                format!("volumes[{i}].host.sourcePath"),
                Grant::BindMount { path },
            );
        }
    }
    let options = volume
        .docker_volume_configuration
        .as_ref()
        .and_then(|c| c.driver_opts.as_ref());
    if let Some(options) = options {
        let option = |name: &str| {
            options
                .iter()
                .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
        };
        let device = option("device").filter(|d| !d.is_empty());
        let binds = option("o").is_some_and(|o| o.to_ascii_lowercase().contains("bind"))
            || (option("type").is_some_and(|t| t.eq_ignore_ascii_case("none")) && device.is_some());
        if binds && !allowances.docker_volume_binds {
            refuse(
                format!("volumes[{i}].dockerVolumeConfiguration.driverOpts"),
                Grant::DockerVolumeBind {
                    device: device.map(str::to_string),
                },
            );
        }
    }
}

fn check_container(
    i: usize,
    c: &ContainerDefinition,
    allowances: &Allowances,
    refuse: &mut impl FnMut(String, Grant),
) {
    let at = |field: &str| format!("containerDefinitions[{i}].{field}");
    if c.privileged == Some(true) && !allowances.privileged {
        refuse(at("privileged"), Grant::Privileged);
    }
    if let Some(user) = c.user.as_deref() {
        if allowances.forbid_root_user && is_root_user(user) {
            refuse(
                at("user"),
                Grant::RootUser {
                    user: user.to_string(),
                },
            );
        }
    }
    for (j, option) in c.docker_security_options.iter().flatten().enumerate() {
        if !allowances.unconfined && lifts_confinement(option) {
            refuse(
                at(&format!("dockerSecurityOptions[{j}]")),
                Grant::Unconfined {
                    option: option.clone(),
                },
            );
        }
    }
    let Some(linux) = c.linux_parameters.as_ref() else {
        return;
    };
    if !allowances.devices {
        for (j, device) in linux.devices.iter().flatten().enumerate() {
            refuse(
                at(&format!("linuxParameters.devices[{j}]")),
                Grant::Device {
                    host_path: device.host_path.clone(),
                },
            );
        }
    }
    let added = linux.capabilities.as_ref().and_then(|c| c.add.as_ref());
    for (j, name) in added.into_iter().flatten().enumerate() {
        if !allowances.allows_capability(name) {
            refuse(
                at(&format!("linuxParameters.capabilities.add[{j}]")),
                Grant::Capability {
                    name: capability_name(name),
                },
            );
        }
    }
}

/// A capability name as Docker reads it: upper case, without the `CAP_` prefix.
pub fn capability_name(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(bare) => bare.to_string(),
        None => upper,
    }
}

/// Whether a container `user` (`user`, `user:group`, `uid`, `uid:gid`, ...) is root: the name
/// `root` or uid 0, with any group.
pub fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("").trim();
    name == "root"
        || (!name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && name.parse() == Ok(0u64))
}

/// Whether a Docker security option turns confinement off: seccomp unconfined (or a custom
/// profile, which can allow every system call), AppArmor unconfined, SELinux labelling
/// disabled or a super-privileged SELinux type, or unmasked system paths. Docker reads
/// `key=value` and the older `key:value`.
pub fn lifts_confinement(option: &str) -> bool {
    let option = option.trim();
    let (key, value) = match option.split_once('=') {
        Some(pair) => pair,
        None => option.split_once(':').unwrap_or((option, "")),
    };
    let key = key.trim().to_ascii_lowercase();
    let value = value.trim().to_ascii_lowercase();
    match key.as_str() {
        "seccomp" => value != "builtin",
        "apparmor" => value == "unconfined",
        "label" => matches!(
            value.as_str(),
            "disable" | "type:spc_t" | "type:unconfined_t"
        ),
        "systempaths" => value == "unconfined",
        _ => false,
    }
}

/// `path` with `.`, `..` and repeated or trailing slashes resolved as the kernel would
/// without symlinks (`..` at the root stays there); `None` when it is not absolute.
pub fn normalize_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Whether normalised `path` is `prefix` or lies below it.
fn is_under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests;
