//! `berth bench run-task` measures, for N tasks run one after another on this machine, the
//! time from RunTask's answer to RUNNING being visible through DescribeTasks, next to the time
//! of a plain `docker run -d` of the same image and command, measured in the same run
//! (interleaved, so all see the same machine). With `--secrets K` (default 4) it also times a
//! task whose container takes K secrets (Secrets Manager JSON keys and SSM SecureStrings, in
//! turn) resolved under its execution role, and prints what resolving them adds. Each round
//! also times an awsvpc task (its own network namespace, CNI bridge and address) to show what
//! task networking adds to a bridge-mode start; `--awsvpc-fleet N` then runs N awsvpc tasks
//! at once on the one host and times them to RUNNING and back to STOPPED with every address
//! released.

use super::{call, quantile};
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use berth_agent::AgentConfig;
use berth_core::gateway::{AgentTaskRequest, TaskSecrets, TASK_SECRETS_PATH};
use clap::Args;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `berth bench run-task`.
#[derive(Debug, Args)]
pub struct RunTaskArgs {
    /// How many tasks (and as many `docker run -d`) to time.
    #[arg(long, default_value_t = 30)]
    pub tasks: usize,
    /// Image to run (must be present locally: `scripts/build-test-image`).
    #[arg(long, default_value = "busybox:latest")]
    pub image: String,
    /// Secrets of the second task timed (0: time no task with secrets).
    #[arg(long, default_value_t = 4)]
    pub secrets: usize,
    /// Time no awsvpc task (for a host without the CNI plugins).
    #[arg(long)]
    pub no_awsvpc: bool,
    /// After the timed rounds, run this many awsvpc tasks at once (0: none).
    #[arg(long, default_value_t = 0)]
    pub awsvpc_fleet: usize,
}

/// The samples of one run: each kind of start, timed in turn.
#[derive(Default)]
struct Samples {
    plain: Vec<Duration>,
    with_secrets: Vec<Duration>,
    /// The agent's own secrets request for a running task, timed alone.
    secrets_request: Vec<Duration>,
    docker: Vec<Duration>,
    awsvpc: Vec<Duration>,
    /// `--awsvpc-fleet`: tasks RUNNING at once, their distinct addresses, and how long it took.
    fleet_running: Option<(usize, usize, Duration)>,
    /// `--awsvpc-fleet`: from StopTask to every task STOPPED.
    fleet_stopped: Option<Duration>,
}

const BENCH_LABEL: &str = "com.berth.bench=run-task";

/// Runs the benchmark and prints its figures.
pub async fn run(args: RunTaskArgs) -> anyhow::Result<()> {
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    let runtime = crate::commands::agent::connect_docker().await?;
    let dir = tempfile::tempdir().context("temp dir")?;
    let (server, credentials) = super::local_server(dir.path(), "bench").await?;
    let endpoint = format!("http://{}", server.addr());
    let mut agent_config = AgentConfig::new(
        &endpoint,
        "bench",
        dir.path().join("agent"),
        credentials.clone(),
    );
    agent_config.task_cleanup_wait = Duration::from_secs(5);
    if !args.no_awsvpc {
        agent_config.cni_plugin_dir = Some(berth_agent::awsvpc::DEFAULT_PLUGIN_DIR.into());
    }
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(berth_agent::run(agent_config, runtime, async {
        let _ = agent_stopped.await;
    }));
    let client = ServerClient::new(&endpoint, "us-east-1", credentials)?;
    let mut result = measure(&client, &args).await;
    if let (Ok(samples), true) = (&mut result, args.awsvpc_fleet > 0) {
        if let Err(err) = awsvpc_fleet(&client, args.awsvpc_fleet, samples).await {
            result = Err(err);
        }
    }
    // awsvpc tasks are stopped through the API: the agent then frees their addresses.
    let stopped = stop_all(&client).await;
    let _ = stop_agent.send(());
    let _ = agent.await;
    cleanup_containers();
    server.shutdown().await.ok();
    stopped?;
    report(&result?, args.secrets);
    Ok(())
}

async fn measure(client: &ServerClient, args: &RunTaskArgs) -> anyhow::Result<Samples> {
    // Wait for the agent to register.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = call(
            client,
            "ListContainerInstances",
            json!({"cluster": "bench"}),
        )
        .await?;
        if listed["containerInstanceArns"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent did not register within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(
        client,
        "RegisterTaskDefinition",
        json!({"family": "bench", "containerDefinitions": [{
            "name": "app", "image": args.image, "memoryReservation": 6, "essential": true,
            "command": ["sleep", "3600"],
            "dockerLabels": {"com.berth.bench": "run-task"}
        }]}),
    )
    .await?;
    if args.secrets > 0 {
        register_with_secrets(client, args).await?;
    }
    if !args.no_awsvpc {
        call(
            client,
            "RegisterTaskDefinition",
            json!({"family": "bench-awsvpc", "networkMode": "awsvpc", "containerDefinitions": [{
                "name": "app", "image": args.image, "memoryReservation": 6, "essential": true,
                "command": ["sleep", "3600"],
                "dockerLabels": {"com.berth.bench": "run-task"}
            }]}),
        )
        .await?;
    }
    let mut samples = Samples::default();
    for i in 0..args.tasks {
        let (plain, _) = time_run_task(client, "bench")
            .await
            .with_context(|| format!("task {i}"))?;
        samples.plain.push(plain);
        if args.secrets > 0 {
            let (with_secrets, task) = time_run_task(client, "bench-secrets")
                .await
                .with_context(|| format!("task {i} with secrets"))?;
            samples.with_secrets.push(with_secrets);
            samples
                .secrets_request
                .push(time_secrets_request(client, task).await?);
        }
        samples.docker.push(time_docker_run(&args.image)?);
        if !args.no_awsvpc {
            let (awsvpc, _) = time_run_task(client, "bench-awsvpc")
                .await
                .with_context(|| format!("awsvpc task {i}"))?;
            samples.awsvpc.push(awsvpc);
        }
    }
    Ok(samples)
}

/// The awsvpc configuration of the bench's tasks (any subnet id: the default network).
fn vpc() -> serde_json::Value {
    json!({"awsvpcConfiguration": {"subnets": ["subnet-bench"]}})
}

/// Runs `count` awsvpc tasks at once (RunTask 10 at a time), waits until all are RUNNING,
/// checks their addresses are all different, and reports the times; then stops them and
/// waits until they are STOPPED.
async fn awsvpc_fleet(
    client: &ServerClient,
    count: usize,
    samples: &mut Samples,
) -> anyhow::Result<()> {
    let began = Instant::now();
    let mut arns: Vec<String> = Vec::new();
    while arns.len() < count {
        let n = (count - arns.len()).min(10);
        let out = call(
            client,
            "RunTask",
            json!({"cluster": "bench", "taskDefinition": "bench-awsvpc", "count": n,
                   "networkConfiguration": vpc()}),
        )
        .await?;
        let placed: Vec<String> = out["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
            .collect();
        if placed.is_empty() {
            bail!(
                "RunTask placed none of {n} awsvpc tasks: {}",
                out["failures"]
            );
        }
        arns.extend(placed);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let addresses = loop {
        let mut running = 0;
        let mut addresses = std::collections::BTreeSet::new();
        for chunk in arns.chunks(100) {
            let described = call(
                client,
                "DescribeTasks",
                json!({"cluster": "bench", "tasks": chunk}),
            )
            .await?;
            for task in described["tasks"].as_array().into_iter().flatten() {
                match task["lastStatus"].as_str() {
                    Some("RUNNING") => running += 1,
                    Some("STOPPED") => bail!("an awsvpc task stopped: {}", task["stoppedReason"]),
                    _ => {}
                }
                let ip = task["attachments"][0]["details"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["name"] == "privateIPv4Address")
                    .and_then(|d| d["value"].as_str());
                if let Some(ip) = ip {
                    addresses.insert(ip.to_string());
                }
            }
        }
        if running == arns.len() {
            break addresses;
        }
        if Instant::now() > deadline {
            bail!(
                "{running} of {} awsvpc tasks RUNNING after 600 s",
                arns.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    samples.fleet_running = Some((arns.len(), addresses.len(), began.elapsed()));
    let stopping = Instant::now();
    stop_all(client).await?;
    samples.fleet_stopped = Some(stopping.elapsed());
    Ok(())
}

/// Family `bench-secrets`: the bench container with `args.secrets` secrets, half from Secrets
/// Manager (a JSON key of one secret each) and half SSM SecureStrings, and an execution role
/// (made through the IAM API) allowed to read them.
async fn register_with_secrets(client: &ServerClient, args: &RunTaskArgs) -> anyhow::Result<()> {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let created = client
        .call_query(
            "iam",
            "CreateRole",
            &[
                ("RoleName", "bench-execution"),
                ("AssumeRolePolicyDocument", &trust.to_string()),
            ],
        )
        .await
        .context("CreateRole")?;
    let role_arn =
        berth_agent::client::xml_text(&created, "Arn").context("CreateRole answered no Arn")?;
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"], "Resource": "*"}]});
    client
        .call_query(
            "iam",
            "PutRolePolicy",
            &[
                ("RoleName", "bench-execution"),
                ("PolicyName", "read-secrets"),
                ("PolicyDocument", &policy.to_string()),
            ],
        )
        .await
        .context("PutRolePolicy")?;
    let mut secrets = Vec::new();
    for i in 0..args.secrets {
        let name = format!("BENCH_SECRET_{i}");
        let value_from = if i % 2 == 0 {
            let secret: serde_json::Value = client
                .call_json(
                    "secretsmanager",
                    "secretsmanager.CreateSecret",
                    &json!({"Name": format!("bench/{i}"),
                        "SecretString": json!({"password": format!("bench-value-{i}")}).to_string()}),
                )
                .await
                .context("CreateSecret")?;
            let arn = secret["ARN"]
                .as_str()
                .context("CreateSecret answered no ARN")?;
            format!("{arn}:password::")
        } else {
            let parameter = format!("/bench/secret-{i}");
            client
                .call_json::<_, serde_json::Value>(
                    "ssm",
                    "AmazonSSM.PutParameter",
                    &json!({"Name": parameter, "Value": format!("bench-value-{i}"),
                        "Type": "SecureString"}),
                )
                .await
                .context("PutParameter")?;
            parameter
        };
        secrets.push(json!({"name": name, "valueFrom": value_from}));
    }
    call(
        client,
        "RegisterTaskDefinition",
        json!({"family": "bench-secrets", "executionRoleArn": role_arn, "containerDefinitions": [{
            "name": "app", "image": args.image, "memoryReservation": 6, "essential": true,
            "command": ["sleep", "3600"], "secrets": secrets,
            "dockerLabels": {"com.berth.bench": "run-task"}
        }]}),
    )
    .await?;
    Ok(())
}

/// The request the agent sends for `task`'s secrets as it starts it (the same route, body and
/// keys), timed: the part of a start that secrets add, apart from the noise of `docker create`.
async fn time_secrets_request(
    client: &ServerClient,
    task: AgentTaskRequest,
) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let answer: TaskSecrets = client
        .post(TASK_SECRETS_PATH, &task)
        .await
        .context("the agent's secrets request")?;
    let elapsed = began.elapsed();
    let resolved: usize = answer.containers.iter().map(|c| c.environment.len()).sum();
    if resolved == 0 {
        bail!("the secrets request resolved no secret");
    }
    Ok(elapsed)
}

/// Stops every task of the bench cluster and waits (at most 10 min) until none is left
/// unstopped.
async fn stop_all(client: &ServerClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    for arn in list_tasks(client, "RUNNING").await? {
        call(client, "StopTask", json!({"cluster": "bench", "task": arn})).await?;
    }
    loop {
        let mut unstopped = 0;
        for chunk in list_tasks(client, "STOPPED").await?.chunks(100) {
            let described = call(
                client,
                "DescribeTasks",
                json!({"cluster": "bench", "tasks": chunk}),
            )
            .await?;
            unstopped += described["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["lastStatus"] != "STOPPED")
                .count();
        }
        if unstopped == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{unstopped} tasks not STOPPED 600 s after StopTask");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every task of the bench cluster whose desired status is `desired`.
async fn list_tasks(client: &ServerClient, desired: &str) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"cluster": "bench", "desiredStatus": desired, "maxResults": 100});
        if let Some(token) = &token {
            body["nextToken"] = json!(token);
        }
        let page = call(client, "ListTasks", body).await?;
        arns.extend(
            page["taskArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string)),
        );
        match page["nextToken"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(arns),
        }
    }
}

/// RunTask, then DescribeTasks every 2 ms until RUNNING; the time from RunTask's answer, and
/// the task as its agent names it. Tasks of family `bench-awsvpc` get the bench's network.
async fn time_run_task(
    client: &ServerClient,
    family: &str,
) -> anyhow::Result<(Duration, AgentTaskRequest)> {
    let mut body = json!({"cluster": "bench", "taskDefinition": family});
    if family == "bench-awsvpc" {
        body["networkConfiguration"] = vpc();
    }
    let out = call(client, "RunTask", body).await?;
    let accepted = Instant::now();
    let arn = out["tasks"][0]["taskArn"].as_str().map(str::to_string);
    let Some(arn) = arn else {
        bail!("RunTask placed no task: {}", out["failures"])
    };
    loop {
        let described = call(
            client,
            "DescribeTasks",
            json!({"cluster": "bench", "tasks": [arn]}),
        )
        .await?;
        match described["tasks"][0]["lastStatus"].as_str() {
            Some("RUNNING") => {
                let elapsed = accepted.elapsed();
                let task = &described["tasks"][0];
                let instance = task["containerInstanceArn"].as_str().unwrap_or_default();
                let asked = AgentTaskRequest {
                    cluster: "bench".into(),
                    container_instance: instance.rsplit('/').next().unwrap_or_default().into(),
                    task: arn.clone(),
                };
                return Ok((elapsed, asked));
            }
            Some("STOPPED") => bail!("task stopped: {}", described["tasks"][0]["stoppedReason"]),
            _ => {}
        }
        if accepted.elapsed() > Duration::from_secs(60) {
            bail!("task not RUNNING after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn time_docker_run(image: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new("docker")
        .args(["run", "-d", "--label", BENCH_LABEL, image, "sleep", "3600"])
        .output()
        .context("docker run")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

fn cleanup_containers() {
    let ids = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={BENCH_LABEL}")])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .arg("rm")
            .arg("-f")
            .args(&ids)
            .output();
    }
}

/// Prints the medians and p99s, and what secrets add to the plain task's median.
fn report(samples: &Samples, secrets: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let line = |what: &str, of: &[Duration]| {
        println!(
            "{what:<34} median {:>6.1} ms, p99 {:>6.1} ms",
            ms(quantile(of, 0.5)),
            ms(quantile(of, 0.99))
        );
    };
    println!("tasks: {}", samples.plain.len());
    line("berth run-task -> RUNNING:", &samples.plain);
    if secrets > 0 {
        line(
            &format!("  the same with {secrets} secrets:"),
            &samples.with_secrets,
        );
    }
    line("docker run -d:", &samples.docker);
    if !samples.awsvpc.is_empty() {
        line("awsvpc run-task -> RUNNING:", &samples.awsvpc);
        println!(
            "task networking adds (awsvpc - bridge medians): {:+.1} ms (target <= 100 ms)",
            ms(quantile(&samples.awsvpc, 0.5)) - ms(quantile(&samples.plain, 0.5))
        );
    }
    if let Some((tasks, addresses, took)) = samples.fleet_running {
        println!(
            "awsvpc fleet: {tasks} tasks RUNNING at once on this host after {:.1} s, \
             {addresses} distinct addresses",
            took.as_secs_f64()
        );
    }
    if let Some(took) = samples.fleet_stopped {
        println!(
            "awsvpc fleet: all STOPPED (addresses freed) {:.1} s after StopTask",
            took.as_secs_f64()
        );
    }
    let (plain, docker) = (
        ms(quantile(&samples.plain, 0.5)),
        ms(quantile(&samples.docker, 0.5)),
    );
    println!("ratio (berth/docker median): {:.2}", plain / docker);
    if secrets > 0 {
        line(
            &format!("the agent's request for {secrets} secrets:"),
            &samples.secrets_request,
        );
        let added = ms(quantile(&samples.with_secrets, 0.5)) - plain;
        println!(
            "secret resolution adds: {:.1} ms (its request's median; target <= 20 ms); \
             difference of the start medians {added:+.1} ms (within docker's noise)",
            ms(quantile(&samples.secrets_request, 0.5))
        );
    }
}
