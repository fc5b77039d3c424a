//! The application state every handler receives: the store, the state cache over it, ARN minting and
//! the clock, with the read and read-modify-write helpers handlers are built from.

use crate::error::ApiError;
use crate::handlers::tasks::{placement, run_queue};
use crate::state::{State, StateCache};
use berth_core::arn::{cluster_name_of, ArnContext};
use berth_core::model::cluster::Cluster;
use berth_core::model::task::Task;
use berth_core::model::ClusterStatus;
use berth_store::typed::{decode, encode, Versioned};
use berth_store::{keys, Compare, SqliteStore, Store, StoreError, Txn, TxnResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:7700` by default; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Directory of the database; `None` keeps everything in memory (tests only).
    pub data_dir: Option<PathBuf>,
    /// Region in ARNs.
    pub region: String,
    /// Account id in ARNs.
    pub account_id: String,
    /// How long STOPPED tasks stay describable before they are purged.
    pub stopped_task_retention: std::time::Duration,
    /// How long an agent may stay silent before its instance is `agentConnected=false`.
    pub agent_grace: std::time::Duration,
    /// What one client may take of the server.
    pub limits: crate::limits::Limits,
    /// Whether (and with which certificate) the endpoint speaks TLS.
    pub tls: crate::tls::Tls,
    /// Where the DNS server answering for Cloud Map's DNS namespaces listens, UDP and TCP
    /// ([`crate::dns`]); none by default (the CLI's default is `127.0.0.1:8053`).
    pub dns_listen: Vec<SocketAddr>,
    /// The networks awsvpc tasks join: a subnet id names one (`--subnet ID=CIDR`); any other
    /// id joins the default one.
    pub subnets: berth_core::awsvpc::Subnets,
    /// An etcd cluster to keep the store in instead of the data dir's SQLite database (the
    /// data dir still holds the server's keys and logs).
    pub etcd: Option<berth_store::location::EtcdConfig>,
    /// This replica's name among the servers sharing a store (by default host:port).
    pub replica_name: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: None,
            region: "us-east-1".to_string(),
            account_id: "000000000000".to_string(),
            stopped_task_retention: std::time::Duration::from_secs(24 * 3600),
            agent_grace: std::time::Duration::from_secs(20),
            limits: crate::limits::Limits::default(),
            tls: crate::tls::Tls::Off,
            dns_listen: Vec::new(),
            subnets: berth_core::awsvpc::Subnets::default(),
            etcd: None,
            replica_name: None,
        }
    }
}

/// Creates the data dir (and its parents) if missing, and makes it accessible to its owner
/// only: it holds the whole store.
fn owner_only_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Shared state of the server.
#[derive(Debug)]
pub struct App {
    pub store: Arc<dyn Store>,
    /// Leader election among the replicas sharing the store (none with SQLite: one server).
    pub election: Option<Arc<dyn berth_store::Elect>>,
    /// Whether this replica leads, and the fence its controllers' writes carry.
    pub leadership: crate::replicas::Leadership,
    /// The typed, indexed cache of the store that reads are served from.
    pub state: Arc<StateCache>,
    pub arns: ArnContext,
    pub config: ServerConfig,
    /// Liveness of agents, as heartbeats and streams show it.
    pub agents: crate::gateway::AgentRegistry,
    /// The master key access key secrets are derived from.
    pub keys: crate::auth::KeyRing,
    /// Requests per principal, against `config.limits`.
    pub rate: crate::limits::RateLimiter,
    /// Open desired-state streams per principal.
    pub streams: Arc<crate::limits::StreamCount>,
    /// Exec sessions (ExecuteCommand) under way.
    pub exec: crate::exec::Sessions,
    /// Counters and histograms served on `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The bearer token `/metrics` asks for.
    pub metrics_token: String,
    /// CloudWatch Logs: groups, streams and events.
    pub logs: Arc<crate::logs::LogStore>,
    /// CloudWatch metrics: the series.
    pub cloudwatch: Arc<crate::cloudwatch::MetricStore>,
    /// What the load balancers' health checks found of their targets.
    pub elb_health: Arc<crate::elbv2::health::HealthBoard>,
    /// Woken by every ELBv2 write, so the data plane serves it at once.
    pub elb_changed: Arc<tokio::sync::Notify>,
    /// The tasks' last CPU and memory figures, as their agents report them.
    pub usage: crate::telemetry::usage::UsageBoard,
    /// Encryption at rest of secret values and SecureString parameters.
    pub vault: crate::vault::Vault,
    /// One lock per cluster, held from planning a placement to its commit.
    placement: PlacementLocks,
    /// The agents' task reports, committed together.
    pub task_writes: crate::group_write::GroupWriter,
    /// Set when the server is stopping: long-lived responses (agent streams) end.
    closing: tokio::sync::watch::Sender<bool>,
}

/// Per-cluster locks that make placements on one cluster take turns, each holding the
/// scheduler snapshot the last placement left (`placement::Kept`). The commit still guards
/// on the instances' revisions, so correctness does not rest on the lock; without it,
/// concurrent RunTasks that spread over the same least-loaded instances would nearly all lose
/// the race and plan again.
#[derive(Debug, Default)]
struct PlacementLocks {
    clusters: std::sync::Mutex<
        std::collections::HashMap<String, Arc<tokio::sync::Mutex<Option<placement::Kept>>>>,
    >,
    /// The RunTask calls of each cluster waiting for its turn, placed together by its holder.
    run_queues: std::sync::Mutex<std::collections::HashMap<String, Arc<run_queue::RunQueue>>>,
}

/// A replica's name when none is given: this host's name and the port it serves on.
fn default_replica_name(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| listen.ip().to_string());
    format!("{host}:{}", listen.port())
}

/// The etcd store `config` names, which also runs the replicas' election.
#[cfg(feature = "etcd")]
async fn open_etcd(
    config: Option<&berth_store::location::EtcdConfig>,
) -> Result<(Arc<dyn Store>, Arc<dyn berth_store::Elect>), StoreError> {
    let config = config.ok_or_else(|| StoreError::Backend("no etcd cluster given".into()))?;
    let store = Arc::new(berth_store::etcd::EtcdStore::connect(config).await?);
    Ok((store.clone(), store))
}

/// Without the `etcd` feature there is no etcd store: say how to get one.
#[cfg(not(feature = "etcd"))]
async fn open_etcd(
    _: Option<&berth_store::location::EtcdConfig>,
) -> Result<(Arc<dyn Store>, Arc<dyn berth_store::Elect>), StoreError> {
    Err(StoreError::Backend(
        "this berth was built without etcd support: build it with `cargo build --release \
         --features etcd` (which needs protoc: Debian's protobuf-compiler)"
            .into(),
    ))
}

/// When set, every store operation is recorded in the file it names, for
/// `berth store check-history` (the failover tests' linearizability check).
pub const STORE_HISTORY_ENV: &str = "BERTH_STORE_HISTORY";

/// Name of the file the SQLite store keeps in the data dir.
pub const DATABASE_FILE: &str = "berth.db";

impl App {
    /// Opens the store the config names and builds the state cache over it.
    pub async fn open(config: ServerConfig) -> Result<Arc<App>, StoreError> {
        if let Some(dir) = &config.data_dir {
            owner_only_dir(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create data dir {}: {e}", dir.display()))
            })?;
        }
        let (store, election): (Arc<dyn Store>, _) = match &config.data_dir {
            _ if config.etcd.is_some() => {
                let (store, election) = open_etcd(config.etcd.as_ref()).await?;
                if let Some(dir) = &config.data_dir {
                    crate::replicas::files::share(store.as_ref(), dir).await?;
                }
                (store, Some(election))
            }
            Some(dir) => (Arc::new(SqliteStore::open(&dir.join(DATABASE_FILE))?), None),
            None => (Arc::new(SqliteStore::open_in_memory()?), None),
        };
        let store = match std::env::var_os(STORE_HISTORY_ENV).filter(|f| !f.is_empty()) {
            Some(file) => berth_store::history::Recorder::wrap(store, std::path::Path::new(&file))
                .map_err(|e| {
                    StoreError::Backend(format!("cannot record the store's history: {e}"))
                })?,
            None => store,
        };
        let replica_name = config
            .replica_name
            .clone()
            .unwrap_or_else(|| default_replica_name(config.listen));
        let keys = crate::auth::KeyRing::open(config.data_dir.as_deref())
            .map_err(|e| StoreError::Backend(format!("cannot read or make the master key: {e}")))?;
        let state = StateCache::start(store.clone()).await?;
        let arns = ArnContext::new(config.region.clone(), config.account_id.clone());
        let metrics_token = crate::metrics::token(config.data_dir.as_deref()).map_err(|e| {
            StoreError::Backend(format!("cannot read or make the metrics token: {e}"))
        })?;
        let logs = crate::logs::LogStore::open(config.data_dir.as_deref())
            .map_err(|e| StoreError::Backend(format!("cannot open the log store: {e}")))?;
        let cloudwatch = crate::cloudwatch::MetricStore::open(config.data_dir.as_deref())
            .map_err(|e| StoreError::Backend(format!("cannot open the metric store: {e}")))?;
        let vault = crate::vault::Vault::open(config.data_dir.as_deref())
            .map_err(|e| StoreError::Backend(format!("cannot read or make the vault key: {e}")))?;
        let app = Arc::new(App {
            store,
            election,
            leadership: crate::replicas::Leadership::new(replica_name),
            state,
            arns,
            config,
            agents: Default::default(),
            keys,
            rate: Default::default(),
            streams: Default::default(),
            exec: Default::default(),
            metrics: Default::default(),
            metrics_token,
            logs: Arc::new(logs),
            cloudwatch: Arc::new(cloudwatch),
            elb_health: Arc::default(),
            elb_changed: Arc::default(),
            usage: Default::default(),
            vault,
            placement: Default::default(),
            task_writes: Default::default(),
            closing: tokio::sync::watch::channel(false).0,
        });
        crate::auth::bootstrap(&app)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot issue the root access key: {e}")))?;
        Ok(app)
    }

    /// `DATA_DIR/credentials`, which holds the root user's access key (profile `berth`);
    /// `None` for an in-memory server.
    pub fn credentials_file(&self) -> Option<PathBuf> {
        self.config
            .data_dir
            .as_ref()
            .map(|dir| dir.join(crate::auth::CREDENTIALS_FILE))
    }

    /// A receiver that turns true when the server starts stopping.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells long-lived responses that the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Takes the placement turn of `cluster`: hold it from planning to commit.
    pub async fn placement_turn(&self, cluster: &str) -> placement::Turn {
        let lock = {
            let mut clusters = self
                .placement
                .clusters
                .lock()
                .expect("placement locks poisoned");
            Arc::clone(clusters.entry(cluster.to_string()).or_default())
        };
        lock.lock_owned().await
    }

    /// The RunTask calls of `cluster` waiting for its placement turn.
    pub fn run_queue(&self, cluster: &str) -> Arc<run_queue::RunQueue> {
        let mut queues = self
            .placement
            .run_queues
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::clone(queues.entry(cluster.to_string()).or_default())
    }

    /// Now, in ECS's epoch seconds with millisecond precision.
    pub fn now(&self) -> f64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (since.as_millis() as f64) / 1000.0
    }

    /// The current state of the cache (a snapshot: it does not move while it is read).
    pub fn snapshot(&self) -> Arc<State> {
        self.state.snapshot()
    }

    /// The object at `key` as the cache holds it (tasks: see [`App::task`]).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>, ApiError> {
        let state = self.snapshot();
        if key.starts_with(keys::TASKS) {
            return state
                .key_value(key)
                .map(|kv| decode(&kv).map_err(ApiError::from))
                .transpose();
        }
        state
            .get(key)
            .map(|entry| decode_entry(key, entry))
            .transpose()
    }

    /// The task at `key`, from the decoded copy the cache keeps.
    pub fn task(&self, key: &str) -> Option<Versioned<Task>> {
        self.snapshot().task(key).map(|entry| Versioned {
            value: entry.task.clone(),
            mod_revision: entry.mod_revision,
        })
    }

    /// All objects under `prefix`, in key order (not tasks: read those from the indexes).
    pub fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<Versioned<T>>, ApiError> {
        let state = self.snapshot();
        state
            .list(prefix)
            .map(|(key, entry)| match state.key_value(key) {
                Some(kv) if key.starts_with(keys::TASKS) => decode(&kv).map_err(ApiError::from),
                _ => decode_entry(key, entry),
            })
            .collect()
    }

    /// What one transaction through [`App::commit`] may hold: the store's limits, less the
    /// guard that commit adds to a leader's controller writes (its fence).
    pub fn write_limits(&self) -> berth_store::WriteLimits {
        let mut limits = self.store.write_limits();
        limits.max_ops = limits.max_ops.saturating_sub(1).max(1);
        limits
    }

    /// Commits a transaction and waits until the state cache reflects the revision it left the store
    /// at, so a reader after this call sees the write (or, when it failed, what beat it).
    pub async fn commit(&self, txn: Txn) -> Result<TxnResult, ApiError> {
        let began = std::time::Instant::now();
        // A controller's write holds only while its replica still leads.
        let fence = self.leadership.fence_here();
        let fenced = fence.is_some();
        let txn = match fence {
            Some(fence) => txn.when(fence),
            None => txn,
        };
        let result = self.store.txn(txn).await?;
        if fenced && !result.succeeded && !self.leadership.leads() {
            return Err(ApiError::server("this replica no longer leads"));
        }
        self.state.wait_for(result.revision).await;
        self.metrics.observe_commit(began.elapsed().as_secs_f64());
        Ok(result)
    }

    /// Read-modify-write of one object under compare-on-revision, retried until no other
    /// writer interferes. `change` sees the current object (if any) and returns the new one,
    /// or an error that leaves the store untouched.
    pub async fn update<T, F>(&self, key: &str, mut change: F) -> Result<T, ApiError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<T, ApiError>,
    {
        loop {
            let current = self.get::<T>(key)?;
            let revision = current.as_ref().map_or(0, |c| c.mod_revision);
            let next = change(current.map(|c| c.value))?;
            let txn = Txn::new()
                .when(Compare::at(key, revision))
                .put(key, encode(&next));
            if self.commit(txn).await?.succeeded {
                return Ok(next);
            }
        }
    }

    /// The name of the cluster a request's `cluster` field names (`default` when absent).
    pub fn cluster_name(&self, reference: Option<&str>) -> Result<String, ApiError> {
        let reference = reference.unwrap_or("default");
        cluster_name_of(reference)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "'{reference}' is not a cluster name or cluster ARN."
                ))
            })
    }

    /// The ACTIVE cluster a request's `cluster` field names, or `ClusterNotFoundException`.
    pub fn active_cluster(&self, reference: Option<&str>) -> Result<Versioned<Cluster>, ApiError> {
        let name = self.cluster_name(reference)?;
        match self.get::<Cluster>(&keys::cluster(&name))? {
            Some(cluster) if cluster.value.status == Some(ClusterStatus::Active) => Ok(cluster),
            _ => Err(ApiError::cluster_not_found()),
        }
    }
}

/// Decodes a cached value as `T`.
fn decode_entry<T: DeserializeOwned>(
    key: &str,
    entry: &crate::state::Entry,
) -> Result<Versioned<T>, ApiError> {
    let value = serde_json::from_slice(&entry.value).map_err(|e| {
        ApiError::from(StoreError::Decode {
            key: key.to_string(),
            message: e.to_string(),
        })
    })?;
    Ok(Versioned {
        value,
        mod_revision: entry.mod_revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_data_dir_is_accessible_to_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("new").join("data");
        // First a new dir, then one left open to others (0755), which is tightened.
        for _ in 0..2 {
            let config = ServerConfig {
                data_dir: Some(dir.clone()),
                ..ServerConfig::default()
            };
            drop(App::open(config).await.expect("open"));
            let mode = std::fs::metadata(&dir).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
}
