//! `berth bench zero-drop`: a service behind a load balancer keeps answering while it is
//! redeployed and scaled in (issue 14's target: ≥ 200 requests/s through a listener while a
//! service of 4 tasks, minimum 100 % / maximum 200 %, goes through three rolling deployments
//! and one scale-in, with 0 failed requests and 0 connection resets).
//!
//! On a real server and agent on the local Docker ([`Rig`]): an application load balancer,
//! an HTTP target group of `instance` targets (checks every 5 s, 2 to turn healthy or
//! unhealthy, a 5-s deregistration delay) and a listener on a free loopback port, made through
//! the ELBv2 API; a service of busybox httpd tasks (bridge network, dynamic host ports), each
//! answering `<version> <hostname>`, attached to the group with `loadBalancers`. Once its 4
//! targets are healthy, a load of `--rate` GETs/s (see [`load`]) runs through the listener
//! while the service goes through the phases, each one waited on (up to `--phase-limit`)
//! until the service is steady: one deployment, as many RUNNING tasks of the expected
//! revision as desired, exactly their host ports registered and healthy, and every task it
//! replaced STOPPED. The bench prints the load's totals and each phase's duration, then PASS
//! or FAIL (and fails).

mod load;

use super::call;
use super::telemetry::{Rig, CLUSTER, IMAGE};
use anyhow::{bail, Context};
use berth_agent::client::{xml_text, ServerClient};
use clap::Args;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Options of `berth bench zero-drop`.
#[derive(Debug, Args)]
pub struct ZeroDropArgs {
    /// Requests per second the load sends through the listener.
    #[arg(long, default_value_t = 250.0)]
    pub rate: f64,
    /// Keep-alive connections the load is spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// One deployment and the scale-in only (for CI).
    #[arg(long)]
    pub quick: bool,
    /// How long a phase may take to be steady before the bench fails.
    #[arg(long, default_value = "5m", value_parser = crate::commands::parse_duration)]
    pub phase_limit: Duration,
    /// Print every change of what a phase is waiting on.
    #[arg(long)]
    pub verbose: bool,
}

/// Issue 14's target.
const TARGET_RATE: f64 = 200.0;
const NAME: &str = "zero-drop";
const TASKS: usize = 4;
const SCALED_IN: usize = 2;
/// Load before the first phase and after the last.
const MARGIN: Duration = Duration::from_secs(10);
/// Each task serves its task definition's version and its hostname at /. `exec`: httpd is
/// the container's PID 1 and dies on SIGKILL after the 2-s stopTimeout, long after its
/// target has drained.
const SERVE: &str = r#"mkdir -p /www && echo "$VERSION $HOSTNAME" > /www/index.html && exec httpd -f -p 80 -h /www"#;

/// What the bench made, for the cleanup.
#[derive(Default)]
struct Made {
    load_balancer: Option<String>,
    target_group: Option<String>,
    listener: Option<String>,
    service: bool,
}

/// One change the service goes through under load.
enum Phase {
    Deploy(String),
    ScaleIn(usize),
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: ZeroDropArgs) -> anyhow::Result<()> {
    if args.rate.is_nan() || args.rate < 1.0 || args.connections == 0 {
        bail!("--rate and --connections must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("zero-drop-load")
        .enable_all()
        .build()
        .context("the load's runtime")?;
    let rig = Rig::start().await?;
    let mut made = Made::default();
    // Interrupted, it still deletes what it made and stops the tasks.
    let result = tokio::select! {
        result = bench(&rig, &rt, &args, &mut made) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    rt.shutdown_background();
    cleanup(&rig.client, &made).await;
    rig.finish(&[]).await;
    result
}

async fn bench(
    rig: &Rig,
    rt: &tokio::runtime::Runtime,
    args: &ZeroDropArgs,
    made: &mut Made,
) -> anyhow::Result<()> {
    let client = &rig.client;
    let began = Instant::now();
    let lb = elb(
        client,
        "CreateLoadBalancer",
        &[("Name", NAME), ("Type", "application")],
    )
    .await?;
    let lb = made
        .load_balancer
        .insert(xml_text(&lb, "LoadBalancerArn").context("CreateLoadBalancer: no ARN")?)
        .clone();
    let tg = elb(
        client,
        "CreateTargetGroup",
        &[
            ("Name", NAME),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("TargetType", "instance"),
            ("HealthCheckPath", "/"),
            ("HealthCheckIntervalSeconds", "5"),
            ("HealthCheckTimeoutSeconds", "2"),
            ("HealthyThresholdCount", "2"),
            ("UnhealthyThresholdCount", "2"),
        ],
    )
    .await?;
    let tg = made
        .target_group
        .insert(xml_text(&tg, "TargetGroupArn").context("CreateTargetGroup: no ARN")?)
        .clone();
    elb(
        client,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "5"),
        ],
    )
    .await?;
    let port = free_port()?;
    let listener = elb(
        client,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", &port.to_string()),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg),
        ],
    )
    .await?;
    made.listener = Some(xml_text(&listener, "ListenerArn").context("CreateListener: no ARN")?);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let mut definition = register(client, "v1").await?;
    call(
        client,
        "CreateService",
        json!({"cluster": CLUSTER, "serviceName": NAME, "taskDefinition": definition,
               "desiredCount": TASKS,
               "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
               "loadBalancers": [{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}],
               "healthCheckGracePeriodSeconds": 10}),
    )
    .await?;
    made.service = true;
    let setup = Instant::now();
    let mut tasks = wait_steady(client, &tg, TASKS, &definition, &BTreeSet::new(), args).await?;
    let mut phases: Vec<(String, Duration)> = vec![(
        format!("start: {TASKS} healthy tasks (no load)"),
        setup.elapsed(),
    )];
    println!(
        "zero-drop: load balancer up and {TASKS} targets healthy after {:.1} s; load of {} requests/s over {} connections to {addr}",
        began.elapsed().as_secs_f64(),
        args.rate,
        args.connections
    );

    let deployments = if args.quick { 1 } else { 3 };
    let mut plan: Vec<Phase> = (2..2 + deployments)
        .map(|v| Phase::Deploy(format!("v{v}")))
        .collect();
    plan.push(Phase::ScaleIn(SCALED_IN));

    let load = load::Load::start(rt, addr, args.rate, args.connections);
    let loaded = Instant::now();
    let outcome = async {
        tokio::time::sleep(MARGIN).await;
        let mut want = TASKS;
        for phase in &plan {
            let started = Instant::now();
            let label = match phase {
                Phase::Deploy(version) => {
                    definition = register(client, version).await?;
                    call(
                        client,
                        "UpdateService",
                        json!({"cluster": CLUSTER, "service": NAME, "taskDefinition": definition}),
                    )
                    .await?;
                    format!("rolling deployment to {version}")
                }
                Phase::ScaleIn(count) => {
                    want = *count;
                    call(
                        client,
                        "UpdateService",
                        json!({"cluster": CLUSTER, "service": NAME, "desiredCount": count}),
                    )
                    .await?;
                    format!("scale-in {TASKS} -> {count}")
                }
            };
            tasks = wait_steady(client, &tg, want, &definition, &tasks, args)
                .await
                .with_context(|| label.clone())?;
            println!(
                "  {:>6.1} s: {label}: steady after {:.1} s",
                loaded.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            phases.push((label, started.elapsed()));
        }
        tokio::time::sleep(MARGIN).await;
        anyhow::Ok(())
    }
    .await;
    let stats = load.stop().await;
    report(args, &phases, &stats, deployments);
    outcome?;
    let rate = stats.rate();
    if stats.failed > 0 || stats.connection_errors > 0 || stats.timeouts > 0 || rate < TARGET_RATE {
        bail!(
            "FAIL: {} failed, {} connection errors, {} timeouts, {rate:.1} requests/s",
            stats.failed,
            stats.connection_errors,
            stats.timeouts
        );
    }
    println!("PASS");
    Ok(())
}

fn report(args: &ZeroDropArgs, phases: &[(String, Duration)], stats: &load::Stats, n: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "service of {TASKS} tasks (min 100 % / max 200 %), {n} rolling deployment{} and a scale-in to {SCALED_IN}, under {} requests/s over {} keep-alive connections",
        if n == 1 { "" } else { "s" },
        args.rate,
        args.connections
    );
    println!("{:<40} {:>9}", "phase", "seconds");
    for (label, took) in phases {
        println!("{label:<40} {:>9.1}", took.as_secs_f64());
    }
    let rows: [(&str, String); 9] = [
        ("load ran", format!("{:.1} s", stats.seconds)),
        ("requests sent", stats.sent.to_string()),
        ("succeeded (2xx)", stats.succeeded.to_string()),
        ("failed (other status)", stats.failed.to_string()),
        (
            "connection errors",
            format!(
                "{} (of which resets: {})",
                stats.connection_errors, stats.resets
            ),
        ),
        (
            "timeouts",
            format!(
                "{} (limit {} s)",
                stats.timeouts,
                load::REQUEST_TIMEOUT.as_secs()
            ),
        ),
        (
            "rate achieved (2xx/s)",
            format!("{:.1} (target >= {TARGET_RATE:.0})", stats.rate()),
        ),
        (
            "latency p50 / p99 / max",
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                ms(super::quantile(&stats.latencies, 0.5)),
                ms(super::quantile(&stats.latencies, 0.99)),
                ms(super::quantile(&stats.latencies, 1.0))
            ),
        ),
        ("connections opened", stats.connections.to_string()),
    ];
    for (name, value) in rows {
        println!("{name:<24} {value}");
    }
    let versions: Vec<String> = stats
        .by_version
        .iter()
        .map(|(version, n)| format!("{version} {n}"))
        .collect();
    println!("{:<24} {}", "2xx answers by version", versions.join(", "));
    for (at, what) in &stats.shown {
        println!("  error at {at:.1} s of the load: {what}");
    }
}

/// An ELBv2 action (query protocol); its XML answer.
async fn elb(
    client: &ServerClient,
    action: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<String> {
    client
        .call_query("elasticloadbalancing", action, params)
        .await
        .with_context(|| format!("{action} failed"))
}

/// A port of 127.0.0.1 nothing listens on (for the listener).
fn free_port() -> anyhow::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").context("a free port")?;
    Ok(socket.local_addr()?.port())
}

/// Registers a revision of the web task definition serving `version`; its ARN.
async fn register(client: &ServerClient, version: &str) -> anyhow::Result<String> {
    let out = call(
        client,
        "RegisterTaskDefinition",
        json!({"family": NAME, "networkMode": "bridge", "containerDefinitions": [{
            "name": "web", "image": IMAGE, "memory": 32, "essential": true,
            "command": ["sh", "-c", SERVE],
            "environment": [{"name": "VERSION", "value": version}],
            "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
            "stopTimeout": 2}]}),
    )
    .await?;
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .map(str::to_owned)
        .context("RegisterTaskDefinition answered no ARN")
}

/// Waits until the service is steady at `want` tasks of `definition` (see the module's
/// doc), every task of `before` it no longer runs being STOPPED; the tasks it runs.
async fn wait_steady(
    client: &ServerClient,
    tg: &str,
    want: usize,
    definition: &str,
    before: &BTreeSet<String>,
    args: &ZeroDropArgs,
) -> anyhow::Result<BTreeSet<String>> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let (steady, tasks, seen) = observe(client, tg, want, definition, before).await?;
        if steady {
            return Ok(tasks);
        }
        if args.verbose && seen != last {
            println!("    {:>6.1} s: {seen}", started.elapsed().as_secs_f64());
        }
        last = seen;
        if started.elapsed() > args.phase_limit {
            bail!(
                "not steady within {} s; last seen: {last}",
                args.phase_limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether the service is steady, the tasks it runs, and what was seen (for messages).
async fn observe(
    client: &ServerClient,
    tg: &str,
    want: usize,
    definition: &str,
    before: &BTreeSet<String>,
) -> anyhow::Result<(bool, BTreeSet<String>, String)> {
    let described = call(
        client,
        "DescribeServices",
        json!({"cluster": CLUSTER, "services": [NAME]}),
    )
    .await?;
    let service = &described["services"][0];
    let deployments = service["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(failed) = deployments.iter().find(|d| d["rolloutState"] == "FAILED") {
        bail!("a deployment FAILED: {}", failed["rolloutStateReason"]);
    }
    let running = service["runningCount"].as_i64().unwrap_or(-1);
    let desired = service["desiredCount"].as_i64().unwrap_or(-1);
    let listed = call(
        client,
        "ListTasks",
        json!({"cluster": CLUSTER, "serviceName": NAME}),
    )
    .await?;
    let current: BTreeSet<String> = strings(&listed["taskArns"]);
    let wanted: Vec<&String> = current.iter().chain(before.difference(&current)).collect();
    let mut statuses: BTreeMap<String, (String, String, BTreeSet<u64>)> = BTreeMap::new();
    for chunk in wanted.chunks(100) {
        let out = call(
            client,
            "DescribeTasks",
            json!({"cluster": CLUSTER, "tasks": chunk}),
        )
        .await?;
        for task in out["tasks"].as_array().into_iter().flatten() {
            let ports = task["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["networkBindings"].as_array().into_iter().flatten())
                // Docker may bind IPv6 on another host port: the target is the IPv4 one.
                .filter(|b| {
                    b["containerPort"] == 80
                        && !b["bindIP"].as_str().is_some_and(|ip| ip.contains(':'))
                })
                .filter_map(|b| b["hostPort"].as_u64())
                .collect();
            statuses.insert(
                task["taskArn"].as_str().unwrap_or_default().to_owned(),
                (
                    task["lastStatus"].as_str().unwrap_or_default().to_owned(),
                    task["taskDefinitionArn"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    ports,
                ),
            );
        }
    }
    let not_ready = current
        .iter()
        .filter(|arn| {
            !statuses
                .get(*arn)
                .is_some_and(|(status, def, _)| status == "RUNNING" && def == definition)
        })
        .count();
    // A task no longer described has long been STOPPED.
    let lingering = before
        .difference(&current)
        .filter(|arn| {
            statuses
                .get(*arn)
                .is_some_and(|(status, _, _)| status != "STOPPED")
        })
        .count();
    let ports: BTreeSet<u64> = current
        .iter()
        .filter_map(|arn| statuses.get(arn))
        .flat_map(|(_, _, ports)| ports.iter().copied())
        .collect();
    let health = elb(client, "DescribeTargetHealth", &[("TargetGroupArn", tg)]).await?;
    let targets: Vec<(u64, String)> = health
        .split("<member>")
        .skip(1)
        .map(|member| {
            (
                xml_text(member, "Port")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                xml_text(member, "State").unwrap_or_default(),
            )
        })
        .collect();
    let healthy: BTreeSet<u64> = targets
        .iter()
        .filter(|(_, state)| state == "healthy")
        .map(|(port, _)| *port)
        .collect();
    let steady = deployments.len() == 1
        && running == want as i64
        && desired == want as i64
        && current.len() == want
        && not_ready == 0
        && lingering == 0
        && targets.len() == want
        && healthy == ports
        && ports.len() == want;
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for (status, _, _) in statuses.values() {
        *by_status.entry(status.as_str()).or_default() += 1;
    }
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, state) in &targets {
        *by_state.entry(state.as_str()).or_default() += 1;
    }
    let seen = format!(
        "deployments {}, running {running} of desired {desired}, tasks listed {} ({not_ready} not RUNNING the new revision), described {by_status:?}, replaced tasks not STOPPED {lingering}, targets {by_state:?}, healthy ports {healthy:?} of the tasks' {ports:?}",
        deployments.len(),
        current.len()
    );
    Ok((steady, current, seen))
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Deletes the service (and waits for its tasks to stop), the listener, the load balancer
/// and the target group; what fails is said, not fatal.
async fn cleanup(client: &ServerClient, made: &Made) {
    if made.service {
        if let Err(e) = call(
            client,
            "DeleteService",
            json!({"cluster": CLUSTER, "service": NAME, "force": true}),
        )
        .await
        {
            eprintln!("cleanup: {e:#}");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if all_stopped(client).await.unwrap_or(false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let steps = [
        ("DeleteListener", "ListenerArn", &made.listener),
        ("DeleteLoadBalancer", "LoadBalancerArn", &made.load_balancer),
        ("DeleteTargetGroup", "TargetGroupArn", &made.target_group),
    ];
    for (action, name, arn) in steps {
        if let Some(arn) = arn {
            if let Err(e) = elb(client, action, &[(name, arn)]).await {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

/// Whether no task of the cluster is meant to run and every one told to stop has.
async fn all_stopped(client: &ServerClient) -> anyhow::Result<bool> {
    let running = call(client, "ListTasks", json!({"cluster": CLUSTER})).await?;
    if !strings(&running["taskArns"]).is_empty() {
        return Ok(false);
    }
    let stopping = call(
        client,
        "ListTasks",
        json!({"cluster": CLUSTER, "desiredStatus": "STOPPED"}),
    )
    .await?;
    let arns: Vec<String> = strings(&stopping["taskArns"]).into_iter().collect();
    for chunk in arns.chunks(100) {
        let out = call(
            client,
            "DescribeTasks",
            json!({"cluster": CLUSTER, "tasks": chunk}),
        )
        .await?;
        if out["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["lastStatus"] != "STOPPED")
        {
            return Ok(false);
        }
    }
    Ok(true)
}
