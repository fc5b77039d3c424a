//! awsvpc task networking: each task gets a network namespace of its own, held by a pause
//! container, with one interface (ECS's task ENI) on a Berth network made by the CNI
//! reference plugins (`bridge` + `host-local`; forwarding and masquerading rules are set once
//! per network). The task's containers join
//! the namespace (`container:<pause>`), so they share `localhost` and the task's address; two
//! tasks may both listen on port 80.
//!
//! What was set up is written down before the plugins run (one record per pause container, in
//! the agent's data dir), and addresses live in `host-local`'s files there too; so an agent
//! killed at any step releases, on its next start (`sweep`), every address and interface
//! whose task is gone, and never hands out an address still held.

mod cni;
mod firewall;
pub mod pause;

use crate::runtime::{ContainerRuntime, ContainerSpec, RuntimeError};
use crate::spec;
use async_trait::async_trait;
use berth_core::awsvpc::{InterfaceReport, TaskNetwork};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Label of a pause container: the network it holds (its value: the Berth network name).
pub const LABEL_TASK_NETWORK: &str = "com.berth.task-network";

/// Where `host-local` keeps the addresses in use: one place per host, so that agents sharing
/// a host (tests run several) never hand out one address twice, and a restarted agent finds
/// what it held.
pub const HOST_IPAM_DIR: &str = "/var/lib/berth/cni-ipam";

/// Where the CNI reference plugins are installed by Debian's `containernetworking-plugins`.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";

/// The capability an instance advertises when it runs awsvpc tasks (ECS's task ENIs); the
/// requirement ECS adds to every awsvpc task definition.
pub const TASK_ENI_CAPABILITY: &str = "ecs.capability.task-eni";

/// Whether awsvpc tasks can run on this host with the plugins in `plugin_dir`: the plugins
/// are there, the agent may make namespaces' interfaces (root), the pause program suits the
/// machine.
pub fn preflight(plugin_dir: &Path) -> Result<(), String> {
    let missing = cni::Plugins {
        dir: plugin_dir.to_path_buf(),
    }
    .missing();
    if !missing.is_empty() {
        return Err(format!(
            "the CNI reference plugins are missing ({}): install Debian's \
             containernetworking-plugins",
            missing.join(", ")
        ));
    }
    if std::env::consts::ARCH != "x86_64" {
        return Err(format!(
            "the awsvpc pause program is built for x86_64, not {}",
            std::env::consts::ARCH
        ));
    }
    preflight_root()
}

/// Whether the agent may change the host's network and cgroups: it has CAP_NET_ADMIN and
/// CAP_SYS_ADMIN (in practice, it runs as root).
pub fn preflight_root() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_NET_ADMIN: u64 = 1 << 12;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    if effective & (CAP_NET_ADMIN | CAP_SYS_ADMIN) != CAP_NET_ADMIN | CAP_SYS_ADMIN {
        return Err("the agent lacks CAP_NET_ADMIN and CAP_SYS_ADMIN (run it as root)".into());
    }
    Ok(())
}

/// A task's namespace as `prepare` leaves it: the container its containers join, and its
/// interface when it is up already (found after an agent restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The pause container (`container:<id>` is its containers' network mode).
    pub sandbox: String,
    pub ready: Option<InterfaceReport>,
}

/// How the agent gives awsvpc tasks their network.
#[async_trait]
pub trait TaskNetworking: Send + Sync + std::fmt::Debug + 'static {
    /// Makes the task's namespace holder on `network` (its containers can be created to join
    /// it at once), or finds the one it has (after an agent restart).
    async fn prepare(&self, task_arn: &str, network: &TaskNetwork) -> Result<Prepared, String>;
    /// Brings a prepared namespace up: its interface on the network, which its containers
    /// need only when they start. On failure, what was prepared is taken down.
    async fn connect(&self, task_arn: &str, sandbox: &str) -> Result<InterfaceReport, String>;
    /// Takes the task's namespace down and frees its address; nothing when it has none.
    async fn detach(&self, task_arn: &str) -> Result<(), String>;
    /// Takes down every namespace whose task is not in `keep` and frees every address whose
    /// namespace is gone (what an agent killed mid-way left).
    async fn sweep(&self, keep: &HashSet<String>);
}

/// What the agent wrote down about one pause container before its network was set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    task_arn: String,
    /// The network's plugin list, as given to the plugins.
    config: Value,
    /// ADD's result, once it succeeded.
    result: Option<Value>,
    /// The task's security groups, when Berth knows one of them (see [`firewall`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    firewall: Option<berth_core::security_group::Firewall>,
}

/// awsvpc on a container runtime with the CNI plugins.
pub struct CniNetworking {
    runtime: Arc<dyn ContainerRuntime>,
    plugins: cni::Plugins,
    /// The agent's awsvpc directory: a `sandboxes/<pause id>.json` record per pause container.
    state: PathBuf,
    /// Labels of this agent's containers (cluster, instance, home).
    labels: BTreeMap<String, String>,
    /// Held while the pause image is made, so it is imported once.
    image: tokio::sync::Mutex<bool>,
    /// The networks whose forwarding rules this process has made sure of.
    forwarding: tokio::sync::Mutex<HashSet<String>>,
    /// How many records each task has: a task with none has no pause container to find (so
    /// a new task's setup asks the runtime nothing before making its own).
    recorded: std::sync::Mutex<HashMap<String, usize>>,
    /// The security-group tables written into tasks' namespaces.
    firewalls: firewall::Applied,
}

impl std::fmt::Debug for CniNetworking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CniNetworking")
            .field("plugins", &self.plugins)
            .field("state", &self.state)
            .finish()
    }
}

impl CniNetworking {
    /// awsvpc with the plugins in `plugin_dir`, keeping its records under `state`; an error
    /// says what is missing.
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        plugin_dir: &Path,
        state: PathBuf,
        labels: BTreeMap<String, String>,
    ) -> Result<CniNetworking, String> {
        let plugins = cni::Plugins {
            dir: plugin_dir.to_path_buf(),
        };
        preflight(plugin_dir)?;
        std::fs::create_dir_all(state.join("sandboxes"))
            .map_err(|e| format!("cannot create {}: {e}", state.display()))?;
        let networking = CniNetworking {
            runtime,
            plugins,
            state,
            labels,
            image: tokio::sync::Mutex::new(false),
            forwarding: tokio::sync::Mutex::new(HashSet::new()),
            recorded: std::sync::Mutex::new(HashMap::new()),
            firewalls: firewall::Applied::default(),
        };
        for (_, record) in networking.records() {
            networking.count_record(&record.task_arn, 1);
        }
        Ok(networking)
    }

    /// Every record on disk: (pause container id, record).
    fn records(&self) -> Vec<(String, Record)> {
        let Ok(entries) = std::fs::read_dir(self.state.join("sandboxes")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().to_string();
                let sandbox = name.strip_suffix(".json")?.to_string();
                let record = self.read_record(&sandbox)?;
                Some((sandbox, record))
            })
            .collect()
    }

    fn count_record(&self, task_arn: &str, delta: isize) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let count = recorded.entry(task_arn.to_string()).or_insert(0);
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            recorded.remove(task_arn);
        }
    }

    fn has_records(&self, task_arn: &str) -> bool {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(task_arn)
    }

    /// The network's forwarding and masquerading rules, made sure of once per process.
    async fn ensure_forwarding(&self, network: &TaskNetwork) -> Result<(), String> {
        let mut done = self.forwarding.lock().await;
        let key = format!("{} {}", network.network, network.cidr);
        if done.contains(&key) {
            return Ok(());
        }
        cni::ensure_rules(&cni::forwarding_rules(&network.network, &network.cidr)).await?;
        done.insert(key);
        Ok(())
    }

    fn record_path(&self, sandbox: &str) -> PathBuf {
        self.state.join("sandboxes").join(format!("{sandbox}.json"))
    }

    fn read_record(&self, sandbox: &str) -> Option<Record> {
        let bytes = std::fs::read(self.record_path(sandbox)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write_record(&self, sandbox: &str, record: &Record) -> Result<(), String> {
        let path = self.record_path(sandbox);
        let temporary = path.with_extension("tmp");
        let bytes = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Labels of the pause containers of `task` (all tasks' when `None`).
    fn pause_labels(&self, task: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        if let Some(task) = task {
            labels.insert(spec::LABEL_TASK_ARN.into(), task.into());
        }
        labels
    }

    async fn pause_containers(
        &self,
        task: Option<&str>,
    ) -> Result<Vec<crate::runtime::ContainerState>, String> {
        let found = self
            .runtime
            .list_containers(&self.pause_labels(task))
            .await
            .map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .filter(|c| c.labels.contains_key(LABEL_TASK_NETWORK))
            .collect())
    }

    async fn ensure_image(&self) -> Result<(), String> {
        let mut ready = self.image.lock().await;
        if *ready {
            return Ok(());
        }
        let present = self
            .runtime
            .image_present(pause::PAUSE_IMAGE)
            .await
            .map_err(|e| e.to_string())?;
        if !present {
            tracing::info!(
                image = pause::PAUSE_IMAGE,
                "importing the awsvpc pause image"
            );
            self.runtime
                .import_image(pause::PAUSE_IMAGE, pause::rootfs())
                .await
                .map_err(|e| e.to_string())?;
        }
        *ready = true;
        Ok(())
    }

    /// Frees the network of pause container `sandbox` (DEL with what ADD returned) and
    /// removes the container, then its record. A record is kept while DEL fails, to be tried
    /// again by the next sweep.
    async fn release(&self, sandbox: &str, running: bool) -> Result<(), String> {
        let record = self.read_record(sandbox);
        if let Some(record) = &record {
            let netns = if running {
                match self.runtime.container_pid(sandbox).await {
                    Ok(pid) => format!("/proc/{pid}/ns/net"),
                    Err(_) => String::new(),
                }
            } else {
                String::new()
            };
            self.plugins
                .del(&record.config, sandbox, &netns, record.result.as_ref())
                .await?;
        }
        match self.runtime.remove_container(sandbox).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(err) => return Err(format!("cannot remove pause container {sandbox}: {err}")),
        }
        match std::fs::remove_file(self.record_path(sandbox)) {
            Ok(()) => {
                let filtered = record.as_ref().is_some_and(|r| r.firewall.is_some());
                if let Some(record) = record {
                    self.count_record(&record.task_arn, -1);
                }
                if filtered {
                    // Its address may go to a task of another group next: peers forget it.
                    if let Err(e) = self.refresh_firewalls(None).await {
                        tracing::warn!(%sandbox, "cannot refresh security groups: {e}");
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes the security-group table of every filtered task interface on this host whose
    /// table changed. A failure for `required` (the interface being connected) is an error;
    /// for others it is logged (their last table stays).
    async fn refresh_firewalls(&self, required: Option<&str>) -> Result<(), String> {
        let mut applied = self.firewalls.lock().await;
        let interfaces: Vec<firewall::Interface> = self
            .records()
            .into_iter()
            .filter_map(|(sandbox, record)| {
                let result = record.result.as_ref()?;
                let (address, _) = cni::interface_of(result)?;
                Some(firewall::Interface {
                    gateway: firewall::gateway_of(result)?,
                    sandbox,
                    address,
                    firewall: record.firewall,
                })
            })
            .collect();
        if required.is_none() && !interfaces.iter().any(|i| i.firewall.is_some()) {
            applied.clear();
            return Ok(());
        }
        let tables = firewall::tables(&interfaces);
        applied.retain(|sandbox, _| tables.iter().any(|(s, _)| s == sandbox));
        for (sandbox, table) in tables {
            if applied.get(&sandbox) == Some(&table) {
                continue;
            }
            let outcome = match self.runtime.container_pid(&sandbox).await {
                Ok(pid) => firewall::apply(pid, &table).await,
                Err(e) => Err(format!("cannot find pause container {sandbox}: {e}")),
            };
            match outcome {
                Ok(()) => {
                    applied.insert(sandbox, table);
                }
                Err(e) if required == Some(sandbox.as_str()) => return Err(e),
                Err(e) => tracing::warn!(%sandbox, "cannot write a task's security groups: {e}"),
            }
        }
        Ok(())
    }

    /// Frees the addresses held for containers that no longer exist on this host at all (a
    /// pause container removed by hand, or by a tool that cleaned up after an agent): their
    /// namespaces, and the interfaces in them, went with them.
    async fn free_unowned_addresses(&self) {
        let Ok(networks) = std::fs::read_dir(HOST_IPAM_DIR) else {
            return;
        };
        for network in networks.flatten() {
            let name = network.file_name().to_string_lossy().to_string();
            let Ok(entries) = std::fs::read_dir(network.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let address = entry.file_name().to_string_lossy().to_string();
                let Ok(ip) = address.parse::<std::net::Ipv4Addr>() else {
                    continue;
                };
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let Some(owner) = text.split_whitespace().next().map(String::from) else {
                    continue;
                };
                match self.runtime.inspect_container(&owner).await {
                    Err(RuntimeError::NotFound(_)) => {}
                    _ => continue,
                }
                tracing::info!(%address, network = %name, "freeing an address whose container is gone");
                if let Err(err) = self
                    .plugins
                    .release_address(&name, ip, &owner, Path::new(HOST_IPAM_DIR))
                    .await
                {
                    tracing::warn!(%address, "cannot free the address: {err}");
                }
            }
        }
    }

    async fn create_sandbox(
        &self,
        task_arn: &str,
        network: &TaskNetwork,
    ) -> Result<String, String> {
        self.ensure_image().await?;
        let mut labels = self.pause_labels(Some(task_arn));
        labels.insert(LABEL_TASK_NETWORK.into(), network.network.clone());
        let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let spec = ContainerSpec {
            name: format!("berth-pause-{task_id}-{suffix}"),
            image: pause::PAUSE_IMAGE.into(),
            entrypoint: Some(vec![pause::PAUSE_PATH.into()]),
            network_mode: "none".into(),
            labels,
            ..ContainerSpec::default()
        };
        let id = self
            .runtime
            .create_container(&spec)
            .await
            .map_err(|e| e.to_string())?;
        // Written before anything else, so that a crash from here on leaves a trace to undo.
        let ipam = Path::new(HOST_IPAM_DIR);
        let record = Record {
            task_arn: task_arn.to_string(),
            config: cni::network_config(&network.network, &network.cidr, ipam),
            result: None,
            firewall: network.firewall.clone(),
        };
        self.write_record(&id, &record)?;
        self.count_record(task_arn, 1);
        Ok(id)
    }

    async fn connect_sandbox(
        &self,
        task_arn: &str,
        sandbox: &str,
    ) -> Result<InterfaceReport, String> {
        let outcome = async {
            self.runtime
                .start_container(sandbox)
                .await
                .map_err(|e| e.to_string())?;
            let pid = self
                .runtime
                .container_pid(sandbox)
                .await
                .map_err(|e| e.to_string())?;
            let mut record = self
                .read_record(sandbox)
                .ok_or_else(|| format!("the record of pause container {sandbox} is gone"))?;
            let result = self
                .plugins
                .add(&record.config, sandbox, &format!("/proc/{pid}/ns/net"))
                .await?;
            let (address, mac) = cni::interface_of(&result)
                .ok_or_else(|| format!("the bridge plugin gave no IPv4 address: {result}"))?;
            record.result = Some(result);
            self.write_record(sandbox, &record)?;
            // Filtered before any of its containers starts; its peers' tables learn of it.
            self.refresh_firewalls(Some(sandbox)).await?;
            Ok(InterfaceReport {
                private_ipv4_address: address,
                mac_address: mac,
            })
        }
        .await;
        if outcome.is_err() {
            if let Err(e) = self.release(sandbox, true).await {
                tracing::warn!(task = %task_arn, "cannot undo a failed network setup: {e}");
            }
        }
        outcome
    }
}

#[async_trait]
impl TaskNetworking for CniNetworking {
    async fn prepare(&self, task_arn: &str, network: &TaskNetwork) -> Result<Prepared, String> {
        self.ensure_forwarding(network).await?;
        // A pause container of the task exists only if a record says so (one made but not
        // yet recorded when an agent died goes when the task stops: `detach` asks by label).
        let existing = if self.has_records(task_arn) {
            self.pause_containers(Some(task_arn)).await?
        } else {
            Vec::new()
        };
        for existing in existing {
            let ready = self
                .read_record(&existing.id)
                .and_then(|r| r.result)
                .and_then(|result| cni::interface_of(&result));
            match ready {
                Some((address, mac)) if existing.running => {
                    return Ok(Prepared {
                        sandbox: existing.id,
                        ready: Some(InterfaceReport {
                            private_ipv4_address: address,
                            mac_address: mac,
                        }),
                    })
                }
                // Half made, or its namespace died with it: start again.
                _ => self.release(&existing.id, existing.running).await?,
            }
        }
        Ok(Prepared {
            sandbox: self.create_sandbox(task_arn, network).await?,
            ready: None,
        })
    }

    async fn connect(&self, task_arn: &str, sandbox: &str) -> Result<InterfaceReport, String> {
        self.connect_sandbox(task_arn, sandbox).await
    }

    async fn detach(&self, task_arn: &str) -> Result<(), String> {
        for sandbox in self.pause_containers(Some(task_arn)).await? {
            self.release(&sandbox.id, sandbox.running).await?;
        }
        Ok(())
    }

    async fn sweep(&self, keep: &HashSet<String>) {
        let containers = match self.pause_containers(None).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!("cannot list pause containers to sweep: {err}");
                return;
            }
        };
        let mut live: HashSet<String> = HashSet::new();
        for container in containers {
            let task = container
                .labels
                .get(spec::LABEL_TASK_ARN)
                .cloned()
                .unwrap_or_default();
            if keep.contains(&task) {
                live.insert(container.id);
                continue;
            }
            tracing::info!(%task, sandbox = %container.id, "releasing the network of a task no longer here");
            if let Err(err) = self.release(&container.id, container.running).await {
                tracing::warn!(%task, "cannot release a task network: {err}");
            }
        }
        let Ok(entries) = std::fs::read_dir(self.state.join("sandboxes")) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(sandbox) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .map(String::from)
            else {
                continue;
            };
            if live.contains(&sandbox) {
                continue;
            }
            // A task kept here may be attaching right now: its new container exists already.
            let kept = self
                .read_record(&sandbox)
                .is_some_and(|r| keep.contains(&r.task_arn));
            if kept && self.runtime.inspect_container(&sandbox).await.is_ok() {
                continue;
            }
            tracing::info!(%sandbox, "freeing the address of a pause container that is gone");
            if let Err(err) = self.release(&sandbox, false).await {
                tracing::warn!(%sandbox, "cannot free a task address: {err}");
            }
        }
        self.free_unowned_addresses().await;
    }
}

/// awsvpc without a host: addresses from the block, kept in memory (the fake and hollow
/// runtimes, whose containers have no namespaces).
#[derive(Debug, Default)]
pub struct MemoryNetworking {
    held: std::sync::Mutex<HashMap<String, u32>>,
}

#[async_trait]
impl TaskNetworking for MemoryNetworking {
    async fn prepare(&self, task_arn: &str, network: &TaskNetwork) -> Result<Prepared, String> {
        let cidr: berth_core::awsvpc::Cidr = network.cidr.parse()?;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let host = match held.get(task_arn) {
            Some(host) => *host,
            None => {
                let taken: HashSet<u32> = held.values().copied().collect();
                let size = 1u32 << (32 - u32::from(cidr.prefix));
                let host = (2..size - 1)
                    .find(|h| !taken.contains(h))
                    .ok_or_else(|| format!("no address left in {}", network.cidr))?;
                held.insert(task_arn.to_string(), host);
                host
            }
        };
        let address = std::net::Ipv4Addr::from(u32::from(cidr.base) + host);
        let [a, b, c, d] = address.octets();
        Ok(Prepared {
            sandbox: format!("memory-{host}"),
            ready: Some(InterfaceReport {
                private_ipv4_address: address.to_string(),
                mac_address: format!("0a:58:{a:02x}:{b:02x}:{c:02x}:{d:02x}"),
            }),
        })
    }

    async fn connect(&self, task_arn: &str, sandbox: &str) -> Result<InterfaceReport, String> {
        let _ = sandbox;
        Err(format!(
            "{task_arn}: in-memory networks are ready once prepared"
        ))
    }

    async fn detach(&self, task_arn: &str) -> Result<(), String> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(task_arn);
        Ok(())
    }

    async fn sweep(&self, keep: &HashSet<String>) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|task, _| keep.contains(task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> TaskNetwork {
        TaskNetwork {
            subnet_id: "subnet-1".into(),
            cidr: "10.9.0.0/24".into(),
            network: "berth-net0".into(),
            firewall: None,
        }
    }

    #[tokio::test]
    async fn memory_networking_holds_one_address_per_task_until_detached() {
        let net = MemoryNetworking::default();
        let address = |p: Prepared| p.ready.expect("ready").private_ipv4_address;
        let a = net.prepare("task/a", &network()).await.expect("a");
        let b = address(net.prepare("task/b", &network()).await.expect("b"));
        let again = net.prepare("task/a", &network()).await.expect("again");
        assert_eq!(again, a);
        let a = address(a);
        assert_ne!(a, b);
        net.detach("task/a").await.expect("detach");
        let c = address(net.prepare("task/c", &network()).await.expect("c"));
        assert_eq!(c, a);
        net.sweep(&HashSet::from(["task/c".to_string()])).await;
        let d = address(net.prepare("task/d", &network()).await.expect("d"));
        assert_eq!(d, b);
    }
}
