//! The Docker create body of a `ContainerSpec`: every field in Docker's own terms and units
//! (bytes, nanoseconds, `HostConfig` members), with unset options left to the daemon.

use crate::runtime::{ContainerSpec, MountSpec, PortSpec};
use bollard::models::{
    ContainerCreateBody, DeviceMapping, HealthConfig, HostConfig, HostConfigLogConfig, Mount,
    MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig,
    PortBinding as DockerPortBinding, PortMap, ResourcesUlimits,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The Docker create body of a spec (everything but the name, which goes in the query).
pub fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let publishes = !matches!(spec.network_mode.as_str(), "host" | "none");
    let exposes = spec.network_mode != "none";
    let port_key = |p: &PortSpec| format!("{}/{}", p.container_port, p.protocol);

    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    for port in spec.ports.iter().filter(|_| exposes) {
        let key = port_key(port);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        if publishes {
            // An empty host port asks Docker for an ephemeral one.
            let host_port = port.host_port.filter(|p| *p != 0).map(|p| p.to_string());
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(DockerPortBinding {
                    host_ip: None,
                    host_port,
                });
        }
    }

    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    let mut tmpfs = HashMap::new();
    for mount in &spec.mounts {
        match mount {
            // Binds (not Mounts) so that a missing host directory is created, as ECS does.
            MountSpec::Bind {
                host_path,
                container_path,
                read_only,
            } => {
                let suffix = if *read_only { ":ro" } else { "" };
                binds.push(format!("{host_path}:{container_path}{suffix}"));
            }
            MountSpec::Volume {
                name,
                container_path,
                read_only,
                driver,
                driver_opts,
                labels,
            } => {
                let configured = driver.is_some() || !driver_opts.is_empty();
                let volume_options =
                    (configured || !labels.is_empty()).then(|| MountVolumeOptions {
                        labels: (!labels.is_empty()).then(|| hash_map(labels)),
                        driver_config: configured.then(|| MountVolumeOptionsDriverConfig {
                            name: driver.clone(),
                            options: (!driver_opts.is_empty()).then(|| hash_map(driver_opts)),
                        }),
                        ..Default::default()
                    });
                mounts.push(Mount {
                    target: Some(container_path.clone()),
                    source: Some(name.clone()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(*read_only),
                    volume_options,
                    ..Default::default()
                });
            }
            MountSpec::Tmpfs {
                container_path,
                size_mib,
                options,
            } => {
                let mut opts = options.clone();
                if *size_mib > 0 {
                    opts.push(format!("size={size_mib}m"));
                }
                tmpfs.insert(container_path.clone(), opts.join(","));
            }
        }
    }

    let mib = |m: u64| i64::try_from(m.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    let host_config = HostConfig {
        cpu_shares: (spec.cpu_shares > 0)
            .then(|| i64::try_from(spec.cpu_shares).unwrap_or(i64::MAX)),
        nano_cpus: spec.nano_cpus,
        memory: spec.memory_mib.map(mib),
        memory_reservation: spec.memory_reservation_mib.map(mib),
        memory_swap: spec.memory_swap_mib.map(mib),
        memory_swappiness: spec.memory_swappiness.map(i64::from),
        shm_size: spec.shm_size_mib.map(mib),
        network_mode: Some(if spec.network_mode.is_empty() {
            "bridge".to_string()
        } else {
            spec.network_mode.clone()
        }),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        readonly_rootfs: spec.readonly_rootfs.then_some(true),
        privileged: spec.privileged.then_some(true),
        init: spec.init.then_some(true),
        cap_add: some_vec(&spec.cap_add),
        cap_drop: some_vec(&spec.cap_drop),
        dns: some_vec(&spec.dns_servers),
        dns_search: some_vec(&spec.dns_search),
        extra_hosts: some_vec(&spec.extra_hosts),
        volumes_from: some_vec(&spec.volumes_from),
        links: some_vec(&spec.links),
        devices: (!spec.devices.is_empty()).then(|| {
            spec.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host_path.clone()),
                    path_in_container: Some(d.container_path.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        sysctls: (!spec.sysctls.is_empty()).then(|| hash_map(&spec.sysctls)),
        security_opt: some_vec(&spec.security_opt),
        cgroup_parent: spec.cgroup_parent.clone(),
        pid_mode: spec.pid_mode.clone(),
        ipc_mode: spec.ipc_mode.clone(),
        log_config: spec.log_driver.as_ref().map(|driver| HostConfigLogConfig {
            typ: Some(driver.clone()),
            config: (!spec.log_options.is_empty()).then(|| hash_map(&spec.log_options)),
        }),
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.command.clone(),
        env: (!spec.env.is_empty())
            .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        labels: (!spec.labels.is_empty()).then(|| hash_map(&spec.labels)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck: spec.health_check.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(h.start_period)),
            start_interval: None,
        }),
        stop_timeout: spec
            .stop_timeout
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        tty: spec.tty.then_some(true),
        open_stdin: spec.interactive.then_some(true),
        network_disabled: spec.disable_networking.then_some(true),
        host_config: Some(host_config),
        ..Default::default()
    }
}

fn hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
