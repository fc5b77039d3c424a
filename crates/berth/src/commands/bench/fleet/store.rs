//! Where the fleet's server keeps its store: the data dir's SQLite database, or an etcd
//! cluster of its own that the benchmark starts on loopback (Debian's `etcd`) for one run and
//! kills after it, so that both stores are measured on the same machine with the same fleet.

use clap::ValueEnum;

/// `--store` of `berth bench fleet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// The data dir's SQLite database.
    Sqlite,
    /// A local etcd cluster of --etcd-members members.
    Etcd,
    /// The same fleet on SQLite, then on etcd: both figures and their ratio.
    Both,
}

impl StoreChoice {
    /// The stores to measure, in order.
    pub fn backends(self) -> Vec<Backend> {
        match self {
            StoreChoice::Sqlite => vec![Backend::Sqlite],
            StoreChoice::Etcd => vec![Backend::Etcd],
            StoreChoice::Both => vec![Backend::Sqlite, Backend::Etcd],
        }
    }

    /// Fails at once, before any fleet runs, when this berth cannot keep a store in etcd.
    pub fn check_available(self) -> anyhow::Result<()> {
        if self.backends().contains(&Backend::Etcd) && !cfg!(feature = "etcd") {
            return Err(etcd_not_built());
        }
        Ok(())
    }
}

/// The error of `--store etcd` in a berth built without etcd: how to build one with it.
fn etcd_not_built() -> anyhow::Error {
    anyhow::anyhow!(
        "--store etcd and --store both need a berth built with etcd support: \
         `cargo build --release -p berth --features etcd` (the build needs protoc, Debian's \
         protobuf-compiler)"
    )
}

/// One store a fleet runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Etcd,
}

impl Backend {
    /// Its name in the figures.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Etcd => "etcd",
        }
    }

    /// What it is, for the benchmark's first line.
    pub fn describe(self, etcd_members: usize) -> String {
        match self {
            Backend::Sqlite => "store in the data dir's SQLite database".to_string(),
            Backend::Etcd => format!(
                "store in etcd ({etcd_members} member{} on loopback, started by the benchmark)",
                if etcd_members == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Which store a measured fleet uses, and how big an etcd cluster to start for it.
#[derive(Debug, Clone, Copy)]
pub struct StoreSpec {
    pub backend: Backend,
    pub etcd_members: usize,
}

impl StoreSpec {
    /// Starts the store (nothing to start for SQLite); it lasts as long as the value returned.
    pub async fn start(self) -> anyhow::Result<RunningStore> {
        match self.backend {
            Backend::Sqlite => Ok(RunningStore::Sqlite),
            Backend::Etcd => start_etcd(self.etcd_members).await,
        }
    }
}

/// A store as long as one fleet runs on it; a local etcd cluster is killed when this is
/// dropped (the server child restarted during the run finds its data still there).
#[derive(Debug)]
pub enum RunningStore {
    Sqlite,
    #[cfg(feature = "etcd")]
    Etcd(berth_store::etcd::local::LocalEtcd),
}

impl RunningStore {
    /// The `--store` URL the server is given; `None`: its data dir's SQLite database.
    pub fn server_store_url(&self) -> Option<String> {
        match self {
            RunningStore::Sqlite => None,
            #[cfg(feature = "etcd")]
            RunningStore::Etcd(cluster) => Some(cluster.url(ETCD_PREFIX)),
        }
    }
}

/// Prefix of the fleet's keys in etcd.
#[cfg(feature = "etcd")]
const ETCD_PREFIX: &str = "berth-fleet";

#[cfg(feature = "etcd")]
async fn start_etcd(members: usize) -> anyhow::Result<RunningStore> {
    use anyhow::Context;
    // Starting waits (blocking) for the members to elect a leader.
    let cluster =
        tokio::task::spawn_blocking(move || berth_store::etcd::local::LocalEtcd::start(members))
            .await
            .context("starting etcd")?
            .context("cannot start a local etcd cluster for --store etcd")?;
    Ok(RunningStore::Etcd(cluster))
}

#[cfg(not(feature = "etcd"))]
async fn start_etcd(_members: usize) -> anyhow::Result<RunningStore> {
    Err(etcd_not_built())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_measures_sqlite_first_then_etcd() {
        assert_eq!(StoreChoice::Sqlite.backends(), [Backend::Sqlite]);
        assert_eq!(StoreChoice::Etcd.backends(), [Backend::Etcd]);
        assert_eq!(
            StoreChoice::Both.backends(),
            [Backend::Sqlite, Backend::Etcd]
        );
    }

    #[test]
    fn sqlite_is_always_available() {
        assert!(StoreChoice::Sqlite.check_available().is_ok());
    }

    #[cfg(not(feature = "etcd"))]
    #[test]
    fn etcd_without_the_feature_says_how_to_build_it() {
        for choice in [StoreChoice::Etcd, StoreChoice::Both] {
            let err = choice
                .check_available()
                .expect_err("etcd is not compiled in");
            assert!(err.to_string().contains("--features etcd"), "{err}");
        }
    }

    /// The fleet's own building blocks (agents, load, check) on a server in this process whose
    /// store is the benchmark's local etcd: every task runs exactly once, where it was placed.
    /// (`measure` runs the same steps with the server in a child process given the same URL.)
    #[cfg(feature = "etcd")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_fleet_runs_each_task_exactly_once_on_a_local_etcd() {
        use super::super::agents::Fleet;
        use super::super::api::{Api, CLUSTER};
        use super::super::{load, verify, FleetResult, FleetSize};
        use serde_json::json;
        use std::time::Duration;

        let size = FleetSize {
            instances: 3,
            tasks: 30,
            services: 0,
        };
        let store = StoreSpec {
            backend: Backend::Etcd,
            etcd_members: 1,
        }
        .start()
        .await
        .expect("a local etcd starts");
        let url = store.server_store_url().expect("an etcd URL");
        let etcd = berth_store::location::EtcdConfig::from_url(&url).expect("a valid URL");
        assert_eq!(etcd.prefix, format!("/{ETCD_PREFIX}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let server_dir = dir.path().join("server");
        let server = berth_server::serve(berth_server::ServerConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            data_dir: Some(server_dir.clone()),
            etcd: Some(etcd),
            ..berth_server::ServerConfig::default()
        })
        .await
        .expect("a server on etcd");
        let endpoint = format!("http://{}", server.addr());
        let credentials = crate::commands::server_credentials(&server_dir).expect("root keys");
        let api = Api::new(&endpoint, credentials.clone()).expect("a client");
        api.call("CreateCluster", json!({"clusterName": CLUSTER}))
            .await
            .expect("CreateCluster");
        let agents_dir = dir.path().join("agents");
        let mut fleet = Fleet::start(&endpoint, size.instances, &agents_dir, &credentials);
        fleet
            .wait_connected(&api, Duration::from_secs(60))
            .await
            .expect("the agents connect");
        api.call("RegisterTaskDefinition", load::task_definition())
            .await
            .expect("RegisterTaskDefinition");
        let load = load::place(&api, size.tasks, 4, Duration::from_secs(120))
            .await
            .expect("the load runs");
        let check = verify::verify(&api, fleet.runtimes(), &load.placed)
            .await
            .expect("the check runs");
        let result = FleetResult {
            size,
            load,
            stream: (0, 0, 0),
            services: None,
            verification: Some(check),
            server_rss: (0.0, 0.0),
            process_rss: (0.0, 0.0),
            restart: None,
        };
        assert_eq!(result.problems(), Vec::<String>::new());
        assert_eq!(result.load.running, size.tasks);
        fleet.stop().await.expect("the agents stop");
        server.shutdown().await.expect("the server stops");
    }
}
