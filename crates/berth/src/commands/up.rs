//! `berth up`: Berth on this machine in one process — the server on the embedded store with
//! cluster `default`, and an agent running its tasks on the local Docker daemon.

use super::server::ServerArgs;
use anyhow::Context;
use berth_agent::AgentConfig;
use berth_core::model::cluster::Cluster;
use berth_core::model::Tag;
use berth_core::task_definition::admission::Allowances;
use clap::Args;

/// Options of `berth up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub dns: super::server::DnsArgs,
    /// Do not answer DNS for containers on the Docker bridge's gateway port 53: for a host
    /// where another resolver serves there, or a second `berth up` on one Docker daemon.
    #[arg(long)]
    pub no_container_dns: bool,
    /// Availability zone the local instance reports (`ecs.availability-zone`).
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// Offer no Fargate capacity on the local instance (by default it takes FARGATE tasks).
    #[arg(long)]
    pub no_fargate: bool,
    #[command(flatten)]
    pub network: super::agent::TaskNetworkArgs,
    #[command(flatten)]
    pub allow: super::agent::AllowArgs,
}

/// The address on the Docker bridge's gateway, port 53, where this host's containers can
/// ask the DNS server for Cloud Map names (`dnsServers` in a container definition), when the
/// server answers DNS at all, the bridge has a gateway and this process may bind port 53 there
/// (as root); None otherwise, saying why.
async fn container_dns(
    runtime: &dyn berth_agent::runtime::ContainerRuntime,
    config: &berth_server::ServerConfig,
) -> Option<std::net::SocketAddr> {
    if config.dns_listen.is_empty() {
        return None;
    }
    let gateway = match runtime.bridge_gateway().await {
        Some(gateway) => gateway,
        None => docker0_address()?,
    };
    let addr = std::net::SocketAddr::new(gateway, 53);
    if config.dns_listen.contains(&addr) {
        return None;
    }
    // A trial bind, so that a user who cannot bind port 53 gets a note, not an error. An
    // address another process holds now is kept: the server takes it once it is free.
    match std::net::UdpSocket::bind(addr) {
        Ok(_) => Some(addr),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            println!(
                "Note: {addr} is held by another process; Berth answers DNS there for \
                 containers once it is free."
            );
            Some(addr)
        }
        Err(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::PermissionDenied => "; port 53 needs root",
                _ => "",
            };
            println!(
                "Note: containers cannot ask Berth's DNS for Cloud Map names on {addr} ({e}{why}). \
                 Cloud Map names still resolve on {}.",
                config
                    .dns_listen
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            None
        }
    }
}

/// docker0's IPv4 address, for Docker daemons whose bridge network names no gateway: the
/// source address of the route into docker0's subnet (from the kernel's routing table).
fn docker0_address() -> Option<std::net::IpAddr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let network = routes.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next()? != "docker0" {
            return None;
        }
        // The kernel prints the address's bytes read as a native-endian number.
        let destination = u32::from_str_radix(fields.next()?, 16).ok()?;
        Some(u32::from(std::net::Ipv4Addr::from(
            destination.to_ne_bytes(),
        )))
    })?;
    // Any host of the subnet: the kernel picks docker0's address to reach it. Nothing is sent.
    let peer = std::net::Ipv4Addr::from(network.checked_add(2)?);
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect((peer, 9)).ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// Checks Docker, starts the server and makes sure cluster `default` exists, then runs the
/// agent beside it until Ctrl-C or SIGTERM. Task containers keep running after it stops.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let runtime = super::agent::connect_docker()
        .await
        .context("berth up needs a Docker daemon to run tasks on")?;
    let mut config = args.server.config()?;
    config.dns_listen = args.dns.addrs();
    if !args.no_container_dns {
        if let Some(addr) = container_dns(&*runtime, &config).await {
            config.dns_listen.push(addr);
        }
    }
    let data_dir = config
        .data_dir
        .clone()
        .unwrap_or_else(super::default_data_dir);
    let server = berth_server::serve(config)
        .await
        .context("berth could not start")?;
    let endpoint = server.endpoint();
    let cluster = berth_server::handlers::clusters::ensure_cluster(&server.app(), "default")
        .await
        .context("could not create cluster 'default'")?;
    // The local agent runs as an IAM user allowed only an agent's actions.
    let credentials =
        berth_server::iam::agent_user::ensure_agent_user(&server.app(), "berth-up-agent")
            .await
            .context("could not set up the agent's IAM user")?;
    let mut agent_config =
        AgentConfig::new(&endpoint, "default", data_dir.join("agent"), credentials);
    agent_config.availability_zone = args.availability_zone;
    agent_config.allowances = args.allow.allowances();
    args.network.apply(&mut agent_config, !args.no_fargate);
    let ca = data_dir.join(berth_server::tls::CA_FILE);
    if endpoint.starts_with("https://") && ca.exists() {
        agent_config.ca = Some(ca.clone());
    }
    let credentials_file = data_dir.join(berth_server::auth::CREDENTIALS_FILE);
    println!(
        "Berth is up. ECS endpoint: {endpoint}  (cluster: default, data: {})",
        data_dir.display()
    );
    println!("Every request must be signed. To use the account's root user's keys:");
    println!(
        "  export AWS_PROFILE={} AWS_SHARED_CREDENTIALS_FILE={} AWS_ENDPOINT_URL={endpoint} AWS_DEFAULT_REGION={}",
        berth_server::auth::PROFILE,
        credentials_file.display(),
        args.server.region
    );
    if endpoint.starts_with("https://") && ca.exists() {
        println!("  export AWS_CA_BUNDLE={}", ca.display());
    }
    println!("Try:  aws ecs list-container-instances");
    print_admission_hint(&cluster, &agent_config.allowances);
    let agent = berth_agent::run(agent_config, runtime, super::shutdown_signal());
    let result = agent.await;
    println!("Stopping Berth (task containers keep running).");
    server
        .shutdown()
        .await
        .context("server stopped with an error")?;
    result.context("the agent stopped with an error")?;
    Ok(())
}

/// When the agent allows what cluster `default`'s tags do not, says how to tag the cluster:
/// the server admits a task only where both allow it.
fn print_admission_hint(cluster: &Cluster, allowances: &Allowances) {
    let present = cluster.tags.clone().unwrap_or_default();
    let missing: Vec<Tag> = allowances
        .to_cluster_tags()
        .into_iter()
        .filter(|tag| !present.contains(tag))
        .collect();
    if missing.is_empty() {
        return;
    }
    let shorthand: Vec<String> = missing
        .iter()
        .map(|t| {
            format!(
                "'key={},value={}'",
                t.key.as_deref().unwrap_or_default(),
                t.value.as_deref().unwrap_or_default()
            )
        })
        .collect();
    println!("The agent's --allow-* flags take effect once cluster default allows the same:");
    println!(
        "  aws ecs tag-resource --resource-arn {} --tags {}",
        cluster.cluster_arn.as_deref().unwrap_or("default"),
        shorthand.join(" ")
    );
}
