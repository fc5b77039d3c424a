//! `berth server`: the control plane alone, serving the ECS API until SIGTERM or Ctrl-C.

use anyhow::Context;
use berth_server::ServerConfig;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Options of `berth server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to serve the ECS API on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: SocketAddr,
    /// Directory of the store (default: $BERTH_DATA_DIR or ~/.local/share/berth).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where the store is: `sqlite://DIR` (the data dir's database, the default) or an etcd
    /// cluster, `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (`etcds://` for TLS). With etcd
    /// the data dir keeps only the server's keys and logs.
    #[arg(long, value_name = "URL", value_parser = parse_store)]
    pub store: Option<berth_store::location::Location>,
    #[command(flatten)]
    pub etcd: super::store::EtcdArgs,
    /// This replica's name among the servers sharing an etcd store (default: HOSTNAME:PORT);
    /// the leader holds the etcd key `/control/leader` under it.
    #[arg(long, value_name = "NAME")]
    pub replica_name: Option<String>,
    /// Region used in ARNs.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Account id used in ARNs.
    #[arg(long, default_value = "000000000000")]
    pub account_id: String,
    /// How long STOPPED tasks stay describable before they are purged (e.g. 1h, 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = super::parse_duration)]
    pub stopped_task_retention: std::time::Duration,
    /// How long an agent may stay silent (no heartbeat) before its instance shows
    /// agentConnected=false and receives no new tasks. Agents heartbeat every 5 s.
    #[arg(long, default_value = "20s", value_parser = super::parse_duration)]
    pub agent_grace: std::time::Duration,
    /// Connections open at once; beyond it new ones wait until one closes.
    #[arg(long, default_value_t = 16_000)]
    pub max_connections: usize,
    /// Time a client has to send a request's head, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = super::parse_duration)]
    pub header_read_timeout: std::time::Duration,
    /// Requests per second each principal may make on average (beyond: ThrottlingException).
    #[arg(long, default_value_t = 20_000.0)]
    pub rate_limit: f64,
    /// Requests a principal may make at once above its rate.
    #[arg(long, default_value_t = 40_000.0)]
    pub rate_burst: f64,
    /// Desired-state streams each principal may hold open.
    #[arg(long, default_value_t = 10_000)]
    pub max_streams_per_principal: usize,
    /// TLS certificate chain (PEM) of the endpoint; with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS with Berth's own CA (DATA_DIR/tls/ca.pem) even on a loopback address. On any
    /// other address it is the default when no --tls-cert is given.
    #[arg(long)]
    pub tls: bool,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long, conflicts_with_all = ["tls", "tls_cert"])]
    pub insecure_http: bool,
    /// Another name or address for the own CA's server certificate; repeatable.
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_sans: Vec<String>,
    /// The IPv4 block of the default network awsvpc tasks join (any subnet id that no
    /// `--subnet` names).
    #[arg(long, value_name = "CIDR", default_value = berth_core::awsvpc::DEFAULT_CIDR)]
    pub awsvpc_cidr: String,
    /// A network of its own for awsvpc tasks given this subnet id, e.g.
    /// `--subnet subnet-0abc=10.201.0.0/24`; repeatable. Blocks may not overlap.
    #[arg(long = "subnet", value_name = "SUBNET_ID=CIDR")]
    pub subnets: Vec<String>,
}

/// Options of `berth server`: the server's, and where it answers DNS.
#[derive(Debug, Args)]
pub struct ServerCommandArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Where the DNS server answering for Cloud Map's DNS namespaces listens (`berth server`,
/// `berth up`; not the benchmarks' servers).
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Where the DNS server answering for Cloud Map DNS namespaces listens, UDP and TCP
    /// (`dig @127.0.0.1 -p 8053 SERVICE.NAMESPACE`); repeatable, `off` for none. `berth up`
    /// also listens on the Docker bridge's gateway port 53 when it may (as root), for
    /// containers.
    #[arg(
        long = "dns-listen",
        value_name = "ADDR:PORT|off",
        default_value = "127.0.0.1:8053",
        value_parser = parse_dns_listen
    )]
    pub dns_listen: Vec<DnsListen>,
}

impl DnsArgs {
    /// The addresses to answer DNS on (none for `off`).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.dns_listen.iter().filter_map(|d| d.0).collect()
    }
}

/// A `--dns-listen` value: an address, or `off` (none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsListen(pub Option<SocketAddr>);

fn parse_store(text: &str) -> Result<berth_store::location::Location, String> {
    berth_store::location::Location::parse(text)
}

fn parse_dns_listen(text: &str) -> Result<DnsListen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(DnsListen(None));
    }
    text.parse()
        .map(|addr| DnsListen(Some(addr)))
        .map_err(|_| format!("{text:?} is neither ADDR:PORT (say 127.0.0.1:8053) nor off"))
}

impl ServerArgs {
    /// The server configuration these options describe.
    pub fn config(&self) -> anyhow::Result<ServerConfig> {
        let subnets = berth_core::awsvpc::Subnets::new(&self.awsvpc_cidr, &self.subnets)
            .map_err(|e| anyhow::anyhow!("--awsvpc-cidr / --subnet: {e}"))?;
        let (data_dir, etcd) = self.store_config()?;
        Ok(ServerConfig {
            listen: self.listen,
            data_dir: Some(data_dir),
            etcd,
            replica_name: self.replica_name.clone(),
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            stopped_task_retention: self.stopped_task_retention,
            agent_grace: self.agent_grace,
            limits: berth_server::limits::Limits {
                max_connections: self.max_connections,
                header_read_timeout: self.header_read_timeout,
                requests_per_second: self.rate_limit,
                burst: self.rate_burst,
                max_streams_per_principal: self.max_streams_per_principal,
            },
            tls: self.tls_mode(),
            dns_listen: Vec::new(),
            subnets,
        })
    }
}

impl ServerArgs {
    /// The data dir, and the etcd cluster when the store is there.
    fn store_config(&self) -> anyhow::Result<(PathBuf, Option<berth_store::location::EtcdConfig>)> {
        use berth_store::location::Location;
        let etcd_options = self.etcd.given();
        match &self.store {
            Some(Location::Sqlite(dir)) => {
                if self.data_dir.as_ref().is_some_and(|d| d != dir) {
                    anyhow::bail!(
                        "--store sqlite://{} and --data-dir {} name two places; give one",
                        dir.display(),
                        self.data_dir
                            .as_ref()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default()
                    );
                }
                if etcd_options {
                    anyhow::bail!("--etcd-ca, --etcd-cert and --etcd-user need --store etcd://...");
                }
                Ok((dir.clone(), None))
            }
            Some(location @ Location::Etcd(_)) => {
                let Location::Etcd(config) = self.etcd.apply(location)? else {
                    anyhow::bail!("--store {location} is not an etcd cluster");
                };
                let dir = self
                    .data_dir
                    .clone()
                    .unwrap_or_else(super::default_data_dir);
                Ok((dir, Some(config)))
            }
            None if etcd_options => {
                anyhow::bail!("--etcd-ca, --etcd-cert and --etcd-user need --store etcd://...")
            }
            None => Ok((
                self.data_dir
                    .clone()
                    .unwrap_or_else(super::default_data_dir),
                None,
            )),
        }
    }

    /// TLS as the options say: the operator's certificate, else Berth's own CA when asked or
    /// when listening beyond loopback, else plain HTTP.
    fn tls_mode(&self) -> berth_server::tls::Tls {
        use berth_server::tls::Tls;
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if self.tls || (!self.listen.ip().is_loopback() && !self.insecure_http) => {
                Tls::OwnCa {
                    extra_names: self.tls_sans.clone(),
                }
            }
            _ => Tls::Off,
        }
    }
}

/// Prints who leads whenever it changes (a shared store only): this replica, or which other.
fn follow_leadership(app: std::sync::Arc<berth_server::app::App>) {
    if app.election.is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut leads = app.leadership.watch();
        let mut last = String::new();
        loop {
            let line = berth_server::replicas::leader_line(&app).await;
            if line != last {
                println!("berth server: {line}");
                last = line;
            }
            // Looked at again when this replica's part changes, and every few seconds.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), leads.changed()).await;
        }
    });
}

/// Runs the server until asked to stop.
pub async fn run(args: ServerCommandArgs) -> anyhow::Result<()> {
    let mut config = args.server.config()?;
    config.dns_listen = args.dns.addrs();
    let data_dir = config.data_dir.clone();
    let server = berth_server::serve(config)
        .await
        .context("berth server could not start")?;
    let store = match &args.server.store {
        Some(location @ berth_store::location::Location::Etcd(_)) => location.to_string(),
        _ => format!(
            "sqlite://{}",
            data_dir
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ),
    };
    tracing::info!(
        endpoint = %server.endpoint(),
        data_dir = %data_dir.as_deref().map(|d| d.display().to_string()).unwrap_or_default(),
        store = %store,
        "berth server is serving the ECS API"
    );
    println!("berth server store: {store}");
    follow_leadership(server.app().clone());
    println!("berth server listening on {}", server.endpoint());
    if let Some(file) = server.app().credentials_file() {
        tracing::info!(credentials = %file.display(), "the root user's access key (profile berth) is in this file");
        println!(
            "Root user's keys: export AWS_PROFILE={} AWS_SHARED_CREDENTIALS_FILE={}",
            berth_server::auth::PROFILE,
            file.display()
        );
    }
    super::shutdown_signal().await;
    tracing::info!("shutting down");
    server
        .shutdown()
        .await
        .context("server stopped with an error")?;
    Ok(())
}
