//! `berth`: one binary for the server, the host agent, the all-in-one local mode and the
//! human CLI. Each subcommand lives in its own file under `commands/`.

mod commands;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc malloc: under fleet load glibc spent about a third of the
/// server's CPU in `malloc_consolidate` and its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-hosted container orchestrator that speaks the Amazon ECS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host agent: join a cluster and run its tasks on the local Docker daemon.
    Agent(commands::agent::AgentArgs),
    /// Run the control plane: the ECS API over a durable store.
    Server(commands::server::ServerCommandArgs),
    /// Run Berth on this machine in one process, with cluster `default`.
    Up(commands::up::UpArgs),
    /// Run a command in a running container of a task (ExecuteCommand), interactively or not;
    /// exits with the command's exit code.
    Exec(commands::exec::ExecArgs),
    /// List a cluster's tasks: status, health, ports, age, why they stopped (--output json:
    /// the described tasks).
    Ps(commands::ps::PsArgs),
    /// List a cluster's services: counts, task definition, rollout state (--output json: the
    /// described services).
    Services(commands::services::ServicesArgs),
    /// List a cluster's container instances: agent connected, tasks, CPU and memory free
    /// (--output json: the described instances).
    Instances(commands::instances::InstancesArgs),
    /// Show any ECS resource (ARN, or a task definition's family[:revision]) as its Describe
    /// call does.
    Inspect(commands::inspect::InspectArgs),
    /// Print a service's events, and with --follow new ones as they come (--output json: JSON
    /// Lines of the ServiceEvent objects).
    Events(commands::events::EventsArgs),
    /// Print what a task's containers wrote (awslogs), and with --follow new lines as they come
    /// (--output json: JSON Lines of the CloudWatch Logs events).
    Logs(commands::logs::LogsArgs),
    /// Run an image as a task, like `docker run -d`, and follow it until it runs (--output
    /// json: the described tasks).
    Run(commands::run::RunArgs),
    /// Roll a new image out to a service, following the deployment live (--output json: JSON
    /// Lines of progress, then the outcome and the service).
    Deploy(commands::deploy::DeployArgs),
    /// Change a service's desired count, following the change live (--output json: JSON Lines
    /// of progress, then the outcome and the service).
    Scale(commands::deploy::ScaleArgs),
    /// Run a Compose file's services as ECS services: up, down, or convert (print the plan).
    #[command(subcommand)]
    Compose(commands::compose::ComposeCommand),
    /// Rotate the master key encrypting the server's secrets and SecureStrings, while it runs
    /// (the account's root user only).
    RotateVaultKey(commands::vault::RotateArgs),
    /// Measure Berth against its targets and print the figures.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Copy a store to another backend (SQLite to etcd) and prove the copy, or checksum one.
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(err) => {
            eprintln!("berth: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command; its exit code (0 but for `berth exec`, which exits with the command's).
fn run() -> anyhow::Result<i32> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Agent(args) => commands::agent::run(args).await.map(|()| 0),
            Command::Server(args) => commands::server::run(args).await.map(|()| 0),
            Command::Up(args) => commands::up::run(args).await.map(|()| 0),
            Command::Exec(args) => commands::exec::run(args).await,
            Command::Ps(args) => commands::ps::run(args).await.map(|()| 0),
            Command::Services(args) => commands::services::run(args).await.map(|()| 0),
            Command::Instances(args) => commands::instances::run(args).await.map(|()| 0),
            Command::Inspect(args) => commands::inspect::run(args).await.map(|()| 0),
            Command::Events(args) => commands::events::run(args).await.map(|()| 0),
            Command::Logs(args) => commands::logs::run(args).await.map(|()| 0),
            Command::Run(args) => commands::run::run(args).await,
            Command::Deploy(args) => commands::deploy::deploy(args).await,
            Command::Scale(args) => commands::deploy::scale(args).await,
            Command::Compose(command) => commands::compose::run(command).await,
            Command::RotateVaultKey(args) => commands::vault::rotate(args).await.map(|()| 0),
            Command::Bench(command) => commands::bench::run(command).await.map(|()| 0),
            Command::Store(command) => commands::store::run(command).await,
        }
    })
}
