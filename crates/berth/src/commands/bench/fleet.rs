//! `berth bench fleet` measures the control plane under a fleet: a real `berth server` (a
//! child process, real SQLite, real HTTP) and N real agents in this process on hollow
//! runtimes (`berth_agent::runtime::hollow`), which place K tasks through RunTask from
//! concurrent callers while a reader describes tasks. It prints end-to-end tasks/s, RunTask
//! and DescribeTasks latencies, desired-state stream bytes per task, the server's memory and
//! its restart time, and fails (non-zero exit) when any task is missing, not RUNNING or
//! duplicated. `--scaling` prints e2e tasks/s for several fleet sizes instead. `--store`
//! puts the server's store in etcd instead of SQLite (a local cluster the benchmark starts),
//! or runs the same fleet on both and prints etcd's e2e tasks/s as a share of SQLite's.

mod agents;
mod api;
mod load;
pub(crate) mod server;
mod services;
mod store;
mod stream;
mod verify;

pub use server::{serve as serve_fleet_server, FleetServerArgs};

use super::quantile;
use agents::Fleet;
use anyhow::{bail, Context};
use api::{Api, CLUSTER};
use clap::Args;
use load::LoadOutcome;
use serde_json::json;
use server::ServerProcess;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use store::{Backend, StoreChoice, StoreSpec};
use verify::Verification;

/// Options of `berth bench fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Hollow agents (container instances).
    #[arg(long, default_value_t = 100)]
    pub instances: usize,
    /// Tasks to place with RunTask.
    #[arg(long, default_value_t = 2000)]
    pub tasks: usize,
    /// Services to create once the tasks run (together about a tenth of --tasks more tasks).
    #[arg(long, default_value_t = 0)]
    pub services: usize,
    /// Print e2e tasks/s for 100, 1000 and --instances agents at --tasks tasks instead.
    #[arg(long)]
    pub scaling: bool,
    /// Also print the correctness figures, `check ...` lines (the run fails either way when
    /// a check fails).
    #[arg(long)]
    pub check: bool,
    /// Concurrent RunTask callers.
    #[arg(long, default_value_t = 16)]
    pub callers: usize,
    /// Instances whose desired-state stream bytes are counted.
    #[arg(long, default_value_t = 10)]
    pub stream_sample: usize,
    /// How long all tasks may take to be RUNNING (default: 60 s + 50 ms per task).
    #[arg(long, value_parser = crate::commands::parse_duration)]
    pub timeout: Option<Duration>,
    /// Where the server keeps its store: the data dir's SQLite database, a local etcd
    /// cluster the benchmark starts (needs a berth built with `--features etcd` and the
    /// `etcd` binary), or both, one after the other, with etcd's e2e tasks/s as a share of
    /// SQLite's.
    #[arg(long, value_enum, default_value_t = StoreChoice::Sqlite)]
    pub store: StoreChoice,
    /// Members of the local etcd cluster (--store etcd or both).
    #[arg(long, default_value_t = 1)]
    pub etcd_members: usize,
}

/// How big a fleet to measure.
#[derive(Debug, Clone, Copy)]
pub struct FleetSize {
    pub instances: usize,
    pub tasks: usize,
    pub services: usize,
}

impl FleetSize {
    /// Tasks each service runs: together about a tenth of the tasks.
    fn service_tasks_each(&self) -> usize {
        (self.tasks / 10)
            .checked_div(self.services)
            .map_or(0, |each| each.max(1))
    }

    /// Every task that should run in the end.
    fn expected_running(&self) -> usize {
        self.tasks + self.services * self.service_tasks_each()
    }
}

/// How to measure.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub callers: usize,
    pub stream_sample: usize,
    pub timeout: Option<Duration>,
    /// Measure the server's restart too.
    pub restart: bool,
    /// Where the server keeps its store.
    pub store: StoreSpec,
}

/// What a run measured and found.
#[derive(Debug)]
pub struct FleetResult {
    pub size: FleetSize,
    pub load: LoadOutcome,
    /// Bytes on the counted streams, the instances counted, the tasks placed on them.
    pub stream: (u64, usize, usize),
    /// How long the services took to be stable.
    pub services: Option<Duration>,
    /// The final check; `None` when the load did not complete.
    pub verification: Option<Verification>,
    /// `VmRSS` and peak `VmHWM` of the server process, MiB.
    pub server_rss: (f64, f64),
    /// `VmRSS` and peak of this process (the N hollow agents and the load), MiB.
    pub process_rss: (f64, f64),
    /// From the restarted server's start to it listing every task.
    pub restart: Option<Duration>,
}

impl FleetResult {
    /// Everything that went wrong; empty when the run is correct.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let load = &self.load;
        let want = self.size.tasks;
        if load.unplaced > 0 {
            let reasons: Vec<String> = load
                .failures
                .iter()
                .map(|(why, n)| format!("{why} ({n} tasks)"))
                .collect();
            problems.push(format!(
                "{} of {want} tasks were not placed: {}",
                load.unplaced,
                reasons.join("; ")
            ));
        }
        let unique: BTreeSet<&str> = load.placed.iter().map(|p| p.task_arn.as_str()).collect();
        if unique.len() != load.placed.len() {
            problems.push(format!(
                "RunTask answered {} task ARNs more than once",
                load.placed.len() - unique.len()
            ));
        }
        if let Some(first) = load.not_running.first() {
            problems.push(format!(
                "{} tasks were not RUNNING in time (e.g. {first})",
                load.not_running.len()
            ));
        }
        if let Some(first) = load.stopped.first() {
            problems.push(format!(
                "{} tasks STOPPED (e.g. {first})",
                load.stopped.len()
            ));
        }
        if load.running != want && load.not_running.is_empty() && load.unplaced == 0 {
            problems.push(format!("{} of {want} tasks seen RUNNING", load.running));
        }
        let Some(check) = &self.verification else {
            return problems;
        };
        let expected = self.size.expected_running();
        let mut count = |what: &str, n: usize| {
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        };
        count("task ARNs listed twice by ListTasks", check.listed_twice);
        count("tasks run by two containers", check.run_twice);
        count(
            "placed tasks missing from ListTasks",
            check.placed_not_listed,
        );
        count("listed tasks that no agent runs", check.listed_not_run);
        count(
            "tasks an agent runs that ListTasks does not list",
            check.run_not_listed,
        );
        count("tasks run on another instance than placed", check.misplaced);
        if check.listed.len() != expected {
            problems.push(format!(
                "ListTasks lists {} RUNNING tasks, expected {expected}",
                check.listed.len()
            ));
        }
        if check.containers_running != expected {
            problems.push(format!(
                "the agents run {} containers, expected {expected}",
                check.containers_running
            ));
        }
        problems
    }
}

/// Runs the benchmark (or the scaling table) and prints its figures.
pub async fn run(args: FleetArgs) -> anyhow::Result<()> {
    if args.instances == 0 || args.tasks == 0 {
        bail!("--instances and --tasks must be at least 1");
    }
    if args.etcd_members == 0 {
        bail!("--etcd-members must be at least 1");
    }
    args.store.check_available()?;
    let work = async {
        if args.scaling {
            scaling(&args).await
        } else {
            single(&args).await
        }
    };
    // Ctrl-C drops the run: agents end, the server child is killed, temp dirs go.
    tokio::select! {
        result = work => result,
        _ = crate::commands::shutdown_signal() => bail!("interrupted"),
    }
}

async fn single(args: &FleetArgs) -> anyhow::Result<()> {
    let size = FleetSize {
        instances: args.instances,
        tasks: args.tasks,
        services: args.services,
    };
    let backends = args.store.backends();
    let mut measured = Vec::new();
    let mut failed = Vec::new();
    for backend in backends.iter().copied() {
        let options = FleetOptions {
            callers: args.callers,
            stream_sample: args.stream_sample,
            timeout: args.timeout,
            restart: true,
            store: StoreSpec {
                backend,
                etcd_members: args.etcd_members,
            },
        };
        if backends.len() > 1 {
            println!("-- {}", backend.name());
        }
        println!(
            "fleet: {} hollow agents, {} tasks by RunTask (count 10, spread(instanceId), {} concurrent callers){}; server in a child process, {}",
            size.instances,
            size.tasks,
            options.callers,
            if size.services > 0 {
                format!(", then {} services", size.services)
            } else {
                String::new()
            },
            backend.describe(args.etcd_members)
        );
        let result = match measure(size, &options).await {
            Ok(result) => result,
            // With both stores, a failure of the first still lets the second be measured.
            Err(err) if backends.len() > 1 => {
                println!("{} run failed: {err:#}", backend.name());
                failed.push(format!("{}: {err:#}", backend.name()));
                continue;
            }
            Err(err) => return Err(err),
        };
        report(&result);
        if backend == Backend::Etcd {
            println!(
                "store: {} etcd member(s) on this machine, each with its own data dir (fsync on); their CPU shares the machine's cores, their memory is not in server RSS",
                args.etcd_members
            );
        }
        let problems = result.problems();
        if args.check {
            report_check(&result, &problems);
        }
        if problems.is_empty() {
            measured.push((backend, tasks_per_second(&result)));
        } else {
            failed.push(format!("{}: {}", backend.name(), problems.join("; ")));
        }
    }
    if backends.len() > 1 {
        report_comparison(&measured);
    }
    if !failed.is_empty() {
        bail!("the fleet run is not correct:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// Prints each store's e2e tasks/s and etcd's as a share of SQLite's.
fn report_comparison(measured: &[(Backend, f64)]) {
    println!("-- etcd against SQLite (same fleet, one after the other)");
    let rate = |backend: Backend| {
        measured
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, rate)| *rate)
    };
    for backend in [Backend::Sqlite, Backend::Etcd] {
        match rate(backend) {
            Some(rate) => println!("e2e tasks/s on {}: {rate:.1}", backend.name()),
            None => println!("e2e tasks/s on {}: failed", backend.name()),
        }
    }
    match etcd_share(rate(Backend::Sqlite), rate(Backend::Etcd)) {
        Some(share) => println!(
            "etcd/SQLite e2e tasks/s: {share:.2} ({:.0}%)",
            share * 100.0
        ),
        None => println!("etcd/SQLite e2e tasks/s: not measured (a run failed)"),
    }
}

/// etcd's e2e tasks/s as a share of SQLite's, when both were measured.
fn etcd_share(sqlite: Option<f64>, etcd: Option<f64>) -> Option<f64> {
    match (sqlite, etcd) {
        (Some(sqlite), Some(etcd)) if sqlite > 0.0 => Some(etcd / sqlite),
        _ => None,
    }
}

/// Fleet sizes of the scaling table: 100, 1000 and `instances` agents, as many as fit.
fn scaling_sizes(instances: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = [100, 1000, instances]
        .into_iter()
        .filter(|n| *n <= instances)
        .collect();
    sizes.dedup();
    sizes
}

async fn scaling(args: &FleetArgs) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for backend in args.store.backends() {
        let options = FleetOptions {
            callers: args.callers,
            stream_sample: args.stream_sample,
            timeout: args.timeout,
            restart: false,
            store: StoreSpec {
                backend,
                etcd_members: args.etcd_members,
            },
        };
        if args.store != StoreChoice::Sqlite {
            println!("-- {}", backend.describe(args.etcd_members));
        }
        println!(
            "{:>9} {:>8} {:>12} {:>15} {:>15} {:>15}",
            "instances",
            "tasks",
            "e2e tasks/s",
            "RunTask p50 ms",
            "RunTask p99 ms",
            "server RSS MiB"
        );
        for instances in scaling_sizes(args.instances) {
            let size = FleetSize {
                instances,
                tasks: args.tasks,
                services: 0,
            };
            let outcome = measure(size, &options).await;
            let problems = match &outcome {
                Ok(result) => result.problems(),
                Err(err) => vec![format!("{err:#}")],
            };
            match outcome {
                Ok(result) if problems.is_empty() => println!(
                    "{:>9} {:>8} {:>12.1} {:>15.1} {:>15.1} {:>15.1}",
                    instances,
                    args.tasks,
                    tasks_per_second(&result),
                    ms(quantile(&result.load.run_task_latencies, 0.5)),
                    ms(quantile(&result.load.run_task_latencies, 0.99)),
                    result.server_rss.0
                ),
                _ => {
                    println!(
                        "{instances:>9} {:>8} failed: {}",
                        args.tasks,
                        problems.join("; ")
                    );
                    failed.push(format!("{instances} instances on {}", backend.name()));
                }
            }
        }
    }
    if !failed.is_empty() {
        bail!("the runs with {} failed", failed.join(", "));
    }
    Ok(())
}

/// Runs one fleet of `size` and measures it. Everything it starts (server process, agents,
/// the local etcd, temp dirs) is gone when it returns, whether it succeeds or not.
pub async fn measure(size: FleetSize, options: &FleetOptions) -> anyhow::Result<FleetResult> {
    check_fits(&size)?;
    let dir = tempfile::Builder::new()
        .prefix("berth-fleet-")
        .tempdir()
        .context("temp dir")?;
    let server_dir = dir.path().join("server");
    // Declared before the server so that it outlives it (a local etcd is killed on drop).
    let store = options.store.start().await?;
    let store_url = store.server_store_url();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut server = ServerProcess::start_on(&server_dir, store_url.as_deref(), any_port).await?;
    let endpoint = format!("http://{}", server.addr());
    let credentials = crate::commands::server_credentials(&server_dir)?;
    let api = Api::new(&endpoint, credentials.clone())?;
    api.call("CreateCluster", json!({"clusterName": CLUSTER}))
        .await?;
    let agents_dir = dir.path().join("agents");
    let mut fleet = Fleet::start(&endpoint, size.instances, &agents_dir, &credentials);
    let connect_timeout = Duration::from_secs(60) + per_item(size.instances, 50);
    let instances = fleet.wait_connected(&api, connect_timeout).await?;
    api.call("RegisterTaskDefinition", load::task_definition())
        .await?;

    let step = (instances.len() / options.stream_sample.max(1)).max(1);
    let sample: Vec<String> = instances
        .iter()
        .step_by(step)
        .take(options.stream_sample)
        .cloned()
        .collect();
    let taps = stream::StreamTaps::open(server.addr(), sample, &credentials);
    let timeout = options
        .timeout
        .unwrap_or(Duration::from_secs(60) + per_item(size.tasks, 50));
    let load = load::place(&api, size.tasks, options.callers, timeout).await?;
    let tapped: BTreeSet<String> = taps.instances().iter().cloned().collect();
    let stream_tasks = load
        .placed
        .iter()
        .filter(|p| tapped.contains(&p.instance_arn))
        .count();
    let stream_bytes = taps.close().await?;
    let mut result = FleetResult {
        size,
        load,
        stream: (stream_bytes, tapped.len(), stream_tasks),
        services: None,
        verification: None,
        server_rss: server.rss_mib()?,
        process_rss: server::own_rss_mib()?,
        restart: None,
    };
    if !result.problems().is_empty() {
        teardown(fleet, server).await;
        return Ok(result);
    }
    if size.services > 0 {
        let total = size.services * size.service_tasks_each();
        let timeout = Duration::from_secs(60) + per_item(total, 50);
        result.services =
            Some(services::run(&api, size.services, size.service_tasks_each(), timeout).await?);
    }
    let check = verify::verify(&api, fleet.runtimes(), &result.load.placed).await?;
    result.server_rss = server.rss_mib()?;
    result.process_rss = server::own_rss_mib()?;
    if options.restart {
        let addr = server.addr();
        if let Err(err) = server.stop().await {
            tracing::warn!("{err:#}");
        }
        let started = Instant::now();
        server = ServerProcess::start_on(&server_dir, store_url.as_deref(), addr).await?;
        let timeout = Duration::from_secs(120) + per_item(size.tasks, 5);
        wait_serving(&api, &check.listed, started, timeout).await?;
        result.restart = Some(started.elapsed());
    }
    result.verification = Some(check);
    teardown(fleet, server).await;
    Ok(result)
}

/// Stops the agents and the server. Either may be slow to stop on an overloaded run; they
/// are gone anyway when this returns (aborted, killed), so that is a warning, not a failure
/// hiding the figures.
async fn teardown(fleet: Fleet, server: ServerProcess) {
    if let Err(err) = fleet.stop().await {
        tracing::warn!("{err:#}");
    }
    if let Err(err) = server.stop().await {
        tracing::warn!("{err:#}");
    }
}

/// `n` times `ms` milliseconds.
fn per_item(n: usize, ms: u64) -> Duration {
    Duration::from_millis(ms.saturating_mul(n as u64))
}

/// Fails early when the tasks cannot fit: every hollow agent registers this host's CPU and
/// memory, and spread puts about the same number of tasks on each.
fn check_fits(size: &FleetSize) -> anyhow::Result<()> {
    let host = berth_agent::host::host_resources(berth_agent::host::DEFAULT_MEMORY_RESERVE_MIB);
    let each = size.expected_running().div_ceil(size.instances) as u64;
    let memory = each * load::TASK_MEMORY_MIB;
    let cpu = each * load::TASK_CPU_UNITS;
    if memory > u64::try_from(host.memory_mib).unwrap_or(0)
        || cpu > u64::try_from(host.cpu_units).unwrap_or(0)
    {
        bail!(
            "{each} tasks per instance need {memory} MiB and {cpu} CPU units, but each hollow \
             agent registers this host's {} MiB and {} CPU units: use more --instances",
            host.memory_mib,
            host.cpu_units
        );
    }
    Ok(())
}

/// Waits until the restarted server answers DescribeClusters and lists exactly `expected`.
async fn wait_serving(
    api: &Api,
    expected: &BTreeSet<String>,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut last = String::from("no answer yet");
    while started.elapsed() < timeout {
        // Single attempts, so the time is not rounded up by a retry's pause.
        let cluster = api
            .once("DescribeClusters", json!({"clusters": [CLUSTER]}))
            .await;
        match cluster {
            Ok(answer) if answer["clusters"][0]["status"] == json!("ACTIVE") => {
                let listed: BTreeSet<String> = api.running_task_arns().await?.into_iter().collect();
                if &listed == expected {
                    return Ok(());
                }
                last = format!("it lists {} of {} tasks", listed.len(), expected.len());
            }
            Ok(answer) => last = format!("DescribeClusters answered {answer}"),
            Err(err) => last = format!("{err:#}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the restarted server did not list every task within {timeout:?}: {last}")
}

/// The `q` quantile (0..=1) of `samples`, by nearest rank; zero without samples.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn tasks_per_second(result: &FleetResult) -> f64 {
    result.load.running as f64 / result.load.elapsed.as_secs_f64().max(1e-9)
}

fn report(result: &FleetResult) {
    let load = &result.load;
    let (bytes, instances, tasks) = result.stream;
    println!("e2e tasks/s: {:.1}", tasks_per_second(result));
    println!(
        "RunTask p50: {:.1} ms",
        ms(quantile(&load.run_task_latencies, 0.5))
    );
    println!(
        "RunTask p99: {:.1} ms",
        ms(quantile(&load.run_task_latencies, 0.99))
    );
    println!(
        "DescribeTasks p99 under load: {:.1} ms",
        ms(quantile(&load.describe_latencies, 0.99))
    );
    println!(
        "stream bytes per task: {:.0}",
        bytes as f64 / tasks.max(1) as f64
    );
    println!("server RSS: {:.1} MiB", result.server_rss.0);
    match result.restart {
        Some(restart) => println!("restart to serving: {:.2} s", restart.as_secs_f64()),
        None => println!("restart to serving: not measured (the run failed before)"),
    }
    let restart_note = if result.restart.is_some() {
        "restart: server stopped, started again on the same data dir; time until DescribeClusters answers and ListTasks lists every RUNNING task"
    } else {
        "restart: skipped, the tasks did not all run"
    };
    println!("-- how these were measured");
    println!(
        "e2e: {} tasks RUNNING in {:.2} s, from the first RunTask to the last task seen RUNNING by DescribeTasks",
        load.running,
        load.elapsed.as_secs_f64()
    );
    println!(
        "RunTask: {} calls of up to 10 tasks ({} retried); DescribeTasks under load: {} calls of up to 100 random started tasks",
        load.run_task_latencies.len(),
        load.retries,
        load.describe_latencies.len()
    );
    println!(
        "stream: {bytes} bytes on the desired-state streams of {instances} sampled instances (own GET beside each agent's; wire bytes: headers, chunking, lines, keepalives) over the {tasks} tasks placed on them"
    );
    println!(
        "server RSS: VmRSS of the server process after the load, peak VmHWM {:.1} MiB",
        result.server_rss.1
    );
    println!(
        "process RSS (bench + {} hollow agents, server not included): {:.1} MiB, peak {:.1} MiB",
        result.size.instances, result.process_rss.0, result.process_rss.1
    );
    if let Some(stable) = result.services {
        println!(
            "services stable: {:.2} s ({} services of {} tasks)",
            stable.as_secs_f64(),
            result.size.services,
            result.size.service_tasks_each()
        );
    }
    println!("{restart_note}");
}

fn report_check(result: &FleetResult, problems: &[String]) {
    let load = &result.load;
    println!(
        "check tasks placed: {}/{}",
        load.placed.len(),
        result.size.tasks
    );
    println!(
        "check tasks RUNNING: {}/{}",
        load.running, result.size.tasks
    );
    println!("check RunTask failures: {}", load.unplaced);
    if let Some(check) = &result.verification {
        println!("check ListTasks RUNNING: {}", check.listed.len());
        println!("check containers running: {}", check.containers_running);
        println!("check duplicates: {}", check.duplicates());
    }
    if problems.is_empty() {
        println!("check: ok");
    } else {
        println!("check: FAILED ({} problems)", problems.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_sizes_stop_at_the_fleet_size() {
        assert_eq!(scaling_sizes(5000), [100, 1000, 5000]);
        assert_eq!(scaling_sizes(1000), [100, 1000]);
        assert_eq!(scaling_sizes(50), [50]);
    }

    #[test]
    fn services_add_about_a_tenth_of_the_tasks() {
        let size = FleetSize {
            instances: 10,
            tasks: 2000,
            services: 4,
        };
        assert_eq!(size.service_tasks_each(), 50);
        assert_eq!(size.expected_running(), 2200);
        let none = FleetSize {
            services: 0,
            ..size
        };
        assert_eq!(none.expected_running(), 2000);
    }

    #[test]
    fn etcd_is_compared_only_when_both_stores_were_measured() {
        assert_eq!(etcd_share(Some(400.0), Some(300.0)), Some(0.75));
        assert_eq!(etcd_share(Some(400.0), None), None);
        assert_eq!(etcd_share(None, Some(300.0)), None);
        assert_eq!(etcd_share(Some(0.0), Some(300.0)), None);
    }
}
