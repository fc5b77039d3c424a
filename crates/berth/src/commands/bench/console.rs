//! `berth bench console --tasks N` times the web console's pages on a busy cluster: a server on
//! loopback, hollow agents (real `berth_agent::run` with a hollow runtime) that take N tasks
//! placed by RunTask to RUNNING, a console session signed in through `POST /console/sign-in`
//! with the root key, then real HTTP GETs of the cluster page (every task listed), the
//! clusters list and a task's page with the session cookie. Prints the median and p99
//! server round trip of each page and its size; the target is ≤ 300 ms for the cluster page.

use super::{call, quantile};
use anyhow::{bail, Context};
use berth_agent::client::ServerClient;
use berth_agent::runtime::hollow::HollowRuntime;
use berth_agent::AgentConfig;
use clap::Args;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `berth bench console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Tasks running in the cluster.
    #[arg(long, default_value_t = 1000)]
    pub tasks: usize,
    /// Hollow container instances they run on.
    #[arg(long, default_value_t = 10)]
    pub instances: usize,
    /// GETs of each page timed.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
}

const CLUSTER: &str = "console";
/// The most tasks one RunTask starts.
const RUN_TASK_COUNT: usize = 10;
/// The target for a page's server-side render.
const TARGET: Duration = Duration::from_millis(300);

/// Runs the benchmark and prints its figures.
pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    if args.tasks == 0 || args.instances == 0 || args.requests == 0 {
        bail!("--tasks, --instances and --requests must be at least 1");
    }
    let dir = tempfile::tempdir().context("temp dir")?;
    let (server, credentials) = super::local_server(dir.path(), CLUSTER).await?;
    let addr = server.addr();
    let endpoint = format!("http://{addr}");
    let client = ServerClient::new(&endpoint, "us-east-1", credentials.clone())?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut agents = Vec::with_capacity(args.instances);
    for i in 0..args.instances {
        let mut config = AgentConfig::new(
            &endpoint,
            CLUSTER,
            dir.path().join(format!("agent-{i}")),
            credentials.clone(),
        );
        config.metadata_endpoint = false;
        config.usage_reports = false;
        config.metrics_listen = None;
        let mut stopped = stopped.clone();
        agents.push(tokio::spawn(berth_agent::run(
            config,
            Arc::new(HollowRuntime::new()),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )));
    }
    let outcome = measure(&args, &client, addr, &credentials).await;
    stop.send_replace(true);
    for agent in agents {
        let _ = tokio::time::timeout(Duration::from_secs(10), agent).await;
    }
    server.shutdown().await.ok();
    outcome
}

async fn measure(
    args: &ConsoleArgs,
    client: &ServerClient,
    addr: SocketAddr,
    credentials: &berth_core::sigv4::Credentials,
) -> anyhow::Result<()> {
    let instances = args.instances as u64;
    wait_for(
        Duration::from_secs(60),
        "the agents to register",
        || async {
            let cluster = call(client, "DescribeClusters", json!({"clusters": [CLUSTER]})).await?;
            let registered = &cluster["clusters"][0]["registeredContainerInstancesCount"];
            Ok(registered.as_u64().unwrap_or(0) >= instances)
        },
    )
    .await?;
    call(
        client,
        "RegisterTaskDefinition",
        json!({"family": "console", "containerDefinitions": [{"name": "app", "image": "busybox",
            "cpu": 1, "memoryReservation": 6, "essential": true, "command": ["sleep", "infinity"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/console", "awslogs-stream-prefix": "bench",
                "awslogs-create-group": "true"}}}]}),
    )
    .await?;
    let seeding = Instant::now();
    let mut placed = 0;
    let mut first_task = String::new();
    while placed < args.tasks {
        let count = RUN_TASK_COUNT.min(args.tasks - placed);
        let answer = call(
            client,
            "RunTask",
            json!({"cluster": CLUSTER, "taskDefinition": "console", "count": count}),
        )
        .await?;
        let tasks = answer["tasks"].as_array().map_or(0, Vec::len);
        if tasks == 0 {
            bail!(
                "RunTask placed no task after {placed}: {}",
                answer["failures"]
            );
        }
        if first_task.is_empty() {
            first_task = answer["tasks"][0]["taskArn"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
        }
        placed += tasks;
    }
    let wanted = placed as u64;
    wait_for(Duration::from_secs(120), "the tasks to run", || async {
        let cluster = call(client, "DescribeClusters", json!({"clusters": [CLUSTER]})).await?;
        let cluster = &cluster["clusters"][0];
        let (running, pending) = (&cluster["runningTasksCount"], &cluster["pendingTasksCount"]);
        if running.as_u64() == Some(wanted) {
            return Ok(true);
        }
        tracing::debug!(%running, %pending, "waiting for the tasks to run");
        Ok(false)
    })
    .await?;
    println!(
        "seeded {placed} running tasks on {} hollow instances in {:.1} s",
        args.instances,
        seeding.elapsed().as_secs_f64()
    );

    let cookie = sign_in(addr, credentials).await?;
    let pages = [
        ("cluster", format!("/console/clusters/{CLUSTER}")),
        ("clusters", "/console/clusters".to_string()),
        (
            "task",
            format!("/console/clusters/{CLUSTER}/tasks/{first_task}"),
        ),
    ];
    let mut over_target = false;
    for (name, path) in pages {
        let mut samples = Vec::with_capacity(args.requests);
        let mut size = 0;
        for _ in 0..args.requests {
            let (took, body) = get(addr, &path, &cookie).await?;
            if !body.contains("</html>") || body.contains("class=\"error\"") {
                bail!("GET {path} answered no complete page or an error:\n{body}");
            }
            size = body.len();
            samples.push(took);
        }
        let (median, p99) = (quantile(&samples, 0.5), quantile(&samples, 0.99));
        println!(
            "console {name:<8} page ({placed} tasks): median {:.1} ms, p99 {:.1} ms, \
             {:.0} KiB, {} GETs",
            ms(median),
            ms(p99),
            size as f64 / 1024.0,
            samples.len()
        );
        over_target |= name == "cluster" && median > TARGET;
    }
    if over_target {
        println!(
            "the cluster page's median is over the {} ms target",
            TARGET.as_millis()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Polls `probe` every 200 ms until it holds, for at most `timeout`.
async fn wait_for<F, Fut>(timeout: Duration, what: &str, probe: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    while !probe().await? {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Signs in with the root key; the session cookie (`name=value`).
async fn sign_in(
    addr: SocketAddr,
    credentials: &berth_core::sigv4::Credentials,
) -> anyhow::Result<String> {
    let form = format!(
        "access_key_id={}&secret_access_key={}",
        form_encode(&credentials.access_key_id),
        form_encode(&credentials.secret_access_key)
    );
    let request = format!(
        "POST /console/sign-in HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        form.len()
    );
    let (_, response) = exchange(addr, request).await?;
    response
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then(|| {
                value
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .with_context(|| format!("sign-in set no cookie:\n{response}"))
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One GET with the session cookie: its round trip and body (a non-200 is an error).
async fn get(addr: SocketAddr, path: &str, cookie: &str) -> anyhow::Result<(Duration, String)> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    let (took, response) = exchange(addr, request).await?;
    if !response.starts_with("HTTP/1.1 200") {
        bail!(
            "GET {path}: {}",
            response.lines().next().unwrap_or_default()
        );
    }
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((took, body))
}

/// Sends `request` on a new connection and reads the answer to its end, on a blocking thread
/// (a plain HTTP/1.1 client: what is timed is the server, not a client library).
async fn exchange(addr: SocketAddr, request: String) -> anyhow::Result<(Duration, String)> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<(Duration, String)> {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).context("connect")?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request.as_bytes()).context("send")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).context("read")?;
        let took = started.elapsed();
        Ok((took, String::from_utf8_lossy(&response).into_owned()))
    })
    .await
    .context("client thread")?
}
