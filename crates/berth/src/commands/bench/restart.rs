//! `berth bench restart --tasks N` times a server's restart with N tasks stored: a server
//! registers a cluster and a task definition; N tasks (nine in ten STOPPED, as a busy cluster
//! keeps them for the retention, the rest RUNNING) are then written straight into its store in
//! batches; a new server process starts on that data dir, and the time from its start until
//! it answers ListTasks is what is printed (`restart to serving: X s`), with its RSS.

use super::call;
use super::fleet::server::ServerProcess;
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use berth_core::arn::ArnContext;
use berth_core::model::task_definition::TaskDefinition;
use berth_core::task_state::{new_task, NewTask, TaskStatus};
use berth_store::{keys, SqliteStore, Store, Txn};
use clap::Args;
use serde_json::json;
use std::time::Instant;

/// Options of `berth bench restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Tasks stored before the restart.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Container instances the tasks are spread over.
    #[arg(long, default_value_t = 5000)]
    pub instances: usize,
}

const CLUSTER: &str = "restart";
/// Tasks written per store transaction.
const BATCH: usize = 2000;

/// Runs the benchmark and prints its figures.
pub async fn run(args: RestartArgs) -> anyhow::Result<()> {
    if args.tasks == 0 || args.instances == 0 {
        bail!("--tasks and --instances must be at least 1");
    }
    let dir = tempfile::tempdir().context("temp dir")?;
    let data_dir = dir.path().join("server");
    let listen = "127.0.0.1:0".parse().context("listen address")?;
    let server = ServerProcess::start(&data_dir, listen).await?;
    let credentials = crate::commands::server_credentials(&data_dir)?;
    let client = ServerClient::new(
        &format!("http://{}", server.addr()),
        "us-east-1",
        credentials.clone(),
    )?;
    call(&client, "CreateCluster", json!({"clusterName": CLUSTER})).await?;
    let registered = call(
        &client,
        "RegisterTaskDefinition",
        json!({"family": "restart", "containerDefinitions": [{"name": "app", "image": "busybox",
            "memory": 64, "essential": true, "command": ["sleep", "3600"],
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}]}),
    )
    .await?;
    let td: TaskDefinition = serde_json::from_value(registered["taskDefinition"].clone())
        .context("RegisterTaskDefinition answered no task definition")?;
    server.stop().await?;

    let written = Instant::now();
    write_tasks(&data_dir, &td, &args).await?;
    let write_secs = written.elapsed().as_secs_f64();

    let started = Instant::now();
    let server = ServerProcess::start(&data_dir, listen).await?;
    let client = ServerClient::new(
        &format!("http://{}", server.addr()),
        "us-east-1",
        credentials,
    )?;
    let listed = call(
        &client,
        "ListTasks",
        json!({"cluster": CLUSTER, "maxResults": 100}),
    )
    .await?;
    let restart = started.elapsed().as_secs_f64();
    let running = listed["taskArns"].as_array().map_or(0, Vec::len);
    if running == 0 {
        bail!("the restarted server lists no RUNNING task");
    }
    let (rss, peak) = server.rss_mib()?;
    server.stop().await?;
    println!(
        "restart: {} tasks stored ({} RUNNING), {} instances",
        args.tasks,
        running_count(args.tasks),
        args.instances
    );
    println!("restart to serving: {restart:.2} s");
    println!("server RSS after restart: {rss:.1} MiB (peak {peak:.1} MiB)");
    println!("-- how these were measured");
    println!("tasks written straight into the store in batches of {BATCH} in {write_secs:.1} s; restart: a new server process on the data dir, from its start until ListTasks answers");
    Ok(())
}

/// How many of `tasks` are RUNNING (one in ten).
fn running_count(tasks: usize) -> usize {
    tasks.div_ceil(10)
}

async fn write_tasks(
    data_dir: &std::path::Path,
    td: &TaskDefinition,
    args: &RestartArgs,
) -> anyhow::Result<()> {
    let store = SqliteStore::open(&data_dir.join(berth_server::app::DATABASE_FILE))?;
    let arns = ArnContext::new("us-east-1", "000000000000");
    let now = 1_800_000_000.0;
    let mut txn = Txn::new();
    let mut in_txn = 0;
    for n in 0..args.tasks {
        let id = format!("{n:032x}");
        let instance = arns.container_instance(CLUSTER, &format!("{:032x}", n % args.instances));
        let mut task = new_task(NewTask {
            task_arn: arns.task(CLUSTER, &id),
            cluster_arn: arns.cluster(CLUSTER),
            container_instance_arn: instance,
            task_definition: td,
            container_arns: vec![format!(
                "arn:aws:ecs:us-east-1:000000000000:container/{CLUSTER}/{id}/app"
            )],
            overrides: Default::default(),
            started_by: Some("bench".into()),
            group: "family:restart".into(),
            launch_type: "EC2".into(),
            tags: Vec::new(),
            enable_execute_command: false,
            now,
        });
        let running = n % 10 == 0;
        let status = if running {
            TaskStatus::Running
        } else {
            TaskStatus::Stopped
        };
        task.last_status = Some(status);
        task.desired_status = Some(status);
        if !running {
            task.stopped_at = Some(now);
            task.stop_code = Some("EssentialContainerExited".into());
            task.stopped_reason = Some("Essential container in task exited".into());
        }
        for container in task.containers.iter_mut().flatten() {
            container.last_status = Some(status);
            container.exit_code = (!running).then_some(0);
        }
        txn = txn.put(keys::task(CLUSTER, &id), berth_store::typed::encode(&task));
        in_txn += 1;
        if in_txn == BATCH || n + 1 == args.tasks {
            store.txn(std::mem::take(&mut txn)).await?;
            in_txn = 0;
        }
    }
    Ok(())
}
